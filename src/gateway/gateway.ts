/**
 * One instance's gateway: the client listener, the subscription index, upstream interest, the
 * bus subscription and fan-out, wired together. Adapters and the key verifier are injected.
 */
import type { Adapter } from '../adapters/adapter.js';
import type { Clock } from '../clock.js';
import { OPENALGO_EXTENSIONS, WireEncoder } from '../protocol/encoding.js';
import { feedStatusEvent } from '../protocol/replies.js';
import type { BusSubscriber } from '../bus/bus.js';
import type { Logger } from '../observability/logger.js';
import type { AdapterRoute } from './feeds.js';
import { Feeds } from './feeds.js';
import { BusListener } from './bus-listener.js';
import { FanOut } from './fan-out.js';
import { type KeyVerifier, RequestHandler } from './request-handler.js';
import type { Session } from './session.js';
import { SubscriptionIndex } from './subscription-index.js';
import { Upstream } from './upstream.js';
import { type BrokerAdapterFactory, UserFeeds } from './user-feeds.js';
import { ClientListener, type ClientListenerOptions } from './websocket-server.js';

export interface GatewayOptions {
  listener: Omit<ClientListenerOptions, 'clock' | 'logger' | 'onRequest' | 'onClose' | 'encoder' | 'defaultExtensions'>;
  bus: BusSubscriber;
  adapters: readonly AdapterRoute[];
  verifier: KeyVerifier & { invalidateUser?(user: string): void };
  /** Builds per-user broker adapters (Zerodha, Angel) for users with stored credentials. */
  brokerAdapters?: BrokerAdapterFactory;
  /** Send a stream's last value on subscribe unless a client opts out (default true). */
  snapshots?: boolean;
  /** `get_supported_brokers`; defaults to the brokers served in-process. */
  supportedBrokers?: readonly string[];
  clock: Clock;
  logger: Logger;
}

export class Gateway {
  readonly index = new SubscriptionIndex<Session>();
  readonly feeds: Feeds;
  readonly upstream: Upstream;
  readonly fanOut: FanOut;
  readonly busListener: BusListener;
  readonly listener: ClientListener;
  private readonly handler: RequestHandler;
  private readonly sessionsByUser = new Map<string, Set<Session>>();
  private readonly userFeeds: UserFeeds | undefined;

  constructor(private readonly options: GatewayOptions) {
    const { clock, logger } = options;
    this.feeds = new Feeds(options.adapters);
    for (const adapter of this.feeds.adapters()) this.watch(adapter);
    this.upstream = new Upstream(this.feeds, this.index as SubscriptionIndex<unknown>, logger);
    this.userFeeds = options.brokerAdapters
      ? new UserFeeds(options.brokerAdapters, (adapter) => this.addAdapter({ adapter, brokers: [] }), logger)
      : undefined;
    const encoder = new WireEncoder();
    const defaultExtensions = { ...OPENALGO_EXTENSIONS, snapshot: options.snapshots ?? true };
    this.fanOut = new FanOut(this.index, encoder);
    this.handler = new RequestHandler({
      verifier: options.verifier,
      feeds: this.feeds,
      upstream: this.upstream,
      index: this.index,
      clock,
      logger,
      supportedBrokers: options.supportedBrokers ?? [...new Set([...this.feeds.brokers(), ...(options.brokerAdapters?.brokers ?? [])])],
      onUserChange: (session, previous) => this.moveUser(session, previous),
      defaultExtensions,
      snapshot: (session, route) => void this.fanOut.snapshot(session, route),
      ...(this.userFeeds ? { userFeed: (user: string, broker: string) => this.userFeeds!.feedFor(user, broker) } : {}),
    });
    this.busListener = new BusListener({
      fanOut: this.fanOut,
      logger,
      onOrderUpdate: (user, payload) => {
        const sessions = this.sessionsByUser.get(user);
        if (sessions) this.fanOut.deliverOrderUpdate(sessions, payload);
      },
      onCacheInvalidate: (user, cacheType) => {
        logger.info({ user, cacheType }, 'cache invalidation from the bus: cached API key results for the user dropped');
        options.verifier.invalidateUser?.(user);
        // A broker re-login: the user's own feed reconnects with the new credentials.
        this.userFeeds?.credentialsChanged(user);
      },
    });
    options.bus.onMessage(this.busListener.handle);
    options.bus.onMalformed((reason) => this.busListener.reject('(message)', reason));
    this.listener = new ClientListener({
      ...options.listener,
      encoder,
      defaultExtensions,
      clock,
      logger,
      onRequest: (session, request) => this.handler.handle(session, request),
      onClose: (session) => {
        this.handler.dropAll(session);
        this.moveUser(session, session.user, true);
      },
    });
  }

  /**
   * Adds an adapter that joined at run time (an out-of-process adapter's hello). Returns why it
   * was refused, if it was. Sessions whose broker it serves move to its feed.
   */
  addAdapter(route: AdapterRoute): string | undefined {
    const refusal = this.feeds.add(route);
    if (refusal) return refusal;
    this.watch(route.adapter);
    for (const session of this.listener.sessions) {
      if (!session.authenticated) continue;
      const { feed } = this.feeds.route(session.broker);
      if (feed !== session.feed) void this.handler.rehome(session, feed);
    }
    return undefined;
  }

  /** Tells a feed's clients when its status changes. */
  private watch(adapter: Adapter): void {
    let previous = adapter.status();
    adapter.onStatus(({ status, message }) => {
      if (status === previous) return;
      previous = status;
      this.options.logger.info({ feed: adapter.feed, status, message }, 'feed status changed');
      const event = feedStatusEvent(adapter.feed, adapter.broker, status, message, this.options.clock.now());
      for (const session of this.listener.sessions) {
        if (session.authenticated && session.feed === adapter.feed) session.reply(event);
      }
    });
  }

  /** Re-sends every wanted stream of a feed whose adapter (re)started holding nothing. */
  replay(feed: string): Promise<void> {
    return this.upstream.replay(feed);
  }

  private moveUser(session: Session, previous: string | null, leaving = false): void {
    if (previous !== null) {
      const set = this.sessionsByUser.get(previous);
      set?.delete(session);
      if (set?.size === 0) this.sessionsByUser.delete(previous);
    }
    if (!leaving && session.user !== null) {
      let set = this.sessionsByUser.get(session.user);
      if (!set) this.sessionsByUser.set(session.user, (set = new Set()));
      set.add(session);
    }
  }

  /** Starts adapters, then the client listener. Resolves with the WebSocket port. */
  async start(): Promise<number> {
    for (const adapter of this.feeds.adapters()) await adapter.start();
    return this.listener.listen();
  }

  /** Closes clients (going away), stops adapters and the bus. */
  async stop(): Promise<void> {
    await this.listener.close();
    for (const adapter of this.feeds.adapters()) {
      try {
        await adapter.stop();
      } catch (error) {
        this.options.logger.warn({ feed: adapter.feed, err: (error as Error).message }, 'adapter did not stop cleanly');
      }
    }
    await this.options.bus.close();
  }
}
