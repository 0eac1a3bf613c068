/**
 * Which feed serves which broker's users. Each in-process adapter serves a list of brokers, or
 * every broker no other adapter serves (`'*'`); users of any other broker are on the instance's
 * shared feed, fed by external publishers on OpenAlgo's bare topics.
 */
import type { Adapter } from '../adapters/adapter.js';
import { SHARED_FEED } from '../protocol/topics.js';

export interface AdapterRoute {
  adapter: Adapter;
  /** Broker names whose users this adapter serves, or `'*'` for any broker not listed elsewhere. */
  brokers: readonly string[] | '*';
}

export interface FeedRoute {
  feed: string;
  adapter: Adapter | undefined;
}

export class Feeds {
  private readonly byBroker = new Map<string, Adapter>();
  private readonly fallback: Adapter | undefined;
  private readonly byFeed = new Map<string, Adapter>();

  constructor(routes: readonly AdapterRoute[]) {
    let fallback: Adapter | undefined;
    for (const { adapter, brokers } of routes) {
      if (this.byFeed.has(adapter.feed)) throw new Error(`two adapters share the feed id "${adapter.feed}"`);
      this.byFeed.set(adapter.feed, adapter);
      if (brokers === '*') {
        if (fallback) throw new Error(`adapters "${fallback.feed}" and "${adapter.feed}" both serve every broker`);
        fallback = adapter;
      } else {
        for (const broker of brokers) this.byBroker.set(broker.toLowerCase(), adapter);
      }
    }
    this.fallback = fallback;
  }

  route(broker: string): FeedRoute {
    const adapter = this.byBroker.get(broker.toLowerCase()) ?? this.fallback;
    return { feed: adapter ? adapter.feed : SHARED_FEED, adapter };
  }

  adapter(feed: string): Adapter | undefined {
    return this.byFeed.get(feed);
  }

  adapters(): IterableIterator<Adapter> {
    return this.byFeed.values();
  }

  /** Broker names served in-process (for `get_supported_brokers` when VALID_BROKERS is unset). */
  brokers(): string[] {
    const names = new Set<string>();
    for (const adapter of this.byFeed.values()) names.add(adapter.broker);
    for (const broker of this.byBroker.keys()) names.add(broker);
    return [...names];
  }
}
