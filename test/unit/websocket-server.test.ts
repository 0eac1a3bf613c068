/**
 * ClientListener on a real local port: requests handed on in order, one at a time per session;
 * oversized messages refused without closing; the auth grace period; connection limits; plain
 * HTTP handed to onHttp; and close() telling every client it is going away.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import type { Session } from '../../src/gateway/session.js';
import { type ClientListenerOptions, ClientListener, addressKey } from '../../src/gateway/websocket-server.js';
import { silentLogger } from '../../src/observability/logger.js';
import { OPENALGO_EXTENSIONS, WireEncoder } from '../../src/protocol/encoding.js';
import type { JsonObject } from '../../src/protocol/requests.js';

const listeners: ClientListener[] = [];
afterEach(async () => {
  for (const listener of listeners.splice(0)) await listener.close();
});

async function listen(overrides: Partial<ClientListenerOptions> = {}): Promise<{ listener: ClientListener; url: string; requests: string[]; closed: Session[] }> {
  const requests: string[] = [];
  const closed: Session[] = [];
  const listener = new ClientListener({
    host: '127.0.0.1',
    port: 0,
    maxMessageBytes: 1024,
    maxFrameBytes: 64 * 1024,
    maxBufferedBytes: 1 << 20,
    slowConsumerMs: 30_000,
    authGraceMs: 60_000,
    pingIntervalMs: 0,
    pingTimeoutMs: 10_000,
    clock: { now: () => Date.now() },
    logger: silentLogger(),
    encoder: new WireEncoder(),
    defaultExtensions: OPENALGO_EXTENSIONS,
    onRequest: async (session, request: JsonObject) => {
      requests.push(String(request.action));
      // A slow first request: the second must wait for it.
      if (request.action === 'slow') await new Promise((resolve) => setTimeout(resolve, 50));
      session.reply({ type: 'echo', action: request.action as string });
    },
    onClose: (session) => closed.push(session),
    ...overrides,
  });
  listeners.push(listener);
  const port = await listener.listen();
  return { listener, url: `ws://127.0.0.1:${port}`, requests, closed };
}

function connect(url: string): Promise<{ socket: WebSocket; messages: Array<Record<string, unknown>>; closed: Promise<number> }> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url);
    const messages: Array<Record<string, unknown>> = [];
    socket.on('message', (data) => messages.push(JSON.parse(String(data))));
    const closed = new Promise<number>((done) => socket.on('close', (code) => done(code)));
    socket.once('open', () => resolve({ socket, messages, closed }));
    socket.once('unexpected-response', (_request, response) => reject(new Error(`HTTP ${response.statusCode}`)));
    socket.once('error', reject);
  });
}

const until = async (check: () => boolean, ms = 2000): Promise<void> => {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
};

describe('ClientListener', () => {
  it('hands requests on in order, one at a time per session', async () => {
    const { url, requests } = await listen();
    const client = await connect(url);
    client.socket.send(JSON.stringify({ action: 'slow' }));
    client.socket.send(JSON.stringify({ action: 'fast' }));
    await until(() => client.messages.length === 2);
    expect(requests).toEqual(['slow', 'fast']);
    expect(client.messages.map((m) => m.action)).toEqual(['slow', 'fast']);
    client.socket.close();
  });

  it('refuses a message over the size limit and malformed JSON, and keeps the connection', async () => {
    const { url, requests } = await listen();
    const client = await connect(url);
    client.socket.send(JSON.stringify({ action: 'x', pad: 'y'.repeat(2000) }));
    client.socket.send('{not json');
    client.socket.send(JSON.stringify({ action: 'after' }));
    await until(() => client.messages.length === 3);
    expect(client.messages[0]).toMatchObject({ status: 'error', code: 'MESSAGE_TOO_LARGE' });
    expect(client.messages[1]).toMatchObject({ status: 'error' });
    expect(client.messages[2]).toEqual({ type: 'echo', action: 'after' });
    expect(requests).toEqual(['after']);
    client.socket.close();
  });

  it('closes a client that does not authenticate within the grace period with 4401', async () => {
    const { url, closed } = await listen({ authGraceMs: 50 });
    const client = await connect(url);
    expect(await client.closed).toBe(4401);
    await until(() => closed.length === 1);
  });

  it('refuses connections past the limit with HTTP 503', async () => {
    const { url, listener } = await listen({ maxConnections: 1 });
    const first = await connect(url);
    await expect(connect(url)).rejects.toThrow('HTTP 503');
    expect(listener.refused).toBe(1);
    first.socket.close();
  });

  it('hands plain HTTP to onHttp, and says to use a WebSocket when it declines', async () => {
    const { url } = await listen({
      onHttp: (request, response) => {
        if (request.url !== '/healthz') return false;
        response.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
        return true;
      },
    });
    const http = url.replace('ws://', 'http://');
    const health = await fetch(`${http}/healthz`);
    expect([health.status, await health.text()]).toEqual([200, 'ok\n']);
    const other = await fetch(`${http}/other`);
    expect(other.status).toBe(426);
  });

  it('closes every client with 1001 (going away) on close()', async () => {
    const { url, listener, closed } = await listen();
    const a = await connect(url);
    const b = await connect(url);
    listeners.splice(listeners.indexOf(listener), 1);
    await listener.close();
    expect(await Promise.all([a.closed, b.closed])).toEqual([1001, 1001]);
    // Each session is reported closed once, and none is left.
    await until(() => closed.length === 2);
    expect(listener.sessions.size).toBe(0);
  });
});

describe('addressKey', () => {
  it('keeps IPv4 as it is, and an IPv4-mapped IPv6 address as its IPv4', () => {
    expect(addressKey('203.0.113.7')).toBe('203.0.113.7');
    expect(addressKey('::ffff:203.0.113.7')).toBe('203.0.113.7');
    expect(addressKey('::FFFF:cb00:7107')).toBe('203.0.113.7');
    expect(addressKey('0:0:0:0:0:ffff:203.0.113.7')).toBe('203.0.113.7');
  });

  it('gives every address of one IPv6 /64 the same key, however it is written', () => {
    const forms = ['2001:db8:1:2::1', '2001:0DB8:0001:0002:0000:0000:0000:0001', '2001:db8:1:2:abcd:ef01:2345:6789', '2001:db8:1:2::', '2001:db8:1:2:0:0:192.0.2.1'];
    for (const form of forms) expect(addressKey(form), form).toBe('2001:db8:1:2::/64');
    expect(addressKey('2001:db8::5')).toBe('2001:db8::/64');
    expect(addressKey('::1')).toBe('::/64');
    // The longest zero run is compressed, not the first.
    expect(addressKey('2001:0:1:0::9')).toBe('2001:0:1::/64');
  });

  it('gives different /64s different keys', () => {
    expect(addressKey('2001:db8:1:3::1')).not.toBe(addressKey('2001:db8:1:2::1'));
    expect(addressKey('2001:db8:1:3::1')).toBe('2001:db8:1:3::/64');
    expect(addressKey('2001:db9:1:2::1')).toBe('2001:db9:1:2::/64');
  });

  it('keeps the zone of a link-local address, which says which link the prefix is on', () => {
    expect(addressKey('fe80::1%eth0')).toBe('fe80::/64%eth0');
    expect(addressKey('fe80::abcd:2%eth0')).toBe('fe80::/64%eth0');
    expect(addressKey('fe80::1%eth1')).toBe('fe80::/64%eth1');
  });

  it('returns anything that is not an address as it is, and nothing as the empty key', () => {
    for (const garbage of ['not an address', '1::2::3', '2001:db8:g::1', ':::', 'fe80::1%', '%eth0', '1:2:3:4:5:6:7:8:9']) expect(addressKey(garbage), garbage).toBe(garbage);
    expect(addressKey(undefined)).toBe('');
    expect(addressKey('')).toBe('');
  });
});
