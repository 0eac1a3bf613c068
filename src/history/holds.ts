/**
 * Recording holds: the streams TICKCAST_RECORD names are recorded all day, whether or not a
 * client watches them, because the process that records holds each of them upstream itself, at
 * Depth (the highest mode, so every mode's data is published and recorded), as one more
 * subscriber of its subscription index (gateway/stream-holds.ts).
 *
 * Which streams are held (`recordingHolds`, pure):
 *
 * | item                                       | held on                                            |
 * |--------------------------------------------|----------------------------------------------------|
 * | `FEED/EXCHANGE:SYMBOL` (`shared/…` too)    | that feed, while it is here and live               |
 * | `EXCHANGE:SYMBOL`                          | the process's own simulated market, if it runs one |
 * | a stream of `PREFIX*` feeds, `FEED`, `all` | nothing: no one feed, or no stream, to hold        |
 *
 * `RecordingHolds` keeps each hold's state: acquired when its feed is live, tried again when the
 * feed (re)starts, comes back live or is replayed — never on a timer, so a stream the adapter
 * refuses costs one try per such event, logged once per reason.
 */
import type { SubscribeResult } from '../feed.js';
import type { Logger } from '../observability/logger.js';
import { SHARED_FEED } from '../protocol/topics.js';
import { type RecordSelection, SHARED_FEED_NAME } from './selection.js';

/** One stream held for recording. */
export interface StreamHold {
  /** The feed's id (SHARED_FEED for `shared`). */
  feed: string;
  exchange: string;
  symbol: string;
  /** `FEED/EXCHANGE:SYMBOL`, as logs and /api/status show it. */
  name: string;
}

/**
 * The streams `selection` has held: each stream named with one feed, and each stream named for
 * every feed on `marketFeed` (the process's own simulated market), when it has one. One hold per
 * stream, in the order named.
 */
export function recordingHolds(selection: RecordSelection, marketFeed?: string): StreamHold[] {
  const holds = new Map<string, StreamHold>();
  for (const { feed, pattern, exchange, symbol } of selection.streams) {
    if (pattern) continue;
    const named = feed ?? marketFeed;
    if (named === undefined) continue;
    const name = `${named}/${exchange}:${symbol}`;
    if (!holds.has(name)) holds.set(name, { feed: named === SHARED_FEED_NAME ? SHARED_FEED : named, exchange, symbol, name });
  }
  return [...holds.values()];
}

/** What the process that holds streams (a gateway, the primary's hub) does for a hold. */
export interface HoldPort {
  /** Whether `feed` is here and live now (the shared feed always is). */
  live(feed: string): boolean;
  /** Has upstream deliver the stream at Depth and adds the holder to the index (once upstream accepted). */
  acquire(feed: string, exchange: string, symbol: string): Promise<SubscribeResult>;
  /** Takes the holder off the stream, if it holds it, and brings upstream down to what clients want. */
  drop(feed: string, exchange: string, symbol: string): void;
}

export type HoldState = 'waiting' | 'held' | 'refused';

/** A hold as /api/status shows it. */
export interface HoldFigure {
  stream: string;
  state: HoldState;
  message?: string;
}

interface Hold extends StreamHold {
  state: HoldState;
  message: string | undefined;
  /** An acquire is under way: another is not started meanwhile. */
  pending: boolean;
}

export class RecordingHolds {
  private readonly holds: Hold[];
  private port: HoldPort | undefined;

  constructor(
    holds: readonly StreamHold[],
    private readonly logger: Logger,
  ) {
    this.holds = holds.map((hold) => ({ ...hold, state: 'waiting', message: waitingFor(hold), pending: false }));
  }

  get size(): number {
    return this.holds.length;
  }

  /** Starts holding through `port`: each stream whose feed is live now is acquired. Once. */
  attach(port: HoldPort): void {
    if (this.port) throw new Error('recording holds are already attached');
    this.port = port;
    for (const feed of new Set(this.holds.map((hold) => hold.feed))) if (port.live(feed)) this.feedUp(feed);
  }

  /**
   * `feed` is live here: it started, came back live, or its adapter (re)started and was replayed.
   * Its holds not held are tried again; held ones are confirmed (at once when upstream still
   * delivers them; a stream the restarted adapter now refuses becomes refused).
   */
  feedUp(feed: string): void {
    const port = this.port;
    if (!port) return;
    for (const hold of this.holds) if (hold.feed === feed && !hold.pending) void this.acquire(port, hold);
  }

  figures(): HoldFigure[] {
    return this.holds.map(({ name, state, message }) => ({ stream: name, state, ...(message !== undefined ? { message } : {}) }));
  }

  private async acquire(port: HoldPort, hold: Hold): Promise<void> {
    hold.pending = true;
    let result: SubscribeResult;
    try {
      result = await port.acquire(hold.feed, hold.exchange, hold.symbol);
    } catch (error) {
      result = { ok: false, message: (error as Error).message };
    } finally {
      hold.pending = false;
    }
    if (result.ok) {
      if (hold.state !== 'held') this.logger.info({ stream: hold.name }, 'holding a recorded stream upstream (recorded whether or not a client holds it)');
      hold.state = 'held';
      hold.message = undefined;
      return;
    }
    // Refused by a restarted adapter after being held: the holder must not stay in the index.
    port.drop(hold.feed, hold.exchange, hold.symbol);
    const message = result.message || 'the feed refused the stream';
    if (hold.state !== 'refused' || hold.message !== message) {
      this.logger.warn({ stream: hold.name, reason: message }, 'a recorded stream cannot be held: the feed refused it; tried again when the feed restarts');
    }
    hold.state = 'refused';
    hold.message = message;
  }
}

function waitingFor(hold: StreamHold): string {
  return `waiting for feed ${hold.feed === SHARED_FEED ? SHARED_FEED_NAME : hold.feed} to be live here`;
}
