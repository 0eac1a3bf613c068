/**
 * The gateway's HTTP side, on its WebSocket port: `/healthz`, `/readyz`, `/metrics`,
 * `/api/status`, the dashboard (`/`, `/assets/…`, `/api/symbols`, `/api/instances`) and the
 * recorded ticks of the caller's feed (`/api/ticks`, ticks.ts) and its recorded streams
 * (`/api/history/streams`, history-streams.ts). The
 * gateway hands each plain HTTP request here; whoever wires a gateway builds these routes for it
 * (GatewayOptions.http), so the gateway imports nothing of HTTP.
 *
 * Every route but the health checks first checks the `Host` header (allowed-hosts.ts), so a page
 * of another site that rebinds its name to this machine cannot read them: 421 otherwise. The
 * API-key endpoints answer pages of other origins (cors.ts), with the WebSocket's origin list.
 * WebSocket upgrades never come here; browsers' origins are checked there (TICKCAST_ALLOWED_ORIGINS).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Gateway } from '../gateway/gateway.js';
import type { KeyVerifier } from '../gateway/request-handler.js';
import { NO_FEED } from '../gateway/feeds.js';
import { SHARED_FEED_NAME } from '../history/selection.js';
import type { Logger } from '../observability/logger.js';
import { SHARED_FEED } from '../protocol/topics.js';
import { type DashboardSources, DashboardRoutes } from './dashboard-routes.js';
import { CORS_PATHS, Cors } from './cors.js';
import { type CollectFigures, serveFigures } from './figures.js';
import { AllowedHosts, type AllowedHostsOptions } from './allowed-hosts.js';
import { healthz, readyz } from './health.js';
import { HistoryStreamsRoute } from './history-streams.js';
import { errorBody, sendJson } from './json-reply.js';
import { type TickHistory, TickRoutes } from './ticks.js';

/** The error code of a request refused for its `Host` header (HTTP 421). */
export const HOST_NOT_ALLOWED = 'HOST_NOT_ALLOWED';

/** Answers a request and returns true, or returns false to let the listener say it serves WebSockets here. */
export type HttpHandler = (request: IncomingMessage, response: ServerResponse) => boolean;

export interface GatewayHttpOptions {
  /** The same verifier as the WebSocket's, for the dashboard's API key. */
  verifier: KeyVerifier;
  /** Symbol search and registry entries for `/api/symbols` and `/api/instances`. */
  dashboard?: DashboardSources;
  /**
   * Host names the routes answer to (allowed-hosts.ts). Unset: the dashboard sources' (the
   * instance's configuration), else loopback names and IP addresses only.
   */
  hosts?: AllowedHostsOptions;
  /** Set in a worker of `--workers N`: `/metrics` and `/api/status` describe the whole instance. */
  collect?: CollectFigures;
  /** The history store `/api/ticks` reads (the one this process's instance or node records into). */
  history?: TickHistory;
  logger: Logger;
}

/**
 * What the routes read from a gateway (a Gateway satisfies it). `feedOf` is the feed it resolves
 * for a user's subscriptions (their own broker feed, else their broker's).
 */
export type RoutedGateway = Pick<Gateway, 'ready' | 'status' | 'metrics' | 'feeds' | 'failedAuths' | 'feedOf'>;

/**
 * The recorded name of the feed the gateway serves a user's clients live (`shared` for the bare
 * topics), or undefined when none serves their broker here. Never another user's feed: a user
 * feed's id is made from its user's name.
 */
export async function recordedFeedOf(gateway: RoutedGateway, user: string, broker: string | null): Promise<string | undefined> {
  if (broker === null) return undefined;
  const feed = await gateway.feedOf(user, broker);
  if (feed === NO_FEED) return undefined;
  return feed === SHARED_FEED ? SHARED_FEED_NAME : feed;
}

export function gatewayHttp(gateway: RoutedGateway, options: GatewayHttpOptions): HttpHandler {
  const dashboard = new DashboardRoutes({
    sources: options.dashboard ?? {},
    verifier: options.verifier,
    feedBroker: (broker) => gateway.feeds.route(broker).adapter?.broker,
    // One count per address for the WebSocket and the dashboard's X-API-Key alike.
    ...(gateway.failedAuths ? { failedAuths: gateway.failedAuths } : {}),
    logger: options.logger,
  });
  const ticks = new TickRoutes({
    history: options.history,
    feedOf: (identity) => recordedFeedOf(gateway, identity.user, identity.broker),
    apiKey: { verifier: options.verifier, ...(gateway.failedAuths ? { failedAuths: gateway.failedAuths } : {}), logger: options.logger },
    logger: options.logger,
  });
  const streams = new HistoryStreamsRoute({
    history: options.history,
    feedOf: (identity) => recordedFeedOf(gateway, identity.user, identity.broker),
    // Under `--workers` the primary records: its figures come with the instance's status.
    recording: async () => (options.collect ? (JSON.parse((await options.collect('status')).body) as { history?: Record<string, unknown> }).history : (gateway.status().history as Record<string, unknown> | undefined)),
    apiKey: { verifier: options.verifier, ...(gateway.failedAuths ? { failedAuths: gateway.failedAuths } : {}), logger: options.logger },
    logger: options.logger,
  });
  const hosts = new AllowedHosts(options.hosts ?? options.dashboard?.hosts ?? {});
  const cors = new Cors(options.dashboard?.origins);
  return (request, response) => {
    const path = (request.url ?? '/').split('?')[0]!;
    const preflight = request.method === 'OPTIONS' && CORS_PATHS.has(path);
    if (request.method !== 'GET' && request.method !== 'HEAD' && !preflight) return false;
    // Liveness and readiness carry no data and probes send whatever Host they were given.
    switch (path) {
      case '/healthz':
        healthz(response);
        return true;
      case '/readyz':
        readyz(response, gateway.ready());
        return true;
    }
    const refusal = hosts.refusal(request);
    if (refusal !== undefined) {
      sendJson(request, response, 421, errorBody(HOST_NOT_ALLOWED, refusal));
      return true;
    }
    if (preflight) {
      cors.preflight(request, response);
      return true;
    }
    if (CORS_PATHS.has(path)) cors.decorate(request, response);
    switch (path) {
      case '/api/status':
        serveFigures(response, 'status', gateway, options.collect);
        return true;
      case '/metrics':
        serveFigures(response, 'metrics', gateway, options.collect);
        return true;
      case '/api/ticks':
        ticks.handle(request, response);
        return true;
      case '/api/history/streams':
        streams.handle(request, response);
        return true;
      default:
        return dashboard.handle(request, response);
    }
  };
}
