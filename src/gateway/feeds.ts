/**
 * Which feed serves which broker's users. Each adapter serves a list of brokers, or every broker
 * no other adapter serves (`'*'`). Users of a broker no adapter serves are on the instance's
 * shared feed (external publishers on OpenAlgo's bare topics) if it serves that broker, and
 * otherwise on no feed at all: they are told so, and never given another feed's prices.
 * Adapters may join while the gateway runs (out-of-process adapters announce themselves on the
 * control channel).
 */
import type { Adapter } from '../feed.js';
import { SHARED_FEED } from '../protocol/topics.js';

export interface AdapterRoute {
  adapter: Adapter;
  /** Broker names whose users this adapter serves, or `'*'` for any broker not listed elsewhere. */
  brokers: readonly string[] | '*';
}

export interface FeedRoute {
  /** The feed id; NO_FEED when nothing here serves the broker. */
  feed: string;
  adapter: Adapter | undefined;
}

/** The route of a user whose broker nothing here serves. No adapter or topic has this id. */
export const NO_FEED = '\u0000none';

export class Feeds {
  private readonly byBroker = new Map<string, Adapter>();
  private fallback: Adapter | undefined;
  private readonly byFeed = new Map<string, Adapter>();

  constructor(
    routes: readonly AdapterRoute[] = [],
    /** Brokers the shared feed serves when no adapter does: names, or `'*'` for all. */
    private readonly shared: readonly string[] | '*' = '*',
  ) {
    for (const route of routes) {
      const refusal = this.add(route);
      if (refusal) throw new Error(refusal);
    }
  }

  /** Adds an adapter's route; returns why it cannot be added (a taken feed id or broker), if so. */
  add({ adapter, brokers }: AdapterRoute): string | undefined {
    if (this.byFeed.has(adapter.feed)) return `feed id "${adapter.feed}" is already in use`;
    if (brokers === '*') {
      if (this.fallback) return `feeds "${this.fallback.feed}" and "${adapter.feed}" cannot both serve every broker ('*')`;
    } else {
      const taken = brokers.find((broker) => this.byBroker.has(broker.toLowerCase()));
      if (taken) return `broker "${taken}" is already served by feed "${this.byBroker.get(taken.toLowerCase())!.feed}"`;
    }
    this.byFeed.set(adapter.feed, adapter);
    if (brokers === '*') this.fallback = adapter;
    else for (const broker of brokers) this.byBroker.set(broker.toLowerCase(), adapter);
    return undefined;
  }

  route(broker: string): FeedRoute {
    const name = broker.toLowerCase();
    const adapter = this.byBroker.get(name) ?? this.fallback;
    if (adapter) return { feed: adapter.feed, adapter };
    return { feed: this.sharedServes(name) ? SHARED_FEED : NO_FEED, adapter: undefined };
  }

  /** Whether external publishers on the bare topics serve `broker`'s users. */
  sharedServes(broker: string): boolean {
    return this.shared === '*' || this.shared.includes(broker.toLowerCase());
  }

  adapter(feed: string): Adapter | undefined {
    return this.byFeed.get(feed);
  }

  adapters(): IterableIterator<Adapter> {
    return this.byFeed.values();
  }

  /** Broker names served (for `get_supported_brokers` when VALID_BROKERS is unset). */
  brokers(): string[] {
    const names = new Set<string>();
    for (const adapter of this.byFeed.values()) names.add(adapter.broker);
    for (const broker of this.byBroker.keys()) names.add(broker);
    return [...names];
  }
}
