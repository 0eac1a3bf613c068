import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { decodeUpstoxFeed, type UpstoxDecoded, type UpstoxTick, UPSTOX_MAX_DEPTH } from '../../src/adapters/upstox/decoder.js';

type Json = Record<string, any>;
interface UpstoxVector {
  name: string;
  kind: string;
  direction: string;
  frame: string | null;
  hex?: string;
  decoded?: Json;
  exception?: string;
  input?: unknown;
  tickcast?: 'invalid';
  text?: string;
  url?: string;
  headers?: Record<string, string>;
}

// test/fixtures/vectors/README.md says where they come from.
const VECTORS = JSON.parse(readFileSync(new URL('../fixtures/vectors/upstox.json', import.meta.url), 'utf8')) as UpstoxVector[];
const FRAMES = VECTORS.filter((v) => v.direction === 'server->client');

function feedOf(decoded: UpstoxDecoded): Extract<UpstoxDecoded, { kind: 'feed' }> {
  if (decoded.kind !== 'feed') throw new Error(`expected a feed, got ${JSON.stringify(decoded)}`);
  return decoded;
}

const num = (value: unknown): number | undefined => (value === undefined ? undefined : Number(value));
const positive = (value: unknown): number | undefined => {
  const n = num(value);
  return n !== undefined && n > 0 ? Math.trunc(n) : undefined;
};

/** What a tick must hold, read from the official SDK's MessageToDict output for one Feed. */
function checkAgainstOfficial(key: string, feed: Json, ours: UpstoxTick, currentTs: number | undefined): void {
  const { tick } = ours;
  expect(tick.broker).toBe('upstox');
  expect(tick.token).toBe(key);
  expect(ours.key).toBe(key);
  expect(tick.exchange).toBe(key.split('|')[0]);
  expect(ours.requestMode).toBe(feed.requestMode ?? 'ltpc');
  expect(tick.exchangeTimestamp).toBe(currentTs);

  const market = feed.fullFeed?.marketFF;
  const index = feed.fullFeed?.indexFF;
  const first = feed.firstLevelWithGreeks;
  const body = feed.ltpc ? undefined : (market ?? index ?? first);
  const ltpc: Json | undefined = feed.ltpc ?? body?.ltpc;
  expect(tick.mode).toBe(feed.ltpc ? 'ltp' : first ? 'quote' : 'full');
  expect(tick.isIndex).toBe(index !== undefined || key.startsWith('NSE_INDEX|') || key.startsWith('BSE_INDEX|'));

  if (ltpc?.ltp === undefined) expect(tick.ltp).toBeNaN();
  else expect(tick.ltp).toBe(ltpc.ltp);
  expect(tick.lastTradeTime).toBe(positive(ltpc?.ltt));
  expect(tick.lastQuantity).toBe(positive(ltpc?.ltq));
  expect(tick.close).toBe(num(ltpc?.cp));

  expect(tick.volume).toBe(positive(body?.vtt));
  expect(tick.oi).toBe(positive(body?.oi));
  expect(tick.averagePrice).toBe(num(market?.atp));
  expect(tick.totalBuyQuantity).toBe(positive(market?.tbq));
  expect(tick.totalSellQuantity).toBe(positive(market?.tsq));
  expect(ours.iv).toBe(num(body?.iv));

  const greeks: Json | undefined = body?.optionGreeks;
  expect(ours.greeks).toEqual(greeks === undefined ? undefined : Object.fromEntries(Object.entries(greeks).map(([k, v]) => [k, Number(v)])));

  const quotes: Json[] | undefined = market?.marketLevel?.bidAskQuote ?? (first?.firstDepth ? [first.firstDepth] : undefined);
  if (quotes === undefined) expect(tick.depth).toBeUndefined();
  else {
    const side = (p: string, q: string) =>
      quotes
        .filter((x) => x[p] !== undefined || x[q] !== undefined)
        .slice(0, UPSTOX_MAX_DEPTH)
        .map((x) => ({ price: num(x[p]) ?? 0, quantity: num(x[q]) ?? 0, orders: null }));
    expect(tick.depth).toEqual({ buy: side('bidP', 'bidQ'), sell: side('askP', 'askQ') });
  }

  const candles: Json[] | undefined = (market ?? index)?.marketOHLC?.ohlc;
  expect(ours.candles?.length).toBe(candles?.length);
  candles?.forEach((c, i) => {
    expect(ours.candles![i]).toEqual({
      interval: c.interval, open: num(c.open), high: num(c.high), low: num(c.low), close: num(c.close), volume: num(c.vol), ts: num(c.ts),
    });
  });
  const day = candles?.find((c) => c.interval === '1d');
  expect([tick.open, tick.high, tick.low]).toEqual([num(day?.open), num(day?.high), num(day?.low)]);
}

describe('Upstox v3 decoder against the official SDK (test/fixtures/vectors/upstox.json)', () => {
  it('has the vectors the README lists', () => {
    expect(VECTORS.length).toBeGreaterThanOrEqual(35);
    for (const kind of ['market_info', 'ltpc', 'full', 'full_d30', 'index_full', 'option_greeks', 'multi', 'missing', 'request']) {
      expect(VECTORS.some((v) => v.kind === kind), kind).toBe(true);
    }
  });

  for (const vector of FRAMES) {
    it(vector.name, () => {
      const result = decodeUpstoxFeed(Buffer.from(vector.hex!, 'hex'));
      if (vector.exception !== undefined || vector.tickcast === 'invalid') {
        expect(result.kind).toBe('invalid');
        if (result.kind === 'invalid') expect(result.reason.length).toBeLessThan(200);
        return;
      }
      const feed = feedOf(result);
      const official = vector.decoded!;
      expect(feed.type).toBe(official.type ?? 'initial_feed');
      expect(feed.currentTs).toBe(positive(official.currentTs));
      const status: Json | undefined = official.marketInfo?.segmentStatus;
      if (official.marketInfo === undefined) expect(feed.marketStatus).toBeUndefined();
      else {
        expect(Object.fromEntries(feed.marketStatus!.map((s) => [s.segment, s.status]))).toEqual(status ?? {});
      }
      const feeds: Json = official.feeds ?? {};
      expect(feed.ticks.map((t) => t.key).sort()).toEqual(Object.keys(feeds).sort());
      expect(feed.skipped).toEqual([]);
      for (const ours of feed.ticks) checkAgainstOfficial(ours.key, feeds[ours.key], ours, feed.currentTs);
    });
  }

  it('market_info: every segment with its status, the zero status included', () => {
    const feed = feedOf(decodeUpstoxFeed(Buffer.from(VECTORS.find((v) => v.name === 'upstox/market_info_first')!.hex!, 'hex')));
    expect(feed.type).toBe('market_info');
    expect(feed.ticks).toEqual([]);
    expect(feed.marketStatus).toContainEqual({ segment: 'NSE_COM', status: 'PRE_OPEN_START' });
    expect(feed.marketStatus).toContainEqual({ segment: 'NSE_EQ', status: 'NORMAL_OPEN' });
  });

  it('full_d30 keeps thirty levels a side; full keeps five', () => {
    const d30 = feedOf(decodeUpstoxFeed(Buffer.from(VECTORS.find((v) => v.name === 'upstox/full_d30_nse_eq_depth30')!.hex!, 'hex')));
    expect(d30.ticks[0]!.tick.depth!.buy).toHaveLength(30);
    expect(d30.ticks[0]!.tick.depth!.sell).toHaveLength(30);
    expect(d30.ticks[0]!.tick.volume).toBe(5123456789);
    const d5 = feedOf(decodeUpstoxFeed(Buffer.from(VECTORS.find((v) => v.name === 'upstox/full_nse_eq_depth5')!.hex!, 'hex')));
    expect(d5.ticks[0]!.tick.depth!.buy[0]).toEqual({ price: 2950.5, quantity: 120, orders: null });
    expect(d5.ticks[0]!.tick.close).toBe(2921.15);
    expect(d5.ticks[0]!.tick.open).toBe(2930);
  });

  it('the wrong wire type the SDK tolerates is invalid here', () => {
    const vector = VECTORS.find((v) => v.name === 'upstox/wrong_wire_type_ltp_as_varint')!;
    expect(vector.decoded).toBeDefined();
    const result = decodeUpstoxFeed(Buffer.from(vector.hex!, 'hex'));
    expect(result).toEqual({ kind: 'invalid', reason: 'LTPC.ltp: wire type 0, expected 1' });
  });
});

describe('Upstox v3 decoder on hostile input', () => {
  const full = Buffer.from(VECTORS.find((v) => v.name === 'upstox/full_nse_eq_depth5')!.hex!, 'hex');

  it('every truncation of a valid frame is a feed or invalid, never a throw', () => {
    for (let cut = 0; cut < full.length; cut++) {
      const result = decodeUpstoxFeed(full.subarray(0, cut));
      expect(['feed', 'invalid']).toContain(result.kind);
    }
    expect(decodeUpstoxFeed(full.subarray(0, full.length - 1)).kind).toBe('invalid');
  });

  it('garbage is invalid or harmless', () => {
    let seed = 12345;
    const random = () => ((seed = (seed * 1103515245 + 12345) >>> 0) >>> 16) & 0xff;
    for (let i = 0; i < 2000; i++) {
      const frame = Buffer.from(Array.from({ length: 1 + (i % 200) }, random));
      const result = decodeUpstoxFeed(frame);
      expect(['feed', 'invalid']).toContain(result.kind);
    }
    expect(decodeUpstoxFeed(Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff])).kind).toBe('invalid');
  });

  it('wrong wire types on known fields are invalid', () => {
    expect(decodeUpstoxFeed(Buffer.from([0x0a, 0x00]))).toEqual({ kind: 'invalid', reason: 'FeedResponse.type: wire type 2, expected 0' });
    expect(decodeUpstoxFeed(Buffer.from([0x10, 0x01]))).toEqual({ kind: 'invalid', reason: 'FeedResponse.feeds: wire type 0, expected 2' });
    expect(decodeUpstoxFeed(Buffer.from([0x19, 1, 2, 3, 4, 5, 6, 7, 8]))).toEqual({ kind: 'invalid', reason: 'FeedResponse.currentTs: wire type 1, expected 0' });
  });

  it('nesting bombs: bounded work, refused where they reach a known scalar', () => {
    // 20 000 levels of field 2, each wrapping the next: feeds → Feed → fullFeed → indexFF →
    // marketOHLC, then an unknown field whose contents are skipped without being parsed.
    let inner: Buffer = Buffer.alloc(0);
    for (let i = 0; i < 20_000; i++) inner = Buffer.concat([Buffer.from([0x12]), varint(inner.length), inner]);
    let start = performance.now();
    expect(decodeUpstoxFeed(inner)).toMatchObject({ kind: 'feed', ticks: [], skipped: ['instrument key "" is not SEGMENT|TOKEN'] });
    expect(performance.now() - start).toBeLessThan(1000);
    // The same through field 1 (FeedResponse.type, a varint): invalid at the first level.
    let bomb: Buffer = Buffer.alloc(0);
    for (let i = 0; i < 20_000; i++) bomb = Buffer.concat([Buffer.from([0x0a]), varint(bomb.length), bomb]);
    start = performance.now();
    expect(decodeUpstoxFeed(bomb)).toEqual({ kind: 'invalid', reason: 'FeedResponse.type: wire type 2, expected 0' });
    expect(performance.now() - start).toBeLessThan(1000);
  });

  it('a length beyond the frame is invalid, not read', () => {
    expect(decodeUpstoxFeed(Buffer.from([0x12, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x0a]))).toMatchObject({ kind: 'invalid' });
  });

  it('a feed without data or with a bad key is skipped with a reason', () => {
    // feeds { key: "NSE_EQ|X" value: { requestMode: 1 } }, feeds { key: "nokey" value: { ltpc {} } }
    const entry = (key: string, value: number[]) => {
      const k = Buffer.from(key);
      const body = Buffer.concat([Buffer.from([0x0a, k.length]), k, Buffer.from([0x12, value.length, ...value])]);
      return Buffer.concat([Buffer.from([0x12, body.length]), body]);
    };
    const feed = feedOf(decodeUpstoxFeed(Buffer.concat([entry('NSE_EQ|X', [0x20, 0x01]), entry('nokey', [0x0a, 0x00])])));
    expect(feed.ticks).toEqual([]);
    expect(feed.skipped).toEqual(['feed for "NSE_EQ|X" carries no data', 'instrument key "nokey" is not SEGMENT|TOKEN']);
  });
});

function varint(n: number): Buffer {
  const out: number[] = [];
  while (n > 0x7f) {
    out.push((n & 0x7f) | 0x80);
    n = Math.floor(n / 128);
  }
  out.push(n);
  return Buffer.from(out);
}
