/**
 * The feed contract: what the gateway needs from a market-data adapter. An adapter turns one
 * upstream feed (a broker, the simulator, a replay) into ticks on the bus, tagged with its feed
 * id, and subscribes upstream only to what the gateway asks for. The gateway, the control
 * channel and the adapters all depend on this module and on none of each other.
 */
import type { Mode } from './protocol/modes.js';

export interface StreamRef {
  exchange: string;
  symbol: string;
}

/**
 * The one key for a stream in maps: exchange and symbol joined by NUL, a character neither can
 * hold (requests refuse control characters), so no two streams share a key.
 */
export const streamKey = (exchange: string, symbol: string): string => `${exchange}\u0000${symbol}`;

/** A stream's key within one feed: the same stream on two feeds is two upstream streams. */
export const feedStreamKey = (feed: string, exchange: string, symbol: string): string => `${feed}\u0000${streamKey(exchange, symbol)}`;

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
  /** A word about the current status (why it is not live), for clients who join; optional. */
  statusMessage?(): string | undefined;
  onStatus(listener: (event: FeedStatusEvent) => void): void;
}

/**
 * Builds per-user broker adapters (a user's own Zerodha or Angel session). The gateway asks it;
 * adapters/broker-factory.ts implements it.
 */
export interface BrokerAdapterFactory {
  /** Broker names this factory builds adapters for (lower case). */
  readonly brokers: readonly string[];
  /** Whether `user` has credentials stored for `broker` (read from the store each time). */
  hasCredentials(user: string, broker: string): boolean | Promise<boolean>;
  /**
   * Why the user's last check found no usable credentials, as a sentence for them (tokens that
   * do not decrypt, a session managed elsewhere); undefined for the usual "none stored".
   */
  whyNot?(user: string, broker: string): string | undefined;
  create(user: string, broker: string, feed: string): Adapter;
}
