/** The dashboard's static file serving: types, caching, HEAD, and paths that must never resolve. */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { type Server, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RawReply, rawRequest } from '../helpers/http.js';
import { StaticFiles, staticTarget } from '../../src/http/static-files.js';

let root: string;
let server: Server;
let port: number;

/** A raw request: fetch would normalise `..` segments before they ever reach the server. */
function get(path: string, options: { method?: string; headers?: Record<string, string> } = {}): Promise<RawReply> {
  return rawRequest(port, path, options);
}

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'tickcast-static-'));
  mkdirSync(join(root, 'assets'));
  writeFileSync(join(root, 'index.html'), '<!doctype html><title>page</title>');
  writeFileSync(join(root, 'assets', 'app-ABC123.js'), 'console.log(1)');
  writeFileSync(join(root, 'assets', 'app-ABC123.css'), 'body{}');
  writeFileSync(join(root, 'assets', 'notes.txt'), 'not a served type');
  writeFileSync(join(root, 'secret.js'), 'outside assets');
  const files = new StaticFiles(root);
  server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0]!;
    if (!files.handle(req, res, path)) res.writeHead(418).end('not mine');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as AddressInfo).port;
});

afterAll(async () => {
  await new Promise((resolve) => server.close(resolve));
  rmSync(root, { recursive: true, force: true });
});

describe('staticTarget', () => {
  it('names the page and plain asset files, and nothing else', () => {
    expect(staticTarget('/')).toEqual({ kind: 'page' });
    expect(staticTarget('/index.html')).toEqual({ kind: 'page' });
    expect(staticTarget('/assets/app-1.js')).toEqual({ kind: 'asset', name: 'app-1.js' });
    expect(staticTarget('/metrics')).toBeUndefined();
    expect(staticTarget('/api/symbols')).toBeUndefined();
    for (const path of ['/assets/../x.js', '/assets/..%2Fx.js', '/assets/%2e%2e', '/assets/.env', '/assets/a/b.js', '/assets/a%5Cb.js', '/assets/x.exe', '/assets/%E0%A4%A', '/assets/']) {
      expect(staticTarget(path)?.kind, path).toBe('bad');
    }
  });
});

describe('StaticFiles', () => {
  it('serves the page with no-cache, an ETag and a content security policy', async () => {
    const reply = await get('/');
    expect(reply.status).toBe(200);
    expect(reply.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(reply.headers['cache-control']).toBe('no-cache');
    expect(reply.headers['content-security-policy']).toContain("script-src 'self'");
    expect(reply.headers['x-content-type-options']).toBe('nosniff');
    expect(reply.headers.etag).toMatch(/^"[\w-]+"$/);
    expect(reply.body).toContain('<title>page</title>');
  });

  it('answers a matching If-None-Match with 304 and no body', async () => {
    const { headers } = await get('/');
    const reply = await get('/', { headers: { 'if-none-match': String(headers.etag) } });
    expect(reply.status).toBe(304);
    expect(reply.body).toBe('');
  });

  it('serves hashed assets with their types, cached for a year', async () => {
    const js = await get('/assets/app-ABC123.js');
    expect([js.status, js.headers['content-type'], js.body]).toEqual([200, 'text/javascript; charset=utf-8', 'console.log(1)']);
    expect(js.headers['cache-control']).toBe('public, max-age=31536000, immutable');
    expect(js.headers['content-security-policy']).toBeUndefined();
    const css = await get('/assets/app-ABC123.css');
    expect([css.status, css.headers['content-type']]).toEqual([200, 'text/css; charset=utf-8']);
  });

  it('answers HEAD with the headers and length but no body', async () => {
    const reply = await get('/assets/app-ABC123.js', { method: 'HEAD' });
    expect(reply.status).toBe(200);
    expect(reply.headers['content-length']).toBe(String('console.log(1)'.length));
    expect(reply.body).toBe('');
  });

  it('never serves a file outside the assets directory, whatever the encoding', async () => {
    for (const path of [
      '/assets/../secret.js',
      '/assets/..%2Fsecret.js',
      '/assets/%2e%2e%2fsecret.js',
      '/assets/%2e%2e/secret.js',
      '/assets/..%5Csecret.js',
      '/assets/../../package.json',
      '/assets/notes.txt',
      '/assets/missing.js',
      '/assets/%zz.js',
    ]) {
      const reply = await get(path);
      expect(reply.status, path).toBe(404);
      expect(reply.body, path).not.toContain('outside assets');
    }
  });

  it('leaves other paths to the caller', async () => {
    expect((await get('/elsewhere')).status).toBe(418);
    expect((await get('/secret.js')).status).toBe(418);
  });

  it('says how to build the dashboard when it is missing', async () => {
    const empty = mkdtempSync(join(tmpdir(), 'tickcast-static-empty-'));
    const files = new StaticFiles(empty);
    const other = createServer((req, res) => void files.handle(req, res, '/'));
    await new Promise<void>((resolve) => other.listen(0, '127.0.0.1', resolve));
    try {
      const response = await fetch(`http://127.0.0.1:${(other.address() as AddressInfo).port}/`);
      expect(response.status).toBe(503);
      expect(await response.text()).toContain('npm run build');
    } finally {
      await new Promise((resolve) => other.close(resolve));
      rmSync(empty, { recursive: true, force: true });
    }
  });
});
