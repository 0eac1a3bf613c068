/**
 * The gateway's HTTP routes against a browser page of another site: `/api/instances` shows a key
 * holder only the instance's public facts, and data routes answer only to the Host names the
 * gateway serves (DNS rebinding), on a real gateway.
 */
import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemClock } from '../../src/clock.js';
import { openRegistry } from '../../src/registry/open.js';
import type { Registry } from '../../src/registry/registry.js';
import { type RawReply, rawRequest } from '../helpers/http.js';
import { type TestInstance, startTestInstance } from '../helpers/instance.js';

let gw: TestInstance;
let port: number;
let key: string;
let registry: Registry;

/** A request with the given Host header (fetch sends the URL's own). */
function get(path: string, host: string, headers: Record<string, string> = {}): Promise<RawReply> {
  return rawRequest(port, path, { headers: { ...headers, host } });
}

/** A WebSocket handshake with the given Host header: the status it got (101 when upgraded). */
function upgrade(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request({
      host: '127.0.0.1',
      port,
      path: '/',
      headers: { host, connection: 'Upgrade', upgrade: 'websocket', 'sec-websocket-version': '13', 'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==' },
    });
    req.on('upgrade', (res, socket) => {
      socket.destroy();
      resolve(res.statusCode ?? 0);
    });
    req.on('response', (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', reject);
    req.end();
  });
}

beforeAll(async () => {
  gw = await startTestInstance();
  port = Number(new URL(gw.url).port);
  key = await gw.createKey('viewer');
  registry = await openRegistry(gw.registryUrl, { clock: systemClock });
});
afterAll(async () => {
  await registry.close();
  await gw.stop();
});

describe('/api/instances', () => {
  it("shows a key holder only this instance's gateways and adapters: names, client URL, alive; no pids, hosts, bus or control endpoints", async () => {
    const common = { pid: process.pid, host: 'secret-host.internal', resources: [], startedAt: Date.now() };
    // Another instance in the same registry, and an adapter of this one on another host.
    const other = await registry.claim({
      ...common,
      id: 'other-gateway',
      instance: 'other-instance',
      role: 'gateway',
      name: 'other-instance',
      endpoints: { ws: 'ws://10.9.8.7:9999', bus: 'tcp://10.9.8.7:5599', control: 'tcp://10.9.8.7:5600' },
    });
    const adapter = await registry.claim({
      ...common,
      id: 'own-adapter',
      instance: gw.config.instance,
      role: 'adapter',
      name: 'kite-feed',
      endpoints: { bus: 'tcp://10.9.8.7:5601', control: 'tcp://10.9.8.7:5602' },
    });
    expect([other.ok, adapter.ok]).toEqual([true, true]);
    try {
      const reply = await get('/api/instances', `127.0.0.1:${port}`, { 'x-api-key': key });
      expect(reply.status).toBe(200);
      const body = JSON.parse(reply.body) as { status: string; data: Array<Record<string, unknown>> };
      expect(body.status).toBe('success');
      const byRole = [...body.data].sort((a, b) => String(a.role).localeCompare(String(b.role)) || String(a.name).localeCompare(String(b.name)));
      expect(byRole).toEqual([
        { instance: gw.config.instance, role: 'adapter', name: 'kite-feed', alive: true },
        { instance: gw.config.instance, role: 'gateway', name: gw.config.instance, url: gw.url, alive: true },
      ]);
      for (const secret of ['secret-host', 'other-instance', '10.9.8.7', String(process.pid), 'tcp://', 'ipc://']) expect(reply.body).not.toContain(secret);
    } finally {
      await registry.release('other-gateway');
      await registry.release('own-adapter');
    }
  });
});

describe('Host header', () => {
  const refusedRoutes = ['/api/status', '/metrics', '/api/instances', '/api/symbols?q=REL', '/', '/index.html'];

  it.each(refusedRoutes)('%s refuses a foreign name rebound to this machine with 421 and a coded JSON error', async (path) => {
    const reply = await get(path, `rebind.attacker.example:${port}`, { 'x-api-key': key });
    expect(reply.status).toBe(421);
    expect(reply.headers['content-type']).toBe('application/json; charset=utf-8');
    const body = JSON.parse(reply.body) as Record<string, unknown>;
    expect(body).toMatchObject({ status: 'error', code: 'HOST_NOT_ALLOWED' });
    expect(body.message).toContain('rebind.attacker.example');
    // Nothing of the figures leaks into the refusal.
    expect(reply.body).not.toContain('tickcast_');
    expect(reply.body).not.toContain('uptime');
  });

  it.each([`localhost:PORT`, `LOCALHOST:PORT`, `localhost.:PORT`, `127.0.0.1:PORT`, `[::1]:PORT`, '127.0.0.1', '192.0.2.10:8080', '[2001:db8::1]'])(
    '/api/status and /metrics answer Host %s (loopback names at the gateway port, any IP address)',
    async (template) => {
      const host = template.replace('PORT', String(port));
      const status = await get('/api/status', host);
      expect(status.status).toBe(200);
      expect(JSON.parse(status.body)).toHaveProperty('uptime_s');
      const metrics = await get('/metrics', host);
      expect(metrics.status).toBe(200);
      expect(metrics.body).toContain('tickcast_connections');
    },
  );

  it.each(['localhost', 'localhost:1', 'localhost.attacker.example:PORT', 'user@localhost:PORT', 'localhost:PORT/x'])('refuses Host %j', async (template) => {
    const reply = await get('/api/status', template.replace('PORT', String(port)));
    expect(reply.status).toBe(421);
    expect(JSON.parse(reply.body)).toMatchObject({ status: 'error', code: 'HOST_NOT_ALLOWED' });
  });

  it('leaves the health checks and WebSocket upgrades to any Host', async () => {
    expect((await get('/healthz', 'rebind.attacker.example')).status).toBe(200);
    const ready = await get('/readyz', 'rebind.attacker.example');
    expect(ready.headers['content-type']).toBe('text/plain');
    expect(ready.body).not.toContain('HOST_NOT_ALLOWED');
    expect(await upgrade(`rebind.attacker.example:${port}`)).toBe(101);
  });
});

describe('TICKCAST_ALLOWED_HOSTS', () => {
  it("answers the operator's names (a reverse proxy's public name) and still refuses others", async () => {
    const proxied = await startTestInstance({ TICKCAST_ALLOWED_HOSTS: 'trade.example.com, status.example.com:9100' });
    try {
      const at = Number(new URL(proxied.url).port);
      const statusOf = async (host: string): Promise<number> => (await rawRequest(at, '/api/status', { headers: { host } })).status;
      expect(await statusOf('trade.example.com')).toBe(200);
      expect(await statusOf(`trade.example.com:${at}`)).toBe(200);
      expect(await statusOf('status.example.com:9100')).toBe(200);
      expect(await statusOf('status.example.com:9101')).toBe(421);
      expect(await statusOf('rebind.attacker.example')).toBe(421);
    } finally {
      await proxied.stop();
    }
  });
});
