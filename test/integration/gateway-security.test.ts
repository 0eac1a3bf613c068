/** The Origin allow-list and TLS (wss://) against a real gateway. */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import WebSocket from 'ws';
import { afterAll, describe, expect, it } from 'vitest';
import { type TestInstance, startTestInstance } from '../helpers/instance.js';

const running: TestInstance[] = [];
afterAll(async () => {
  for (const gw of running) await gw.stop();
});

/** The HTTP status of a handshake (101 when accepted). */
function handshake(url: string, options: WebSocket.ClientOptions = {}): Promise<number> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, options);
    ws.once('open', () => {
      ws.close();
      resolve(101);
    });
    ws.once('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
    ws.once('error', reject);
  });
}

describe('Origin allow-list', () => {
  it('refuses browsers from other origins with 403, lets listed origins and non-browser clients in', async () => {
    const gw = await startTestInstance({ TICKCAST_ALLOWED_ORIGINS: 'https://trade.example.com, http://localhost:3000' });
    running.push(gw);
    expect(await handshake(gw.url, { origin: 'https://evil.example.net' })).toBe(403);
    expect(await handshake(gw.url, { origin: 'https://trade.example.com' })).toBe(101);
    expect(await handshake(gw.url, { origin: 'http://localhost:3000' })).toBe(101);
    expect(await handshake(gw.url)).toBe(101); // an SDK or script sends no Origin
  });
});

describe('Cross-origin API calls (CORS)', () => {
  const httpOf = (gw: TestInstance) => gw.url.replace(/^ws:/, 'http:').replace(/\/$/, '');
  const preflight = (gw: TestInstance, path: string, origin: string) =>
    fetch(`${httpOf(gw)}${path}`, { method: 'OPTIONS', headers: { origin, 'access-control-request-method': 'GET', 'access-control-request-headers': 'x-api-key' } });

  it('lets a listed origin read the API-key endpoints with its key, and nothing more; other origins get no CORS headers', async () => {
    const gw = await startTestInstance({ TICKCAST_ALLOWED_ORIGINS: 'https://trade.example.com' });
    running.push(gw);
    const key = await gw.createKey('corsy');

    const allowed = await preflight(gw, '/api/ticks', 'https://trade.example.com');
    expect(allowed.status).toBe(204);
    expect(allowed.headers.get('access-control-allow-origin')).toBe('https://trade.example.com');
    expect(allowed.headers.get('access-control-allow-headers')).toMatch(/x-api-key/i);
    expect(allowed.headers.get('vary')).toBe('Origin');
    expect((await preflight(gw, '/api/ticks', 'https://evil.example.net')).status).toBe(403);
    // Only the API-key endpoints answer a preflight; the rest are not offered cross-origin.
    expect((await preflight(gw, '/api/status', 'https://trade.example.com')).headers.get('access-control-allow-origin')).toBeNull();

    const from = Date.now() - 60_000;
    const query = `/api/ticks?exchange=NSE&symbol=RELIANCE&from=${from}&to=${from + 60_000}`;
    const read = await fetch(`${httpOf(gw)}${query}`, { headers: { origin: 'https://trade.example.com', 'x-api-key': key } });
    expect(read.status).toBe(200);
    expect(read.headers.get('access-control-allow-origin')).toBe('https://trade.example.com');
    expect(read.headers.get('access-control-expose-headers')).toMatch(/X-Tickcast-History/);
    await read.text();
    const other = await fetch(`${httpOf(gw)}${query}`, { headers: { origin: 'https://evil.example.net', 'x-api-key': key } });
    expect(other.headers.get('access-control-allow-origin')).toBeNull();
    await other.text();
    // A key is still needed: CORS lends a page no access of its own.
    const keyless = await fetch(`${httpOf(gw)}${query}`, { headers: { origin: 'https://trade.example.com' } });
    expect(keyless.status).toBe(401);
    expect(keyless.headers.get('access-control-allow-origin')).toBe('https://trade.example.com');
    await keyless.text();
  });

  it('with no origin list, any page may call them (as the WebSocket accepts any origin)', async () => {
    const gw = await startTestInstance();
    running.push(gw);
    const answer = await preflight(gw, '/api/history/streams', 'https://anywhere.example.org');
    expect(answer.status).toBe(204);
    expect(answer.headers.get('access-control-allow-origin')).toBe('*');
    const symbols = await fetch(`${httpOf(gw)}/api/symbols?q=REL`, { headers: { origin: 'https://anywhere.example.org', 'x-api-key': await gw.createKey('any') } });
    expect(symbols.status).toBe(200);
    expect(symbols.headers.get('access-control-allow-origin')).toBe('*');
    await symbols.text();
  });
});

describe('TLS', () => {
  it('serves wss:// and https:// with the configured certificate', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tickcast-tls-'));
    try {
      const cert = join(dir, 'cert.pem');
      const key = join(dir, 'key.pem');
      execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore' });
      const gw = await startTestInstance({ TICKCAST_TLS_CERT: cert, TICKCAST_TLS_KEY: key });
      running.push(gw);
      expect(gw.url).toMatch(/^wss:\/\/127\.0\.0\.1:\d+$/);
      const ca = readFileSync(cert);
      const apiKey = await gw.createKey('secure');
      const reply = await new Promise<Record<string, unknown>>((resolve, reject) => {
        const ws = new WebSocket(gw.url, { ca });
        ws.once('open', () => ws.send(JSON.stringify({ action: 'authenticate', api_key: apiKey })));
        ws.once('message', (data) => {
          ws.close();
          resolve(JSON.parse(data.toString()));
        });
        ws.once('error', reject);
      });
      expect(reply).toMatchObject({ type: 'auth', status: 'success' });
      // Verification is real: without the certificate's CA the handshake fails.
      await expect(handshake(gw.url)).rejects.toThrow(/self[- ]signed|certificate/i);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
