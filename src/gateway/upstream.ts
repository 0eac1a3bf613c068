/**
 * Keeps each adapter subscribed to exactly what clients want: every stream at the highest mode
 * any client holds, nothing nobody holds. Operations on one stream are serialised, so racing
 * subscribes and unsubscribes from many clients always settle on the index's current wish.
 */
import type { Logger } from '../observability/logger.js';
import { type SubscribeResult, feedStreamKey } from '../feed.js';
import type { StreamInterest } from '../bus/bus.js';
import { requestedDepth } from '../protocol/depth.js';
import type { Mode } from '../protocol/modes.js';
import type { Feeds } from './feeds.js';
import type { SubscriptionIndex } from './subscription-index.js';

interface UpstreamStream {
  mode: Mode;
  /** The depth the adapter said it delivers, if it said. */
  depth: number | undefined;
  /** The depth it was asked for: asked again after a restart. */
  requested: number;
}

export class Upstream {
  private readonly streams = new Map<string, UpstreamStream>();
  private readonly locks = new Map<string, Promise<unknown>>();

  constructor(
    private readonly feeds: Feeds,
    private readonly index: SubscriptionIndex<unknown>,
    private readonly logger: Logger,
    /** Told which streams clients hold, for a bus that delivers only those (NATS). */
    private readonly interest?: StreamInterest,
  ) {}

  private serialise<T>(key: string, op: () => Promise<T>): Promise<T> {
    const previous = this.locks.get(key) ?? Promise.resolve();
    const next = previous.then(op, op);
    const settled = next.then(
      () => {},
      () => {},
    );
    this.locks.set(key, settled);
    void settled.then(() => {
      if (this.locks.get(key) === settled) this.locks.delete(key);
    });
    return next;
  }

  /**
   * Makes upstream deliver at least `mode`, then runs `commit` (which adds the subscriber to the
   * index) while still holding the stream, so a concurrent release cannot undo it in between.
   * Streams of the shared feed have no adapter: any well-formed subscription is accepted.
   */
  acquire(feed: string, exchange: string, symbol: string, mode: Mode, depth: number, commit: () => void): Promise<SubscribeResult> {
    const adapter = this.feeds.adapter(feed);
    if (!adapter) {
      this.interest?.want(feed, exchange, symbol);
      commit();
      return Promise.resolve({ ok: true });
    }
    const key = feedStreamKey(feed, exchange, symbol);
    return this.serialise(key, async () => {
      const current = this.streams.get(key);
      if (current && current.mode >= mode) {
        commit();
        return { ok: true, depth: current.depth };
      }
      // Subscribed on the bus before the adapter is asked, so its first ticks are not missed.
      this.interest?.want(feed, exchange, symbol);
      let result: SubscribeResult;
      try {
        result = await adapter.subscribe({ exchange, symbol }, mode, depth);
      } catch (error) {
        result = { ok: false, message: (error as Error).message || 'Subscription failed' };
      }
      if (result.ok) {
        this.streams.set(key, { mode, depth: result.depth, requested: depth });
        commit();
      } else if (this.index.wantedMode(feed, exchange, symbol) === 0) {
        this.interest?.drop(feed, exchange, symbol);
      }
      return result;
    });
  }

  /** After subscribers left a stream, bring upstream down to what is still wanted. */
  release(feed: string, exchange: string, symbol: string): Promise<void> {
    const adapter = this.feeds.adapter(feed);
    if (!adapter) {
      if (this.index.wantedMode(feed, exchange, symbol) === 0) this.interest?.drop(feed, exchange, symbol);
      return Promise.resolve();
    }
    const key = feedStreamKey(feed, exchange, symbol);
    return this.serialise(key, async () => {
      const current = this.streams.get(key);
      const wanted = this.index.wantedMode(feed, exchange, symbol);
      if (wanted === 0) this.interest?.drop(feed, exchange, symbol);
      if (!current || wanted >= current.mode) return;
      try {
        if (wanted === 0) {
          this.streams.delete(key);
          await adapter.unsubscribe({ exchange, symbol });
        } else {
          const result = await adapter.subscribe({ exchange, symbol }, wanted, current.requested);
          if (result.ok) this.streams.set(key, { mode: wanted, depth: result.depth, requested: current.requested });
        }
      } catch (error) {
        this.logger.warn({ feed, exchange, symbol, err: (error as Error).message }, 'upstream release failed');
      }
    });
  }

  /**
   * Re-sends every wanted stream of `feed` to its adapter (after the adapter restarted or
   * reconnected, it holds nothing). Streams it now refuses are logged and forgotten upstream;
   * their subscribers stay in the index and will be retried on the next replay.
   */
  async replay(feed: string): Promise<void> {
    const adapter = this.feeds.adapter(feed);
    if (!adapter) return;
    const prefix = `${feed}\u0000`;
    const asked = new Map<string, number>();
    for (const [key, stream] of this.streams) {
      if (!key.startsWith(prefix)) continue;
      asked.set(key, stream.requested);
      this.streams.delete(key);
    }
    const wanted = [...this.index.wanted(feed)];
    await Promise.all(
      wanted.map(({ exchange, symbol }) => {
        const key = feedStreamKey(feed, exchange, symbol);
        return this.serialise(key, async () => {
          const mode = this.index.wantedMode(feed, exchange, symbol);
          if (mode === 0) return;
          const depth = asked.get(key) ?? requestedDepth(symbol, 5);
          try {
            const result = await adapter.subscribe({ exchange, symbol }, mode, depth);
            if (result.ok) this.streams.set(key, { mode, depth: result.depth, requested: depth });
            else this.logger.warn({ feed, exchange, symbol, reason: result.message }, 'replay: adapter refused a stream');
          } catch (error) {
            this.logger.warn({ feed, exchange, symbol, err: (error as Error).message }, 'replay: subscribe failed');
          }
        });
      }),
    );
    this.logger.info({ feed, streams: wanted.length }, 'replayed subscriptions to adapter');
  }

  /** Streams currently held upstream (for status pages and tests). */
  get size(): number {
    return this.streams.size;
  }

  mode(feed: string, exchange: string, symbol: string): Mode | 0 {
    return this.streams.get(feedStreamKey(feed, exchange, symbol))?.mode ?? 0;
  }
}
