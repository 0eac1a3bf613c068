/**
 * Connection lifecycle against a real gateway: the auth grace close (4401), protocol keepalive,
 * and a slow reader that must not hold up anyone else.
 */
import Database from 'better-sqlite3';
import type { Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestClient, sleep, waitFor } from '../helpers/client.js';
import { databaseFile } from '../../src/wiring.js';
import { type TestInstance, startTestInstance } from '../helpers/instance.js';

describe('auth grace period', () => {
  let gw: TestInstance;
  beforeAll(async () => {
    gw = await startTestInstance({ WS_AUTH_GRACE_SECONDS: '0.3' });
  });
  afterAll(() => gw.stop());

  it('closes an unauthenticated client with 4401 "auth timeout"', async () => {
    const client = await TestClient.connect(gw.url);
    expect(await client.request({ action: 'ping' })).toMatchObject({ type: 'pong' });
    expect(await client.closed).toEqual({ code: 4401, reason: 'auth timeout' });
  });

  it('also closes a client whose only attempt failed', async () => {
    const client = await TestClient.connect(gw.url);
    expect(await client.request({ action: 'authenticate', api_key: 'f'.repeat(64) })).toMatchObject({ code: 'AUTHENTICATION_ERROR' });
    expect((await client.closed).code).toBe(4401);
  });

  it('closes a client whose key verifies but whose broker is not configured (BROKER_ERROR)', async () => {
    const key = await gw.createKey('carol');
    const db = new Database(databaseFile(gw.config));
    db.prepare("UPDATE auth SET is_revoked = 1 WHERE name = 'carol'").run();
    db.close();
    const client = await TestClient.connect(gw.url);
    expect(await client.request({ action: 'authenticate', api_key: key })).toStrictEqual({
      status: 'error',
      code: 'BROKER_ERROR',
      message: 'No broker configuration found for user',
    });
    expect((await client.closed).code).toBe(4401);
  });

  it('leaves an authenticated client open', async () => {
    const client = await TestClient.authenticated(gw.url, await gw.createKey('dave'));
    await sleep(600);
    expect(await client.request({ action: 'ping' })).toMatchObject({ type: 'pong' });
    await client.close();
  });
});

describe('protocol keepalive', () => {
  let gw: TestInstance;
  beforeAll(async () => {
    gw = await startTestInstance({ WS_PING_INTERVAL: '0.2', WS_PING_TIMEOUT: '0.3' });
  });
  afterAll(() => gw.stop());

  it('pings clients and keeps those that answer', async () => {
    const client = await TestClient.authenticated(gw.url, await gw.createKey('erin'));
    let pings = 0;
    client.socket.on('ping', () => pings++);
    await sleep(1000);
    expect(pings).toBeGreaterThanOrEqual(2);
    expect(await client.request({ action: 'ping' })).toMatchObject({ type: 'pong' });
    await client.close();
  });

  it('drops a client that does not answer pings', async () => {
    const client = await TestClient.connect(gw.url, { autoPong: false });
    await client.request({ action: 'authenticate', api_key: await gw.createKey('frank') });
    const closed = await client.closed;
    expect(closed.code).toBe(1006); // terminated: no closing handshake with a dead peer
    await waitFor(() => gw.gateway.listener.sessions.size === 0);
  });
});

describe('a slow reader', () => {
  let gw: TestInstance;
  beforeAll(async () => {
    gw = await startTestInstance({ TICKCAST_SIM_RATE: '1000', TICKCAST_MAX_BUFFERED_BYTES: '65536', TICKCAST_SLOW_CONSUMER_SECONDS: '2' });
  });
  afterAll(() => gw.stop());

  const symbols = ['RELIANCE', 'INFY', 'TCS', 'SBIN', 'HDFCBANK', 'ICICIBANK', 'ITC', 'LT'].map((symbol) => ({ symbol, exchange: 'NSE' }));
  const tcpOf = (client: TestClient): Socket => (client.socket as unknown as { _socket: Socket })._socket;

  it('is conflated, not a brake on other clients, and never sees a stream go back in time', async () => {
    const slow = await TestClient.authenticated(gw.url, await gw.createKey('slow'));
    const fast = await TestClient.authenticated(gw.url, await gw.createKey('fast'));
    await slow.request({ action: 'subscribe', symbols, mode: 3 });
    tcpOf(slow).pause(); // stops reading its socket entirely
    await fast.request({ action: 'subscribe', symbols, mode: 3 });

    const slowSession = [...gw.gateway.listener.sessions].find((s) => s.user === 'slow')!;
    await waitFor(() => slowSession.outbox.conflated > 0, 15_000);

    // While the slow client is congested, the fast one keeps receiving.
    let received = 0;
    fast.socket.on('message', () => received++);
    await sleep(500);
    expect(received).toBeGreaterThan(100);
    // Memory stays bounded: at most one waiting frame per stream.
    expect(slowSession.outbox.backlog).toBeLessThanOrEqual(symbols.length);

    // Reading again: every stream arrives in order, the newest conflated value last.
    slow.drain();
    tcpOf(slow).resume();
    await sleep(500);
    const last = new Map<string, number>();
    for (const message of slow.messages.filter((m) => m.type === 'market_data')) {
      const previous = last.get(message.symbol) ?? 0;
      expect(message.data.timestamp, message.symbol).toBeGreaterThanOrEqual(previous);
      last.set(message.symbol, message.data.timestamp);
    }
    expect(last.size).toBe(symbols.length);
    await slow.close();
    await fast.close();
  });

  it('is closed (4408) when it drains nothing for the slow-consumer period', async () => {
    const slow = await TestClient.authenticated(gw.url, await gw.createKey('stuck'));
    await slow.request({ action: 'subscribe', symbols, mode: 3 });
    tcpOf(slow).pause();
    const session = [...gw.gateway.listener.sessions].find((s) => s.user === 'stuck')!;
    await waitFor(() => session.closed, 20_000);
    expect(gw.gateway.listener.sessions.has(session)).toBe(false);
    expect(session.outbox.dropped).toBeGreaterThan(0);
  });
});
