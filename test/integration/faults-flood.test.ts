/**
 * A client that floods requests behind a slow one (its first authentication runs Argon2 on the
 * thread pool): past 256 waiting, each further request is answered LIMIT_EXCEEDED at once, the
 * waiting ones are still answered in order, and the connection and the gateway stay usable.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestClient, waitFor } from '../helpers/client.js';
import { type TestInstance, startTestInstance } from '../helpers/instance.js';

let gw: TestInstance;
let key: string;

beforeAll(async () => {
  gw = await startTestInstance();
  key = await gw.createKey('flooder'); // not in the verifier's cache yet: its first check is slow
});
afterAll(() => gw.stop());

describe('requests waiting behind a slow one', () => {
  it('past 256, are refused with LIMIT_EXCEEDED; the rest are answered in order and the client goes on', async () => {
    const client = await TestClient.connect(gw.url);
    const replies: Array<Record<string, any>> = [];
    client.socket.on('message', (data) => replies.push(JSON.parse(data.toString())));
    client.send({ action: 'authenticate', api_key: key });
    for (let i = 0; i < 300; i++) client.send({ action: 'ping', _pingId: i });
    await waitFor(() => replies.length === 301, 10_000);

    const refused = replies.filter((r) => r.code === 'LIMIT_EXCEEDED');
    expect(refused.length).toBeGreaterThan(0);
    expect(refused[0]).toStrictEqual({ status: 'error', code: 'LIMIT_EXCEEDED', message: 'Too many requests in flight (limit 256); wait for replies before sending more' });
    // The authentication and the pings that waited are all answered, in the order sent.
    const answered = replies.filter((r) => r.code !== 'LIMIT_EXCEEDED');
    expect(answered[0]).toMatchObject({ type: 'auth', status: 'success' });
    const ids = answered.slice(1).map((r) => r._pingId as number);
    expect(ids.length + refused.length).toBe(300);
    expect(ids.length).toBeLessThanOrEqual(256);
    expect(ids).toEqual([...ids].sort((a, b) => a - b));

    // Nothing is stuck: the same connection subscribes and gets ticks.
    client.drain();
    expect((await client.request({ action: 'subscribe', symbols: [{ symbol: 'TCS', exchange: 'NSE' }], mode: 1 })).status).toBe('success');
    await client.marketData('TCS');
    await client.close();
  });
});
