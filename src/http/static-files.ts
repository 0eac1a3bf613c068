/**
 * Serves the dashboard's built files (dist/dashboard) on the gateway's HTTP listener: the page at
 * `/` and its bundled assets under `/assets/`. Only plain file names inside the directory are
 * served (no sub-directories, no dot files, no traversal) and only types listed here. Asset names
 * carry a content hash (see scripts/build-dashboard.mjs), so they are cached for a year; the page
 * itself is revalidated on every load by its ETag, so a rebuilt dashboard shows at once.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { extname, join, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * dist/dashboard of this package. This module sits two levels below the package root both as
 * source (src/gateway/) and as built code (dist/gateway/), so the same relative path works for
 * both, and the tests serve the same bundle `npm run build` produces.
 */
export const DASHBOARD_DIR = fileURLToPath(new URL('../../dist/dashboard/', import.meta.url));

const CONTENT_TYPES: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.woff2': 'font/woff2',
};

/** A file name safe to join to the directory: no separators, no leading dot (so no `..`). */
const SAFE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

/**
 * The page may only load its own scripts and styles and talk to its own origin (fetch and
 * WebSocket); inline SVG is drawn through the DOM, not from markup strings.
 */
const PAGE_HEADERS: Readonly<Record<string, string>> = {
  'content-security-policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
};

const IMMUTABLE = 'public, max-age=31536000, immutable';

export type StaticTarget = { kind: 'page' } | { kind: 'asset'; name: string } | { kind: 'bad'; reason: string };

/**
 * Which file a request path names, if any. Pure: `undefined` means "not a dashboard path" (the
 * caller answers it), `bad` a path under `/assets/` that can never name a file.
 */
export function staticTarget(path: string): StaticTarget | undefined {
  if (path === '/' || path === '/index.html') return { kind: 'page' };
  if (!path.startsWith('/assets/')) return undefined;
  let name: string;
  try {
    name = decodeURIComponent(path.slice('/assets/'.length));
  } catch {
    return { kind: 'bad', reason: 'malformed percent-encoding' };
  }
  if (!SAFE_NAME.test(name)) return { kind: 'bad', reason: 'not a file name' };
  if (!(extname(name) in CONTENT_TYPES)) return { kind: 'bad', reason: 'not a served file type' };
  return { kind: 'asset', name };
}

export class StaticFiles {
  private readonly root: string;

  constructor(root: string = DASHBOARD_DIR) {
    this.root = resolve(root);
  }

  /** Answers GET/HEAD for the page and its assets; false for any other path. */
  handle(request: IncomingMessage, response: ServerResponse, path: string): boolean {
    const target = staticTarget(path);
    if (!target) return false;
    if (target.kind === 'bad') {
      response.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end(`not found (${target.reason})\n`);
      return true;
    }
    const file = target.kind === 'page' ? join(this.root, 'index.html') : join(this.root, 'assets', target.name);
    // Belt and braces: SAFE_NAME already rules out anything that could leave the directory.
    if (!file.startsWith(this.root + sep)) {
      response.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end('not found\n');
      return true;
    }
    readFile(file).then(
      (body) => this.send(request, response, file, body, target.kind === 'page'),
      (error: NodeJS.ErrnoException) => {
        if (response.headersSent) return;
        if (error.code === 'ENOENT' || error.code === 'EISDIR') {
          const message = target.kind === 'page' ? 'the dashboard is not built: run `npm run build`\n' : 'not found\n';
          response.writeHead(target.kind === 'page' ? 503 : 404, { 'content-type': 'text/plain; charset=utf-8' }).end(message);
        } else {
          response.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' }).end(`cannot read the file: ${error.code ?? error.message}\n`);
        }
      },
    );
    return true;
  }

  private send(request: IncomingMessage, response: ServerResponse, file: string, body: Buffer, page: boolean): void {
    const etag = `"${createHash('sha1').update(body).digest('base64url')}"`;
    const headers: Record<string, string | number> = {
      'content-type': CONTENT_TYPES[extname(file)] ?? 'application/octet-stream',
      'x-content-type-options': 'nosniff',
      'cache-control': page ? 'no-cache' : IMMUTABLE,
      etag,
      ...(page ? PAGE_HEADERS : {}),
    };
    // A list of tags, weak (W/) or not, may come back: any match means the copy is current.
    const cached = request.headers['if-none-match']?.split(',').map((tag) => tag.trim().replace(/^W\//, ''));
    if (cached?.includes(etag) || cached?.includes('*')) {
      response.writeHead(304, headers).end();
      return;
    }
    headers['content-length'] = body.length;
    response.writeHead(200, headers);
    response.end(request.method === 'HEAD' ? undefined : body);
  }
}
