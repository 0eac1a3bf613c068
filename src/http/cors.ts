/**
 * Cross-origin reads of the API-key endpoints (`/api/ticks`, `/api/history/streams`,
 * `/api/symbols`, `/api/instances`), so a page served from elsewhere (a strategy's own UI) can
 * call `client.history()` with its key, as it can open the WebSocket. The key travels in the
 * `X-API-Key` header, never in a cookie, so allowing an origin lends it nothing a browser holds
 * on the user's behalf: a page can only read what its own key may read.
 *
 * The origins are TICKCAST_ALLOWED_ORIGINS', the WebSocket's: unset, any origin (as the
 * WebSocket, as OpenAlgo); set, only those, and any other origin gets no CORS headers (the
 * browser then withholds the answer) and a preflight answered 403.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';

/** Paths that answer cross-origin requests. */
export const CORS_PATHS: ReadonlySet<string> = new Set(['/api/ticks', '/api/history/streams', '/api/symbols', '/api/instances']);

/** Response headers a page may read: the answer's history figures (trailers are not readable in browsers). */
const EXPOSED = 'X-Tickcast-History, X-Tickcast-Damaged-Days, Retry-After';
/** How long a browser may keep a preflight's answer. */
const MAX_AGE_S = 600;

export class Cors {
  private readonly origins: ReadonlySet<string> | undefined;

  /** `origins`: the allowed origins (`https://host[:port]`), or undefined for any. */
  constructor(origins: readonly string[] | undefined) {
    this.origins = origins === undefined || origins.length === 0 ? undefined : new Set(origins.map((origin) => origin.toLowerCase().replace(/\/$/, '')));
  }

  /** The value of Access-Control-Allow-Origin for this request, or undefined (no Origin, or not allowed). */
  allowOrigin(request: IncomingMessage): string | undefined {
    const origin = request.headers.origin;
    if (origin === undefined || Array.isArray(origin)) return undefined;
    if (this.origins === undefined) return '*';
    return this.origins.has(origin.toLowerCase()) ? origin : undefined;
  }

  /** Adds the CORS headers of an actual request (before the route writes its head). */
  decorate(request: IncomingMessage, response: ServerResponse): void {
    const allow = this.allowOrigin(request);
    if (allow === undefined) return;
    response.setHeader('Access-Control-Allow-Origin', allow);
    response.setHeader('Access-Control-Expose-Headers', EXPOSED);
    if (allow !== '*') response.setHeader('Vary', 'Origin');
  }

  /** Answers a preflight (OPTIONS): 204 with what a GET with an API key needs, or 403 for an origin not allowed. */
  preflight(request: IncomingMessage, response: ServerResponse): void {
    const allow = this.allowOrigin(request);
    if (allow === undefined) {
      response.writeHead(403, { 'content-type': 'text/plain; charset=utf-8' });
      response.end('this origin may not call the gateway (TICKCAST_ALLOWED_ORIGINS)\n');
      return;
    }
    response.writeHead(204, {
      'access-control-allow-origin': allow,
      'access-control-allow-methods': 'GET, HEAD',
      'access-control-allow-headers': 'X-API-Key',
      'access-control-max-age': String(MAX_AGE_S),
      ...(allow === '*' ? {} : { vary: 'Origin' }),
    });
    response.end();
  }
}
