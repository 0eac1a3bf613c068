/**
 * Whether a shown price can be trusted (pure, shared by `tickcast watch` and the dashboard): how
 * long ago its stream last ticked, whether that is longer than a threshold, and whether the
 * feed behind it or the connection itself is down. A price that stopped moving must never look
 * live.
 */

/** Past this without a tick, a stream is marked stale unless told otherwise. */
export const DEFAULT_STALE_AFTER_MS = 5000;

/** What a row shows, in order of precedence: no connection, feed not live, stale, fresh, or no tick yet. */
export type Freshness = 'offline' | 'feed' | 'stale' | 'fresh' | 'waiting';

/** The last `feed_status` event of one feed. */
export interface FeedState {
  feed: string;
  status: string;
  message?: string | undefined;
}

/**
 * An age, short enough for a table cell: `0.4s` under 10 s (tenths, truncated so a value never
 * reads older than it is), then whole `12s`, `3m`, `2h`, `5d`.
 */
export function formatAge(ms: number): string {
  const safe = Number.isFinite(ms) && ms > 0 ? ms : 0;
  if (safe < 10_000) return `${(Math.floor(safe / 100) / 10).toFixed(1)}s`;
  const seconds = Math.floor(safe / 1000);
  if (seconds < 60) return `${seconds}s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m`;
  if (seconds < 86_400) return `${Math.floor(seconds / 3600)}h`;
  return `${Math.floor(seconds / 86_400)}d`;
}

/**
 * The feeds' states as `feed_status` events report them. The gateway sends one when a feed
 * changes state, and (newer gateways) the current one right after authentication; until a feed
 * has reported, nothing is known against it, so it counts as live.
 */
export class FeedStates {
  private readonly feeds = new Map<string, FeedState>();

  update(event: FeedState): void {
    this.feeds.set(event.feed, { feed: event.feed, status: event.status, message: event.message });
  }

  /** Every feed heard of, in the order first heard. */
  all(): FeedState[] {
    return [...this.feeds.values()];
  }

  /** A feed that is not live (the first heard of), if any: its streams' prices are not current. */
  notLive(): FeedState | undefined {
    for (const state of this.feeds.values()) if (state.status !== 'live') return state;
    return undefined;
  }
}

export interface FreshnessInput {
  /** When the stream's last tick was received (ms, the same clock as `now`); undefined before the first. */
  lastTickAt: number | undefined;
  now: number;
  staleAfterMs: number;
  /** A feed of this client that is not live (FeedStates.notLive()). */
  feedDown: FeedState | undefined;
  /** Whether the connection to the gateway is up. */
  connected: boolean;
}

export interface StreamFreshness {
  state: Freshness;
  /** The last tick's age (`formatAge`), or undefined before the first tick. */
  age: string | undefined;
  /** A short marker for the row: `no connection`, `feed down`, `stale`, or '' when fresh or waiting. */
  marker: string;
}

export function streamFreshness({ lastTickAt, now, staleAfterMs, feedDown, connected }: FreshnessInput): StreamFreshness {
  const age = lastTickAt === undefined ? undefined : formatAge(now - lastTickAt);
  if (!connected) return { state: 'offline', age, marker: 'no connection' };
  if (feedDown) return { state: 'feed', age, marker: `feed ${feedDown.status}` };
  if (lastTickAt === undefined) return { state: 'waiting', age, marker: '' };
  if (now - lastTickAt > staleAfterMs) return { state: 'stale', age, marker: 'stale' };
  return { state: 'fresh', age, marker: '' };
}

/** `simulator live`, `zerodha.alice down (login failed)`: a feed's state in one phrase. */
export function describeFeed(state: FeedState): string {
  return `${state.feed} ${state.status}${state.message ? ` (${state.message})` : ''}`;
}
