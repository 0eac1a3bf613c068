/**
 * Protocol details OpenAlgo's own clients use, through a real gateway over real sockets:
 * - deep-book symbol suffixes (`RELIANCE:20`, `:30`, `:50`): the suffix stays in the stream, the
 *   topic and `market_data.symbol`; the adapter is asked for that depth; a feed that has no such
 *   book answers per symbol (tickcast's own feeds as OpenAlgo's Zerodha adapter does);
 * - `depth_level` as another name of `depth` (`depth` wins, the only one OpenAlgo reads);
 * - analyzer-mode order updates (`ANALYZE_<user>_orders`) reach that user's `subscribe_orders`
 *   clients, verbatim, and no one else.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Adapter, FeedStatus, FeedStatusEvent, StreamRef, SubscribeResult } from '../../src/feed.js';
import { ZmqPublisher } from '../../src/bus/zeromq.js';
import type { Mode } from '../../src/protocol/modes.js';
import { type Message, TestClient, sleep, waitUntil } from '../helpers/client.js';
import { type TestInstance, startTestInstance } from '../helpers/instance.js';

/** A feed that records what it is asked and answers with `answer` (a deep book, or none). */
class DeepBookAdapter implements Adapter {
  readonly feed = 'deepbook';
  readonly broker = 'fyers';
  readonly calls: Array<{ stream: StreamRef; mode: Mode; depth: number }> = [];
  answer: (stream: StreamRef, depth: number) => SubscribeResult = (_stream, depth) => ({ ok: true, depth });
  async start(): Promise<void> {}
  async stop(): Promise<void> {}
  async subscribe(stream: StreamRef, mode: Mode, depth: number): Promise<SubscribeResult> {
    this.calls.push({ stream: { ...stream }, mode, depth });
    return this.answer(stream, depth);
  }
  async unsubscribe(): Promise<void> {}
  status(): FeedStatus {
    return 'live';
  }
  onStatus(_listener: (event: FeedStatusEvent) => void): void {}
}

let gw: TestInstance;
let publisher: ZmqPublisher;
const deep = new DeepBookAdapter();
let simKey: string;
let dhanKey: string;
let fyersKey: string;

beforeAll(async () => {
  // The simulator for simulated brokers, external publishers on the bus for dhan's users (as
  // OpenAlgo's own Dhan adapter would publish), and a deep-book feed for fyers' users.
  gw = await startTestInstance({ TICKCAST_BUS_BROKERS: 'dhan' });
  expect(gw.gateway.addAdapter({ adapter: deep, brokers: ['fyers'] })).toBeUndefined();
  publisher = new ZmqPublisher({ endpoint: gw.busEndpoint, batch: false });
  simKey = await gw.createKey('simuser', 'simulator');
  dhanKey = await gw.createKey('dhanuser', 'dhan');
  fyersKey = await gw.createKey('fyersuser', 'fyers');
});
afterAll(async () => {
  await publisher.close();
  await gw.stop();
});

/** Publishes `payload` on `topic` until `client` has a message matching `match` (slow joiner). */
async function publishUntil(topic: string, payload: string, client: TestClient, match: (m: Message) => boolean): Promise<Message> {
  const received = client.next(match, 10_000);
  const timer = setInterval(() => publisher.publish(topic, payload), 25);
  try {
    return await received;
  } finally {
    clearInterval(timer);
  }
}

const book = (levels: number): string =>
  JSON.stringify({
    ltp: 1418.5,
    depth: {
      buy: Array.from({ length: levels }, (_, i) => ({ price: 1418.4 - i / 10, quantity: 10 + i, orders: 1 })),
      sell: Array.from({ length: levels }, (_, i) => ({ price: 1418.6 + i / 10, quantity: 20 + i, orders: 2 })),
    },
  });

describe('deep-book symbol suffixes', () => {
  it('on the bus: the suffix stays in the stream, the topic and market_data.symbol, apart from the plain symbol', async () => {
    const deepClient = await TestClient.authenticated(gw.url, dhanKey);
    const plainClient = await TestClient.authenticated(gw.url, dhanKey);
    const reply = await deepClient.request({ action: 'subscribe', symbols: [{ symbol: 'RELIANCE:20', exchange: 'NSE' }], mode: 3 });
    // No adapter reports a depth here: the reply says what was asked (the suffix's 20 levels).
    expect(reply).toStrictEqual({
      type: 'subscribe',
      status: 'success',
      subscriptions: [{ symbol: 'RELIANCE:20', exchange: 'NSE', status: 'success', mode: 'Depth', depth: 20, broker: 'dhan' }],
      message: 'Subscription processing complete',
      broker: 'dhan',
    });
    expect((await plainClient.request({ action: 'subscribe', symbols: [{ symbol: 'RELIANCE', exchange: 'NSE' }], mode: 3 })).status).toBe('success');

    const twenty = book(20);
    const tick = await publishUntil('NSE_RELIANCE:20_DEPTH', twenty, deepClient, (m) => m.type === 'market_data');
    expect(tick).toStrictEqual({ type: 'market_data', symbol: 'RELIANCE:20', exchange: 'NSE', mode: 3, data: JSON.parse(twenty), broker: 'dhan' });
    expect(deepClient.raw.some((text) => text.includes(twenty))).toBe(true);
    const five = book(5);
    expect(await publishUntil('NSE_RELIANCE_DEPTH', five, plainClient, (m) => m.type === 'market_data')).toMatchObject({ symbol: 'RELIANCE', data: JSON.parse(five) });

    // Barriers: a reply is written after every tick already sent on the same socket.
    await deepClient.request({ action: 'ping' });
    await plainClient.request({ action: 'ping' });
    for (const m of deepClient.messages.filter((m) => m.type === 'market_data')) expect(m.symbol).toBe('RELIANCE:20');
    for (const m of plainClient.messages.filter((m) => m.type === 'market_data')) expect(m.symbol).toBe('RELIANCE');

    expect(await deepClient.request({ action: 'unsubscribe', symbols: [{ symbol: 'RELIANCE:20', exchange: 'NSE', mode: 3 }] })).toMatchObject({
      status: 'success',
      successful: [{ symbol: 'RELIANCE:20', exchange: 'NSE', status: 'success', broker: 'dhan' }],
    });
    await Promise.all([deepClient.close(), plainClient.close()]);
  });

  it("the feed's adapter is asked for the suffix's depth, the symbol whole; its answer is the reply's depth", async () => {
    const client = await TestClient.authenticated(gw.url, fyersKey);
    deep.calls.length = 0;
    const reply = await client.request({
      action: 'subscribe',
      symbols: [{ symbol: 'TCS:50', exchange: 'NSE' }, { symbol: 'INFY:30', exchange: 'NSE' }, { symbol: 'SBIN', exchange: 'NSE' }],
      mode: 3,
      depth: 20,
    });
    expect(deep.calls).toEqual([
      { stream: { exchange: 'NSE', symbol: 'TCS:50' }, mode: 3, depth: 50 },
      { stream: { exchange: 'NSE', symbol: 'INFY:30' }, mode: 3, depth: 30 },
      { stream: { exchange: 'NSE', symbol: 'SBIN' }, mode: 3, depth: 20 },
    ]);
    expect(reply.subscriptions.map((s: { symbol: string; depth: number }) => [s.symbol, s.depth])).toEqual([['TCS:50', 50], ['INFY:30', 30], ['SBIN', 20]]);

    // Its ticks keep the suffix too.
    const fifty = book(50);
    expect(await publishUntil('deepbook|NSE_TCS:50_DEPTH', fifty, client, (m) => m.type === 'market_data')).toStrictEqual({
      type: 'market_data', symbol: 'TCS:50', exchange: 'NSE', mode: 3, data: JSON.parse(fifty), broker: 'fyers',
    });

    // After the adapter restarts, it is asked again for the same depths.
    deep.calls.length = 0;
    await gw.gateway.replay('deepbook');
    expect(deep.calls.map((c) => [c.stream.symbol, c.depth]).sort()).toEqual([['INFY:30', 30], ['SBIN', 20], ['TCS:50', 50]]);
    await client.close();
  });

  it('a feed without that book answers per symbol, and the rest of the request proceeds', async () => {
    // A deep-book feed that has no 50-level book for this exchange, in its own words.
    deep.answer = (stream, depth) => (depth > 20 ? { ok: false, message: `Depth ${depth} is not available for ${stream.symbol} on ${stream.exchange}` } : { ok: true, depth: 5 });
    const fyers = await TestClient.authenticated(gw.url, fyersKey);
    const reply = await fyers.request({ action: 'subscribe', symbols: [{ symbol: 'ITC:50', exchange: 'BSE' }, { symbol: 'ITC', exchange: 'BSE' }], mode: 3 });
    expect(reply.status).toBe('partial');
    expect(reply.subscriptions).toStrictEqual([
      { symbol: 'ITC:50', exchange: 'BSE', status: 'error', message: 'Depth 50 is not available for ITC:50 on BSE', broker: 'fyers' },
      { symbol: 'ITC', exchange: 'BSE', status: 'success', mode: 'Depth', depth: 5, broker: 'fyers' },
    ]);
    deep.answer = (_stream, depth) => ({ ok: true, depth });
    await fyers.close();

    // tickcast's own feeds have no deeper book: as OpenAlgo's Zerodha adapter, the suffixed
    // symbol is not in the symbol master, an error for that symbol alone.
    const sim = await TestClient.authenticated(gw.url, simKey);
    const simReply = await sim.request({ action: 'subscribe', symbols: [{ symbol: 'RELIANCE:20', exchange: 'NSE' }, { symbol: 'RELIANCE', exchange: 'NSE' }], mode: 3, depth: 20 });
    expect(simReply.status).toBe('partial');
    expect(simReply.subscriptions).toStrictEqual([
      { symbol: 'RELIANCE:20', exchange: 'NSE', status: 'error', message: 'Token not found for RELIANCE:20 on NSE', broker: 'simulator' },
      { symbol: 'RELIANCE', exchange: 'NSE', status: 'success', mode: 'Depth', depth: 5, broker: 'simulator' },
    ]);
    expect((await sim.marketData('RELIANCE', 'NSE')).data.depth.buy).toHaveLength(5);
    await sim.close();
  });
});

describe('depth_level, the name in OpenAlgo\'s docs for depth', () => {
  it('is read when depth is absent; depth wins when both are given', async () => {
    const client = await TestClient.authenticated(gw.url, fyersKey);
    deep.calls.length = 0;
    const alias = await client.request({ action: 'subscribe', symbol: 'HDFCBANK', exchange: 'NSE', mode: 3, depth_level: 20 });
    const both = await client.request({ action: 'subscribe', symbol: 'ICICIBANK', exchange: 'NSE', mode: 3, depth: 5, depth_level: 20 });
    expect(deep.calls.map((c) => [c.stream.symbol, c.depth])).toEqual([['HDFCBANK', 20], ['ICICIBANK', 5]]);
    expect([alias.subscriptions[0].depth, both.subscriptions[0].depth]).toEqual([20, 5]);
    await client.close();

    // On the bus, where no adapter reports a depth, the reply echoes the one asked for.
    const dhan = await TestClient.authenticated(gw.url, dhanKey);
    expect((await dhan.request({ action: 'subscribe', symbol: 'SBIN', exchange: 'NSE', mode: 3, depth_level: 20 })).subscriptions[0]).toMatchObject({ depth: 20 });
    expect((await dhan.request({ action: 'subscribe', symbol: 'SBIN', exchange: 'NSE', mode: 3, depth_level: 20, depth: 5 })).subscriptions[0]).toMatchObject({ depth: 5 });
    await dhan.close();
  });
});

describe('analyzer-mode order updates (ANALYZE_<user>_orders)', () => {
  it("reach that user's subscribe_orders clients, verbatim, and no one else", async () => {
    const aliceKey = await gw.createKey('alice', 'zerodha');
    const bobKey = await gw.createKey('bob', 'zerodha');
    const alice = await TestClient.authenticated(gw.url, aliceKey);
    const aliceQuiet = await TestClient.authenticated(gw.url, aliceKey); // never asks for order updates
    const bob = await TestClient.authenticated(gw.url, bobKey);
    // Asked as alice, then re-authenticated as bob: now bob's client, which has not asked.
    const switched = await TestClient.authenticated(gw.url, aliceKey);
    for (const client of [alice, bob, switched]) expect(await client.request({ action: 'subscribe_orders' })).toMatchObject({ status: 'success' });
    expect(await switched.request({ action: 'authenticate', api_key: bobKey })).toMatchObject({ status: 'success', user_id: 'bob' });

    // As OpenAlgo's subscribers/wsproxy_subscriber.py builds it for a sandbox order.
    const analyze = JSON.stringify({
      type: 'order_update', user_id: 'alice', mode: 'analyze', broker: 'zerodha', orderid: 'SB-1', symbol: 'RELIANCE', exchange: 'NSE',
      action: 'BUY', quantity: 1, price: 0.0, trigger_price: 0, pricetype: 'MARKET', product: 'MIS', order_status: 'complete',
      filled_quantity: 1, pending_quantity: 0, average_price: 1418.5, rejection_reason: '',
    }).replace(/,"/g, ', "').replace(/":/g, '": ');
    const isOrder = (m: Message): boolean => m.type === 'order_update';
    expect(await publishUntil('ANALYZE_alice_orders', analyze, alice, isOrder)).toStrictEqual(JSON.parse(analyze));
    // And a live one for bob, so bob's clients have something to receive.
    const live = '{"type": "order_update", "user_id": "bob", "mode": "live", "orderid": "L-1"}';
    await publishUntil('ZERODHA_bob_orders', live, bob, isOrder);

    for (const client of [alice, aliceQuiet, bob, switched]) await client.request({ action: 'ping' });
    const orderFrames = (client: TestClient): string[] => client.raw.filter((text) => text.includes('"order_update"'));
    expect(orderFrames(alice).length).toBeGreaterThan(0);
    for (const text of orderFrames(alice)) expect(text).toBe(analyze); // byte for byte
    expect(orderFrames(aliceQuiet)).toEqual([]);
    for (const text of orderFrames(bob)) expect(text).toBe(live);
    expect(orderFrames(switched)).toEqual([]);
    await sleep(50);
    await Promise.all([alice, aliceQuiet, bob, switched].map((client) => client.close()));
  });

  it('also with a user name holding underscores, taken from the payload', async () => {
    const key = await gw.createKey('john_doe', 'zerodha');
    const client = await TestClient.authenticated(gw.url, key);
    await client.request({ action: 'subscribe_orders' });
    const payload = '{"type": "order_update", "user_id": "john_doe", "mode": "analyze", "orderid": "SB-9"}';
    expect(await publishUntil('ANALYZE_john_doe_orders', payload, client, (m) => m.type === 'order_update')).toMatchObject({ user_id: 'john_doe', orderid: 'SB-9' });
    await waitUntil(() => gw.gateway.busListener.counters.orderUpdates > 0, 'order updates counted');
    await client.close();
  });
});
