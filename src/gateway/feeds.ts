/**
 * Which feed serves which broker's users. Each adapter serves a list of brokers, or every broker
 * no other adapter serves (`'*'`); users of any other broker are on the instance's shared feed,
 * fed by external publishers on OpenAlgo's bare topics. Adapters may join while the gateway runs
 * (out-of-process adapters announce themselves on the control channel).
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
  private fallback: Adapter | undefined;
  private readonly byFeed = new Map<string, Adapter>();

  constructor(routes: readonly AdapterRoute[] = []) {
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
    const adapter = this.byBroker.get(broker.toLowerCase()) ?? this.fallback;
    return { feed: adapter ? adapter.feed : SHARED_FEED, adapter };
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
