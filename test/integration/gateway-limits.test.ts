/** Connection, subscription, rate and failed-authentication limits against a real gateway. */
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ZmqPublisher } from '../../src/bus/zeromq.js';
import { TestClient, sleep, waitFor } from '../helpers/client.js';
import { type TestInstance, startTestInstance } from '../helpers/instance.js';

let gw: TestInstance;
let key: string;

beforeAll(async () => {
  gw = await startTestInstance({
    TICKCAST_MAX_CONNECTIONS: '4',
    TICKCAST_MAX_PENDING_AUTH: '2',
    TICKCAST_MAX_CONNECTIONS_PER_KEY: '2',
    TICKCAST_MAX_SUBSCRIPTIONS: '3',
    TICKCAST_SUBSCRIBE_RATE: '2',
    TICKCAST_AUTH_FAILURES: '2',
  });
  key = await gw.createKey('limited');
});
afterAll(() => gw.stop());

/** The HTTP status a refused handshake got, or 101 if it was accepted. */
function handshake(url: string): Promise<number> {
  return new Promise((resolve) => {
    const ws = new WebSocket(url);
    ws.once('open', () => {
      ws.close();
      resolve(101);
    });
    ws.once('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
    ws.once('error', () => {});
  });
}

describe('limits', () => {
  it('refuses handshakes past the pending-authentication and connection limits with HTTP 503', async () => {
    const a = await TestClient.connect(gw.url);
    const b = await TestClient.connect(gw.url);
    expect(await handshake(gw.url)).toBe(503); // two unauthenticated already
    await a.request({ action: 'authenticate', api_key: key });
    const c = await TestClient.connect(gw.url);
    await b.request({ action: 'authenticate', api_key: await gw.createKey('other') });
    const d = await TestClient.connect(gw.url);
    expect(gw.gateway.listener.sessions.size).toBe(4);
    expect(await handshake(gw.url)).toBe(503); // four connections in all
    expect(gw.gateway.listener.refused).toBe(2);
    for (const client of [a, b, c, d]) await client.close();
    await waitFor(() => gw.gateway.listener.sessions.size === 0);
  });

  it('refuses a third connection of the same key with LIMIT_EXCEEDED', async () => {
    const first = await TestClient.authenticated(gw.url, key);
    const second = await TestClient.authenticated(gw.url, key);
    const third = await TestClient.connect(gw.url);
    expect(await third.request({ action: 'authenticate', api_key: key })).toStrictEqual({
      status: 'error',
      code: 'LIMIT_EXCEEDED',
      message: 'Too many connections for this API key (limit 2)',
    });
    await second.close();
    await waitFor(() => gw.gateway.listener.sessions.size === 2);
    expect(await third.request({ action: 'authenticate', api_key: key })).toMatchObject({ type: 'auth', status: 'success' });
    await first.close();
    await third.close();
  });

  it('fails symbols past the per-client stream limit, and limits the subscribe rate', async () => {
    const client = await TestClient.authenticated(gw.url, key);
    const symbols = ['TCS', 'INFY', 'SBIN', 'ITC', 'LT'].map((symbol) => ({ symbol, exchange: 'NSE' }));
    const reply = await client.request({ action: 'subscribe', symbols, mode: 1 });
    expect(reply.subscriptions.map((s: { status: string }) => s.status)).toEqual(['success', 'success', 'success', 'error', 'error']);
    expect(reply.subscriptions[3].message).toBe('Subscription limit reached (3 streams per client)');
    // Another mode of a stream already held is not a new stream.
    expect((await client.request({ action: 'subscribe', symbols: symbols.slice(0, 1), mode: 2 })).status).toBe('success');
    // Rate 2/s with bursts of 4: two requests were just used; a quick run of four more meets the limit.
    const replies = [];
    for (let i = 0; i < 4; i++) replies.push(await client.request({ action: 'unsubscribe', symbols: symbols.slice(0, 1), mode: 2 }));
    expect(replies.map((r) => r.code ?? r.status)).toContain('LIMIT_EXCEEDED');
    expect(replies.find((r) => r.code)).toStrictEqual({ status: 'error', code: 'LIMIT_EXCEEDED', message: 'Too many subscribe requests (limit 2 per second)' });
    await client.close();
  });

  it('makes only failures wait: a good key from an address that keeps failing is let in at once', async () => {
    const client = await TestClient.connect(gw.url);
    // Two failures are allowed; the third is answered after a wait of 1 s (the hang bound is 5 s).
    for (let i = 0; i < 3; i++) {
      expect(await client.request({ action: 'authenticate', api_key: 'f'.repeat(64) })).toMatchObject({ message: 'Invalid API key' });
    }
    expect(await client.request({ action: 'authenticate', api_key: key })).toMatchObject({ type: 'auth', status: 'success' });
    await client.close();
  });
});

describe('last values kept for snapshots', () => {
  it('stay bounded whatever a publisher sends: large payloads on many topics nobody holds', async () => {
    const shared = await startTestInstance({ TICKCAST_FEED: 'none' });
    const publisher = new ZmqPublisher({ endpoint: shared.busEndpoint, batch: false });
    try {
      // ZeroMQ's slow joiner: publish until the gateway hears the publisher.
      const counters = shared.gateway.busListener.counters;
      while (counters.ticks === 0) {
        publisher.publish('NSE_WARMUP_LTP', '{"ltp":1.5}');
        await sleep(50);
      }
      const before = counters.ticks;
      // 1,200 topics × 60 KiB (each under the 64 KiB a value may have) and 20 × 1 MiB.
      const medium = JSON.stringify({ ltp: 1.5, pad: 'x'.repeat(60 * 1024) });
      const huge = JSON.stringify({ ltp: 1.5, pad: 'x'.repeat(1024 * 1024) });
      for (let i = 0; i < 1200; i++) publisher.publish(`NSE_S${i}_QUOTE`, medium);
      for (let i = 0; i < 20; i++) publisher.publish(`NSE_H${i}_QUOTE`, huge);
      await waitFor(() => counters.ticks - before >= 1220, 30_000);
      const values = shared.gateway.fanOut.lastValues;
      expect(values.bytes).toBeLessThanOrEqual(64 * 1024 * 1024);
      expect(values.size).toBeLessThan(1200);
      // The newest are the ones kept; the 1 MiB payloads are not kept at all.
      expect(values.last('', 'NSE\u0000S1199', 2)?.payload).toBe(medium);
      expect(values.last('', 'NSE\u0000H19', 2)).toBeUndefined();
    } finally {
      await publisher.close();
      await shared.stop();
    }
  }, 60_000);
});
