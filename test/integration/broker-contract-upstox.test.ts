/**
 * Upstox Market Data Feed v3: the broker adapter contract (broker-contract.ts) against the fake
 * Upstox server, then what is Upstox's own: the bearer header and the redirect to a single-use
 * URL (more in upstox-redirect.test.ts), JSON requests in binary frames
 * grouped and split per mode, `change_mode` on a mode change, and the vector frames published
 * with OpenAlgo's field names.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { BrokerCredentials, BrokerFeedOptions, BrokerInstrument } from '../../src/adapters/broker.js';
import type { SessionOptions } from '../../src/adapters/session/broker-feed.js';
import { decodeUpstoxFeed } from '../../src/adapters/upstox/decoder.js';
import {
  UPSTOX_FEED_URL,
  UpstoxAdapter,
  type UpstoxAdapterOptions,
  buildUpstoxRequests,
  upstoxInstrumentKey,
} from '../../src/adapters/upstox/upstox-adapter.js';
import { systemClock } from '../../src/clock.js';
import type { FeedStatusEvent, StreamRef, SubscribeResult } from '../../src/feed.js';
import { silentLogger } from '../../src/observability/logger.js';
import type { Mode } from '../../src/protocol/modes.js';
import { formatTopic } from '../../src/protocol/topics.js';
import { FakeUpstox, encodeFeedResponse, loadUpstoxVectors, ltpcFrame, upstoxVectorFrame, UPSTOX_PATH } from '../helpers/fake-upstox.js';
import { brokerContract } from './broker-contract.js';
import { MemoryPublisher, until } from '../helpers/broker-kit.js';

const RELIANCE = { exchange: 'NSE', symbol: 'RELIANCE' };
const RELIANCE_KEY = 'NSE_EQ|INE002A01018';
const FEED = 'upstox.alice';

/**
 * Quote and Depth both ride `full`, so the wire cannot tell them apart: the contract's view of
 * a `full` subscription is the tickcast mode last asked for when that was Quote, Depth otherwise
 * (an LTP stream held at `full` would still show as 3, not 1).
 */
let lastAsked: Mode | undefined;

class ObservedUpstox extends UpstoxAdapter {
  override async subscribe(stream: StreamRef, mode: Mode, depth: number): Promise<SubscribeResult> {
    lastAsked = mode;
    return super.subscribe(stream, mode, depth);
  }
}

brokerContract({
  name: 'Upstox',
  feed: FEED,
  credentials: { apiKey: 'upstox-app-key', accessToken: 'upstox-token-day-1' },
  renewed: { apiKey: 'upstox-app-key', accessToken: 'upstox-token-day-2' },
  expired: { apiKey: 'upstox-app-key', accessToken: 'upstox-token-day-0' },
  secret: (credentials) => credentials.accessToken,
  stream: RELIANCE,
  ltpTopic: formatTopic(FEED, 'NSE', 'RELIANCE', 1),
  symbols: { lookup: (broker, exchange, symbol) => (broker === 'upstox' && exchange === 'NSE' && symbol === 'RELIANCE' ? { token: RELIANCE_KEY, brexchange: 'NSE' } : undefined) },
  adapter: (options) => new ObservedUpstox(options),
  async server(credentials) {
    lastAsked = undefined;
    const fake = await FakeUpstox.start({ accessToken: credentials.accessToken, pingMs: 50 });
    return {
      url: fake.url,
      connections: () => fake.connections,
      open: () => fake.open,
      attempts: () => fake.attempts.map((a) => ({ secret: a.token ?? '', accepted: a.accepted })),
      accept(next: BrokerCredentials) {
        fake.accessToken = next.accessToken;
      },
      held(connection) {
        const subscribes = fake.requestsOn(connection).filter((r) => r.method === 'sub' && r.data?.instrumentKeys?.includes(RELIANCE_KEY)).length;
        const mode = fake.held(connection).get(RELIANCE_KEY);
        const modes: Mode[] = mode === undefined ? [] : mode === 'ltpc' ? [1] : mode === 'full' ? [lastAsked === 2 ? 2 : 3] : [];
        return { subscribes, modes };
      },
      tick: (ltp) => fake.push(ltpcFrame(RELIANCE_KEY, ltp / 100)),
      garbage() {
        const frames = [
          Buffer.from([0xff]), // a tag with no field
          Buffer.from([0x08, 0x80]), // a varint cut short
          Buffer.from([0x12, 0x7f, 0x0a]), // a feed entry longer than the frame
          Buffer.from([0x0f]), // wire type 7
          Buffer.from('ff'.repeat(40), 'hex'),
          encodeFeedResponse({ type: 'live_feed', feeds: { 'not a key': { ltpc: { ltp: 1 } } } }),
        ];
        for (const frame of frames) fake.push(frame);
        fake.sendText('not json at all');
      },
      silent(on) {
        fake.silent = on;
      },
      drop: () => fake.drop(),
      close: () => fake.close(),
    };
  },
});

// ---- Upstox's own -----------------------------------------------------------------------------

const VECTORS = loadUpstoxVectors();

const MASTER: Record<string, BrokerInstrument> = {
  'NSE:RELIANCE': { token: RELIANCE_KEY, brexchange: 'NSE' },
  'NSE:INFY': { token: 'NSE_EQ|INE009A01021', brexchange: 'NSE' },
  'NSE:TCS': { token: 'NSE_EQ|INE467B01029', brexchange: 'NSE' },
  'NSE_INDEX:NIFTY': { token: 'NSE_INDEX|Nifty 50', brexchange: 'NSE_INDEX' },
  'NSE_INDEX:BANKNIFTY': { token: 'NSE_INDEX|Nifty Bank', brexchange: 'NSE_INDEX' },
  'NFO:NIFTY24JUN24900FUT': { token: 'NSE_FO|35006', brexchange: 'NFO' },
  'NSE:BADTOKEN': { token: '', brexchange: 'NSE' },
};

describe('Upstox: the dialect', () => {
  const running: Array<{ adapter: UpstoxAdapter; fake: FakeUpstox }> = [];
  afterEach(async () => {
    for (const { adapter, fake } of running.splice(0)) {
      await adapter.stop();
      await fake.close();
    }
  });

  async function setup(options: Partial<UpstoxAdapterOptions> = {}, token = 'upstox-token') {
    const fake = await FakeUpstox.start({ accessToken: 'upstox-token', pingMs: 50 });
    const publisher = new MemoryPublisher();
    const statuses: FeedStatusEvent[] = [];
    const adapter = new UpstoxAdapter({
      feed: FEED,
      user: 'alice',
      url: fake.url,
      symbols: { lookup: (broker, exchange, symbol) => (broker === 'upstox' ? MASTER[`${exchange}:${symbol}`] : undefined) },
      credentials: { load: async () => ({ apiKey: 'upstox-app-key', accessToken: token }) },
      publisher,
      clock: systemClock,
      logger: silentLogger(),
      silenceMs: 2000,
      backoff: { initialMs: 50, maxMs: 200, jitter: 0 },
      authRetryMs: 60_000,
      batchDelayMs: 20,
      ...options,
    } satisfies BrokerFeedOptions & SessionOptions);
    adapter.onStatus((event) => statuses.push(event));
    running.push({ adapter, fake });
    await adapter.start();
    return { fake, publisher, adapter, statuses };
  }

  const live = (adapter: UpstoxAdapter) => until(() => adapter.status() === 'live', 'live');
  const stream = (key: string) => {
    const [exchange, symbol] = key.split(':') as [string, string];
    return { exchange, symbol };
  };

  it('opens the v3 feed URL the SDK opens, with the bearer header and nothing else to authenticate, and follows its redirect', async () => {
    const connect = VECTORS.find((v) => v.name === 'upstox/connect')!;
    expect(UPSTOX_FEED_URL).toBe(connect.url);
    const { fake, adapter } = await setup({}, 'Bearer upstox-token');
    await live(adapter);
    expect(fake.attempts).toEqual([{ token: 'upstox-token', authorization: 'Bearer upstox-token', path: UPSTOX_PATH, accepted: true }]);
    expect(fake.redeemed.map((r) => ({ code: r.code, accepted: r.accepted }))).toEqual([{ code: fake.codes[0], accepted: true }]);
    expect(Object.keys(connect.headers!)).toEqual(['Authorization']);
  });

  it('pings Upstox itself, which sends no heartbeat of its own: a WebSocket ping every wsPingMs (30 s unless set)', async () => {
    const quick = await setup({ wsPingMs: 50 });
    await live(quick.adapter);
    await until(() => quick.fake.pingsReceived >= 3, 'three pings from the adapter');
    const usual = await setup();
    await live(usual.adapter);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(usual.fake.pingsReceived).toBe(0);
  });

  it('an upgrade answered 401 is a refusal: down with Upstox’s reason, no retry loop', async () => {
    const { fake, adapter, statuses } = await setup({}, 'stale-token');
    await until(() => adapter.status() === 'down', 'down');
    expect(adapter.statusMessage()).toMatch(/^Upstox refused the access token \(HTTP 401\)/);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(fake.attempts).toHaveLength(1);
    expect(statuses.map((e) => e.status)).toEqual(['reconnecting', 'down']);
  });

  it('without an access token: down, never dials', async () => {
    const fake = await FakeUpstox.start({ accessToken: 'upstox-token' });
    const adapter = new UpstoxAdapter({
      feed: FEED, user: 'alice', url: fake.url, symbols: { lookup: () => undefined },
      credentials: { load: async () => ({ apiKey: 'k', accessToken: '' }) },
      publisher: new MemoryPublisher(), clock: systemClock, logger: silentLogger(),
    });
    running.push({ adapter, fake });
    await adapter.start();
    await until(() => adapter.status() === 'down', 'down');
    expect(adapter.statusMessage()).toMatch(/^No Upstox credentials for user alice/);
    expect(fake.attempts).toEqual([]);
  });

  it('sends JSON requests as binary frames: one sub per mode, split at maxKeysPerMessage, keys in order', async () => {
    const { fake, adapter } = await setup({ maxKeysPerMessage: 2 });
    await live(adapter);
    for (const [key, mode] of [['NSE:RELIANCE', 1], ['NSE:INFY', 1], ['NSE:TCS', 1], ['NSE_INDEX:NIFTY', 2], ['NSE_INDEX:BANKNIFTY', 3], ['NFO:NIFTY24JUN24900FUT', 2]] as const) {
      expect(await adapter.subscribe(stream(key), mode, 5)).toMatchObject({ ok: true });
    }
    await until(() => fake.held(1).size === 6, 'six instruments upstream');
    const requests = fake.requestsOn(1);
    expect(requests.every((r) => r.binary)).toBe(true);
    expect(requests.map((r) => [r.method, r.data])).toEqual([
      ['sub', { mode: 'ltpc', instrumentKeys: ['NSE_EQ|INE002A01018', 'NSE_EQ|INE009A01021'] }],
      ['sub', { mode: 'ltpc', instrumentKeys: ['NSE_EQ|INE467B01029'] }],
      ['sub', { mode: 'full', instrumentKeys: ['NSE_INDEX|Nifty 50', 'NSE_INDEX|Nifty Bank'] }],
      ['sub', { mode: 'full', instrumentKeys: ['NSE_FO|35006'] }],
    ]);
    for (const r of requests) {
      expect(Object.keys(JSON.parse(r.raw) as object)).toEqual(['guid', 'method', 'data']);
      expect(r.guid).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    }
    expect(new Set(requests.map((r) => r.guid)).size).toBe(requests.length);
    expect(adapter.stats().messagesSent).toBe(4);
  });

  it('a mode change is change_mode (nothing for Quote ↔ Depth, both full); an unsubscribe is unsub without a mode', async () => {
    const { fake, adapter } = await setup();
    await live(adapter);
    const sent = () => fake.requestsOn(1).map((r) => JSON.parse(r.raw) as { method: string; data: unknown });
    await adapter.subscribe(RELIANCE, 1, 5);
    await until(() => fake.held(1).get(RELIANCE_KEY) === 'ltpc', 'ltpc');
    await adapter.subscribe(RELIANCE, 3, 5);
    await until(() => fake.held(1).get(RELIANCE_KEY) === 'full', 'full');
    await adapter.subscribe(RELIANCE, 2, 5);
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(sent().length).toBe(2);
    await adapter.subscribe(RELIANCE, 1, 5);
    await until(() => fake.held(1).get(RELIANCE_KEY) === 'ltpc', 'back to ltpc');
    await adapter.unsubscribe(RELIANCE);
    await until(() => fake.held(1).size === 0, 'unsubscribed');
    expect(sent().map(({ method, data }) => ({ method, data }))).toEqual([
      { method: 'sub', data: { mode: 'ltpc', instrumentKeys: [RELIANCE_KEY] } },
      { method: 'change_mode', data: { mode: 'full', instrumentKeys: [RELIANCE_KEY] } },
      { method: 'change_mode', data: { mode: 'ltpc', instrumentKeys: [RELIANCE_KEY] } },
      { method: 'unsub', data: { instrumentKeys: [RELIANCE_KEY] } },
    ]);
    expect(fake.requestsOn(1).every((r) => r.binary)).toBe(true);
  });

  it('request shapes match the SDK’s vectors', () => {
    const text = (name: string) => JSON.parse(VECTORS.find((v) => v.name === name)!.text!) as unknown;
    const guid = () => 'G';
    const strip = (request: object) => ({ ...request, guid: 'G' });
    const [sub] = buildUpstoxRequests([], [{ key: 'NSE_INDEX|Nifty 50', mode: 'full', before: undefined }, { key: RELIANCE_KEY, mode: 'full', before: undefined }], 100, guid);
    expect(sub).toEqual(strip(text('upstox/open_initial_subscribe') as object));
    const [change] = buildUpstoxRequests([], [{ key: 'NSE_EQ|INE009A01021', mode: 'full', before: 'ltpc' }, { key: 'NSE_FO|45450', mode: 'full', before: 'ltpc' }], 100, guid);
    expect(change).toEqual(strip(text('upstox/change_mode_full') as object));
    const [unsub] = buildUpstoxRequests(['NSE_INDEX|Nifty 50'], [], 100, guid);
    expect(unsub).toEqual(strip(text('upstox/unsubscribe') as object));
    expect(buildUpstoxRequests([], [{ key: RELIANCE_KEY, mode: 'full', before: 'full' }], 100, guid)).toEqual([]);
  });

  it('resolves symbol-master rows to instrument keys', () => {
    expect(upstoxInstrumentKey({ token: RELIANCE_KEY, brexchange: 'NSE' })).toBe(RELIANCE_KEY);
    expect(upstoxInstrumentKey({ token: 'NSE_INDEX|Nifty 50', brexchange: 'NSE_INDEX' })).toBe('NSE_INDEX|Nifty 50');
    expect(upstoxInstrumentKey({ token: '45450', brexchange: 'NFO' })).toBe('NSE_FO|45450');
    expect(upstoxInstrumentKey({ token: 'INE002A01018', brexchange: 'NSE' })).toBe(RELIANCE_KEY);
    expect(upstoxInstrumentKey({ token: '12345', brexchange: 'MCX_FO' })).toBe('MCX_FO|12345');
    expect(upstoxInstrumentKey({ token: '', brexchange: 'NSE' })).toBeUndefined();
    expect(upstoxInstrumentKey({ token: 'nse_eq|x', brexchange: 'NSE' })).toBeUndefined();
    expect(upstoxInstrumentKey({ token: '1', brexchange: 'NOWHERE' })).toBeUndefined();
  });

  it('refuses a symbol without a usable key, and a subscription past a per-mode limit', async () => {
    const { adapter } = await setup({ modeLimits: { ltpc: { alone: 2, mixed: 1 }, full: { alone: 1, mixed: 1 } } });
    expect(await adapter.subscribe(stream('NSE:BADTOKEN'), 1, 5)).toEqual({ ok: false, message: 'Token not found for BADTOKEN on NSE' });
    expect(await adapter.subscribe(stream('NSE:RELIANCE'), 1, 5)).toMatchObject({ ok: true });
    expect(await adapter.subscribe(stream('NSE:INFY'), 1, 5)).toMatchObject({ ok: true });
    expect(await adapter.subscribe(stream('NSE:TCS'), 1, 5)).toEqual({
      ok: false,
      message: 'Upstox subscription limit reached (2 ltpc instruments per connection); cannot add TCS on NSE',
    });
    // A full instrument alongside two ltpc ones: ltpc's mixed limit is 1.
    expect(await adapter.subscribe(stream('NSE_INDEX:NIFTY'), 3, 5)).toMatchObject({ ok: false, message: expect.stringMatching(/1 ltpc instruments per connection with other modes/) });
    // Upgrading one of the two leaves one of each: within the mixed limits.
    expect(await adapter.subscribe(stream('NSE:INFY'), 3, 5)).toEqual({ ok: true, depth: 5 });
    await adapter.unsubscribe(stream('NSE:RELIANCE'));
    expect(await adapter.subscribe(stream('NSE:TCS'), 1, 5)).toMatchObject({ ok: true });
  });

  it('subscriptions made together cannot pass a per-mode limit together', async () => {
    const { adapter } = await setup({ modeLimits: { ltpc: { alone: 2, mixed: 2 } } });
    const results = await Promise.all(['NSE:RELIANCE', 'NSE:INFY', 'NSE:TCS'].map((key) => adapter.subscribe(stream(key), 1, 5)));
    expect(results.map((r) => r.ok)).toEqual([true, true, false]);
    expect(adapter.stats().tokens).toBe(2);
  });

  it('streams the vector frames and publishes them with OpenAlgo’s field names', async () => {
    const { fake, adapter, publisher } = await setup();
    await live(adapter);
    await until(() => adapter.marketStatuses().get('NSE_EQ') === 'NORMAL_OPEN', 'market_info');
    await adapter.subscribe(RELIANCE, 1, 5);
    await adapter.subscribe(stream('NSE_INDEX:NIFTY'), 2, 5);
    await until(() => fake.held(1).size === 2, 'subscribed');
    const ltpTopic = formatTopic(FEED, 'NSE', 'RELIANCE', 1);

    fake.push(upstoxVectorFrame(VECTORS, 'upstox/market_info_first'));
    fake.push(upstoxVectorFrame(VECTORS, 'upstox/ltpc_nse_eq_reliance'));
    await until(() => publisher.on(ltpTopic).length === 1, 'the LTP tick');
    expect(adapter.marketStatuses().get('NCD_FO')).toBe('CLOSING_END');
    expect(publisher.on(ltpTopic)[0]).toEqual({
      symbol: 'RELIANCE', exchange: 'NSE', token: RELIANCE_KEY, mode: 1,
      ltp: 2950.55, ltq: 25, ltt: 1718178368000, cp: 2921.15, timestamp: 1718178369123,
    });
    expect(publisher.messages.find((m) => m.topic === ltpTopic)!.payload).toContain('"cp":2921.15');

    // RELIANCE to Depth: a full snapshot, then a depth-only update that carries the last LTP.
    await adapter.subscribe(RELIANCE, 3, 5);
    await until(() => fake.held(1).get(RELIANCE_KEY) === 'full', 'full');
    const depthTopic = formatTopic(FEED, 'NSE', 'RELIANCE', 3);
    fake.push(upstoxVectorFrame(VECTORS, 'upstox/full_nse_eq_depth5'));
    fake.push(upstoxVectorFrame(VECTORS, 'upstox/full_missing_ltpc'));
    await until(() => publisher.on(depthTopic).length === 2, 'two depth ticks');
    const [full, partial] = publisher.on(depthTopic) as [Record<string, any>, Record<string, any>];
    expect(full).toMatchObject({
      symbol: 'RELIANCE', exchange: 'NSE', token: RELIANCE_KEY, mode: 3, ltp: 2950.55, ltq: 25, cp: 2921.15,
      open: 2930, high: 2961.4, low: 2925.1, close: 2921.15, volume: 7512345, average_price: 2944.87,
      total_buy_quantity: 412345, total_sell_quantity: 398765, last_trade_quantity: 25, change: 29.4, change_percent: 1.01,
    });
    expect(full.depth.buy[0]).toEqual({ price: 2950.5, quantity: 120, orders: 0 });
    expect(full.depth.sell[4]).toEqual({ price: 2950.8, quantity: 180, orders: 0 });
    expect(full.depth.buy).toHaveLength(5);
    expect(partial).toMatchObject({ ltp: 2950.55, cp: 2921.15, close: 2921.15 });
    expect(partial.depth.buy[0]).toEqual({ price: 2950.45, quantity: 100, orders: 0 });
    expect(adapter.stats().carried).toBe(1);

    // Several instruments in one frame: only the held ones are published; an index full feed.
    const niftyDepth = formatTopic(FEED, 'NSE_INDEX', 'NIFTY', 3);
    fake.push(upstoxVectorFrame(VECTORS, 'upstox/full_nse_index_nifty'));
    fake.push(upstoxVectorFrame(VECTORS, 'upstox/multi_instrument_live'));
    await until(() => publisher.on(niftyDepth).length === 1 && publisher.on(ltpTopic).length === 2, 'index tick and the multi frame');
    expect(publisher.on(niftyDepth)[0]).toMatchObject({ symbol: 'NIFTY', exchange: 'NSE_INDEX', token: 'NSE_INDEX|Nifty 50', mode: 3 });
    expect(publisher.on(ltpTopic)[1]).toMatchObject({ ltp: 2950.6, ltq: 10, mode: 1 });
    expect(adapter.stats()).toMatchObject({ invalid: 0 });
    expect(adapter.stats().unrouted).toBeGreaterThanOrEqual(3);
  });

  it('skips undecodable vector frames and keeps the connection', async () => {
    const { fake, adapter, publisher } = await setup();
    await live(adapter);
    await adapter.subscribe(RELIANCE, 1, 5);
    await until(() => fake.held(1).size === 1, 'subscribed');
    for (const name of ['upstox/truncated_full', 'upstox/truncated_varint', 'upstox/invalid_utf8_key', 'upstox/reserved_wire_type']) {
      fake.push(upstoxVectorFrame(VECTORS, name));
    }
    fake.push(ltpcFrame(RELIANCE_KEY, 2951));
    const topic = formatTopic(FEED, 'NSE', 'RELIANCE', 1);
    await until(() => publisher.on(topic).length === 1, 'the tick after bad frames');
    expect(publisher.on(topic)[0]!.ltp).toBe(2951);
    expect(adapter.stats().invalid).toBe(4);
    expect(fake.connections).toBe(1);
  });

  it('a text frame refusing the token ends the session as a refusal', async () => {
    const { fake, adapter } = await setup();
    await live(adapter);
    fake.sendText(JSON.stringify({ status: 'failed', error: 'Invalid token used to access API' }));
    await until(() => adapter.status() === 'down', 'down');
    expect(adapter.statusMessage()).toMatch(/^Upstox refused the access token \(Upstox said/);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(fake.connections).toBe(1);
  });

  it('WebSocket pings keep a feed without data alive past silenceMs', async () => {
    const { fake, adapter } = await setup({ silenceMs: 300 });
    await live(adapter);
    await new Promise((resolve) => setTimeout(resolve, 900));
    expect(adapter.status()).toBe('live');
    expect(fake.connections).toBe(1);
  });
});

describe('Upstox: the test frame writer', () => {
  it('writes every vector’s input as a frame the decoder reads as it reads the vector', () => {
    const withInput = VECTORS.filter((v) => v.direction === 'server->client' && v.input && v.hex);
    expect(withInput.length).toBeGreaterThan(10);
    for (const vector of withInput) {
      const ours = decodeUpstoxFeed(encodeFeedResponse(vector.input!));
      const theirs = decodeUpstoxFeed(Buffer.from(vector.hex!, 'hex'));
      expect(ours, vector.name).toEqual(theirs);
    }
  });
});
