/**
 * The broker adapter contract (broker-contract.ts) for Dhan's live market feed v2, against its
 * fake server, and what is Dhan's own: the query-string auth, the JSON requests and their
 * 100-instrument split, disconnect packets, and the vectors' frames published with OpenAlgo's
 * Dhan field names (docs/brokers/dhan.md).
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { BrokerCredentials, BrokerInstrument } from '../../src/adapters/broker.js';
import { DHAN_SEGMENTS } from '../../src/adapters/dhan/decoder.js';
import {
  DHAN_EXCHANGE_SEGMENT, DhanAdapter, type DhanAdapterOptions, dhanClientId, dhanRequests, parseSecurityId, redactDhanUrl,
} from '../../src/adapters/dhan/dhan-adapter.js';
import { systemClock } from '../../src/clock.js';
import type { FeedStatusEvent } from '../../src/feed.js';
import { silentLogger } from '../../src/observability/logger.js';
import type { Mode } from '../../src/protocol/modes.js';
import { formatTopic } from '../../src/protocol/topics.js';
import { FakeDhan, dhanGarbage, dhanPrevClose, dhanTicker, dhanVectorFrame, loadDhanVectors } from '../helpers/fake-dhan.js';
import { brokerContract } from './broker-contract.js';
import { MemoryPublisher, SLOW, until } from '../helpers/broker-kit.js';

const FEED = 'dhan.alice';
const RELIANCE = { exchange: 'NSE', symbol: 'RELIANCE' };
const GOOD: BrokerCredentials = { apiKey: '', accessToken: 'dhan-token-day-1', clientCode: '1100012345' };

/** The symbol master as a Dhan import would fill it: token = security id, brexchange = segment. */
const MASTER = new Map<string, BrokerInstrument>([
  ['NSE:RELIANCE', { token: '2885', brexchange: 'NSE_EQ' }],
  ['BSE:RELIANCE', { token: '500325', brexchange: 'BSE_EQ' }],
  ['NSE_INDEX:NIFTY', { token: '13', brexchange: 'IDX_I' }],
  ['NSE_INDEX:BANKNIFTY', { token: '25', brexchange: 'IDX_I' }],
  ['NFO:NIFTY27JUN24FUT', { token: '35001', brexchange: 'NSE_FNO' }],
  ['MCX:CRUDEOIL19JUN24FUT', { token: '430106', brexchange: 'MCX_COMM' }],
  ['NSE:ODDSEG', { token: '1', brexchange: 'NSE_XX' }],
  ['NSE:ODDTOKEN', { token: 'abc', brexchange: 'NSE_EQ' }],
]);
for (let i = 0; i < 250; i++) MASTER.set(`NSE:S${i}`, { token: String(100_000 + i), brexchange: 'NSE_EQ' });

const symbols = { lookup: (broker: string, exchange: string, symbol: string) => (broker === 'dhan' ? MASTER.get(`${exchange}:${symbol}`) : undefined) };

/** The stream's instrument as a connection holds it. */
function heldOf(fake: FakeDhan, connection: number, key = 'NSE_EQ:2885'): { subscribes: number; modes: Mode[] } {
  const entry = fake.held(connection).get(key);
  return { subscribes: entry?.subscribes ?? 0, modes: entry ? [...entry.modes].sort() : [] };
}

brokerContract({
  name: 'Dhan',
  feed: FEED,
  credentials: GOOD,
  renewed: { ...GOOD, accessToken: 'dhan-token-day-2' },
  expired: { ...GOOD, accessToken: 'dhan-token-day-0' },
  secret: (credentials) => credentials.accessToken,
  stream: RELIANCE,
  ltpTopic: formatTopic(FEED, 'NSE', 'RELIANCE', 1),
  symbols,
  adapter: (options) => new DhanAdapter(options),
  async server(credentials) {
    const fake = await FakeDhan.start({ accessToken: credentials.accessToken, clientId: credentials.clientCode!, pingMs: 50 });
    return {
      url: fake.url,
      connections: () => fake.connections,
      open: () => fake.openConnections().length,
      attempts: () => fake.upgrades.map((u) => ({ secret: u.token ?? '', accepted: u.accepted })),
      accept(next) {
        fake.accessToken = next.accessToken;
        fake.clientId = next.clientCode!;
      },
      held: (connection) => heldOf(fake, connection),
      // The contract's LTP is in paise; Dhan sends rupees as a float32.
      tick: (ltp) => fake.send(dhanTicker({ segment: 'NSE_EQ', securityId: 2885, ltp: ltp / 100 })),
      garbage() {
        for (const frame of dhanGarbage()) fake.send(frame);
        fake.sendText('not json at all');
      },
      silent: (on) => (on ? fake.goSilent() : fake.resume()),
      drop: () => fake.drop(),
      close: () => fake.close(),
    };
  },
});

describe('Dhan: its own dialect', () => {
  const running: Array<{ adapter: DhanAdapter; fake: FakeDhan }> = [];
  afterEach(async () => {
    for (const { adapter, fake } of running.splice(0)) {
      await adapter.stop();
      await fake.close();
    }
  });

  async function setup(options: Partial<DhanAdapterOptions> = {}, stored: BrokerCredentials = GOOD, start = true) {
    const fake = await FakeDhan.start({ accessToken: GOOD.accessToken, clientId: GOOD.clientCode!, pingMs: 50 });
    const publisher = new MemoryPublisher();
    const store = { current: stored as BrokerCredentials | undefined };
    const adapter = new DhanAdapter({
      feed: FEED,
      user: 'alice',
      url: fake.url,
      symbols,
      credentials: { load: async () => store.current },
      publisher,
      clock: systemClock,
      logger: silentLogger(),
      silenceMs: 300,
      backoff: { initialMs: 50, maxMs: 200, jitter: 0.1 },
      batchDelayMs: 20,
      ...options,
    });
    const statuses: FeedStatusEvent[] = [];
    adapter.onStatus((event) => statuses.push(event));
    running.push({ adapter, fake });
    const status = async (wanted: FeedStatusEvent['status'], from = 0): Promise<FeedStatusEvent> => {
      await until(() => statuses.slice(from).some((e) => e.status === wanted), `status ${wanted}`);
      return statuses.slice(from).find((e) => e.status === wanted)!;
    };
    if (start) {
      await adapter.start();
      await status('live');
    }
    return { fake, publisher, adapter, statuses, status, store };
  }

  it('authenticates in the query string: version=2, token, clientId, authType=2, and no headers of its own', async () => {
    const { fake } = await setup();
    expect(fake.upgrades).toHaveLength(1);
    expect(fake.upgrades[0]).toMatchObject({ path: '/', version: '2', token: GOOD.accessToken, clientId: GOOD.clientCode, authType: '2', accepted: true });
  });

  it('a wrong client id is refused at the upgrade: down with Dhan’s refusal, the token never in the message', async () => {
    const { fake, adapter, status } = await setup(SLOW, { ...GOOD, clientCode: '999' }, false);
    await adapter.start();
    const down = await status('down');
    expect(down.message).toMatch(/^Dhan refused the session \(client 999, HTTP 401\)/);
    expect(down.message).not.toContain(GOOD.accessToken);
    expect(fake.upgrades.map((u) => [u.clientId, u.accepted])).toEqual([['999', false]]);
  });

  it('an upgrade answered 429 (a lapsed data plan) is a refusal too: down, and no quick retries', async () => {
    const { fake, adapter, status } = await setup(SLOW, GOOD, false);
    fake.refuseAll = 429;
    await adapter.start();
    const down = await status('down');
    expect(down.message).toMatch(/^Dhan refused the session \(client \d+, HTTP 429\)/);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(fake.upgrades).toHaveLength(1);
  });

  it('closing on purpose sends the disconnect request (12) last: on stop and on a re-login; a socket given up for silence does not', async () => {
    const { fake, adapter, store, status, statuses } = await setup();
    expect(await adapter.subscribe(RELIANCE, 1, 5)).toMatchObject({ ok: true });
    await until(() => fake.held(1).size === 1, 'the subscription');

    // Silence: the socket is lost, not closed on purpose.
    let mark = statuses.length;
    fake.goSilent();
    await status('reconnecting', mark);
    fake.resume();
    await status('live', mark);
    await until(() => fake.openConnections().length === 1 && fake.held(2).size === 1, 'the second socket subscribed');
    expect(fake.farewells()).toEqual([]);

    // A re-login replaces the socket: the old one says goodbye.
    store.current = { ...GOOD };
    adapter.credentialsChanged();
    await until(() => fake.connections === 3 && fake.openConnections().length === 1 && fake.held(3).size === 1, 'the third socket subscribed');
    expect(fake.farewells()).toEqual([{ connection: 2, endpoint: 'feed' }]);

    await adapter.stop();
    await until(() => fake.openConnections().length === 0, 'the socket closed');
    expect(fake.farewells()).toEqual([{ connection: 2, endpoint: 'feed' }, { connection: 3, endpoint: 'feed' }]);
    expect(fake.requestsOn(3).at(-1)!.raw).toBe('{"RequestCode":12}');
    expect(fake.problems).toEqual([]);
  });

  it('the token is redacted from a URL shown; the client id may come from OpenAlgo’s `client:::key` API key', () => {
    const url = 'wss://api-feed.dhan.co/?version=2&token=secret-token&clientId=1100012345&authType=2';
    expect(redactDhanUrl(url)).not.toContain('secret-token');
    expect(redactDhanUrl(url)).toContain('clientId=1100012345');
    expect(dhanClientId({ apiKey: '1100012345:::app-key', accessToken: 't' })).toBe('1100012345');
    expect(dhanClientId({ apiKey: 'app-key', accessToken: 't' })).toBeUndefined();
    expect(dhanClientId({ apiKey: 'x:::y', accessToken: 't', clientCode: 'C1' })).toBe('C1');
  });

  it('subscribe JSON: one request code per message, at most 100 instruments; a mode change unsubscribes the old code first', async () => {
    const { fake, adapter } = await setup({ batchDelayMs: 100 });
    const streams = Array.from({ length: 250 }, (_, i) => ({ exchange: 'NSE', symbol: `S${i}` }));
    const count = () => fake.requestsOn(1).length;

    const results = await Promise.all(streams.map((stream) => adapter.subscribe(stream, 1, 5)));
    expect(results.every((r) => r.ok)).toBe(true);
    await until(() => count() === 3, 'the LTP subscription');
    await Promise.all(streams.map((stream) => adapter.subscribe(stream, 2, 5)));
    await until(() => count() === 9, 'the mode change');
    await Promise.all(streams.map((stream) => adapter.unsubscribe(stream)));
    await until(() => count() === 12, 'the unsubscribe');

    const requests = fake.requestsOn(1);
    expect(requests.map((r) => [r.RequestCode, r.InstrumentCount])).toEqual([
      [15, 100], [15, 100], [15, 50],
      [16, 100], [16, 100], [16, 50],
      [17, 100], [17, 100], [17, 50],
      [18, 100], [18, 100], [18, 50],
    ]);
    expect(requests[0]!.InstrumentList![0]).toEqual({ ExchangeSegment: 'NSE_EQ', SecurityId: '100000' });
    expect(new Set(requests.slice(0, 3).flatMap((r) => r.InstrumentList!.map((i) => i.SecurityId))).size).toBe(250);
    expect(fake.problems).toEqual([]);
    expect(fake.held(1).size).toBe(250);
    expect([...fake.held(1).values()].every((entry) => entry.modes.size === 0 && entry.subscribes === 2)).toBe(true);
  });

  it('the request text is Dhan’s, byte for byte', () => {
    const instrument = { ExchangeSegment: 'NSE_EQ', SecurityId: '2885' };
    expect(dhanRequests('subscribe', [{ instrument, mode: 3 }, { instrument: { ExchangeSegment: 'IDX_I', SecurityId: '13' }, mode: 1 }])).toEqual([
      '{"RequestCode":15,"InstrumentCount":1,"InstrumentList":[{"ExchangeSegment":"IDX_I","SecurityId":"13"}]}',
      '{"RequestCode":21,"InstrumentCount":1,"InstrumentList":[{"ExchangeSegment":"NSE_EQ","SecurityId":"2885"}]}',
    ]);
    expect(dhanRequests('unsubscribe', [{ instrument, mode: 2 }])).toEqual([
      '{"RequestCode":18,"InstrumentCount":1,"InstrumentList":[{"ExchangeSegment":"NSE_EQ","SecurityId":"2885"}]}',
    ]);
    expect(dhanRequests('subscribe', Array.from({ length: 101 }, (_, i) => ({ instrument: { ExchangeSegment: 'NSE_EQ', SecurityId: String(i + 1) }, mode: 1 as Mode }))).map((m) => JSON.parse(m).InstrumentCount)).toEqual([100, 1]);
  });

  it('resolves the symbol master’s segment and security id; anything else is a per-symbol error', async () => {
    const { fake, adapter } = await setup();
    expect(await adapter.subscribe({ exchange: 'NSE_INDEX', symbol: 'NIFTY' }, 1, 5)).toEqual({ ok: true, depth: 5 });
    expect(await adapter.subscribe({ exchange: 'MCX', symbol: 'CRUDEOIL19JUN24FUT' }, 3, 20)).toEqual({ ok: true, depth: 5 });
    expect(await adapter.subscribe({ exchange: 'NSE', symbol: 'ODDSEG' }, 1, 5)).toEqual({ ok: false, message: 'Exchange NSE_XX of ODDSEG is not supported by the Dhan feed' });
    expect(await adapter.subscribe({ exchange: 'NSE', symbol: 'ODDTOKEN' }, 1, 5)).toEqual({ ok: false, message: 'Token not found for ODDTOKEN on NSE' });
    expect(await adapter.subscribe({ exchange: 'NSE', symbol: 'NOPE' }, 1, 5)).toEqual({ ok: false, message: 'Token not found for NOPE on NSE' });
    // Off NSE, `:20` falls back to the live feed's five levels, as OpenAlgo's adapter does.
    expect(await adapter.subscribe({ exchange: 'BSE', symbol: 'RELIANCE:20' }, 3, 20)).toEqual({ ok: true, depth: 5 });
    await until(() => fake.held(1).size === 3, 'the three subscriptions');
    expect(heldOf(fake, 1, 'IDX_I:13')).toEqual({ subscribes: 1, modes: [1] });
    expect(heldOf(fake, 1, 'MCX_COMM:430106')).toEqual({ subscribes: 1, modes: [3] });
    expect(heldOf(fake, 1, 'BSE_EQ:500325')).toEqual({ subscribes: 1, modes: [3] });
    expect(fake.depthConnections).toBe(0);
    expect(parseSecurityId(' 2885 ')).toBe('2885');
    expect(parseSecurityId('0')).toBeUndefined();
    expect(parseSecurityId('4294967296')).toBeUndefined();
    // Every segment the decoder knows has its request name.
    for (const segment of DHAN_SEGMENTS.values()) expect(DHAN_EXCHANGE_SEGMENT[segment.name]).toBe(segment.name);
  });

  it('disconnect 807: down with Dhan’s reason, no retry loop; a re-login reconnects', async () => {
    const { fake, adapter, status, statuses, store } = await setup(SLOW);
    expect(await adapter.subscribe(RELIANCE, 1, 5)).toMatchObject({ ok: true });
    await until(() => heldOf(fake, 1).modes.length > 0, 'the subscription');
    const mark = statuses.length;
    fake.disconnect(807);
    const down = await status('down', mark);
    expect(down.message).toMatch(/^Dhan refused the session \(disconnect 807: access token is expired\)/);
    await new Promise((resolve) => setTimeout(resolve, 400));
    expect(fake.upgrades).toHaveLength(1);
    expect(fake.connections).toBe(1);
    expect(adapter.status()).toBe('down');
    expect(statuses.slice(mark).map((e) => e.status)).toEqual(['down']);

    store.current = { ...GOOD, accessToken: 'dhan-token-day-2' };
    fake.accessToken = 'dhan-token-day-2';
    adapter.credentialsChanged();
    await status('live', mark);
    await until(() => heldOf(fake, 2).modes.length > 0, 'the resubscription');
    expect(heldOf(fake, 2)).toEqual({ subscribes: 1, modes: [1] });
  });

  it('disconnect 805 (too many connections) is no refusal: reconnected with backoff', async () => {
    const { fake, adapter, status, statuses } = await setup();
    expect(await adapter.subscribe(RELIANCE, 2, 5)).toMatchObject({ ok: true });
    await until(() => heldOf(fake, 1).modes.length > 0, 'the subscription');
    const mark = statuses.length;
    fake.disconnect(805);
    await status('reconnecting', mark);
    await status('live', mark);
    expect(statuses.slice(mark).some((e) => e.status === 'down')).toBe(false);
    await until(() => heldOf(fake, 2).modes.length > 0, 'the resubscription');
    expect(heldOf(fake, 2)).toEqual({ subscribes: 1, modes: [2] });
  });

  it('streams the vectors’ frames and publishes them with OpenAlgo’s Dhan field names', async () => {
    const vectors = loadDhanVectors();
    const { fake, adapter, publisher } = await setup();
    const subs: Array<[string, string, Mode]> = [
      ['NSE', 'RELIANCE', 3],
      ['NFO', 'NIFTY27JUN24FUT', 3],
      ['NSE_INDEX', 'NIFTY', 1],
      ['NSE_INDEX', 'BANKNIFTY', 2],
    ];
    for (const [exchange, symbol, mode] of subs) expect(await adapter.subscribe({ exchange, symbol }, mode, 5)).toMatchObject({ ok: true });
    await until(() => fake.held(1).size === 4, 'the subscriptions');

    for (const name of ['ticker_nse_eq_reliance', 'quote_nse_eq_reliance', 'full_nse_fno_nifty_fut', 'ticker_idx_nifty50', 'quote_idx_banknifty',
      'multi_packet_ticker_prevclose_oi', 'oi_nse_fno_nifty_fut', 'market_status', 'unknown_response_code_99', 'ticker_bse_eq_reliance']) {
      fake.send(dhanVectorFrame(vectors, name));
    }
    const topic = (exchange: string, symbol: string, mode: Mode) => formatTopic(FEED, exchange, symbol, mode);
    await until(() => publisher.on(topic('NSE_INDEX', 'BANKNIFTY', 2)).length === 1, 'the last published tick');
    await until(() => publisher.on(topic('NSE', 'RELIANCE', 1)).length === 2, 'the multi-packet tick');

    /** 2024-06-12 15:29:59 IST, the vectors' last-trade time, as a real instant. */
    const LTT_MS = 1_718_186_399_000;
    const [ltp] = publisher.on(topic('NSE', 'RELIANCE', 1));
    expect(Object.keys(ltp!)).toEqual(['symbol', 'exchange', 'mode', 'ltp', 'ltt', 'timestamp']);
    expect(ltp).toMatchObject({ symbol: 'RELIANCE', exchange: 'NSE', mode: 1, ltp: 2950.55, ltt: LTT_MS });

    const [quote] = publisher.on(topic('NSE', 'RELIANCE', 2));
    expect(quote).toEqual({
      symbol: 'RELIANCE', exchange: 'NSE', mode: 2, ltp: 2950.55, ltt: LTT_MS, timestamp: quote!.timestamp,
      volume: 5_123_456, open: 2925, high: 2962.5, low: 2915.1, close: 2921.15,
      last_quantity: 25, average_price: 2938.4, total_buy_quantity: 654_321, total_sell_quantity: 812_345,
      change: 29.4, change_percent: 1.01,
    });

    const [full] = publisher.on(topic('NFO', 'NIFTY27JUN24FUT', 3));
    expect(Object.keys(full!)).toEqual([
      'symbol', 'exchange', 'mode', 'ltp', 'ltt', 'timestamp', 'volume', 'open', 'high', 'low', 'close', 'last_quantity', 'average_price',
      'total_buy_quantity', 'total_sell_quantity', 'change', 'change_percent', 'oi', 'oi_high', 'oi_low', 'depth', 'depth_level',
    ]);
    expect(full).toMatchObject({
      symbol: 'NIFTY27JUN24FUT', exchange: 'NFO', mode: 3, ltp: 23310.4, ltt: LTT_MS, volume: 4_123_400, open: 23250, high: 23345.95,
      low: 23221.05, close: 23300.5, oi: 12_345_600, oi_high: 12_500_000, oi_low: 11_900_025, depth_level: 5,
    });
    const depth = full!.depth as { buy: unknown[]; sell: unknown[] };
    expect(depth.buy[0]).toEqual({ price: 23310.05, quantity: 150, orders: 3 });
    expect(depth.sell[4]).toEqual({ price: 23310.6, quantity: 275, orders: 8 });

    expect(publisher.on(topic('NSE_INDEX', 'NIFTY', 1))).toMatchObject([{ symbol: 'NIFTY', exchange: 'NSE_INDEX', mode: 1, ltp: 23264.85 }]);
    expect(publisher.on(topic('NSE_INDEX', 'BANKNIFTY', 2))).toMatchObject([{ mode: 2, ltp: 49895.3, volume: 0, last_quantity: 0, close: 49650.7 }]);
    // The BSE instrument is nobody's: nothing published for it; the rest went where it belongs.
    expect(publisher.messages.map((m) => m.topic).sort()).toEqual([
      topic('NFO', 'NIFTY27JUN24FUT', 3), topic('NSE', 'RELIANCE', 1), topic('NSE', 'RELIANCE', 1), topic('NSE', 'RELIANCE', 2),
      topic('NSE_INDEX', 'BANKNIFTY', 2), topic('NSE_INDEX', 'NIFTY', 1),
    ].sort());
    expect(adapter.stats()).toMatchObject({ unroutedTicks: 1, prevCloses: 1, oiPackets: 2, marketStatus: 1, invalid: 1 });
    expect(adapter.status()).toBe('live');
  });

  it('a quote packet without a close takes the previous-close packet’s', async () => {
    const vectors = loadDhanVectors();
    const { fake, adapter, publisher } = await setup();
    expect(await adapter.subscribe(RELIANCE, 2, 5)).toMatchObject({ ok: true });
    await until(() => heldOf(fake, 1).modes.length > 0, 'the subscription');
    fake.send(dhanPrevClose({ segment: 'NSE_EQ', securityId: 2885, close: 2921.15 }));
    const quote = dhanVectorFrame(vectors, 'quote_nse_eq_reliance');
    quote.writeFloatLE(0, 38); // no close in the packet
    fake.send(quote);
    const topic = formatTopic(FEED, 'NSE', 'RELIANCE', 2);
    await until(() => publisher.on(topic).length === 1, 'the quote');
    expect(publisher.on(topic)[0]).toMatchObject({ close: 2921.15, change: 29.4, change_percent: 1.01 });
  });
});
