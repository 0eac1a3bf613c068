/**
 * What the gateway needs from a market-data adapter. An adapter turns one upstream feed
 * (a broker, the simulator, a replay) into ticks on the bus, tagged with its feed id, and
 * subscribes upstream only to what the gateway asks for.
 */
import type { Mode } from '../protocol/modes.js';

export interface StreamRef {
  exchange: string;
  symbol: string;
}

export type SubscribeResult =
  | { ok: true; /** depth levels the feed will actually deliver */ depth?: number }
  | { ok: false; message: string };

/**
 * `live`: ticks flow. `reconnecting`: upstream lost, retrying. `stale`: connected but silent
 * for longer than expected. `down`: stopped or gave up (for example, credentials refused).
 */
export type FeedStatus = 'live' | 'reconnecting' | 'stale' | 'down';

export interface FeedStatusEvent {
  feed: string;
  status: FeedStatus;
  message?: string;
}

export interface Adapter {
  /** Feed id that tags this adapter's bus topics (see protocol/topics.ts). */
  readonly feed: string;
  /** Broker name this adapter streams from (`simulator`, `zerodha`, …). */
  readonly broker: string;

  start(): Promise<void>;
  stop(): Promise<void>;

  /**
   * Stream `stream` upstream at `mode`, replacing any mode held before (so this is also how the
   * gateway upgrades and downgrades). Resolves with a per-symbol error for unknown symbols.
   */
  subscribe(stream: StreamRef, mode: Mode, depth: number): Promise<SubscribeResult>;
  /** Stop streaming `stream`. Unknown streams are ignored. */
  unsubscribe(stream: StreamRef): Promise<void>;

  /**
   * The credentials behind this feed changed (a broker re-login): reconnect with fresh ones.
   * Optional: feeds without credentials ignore it.
   */
  credentialsChanged?(): void;

  status(): FeedStatus;
  onStatus(listener: (event: FeedStatusEvent) => void): void;
}
