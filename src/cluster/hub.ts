/**
 * The primary's side of `--workers N`: every adapter of the instance, and upstream interest as
 * the union of the workers' interest. Each worker is one subscriber of the hub's subscription
 * index (holding one mode per stream, the highest its own clients want), so the same Upstream
 * that keeps a single-process gateway's adapters in step keeps them in step here, replays after
 * an adapter restart included. A worker that exits has its interest released. The streams the
 * primary's recorder holds (history/holds.ts) are one more subscriber there, so the union the
 * adapters are subscribed to includes them and the recording tap hears them without a client.
 */
import { type FeedStatus, type SubscribeResult, feedStreamKey } from '../feed.js';
import { type AdapterRoute, Feeds } from '../gateway/feeds.js';
import { SubscriptionIndex } from '../gateway/subscription-index.js';
import { StreamHolder, holdPort } from '../gateway/stream-holds.js';
import type { RecordingHolds } from '../history/holds.js';
import { Upstream } from '../gateway/upstream.js';
import type { Logger } from '../observability/logger.js';
import type { Mode } from '../protocol/modes.js';
import type { FeedInfo } from './messages.js';

export interface HubOptions {
  adapters: readonly AdapterRoute[];
  logger: Logger;
  /** Called when an adapter's status changes (to tell the workers). */
  onStatus: (feed: string, status: FeedStatus, message?: string) => void;
  /** The streams the primary's recorder holds, from `startHolds` on. */
  holds?: RecordingHolds;
}

export class Hub {
  readonly feeds: Feeds;
  readonly index = new SubscriptionIndex<number | StreamHolder>();
  /** The primary's own subscriber of the streams held for recording. */
  private readonly holder = new StreamHolder();
  readonly upstream: Upstream;
  /** worker → stream key → the mode it holds. */
  private readonly held = new Map<number, Map<string, Mode>>();
  private readonly routes = new Map<string, AdapterRoute>();

  constructor(private readonly options: HubOptions) {
    this.feeds = new Feeds();
    this.upstream = new Upstream(this.feeds, this.index as SubscriptionIndex<unknown>, options.logger);
    for (const route of options.adapters) {
      const refusal = this.add(route);
      if (refusal) throw new Error(refusal);
    }
  }

  /**
   * Adds an adapter (at start, or an out-of-process adapter's hello); returns why not, if refused.
   * Unlisted feeds (a user's own broker feed) are not routed by broker, so workers are not told.
   */
  add(route: AdapterRoute, listed = true): string | undefined {
    const refusal = this.feeds.add(route);
    if (refusal) return refusal;
    if (listed) this.routes.set(route.adapter.feed, route);
    const { adapter } = route;
    adapter.onStatus(({ status, message }) => {
      this.options.onStatus(adapter.feed, status, message);
      if (status === 'live') this.options.holds?.feedUp(adapter.feed);
    });
    if (adapter.status() === 'live') this.options.holds?.feedUp(adapter.feed);
    return undefined;
  }

  /** Holds the recorded streams (once the adapters have started). */
  startHolds(): void {
    this.options.holds?.attach(holdPort(this.feeds, this.upstream, this.index, this.holder));
  }

  /** Feeds workers route clients by (user feeds are created on demand and not listed). */
  feedInfo(): FeedInfo[] {
    return [...this.routes.values()].map(({ adapter, brokers }) => ({ feed: adapter.feed, broker: adapter.broker, brokers, status: adapter.status() }));
  }

  info(feed: string): FeedInfo | undefined {
    const route = this.routes.get(feed);
    return route && { feed, broker: route.adapter.broker, brokers: route.brokers, status: route.adapter.status() };
  }

  /**
   * `worker`'s clients now want the stream at `mode` (0: no longer). Raising goes upstream first
   * and is recorded only once the adapter accepted; lowering or leaving brings upstream down to
   * what the other workers still want.
   */
  async setInterest(worker: number, feed: string, exchange: string, symbol: string, mode: Mode | 0, depth: number): Promise<SubscribeResult> {
    let mine = this.held.get(worker);
    const k = feedStreamKey(feed, exchange, symbol);
    const previous = mine?.get(k) ?? 0;
    if (mode === 0) {
      if (previous === 0) return { ok: true };
      this.index.remove(feed, exchange, symbol, previous, worker);
      mine!.delete(k);
      await this.upstream.release(feed, exchange, symbol);
      return { ok: true };
    }
    const result = await this.upstream.acquire(feed, exchange, symbol, mode, depth, () => {
      if (previous !== 0) this.index.remove(feed, exchange, symbol, previous, worker);
      this.index.add(feed, exchange, symbol, mode, worker);
      if (!mine) this.held.set(worker, (mine = new Map()));
      mine.set(k, mode);
    });
    if (result.ok && previous > mode) await this.upstream.release(feed, exchange, symbol);
    return result;
  }

  /** A worker exited: what only it wanted is released upstream. */
  async dropWorker(worker: number): Promise<number> {
    this.held.delete(worker);
    const streams = this.index.removeAll(worker);
    await Promise.all(streams.map(({ feed, exchange, symbol }) => this.upstream.release(feed, exchange, symbol)));
    return streams.length;
  }

  /** Re-sends every wanted stream of a feed whose adapter (re)started holding nothing. */
  async replay(feed: string): Promise<void> {
    await this.upstream.replay(feed);
    // Streams held for recording that it refused before are tried again on the fresh adapter.
    this.options.holds?.feedUp(feed);
  }

  async stop(logger: Logger): Promise<void> {
    for (const adapter of this.feeds.adapters()) {
      try {
        await adapter.stop();
      } catch (error) {
        logger.warn({ feed: adapter.feed, err: (error as Error).message }, 'adapter did not stop cleanly');
      }
    }
  }
}
