/**
 * Attacks on a real gateway's connection handling, each with real sockets: clients that leave
 * while their key is checked, one address holding idle sockets (WebSocket and raw TCP), a
 * guesser interleaving a valid key, and sessions of a key that is revoked or replaced.
 *
 * Every client connects to the gateway on 127.0.0.1; "another address" is 127.0.0.2, which the
 * loopback interface also answers for, bound as the client's local address.
 */
import crypto from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import WebSocket from 'ws';
import { ApiKeyStore } from '../../src/auth/api-keys.js';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { TestClient, waitUntil } from '../helpers/client.js';
import { type TestInstance, startTestInstance } from '../helpers/instance.js';
import { makeCertificate } from '../helpers/tls-cert.js';

const OTHER_ADDRESS = '127.0.0.2';

const instances: TestInstance[] = [];
async function gateway(env: Record<string, string> = {}): Promise<TestInstance> {
  const gw = await startTestInstance(env);
  instances.push(gw);
  return gw;
}
afterAll(async () => {
  for (const gw of instances.splice(0)) await gw.stop();
});

/** Sockets opened by a test, closed after it whatever happened. */
const opened: Array<{ destroy(): void }> = [];
afterEach(() => {
  for (const socket of opened.splice(0)) socket.destroy();
});

/**
 * A WebSocket from `localAddress` that never sends anything and, once open, never reads: it does
 * not answer the gateway's close frame either. Resolves with 101 when accepted (the socket stays
 * open), the HTTP status when refused, 0 when the connection was cut before any answer.
 */
function idleWebSocket(url: string, localAddress: string, options: WebSocket.ClientOptions = {}): Promise<number> {
  return new Promise((resolve) => {
    const ws = new WebSocket(url, { ...options, localAddress });
    ws.once('open', () => {
      const tcp = (ws as unknown as { _socket: net.Socket })._socket;
      tcp.pause();
      opened.push(tcp);
      resolve(101);
    });
    ws.once('unexpected-response', (_request, response) => {
      resolve(response.statusCode ?? 0);
      ws.terminate();
    });
    ws.once('error', () => resolve(0));
  });
}

/** Opens `count` idle WebSockets from `localAddress`, a batch at a time; the answers, counted. */
async function idleWebSockets(url: string, localAddress: string, count: number, options: WebSocket.ClientOptions = {}): Promise<Map<number, number>> {
  const answers = new Map<number, number>();
  for (let done = 0; done < count; done += 25) {
    const batch = await Promise.all(Array.from({ length: Math.min(25, count - done) }, () => idleWebSocket(url, localAddress, options)));
    for (const answer of batch) answers.set(answer, (answers.get(answer) ?? 0) + 1);
  }
  return answers;
}

/** The HTTP status a handshake from `localAddress` got, or 101 if accepted (then closed). */
function handshake(url: string, localAddress?: string): Promise<number> {
  return new Promise((resolve) => {
    const ws = new WebSocket(url, localAddress ? { localAddress } : {});
    ws.once('open', () => {
      ws.close();
      resolve(101);
    });
    ws.once('unexpected-response', (_request, response) => {
      resolve(response.statusCode ?? 0);
      ws.terminate();
    });
    ws.once('error', () => resolve(0));
  });
}

const readCa = (dir: string): Buffer => readFileSync(join(dir, 'ca.pem'));

const wrongKey = (): string => crypto.randomBytes(32).toString('hex');

describe('a client that leaves while its key is checked', () => {
  it('leaves no session behind to count against the key', async () => {
    const gw = await gateway({ TICKCAST_MAX_CONNECTIONS_PER_KEY: '2' });
    // Not yet cached, as after a restart: each check below waits on an Argon2 verification.
    const key = await gw.createKey('restarted');
    for (let i = 0; i < 25; i++) {
      const client = await TestClient.connect(gw.url);
      client.send({ action: 'authenticate', api_key: key });
      client.socket.terminate();
    }
    // Each request reached the gateway before its connection's end did.
    await waitUntil(() => gw.gateway.listener.sessions.size === 0, 'the dropped clients to be gone');

    const first = await TestClient.authenticated(gw.url, key);
    const second = await TestClient.authenticated(gw.url, key);
    const third = await TestClient.connect(gw.url);
    // The limit itself still holds, counting the two that are really open.
    expect(await third.request({ action: 'authenticate', api_key: key })).toMatchObject({ code: 'LIMIT_EXCEEDED', message: 'Too many connections for this API key (limit 2)' });
    for (const client of [first, second, third]) await client.close();
  });
});

describe('unauthenticated connections from one address', () => {
  it('take only that address’s share of the pending-authentication budget', async () => {
    // The default budget, 1,000: each address may hold a tenth of it.
    const gw = await gateway();
    const answers = await idleWebSockets(gw.url, OTHER_ADDRESS, 1000);
    expect(answers.get(101)).toBe(100);
    expect((answers.get(503) ?? 0) + (answers.get(0) ?? 0)).toBe(900);

    // Everyone else is let in at once: a handshake refused now would fail this, not wait.
    const started = Date.now();
    const client = await TestClient.authenticated(gw.url, await gw.createKey('bystander'));
    console.info(`with 100 idle sockets held by ${OTHER_ADDRESS} (900 more refused), another client connected and authenticated in ${Date.now() - started} ms`);
    await client.close();
  });

  it('stop counting once the gateway closes them, even if they never answer the close', async () => {
    // A share of 16 (the floor), and a 1 s grace period before the 4401 close.
    const gw = await gateway({ TICKCAST_MAX_PENDING_AUTH: '40', WS_AUTH_GRACE_SECONDS: '1' });
    const answers = await idleWebSockets(gw.url, OTHER_ADDRESS, 20);
    expect(answers.get(101)).toBe(16);
    expect(await handshake(gw.url, OTHER_ADDRESS)).toBe(503);

    // Closed with 4401 after the grace period; they never answer, yet their address may connect
    // again and they are cut off, well before ws's 30 s closing handshake would end.
    const closedAt = Date.now();
    await waitUntil(() => gw.gateway.listener.sessions.size === 0, 'the unanswering sockets to be cut off', 10_000);
    console.info(`unanswering sockets gone ${Date.now() - closedAt} ms after the first check`);
    expect(await handshake(gw.url, OTHER_ADDRESS)).toBe(101);
  });
});

describe('raw TCP connections that never send a request', () => {
  it('are capped per address and closed when idle, while others still connect', async () => {
    const gw = await gateway();
    const { port } = new URL(gw.url);
    let closed = 0;
    const sockets = await Promise.all(
      Array.from(
        { length: 300 },
        () =>
          new Promise<net.Socket>((resolve) => {
            const socket = net.connect({ host: '127.0.0.1', port: Number(port), localAddress: OTHER_ADDRESS });
            opened.push(socket);
            socket.on('error', () => undefined);
            socket.once('close', () => closed++);
            socket.once('connect', () => resolve(socket));
            socket.once('close', () => resolve(socket));
          }),
      ),
    );
    expect(sockets).toHaveLength(300);
    // Past 64 from one address they are closed at once.
    await waitUntil(() => closed >= 300 - 64, 'the connections past the per-address cap to be closed');
    expect(closed).toBeLessThan(300);

    const client = await TestClient.authenticated(gw.url, await gw.createKey('neighbour'));
    expect(await client.request({ action: 'ping' })).toMatchObject({ type: 'pong' });

    // The rest are closed for idleness (10 s): the bound only catches them being kept.
    await waitUntil(() => closed === 300, 'the idle connections to be closed', 20_000);
    expect(gw.gateway.listener.unupgradedClosed).toBe(300);
    await client.close();
  }, 30_000);
});

describe('raw TCP connections to a TLS gateway that never start the handshake', () => {
  const certs = mkdtempSync(join(tmpdir(), 'tickcast-hardening-tls-'));
  afterAll(() => rmSync(certs, { recursive: true, force: true }));

  it('are capped per address as plain ones are, while others still connect over wss', async () => {
    makeCertificate(certs);
    const gw = await gateway({ TICKCAST_TLS_CERT: join(certs, 'server.pem'), TICKCAST_TLS_KEY: join(certs, 'server.key') });
    const { port } = new URL(gw.url);
    const ca = readCa(certs);
    let closed = 0;
    await Promise.all(
      Array.from(
        { length: 100 },
        () =>
          new Promise<void>((resolve) => {
            const socket = net.connect({ host: '127.0.0.1', port: Number(port), localAddress: OTHER_ADDRESS });
            opened.push(socket);
            socket.on('error', () => undefined);
            socket.once('close', () => closed++);
            socket.once('connect', () => resolve());
            socket.once('close', () => resolve());
          }),
      ),
    );
    // Past 64 from one address they are closed at once, not after the 10 s handshake timeout.
    await waitUntil(() => closed >= 100 - 64, 'the connections past the per-address cap to be closed');
    expect(closed).toBe(100 - 64);
    expect(gw.gateway.listener.unupgradedClosed).toBe(100 - 64);

    // More than 64 WebSockets over TLS from one address: each stops counting once its TLS
    // socket sends the upgrade, so none is refused as a connection without a request.
    const answers = await idleWebSockets(gw.url, '127.0.0.1', 70, { ca });
    expect(answers.get(101)).toBe(70);
    const client = await TestClient.connect(gw.url, { ca });
    expect(await client.request({ action: 'authenticate', api_key: await gw.createKey('tls neighbour') })).toMatchObject({ type: 'auth', status: 'success' });
    expect(await client.request({ action: 'ping' })).toMatchObject({ type: 'pong' });
    await client.close();
  });
});

describe('a guesser interleaving a valid key', () => {
  it('keeps its penalty: a success does not clear the failures of its address', async () => {
    const gw = await gateway({ TICKCAST_AUTH_FAILURES: '2' });
    const key = await gw.createKey('guessed');
    const guesser = await TestClient.connect(gw.url);
    for (let i = 0; i < 2; i++) {
      expect(await guesser.request({ action: 'authenticate', api_key: wrongKey() })).toMatchObject({ message: 'Invalid API key' });
    }
    // The valid key is let in at once, from the same address.
    const valid = await TestClient.authenticated(gw.url, key);
    await valid.close();

    // Still past the allowance: the next wrong key is the address's third failure, not a fresh first.
    const failures = (): number => Math.max(gw.gateway.failedAuths!.failures('127.0.0.1'), gw.gateway.failedAuths!.failures('::ffff:127.0.0.1'));
    expect(failures()).toBe(2);
    expect(await guesser.request({ action: 'authenticate', api_key: wrongKey() })).toMatchObject({ message: 'Invalid API key' });
    expect(failures()).toBe(3);
    await guesser.close();
  });
});

describe('sessions of a key that is revoked or replaced', () => {
  const signedOut = { status: 'error', code: 'AUTHENTICATION_ERROR', message: 'API key is no longer valid (revoked or replaced); authenticate again with a valid key' };

  it('are signed out at their next request, and closed unless they authenticate again', async () => {
    const gw = await gateway({ WS_AUTH_GRACE_SECONDS: '2' });
    const key = await gw.createKey('revoked');
    const client = await TestClient.authenticated(gw.url, key);
    const symbols = [{ symbol: 'RELIANCE', exchange: 'NSE' }];
    expect(await client.request({ action: 'subscribe', symbols, mode: 1 })).toMatchObject({ status: 'success' });

    // What `tickcast keys revoke` does, on the instance's own store.
    expect(gw.keys).toBeInstanceOf(ApiKeyStore);
    expect((gw.keys as ApiKeyStore).revoke('revoked')).toBe(true);
    expect(await client.request({ action: 'subscribe', symbols: [{ symbol: 'TCS', exchange: 'NSE' }], mode: 1 })).toStrictEqual(signedOut);
    // Nothing more for it: its subscriptions are gone and it is no longer authenticated.
    expect(gw.gateway.index.heldCount).toBe(0);
    expect(await client.request({ action: 'get_broker_info' })).toMatchObject({ code: 'NOT_AUTHENTICATED' });
    expect(await client.request({ action: 'authenticate', api_key: key })).toMatchObject({ message: 'Invalid API key' });
    // The grace period starts again from the sign-out: 4401 when it ends.
    expect((await client.closed).code).toBe(4401);
  });

  it('are signed out when the key is replaced; the new key works', async () => {
    const gw = await gateway();
    const old = await gw.createKey('rotated');
    const client = await TestClient.authenticated(gw.url, old);
    const replaced = await gw.createKey('rotated');
    expect(await client.request({ action: 'get_broker_info' })).toStrictEqual(signedOut);
    // The session may authenticate again with the new key and carry on.
    expect(await client.request({ action: 'authenticate', api_key: replaced })).toMatchObject({ type: 'auth', status: 'success' });
    expect(await client.request({ action: 'subscribe', symbols: [{ symbol: 'INFY', exchange: 'NSE' }], mode: 1 })).toMatchObject({ status: 'success' });
    await client.close();
  });
});
