/**
 * Who wants which stream. A stream is (feed, exchange, symbol); each subscriber holds one or
 * more modes of it, kept as a bit mask (bit m-1 for mode m). Pure and synchronous: the gateway
 * asks it who holds a stream in which modes, and what the highest wanted mode is.
 */
import { streamKey } from '../feed.js';
import { type Mode, modeBit } from '../protocol/modes.js';

export type Subscribers<S> = Map<S, number>;

export interface HeldStream {
  feed: string;
  exchange: string;
  symbol: string;
  modes: Mode[];
}

/** The highest mode in `mask` (0 if none): what upstream must deliver for its holders. */
export function highestMode(mask: number): Mode | 0 {
  return mask >= 4 ? 3 : mask >= 2 ? 2 : mask === 1 ? 1 : 0;
}

function modesOf(mask: number): Mode[] {
  const modes: Mode[] = [];
  for (const mode of [1, 2, 3] as const) if (mask & modeBit(mode)) modes.push(mode);
  return modes;
}

/**
 * One stream of one feed and who holds it. Shared by all its subscribers: a subscription costs
 * one entry in the stream's map and one in the subscriber's set, not a record of its own.
 */
interface Stream<S> {
  readonly feed: string;
  readonly exchange: string;
  readonly symbol: string;
  readonly key: string;
  readonly subscribers: Subscribers<S>;
}

export class SubscriptionIndex<S> {
  /** feed → stream key → the stream and its subscribers' mode masks */
  private readonly byFeed = new Map<string, Map<string, Stream<S>>>();
  /** subscriber → the streams it holds, in subscription order (for cleanup and unsubscribe_all) */
  private readonly bySubscriber = new Map<S, Set<Stream<S>>>();

  private stream(feed: string, exchange: string, symbol: string): Stream<S> | undefined {
    return this.byFeed.get(feed)?.get(streamKey(exchange, symbol));
  }

  /** Adds `mode` for `subscriber`; false if it already held it. */
  add(feed: string, exchange: string, symbol: string, mode: Mode, subscriber: S): boolean {
    let streams = this.byFeed.get(feed);
    if (!streams) this.byFeed.set(feed, (streams = new Map()));
    const key = streamKey(exchange, symbol);
    let stream = streams.get(key);
    if (!stream) streams.set(key, (stream = { feed, exchange, symbol, key, subscribers: new Map() }));
    const mask = stream.subscribers.get(subscriber) ?? 0;
    if (mask & modeBit(mode)) return false;
    stream.subscribers.set(subscriber, mask | modeBit(mode));
    if (mask === 0) {
      let held = this.bySubscriber.get(subscriber);
      if (!held) this.bySubscriber.set(subscriber, (held = new Set()));
      held.add(stream);
    }
    return true;
  }

  /** Removes `mode` for `subscriber`; false if it did not hold it. */
  remove(feed: string, exchange: string, symbol: string, mode: Mode, subscriber: S): boolean {
    const stream = this.stream(feed, exchange, symbol);
    const mask = stream?.subscribers.get(subscriber) ?? 0;
    if (!(mask & modeBit(mode))) return false;
    const left = mask & ~modeBit(mode);
    if (left !== 0) {
      stream!.subscribers.set(subscriber, left);
      return true;
    }
    this.drop(stream!, subscriber);
    const held = this.bySubscriber.get(subscriber)!;
    held.delete(stream!);
    if (held.size === 0) this.bySubscriber.delete(subscriber);
    return true;
  }

  /** Takes `subscriber` off `stream`, and the stream out of the index once nobody holds it. */
  private drop(stream: Stream<S>, subscriber: S): void {
    stream.subscribers.delete(subscriber);
    if (stream.subscribers.size > 0) return;
    const streams = this.byFeed.get(stream.feed)!;
    streams.delete(stream.key);
    if (streams.size === 0) this.byFeed.delete(stream.feed);
  }

  /** Removes everything `subscriber` holds and returns it (one entry per stream). */
  removeAll(subscriber: S): HeldStream[] {
    const held = this.bySubscriber.get(subscriber);
    if (!held) return [];
    this.bySubscriber.delete(subscriber);
    const removed: HeldStream[] = [];
    for (const stream of held) {
      const { feed, exchange, symbol } = stream;
      removed.push({ feed, exchange, symbol, modes: modesOf(stream.subscribers.get(subscriber)!) });
      this.drop(stream, subscriber);
    }
    return removed;
  }

  /** What `subscriber` holds, in subscription order. */
  held(subscriber: S): HeldStream[] {
    const held = this.bySubscriber.get(subscriber);
    if (!held) return [];
    return [...held].map(({ feed, exchange, symbol, subscribers }) => ({
      feed,
      exchange,
      symbol,
      modes: modesOf(subscribers.get(subscriber)!),
    }));
  }

  /** Subscribers of one stream (by key, for the fan-out hot path). */
  subscribers(feed: string, key: string): Subscribers<S> | undefined {
    return this.byFeed.get(feed)?.get(key)?.subscribers;
  }

  /** Feeds that have at least one subscriber. */
  feeds(): IterableIterator<string> {
    return this.byFeed.keys();
  }

  /** Highest mode any subscriber wants of a stream (0 = nobody): what upstream must deliver. */
  wantedMode(feed: string, exchange: string, symbol: string): Mode | 0 {
    const stream = this.stream(feed, exchange, symbol);
    if (!stream) return 0;
    let mask = 0;
    for (const m of stream.subscribers.values()) mask |= m;
    return highestMode(mask);
  }

  /** Every stream of a feed with its wanted mode (replayed to an adapter that reconnects). */
  *wanted(feed: string): IterableIterator<{ exchange: string; symbol: string; mode: Mode }> {
    const streams = this.byFeed.get(feed);
    if (!streams) return;
    for (const { exchange, symbol, subscribers } of streams.values()) {
      let mask = 0;
      for (const m of subscribers.values()) mask |= m;
      yield { exchange, symbol, mode: highestMode(mask) as Mode };
    }
  }

  /** Every stream with the modes at least one subscriber holds of it. */
  *streamModes(): IterableIterator<HeldStream> {
    for (const streams of this.byFeed.values()) {
      for (const { feed, exchange, symbol, subscribers } of streams.values()) {
        let mask = 0;
        for (const m of subscribers.values()) mask |= m;
        yield { feed, exchange, symbol, modes: modesOf(mask) };
      }
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
    return this.stream(feed, exchange, symbol)?.subscribers.has(subscriber) ?? false;
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
