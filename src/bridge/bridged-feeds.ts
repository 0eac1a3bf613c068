/**
 * Users' feeds served by the OpenAlgo bridge: OpenAlgo's own broker adapters, one per user, in
 * one Python process that registers as a feed host (docs/control-protocol.md, Feed hosts;
 * docs/openalgo.md). To the gateway each is one more per-user broker feed (gateway/user-feeds.ts
 * decides when to open one, exactly as for the native Zerodha and Angel feeds), so a bridged
 * user's ticks reach only that user's clients.
 */
import { NATIVE_BROKERS, OPENALGO_BROKERS } from '../brokers.js';
import type { Adapter, BrokerAdapterFactory } from '../feed.js';
import { HostedFeed } from '../control/hosted-feed.js';
import type { RemoteAdapter } from '../control/remote-adapter.js';
import type { Logger } from '../observability/logger.js';

/** How long a subscribe waits for the bridge to (re)attach: a bridge starts in a second or two. */
export const HOST_WAIT_MS = 4000;

/**
 * Brokers whose users the bridge serves: every broker OpenAlgo streams for that has no native
 * adapter here, and the native ones named in `forced` (TICKCAST_BRIDGE_BROKERS).
 */
export function bridgedBrokers(forced: readonly string[] = []): string[] {
  return OPENALGO_BROKERS.filter((broker) => !NATIVE_BROKERS.includes(broker) || forced.includes(broker));
}

export interface BridgedFeedsOptions {
  /** Brokers routed to the bridge (bridgedBrokers). */
  brokers: readonly string[];
  /** Whether a user has a usable broker session, and why not (the native feeds' checks, over the same store). */
  credentials: Pick<BrokerAdapterFactory, 'hasCredentials' | 'whyNot'>;
  /** Why no bridge is attached now, as a sentence for users: starting, restarting, failed, not run. */
  noBridge: () => string;
  logger: Logger;
  hostWaitMs?: number;
}

export class BridgedFeeds implements BrokerAdapterFactory {
  readonly brokers: readonly string[];
  private host: RemoteAdapter | undefined;
  private replay: (feed: string) => Promise<void> = async () => {};
  private readonly feeds = new Map<string, HostedFeed>();
  /** Why the bridge cannot run, once it has failed for good. */
  private failure: string | undefined;

  constructor(private readonly options: BridgedFeedsOptions) {
    this.brokers = options.brokers;
  }

  hasCredentials(user: string, broker: string): boolean | Promise<boolean> {
    return this.options.credentials.hasCredentials(user, broker);
  }

  whyNot(user: string, broker: string): string | undefined {
    return this.options.credentials.whyNot?.(user, broker);
  }

  create(user: string, broker: string, feed: string): Adapter {
    const hosted = new HostedFeed({
      feed,
      broker,
      user,
      host: () => this.host,
      noHost: () => this.failure ?? this.options.noBridge(),
      noHostForGood: () => this.failure !== undefined,
      hostWaitMs: this.options.hostWaitMs ?? HOST_WAIT_MS,
      logger: this.options.logger,
    });
    this.feeds.set(feed, hosted);
    return hosted;
  }

  /** The feed host registered now, if any (for status pages). */
  get attached(): RemoteAdapter | undefined {
    return this.host?.connected ? this.host : undefined;
  }

  /**
   * A feed host registered with the gateway: the bridge. Every bridged feed is opened there and
   * its streams replayed on each of its registrations (a restarted bridge knows nothing), and
   * again when a feed turns live (streams refused while it was connecting are asked again).
   */
  attach(host: RemoteAdapter, replay: (feed: string) => Promise<void>): void {
    this.host = host;
    this.replay = replay;
    host.onReconnect(() => {
      for (const feed of this.feeds.values()) {
        feed.open(host);
        void this.replay(feed.feed);
      }
    });
    host.onStatus((event) => {
      if (event.status !== 'down') return;
      const reason = `the OpenAlgo bridge is not connected (${event.message ?? 'it stopped'}); ${this.options.noBridge()}`;
      for (const feed of this.feeds.values()) feed.hostLost(reason);
    });
    host.onHostedStatus((feed, status, message) => {
      const hosted = this.feeds.get(feed);
      if (hosted?.receiveStatus(status, message)) void this.replay(feed);
    });
    this.options.logger.info({ feed: host.feed, adapterPid: host.pid, brokers: host.hosts?.length ?? 0 }, 'OpenAlgo bridge connected');
  }

  /** Why another feed host cannot serve the bridged feeds: one (under its feed id) already does. */
  taken(): string | undefined {
    return this.host ? `the bridged users' feeds are already served by the feed host "${this.host.feed}" (pid ${this.host.pid})` : undefined;
  }

  /** The bridge cannot run (it failed to start for good): every bridged feed is down, saying why. */
  unavailable(reason: string): void {
    this.failure = reason;
    for (const feed of this.feeds.values()) feed.hostLost(reason, 'down');
  }
}

/**
 * One factory of users' feeds from two: the native adapters for their brokers, except those the
 * bridge is told to serve, and the bridge for every broker it serves.
 */
export function withBridge(native: BrokerAdapterFactory, bridged: BridgedFeeds): BrokerAdapterFactory {
  const nativeBrokers = native.brokers.filter((broker) => !bridged.brokers.includes(broker));
  const pick = (broker: string): BrokerAdapterFactory => (nativeBrokers.includes(broker) ? native : bridged);
  return {
    brokers: [...nativeBrokers, ...bridged.brokers],
    hasCredentials: (user, broker) => pick(broker).hasCredentials(user, broker),
    whyNot: (user, broker) => pick(broker).whyNot?.(user, broker),
    create: (user, broker, feed) => pick(broker).create(user, broker, feed),
  };
}
