/**
 * The dashboard's HTTP routes on the gateway's listener: the page and its assets (static-files.ts)
 * and two small JSON endpoints the page needs besides `/api/status`:
 *
 * - `GET /api/symbols?q=REL&limit=20`: instruments the caller can subscribe to (symbol-catalog.ts);
 * - `GET /api/instances`: this instance's gateways (or gateway nodes) with the URL clients connect
 *   to, and its feeds' adapters, each alive or stale. No more: any key holder may ask, so the
 *   registry's internals (pids, hosts, bus and control endpoints, other instances) stay out;
 *   `tickcast instances` shows the whole registry to whoever can open it.
 *
 * Both want a valid API key in the `X-API-Key` header, checked by the same verifier as WebSocket
 * authentication, and failed attempts count against the caller's address as they do there (a
 * valid key is answered at once; a wrong one past the allowance waits, or gets 429: api-key.ts).
 * Errors are JSON in the protocol's envelope: `{"status":"error","code","message"}`.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { ProtocolErrorCode } from '../errors.js';
import type { Logger } from '../observability/logger.js';
import type { ListedEntry } from '../registry/registry.js';
import type { FailedAuths } from '../gateway/limits.js';
import type { Identity, KeyVerifier } from '../gateway/request-handler.js';
import type { AllowedHostsOptions } from './allowed-hosts.js';
import { withApiKey } from './api-key.js';
import { type Json, errorBody, sendJson } from './json-reply.js';
import { StaticFiles } from './static-files.js';
import { type SymbolSearch, parseSymbolQuery } from './symbol-catalog.js';

/** What the instance provides for the dashboard's endpoints; each is optional. */
export interface DashboardSources {
  symbols?: SymbolSearch;
  /** This instance's registry entries (only its own: other instances are none of its users' business). */
  instances?: () => Promise<ListedEntry[]>;
  /** Host names the routes answer to, from the instance's configuration (allowed-hosts.ts). */
  hosts?: AllowedHostsOptions;
  /** Browser origins that may call the API-key endpoints (cors.ts; TICKCAST_ALLOWED_ORIGINS); undefined: any. */
  origins?: readonly string[];
  /** The built dashboard's directory (default: this package's dist/dashboard). */
  dir?: string;
}

export interface DashboardRoutesOptions {
  sources: DashboardSources;
  verifier: KeyVerifier;
  /** The broker name of the feed that serves users of `broker`, if an adapter does. */
  feedBroker(broker: string): string | undefined;
  failedAuths?: FailedAuths;
  logger: Logger;
}

export class DashboardRoutes {
  private readonly files: StaticFiles;

  constructor(private readonly options: DashboardRoutesOptions) {
    this.files = new StaticFiles(options.sources.dir);
  }

  /** Answers a GET or HEAD request for a dashboard path; false for any other path. */
  handle(request: IncomingMessage, response: ServerResponse): boolean {
    const url = new URL(request.url ?? '/', 'http://gateway');
    switch (url.pathname) {
      case '/api/symbols':
        this.authorised(request, response, (identity) => this.symbols(request, response, url.searchParams, identity));
        return true;
      case '/api/instances':
        this.authorised(request, response, () => this.instances(request, response));
        return true;
      default:
        return this.files.handle(request, response, url.pathname);
    }
  }

  private async symbols(request: IncomingMessage, response: ServerResponse, params: URLSearchParams, identity: Identity): Promise<void> {
    const query = parseSymbolQuery(params.get('q'), params.get('limit'));
    if (typeof query === 'string') {
      sendJson(request, response, 400, errorBody(ProtocolErrorCode.INVALID_PARAMETERS, query));
      return;
    }
    const brokers: string[] = [];
    if (identity.broker !== null) {
      brokers.push(identity.broker);
      const served = this.options.feedBroker(identity.broker);
      if (served !== undefined) brokers.push(served);
    }
    const data = (await this.options.sources.symbols?.search(query, brokers)) ?? [];
    sendJson(request, response, 200, { status: 'success', data });
  }

  private async instances(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const list = this.options.sources.instances;
    const data = publicInstanceView(list ? await list() : []);
    sendJson(request, response, 200, { status: 'success', data });
  }

  /** Runs `then` with the caller's identity, or answers 401/429 (api-key.ts). */
  private authorised(request: IncomingMessage, response: ServerResponse, then: (identity: Identity) => void | Promise<void>): void {
    const { failedAuths, verifier, logger } = this.options;
    withApiKey(request, response, { verifier, ...(failedAuths ? { failedAuths } : {}), logger }, 'dashboard API', then);
  }
}

/**
 * What a key holder sees of the instance's entries: role, name (the node name of a gateway, the
 * feed id of an adapter), a gateway's client URL and whether the entry is alive. Fields are
 * picked, never copied wholesale, so a field the registry gains later is not published by default.
 */
export function publicInstanceView(entries: readonly ListedEntry[]): Json[] {
  return entries.map((e) => ({
    instance: e.instance,
    role: e.role,
    name: e.name,
    ...(e.role === 'gateway' && e.endpoints.ws !== undefined ? { url: e.endpoints.ws } : {}),
    alive: e.alive,
  }));
}
