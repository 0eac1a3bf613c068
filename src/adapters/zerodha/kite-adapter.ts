/**
 * The Zerodha adapter: streams Kite ticker (KiteTicker) market data for the streams the gateway
 * subscribes, and publishes each tick on the bus as OpenAlgo's Zerodha adapter would (with its
 * bugs fixed, see payload.ts).
 *
 * Upstream it holds up to `maxConnections` Kite sockets of up to `maxTokensPerConnection`
 * instruments each (Kite's limits: 3 × 3000). Each socket keeps what it wants (token → mode)
 * apart from what it has told Kite, and a short batch timer turns the difference into
 * `unsubscribe`, `subscribe` + `mode` and `mode` messages of at most `maxTokensPerMessage`
 * tokens. A new socket has told Kite nothing, so a reconnect is a full resubscription.
 *
 * Each socket reconnects on its own: exponential backoff with jitter after a loss, a slower
 * fixed schedule after Kite refuses the credentials, credentials re-read before every attempt,
 * and a watchdog that drops a socket silent (not even a heartbeat) for `silenceMs`. After a
 * re-login (credentialsChanged()) every socket reconnects at once with the new credentials.
 */
import WebSocket from 'ws';
import type { Clock } from '../../clock.js';
import type { Logger } from '../../observability/logger.js';
import type { Mode } from '../../protocol/modes.js';
import { formatTopic } from '../../protocol/topics.js';
import { type Backoff, backoffDelay, jittered } from '../backoff.js';
import type { Adapter, FeedStatus, FeedStatusEvent, StreamRef, SubscribeResult } from '../adapter.js';
import type { BrokerFeedOptions, BrokerTick, CredentialSource } from '../broker.js';
import { decodeKiteBinary, decodeKiteText } from './decoder.js';
import { kitePayload } from './payload.js';

export const KITE_TICKER_URL = 'wss://ws.kite.trade';

export type KiteBackoff = Partial<Backoff>;

export interface KiteAdapterOptions extends BrokerFeedOptions {
  /** A socket with no frame at all (heartbeats count) for this long is dead. */
  silenceMs?: number;
  backoff?: KiteBackoff;
  /** Retry period after Kite refused the credentials (or there were none), jittered. */
  authRetryMs?: number;
  /** Subscription changes within this window go upstream together. */
  batchDelayMs?: number;
  /** Opening handshake timeout. */
  connectTimeoutMs?: number;
  maxTokensPerMessage?: number;
  maxTokensPerConnection?: number;
  maxConnections?: number;
  /** Source of backoff jitter (defaults to Math.random). */
  random?: () => number;
}

/** Running totals, for metrics and tests. */
export interface KiteCounters {
  /** Every frame received, heartbeats and text included. */
  frames: number;
  heartbeats: number;
  textFrames: number;
  ticks: number;
  /** Bus messages published (a tick goes to every stream on its token). */
  published: number;
  /** Frames that could not be decoded at all. */
  invalidFrames: number;
  /** Packets inside otherwise good frames that could not be decoded (unknown length, truncated…). */
  rejectedPackets: number;
  /** Ticks for tokens nobody holds (in flight across an unsubscribe, or garbage). */
  unroutedTicks: number;
  /** Sockets opened, first connects included. */
  connects: number;
  /** Subscription messages sent to Kite (`subscribe`, `mode`, `unsubscribe`). */
  messagesSent: number;
}

type KiteMode = 'ltp' | 'quote' | 'full';

const KITE_MODE: Record<Mode, KiteMode> = { 1: 'ltp', 2: 'quote', 3: 'full' };
/** Topic mode of a tick: the packet says what it carries (index quote/full count as 2/3). */
const TOPIC_MODE: Record<BrokerTick['mode'], Mode> = { ltp: 1, quote: 2, full: 3, depth20: 3 };

/** Kite always sends five levels a side in full mode, whatever depth is asked for. */
const DEPTH_LEVELS = 5;
const DEFAULTS = {
  silenceMs: 5000,
  initialMs: 1000,
  maxMs: 60_000,
  jitter: 0.2,
  authRetryMs: 60_000,
  batchDelayMs: 100,
  connectTimeoutMs: 10_000,
  maxTokensPerMessage: 200,
  maxTokensPerConnection: 3000,
  maxConnections: 3,
};
/** 3000 full packets are ~560 KB; anything far larger is not a Kite frame. */
const MAX_FRAME_BYTES = 2 * 1024 * 1024;
/** Garbage and broker messages log at most once per this period (with a count of the rest). */
const LOG_INTERVAL_MS = 10_000;
/** A graceful close that gets no answer within this long is cut. */
const CLOSE_GRACE_MS = 1000;
/**
 * An error text meaning "these credentials are refused": OpenAlgo's is_auth_error list plus
 * Kite's own wording ("Invalid access token.", "Incorrect `api_key` or `access_token`.").
 */
const AUTH_ERROR = /\b40[13]\b|unauthori[sz]ed|forbidden|auth(entication)? failed|invalid token|token expired|access denied|invalid credentials|session expired|access[ _]token/i;

interface StreamEntry {
  readonly exchange: string;
  readonly symbol: string;
  readonly route: TokenRoute;
  mode: Mode;
  /** Bus topic per topic mode, built once. */
  readonly topics: Record<Mode, string>;
}

/** One Kite instrument token and the streams (OpenAlgo symbol, exchange) riding on it. */
interface TokenRoute {
  readonly token: number;
  readonly streams: Set<StreamEntry>;
  readonly connection: KiteConnection;
}

interface ResolvedSettings {
  url: string;
  silenceMs: number;
  initialMs: number;
  maxMs: number;
  jitter: number;
  authRetryMs: number;
  connectTimeoutMs: number;
  maxTokensPerMessage: number;
  random: () => number;
}

export class KiteAdapter implements Adapter {
  readonly feed: string;
  readonly broker = 'zerodha';

  private readonly options: KiteAdapterOptions;
  private readonly settings: ResolvedSettings;
  private readonly logger: Logger;
  private readonly batchDelayMs: number;
  private readonly maxTokensPerConnection: number;
  private readonly maxConnections: number;
  private readonly streams = new Map<string, StreamEntry>();
  /** Decimal token string (as the decoder writes it) → route. */
  private readonly routes = new Map<string, TokenRoute>();
  private readonly connections: KiteConnection[] = [];
  private readonly listeners: Array<(event: FeedStatusEvent) => void> = [];
  private readonly counters: KiteCounters = {
    frames: 0, heartbeats: 0, textFrames: 0, ticks: 0, published: 0, invalidFrames: 0,
    rejectedPackets: 0, unroutedTicks: 0, connects: 0, messagesSent: 0,
  };
  private nextConnectionId = 1;
  private flushTimer: NodeJS.Timeout | undefined;
  private running = false;
  private currentStatus: FeedStatus = 'down';
  private currentMessage: string | undefined = 'not started';
  private lastNoticeLogAt = -Infinity;
  private noticesSinceLog = 0;

  constructor(options: KiteAdapterOptions) {
    const positive = (name: string, value: number): number => {
      if (!(value > 0) || !Number.isFinite(value)) throw new Error(`Zerodha adapter ${name} must be a positive number, got ${value}`);
      return value;
    };
    const backoff = options.backoff ?? {};
    const jitter = backoff.jitter ?? DEFAULTS.jitter;
    if (!(jitter >= 0 && jitter < 1)) throw new Error(`Zerodha adapter backoff jitter must be in [0, 1), got ${jitter}`);
    const initialMs = positive('backoff.initialMs', backoff.initialMs ?? DEFAULTS.initialMs);
    this.feed = options.feed;
    this.options = options;
    this.settings = {
      url: options.url ?? KITE_TICKER_URL,
      silenceMs: positive('silenceMs', options.silenceMs ?? DEFAULTS.silenceMs),
      initialMs,
      maxMs: Math.max(initialMs, positive('backoff.maxMs', backoff.maxMs ?? DEFAULTS.maxMs)),
      jitter,
      authRetryMs: positive('authRetryMs', options.authRetryMs ?? DEFAULTS.authRetryMs),
      connectTimeoutMs: positive('connectTimeoutMs', options.connectTimeoutMs ?? DEFAULTS.connectTimeoutMs),
      maxTokensPerMessage: Math.floor(positive('maxTokensPerMessage', options.maxTokensPerMessage ?? DEFAULTS.maxTokensPerMessage)),
      random: options.random ?? Math.random,
    };
    this.batchDelayMs = Math.max(0, options.batchDelayMs ?? DEFAULTS.batchDelayMs);
    this.maxTokensPerConnection = Math.floor(positive('maxTokensPerConnection', options.maxTokensPerConnection ?? DEFAULTS.maxTokensPerConnection));
    this.maxConnections = Math.floor(positive('maxConnections', options.maxConnections ?? DEFAULTS.maxConnections));
    this.logger = options.logger.child({ feed: options.feed, broker: 'zerodha', user: options.user });
  }

  async start(): Promise<void> {
    if (this.running) return;
    this.running = true;
    if (this.connections.length === 0) this.connections.push(this.newConnection());
    // Connecting happens in the background: start() must not hold the gateway up for a broker.
    for (const connection of this.connections) connection.start();
    this.refreshStatus();
  }

  async stop(): Promise<void> {
    this.running = false;
    if (this.flushTimer) {
      clearTimeout(this.flushTimer);
      this.flushTimer = undefined;
    }
    await Promise.all(this.connections.map((connection) => connection.close()));
    this.setStatus('down', 'stopped');
  }

  async subscribe(stream: StreamRef, mode: Mode, _depth: number): Promise<SubscribeResult> {
    const { exchange, symbol } = stream;
    const instrument = this.options.symbols.lookup('zerodha', exchange, symbol);
    const token = instrument ? parseKiteToken(instrument.token) : undefined;
    if (token === undefined) return { ok: false, message: `Token not found for ${symbol} on ${exchange}` };

    const key = streamKey(exchange, symbol);
    let entry = this.streams.get(key);
    let route = this.routes.get(String(token));
    if (!route) {
      const connection = this.connectionWithRoom();
      if (!connection) {
        return {
          ok: false,
          message: `Zerodha subscription limit reached (${this.maxConnections} connections × ${this.maxTokensPerConnection} instruments); cannot add ${symbol} on ${exchange}`,
        };
      }
      route = { token, streams: new Set(), connection };
      this.routes.set(String(token), route);
    }
    if (entry && entry.route !== route) {
      // The symbol master now maps this stream to another token: move it.
      this.detach(entry);
      entry = undefined;
    }
    if (!entry) {
      entry = {
        exchange,
        symbol,
        route,
        mode,
        topics: {
          1: formatTopic(this.feed, exchange, symbol, 1),
          2: formatTopic(this.feed, exchange, symbol, 2),
          3: formatTopic(this.feed, exchange, symbol, 3),
        },
      };
      this.streams.set(key, entry);
      route.streams.add(entry);
    }
    // Replaces whatever was held: an upgrade or a downgrade is just a new `mode` message.
    entry.mode = mode;
    this.updateWanted(route);
    return { ok: true, depth: DEPTH_LEVELS };
  }

  async unsubscribe(stream: StreamRef): Promise<void> {
    const entry = this.streams.get(streamKey(stream.exchange, stream.symbol));
    if (entry) this.detach(entry);
  }

  /**
   * The user logged in again (OpenAlgo's CACHE_INVALIDATE after a re-login): every socket
   * reconnects now with the credentials read afresh, instead of waiting out its backoff or the
   * slow retry after a refusal. A socket still open on the old token is replaced too, so the feed
   * runs on what is stored now rather than on a token that may stop working at any moment.
   */
  credentialsChanged(): void {
    if (!this.running) return;
    this.logger.info({ connections: this.connections.length }, 'Zerodha credentials changed; reconnecting');
    for (const connection of this.connections) connection.restart('credentials changed; reconnecting to Zerodha');
  }

  status(): FeedStatus {
    return this.currentStatus;
  }

  /** Why the feed is not live, if it is not. */
  statusMessage(): string | undefined {
    return this.currentMessage;
  }

  onStatus(listener: (event: FeedStatusEvent) => void): void {
    this.listeners.push(listener);
  }

  stats(): KiteCounters & { connections: number; tokens: number; streams: number } {
    return { ...this.counters, connections: this.connections.length, tokens: this.routes.size, streams: this.streams.size };
  }

  private newConnection(): KiteConnection {
    return new KiteConnection(this.nextConnectionId++, this.settings, this.options.credentials, this.options.clock, this.logger, {
      frame: (connection, data, isBinary) => this.onFrame(connection, data, isBinary),
      opened: () => {
        this.counters.connects += 1;
        this.refreshStatus();
      },
      changed: () => this.refreshStatus(),
      sent: (count) => {
        this.counters.messagesSent += count;
      },
    });
  }

  /** The first socket with room for one more token, opening another if Kite allows it. */
  private connectionWithRoom(): KiteConnection | undefined {
    for (const connection of this.connections) {
      if (connection.wanted.size < this.maxTokensPerConnection) return connection;
    }
    if (this.connections.length >= this.maxConnections) return undefined;
    const connection = this.newConnection();
    this.connections.push(connection);
    if (this.running) connection.start();
    return connection;
  }

  private detach(entry: StreamEntry): void {
    this.streams.delete(streamKey(entry.exchange, entry.symbol));
    entry.route.streams.delete(entry);
    this.updateWanted(entry.route);
  }

  /** Kite gets one mode per token: the highest any stream on it holds. */
  private updateWanted(route: TokenRoute): void {
    const { connection, token } = route;
    if (route.streams.size === 0) {
      this.routes.delete(String(token));
      connection.want(token, undefined);
    } else {
      let mode: Mode = 1;
      for (const stream of route.streams) if (stream.mode > mode) mode = stream.mode;
      connection.want(token, KITE_MODE[mode]);
    }
    this.scheduleFlush();
  }

  private scheduleFlush(): void {
    if (this.flushTimer) return;
    this.flushTimer = setTimeout(() => this.flush(), this.batchDelayMs);
    this.flushTimer.unref();
  }

  private flush(): void {
    this.flushTimer = undefined;
    for (const connection of this.connections) connection.sync();
    // Extra sockets left with nothing to stream are closed, freeing one of Kite's three.
    for (let i = this.connections.length - 1; i > 0; i--) {
      const connection = this.connections[i]!;
      if (connection.wanted.size > 0) continue;
      this.connections.splice(i, 1);
      void connection.close();
    }
    this.refreshStatus();
  }

  private onFrame(connection: KiteConnection, data: Buffer, isBinary: boolean): void {
    this.counters.frames += 1;
    const decoded = isBinary ? decodeKiteBinary(data) : decodeKiteText(data.toString('utf8'));
    if (!isBinary) this.counters.textFrames += 1;
    switch (decoded.kind) {
      case 'heartbeat':
        this.counters.heartbeats += 1;
        return;
      case 'invalid':
        this.counters.invalidFrames += 1;
        this.notice('warn', { connection: connection.id, bytes: data.length, reason: decoded.reason }, 'undecodable Zerodha frame');
        return;
      case 'text':
        this.onText(connection, decoded.type, decoded.data);
        return;
      case 'ticks': {
        if (decoded.rejected.length > 0) {
          this.counters.rejectedPackets += decoded.rejected.length;
          this.notice('warn', { connection: connection.id, bytes: data.length, rejected: decoded.rejected.slice(0, 5) }, 'undecodable packets in a Zerodha frame');
        }
        const now = this.options.clock.now();
        for (const tick of decoded.ticks) this.publishTick(tick, now);
      }
    }
  }

  private publishTick(tick: BrokerTick, now: number): void {
    this.counters.ticks += 1;
    const route = this.routes.get(tick.token);
    if (!route) {
      this.counters.unroutedTicks += 1;
      return;
    }
    const mode = TOPIC_MODE[tick.mode];
    for (const stream of route.streams) {
      try {
        this.options.publisher.publish(stream.topics[mode], kitePayload(tick, stream.symbol, stream.exchange, mode, now));
        this.counters.published += 1;
      } catch (err) {
        this.notice('error', { err, exchange: stream.exchange, symbol: stream.symbol }, 'publishing a Zerodha tick failed');
      }
    }
  }

  private onText(connection: KiteConnection, type: string, data: unknown): void {
    const text = typeof data === 'string' ? data : JSON.stringify(data) ?? '';
    if (type === 'error') {
      if (AUTH_ERROR.test(text)) {
        connection.refuse(refusalMessage(`Kite said "${truncate(text, 200)}"`, this.settings.authRetryMs));
        return;
      }
      this.notice('warn', { connection: connection.id, error: truncate(text, 500) }, 'Zerodha ticker error');
    } else if (type === 'message') {
      this.notice('info', { connection: connection.id, text: truncate(text, 500) }, 'Zerodha ticker message');
    } else {
      // Order postbacks (`order`) are account updates, not market data; they are not ours to route.
      this.logger.debug({ connection: connection.id, type }, 'Zerodha text frame ignored');
    }
  }

  /** Logs at most once per LOG_INTERVAL_MS, counting what it skipped, so garbage cannot flood the log. */
  private notice(level: 'info' | 'warn' | 'error', fields: Record<string, unknown>, message: string): void {
    const now = this.options.clock.now();
    if (now - this.lastNoticeLogAt < LOG_INTERVAL_MS) {
      this.noticesSinceLog += 1;
      return;
    }
    this.lastNoticeLogAt = now;
    const suppressed = this.noticesSinceLog;
    this.noticesSinceLog = 0;
    this.logger[level]({ ...fields, suppressed, counters: { ...this.counters } }, message);
  }

  /** Down if Kite refuses us anywhere; reconnecting while any socket is out; else live. */
  private refreshStatus(): void {
    if (!this.running) return;
    const refused = this.connections.find((connection) => connection.state === 'down');
    if (refused) {
      this.setStatus('down', refused.message);
      return;
    }
    // A socket opened for more capacity does not count as an outage until it has failed once.
    const out = this.connections.find(
      (connection, i) => connection.state !== 'open' && (i === 0 || connection.everOpened || connection.failures > 0),
    );
    if (out) this.setStatus('reconnecting', out.message ?? 'connecting to Zerodha');
    else this.setStatus('live', undefined);
  }

  private setStatus(status: FeedStatus, message: string | undefined): void {
    this.currentMessage = message;
    if (status === this.currentStatus) return;
    this.currentStatus = status;
    const event: FeedStatusEvent = message === undefined ? { feed: this.feed, status } : { feed: this.feed, status, message };
    this.logger.info({ status, message }, 'Zerodha feed status');
    for (const listener of this.listeners) {
      try {
        listener(event);
      } catch (err) {
        this.logger.error({ err, status }, 'feed status listener failed');
      }
    }
  }
}

interface ConnectionHost {
  frame(connection: KiteConnection, data: Buffer, isBinary: boolean): void;
  opened(): void;
  changed(): void;
  sent(count: number): void;
}

type ConnectionState = 'idle' | 'connecting' | 'open' | 'retrying' | 'down' | 'closed';

/**
 * One Kite socket and its reconnect loop. `wanted` is the adapter's wish for this socket;
 * `told` is what the current socket has been sent, so `sync()` sends only the difference and a
 * fresh socket (told nothing) gets everything.
 */
class KiteConnection {
  readonly wanted = new Map<number, KiteMode>();
  state: ConnectionState = 'idle';
  /** Why it is not open (for status events). */
  message: string | undefined;
  everOpened = false;
  /** Consecutive failed attempts; drives the backoff. */
  failures = 0;

  private told = new Map<number, KiteMode>();
  private dirty = false;
  private socket: WebSocket | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private watchdog: NodeJS.Timeout | undefined;
  private openedAt: number | undefined;
  private lastFrameAt = 0;
  /** Set on the current socket when it ends for a reason its close event cannot tell. */
  private refusal: string | undefined;
  private silenced = false;
  private lastError: string | undefined;
  /** Bumped by start() and close(), so an attempt still reading credentials knows it is stale. */
  private generation = 0;
  private readonly logger: Logger;

  constructor(
    readonly id: number,
    private readonly settings: ResolvedSettings,
    private readonly credentials: CredentialSource,
    private readonly clock: Clock,
    logger: Logger,
    private readonly host: ConnectionHost,
  ) {
    this.logger = logger.child({ connection: id });
  }

  start(): void {
    if (this.state !== 'idle' && this.state !== 'closed') return;
    this.generation += 1;
    this.state = 'connecting';
    void this.connect();
  }

  async close(): Promise<void> {
    this.generation += 1;
    this.state = 'closed';
    this.message = 'stopped';
    this.clearTimers();
    const socket = this.socket;
    this.socket = undefined;
    if (!socket || socket.readyState === WebSocket.CLOSED) return;
    await new Promise<void>((resolve) => {
      const cut = setTimeout(() => socket.terminate(), CLOSE_GRACE_MS);
      socket.once('close', () => {
        clearTimeout(cut);
        resolve();
      });
      if (socket.readyState === WebSocket.OPEN) socket.close(1000, 'closing');
      else socket.terminate();
    });
  }

  want(token: number, mode: KiteMode | undefined): void {
    if (mode === undefined) this.wanted.delete(token);
    else this.wanted.set(token, mode);
    this.dirty = true;
  }

  /** Sends Kite the difference between what is wanted and what this socket was told. */
  sync(): void {
    const socket = this.socket;
    if (!this.dirty || this.state !== 'open' || !socket || socket.readyState !== WebSocket.OPEN) return;
    this.dirty = false;
    const chunk = this.settings.maxTokensPerMessage;
    const messages: unknown[] = [];

    const gone: number[] = [];
    for (const token of this.told.keys()) if (!this.wanted.has(token)) gone.push(token);
    for (const part of chunks(gone, chunk)) messages.push({ a: 'unsubscribe', v: part });

    // New tokens: `subscribe` then `mode` per group (Kite subscribes in quote mode by default),
    // as pykiteconnect resubscribes. Tokens already told only need a `mode` when it changed.
    const fresh = new Map<KiteMode, number[]>();
    const changed = new Map<KiteMode, number[]>();
    for (const [token, mode] of this.wanted) {
      const before = this.told.get(token);
      if (before === mode) continue;
      const groups = before === undefined ? fresh : changed;
      const group = groups.get(mode);
      if (group) group.push(token);
      else groups.set(mode, [token]);
    }
    for (const [mode, tokens] of fresh) {
      for (const part of chunks(tokens, chunk)) {
        messages.push({ a: 'subscribe', v: part });
        messages.push({ a: 'mode', v: [mode, part] });
      }
    }
    for (const [mode, tokens] of changed) {
      for (const part of chunks(tokens, chunk)) messages.push({ a: 'mode', v: [mode, part] });
    }

    this.told = new Map(this.wanted);
    for (const message of messages) {
      socket.send(JSON.stringify(message), (err) => {
        // The socket is going; its close starts a reconnect, which resubscribes everything.
        if (err) this.logger.debug({ err }, 'Zerodha subscription message not sent');
      });
    }
    if (messages.length > 0) this.host.sent(messages.length);
  }

  /**
   * Connects again now, whatever the state: the current socket is dropped and a pending retry
   * cancelled. Not before start() nor after close().
   */
  restart(message: string): void {
    if (this.state === 'idle' || this.state === 'closed') return;
    // An attempt still reading the old credentials is stale from here on (connect() checks).
    this.generation += 1;
    this.failures = 0;
    this.clearTimers();
    const socket = this.socket;
    // Detached first, so its close event (socket !== this.socket) schedules no backoff retry.
    this.socket = undefined;
    socket?.terminate();
    // While refused, stay 'down' until the new credentials work (no flapping, as in connect()).
    if (this.state !== 'down') this.setState('connecting', message);
    void this.connect();
  }

  /** Kite refused the credentials on an open socket: end it and wait for new ones. */
  refuse(message: string): void {
    if (!this.socket) return;
    this.refusal = message;
    this.socket.terminate();
  }

  private async connect(): Promise<void> {
    this.retryTimer = undefined;
    if (this.state === 'closed') return;
    const generation = this.generation;
    // While refused, an attempt stays 'down': flapping to 'reconnecting' and back on every
    // slow retry would only spam clients with status events.
    if (this.state !== 'down') this.setState('connecting', this.message);
    try {
      // Re-read before every attempt, so a fresh daily login takes effect on the next try.
      let credentials;
      try {
        credentials = await this.credentials.load();
      } catch (err) {
        if (generation !== this.generation) return; // a newer attempt owns the connection
        this.logger.warn({ err }, 'reading Zerodha credentials failed');
        this.retry(`could not read Zerodha credentials: ${(err as Error).message}`);
        return;
      }
      if (generation !== this.generation) return; // closed (or restarted) meanwhile
      if (!credentials || !credentials.apiKey || !credentials.accessToken) {
        this.wait(`No Zerodha credentials for this user: log in to Zerodha in OpenAlgo. Retrying every ${seconds(this.settings.authRetryMs)}.`);
        return;
      }
      const url = new URL(this.settings.url);
      url.searchParams.set('api_key', credentials.apiKey);
      url.searchParams.set('access_token', credentials.accessToken);
      const socket = new WebSocket(url, {
        headers: { 'X-Kite-Version': '3' },
        handshakeTimeout: this.settings.connectTimeoutMs,
        perMessageDeflate: false,
        maxPayload: MAX_FRAME_BYTES,
        // TLS certificates are verified (Node's default); OpenAlgo turns that off (§8 #24).
      });
      this.socket = socket;
      this.refusal = undefined;
      this.silenced = false;
      this.lastError = undefined;
      this.openedAt = undefined;
      socket.on('open', () => this.onOpen(socket));
      socket.on('message', (data, isBinary) => this.onMessage(socket, data, isBinary));
      socket.on('error', (err) => this.onError(socket, err));
      socket.on('close', (code) => this.onClose(socket, code));
    } catch (err) {
      // A bad URL or the like: not going to fix itself quickly, so the slow schedule.
      this.logger.error({ err, url: this.settings.url }, 'cannot open the Zerodha ticker socket');
      this.wait(`Cannot connect to the Zerodha ticker at ${this.settings.url}: ${(err as Error).message}`);
    }
  }

  private onOpen(socket: WebSocket): void {
    if (socket !== this.socket) return;
    const now = this.clock.now();
    this.openedAt = now;
    this.lastFrameAt = now;
    this.everOpened = true;
    this.told = new Map();
    this.dirty = true;
    this.logger.info({ tokens: this.wanted.size }, 'connected to the Zerodha ticker');
    this.setState('open', undefined);
    this.host.opened();
    this.sync();
    const every = Math.max(10, Math.min(1000, Math.floor(this.settings.silenceMs / 4)));
    this.watchdog = setInterval(() => this.checkSilence(), every);
    this.watchdog.unref();
  }

  private onMessage(socket: WebSocket, data: WebSocket.RawData, isBinary: boolean): void {
    if (socket !== this.socket) return;
    this.lastFrameAt = this.clock.now();
    try {
      const buffer = Buffer.isBuffer(data) ? data : Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data);
      this.host.frame(this, buffer, isBinary);
    } catch (err) {
      // Never let one frame take the socket down.
      this.logger.error({ err }, 'handling a Zerodha frame failed');
    }
  }

  private onError(socket: WebSocket, err: Error): void {
    if (socket !== this.socket) return;
    this.lastError = err.message;
    const status = /Unexpected server response: (\d+)/.exec(err.message)?.[1];
    if (status === '403' || status === '401') {
      this.refusal = refusalMessage(`HTTP ${status}`, this.settings.authRetryMs);
    }
    this.logger.warn({ error: err.message }, 'Zerodha ticker socket error');
  }

  private onClose(socket: WebSocket, code: number): void {
    if (socket !== this.socket) return;
    this.socket = undefined;
    this.stopWatchdog();
    if (this.state === 'closed') return;
    if (this.refusal !== undefined) {
      this.failures += 1;
      this.wait(this.refusal);
      return;
    }
    const now = this.clock.now();
    // A socket that lived a while was healthy: the next loss starts the backoff afresh.
    if (this.openedAt !== undefined && now - this.openedAt >= this.settings.silenceMs) this.failures = 0;
    const reason = this.silenced
      ? `no data from Zerodha for ${this.settings.silenceMs} ms`
      : this.lastError ?? `Zerodha closed the connection (code ${code})`;
    this.retry(reason);
  }

  private checkSilence(): void {
    const socket = this.socket;
    if (!socket || this.state !== 'open') return;
    if (this.clock.now() - this.lastFrameAt <= this.settings.silenceMs) return;
    this.silenced = true;
    this.logger.warn({ silenceMs: this.settings.silenceMs }, 'Zerodha ticker silent; reconnecting');
    socket.terminate();
  }

  /** Lost (or never made) the connection: try again after a backoff delay. */
  private retry(reason: string): void {
    const delay = backoffDelay(this.failures, this.settings);
    this.failures += 1;
    this.logger.warn({ reason, delayMs: delay, attempt: this.failures }, 'Zerodha ticker reconnecting');
    this.schedule(delay, 'retrying', `${reason}; reconnecting in ${seconds(delay)}`);
  }

  /** Refused or no credentials: down, and try again on the slow schedule. */
  private wait(message: string): void {
    const delay = jittered(this.settings.authRetryMs, this.settings.jitter, this.settings.random);
    this.logger.error({ delayMs: delay }, message);
    this.schedule(delay, 'down', message);
  }

  private schedule(delay: number, state: ConnectionState, message: string): void {
    this.clearTimers();
    this.setState(state, message);
    this.retryTimer = setTimeout(() => void this.connect(), delay);
    this.retryTimer.unref();
  }

  private setState(state: ConnectionState, message: string | undefined): void {
    if (this.state === 'closed') return;
    this.state = state;
    this.message = message;
    this.host.changed();
  }

  private stopWatchdog(): void {
    if (this.watchdog) clearInterval(this.watchdog);
    this.watchdog = undefined;
  }

  private clearTimers(): void {
    this.stopWatchdog();
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
  }
}

/**
 * The instrument token from the symbol master. OpenAlgo stores Zerodha tokens as
 * `instrument_token::::exchange_token`; the first part is what the ticker wants.
 */
export function parseKiteToken(token: string): number | undefined {
  const first = token.split('::::', 1)[0]!.trim();
  if (!/^\d{1,10}$/.test(first)) return undefined;
  const value = Number(first);
  return value > 0 && value <= 0xffffffff ? value : undefined;
}

function refusalMessage(detail: string, retryMs: number): string {
  return `Zerodha refused the access token (${detail}): log in to Zerodha again in OpenAlgo to refresh it. Retrying every ${seconds(retryMs)}.`;
}

function seconds(ms: number): string {
  return ms >= 1000 ? `${Math.round(ms / 100) / 10} s` : `${ms} ms`;
}

function truncate(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max)}…`;
}

function* chunks<T>(items: readonly T[], size: number): Generator<T[]> {
  for (let i = 0; i < items.length; i += size) yield items.slice(i, i + size);
}

function streamKey(exchange: string, symbol: string): string {
  return `${exchange}\u0000${symbol}`;
}
