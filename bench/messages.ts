/**
 * The messages the benchmark's processes exchange over their IPC channels: the parent (run.ts)
 * with each load-client worker, and the parent with the baseline server.
 */
import type { HistogramData } from './histogram.js';

export interface StreamName {
  exchange: string;
  symbol: string;
}

/** One client: indices into the stream list, its subscription mode, and whether it reads slowly. */
export interface ClientPlan {
  streams: number[];
  mode: 1 | 2 | 3;
  slow: boolean;
}

export type ToWorker =
  | {
      /** Open and authenticate the clients (no subscriptions yet). */
      type: 'connect';
      url: string;
      apiKey: string;
      streams: StreamName[];
      clients: ClientPlan[];
      /** Connections opening at once per worker (handshake to subscribe reply). */
      concurrency: number;
      /** A slow client pauses this long after each read of at most `slowReadBytes`. */
      slowPauseMs: number;
      slowReadBytes: number;
      /** Ask for tickcast's `seq` extension (per-stream sequence numbers) in authenticate. */
      seq: boolean;
    }
  /** Subscribe every client that authenticated. */
  | { type: 'subscribe' }
  /** Count and time market data whose publish timestamp is in [t0, t1) (epoch ms). */
  | { type: 'window'; t0: number; t1: number }
  /** Has every fast client received a tick stamped after the window yet? */
  | { type: 'progress' }
  /**
   * Soak: `count` set-up clients leave (alternately: unsubscribe, then disconnect; or just drop
   * the connection) and as many new connections take their places, authenticate and subscribe.
   */
  | { type: 'churn'; count: number }
  | { type: 'report' };

export type FromWorker =
  /** The worker is listening; messages sent before this could be lost. */
  | { type: 'hello' }
  /** Every client is connected and authenticated, or failed. */
  | { type: 'connected'; ok: number; failed: number; errors: string[] }
  /** Every authenticated client is subscribed, or failed. */
  | { type: 'ready'; ok: number; failed: number; errors: string[] }
  | {
      type: 'report';
      /**
       * Per client (in plan order), ticks received per subscribed stream (in plan order): fast
       * clients count ticks stamped in the window, slow ones ticks read during it.
       */
      counts: number[][];
      /** Likewise, the first and last `seq` among the window's ticks received (0: none). */
      firstSeq: number[][];
      lastSeq: number[][];
      /** Window ticks received by fast clients without a `seq`. */
      withoutSeq: number;
      fast: HistogramData;
      slow: HistogramData;
      /** Clients whose connection closed after they were set up. */
      closed: number;
      closeReasons: string[];
      /** Market-data frames this worker could not attribute to a subscribed stream. */
      unexpected: number;
      /** Churn: clients that left, replacements set up, and replacements that failed (a few errors). */
      churned: number;
      rejoined: number;
      rejoinFailed: number;
      rejoinErrors: string[];
    }
  | { type: 'progress'; caughtUp: boolean }
  | { type: 'fatal'; message: string };

export type ToBaseline = { type: 'window'; t0: number; t1: number } | { type: 'report' };

export type FromBaseline =
  | { type: 'listening'; port: number }
  | { type: 'report'; published: number; dropped: number };
