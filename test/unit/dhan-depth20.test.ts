/**
 * The pure parts of Dhan's 20-level depth socket (src/adapters/dhan/depth20-feed.ts): the
 * request texts against the official client's vectors, the URL, and the pairing of bid and ask
 * packets.
 */
import { describe, expect, it } from 'vitest';
import { type DhanPacket, decodeDhanDepth20 } from '../../src/adapters/dhan/decoder.js';
import { Depth20Pairs, dhanDepth20Requests, dhanDepth20Url, hasDhanDepth20 } from '../../src/adapters/dhan/depth20-feed.js';
import { redactDhanUrl } from '../../src/adapters/dhan/dialect.js';
import { dhanVectorFrame, loadDhanVectors } from '../helpers/fake-dhan.js';

const vectors = loadDhanVectors();
type Side = Extract<DhanPacket, { kind: 'depth20' }>;

function sides(name: string): Side[] {
  return decodeDhanDepth20(dhanVectorFrame(vectors, name)).filter((p): p is Side => p.kind === 'depth20');
}

function request(name: string): unknown {
  return JSON.parse(vectors.find((v) => v.name === `dhan/${name}`)!.text!);
}

describe('Dhan 20-level depth: requests', () => {
  it('subscribes with code 23 as the official client does, at most 50 instruments a message', () => {
    const two = [{ ExchangeSegment: 'NSE_EQ', SecurityId: '2885' }, { ExchangeSegment: 'NSE_FNO', SecurityId: '35001' }];
    expect(dhanDepth20Requests('subscribe', two).map((m) => JSON.parse(m))).toEqual([request('depth20_request_subscribe_on_connect')]);

    const expected = [request('depth20_request_subscribe_51_instruments#0'), request('depth20_request_subscribe_51_instruments#1')] as Array<{ InstrumentList: Array<{ ExchangeSegment: string; SecurityId: string }> }>;
    const instruments = expected.flatMap((r) => r.InstrumentList);
    expect(dhanDepth20Requests('subscribe', instruments).map((m) => JSON.parse(m))).toEqual(expected);
  });

  it('unsubscribes with the annexure’s 25 where the official client sends 24; the text is compact JSON', () => {
    const official = request('depth20_request_unsubscribe') as Record<string, unknown>;
    expect(official.RequestCode).toBe(24);
    expect(dhanDepth20Requests('unsubscribe', [{ ExchangeSegment: 'NSE_EQ', SecurityId: '2885' }])).toEqual([
      JSON.stringify({ ...official, RequestCode: 25 }),
    ]);
    expect(dhanDepth20Requests('unsubscribe', [])).toEqual([]);
  });

  it('the URL carries the credentials as the live feed’s does, without `version`; the token is redacted when shown', () => {
    const url = dhanDepth20Url('wss://depth-api-feed.dhan.co/twentydepth', 'secret-token', '1100012345');
    expect(url).toBe('wss://depth-api-feed.dhan.co/twentydepth?token=secret-token&clientId=1100012345&authType=2');
    expect(redactDhanUrl(url)).not.toContain('secret-token');
  });

  it('20 levels on NSE_EQ and NSE_FNO only', () => {
    expect(hasDhanDepth20({ token: '2885', brexchange: 'NSE' })).toBe(true);
    expect(hasDhanDepth20({ token: '35001', brexchange: 'NSE_FNO' })).toBe(true);
    expect(hasDhanDepth20({ token: '500325', brexchange: 'BSE_EQ' })).toBe(false);
    expect(hasDhanDepth20({ token: '13', brexchange: 'NSE_INDEX' })).toBe(false);
    expect(hasDhanDepth20({ token: '1', brexchange: 'XYZ' })).toBe(false);
  });
});

describe('Dhan 20-level depth: pairing', () => {
  it('a bid and an ask of one instrument make one tick, in either order, each side used once', () => {
    const [bid] = sides('depth20_bid_nse_eq_reliance');
    const [ask] = sides('depth20_ask_nse_eq_reliance');
    const pairs = new Depth20Pairs();
    expect(pairs.add(ask!)).toBeUndefined();
    const tick = pairs.add(bid!);
    expect(tick).toMatchObject({ broker: 'dhan', token: '2885', exchange: 'NSE_EQ', mode: 'depth20', sequence: 7002 });
    expect(tick!.depth).toEqual({ buy: bid!.levels, sell: ask!.levels });
    expect(pairs.size).toBe(0);
    expect(pairs.add(bid!)).toBeUndefined();
  });

  it('a second side of the same kind replaces the first; instruments pair apart; drop forgets a half', () => {
    const [bid1, ask1, bid2, ask2] = sides('depth20_two_instruments');
    const pairs = new Depth20Pairs();
    expect(pairs.add(bid1!)).toBeUndefined();
    expect(pairs.add(bid2!)).toBeUndefined();
    const newer = { ...bid1!, sequence: 9999 };
    expect(pairs.add(newer)).toBeUndefined();
    expect(pairs.size).toBe(2);
    expect(pairs.add(ask2!)).toMatchObject({ token: '35001', depth: { buy: bid2!.levels, sell: ask2!.levels } });
    expect(pairs.add(ask1!)).toMatchObject({ token: '11536', sequence: 9999 });

    pairs.add(bid1!);
    pairs.drop('NSE_EQ:11536');
    expect(pairs.add(ask1!)).toBeUndefined();
  });
});
