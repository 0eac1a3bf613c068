/**
 * Messages between the primary and its gateway workers (`--workers N`), sent over Node's cluster
 * IPC channel. Pure: types and a shape check only.
 *
 * The primary holds every adapter and the union of the workers' upstream interest; each worker
 * serves clients and tells the primary, per stream, the highest mode its own clients want (a
 * worker's Upstream already folds its clients together, so it sends `interest` only when that
 * mode changes). Ticks do not travel here: workers receive them from the primary's bus proxy.
 */
import type { FeedStatus } from '../feed.js';
import type { Config } from '../config/options.js';
import type { Mode } from '../protocol/modes.js';
import type { AuthOutcome } from '../gateway/limits.js';

/** A feed the workers route clients to (an adapter of the primary's). */
export interface FeedInfo {
  feed: string;
  broker: string;
  brokers: readonly string[] | '*';
  status: FeedStatus;
}

export type WorkerMessage =
  /**
   * The worker listens for messages now. Sent first: an ES-module worker attaches its listener
   * only after loading, and cluster IPC drops what arrives before that, so the primary waits.
   */
  | { type: 'ready' }
  /** The worker's listener is up on `port`. */
  | { type: 'listening'; port: number }
  /** The worker could not start (sent just before it exits). */
  | { type: 'failed'; code: string; message: string }
  /** This worker's clients now want `stream` at `mode` (0: not at all). Answered by `result`. */
  | { type: 'interest'; id: number; feed: string; exchange: string; symbol: string; mode: Mode | 0; depth: number }
  /** Start (if needed) the broker feed of `user` at `broker`, created by the primary. Answered by `result`. */
  | { type: 'user_feed'; id: number; user: string; broker: string; feed: string }
  /** A user's broker credentials changed (cache invalidation on the bus). */
  | { type: 'credentials_changed'; user: string }
  /** `/metrics` or `/api/status` for the whole instance: the primary gathers every worker's. Answered by `result` with `body`. */
  | { type: 'collect'; id: number; what: Collected }
  /** The worker's own figures, answering `report_request` `id`. */
  | { type: 'report'; id: number; body: unknown }
  /**
   * A client is authenticating as `user`: count it, as the worker's reservation `reservation`,
   * against the instance's per-key limit if there is room. Answered by `result` with `held`, the
   * user's connections before, and `counted` (only if `held` was below the limit).
   */
  | { type: 'key_reserve'; id: number; reservation: number; user: string }
  /**
   * Reservation `reservation` is given back: its connection is gone (closed, signed out, or its
   * authentication failed), or the worker stopped waiting for the answer and refused the client
   * (so a count the primary made late is undone). Nothing if it was never counted.
   */
  | { type: 'key_release'; reservation: number }
  /** May a key from `address` be checked now (the instance's failed-key limit)? Answered by `result` with `admission`. */
  | { type: 'auth_admit'; id: number; address: string }
  /** The outcome of admission `ticket`'s check. Answered by `result` with `wait`, how long its answer is held back. */
  | { type: 'auth_settle'; id: number; ticket: number; outcome: AuthOutcome };

/** An `auth_admit` verdict: a ticket to settle, or a refusal with its retry hint. */
export type AuthVerdict = { admitted: true; ticket: number } | { admitted: false; retryInMs: number };

/** What `collect` gathers: prom-client's metrics as JSON, or the status object. */
export type Collected = 'metrics' | 'status';

/** What a worker reports: what `collect` gathers, or its figures for OpenAlgo's stats file. */
export type Report = Collected | 'proxy';

/** A request's answer: a subscribe result, or a collected body. */
export type RequestResult =
  | { ok: true; depth?: number; body?: unknown; held?: number; counted?: boolean; admission?: AuthVerdict; wait?: number }
  | { ok: false; message: string };

/** Everything a worker needs to start; the first message it receives. */
export interface WorkerInit {
  /** 1-based, stable across restarts of the same slot. */
  worker: number;
  config: Config;
  /**
   * The WebSocket port as configured. 0 stays 0 for every worker: the cluster module shares one
   * free port among workers that all ask for 0.
   */
  port: number;
  /** The primary's bus fan-out endpoint (bus/zmq-proxy.ts). */
  fanout: string;
  feeds: FeedInfo[];
  /** Brokers whose users get a feed of their own (native ones, and the OpenAlgo bridge's). */
  userFeedBrokers: string[];
}

export type PrimaryMessage =
  | { type: 'init'; init: WorkerInit }
  /** The answer to the worker's request `id`. */
  | { type: 'result'; id: number; result: RequestResult }
  /** Send your own figures, as `report` `id`. */
  | { type: 'report_request'; id: number; what: Report }
  /** A feed joined (also sent for every feed when a worker starts). */
  | { type: 'feed'; info: FeedInfo }
  | { type: 'status'; feed: string; status: FeedStatus; message?: string }
  /** Close clients with "going away" and exit. */
  | { type: 'stop' };

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null;
}

/** The IPC channel carries only what we send, but a bug must not crash the primary: check the shape. */
export function isWorkerMessage(value: unknown): value is WorkerMessage {
  if (!isObject(value)) return false;
  switch (value.type) {
    case 'ready':
      return true;
    case 'listening':
      return typeof value.port === 'number';
    case 'failed':
      return typeof value.code === 'string' && typeof value.message === 'string';
    case 'interest':
      return (
        typeof value.id === 'number' &&
        typeof value.feed === 'string' &&
        typeof value.exchange === 'string' &&
        typeof value.symbol === 'string' &&
        (value.mode === 0 || value.mode === 1 || value.mode === 2 || value.mode === 3) &&
        typeof value.depth === 'number'
      );
    case 'user_feed':
      return typeof value.id === 'number' && typeof value.user === 'string' && typeof value.broker === 'string' && typeof value.feed === 'string';
    case 'credentials_changed':
      return typeof value.user === 'string';
    case 'collect':
      return typeof value.id === 'number' && (value.what === 'metrics' || value.what === 'status');
    case 'report':
      return typeof value.id === 'number';
    case 'key_reserve':
      return typeof value.id === 'number' && typeof value.reservation === 'number' && typeof value.user === 'string';
    case 'key_release':
      return typeof value.reservation === 'number';
    case 'auth_admit':
      return typeof value.id === 'number' && typeof value.address === 'string';
    case 'auth_settle':
      return typeof value.id === 'number' && typeof value.ticket === 'number' && (value.outcome === 'valid' || value.outcome === 'invalid' || value.outcome === 'error');
    default:
      return false;
  }
}

export function isPrimaryMessage(value: unknown): value is PrimaryMessage {
  if (!isObject(value)) return false;
  switch (value.type) {
    case 'result':
      return typeof value.id === 'number' && isObject(value.result) && typeof value.result.ok === 'boolean';
    case 'feed':
      return isObject(value.info) && typeof value.info.feed === 'string' && typeof value.info.broker === 'string';
    case 'status':
      return typeof value.feed === 'string' && typeof value.status === 'string';
    case 'init':
      return isObject(value.init) && isObject(value.init.config) && typeof value.init.fanout === 'string' && Array.isArray(value.init.feeds) && Array.isArray(value.init.userFeedBrokers);
    case 'report_request':
      return typeof value.id === 'number' && (value.what === 'metrics' || value.what === 'status' || value.what === 'proxy');
    case 'stop':
      return true;
    default:
      return false;
  }
}
