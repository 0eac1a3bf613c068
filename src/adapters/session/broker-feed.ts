/**
 * A user's broker feed over one or more broker sessions: the streams the gateway holds, each
 * broker instrument at the highest mode any of its streams wants, instruments spread over up to
 * `maxConnections` sockets of `maxInstrumentsPerConnection` each, subscription changes batched
 * for `batchDelayMs` then sent as each socket's diff, ticks routed back to every stream on their
 * instrument, and the feed's status from its sockets'. A broker adapter extends it with its
 * dialect: how a symbol becomes an instrument, the subscription messages, and frame decoding.
 */
import type { Mode } from '../../protocol/modes.js';
import { formatTopic } from '../../protocol/topics.js';
import { type Adapter, type FeedStatus, type FeedStatusEvent, type StreamRef, type SubscribeResult, streamKey } from '../../feed.js';
import type { BrokerFeedOptions, BrokerInstrument, BrokerName } from '../broker.js';
import { FeedStatusBoard, LogThrottle, aggregateStatus } from './feed-status.js';
import { BrokerSession, type SessionDialect, type SessionSettings } from './broker-session.js';
import type { FrameSink } from './frame-sink.js';
import { type ScheduleOptions, positive, resolveSchedule } from './schedule.js';
import type { SubscriptionDiff } from './subscriptions.js';

/** What one socket carries for an instrument. */
export interface Upstream<I> {
  readonly instrument: I;
  readonly mode: Mode;
}

export type Diff<I> = SubscriptionDiff<string, Upstream<I>>;

export interface SessionOptions extends ScheduleOptions {
  /** A socket with no frame at all (heartbeats and pongs count) for this long is dead. */
  silenceMs?: number;
  /** Subscription changes within this window go upstream together. */
  batchDelayMs?: number;
  /** Opening handshake timeout. */
  connectTimeoutMs?: number;
  /** For a dialect with a login: an open socket whose login gets no answer for this long is replaced (default: the connect timeout). */
  loginTimeoutMs?: number;
  /** Where each socket's raw messages are recorded (TICKCAST_RECORD_FRAMES); none by default. */
  frames?: FrameSink;
}

export interface FeedLimits {
  silenceMs: number;
  batchDelayMs: number;
  connectTimeoutMs: number;
  maxConnections: number;
  maxInstrumentsPerConnection: number;
}

/** The instrument a stream rides on, or why there is none. */
export type Resolved<I> = { ok: true; key: string; instrument: I } | { ok: false; message: string };

interface StreamEntry<I> {
  readonly exchange: string;
  readonly symbol: string;
  readonly route: Route<I>;
  mode: Mode;
  /** Bus topic per topic mode, built once. */
  readonly topics: Record<Mode, string>;
}

interface Route<I> {
  readonly key: string;
  readonly instrument: I;
  readonly streams: Set<StreamEntry<I>>;
  readonly session: BrokerSession<string, Upstream<I>>;
}

export abstract class BrokerFeed<I> implements Adapter {
  readonly feed: string;
  abstract readonly broker: BrokerName;

  protected readonly logger;
  protected readonly clock;
  protected readonly sessions: Array<BrokerSession<string, Upstream<I>>> = [];
  /** Bus messages published, and ticks for instruments no stream holds. */
  protected readonly routing = { published: 0, unrouted: 0, connects: 0, retiredSent: 0 };
  private readonly streams = new Map<string, StreamEntry<I>>();
  private readonly routes = new Map<string, Route<I>>();
  private readonly board: FeedStatusBoard;
  private readonly publishLog: LogThrottle;
  private readonly settings: SessionSettings;
  private nextSessionId = 1;
  private flushTimer: NodeJS.Timeout | undefined;
  private running = false;

  protected constructor(
    protected readonly options: BrokerFeedOptions & SessionOptions,
    private readonly dialect: SessionDialect,
    private readonly limits: FeedLimits,
  ) {
    const label = dialect.label;
    this.feed = options.feed;
    this.clock = options.clock;
    this.logger = options.logger.child({ feed: options.feed, broker: label.toLowerCase(), user: options.user });
    this.settings = {
      silenceMs: positive(label, 'silenceMs', limits.silenceMs),
      connectTimeoutMs: positive(label, 'connectTimeoutMs', limits.connectTimeoutMs),
      loginTimeoutMs: positive(label, 'loginTimeoutMs', options.loginTimeoutMs ?? limits.connectTimeoutMs),
      schedule: resolveSchedule(label, options),
      ...(options.frames ? { recordFrames: recordingOn(options.frames, () => this.broker, options.feed, dialect.socketName) } : {}),
    };
    positive(label, 'maxConnections', limits.maxConnections);
    // Infinity is allowed: a broker with no documented per-socket limit.
    if (limits.maxInstrumentsPerConnection !== Infinity) positive(label, 'maxTokensPerConnection', limits.maxInstrumentsPerConnection);
    this.board = new FeedStatusBoard(options.feed, this.logger);
    this.publishLog = new LogThrottle(() => this.clock.now());
  }

  /** The broker's instrument for a stream, from its symbol-master row. */
  protected abstract resolve(found: BrokerInstrument, stream: StreamRef): Resolved<I>;
  /** The broker's subscription messages for a socket's diff: text frames, or binary ones as Buffers. */
  protected abstract encode(diff: Diff<I>): Array<string | Buffer>;
  protected abstract onFrame(session: BrokerSession<string, Upstream<I>>, data: Buffer, isBinary: boolean): void;
  /** The depth a subscription at `mode` gets. */
  protected abstract depthFor(mode: Mode, depth: number): number;

  /** A socket opened (before its login, if the dialect has one, and its subscriptions): per-socket state starts afresh here. */
  protected socketOpened(_session: BrokerSession<string, Upstream<I>>): void {}

  async start(): Promise<void> {
    if (this.running) return;
    this.running = true;
    if (this.sessions.length === 0) this.sessions.push(this.newSession());
    // Connecting happens in the background: start() must not hold the gateway up for a broker.
    for (const session of this.sessions) session.start();
    this.refreshStatus();
  }

  async stop(): Promise<void> {
    this.running = false;
    if (this.flushTimer) clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
    await Promise.all(this.sessions.map((session) => session.close()));
    this.board.set('down', 'stopped');
  }

  async subscribe(stream: StreamRef, mode: Mode, depth: number): Promise<SubscribeResult> {
    const { exchange, symbol } = stream;
    let found: BrokerInstrument | undefined;
    try {
      found = this.options.symbols.lookup(this.broker, exchange, symbol);
    } catch (err) {
      this.logger.error({ err, exchange, symbol }, 'symbol lookup failed');
      return { ok: false, message: `Symbol lookup failed for ${symbol} on ${exchange}` };
    }
    if (!found) return { ok: false, message: `Token not found for ${symbol} on ${exchange}` };
    const resolved = this.resolve(found, stream);
    if (!resolved.ok) return resolved;

    let route = this.routes.get(resolved.key);
    if (!route) {
      const session = this.sessionWithRoom();
      if (!session) {
        const { maxConnections, maxInstrumentsPerConnection } = this.limits;
        return {
          ok: false,
          message: `${this.dialect.label} subscription limit reached (${maxConnections} connections × ${maxInstrumentsPerConnection} instruments); cannot add ${symbol} on ${exchange}`,
        };
      }
      route = { key: resolved.key, instrument: resolved.instrument, streams: new Set(), session };
      this.routes.set(resolved.key, route);
    }
    let entry = this.streams.get(streamKey(exchange, symbol));
    if (entry && entry.route !== route) {
      // The symbol master now maps this stream to another instrument: move it.
      this.detach(entry);
      entry = undefined;
    }
    if (!entry) {
      const topics = { 1: formatTopic(this.feed, exchange, symbol, 1), 2: formatTopic(this.feed, exchange, symbol, 2), 3: formatTopic(this.feed, exchange, symbol, 3) };
      entry = { exchange, symbol, route, mode, topics };
      this.streams.set(streamKey(exchange, symbol), entry);
      route.streams.add(entry);
    }
    // Replaces whatever was held: an upgrade or a downgrade is just a new diff.
    entry.mode = mode;
    this.updateWanted(route);
    return { ok: true, depth: this.depthFor(mode, depth) };
  }

  async unsubscribe(stream: StreamRef): Promise<void> {
    const entry = this.streams.get(streamKey(stream.exchange, stream.symbol));
    if (entry) this.detach(entry);
  }

  /**
   * The user logged in again (OpenAlgo's CACHE_INVALIDATE after a re-login): every socket
   * reconnects now with the credentials read afresh, instead of waiting out its backoff or the
   * slow retry after a refusal; one still open on the old credentials is replaced too, so the
   * feed runs on what is stored now rather than on a token that may stop working at any moment.
   */
  credentialsChanged(): void {
    if (!this.running) return;
    this.logger.info({ connections: this.sessions.length }, 'credentials changed; reconnecting');
    for (const session of this.sessions) session.restart(`credentials changed; reconnecting to ${this.dialect.label}`);
  }

  status(): FeedStatus {
    return this.board.status;
  }

  /** Why the feed is not live, if it is not. */
  statusMessage(): string | undefined {
    return this.board.message;
  }

  onStatus(listener: (event: FeedStatusEvent) => void): void {
    this.board.listen(listener);
  }

  protected sizes(): { connections: number; tokens: number; streams: number; messagesSent: number } {
    const messagesSent = this.sessions.reduce((sum, session) => sum + session.sent, this.routing.retiredSent);
    return { connections: this.sessions.length, tokens: this.routes.size, streams: this.streams.size, messagesSent };
  }

  protected instrument(key: string): I | undefined {
    return this.routes.get(key)?.instrument;
  }

  /** Publishes `payload(stream)` on each stream of instrument `key` at `mode`; false if none holds it. */
  protected publish(key: string, mode: Mode, payload: (symbol: string, exchange: string) => string): boolean {
    const route = this.routes.get(key);
    if (!route) {
      this.routing.unrouted += 1;
      return false;
    }
    for (const stream of route.streams) {
      try {
        this.options.publisher.publish(stream.topics[mode], payload(stream.symbol, stream.exchange));
        this.routing.published += 1;
      } catch (err) {
        this.publishLog.log(this.logger, 'error', { err, exchange: stream.exchange, symbol: stream.symbol }, `publishing a ${this.dialect.label} tick failed`);
      }
    }
    return true;
  }

  private newSession(): BrokerSession<string, Upstream<I>> {
    const { dialect, settings, options } = this;
    return new BrokerSession<string, Upstream<I>>(
      this.nextSessionId++,
      dialect,
      settings,
      options.credentials,
      options.clock,
      this.logger,
      {
        frame: (session, data, isBinary) => this.onFrame(session, data, isBinary),
        opened: (session) => {
          this.routing.connects += 1;
          this.socketOpened(session);
        },
        changed: () => this.refreshStatus(),
        encode: (diff) => this.encode(diff),
      },
      (a, b) => a.mode === b.mode,
    );
  }

  /** The first socket with room for one more instrument, opening another if the broker allows it. */
  private sessionWithRoom(): BrokerSession<string, Upstream<I>> | undefined {
    for (const session of this.sessions) if (session.book.size < this.limits.maxInstrumentsPerConnection) return session;
    if (this.sessions.length >= this.limits.maxConnections) return undefined;
    const session = this.newSession();
    this.sessions.push(session);
    if (this.running) session.start();
    return session;
  }

  private detach(entry: StreamEntry<I>): void {
    this.streams.delete(streamKey(entry.exchange, entry.symbol));
    entry.route.streams.delete(entry);
    this.updateWanted(entry.route);
  }

  /** One mode per instrument upstream: the highest any stream on it holds. */
  private updateWanted(route: Route<I>): void {
    if (route.streams.size === 0) {
      this.routes.delete(route.key);
      route.session.book.want(route.key, undefined);
    } else {
      let mode: Mode = 1;
      for (const stream of route.streams) if (stream.mode > mode) mode = stream.mode;
      route.session.book.want(route.key, { instrument: route.instrument, mode });
    }
    if (this.flushTimer) return;
    this.flushTimer = setTimeout(() => this.flush(), Math.max(0, this.limits.batchDelayMs));
    this.flushTimer.unref();
  }

  private flush(): void {
    this.flushTimer = undefined;
    for (const session of this.sessions) session.sync();
    // Extra sockets left with nothing to stream are closed, freeing one of the broker's few.
    for (let i = this.sessions.length - 1; i > 0; i--) {
      const session = this.sessions[i]!;
      if (session.book.size > 0) continue;
      this.sessions.splice(i, 1);
      this.routing.retiredSent += session.sent;
      void session.close();
    }
    this.refreshStatus();
  }

  private refreshStatus(): void {
    if (!this.running) return;
    const { status, message } = aggregateStatus(this.sessions, this.dialect.label);
    this.board.set(status, message);
  }
}

/** A session's recordFrames: `broker` is read at each open, as a subclass sets it after this constructor. */
function recordingOn(sink: FrameSink, broker: () => string, feed: string, socket: string): NonNullable<SessionSettings['recordFrames']> {
  return () => sink.open(broker(), feed, socket);
}
