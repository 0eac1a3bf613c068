/**
 * Dhan's 20-level depth (`SYMBOL:20` at Depth) on its own socket, against the fake's depth
 * endpoint (docs/brokers/dhan.md): opened on the first `:20` stream and closed after the last,
 * code 23 and 25, at most 50 instruments, bid and ask packets paired into OpenAlgo's 20-level
 * Depth payload, reconnects, and the live feed unaffected by the depth socket's troubles.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { BrokerCredentials, BrokerInstrument } from '../../src/adapters/broker.js';
import { DhanAdapter, type DhanAdapterOptions } from '../../src/adapters/dhan/dhan-adapter.js';
import { systemClock } from '../../src/clock.js';
import type { FeedStatusEvent } from '../../src/feed.js';
import { silentLogger } from '../../src/observability/logger.js';
import type { Mode } from '../../src/protocol/modes.js';
import { formatTopic } from '../../src/protocol/topics.js';
import { type DhanVector, FakeDhan, dhanTicker, dhanVectorFrame, loadDhanVectors } from '../helpers/fake-dhan.js';
import { MemoryPublisher, SLOW, until } from '../helpers/broker-kit.js';

const FEED = 'dhan.alice';
const GOOD: BrokerCredentials = { apiKey: '', accessToken: 'dhan-token-day-1', clientCode: '1100012345' };
const RELIANCE = { exchange: 'NSE', symbol: 'RELIANCE' };
const RELIANCE_20 = { exchange: 'NSE', symbol: 'RELIANCE:20' };
const FUT = { exchange: 'NFO', symbol: 'NIFTY27JUN24FUT' };
const FUT_20 = { exchange: 'NFO', symbol: 'NIFTY27JUN24FUT:20' };

const MASTER = new Map<string, BrokerInstrument>([
  ['NSE:RELIANCE', { token: '2885', brexchange: 'NSE_EQ' }],
  ['NSE:TCS', { token: '11536', brexchange: 'NSE_EQ' }],
  ['BSE:RELIANCE', { token: '500325', brexchange: 'BSE_EQ' }],
  ['NFO:NIFTY27JUN24FUT', { token: '35001', brexchange: 'NSE_FNO' }],
]);
for (let i = 0; i < 51; i++) MASTER.set(`NSE:S${i}`, { token: String(200_000 + i), brexchange: 'NSE_EQ' });
const symbols = { lookup: (broker: string, exchange: string, symbol: string) => (broker === 'dhan' ? MASTER.get(`${exchange}:${symbol}`) : undefined) };

const topic = (stream: { exchange: string; symbol: string }, mode: Mode) => formatTopic(FEED, stream.exchange, stream.symbol, mode);

/** A vector's decoded side (`Bid` or `Ask`) of one instrument, as OpenAlgo's 20-level payload lists it. */
function decodedSide(vectors: readonly DhanVector[], name: string, securityId: number, type: 'Bid' | 'Ask'): unknown[] {
  const decoded = vectors.find((v) => v.name === `dhan/${name}`)!.decoded as { packets: Array<{ security_id: number; type: string; depth: unknown[] }> };
  return decoded.packets.find((p) => p.security_id === securityId && p.type === type)!.depth;
}

describe('Dhan 20-level depth (SYMBOL:20)', () => {
  const running: Array<{ adapter: DhanAdapter; fake: FakeDhan }> = [];
  afterEach(async () => {
    for (const { adapter, fake } of running.splice(0)) {
      await adapter.stop();
      await fake.close();
    }
  });

  async function setup(options: Partial<DhanAdapterOptions> = {}) {
    const fake = await FakeDhan.start({ accessToken: GOOD.accessToken, clientId: GOOD.clientCode!, pingMs: 50 });
    const publisher = new MemoryPublisher();
    const adapter = new DhanAdapter({
      feed: FEED,
      user: 'alice',
      url: fake.url,
      depthUrl: fake.depthUrl,
      symbols,
      credentials: { load: async () => GOOD },
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
    await adapter.start();
    await until(() => statuses.some((e) => e.status === 'live'), 'the live feed');
    return { fake, publisher, adapter, statuses };
  }

  /** The depth connection open now (there is at most one). */
  function depthConnection(fake: FakeDhan): number | undefined {
    const open = fake.openDepthConnections();
    expect(open.length).toBeLessThanOrEqual(1);
    return open[0];
  }

  it('publishes each bid and ask pair as one 20-level Depth tick on the `:20` stream, with the vectors’ values', async () => {
    const vectors = loadDhanVectors();
    const { fake, adapter, publisher } = await setup();
    expect(await adapter.subscribe(RELIANCE_20, 3, 20)).toEqual({ ok: true, depth: 20 });
    expect(await adapter.subscribe(FUT_20, 3, 5)).toEqual({ ok: true, depth: 20 });
    await until(() => publisher.on(topic(RELIANCE_20, 3)).length === 1 && publisher.on(topic(FUT_20, 3)).length === 1, 'both books');

    // The depth endpoint: the credentials in the query as on the live feed, without `version`.
    expect(fake.upgradesOf('depth')).toHaveLength(1);
    expect(fake.upgradesOf('depth')[0]).toMatchObject({ path: '/twentydepth', version: null, token: GOOD.accessToken, clientId: GOOD.clientCode, authType: '2', accepted: true });
    const connection = depthConnection(fake)!;
    expect(fake.requestsOn(connection).every((r) => r.RequestCode === 23)).toBe(true);
    expect([...fake.depthHeld(connection)].sort()).toEqual(['NSE_EQ:2885', 'NSE_FNO:35001']);

    // RELIANCE came as a bid frame then an ask frame: one tick for the pair.
    const [reliance] = publisher.on(topic(RELIANCE_20, 3));
    expect(Object.keys(reliance!)).toEqual(['symbol', 'exchange', 'mode', 'timestamp', 'depth', 'depth_level']);
    expect(reliance).toMatchObject({ symbol: 'RELIANCE:20', exchange: 'NSE', mode: 3, depth_level: 20 });
    expect(reliance!.depth.buy).toEqual(decodedSide(vectors, 'depth20_bid_nse_eq_reliance', 2885, 'Bid'));
    expect(reliance!.depth.sell).toEqual(decodedSide(vectors, 'depth20_ask_nse_eq_reliance', 2885, 'Ask'));

    // The future's asks stop after 8 levels: the other 12 are the zero levels OpenAlgo sends.
    const [future] = publisher.on(topic(FUT_20, 3));
    expect(future).toMatchObject({ symbol: 'NIFTY27JUN24FUT:20', exchange: 'NFO', mode: 3, depth_level: 20 });
    expect(future!.depth.buy).toEqual(decodedSide(vectors, 'depth20_pair_nse_fno_partial_asks', 35001, 'Bid'));
    expect(future!.depth.sell).toEqual(decodedSide(vectors, 'depth20_pair_nse_fno_partial_asks', 35001, 'Ask'));
    expect(future!.depth.sell.slice(8).every((level: { price: number }) => level.price === 0)).toBe(true);

    // A lone side waits for its other half; sides of instruments nobody holds are not published.
    fake.sendDepth(dhanVectorFrame(vectors, 'depth20_bid_nse_eq_reliance'));
    fake.sendDepth(dhanVectorFrame(vectors, 'depth20_two_instruments'));
    await until(() => adapter.stats().depth20.sides === 9, 'the extra sides');
    expect(publisher.on(topic(RELIANCE_20, 3))).toHaveLength(1);
    expect(publisher.on(topic(FUT_20, 3))).toHaveLength(2);
    fake.sendDepth(dhanVectorFrame(vectors, 'depth20_ask_nse_eq_reliance'));
    await until(() => publisher.on(topic(RELIANCE_20, 3)).length === 2, 'the completed pair');
    expect(adapter.stats().depth20).toMatchObject({ ticks: 4, unroutedSides: 2, invalid: 0 });
    expect(fake.problems).toEqual([]);
    expect(adapter.status()).toBe('live');
    expect(adapter.statusMessage()).toBeUndefined();
  });

  it('opens the depth socket on the first `:20` stream only and closes it after the last, unsubscribing with 25 meanwhile', async () => {
    const { fake, adapter, publisher } = await setup();
    expect(await adapter.subscribe(RELIANCE, 3, 5)).toMatchObject({ ok: true });
    await until(() => fake.held(fake.openConnections()[0]!).size === 1, 'the live subscription');
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(fake.depthConnections).toBe(0);

    expect(await adapter.subscribe(RELIANCE_20, 3, 20)).toMatchObject({ ok: true });
    expect(await adapter.subscribe(FUT_20, 3, 20)).toMatchObject({ ok: true });
    await until(() => fake.openDepthConnections().length === 1 && fake.depthHeld(depthConnection(fake)!).size === 2, 'the depth subscriptions');
    const first = depthConnection(fake)!;

    await adapter.unsubscribe(RELIANCE_20);
    await until(() => fake.depthHeld(first).size === 1, 'the depth unsubscribe');
    const unsubscribe = fake.requestsOn(first).at(-1)!;
    expect(unsubscribe).toMatchObject({ RequestCode: 25, InstrumentCount: 1, InstrumentList: [{ ExchangeSegment: 'NSE_EQ', SecurityId: '2885' }] });
    expect(fake.openDepthConnections()).toEqual([first]);

    await adapter.unsubscribe(FUT_20);
    await until(() => fake.openDepthConnections().length === 0, 'the depth socket closed');
    // No 25 for the last one: the disconnect request (12) ends the socket instead.
    expect(fake.requestsOn(first).map((r) => r.RequestCode)).toEqual([23, 25, 12]);
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(fake.depthConnections).toBe(1);
    expect(adapter.stats().depth20.connections).toBe(1);

    // The live feed never noticed; a new `:20` stream opens a new depth socket.
    fake.send(dhanTicker({ segment: 'NSE_EQ', securityId: 2885, ltp: 2950.55 }));
    await until(() => publisher.on(topic(RELIANCE, 1)).length === 1, 'a live tick');
    expect(fake.connections).toBe(1);
    expect(await adapter.subscribe(RELIANCE_20, 3, 20)).toMatchObject({ ok: true });
    await until(() => fake.openDepthConnections().length === 1, 'the depth socket again');
    await until(() => fake.depthHeld(depthConnection(fake)!).size === 1, 'the resubscription');
    expect(fake.depthConnections).toBe(2);
    expect(fake.problems).toEqual([]);
  });

  it('stop sends the disconnect request (12) on both sockets before closing them', async () => {
    const { fake, adapter, publisher } = await setup();
    expect(await adapter.subscribe(RELIANCE, 1, 5)).toMatchObject({ ok: true });
    expect(await adapter.subscribe(RELIANCE_20, 3, 20)).toMatchObject({ ok: true });
    await until(() => publisher.on(topic(RELIANCE_20, 3)).length === 1, 'the book');
    const live = fake.openConnections()[0]!;
    const depth = depthConnection(fake)!;
    await until(() => fake.held(live).size === 1, 'the live subscription');
    await adapter.stop();
    await until(() => fake.openConnections().length === 0 && fake.openDepthConnections().length === 0, 'both sockets closed');
    expect(fake.farewells().sort((a, b) => a.connection - b.connection)).toEqual(
      [{ connection: live, endpoint: 'feed' }, { connection: depth, endpoint: 'depth' }].sort((a, b) => a.connection - b.connection),
    );
    expect(fake.problems).toEqual([]);
  });

  it('5-level and 20-level depth of one instrument both flow, each from its own socket', async () => {
    const vectors = loadDhanVectors();
    const { fake, adapter, publisher } = await setup();
    expect(await adapter.subscribe(FUT, 3, 5)).toEqual({ ok: true, depth: 5 });
    expect(await adapter.subscribe(FUT_20, 3, 20)).toEqual({ ok: true, depth: 20 });
    const live = fake.openConnections()[0]!;
    await until(() => fake.held(live).size === 1 && fake.openDepthConnections().length === 1, 'both subscriptions');
    expect([...fake.held(live).get('NSE_FNO:35001')!.modes]).toEqual([3]);
    await until(() => publisher.on(topic(FUT_20, 3)).length === 1, 'the 20-level book');
    fake.send(dhanVectorFrame(vectors, 'full_nse_fno_nifty_fut'));
    await until(() => publisher.on(topic(FUT, 3)).length === 1, 'the 5-level book');

    const [five] = publisher.on(topic(FUT, 3));
    expect(five).toMatchObject({ symbol: 'NIFTY27JUN24FUT', mode: 3, depth_level: 5, ltp: 23310.4 });
    expect(five!.depth.buy).toHaveLength(5);
    const [twenty] = publisher.on(topic(FUT_20, 3));
    expect(twenty).toMatchObject({ symbol: 'NIFTY27JUN24FUT:20', mode: 3, depth_level: 20 });
    expect(twenty!.depth.buy).toHaveLength(20);
    // Each book only on its own stream.
    expect(new Set(publisher.messages.map((m) => m.topic))).toEqual(new Set([topic(FUT, 3), topic(FUT_20, 3)]));

    // Dropping the 20-level stream leaves the 5-level one subscribed.
    await adapter.unsubscribe(FUT_20);
    await until(() => fake.openDepthConnections().length === 0, 'the depth socket closed');
    expect([...fake.held(live).get('NSE_FNO:35001')!.modes]).toEqual([3]);
  });

  it('a `:20` stream at LTP rides the live feed, and moves to the depth socket and back with its mode', async () => {
    const { fake, adapter, publisher } = await setup();
    expect(await adapter.subscribe(RELIANCE_20, 1, 20)).toMatchObject({ ok: true });
    const live = fake.openConnections()[0]!;
    await until(() => fake.held(live).get('NSE_EQ:2885')?.modes.has(1) === true, 'the LTP subscription');
    fake.send(dhanTicker({ segment: 'NSE_EQ', securityId: 2885, ltp: 2950.55 }));
    await until(() => publisher.on(topic(RELIANCE_20, 1)).length === 1, 'the LTP tick');
    expect(publisher.on(topic(RELIANCE_20, 1))[0]).toMatchObject({ symbol: 'RELIANCE:20', ltp: 2950.55 });
    expect(fake.depthConnections).toBe(0);

    expect(await adapter.subscribe(RELIANCE_20, 3, 20)).toEqual({ ok: true, depth: 20 });
    await until(() => fake.held(live).get('NSE_EQ:2885')!.modes.size === 0 && fake.openDepthConnections().length === 1, 'the move to the depth socket');
    await until(() => publisher.on(topic(RELIANCE_20, 3)).length === 1, 'the 20-level book');

    expect(await adapter.subscribe(RELIANCE_20, 2, 20)).toMatchObject({ ok: true });
    await until(() => fake.held(live).get('NSE_EQ:2885')!.modes.has(2) && fake.openDepthConnections().length === 0, 'the move back');
    expect(fake.problems).toEqual([]);
  });

  it('a dropped depth socket reconnects and resubscribes; the live feed stays live throughout', async () => {
    const { fake, adapter, publisher, statuses } = await setup();
    expect(await adapter.subscribe(RELIANCE, 1, 5)).toMatchObject({ ok: true });
    expect(await adapter.subscribe(RELIANCE_20, 3, 20)).toMatchObject({ ok: true });
    expect(await adapter.subscribe(FUT_20, 3, 20)).toMatchObject({ ok: true });
    await until(() => publisher.on(topic(RELIANCE_20, 3)).length === 1 && publisher.on(topic(FUT_20, 3)).length === 1, 'the first books');
    const mark = statuses.length;
    const first = depthConnection(fake)!;

    fake.dropDepth();
    await until(() => fake.openDepthConnections().some((id) => id !== first), 'the depth reconnect');
    const second = depthConnection(fake)!;
    await until(() => fake.depthHeld(second).size === 2, 'the resubscription');
    expect(fake.requestsOn(second).map((r) => [r.RequestCode, r.InstrumentCount])).toEqual([[23, 2]]);
    await until(() => publisher.on(topic(RELIANCE_20, 3)).length === 2 && publisher.on(topic(FUT_20, 3)).length === 2, 'the books again');

    fake.send(dhanTicker({ segment: 'NSE_EQ', securityId: 2885, ltp: 2950.55 }));
    await until(() => publisher.on(topic(RELIANCE, 1)).length === 1, 'a live tick');
    expect(statuses.slice(mark)).toEqual([]);
    expect(adapter.status()).toBe('live');
    expect(fake.connections).toBe(1);
    expect(fake.problems).toEqual([]);
  });

  it('a refused depth socket is reported and new `:20` streams refused, while the live feed keeps streaming', async () => {
    const { fake, adapter, publisher, statuses } = await setup(SLOW);
    fake.refuseDepth = 429;
    expect(await adapter.subscribe(RELIANCE, 1, 5)).toMatchObject({ ok: true });
    expect(await adapter.subscribe(RELIANCE_20, 3, 20)).toMatchObject({ ok: true });
    await until(() => /HTTP 429/.test(adapter.statusMessage() ?? ''), 'the refusal reported');
    const mark = statuses.length;

    expect(adapter.statusMessage()).toMatch(/^20-level depth \(SYMBOL:20\) is not streaming: Dhan refused the session \(20-level depth feed, client 1100012345, HTTP 429\)/);
    expect(adapter.statusMessage()).not.toContain(GOOD.accessToken);
    expect(adapter.status()).toBe('live');
    const refused = await adapter.subscribe(FUT_20, 3, 20);
    expect(refused).toMatchObject({ ok: false, message: expect.stringMatching(/^20-level depth is unavailable for NIFTY27JUN24FUT:20 on NFO: Dhan refused the session .*HTTP 429.* Subscribe NIFTY27JUN24FUT for 5-level depth meanwhile\.$/) });
    // A stream already held stays held.
    expect(await adapter.subscribe(RELIANCE_20, 3, 20)).toMatchObject({ ok: true });

    fake.send(dhanTicker({ segment: 'NSE_EQ', securityId: 2885, ltp: 2950.55 }));
    await until(() => publisher.on(topic(RELIANCE, 1)).length === 1, 'a live tick');
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(fake.upgradesOf('depth')).toHaveLength(1);
    expect(statuses.slice(mark)).toEqual([]);
    expect(adapter.status()).toBe('live');
  });

  it('a depth disconnect 807 is a refusal of the depth socket only', async () => {
    const { fake, adapter, publisher, statuses } = await setup(SLOW);
    expect(await adapter.subscribe(RELIANCE, 1, 5)).toMatchObject({ ok: true });
    expect(await adapter.subscribe(RELIANCE_20, 3, 20)).toMatchObject({ ok: true });
    await until(() => publisher.on(topic(RELIANCE_20, 3)).length === 1, 'the book');
    const mark = statuses.length;
    fake.disconnectDepth(807);
    await until(() => /disconnect 807/.test(adapter.statusMessage() ?? ''), 'the refusal reported');
    expect(adapter.statusMessage()).toMatch(/Dhan refused the session \(20-level depth feed, disconnect 807: access token is expired\)/);
    fake.send(dhanTicker({ segment: 'NSE_EQ', securityId: 2885, ltp: 2950.55 }));
    await until(() => publisher.on(topic(RELIANCE, 1)).length === 1, 'a live tick');
    expect(statuses.slice(mark)).toEqual([]);
    expect(fake.depthConnections).toBe(1);
  });

  it('refuses the 51st instrument per symbol with Dhan’s limit; one freed makes room', async () => {
    const { fake, adapter } = await setup({ batchDelayMs: 50 });
    const streams = Array.from({ length: 51 }, (_, i) => ({ exchange: 'NSE', symbol: `S${i}:20` }));
    const results = await Promise.all(streams.slice(0, 50).map((stream) => adapter.subscribe(stream, 3, 20)));
    expect(results.every((r) => r.ok)).toBe(true);
    expect(await adapter.subscribe(streams[50]!, 3, 20)).toEqual({
      ok: false,
      message: "Dhan's 20-level depth feed carries at most 50 instruments and all are in use: cannot add S50:20 on NSE; unsubscribe another :20 symbol, or subscribe S50 for 5-level depth",
    });
    // A stream already held is no 51st.
    expect(await adapter.subscribe(streams[0]!, 3, 20)).toMatchObject({ ok: true });
    await until(() => fake.openDepthConnections().length === 1 && fake.depthHeld(depthConnection(fake)!).size === 50, 'the 50 subscriptions');
    const connection = depthConnection(fake)!;
    expect(fake.requestsOn(connection).map((r) => [r.RequestCode, r.InstrumentCount])).toEqual([[23, 50]]);

    await adapter.unsubscribe(streams[0]!);
    expect(await adapter.subscribe(streams[50]!, 3, 20)).toEqual({ ok: true, depth: 20 });
    await until(() => fake.depthHeld(connection).has('NSE_EQ:200050') && !fake.depthHeld(connection).has('NSE_EQ:200000'), 'the swap');
    expect(fake.depthHeld(connection).size).toBe(50);
    expect(fake.openConnections()).toHaveLength(1);
    expect(fake.problems).toEqual([]);
  });
});
