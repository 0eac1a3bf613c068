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
