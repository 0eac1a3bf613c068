/**
 * Who wants which stream. A stream is (feed, exchange, symbol); each subscriber holds one or
 * more modes of it, kept as a bit mask (bit m-1 for mode m). Pure and synchronous: the gateway
 * asks it who receives a tick and what the highest wanted mode is.
 */
import type { Mode } from '../protocol/modes.js';

export type Subscribers<S> = Map<S, number>;

export interface HeldStream {
  feed: string;
  exchange: string;
  symbol: string;
  modes: Mode[];
}

const bit = (mode: Mode): number => 1 << (mode - 1);

/** NUL separates the parts: requests with control characters in a symbol or exchange are refused. */
export const streamKey = (exchange: string, symbol: string): string => `${exchange}\u0000${symbol}`;

/** The highest mode in `mask` that is ≤ `mode` (0 if none): the mode a tick is delivered as. */
export function deliveryMode(mask: number, mode: Mode): Mode | 0 {
  const within = mask & ((1 << mode) - 1);
  if (within === 0) return 0;
  return (within >= 4 ? 3 : within >= 2 ? 2 : 1) as Mode;
}

export function highestMode(mask: number): Mode | 0 {
  return deliveryMode(mask, 3);
}

function modesOf(mask: number): Mode[] {
  const modes: Mode[] = [];
  for (const mode of [1, 2, 3] as const) if (mask & bit(mode)) modes.push(mode);
  return modes;
}

interface Held {
  feed: string;
  exchange: string;
  symbol: string;
}

export class SubscriptionIndex<S> {
  /** feed → stream key → subscriber → mode mask */
  private readonly byFeed = new Map<string, Map<string, Subscribers<S>>>();
  /** subscriber → "feed\0stream key" → where it is held (for cleanup and unsubscribe_all) */
  private readonly bySubscriber = new Map<S, Map<string, Held>>();

  /** Adds `mode` for `subscriber`; false if it already held it. */
  add(feed: string, exchange: string, symbol: string, mode: Mode, subscriber: S): boolean {
    let streams = this.byFeed.get(feed);
    if (!streams) this.byFeed.set(feed, (streams = new Map()));
    const key = streamKey(exchange, symbol);
    let subscribers = streams.get(key);
    if (!subscribers) streams.set(key, (subscribers = new Map()));
    const mask = subscribers.get(subscriber) ?? 0;
    if (mask & bit(mode)) return false;
    subscribers.set(subscriber, mask | bit(mode));

    let held = this.bySubscriber.get(subscriber);
    if (!held) this.bySubscriber.set(subscriber, (held = new Map()));
    held.set(`${feed}\u0000${key}`, { feed, exchange, symbol });
    return true;
  }

  /** Removes `mode` for `subscriber`; false if it did not hold it. */
  remove(feed: string, exchange: string, symbol: string, mode: Mode, subscriber: S): boolean {
    const streams = this.byFeed.get(feed);
    const key = streamKey(exchange, symbol);
    const subscribers = streams?.get(key);
    const mask = subscribers?.get(subscriber) ?? 0;
    if (!(mask & bit(mode))) return false;
    const left = mask & ~bit(mode);
    if (left !== 0) {
      subscribers!.set(subscriber, left);
      return true;
    }
    subscribers!.delete(subscriber);
    if (subscribers!.size === 0) {
      streams!.delete(key);
      if (streams!.size === 0) this.byFeed.delete(feed);
    }
    const held = this.bySubscriber.get(subscriber)!;
    held.delete(`${feed}\u0000${key}`);
    if (held.size === 0) this.bySubscriber.delete(subscriber);
    return true;
  }

  /** Removes everything `subscriber` holds and returns it (one entry per stream). */
  removeAll(subscriber: S): HeldStream[] {
    const held = this.bySubscriber.get(subscriber);
    if (!held) return [];
    const removed: HeldStream[] = [];
    for (const { feed, exchange, symbol } of [...held.values()]) {
      const mask = this.byFeed.get(feed)?.get(streamKey(exchange, symbol))?.get(subscriber) ?? 0;
      const modes = modesOf(mask);
      for (const mode of modes) this.remove(feed, exchange, symbol, mode, subscriber);
      removed.push({ feed, exchange, symbol, modes });
    }
    return removed;
  }

  /** What `subscriber` holds, in subscription order. */
  held(subscriber: S): HeldStream[] {
    const held = this.bySubscriber.get(subscriber);
    if (!held) return [];
    return [...held.values()].map(({ feed, exchange, symbol }) => ({
      feed,
      exchange,
      symbol,
      modes: modesOf(this.byFeed.get(feed)!.get(streamKey(exchange, symbol))!.get(subscriber)!),
    }));
  }

  /** Subscribers of one stream (by key, for the fan-out hot path). */
  subscribers(feed: string, key: string): Subscribers<S> | undefined {
    return this.byFeed.get(feed)?.get(key);
  }

  /** Feeds that have at least one subscriber (shared-feed ticks reach all of them). */
  feeds(): IterableIterator<string> {
    return this.byFeed.keys();
  }

  /** Highest mode any subscriber wants of a stream (0 = nobody): what upstream must deliver. */
  wantedMode(feed: string, exchange: string, symbol: string): Mode | 0 {
    const subscribers = this.byFeed.get(feed)?.get(streamKey(exchange, symbol));
    if (!subscribers) return 0;
    let mask = 0;
    for (const m of subscribers.values()) mask |= m;
    return highestMode(mask);
  }

  /** Every stream of a feed with its wanted mode (replayed to an adapter that reconnects). */
  *wanted(feed: string): IterableIterator<{ exchange: string; symbol: string; mode: Mode }> {
    const streams = this.byFeed.get(feed);
    if (!streams) return;
    for (const [key, subscribers] of streams) {
      let mask = 0;
      for (const m of subscribers.values()) mask |= m;
      const cut = key.indexOf('\u0000');
      yield { exchange: key.slice(0, cut), symbol: key.slice(cut + 1), mode: highestMode(mask) as Mode };
    }
  }

  /** Number of (feed, stream) pairs with subscribers. */
  get streamCount(): number {
    let n = 0;
    for (const streams of this.byFeed.values()) n += streams.size;
    return n;
  }

  /** Whether `subscriber` holds any mode of the stream. */
  holds(feed: string, exchange: string, symbol: string, subscriber: S): boolean {
    return this.bySubscriber.get(subscriber)?.has(`${feed}\u0000${streamKey(exchange, symbol)}`) ?? false;
  }

  /** Streams one subscriber holds. */
  heldBy(subscriber: S): number {
    return this.bySubscriber.get(subscriber)?.size ?? 0;
  }

  /** (subscriber, stream) pairs. */
  get heldCount(): number {
    let n = 0;
    for (const held of this.bySubscriber.values()) n += held.size;
    return n;
  }

  get subscriberCount(): number {
    return this.bySubscriber.size;
  }
}
