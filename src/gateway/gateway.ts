/**
 * One instance's gateway: the client listener, the subscription index, upstream interest, the
 * bus subscription and fan-out, wired together. Adapters and the key verifier are injected.
 */
import { type Adapter, type BrokerAdapterFactory, streamKey } from '../feed.js';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { randomBytes } from 'node:crypto';
import type { Clock } from '../clock.js';
import { GatewayMetrics, type MetricsSource } from '../observability/metrics.js';
import { OPENALGO_EXTENSIONS, WireEncoder } from '../protocol/encoding.js';
import { type Reply, feedStatusEvent } from '../protocol/replies.js';
import { SHARED_FEED } from '../protocol/topics.js';
import { SIMULATOR_BROKER } from '../brokers.js';
import type { BusSubscriber } from '../bus/bus.js';
import type { Logger } from '../observability/logger.js';
import type { ProxyFigures } from '../observability/openalgo-stats.js';
import type { AdapterRoute } from './feeds.js';
import { Feeds, NO_FEED } from './feeds.js';
import type { Recorder } from '../history/recorder.js';
import { historySection } from '../history/figures.js';
import type { FrameFigures } from '../history/frame-recorder.js';
import { BusListener } from './bus-listener.js';
import { FanOut } from './fan-out.js';
import type { RecoveryLimits } from './recent-ticks.js';
import { type KeyVerifier, RequestHandler } from './request-handler.js';
import type { Session } from './session.js';
import { SubscriptionIndex } from './subscription-index.js';
import { StreamHolder, holdPort } from './stream-holds.js';
import { Upstream } from './upstream.js';
import { type ConnectionLedger, type FailedAuths, failedAuthsFor } from './limits.js';
import { SharedConnections } from './shared-connections.js';
import { UserFeeds, isUserFeedId } from './user-feeds.js';
import { ClientListener, type ClientListenerOptions } from './websocket-server.js';

export interface GatewayOptions {
  listener: Omit<ClientListenerOptions, 'clock' | 'logger' | 'onRequest' | 'onClose' | 'encoder' | 'defaultExtensions'>;
  bus: BusSubscriber;
  adapters: readonly AdapterRoute[];
  verifier: KeyVerifier & { invalidateUser?(user: string): void };
  /** Builds per-user broker adapters (Zerodha, Angel) for users with stored credentials. */
  brokerAdapters?: BrokerAdapterFactory;
  /** Per-key connections, subscriptions, request rate, and failed authentications per address. */
  limits?: { maxConnectionsPerKey?: number; maxSubscriptions?: number; subscribeRate?: number; authFailures?: number };
  /** Records the ticks TICKCAST_RECORD selects (history/recorder.ts); absent when nothing is. */
  recorder?: Recorder;
  /** Records the native broker sockets' raw frames (TICKCAST_RECORD_FRAMES): only its figures are read here. */
  frames?: { snapshot(): FrameFigures };
  /** Send a stream's last value on subscribe unless a client opts out (default true). */
  snapshots?: boolean;
  /** Snapshots only of ticks younger than this, from the feed's current live session (default 60 s). */
  snapshotMaxAgeMs?: number;
  /** Recent ticks kept per stream for recovery after reconnect (recent-ticks.ts; `ticks: 0` turns it off). */
  recovery?: Partial<RecoveryLimits>;
  /**
   * Brokers whose users the shared feed (external publishers on OpenAlgo's bare topics) serves
   * when no adapter does: names, or `'*'` for all (default, as OpenAlgo's proxy).
   */
  sharedFeedBrokers?: readonly string[] | '*';
  /** `get_supported_brokers`; defaults to the brokers served in-process. */
  supportedBrokers?: readonly string[];
  /** Set in a worker of `--workers N`: its number, shown in `/api/status`. */
  cluster?: { worker: number };
  /**
   * Set in a worker of `--workers N`: the instance's counts, kept by the primary, in place of this
   * gateway's own, so the limits are per instance. `connections` is what limits.maxConnectionsPerKey
   * counts; `failedAuths` (its `shared` counts) is used instead of one made from limits.authFailures.
   */
  shared?: { connections?: ConnectionLedger; failedAuths?: FailedAuths };
  /**
   * Builds the handler of plain HTTP requests on the WebSocket port (src/http/routes.ts: health,
   * figures, dashboard), given this gateway; without it every such request is told to use a WebSocket.
   */
  http?: (gateway: Gateway) => (request: IncomingMessage, response: ServerResponse) => boolean;
  clock: Clock;
  logger: Logger;
}

export class Gateway {
  readonly index = new SubscriptionIndex<Session | StreamHolder>();
  /** The gateway's own subscriber of the streams it holds for recording (stream-holds.ts). */
  private readonly holder = new StreamHolder();
  readonly feeds: Feeds;
  readonly upstream: Upstream;
  readonly fanOut: FanOut;
  /**
   * This gateway process's `seq_epoch`: `seq` is numbered here, so a client's numbers mean
   * something only to the process that gave them (recovery after reconnect).
   */
  readonly epoch = randomBytes(8).toString('hex');
  readonly busListener: BusListener;
  readonly listener: ClientListener;
  private readonly handler: RequestHandler;
  readonly metrics: GatewayMetrics;
  private readonly startedAt: number;
  private readonly sessionsByUser = new Map<string, Set<Session>>();
  private readonly userFeeds: UserFeeds | undefined;
  private readonly http: ((request: IncomingMessage, response: ServerResponse) => boolean) | undefined;
  /** Failed authentications per address (absent when unlimited). */
  readonly failedAuths: FailedAuths | undefined;
  /** Connections per key counted by the instance's primary (`--workers N`). */
  private readonly sharedConnections: SharedConnections | undefined;
  /** Each adapter's feed as last heard: status, its message, since when it is live, and how many changes were told. */
  private readonly feedStates = new Map<string, { status: string; message: string | undefined; liveSince: number | undefined; changes: number }>();

  constructor(private readonly options: GatewayOptions) {
    const { clock, logger } = options;
    this.startedAt = clock.now();
    this.feeds = new Feeds(options.adapters, options.sharedFeedBrokers ?? '*');
    for (const adapter of this.feeds.adapters()) this.watch(adapter);
    this.upstream = new Upstream(this.feeds, this.index as SubscriptionIndex<unknown>, logger, options.bus.interest);
    this.userFeeds = options.brokerAdapters
      ? new UserFeeds(options.brokerAdapters, (adapter) => this.addAdapter({ adapter, brokers: [] }), logger, clock)
      : undefined;
    // One count per address for the WebSocket and the dashboard's X-API-Key alike.
    const failedAuths = (this.failedAuths =
      options.shared?.failedAuths ??
      (options.limits?.authFailures ? failedAuthsFor(options.limits.authFailures, clock) : undefined));
    const perKey = options.limits?.maxConnectionsPerKey;
    const shared = (this.sharedConnections = options.shared?.connections && perKey !== undefined ? new SharedConnections(options.shared.connections, perKey) : undefined);
    const encoder = new WireEncoder();
    const defaultExtensions = { ...OPENALGO_EXTENSIONS, snapshot: options.snapshots ?? true };
    this.fanOut = new FanOut(this.index, encoder, {
      clock,
      brokerOf: (feed) => this.feeds.adapter(feed)?.broker ?? '',
      ...(options.recovery ? { recovery: options.recovery } : {}),
    });
    const fanOut = this.fanOut;
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
      snapshot: (session, route) => void this.fanOut.snapshot(session, route, (arrivedAt) => this.isCurrent(route.feed, arrivedAt)),
      recovery: {
        epoch: this.epoch,
        start: (session, route) => fanOut.startRecovery(session, route),
        recover: (session, route, since, marked, mismatch) => fanOut.recover(session, route, since, marked, mismatch),
        end: (session, route) => fanOut.endRecovery(session, route),
      },
      joinStatus: (session) => this.joinStatus(session),
      noFeedReason: (user, broker) => this.noFeedReason(user, broker),
      ...(options.limits ? { limits: options.limits } : {}),
      ...(failedAuths ? { failedAuths } : {}),
      sessionsOf: (user) => this.sessionsByUser.get(user)?.size ?? 0,
      ...(shared ? { reserveConnection: (session: Session, user: string) => shared.reserve(session, user) } : {}),
      ...(this.userFeeds ? { userFeed: (user: string, broker: string) => this.userFeeds!.feedFor(user, broker) } : {}),
    });
    this.metrics = new GatewayMetrics(this.metricsSource());
    this.busListener = new BusListener({
      fanOut: this.fanOut,
      logger,
      now: () => clock.now(),
      ...(options.recorder ? { recorder: options.recorder } : {}),
      onTickAge: (ms) => this.metrics.latency.observe(ms / 1000),
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
      onHttp: (request, response) => this.http?.(request, response) ?? false,
      onClose: (session) => {
        this.handler.dropAll(session);
        this.moveUser(session, session.user, true);
      },
    });
    // Last: the routes read the parts built above.
    this.http = options.http?.(this);
  }

  /**
   * Adds an adapter that joined at run time (an out-of-process adapter that registered). Returns why it
   * was refused, if it was. Sessions whose broker it serves move to its feed.
   */
  addAdapter(route: AdapterRoute): string | undefined {
    const refusal = this.feeds.add(route);
    if (refusal) return refusal;
    this.watch(route.adapter);
    const { adapter } = route;
    if (adapter.status() === 'live') this.options.recorder?.holds.feedUp(adapter.feed);
    for (const session of this.listener.sessions) {
      if (!session.authenticated) continue;
      const { feed } = this.feeds.route(session.broker);
      if (feed !== session.feed && feed === adapter.feed) {
        // Told once: a client that had no feed now has one (its subscriptions move along). The
        // session is on the feed from the start of the move, so a status change meanwhile has
        // already reached it through the feed's status listener.
        const changes = this.feedStates.get(feed)?.changes;
        void this.handler.rehome(session, feed).then(() => {
          if (this.feedStates.get(feed)?.changes === changes) session.reply(this.statusEvent(adapter));
        });
      }
    }
    return undefined;
  }

  /** Tells a feed's clients when its status changes, and remembers it for those who join later. */
  private watch(adapter: Adapter): void {
    const now = this.options.clock.now();
    const state = { status: adapter.status() as string, message: adapter.statusMessage?.(), liveSince: adapter.status() === 'live' ? now : undefined, changes: 0 };
    this.feedStates.set(adapter.feed, state);
    adapter.onStatus(({ status, message }) => {
      if (status === state.status) return;
      state.status = status;
      state.changes++;
      state.message = message;
      // Values from before a drop are not the live price: snapshots only from after this.
      state.liveSince = status === 'live' ? this.options.clock.now() : undefined;
      this.options.logger.info({ feed: adapter.feed, status, message }, 'feed status changed');
      if (status === 'live') this.options.recorder?.holds.feedUp(adapter.feed);
      const event = this.statusEvent(adapter);
      for (const session of this.listener.sessions) {
        if (session.authenticated && session.feed === adapter.feed) session.reply(event);
      }
    });
  }

  private statusEvent(adapter: Adapter): Reply {
    const state = this.feedStates.get(adapter.feed);
    return feedStatusEvent(adapter.feed, adapter.broker, state?.status ?? adapter.status(), state?.message, this.options.clock.now());
  }

  /** What a client is told right after authenticating: its feed's status unless it is live. */
  private joinStatus(session: Session): Reply | undefined {
    if (session.feed === NO_FEED) {
      return feedStatusEvent('none', session.broker, 'unavailable', this.noFeedReason(session.user!, session.broker), this.options.clock.now());
    }
    const adapter = this.feeds.adapter(session.feed);
    if (!adapter || this.feedStates.get(adapter.feed)?.status === 'live') return undefined;
    return this.statusEvent(adapter);
  }

  /** Whether a value that arrived at `arrivedAt` may be shown as the price now (snapshots). */
  private isCurrent(feed: string, arrivedAt: number): boolean {
    if (this.options.clock.now() - arrivedAt > (this.options.snapshotMaxAgeMs ?? DEFAULT_SNAPSHOT_MAX_AGE_MS)) return false;
    if (feed === SHARED_FEED) return true; // external publishers have no status: age is all there is
    const since = this.feedStates.get(feed)?.liveSince;
    return since !== undefined && arrivedAt >= since;
  }

  /** Why a user's broker has no feed here, and how to give it one. */
  private noFeedReason(user: string, broker: string): string {
    const name = broker.toLowerCase();
    const specific = this.options.brokerAdapters?.whyNot?.(user, name);
    if (specific !== undefined) return specific;
    if (this.options.brokerAdapters?.brokers.includes(name)) {
      return (
        `No market data feed for ${broker} user ${user}: no ${name} credentials are stored for them. ` +
        `Store them with \`tickcast credentials set --user ${user} --broker ${name} …\` (docs/brokers.md); the feed starts at their next authentication.`
      );
    }
    if (name === SIMULATOR_BROKER) {
      return 'No market data feed for broker simulator: the simulator is not running in this gateway. Start the gateway with --feed simulator, or run `tickcast adapter`.';
    }
    return (
      `No market data feed for broker ${broker} in this gateway: no adapter serving ${name} is connected. ` +
      `Connect one, or let external publishers on the bus serve it with TICKCAST_BUS_BROKERS=${name} (as OpenAlgo's own adapters publish; docs/brokers.md).`
    );
  }

  private sessionTotals(): { sent: number; conflated: number; dropped: number } {
    const totals = { ...this.listener.closedTotals };
    for (const session of this.listener.sessions) {
      totals.sent += session.outbox.sent;
      totals.conflated += session.outbox.conflated;
      totals.dropped += session.outbox.dropped;
    }
    return totals;
  }

  /**
   * The instance's adapters. Users' own broker feeds are named after the user, and `/metrics`
   * and `/api/status` need no key, so those are only counted (userFeedCounts) and their ticks
   * are folded into one `<broker>.users` feed: the port discloses no user names.
   */
  private adapterList(): Array<{ feed: string; broker: string; status: string }> {
    return [...this.feeds.adapters()].filter((a) => !this.userFeeds?.has(a.feed)).map((a) => ({ feed: a.feed, broker: a.broker, status: a.status() }));
  }

  private publicByFeed(byFeed: ReadonlyMap<string, number>): ReadonlyMap<string, number> {
    const folded = new Map<string, number>();
    for (const [feed, count] of byFeed) {
      // Every id of a user's own feed's form, not only those of users with a session here: a
      // worker of --workers hears every user's ticks on the bus.
      const label = isUserFeedId(feed) ? `${feed.slice(0, feed.indexOf('.'))}.users` : feed;
      folded.set(label, (folded.get(label) ?? 0) + count);
    }
    return folded;
  }

  /**
   * The feed a user's clients are served, as a subscription resolves it (their own broker feed,
   * else their broker's route), without starting anything: for reading what it recorded.
   */
  async feedOf(user: string, broker: string): Promise<string> {
    return (await this.userFeeds?.ownFeed(user, broker)) ?? this.feeds.route(broker).feed;
  }

  /** (client, stream) pairs: the streams held for recording are no client's. */
  private clientSubscriptions(): number {
    return this.index.heldCount - this.index.heldBy(this.holder);
  }

  private metricsSource(): MetricsSource {
    return {
      connections: () => this.listener.sessions.size,
      authenticated: () => [...this.listener.sessions].filter((s) => s.authenticated).length,
      subscriptions: () => this.clientSubscriptions(),
      streams: () => this.index.streamCount,
      upstreamStreams: () => this.upstream.size,
      ticksIn: () => this.publicByFeed(this.busListener.ticksByFeed),
      ticksOut: () => this.publicByFeed(this.fanOut.deliveriesByFeed),
      deliveries: () => this.sessionTotals().sent,
      conflated: () => this.sessionTotals().conflated,
      dropped: () => this.sessionTotals().dropped,
      slowConsumersClosed: () => this.listener.closedTotals.slowConsumersClosed,
      busMessages: () => this.busListener.counters.messages,
      busInvalid: () => this.busListener.counters.invalid,
      adapters: () => this.adapterList(),
      userFeeds: () => this.userFeeds?.counts() ?? {},
      history: () => this.options.recorder?.snapshot(),
      recovery: () => ({ recoveries: this.fanOut.recoveries, messages: this.fanOut.recoveredMessages, gaps: this.fanOut.recoveryGaps }),
    };
  }

  /**
   * Ready: the bus is bound (it is, once constructed) and, if there are adapters, at least one is
   * live. With no adapter (`--feed none`), the shared feed is all there is, and it is always on.
   */
  ready(): boolean {
    const adapters = this.adapterList();
    return adapters.length === 0 || adapters.some((a) => a.status === 'live');
  }

  /**
   * `/api/status`: each figure once (docs/metrics.md lists every field). Grouped as: the process
   * (uptime, readiness), clients and streams now, the feeds, the bus in, deliveries out, health.
   */
  /** `history`, when this process records ticks or broker frames. */
  private historyStatus(): { history?: Record<string, unknown> } {
    const history = historySection(this.options.recorder?.snapshot(), this.options.frames?.snapshot());
    return history ? { history } : {};
  }

  status(): Record<string, unknown> {
    const totals = this.sessionTotals();
    const memory = process.memoryUsage();
    return {
      uptime_s: Math.round((this.options.clock.now() - this.startedAt) / 1000),
      ...(this.options.cluster ? { worker: this.options.cluster.worker } : {}),
      ready: this.ready(),
      connections: this.listener.sessions.size,
      authenticated: [...this.listener.sessions].filter((s) => s.authenticated).length,
      subscriptions: this.clientSubscriptions(),
      streams: this.index.streamCount,
      upstream_streams: this.upstream.size,
      adapters: this.adapterList(),
      user_feeds: this.userFeeds?.counts() ?? {},
      ...this.historyStatus(),
      bus: { ...this.busListener.counters, ticks_by_feed: Object.fromEntries(this.publicByFeed(this.busListener.ticksByFeed)) },
      // Named one by one: the listener's totals also carry slowConsumersClosed, which is here once.
      clients: { sent: totals.sent, conflated: totals.conflated, dropped: totals.dropped, slow_consumers_closed: this.listener.closedTotals.slowConsumersClosed },
      ticks_out_by_feed: Object.fromEntries(this.publicByFeed(this.fanOut.deliveriesByFeed)),
      // Process health, for soak runs and dashboards (docs/metrics.md).
      event_loop_lag_ms: this.metrics.lag.read(),
      open_handles: process.getActiveResourcesInfo().length,
      rss_mb: mb(memory.rss),
      heap_used_mb: mb(memory.heapUsed),
    };
  }

  /**
   * What OpenAlgo's proxy stats file is made of (observability/openalgo-stats.ts): open sockets,
   * each user a feed serves with their broker (OpenAlgo holds a broker adapter per such user),
   * and each (exchange, symbol, mode) held, whatever the feed (OpenAlgo's subscription keys).
   */
  proxyFigures(): ProxyFigures {
    const users: Record<string, string> = {};
    for (const [user, sessions] of this.sessionsByUser) {
      for (const session of sessions) {
        if (session.authenticated && session.feed !== NO_FEED) {
          users[user] = session.broker;
          break;
        }
      }
    }
    const subscriptions = new Set<string>();
    for (const { exchange, symbol, modes } of this.index.streamModes()) {
      for (const mode of modes) subscriptions.add(`${streamKey(exchange, symbol)}\u0000${mode}`);
    }
    return { clients: this.listener.sessions.size, users, subscriptions: [...subscriptions] };
  }

  /** Re-sends every wanted stream of a feed whose adapter (re)started holding nothing. */
  async replay(feed: string): Promise<void> {
    await this.upstream.replay(feed);
    // Streams held for recording that it refused before are tried again on the fresh adapter.
    this.options.recorder?.holds.feedUp(feed);
  }

  private moveUser(session: Session, previous: string | null, leaving = false): void {
    this.sharedConnections?.userChanged(session, leaving);
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
    this.options.recorder?.holds.attach(holdPort(this.feeds, this.upstream, this.index, this.holder));
    return this.listener.listen();
  }

  /** Closes clients (going away) and stops adapters; the bus is closed by whoever created it. */
  async stop(): Promise<void> {
    this.metrics.close();
    await this.listener.close();
    for (const adapter of this.feeds.adapters()) {
      try {
        await adapter.stop();
      } catch (error) {
        this.options.logger.warn({ feed: adapter.feed, err: (error as Error).message }, 'adapter did not stop cleanly');
      }
    }
  }
}

const DEFAULT_SNAPSHOT_MAX_AGE_MS = 60_000;

function mb(bytes: number): number {
  return Math.round((bytes / 1048576) * 10) / 10;
}
