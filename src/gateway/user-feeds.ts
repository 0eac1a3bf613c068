/**
 * Per-user broker feeds: a user whose broker has an adapter type here (the native Zerodha and
 * Angel adapters, or OpenAlgo's through the bridge) and who has stored credentials for it gets an
 * adapter of their own, created at their first authentication, so their ticks come from their
 * own broker session and reach only them.
 */
import { createHash } from 'node:crypto';
import { isRealBroker } from '../brokers.js';
import type { Clock } from '../clock.js';
import type { Adapter, BrokerAdapterFactory } from '../feed.js';
import type { Logger } from '../observability/logger.js';
import { isValidFeedId } from '../protocol/topics.js';

/** `zerodha.alice`, or a hash of the user name when it has characters a feed id cannot. */
export function userFeedId(broker: string, user: string): string {
  const plain = `${broker}.${user}`;
  if (isValidFeedId(plain)) return plain;
  return `${broker}.u${createHash('sha256').update(user).digest('hex').slice(0, 16)}`;
}

/**
 * Whether `feed` has the form of a user's own broker feed (`zerodha.…`, `dhan.…`): those ids
 * belong to the users' feeds alone (native, or opened by the OpenAlgo bridge), so no
 * out-of-process adapter may take one (it would squat the user's feed).
 */
export function isUserFeedId(feed: string): boolean {
  const dot = feed.indexOf('.');
  return dot > 0 && isRealBroker(feed.slice(0, dot));
}

/** Re-logins of one user acted on at most once per this long (the last one always is). */
export const RELOGIN_DEBOUNCE_MS = 2000;

export class UserFeeds {
  private readonly adapters = new Map<string, Adapter>();
  /** Per user with a feed: when their feeds last reconnected for a re-login, and one to come. */
  private readonly relogins = new Map<string, { at: number; pending: NodeJS.Timeout | undefined }>();

  constructor(
    private readonly factory: BrokerAdapterFactory,
    /** Registers a new adapter with the gateway (its feed and status events). */
    private readonly register: (adapter: Adapter) => string | undefined,
    private readonly logger: Logger,
    private readonly clock: Clock,
    private readonly debounceMs = RELOGIN_DEBOUNCE_MS,
  ) {}

  /**
   * The feed for `user` on `broker`, starting the user's adapter if needed; undefined when this
   * broker has no adapter type here or the user has no credentials (the gateway then routes by
   * broker as usual).
   */
  async feedFor(user: string, broker: string): Promise<string | undefined> {
    const feed = await this.ownFeed(user, broker);
    if (feed === undefined) return undefined;
    const name = broker.toLowerCase();
    if (!this.adapters.has(feed)) {
      const adapter = this.factory.create(user, name, feed);
      const refusal = this.register(adapter);
      if (refusal) throw new Error(refusal);
      this.adapters.set(feed, adapter);
      this.logger.info({ user, broker: name, feed }, 'starting a broker feed for the user');
      await adapter.start();
    }
    return feed;
  }

  /**
   * The id of the feed of `user`'s own on `broker`, as feedFor decides it, without starting
   * anything (for reading what it recorded); undefined when they have none.
   */
  async ownFeed(user: string, broker: string): Promise<string | undefined> {
    const name = broker.toLowerCase();
    if (!this.factory.brokers.includes(name)) return undefined;
    const feed = userFeedId(name, user);
    let usable: boolean;
    try {
      usable = await this.factory.hasCredentials(user, name);
    } catch (error) {
      // The store cannot be read now: a feed already running keeps serving the user.
      if (this.adapters.has(feed)) return feed;
      throw error;
    }
    return usable ? feed : undefined;
  }

  /** Brokers whose users get a feed of their own here. */
  get brokers(): readonly string[] {
    return this.factory.brokers;
  }

  /** Whether `feed` is a user's own broker feed. */
  has(feed: string): boolean {
    return this.adapters.has(feed);
  }

  /** How many user feeds each broker has, by status (user names stay out of public figures). */
  counts(): Record<string, Record<string, number>> {
    const counts: Record<string, Record<string, number>> = {};
    for (const adapter of this.adapters.values()) {
      const byStatus = (counts[adapter.broker] ??= {});
      byStatus[adapter.status()] = (byStatus[adapter.status()] ?? 0) + 1;
    }
    return counts;
  }

  /**
   * The user's credentials changed (OpenAlgo's CACHE_INVALIDATE after a re-login). Any bus
   * publisher can send that, so a flood must not make the user's broker feed log in again and
   * again: the first reconnects at once, and those within the next `debounceMs` make one more
   * reconnect at its end, which picks up whatever the last of them changed.
   */
  credentialsChanged(user: string): void {
    if (!this.factory.brokers.some((broker) => this.adapters.has(userFeedId(broker, user)))) return;
    const now = this.clock.now();
    const last = this.relogins.get(user);
    if (last && now - last.at < this.debounceMs) {
      last.pending ??= setTimeout(() => {
        last.pending = undefined;
        last.at = this.clock.now();
        this.reconnect(user);
      }, this.debounceMs - (now - last.at));
      last.pending.unref();
      return;
    }
    this.relogins.set(user, { at: now, pending: undefined });
    this.reconnect(user);
  }

  private reconnect(user: string): void {
    for (const broker of this.factory.brokers) this.adapters.get(userFeedId(broker, user))?.credentialsChanged?.();
  }
}
