/**
 * The gateway's HTTP side, on its WebSocket port: `/healthz`, `/readyz`, `/metrics`,
 * `/api/status` and the dashboard (`/`, `/assets/…`, `/api/symbols`, `/api/instances`). The
 * gateway hands each plain HTTP request here; whoever wires a gateway builds these routes for it
 * (GatewayOptions.http), so the gateway imports nothing of HTTP.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Gateway } from '../gateway/gateway.js';
import type { KeyVerifier } from '../gateway/request-handler.js';
import type { Logger } from '../observability/logger.js';
import { type DashboardSources, DashboardRoutes } from './dashboard-routes.js';
import { type CollectFigures, serveFigures } from './figures.js';
import { healthz, readyz } from './health.js';

/** Answers a request and returns true, or returns false to let the listener say it serves WebSockets here. */
export type HttpHandler = (request: IncomingMessage, response: ServerResponse) => boolean;

export interface GatewayHttpOptions {
  /** The same verifier as the WebSocket's, for the dashboard's API key. */
  verifier: KeyVerifier;
  /** Symbol search and registry entries for `/api/symbols` and `/api/instances`. */
  dashboard?: DashboardSources;
  /** Set in a worker of `--workers N`: `/metrics` and `/api/status` describe the whole instance. */
  collect?: CollectFigures;
  logger: Logger;
}

/** What the routes read from a gateway (a Gateway satisfies it). */
export type RoutedGateway = Pick<Gateway, 'ready' | 'status' | 'metrics' | 'feeds' | 'failedAuths'>;

export function gatewayHttp(gateway: RoutedGateway, options: GatewayHttpOptions): HttpHandler {
  const dashboard = new DashboardRoutes({
    sources: options.dashboard ?? {},
    verifier: options.verifier,
    feedBroker: (broker) => gateway.feeds.route(broker).adapter?.broker,
    // One count per address for the WebSocket and the dashboard's X-API-Key alike.
    ...(gateway.failedAuths ? { failedAuths: gateway.failedAuths } : {}),
    logger: options.logger,
  });
  return (request, response) => {
    if (request.method !== 'GET' && request.method !== 'HEAD') return false;
    const path = (request.url ?? '/').split('?')[0];
    switch (path) {
      case '/healthz':
        healthz(response);
        return true;
      case '/readyz':
        readyz(response, gateway.ready());
        return true;
      case '/api/status':
        serveFigures(response, 'status', gateway, options.collect);
        return true;
      case '/metrics':
        serveFigures(response, 'metrics', gateway, options.collect);
        return true;
      default:
        return dashboard.handle(request, response);
    }
  };
}
