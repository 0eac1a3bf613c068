/**
 * Feeds stay apart: the simulator's ticks reach only the users it serves, ticks on OpenAlgo's
 * bare topics (the instance's shared feed) reach only the users of the brokers it serves, and a
 * tick tagged with a feed nobody is on reaches no one. Bus-level messages (cache invalidation)
 * are handled.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ZmqPublisher } from '../../src/bus/zeromq.js';
import { TestClient, sleep, waitFor } from '../helpers/client.js';
import { type TestInstance, startTestInstance } from '../helpers/instance.js';

let gw: TestInstance;
let publisher: ZmqPublisher;

beforeAll(async () => {
  gw = await startTestInstance({ TICKCAST_BUS_BROKERS: 'zerodha,angel' });
  publisher = new ZmqPublisher({ endpoint: gw.busEndpoint });
  await sleep(300); // ZeroMQ slow joiner: let the PUB connect before publishing
});
afterAll(async () => {
  await publisher.close();
  await gw.stop();
});

/** Publishes until `done` holds (a tick sent before the subscription exists is simply missed). */
async function publishUntil(topic: string, payload: object, done: () => boolean): Promise<void> {
  const deadline = Date.now() + 5000;
  while (!done()) {
    if (Date.now() > deadline) throw new Error(`nothing arrived for ${topic}`);
    publisher.publish(topic, JSON.stringify(payload));
    await sleep(50);
  }
}

describe('feed isolation', () => {
  it("keeps simulator ticks from users of another broker, and the shared feed's from the simulator's users", async () => {
    const simUser = await TestClient.authenticated(gw.url, await gw.createKey('sim-user'));
    const zerodhaUser = await TestClient.authenticated(gw.url, await gw.createKey('kite-user', 'zerodha'));
    const symbols = [{ symbol: 'RELIANCE', exchange: 'NSE' }];
    expect((await simUser.request({ action: 'subscribe', symbols, mode: 1 })).status).toBe('success');
    // No adapter serves zerodha here, the shared feed does: any symbol is accepted.
    const reply = await zerodhaUser.request({ action: 'subscribe', symbols: [...symbols, { symbol: 'ANYTHING', exchange: 'NSE' }], mode: 1 });
    expect(reply.subscriptions.map((s: { status: string }) => s.status)).toEqual(['success', 'success']);
    expect(reply.broker).toBe('zerodha');

    // Simulator ticks reach the simulator user only.
    await simUser.marketData('RELIANCE');
    await sleep(300);
    expect(zerodhaUser.messages.filter((m) => m.type === 'market_data')).toEqual([]);

    // A bare OpenAlgo topic is the shared feed: its users receive it, the simulator's never.
    const shared = { symbol: 'RELIANCE', exchange: 'NSE', ltp: 99999.5, timestamp: 1 };
    const isShared = (m: Record<string, any>): boolean => m.type === 'market_data' && m.data.ltp === 99999.5;
    await publishUntil('NSE_RELIANCE_LTP', shared, () => zerodhaUser.messages.some(isShared));
    expect(zerodhaUser.messages.find(isShared)).toStrictEqual({ type: 'market_data', symbol: 'RELIANCE', exchange: 'NSE', mode: 1, data: shared, broker: 'zerodha' });
    await simUser.marketData('RELIANCE');
    expect(simUser.messages.some(isShared)).toBe(false);

    // A tick tagged with another feed reaches neither.
    simUser.drain();
    zerodhaUser.drain();
    for (let i = 0; i < 5; i++) {
      publisher.publish('otherfeed|NSE_RELIANCE_LTP', JSON.stringify({ ltp: 11111 }));
      await sleep(30);
    }
    await sleep(200);
    const tagged = (m: Record<string, any>): boolean => m.type === 'market_data' && m.data.ltp === 11111;
    expect(simUser.messages.some(tagged)).toBe(false);
    expect(zerodhaUser.messages.some(tagged)).toBe(false);

    await simUser.close();
    await zerodhaUser.close();
  });

  it('delivers a shared-feed LTP tick only to subscribers at LTP, and a Quote tick to them as an LTP', async () => {
    const ltp = await TestClient.authenticated(gw.url, await gw.createKey('ltp-user', 'angel'));
    const quote = await TestClient.authenticated(gw.url, await gw.createKey('quote-user', 'angel'));
    await ltp.request({ action: 'subscribe', symbols: [{ symbol: 'NIFTY', exchange: 'NSE_INDEX' }], mode: 1 });
    await quote.request({ action: 'subscribe', symbols: [{ symbol: 'NIFTY', exchange: 'NSE_INDEX' }], mode: 2 });
    await publishUntil('NSE_INDEX_NIFTY_LTP', { ltp: 24000.05 }, () => ltp.messages.some((m) => m.type === 'market_data'));
    // Once Quote ticks come alone, they serve the LTP subscriber too: an LTP message, LTP fields only.
    await publishUntil('NSE_INDEX_NIFTY_QUOTE', { ltp: 24000.1, open: 1 }, () => ltp.messages.some((m) => m.data?.ltp === 24000.1));
    expect(quote.messages.filter((m) => m.type === 'market_data').every((m) => m.data.open === 1 && m.mode === 2)).toBe(true);
    expect(ltp.messages.find((m) => m.data?.ltp === 24000.1)).toMatchObject({ mode: 1, data: { ltp: 24000.1 } });
    expect(ltp.messages.filter((m) => m.type === 'market_data').every((m) => m.mode === 1 && !('open' in m.data))).toBe(true);
    await ltp.close();
    await quote.close();
  });
});

describe('bus control messages', () => {
  it('counts cache invalidations and skips private positions feeds', async () => {
    const before = { ...gw.gateway.busListener.counters };
    publisher.publish('CACHE_INVALIDATE_AUTH_sim-user', JSON.stringify({ action: 'invalidate', user_id: 'sim-user', cache_type: 'AUTH' }));
    publisher.publish('deltaexchange_positions', JSON.stringify({ user_id: 'x' }));
    await waitFor(() => gw.gateway.busListener.counters.cacheInvalidations > before.cacheInvalidations && gw.gateway.busListener.counters.ignored > before.ignored);
    // The user's key still verifies afterwards (from the store, not the dropped cache entry).
    const client = await TestClient.authenticated(gw.url, await gw.createKey('sim-user'));
    await client.close();
  });
});
