/**
 * `/metrics` (Prometheus text) and `/api/status` (JSON): this gateway's own figures, or, in a
 * worker of `--workers N`, the whole instance's, gathered through the primary (`collect`).
 */
import type { ServerResponse } from 'node:http';

export type FiguresKind = 'metrics' | 'status';

/** Gathers the whole instance's figures (a worker asks the primary). */
export type CollectFigures = (what: FiguresKind) => Promise<{ contentType: string; body: string }>;

export interface OwnFigures {
  /** Prometheus exposition of this process's metrics. */
  metrics: { readonly contentType: string; text(): Promise<string> };
  status(): Record<string, unknown>;
}

export function serveFigures(response: ServerResponse, what: FiguresKind, own: OwnFigures, collect: CollectFigures | undefined): void {
  if (collect) {
    collect(what).then(
      ({ contentType, body }) => response.writeHead(200, { 'content-type': contentType }).end(body),
      // The primary is away or did not answer: the figures of the whole instance are unavailable.
      (error: Error) => response.writeHead(503, { 'content-type': 'text/plain' }).end(`${error.message}\n`),
    );
  } else if (what === 'status') {
    response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(own.status()));
  } else {
    own.metrics.text().then(
      (text) => response.writeHead(200, { 'content-type': own.metrics.contentType }).end(text),
      (error: Error) => response.writeHead(500, { 'content-type': 'text/plain' }).end(`${error.message}\n`),
    );
  }
}
