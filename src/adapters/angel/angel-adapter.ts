/**
 * The Angel One adapter: one SmartAPI WebSocket 2.0 ("SmartStream") session per user, carrying
 * exactly the streams the gateway asks for, decoded and published on the bus as OpenAlgo's Angel
 * adapter would publish them (payload.ts), with OpenAlgo's bugs 22–24 fixed.
 *
 * Session: authenticated by four headers on the upgrade request (spec §2.1), TLS verified.
 * Credentials are read afresh before every connect, so a re-login takes effect on the next
 * attempt. Liveness: a text `ping` every pingMs (the server answers `pong`); any frame counts as
 * life, and silence beyond silenceMs drops and redials the socket. Losses reconnect with capped
 * exponential backoff and jitter; a refused login (HTTP 401/403 or an auth error text) marks the
 * feed `down` and retries on a slower schedule, or at once on credentialsChanged().
 *
 * Subscriptions: the adapter holds the wanted set {(exchangeType, token) → mode} and what the
 * open socket was last told; a short timer coalesces changes into one diff, sent as Angel
 * requests grouped by mode and exchange type. A mode change is an unsubscribe at the old mode
 * plus a subscribe at the new one, because Angel keeps subscriptions per (mode, token): without
 * the unsubscribe both packet kinds keep coming. A new socket was told nothing, so opening one
 * re-sends the whole set, grouped by mode.
 */
import WebSocket, { type RawData } from 'ws';
import type { Clock } from '../../clock.js';
import type { Logger } from '../../observability/logger.js';
import type { Mode } from '../../protocol/modes.js';
import { formatTopic } from '../../protocol/topics.js';
import { type Backoff, backoffDelay } from '../backoff.js';
import type { Adapter, FeedStatus, FeedStatusEvent, StreamRef, SubscribeResult } from '../adapter.js';
import type { BrokerCredentials, BrokerFeedOptions } from '../broker.js';
import { decodeAngelBinary, decodeAngelText } from './decoder.js';
import { angelPayload } from './payload.js';

export const ANGEL_SMARTSTREAM_URL = 'wss://smartapisocket.angelone.in/smart-stream';

/**
 * Angel `exchangeType` by the symbol master's brexchange (OpenAlgo's names, indices by theirs)
 * and by Angel's own segment names. Anything else is refused rather than guessed: OpenAlgo's
 * default of 1 (NSE) silently subscribes the wrong instrument.
 */
export const ANGEL_EXCHANGE_TYPE: Readonly<Record<string, number>> = {
  NSE: 1,
  NFO: 2,
  BSE: 3,
  BFO: 4,
  MCX: 5,
  NCX: 7,
  NCDEX: 7,
  CDS: 13,
  NSE_INDEX: 1,
  BSE_INDEX: 3,
  MCX_INDEX: 5,
  nse_cm: 1,
  nse_fo: 2,
  bse_cm: 3,
  bse_fo: 4,
  mcx_fo: 5,
  ncx_fo: 7,
  cde_fo: 13,
};

export type BackoffOptions = Backoff;

export interface AngelAdapterOptions extends BrokerFeedOptions {
  /** Text `ping` period. */
  pingMs?: number;
  /** Longest silence (no frame of any kind) before the socket is dropped and redialled. */
  silenceMs?: number;
  backoff?: Partial<BackoffOptions>;
  /** Retry period after a refused login or missing credentials. */
  authRetryMs?: number;
  /** How long subscription changes are collected before one request set goes out. */
  batchDelayMs?: number;
  /** Upgrade handshake timeout. */
  connectTimeoutMs?: number;
  /** Jitter source (defaults to Math.random). */
  random?: () => number;
}

/** What the adapter has seen, for metrics and tests. */
export interface AngelCounters {
  /** Sockets opened. */
  connects: number;
  /** Frames received, of every kind. */
  frames: number;
  /** Binary packets decoded. */
  ticks: number;
  /** Bus messages published. */
  published: number;
  /** Frames that were not a valid packet (counted, logged at a bounded rate, skipped). */
  invalid: number;
  /** Packets for instruments no stream holds (late ticks after an unsubscribe, depth-20). */
  unrouted: number;
  /** Packets with a harmless oddity (best-5 flag against position). */
  anomalies: number;
  /** Text frames other than `pong` (server errors and notices). */
  texts: number;
  pongs: number;
}

/** One upstream instrument at one mode. */
export interface UpstreamEntry {
  exchangeType: number;
  token: string;
  mode: Mode;
}

const DEFAULTS = {
  pingMs: 10_000,
  silenceMs: 25_000,
  authRetryMs: 60_000,
  batchDelayMs: 50,
  connectTimeoutMs: 10_000,
  backoff: { initialMs: 1_000, maxMs: 60_000, jitter: 0.2 } satisfies BackoffOptions,
};
/** Best-5 is all SNAP_QUOTE offers (depth-20 is deprecated and has no LTP). */
const DEPTH_LEVELS = 5;
/** Angel packets are at most 443 bytes; anything far bigger is not Angel talking. */
const MAX_FRAME_BYTES = 64 * 1024;
/** Tokens per request message; Angel documents no limit, this keeps messages modest. */
const MAX_TOKENS_PER_REQUEST = 500;
const NOISY_LOG_INTERVAL_MS = 10_000;
const TEXT_LOG_CHARS = 500;
const STOP_GRACE_MS = 1_000;
/** Error texts that mean the session itself was refused (not, say, one bad instrument token). */
const AUTH_ERROR =
  /\b40[13]\b|unauthori[sz]ed|forbidden|authentication failed|auth failed|token expired|access denied|invalid credentials|session expired|invalid (?:jwt|api ?key|feed ?token|client ?code)/i;

interface Stream {
  readonly exchange: string;
  readonly symbol: string;
  mode: Mode;
  instrumentKey: string;
  readonly topics: Record<Mode, string>;
}

interface Instrument {
  readonly exchangeType: number;
  readonly token: string;
  readonly isIndex: boolean;
  readonly streams: Set<Stream>;
}

interface Connection {
  readonly socket: WebSocket;
  opened: boolean;
  /** Any frame seen: the session works, so the backoff starts over. */
  heardFrom: boolean;
  lastFrameAt: number;
  /** Why this socket is going away, when the adapter decided it (auth, silence, restart). */
  failure?: { auth: boolean; message: string };
  restartNow?: boolean;
  error?: string;
  timers: NodeJS.Timeout[];
  readonly closed: Promise<void>;
  markClosed(): void;
}

/** A bounded-rate logger for noise that can arrive at line rate (garbage, error texts). */
interface Throttle {
  lastAt: number;
  suppressed: number;
}

export class AngelAdapter implements Adapter {
  readonly feed: string;
  readonly broker = 'angel';

  private readonly options: AngelAdapterOptions;
  private readonly url: string;
  private readonly pingMs: number;
  private readonly silenceMs: number;
  private readonly authRetryMs: number;
  private readonly batchDelayMs: number;
  private readonly connectTimeoutMs: number;
  private readonly backoff: BackoffOptions;
  private readonly random: () => number;
  private readonly logger: Logger;
  private readonly clock: Clock;

  /** Wanted streams by OpenAlgo (exchange, symbol). */
  private readonly streams = new Map<string, Stream>();
  /** The same, by Angel instrument; tokens are only unique within an exchange type. */
  private readonly instruments = new Map<string, Instrument>();
  /** What the open socket has been asked for. */
  private sent = new Map<string, UpstreamEntry>();
  private readonly listeners: Array<(event: FeedStatusEvent) => void> = [];
  private readonly counters: AngelCounters = {
    connects: 0, frames: 0, ticks: 0, published: 0, invalid: 0, unrouted: 0, anomalies: 0, texts: 0, pongs: 0,
  };
  private readonly invalidLog: Throttle = { lastAt: -Infinity, suppressed: 0 };
  private readonly textLog: Throttle = { lastAt: -Infinity, suppressed: 0 };
  private readonly isIndexHint = (exchangeType: number, token: string): boolean =>
    this.instruments.get(instrumentKey(exchangeType, token))?.isIndex ?? false;

  private running = false;
  /** Bumped by stop() and by every dial, so a dial that awaited credentials can tell it is stale. */
  private generation = 0;
  private connection: Connection | undefined;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private flushTimer: NodeJS.Timeout | undefined;
  /** Consecutive failed connections, for the backoff. */
  private attempts = 0;
  private requestCount = 0;
  private currentStatus: FeedStatus = 'down';

  constructor(options: AngelAdapterOptions) {
    this.options = options;
    this.feed = options.feed;
    this.url = options.url ?? ANGEL_SMARTSTREAM_URL;
    this.pingMs = positive('pingMs', options.pingMs ?? DEFAULTS.pingMs);
    this.silenceMs = positive('silenceMs', options.silenceMs ?? DEFAULTS.silenceMs);
    this.authRetryMs = positive('authRetryMs', options.authRetryMs ?? DEFAULTS.authRetryMs);
    this.batchDelayMs = nonNegative('batchDelayMs', options.batchDelayMs ?? DEFAULTS.batchDelayMs);
    this.connectTimeoutMs = positive('connectTimeoutMs', options.connectTimeoutMs ?? DEFAULTS.connectTimeoutMs);
    this.backoff = { ...DEFAULTS.backoff, ...options.backoff };
    positive('backoff.initialMs', this.backoff.initialMs);
    positive('backoff.maxMs', this.backoff.maxMs);
    if (!(this.backoff.jitter >= 0 && this.backoff.jitter <= 1)) throw new Error(`backoff.jitter must be within 0..1, got ${this.backoff.jitter}`);
    this.random = options.random ?? Math.random;
    this.logger = options.logger;
    this.clock = options.clock;
  }

  // ---- Adapter interface -------------------------------------------------------------------

  async start(): Promise<void> {
    if (this.running) return;
    this.running = true;
    this.attempts = 0;
    // Not live until the socket opens; "reconnecting" tells clients the feed is on its way.
    this.setStatus('reconnecting', 'connecting to Angel SmartStream');
    this.redial();
  }

  async stop(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    this.generation++;
    this.clearTimer('reconnectTimer');
    this.clearTimer('flushTimer');
    const connection = this.connection;
    if (connection) {
      try {
        connection.socket.close(1000, 'tickcast stopping');
      } catch {
        connection.socket.terminate();
      }
      const force = setTimeout(() => connection.socket.terminate(), STOP_GRACE_MS);
      await connection.closed;
      clearTimeout(force);
    }
    this.setStatus('down', 'stopped');
  }

  async subscribe(stream: StreamRef, mode: Mode, depth: number): Promise<SubscribeResult> {
    const { exchange, symbol } = stream;
    let found;
    try {
      found = this.options.symbols.lookup('angel', exchange, symbol);
    } catch (err) {
      this.logger.error({ err, feed: this.feed, exchange, symbol }, 'symbol lookup failed');
      return { ok: false, message: `Symbol lookup failed for ${symbol} on ${exchange}` };
    }
    if (!found) return { ok: false, message: `Token not found for ${symbol} on ${exchange}` };
    const exchangeType = ANGEL_EXCHANGE_TYPE[found.brexchange];
    if (exchangeType === undefined) {
      return { ok: false, message: `Exchange ${found.brexchange} of ${symbol} is not supported by the Angel feed` };
    }

    const key = streamKey(exchange, symbol);
    const instKey = instrumentKey(exchangeType, found.token);
    let entry = this.streams.get(key);
    if (entry && entry.instrumentKey !== instKey) {
      // The symbol master moved the symbol to another token: let go of the old one.
      this.detach(entry);
      entry.instrumentKey = instKey;
    }
    if (!entry) {
      entry = {
        exchange,
        symbol,
        mode,
        instrumentKey: instKey,
        topics: {
          1: formatTopic(this.feed, exchange, symbol, 1),
          2: formatTopic(this.feed, exchange, symbol, 2),
          3: formatTopic(this.feed, exchange, symbol, 3),
        },
      };
      this.streams.set(key, entry);
    }
    entry.mode = mode;
    let instrument = this.instruments.get(instKey);
    if (!instrument) {
      const isIndex = exchange.endsWith('_INDEX') || found.brexchange.endsWith('_INDEX');
      instrument = { exchangeType, token: found.token, isIndex, streams: new Set() };
      this.instruments.set(instKey, instrument);
    }
    instrument.streams.add(entry);
    this.scheduleFlush();
    // Angel's only book is the best five (SNAP_QUOTE); other modes echo what was asked.
    return { ok: true, depth: mode === 3 ? DEPTH_LEVELS : depth };
  }

  async unsubscribe(stream: StreamRef): Promise<void> {
    const key = streamKey(stream.exchange, stream.symbol);
    const entry = this.streams.get(key);
    if (!entry) return;
    this.streams.delete(key);
    this.detach(entry);
    this.scheduleFlush();
  }

  /** A re-login changed the credentials: redial now with the new ones. */
  credentialsChanged(): void {
    if (!this.running) return;
    this.attempts = 0;
    const connection = this.connection;
    if (connection) {
      connection.restartNow = true;
      connection.socket.terminate();
      return;
    }
    this.clearTimer('reconnectTimer');
    this.redial();
  }

  status(): FeedStatus {
    return this.currentStatus;
  }

  onStatus(listener: (event: FeedStatusEvent) => void): void {
    this.listeners.push(listener);
  }

  /** A snapshot of the counters. */
  stats(): AngelCounters {
    return { ...this.counters };
  }

  // ---- Connection ---------------------------------------------------------------------------

  private redial(): void {
    this.dial().catch((err: unknown) => this.logger.error({ err, feed: this.feed }, 'Angel dial failed'));
  }

  private async dial(): Promise<void> {
    this.reconnectTimer = undefined;
    if (!this.running || this.connection) return;
    const generation = ++this.generation;
    let credentials: BrokerCredentials | undefined;
    try {
      credentials = await this.options.credentials.load();
    } catch (err) {
      if (generation !== this.generation) return;
      this.logger.error({ err, feed: this.feed, user: this.options.user }, 'could not read Angel credentials');
      this.retryAfterLoss(`could not read the credentials: ${(err as Error).message}`);
      return;
    }
    if (!this.running || generation !== this.generation || this.connection) return;

    const missing = missingCredentials(credentials);
    if (missing.length > 0) {
      this.retryAfterRefusal(`No Angel credentials for user ${this.options.user} (missing ${missing.join(', ')}); log in to Angel again`);
      return;
    }
    const creds = credentials!;
    let socket: WebSocket;
    try {
      socket = new WebSocket(this.url, {
        headers: {
          Authorization: bearer(creds.accessToken),
          'x-api-key': creds.apiKey,
          'x-client-code': creds.clientCode!,
          'x-feed-token': creds.feedToken!,
        },
        // Verified TLS (OpenAlgo bug 24 turned it off).
        rejectUnauthorized: true,
        handshakeTimeout: this.connectTimeoutMs,
        maxPayload: MAX_FRAME_BYTES,
        perMessageDeflate: false,
      });
    } catch (err) {
      this.retryAfterRefusal(`Cannot open the Angel feed at ${this.url}: ${(err as Error).message}`);
      return;
    }
    let markClosed = (): void => {};
    const closed = new Promise<void>((resolve) => (markClosed = resolve));
    const connection: Connection = {
      socket, opened: false, heardFrom: false, lastFrameAt: this.clock.now(), timers: [], closed, markClosed,
    };
    this.connection = connection;
    this.logger.info({ feed: this.feed, user: this.options.user, url: this.url }, 'connecting to Angel SmartStream');

    socket.on('unexpected-response', (_request, response) =>
      this.guard(() => {
        const code = response.statusCode ?? 0;
        const auth = code === 401 || code === 403;
        connection.failure = {
          auth,
          message: auth
            ? `Angel refused the login for client ${creds.clientCode} (HTTP ${code}); check the API key, client code, JWT and feed token, or log in to Angel again`
            : `Angel answered the upgrade with HTTP ${code}`,
        };
        response.resume();
        socket.terminate();
      }),
    );
    socket.on('open', () => this.guard(() => this.onOpen(connection)));
    socket.on('message', (data, isBinary) => this.guard(() => this.onMessage(connection, data, isBinary)));
    socket.on('pong', () => this.guard(() => this.heard(connection)));
    socket.on('ping', () => this.guard(() => this.heard(connection)));
    socket.on('error', (err) => {
      connection.error ??= err.message;
    });
    socket.on('close', (code, reason) => this.guard(() => this.onClose(connection, code, reason.toString())));
  }

  private onOpen(connection: Connection): void {
    if (connection !== this.connection) return;
    connection.opened = true;
    connection.lastFrameAt = this.clock.now();
    this.counters.connects++;
    this.logger.info({ feed: this.feed, user: this.options.user, streams: this.streams.size }, 'Angel SmartStream connected');
    this.setStatus('live');
    const { socket } = connection;
    connection.timers.push(
      setInterval(() => this.guard(() => socket.readyState === WebSocket.OPEN && socket.send('ping')), this.pingMs),
      setInterval(() => this.guard(() => this.checkSilence(connection)), Math.max(10, Math.min(1_000, this.silenceMs / 4))),
    );
    for (const timer of connection.timers) timer.unref();
    // The new socket has been asked for nothing yet: send the whole wanted set now.
    this.sent = new Map();
    this.clearTimer('flushTimer');
    this.flush();
  }

  private checkSilence(connection: Connection): void {
    if (connection !== this.connection || !connection.opened) return;
    const silentFor = this.clock.now() - connection.lastFrameAt;
    if (silentFor <= this.silenceMs) return;
    connection.failure = { auth: false, message: `no frame from Angel for ${silentFor} ms` };
    this.logger.warn({ feed: this.feed, silentFor }, 'Angel feed went silent; reconnecting');
    connection.socket.terminate();
  }

  private onClose(connection: Connection, code: number, reason: string): void {
    for (const timer of connection.timers) clearInterval(timer);
    connection.markClosed();
    if (connection !== this.connection) return;
    this.connection = undefined;
    this.sent = new Map();
    if (!this.running) return;

    if (connection.failure?.auth || AUTH_ERROR.test(reason)) {
      this.retryAfterRefusal(connection.failure?.message ?? `Angel closed the session: ${reason}`);
      return;
    }
    if (connection.restartNow) {
      this.setStatus('reconnecting', 'credentials changed; reconnecting');
      this.schedule(0);
      return;
    }
    const why =
      connection.failure?.message ??
      connection.error ??
      `closed with code ${code}${reason ? ` (${reason})` : ''}`;
    this.retryAfterLoss(why);
  }

  /** A lost or failed connection: exponential backoff with jitter. */
  private retryAfterLoss(why: string): void {
    const delay = this.nextBackoff();
    this.logger.warn({ feed: this.feed, user: this.options.user, why, delayMs: delay, attempt: this.attempts }, 'Angel feed lost; reconnecting');
    this.setStatus('reconnecting', `Angel connection lost (${why}); retrying in ${delay} ms`);
    this.schedule(delay);
  }

  /** Missing or refused credentials: down, retried slowly (or at once on credentialsChanged). */
  private retryAfterRefusal(message: string): void {
    this.logger.error({ feed: this.feed, user: this.options.user, retryMs: this.authRetryMs }, message);
    this.setStatus('down', message);
    this.schedule(this.authRetryMs);
  }

  private nextBackoff(): number {
    return backoffDelay(this.attempts++, { ...this.backoff, random: this.random });
  }

  private schedule(delayMs: number): void {
    this.clearTimer('reconnectTimer');
    if (!this.running) return;
    this.reconnectTimer = setTimeout(() => this.redial(), delayMs);
    this.reconnectTimer.unref();
  }

  // ---- Frames -------------------------------------------------------------------------------

  private heard(connection: Connection): void {
    if (connection !== this.connection) return;
    connection.lastFrameAt = this.clock.now();
    if (!connection.heardFrom) {
      connection.heardFrom = true;
      this.attempts = 0;
    }
  }

  private onMessage(connection: Connection, data: RawData, isBinary: boolean): void {
    if (connection !== this.connection) return;
    this.heard(connection);
    this.counters.frames++;
    const frame = Buffer.isBuffer(data) ? data : Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data);
    if (isBinary) this.onPacket(frame);
    else this.onText(connection, frame.toString('utf8'));
  }

  private onPacket(frame: Buffer): void {
    const decoded = decodeAngelBinary(frame, { isIndex: this.isIndexHint });
    if (decoded.kind !== 'tick') {
      this.counters.invalid++;
      const reason = decoded.kind === 'invalid' ? decoded.reason : decoded.kind;
      this.noisy(this.invalidLog, 'skipping invalid Angel frames', { reason, bytes: frame.length, head: frame.subarray(0, 32).toString('hex') });
      return;
    }
    this.counters.ticks++;
    if (decoded.anomaly) {
      this.counters.anomalies++;
      this.noisy(this.invalidLog, 'odd Angel packet (published anyway)', { anomaly: decoded.anomaly });
    }
    const instrument = this.instruments.get(instrumentKey(decoded.exchangeType, decoded.tick.token));
    // The topic mode is the packet's own (1 LTP, 2 QUOTE, 3 SNAP_QUOTE → DEPTH), as OpenAlgo's.
    const topicMode = decoded.packetMode === 4 ? undefined : decoded.packetMode;
    if (!instrument || topicMode === undefined) {
      this.counters.unrouted++;
      return;
    }
    const now = this.clock.now();
    for (const stream of instrument.streams) {
      this.options.publisher.publish(stream.topics[topicMode], angelPayload(decoded.tick, stream.symbol, stream.exchange, topicMode, now));
      this.counters.published++;
    }
  }

  private onText(connection: Connection, text: string): void {
    const decoded = decodeAngelText(text);
    if (decoded.kind === 'pong') {
      this.counters.pongs++;
      return;
    }
    this.counters.texts++;
    const shown = text.length > TEXT_LOG_CHARS ? text.slice(0, TEXT_LOG_CHARS) + '…' : text;
    if (AUTH_ERROR.test(text)) {
      connection.failure = { auth: true, message: `Angel refused the session: ${shown}` };
      connection.socket.terminate();
      return;
    }
    // Angel reports failed requests as text; nothing else surfaces them (spec §2.6).
    this.noisy(this.textLog, 'Angel sent a text message', { text: shown });
  }

  // ---- Subscriptions ------------------------------------------------------------------------

  private detach(stream: Stream): void {
    const instrument = this.instruments.get(stream.instrumentKey);
    if (!instrument) return;
    instrument.streams.delete(stream);
    if (instrument.streams.size === 0) this.instruments.delete(stream.instrumentKey);
  }

  private scheduleFlush(): void {
    if (this.flushTimer || !this.connection?.opened) return;
    this.flushTimer = setTimeout(() => {
      this.flushTimer = undefined;
      this.guard(() => this.flush());
    }, this.batchDelayMs);
    this.flushTimer.unref();
  }

  /** Tells the open socket the difference between what it was asked for and what is wanted. */
  private flush(): void {
    const connection = this.connection;
    if (!connection?.opened || connection.socket.readyState !== WebSocket.OPEN) return;
    const wanted = this.wanted();
    const { unsubscribe, subscribe } = diffUpstream(this.sent, wanted);
    const nextId = (): string => `tc${(++this.requestCount % 36 ** 8).toString(36)}`;
    const requests = [...buildAngelRequests(0, unsubscribe, nextId), ...buildAngelRequests(1, subscribe, nextId)];
    for (const request of requests) connection.socket.send(request);
    this.sent = wanted;
    if (requests.length > 0) {
      this.logger.debug({ feed: this.feed, subscribe: subscribe.length, unsubscribe: unsubscribe.length }, 'Angel subscriptions sent');
    }
  }

  /** Each instrument at the highest mode any of its streams wants. */
  private wanted(): Map<string, UpstreamEntry> {
    const wanted = new Map<string, UpstreamEntry>();
    for (const [key, instrument] of this.instruments) {
      let mode: Mode = 1;
      for (const stream of instrument.streams) if (stream.mode > mode) mode = stream.mode;
      wanted.set(key, { exchangeType: instrument.exchangeType, token: instrument.token, mode });
    }
    return wanted;
  }

  // ---- Helpers ------------------------------------------------------------------------------

  private setStatus(status: FeedStatus, message?: string): void {
    if (status === this.currentStatus) return;
    this.currentStatus = status;
    const event: FeedStatusEvent = message === undefined ? { feed: this.feed, status } : { feed: this.feed, status, message };
    for (const listener of this.listeners) {
      try {
        listener(event);
      } catch (err) {
        this.logger.error({ err, feed: this.feed, status }, 'feed status listener failed');
      }
    }
  }

  /** Logs at most once per NOISY_LOG_INTERVAL_MS, saying how many were skipped in between. */
  private noisy(throttle: Throttle, message: string, fields: Record<string, unknown>): void {
    const now = this.clock.now();
    if (now - throttle.lastAt < NOISY_LOG_INTERVAL_MS) {
      throttle.suppressed++;
      return;
    }
    this.logger.warn({ feed: this.feed, ...fields, suppressed: throttle.suppressed }, message);
    throttle.lastAt = now;
    throttle.suppressed = 0;
  }

  /** Socket and timer callbacks must never throw into ws or the event loop. */
  private guard(fn: () => unknown): void {
    try {
      fn();
    } catch (err) {
      this.logger.error({ err, feed: this.feed }, 'Angel adapter callback failed');
    }
  }

  private clearTimer(name: 'reconnectTimer' | 'flushTimer'): void {
    const timer = this[name];
    if (timer) clearTimeout(timer);
    this[name] = undefined;
  }
}

/** What the socket must be told to get from `sent` to `wanted`; a mode change is both. */
export function diffUpstream(
  sent: ReadonlyMap<string, UpstreamEntry>,
  wanted: ReadonlyMap<string, UpstreamEntry>,
): { unsubscribe: UpstreamEntry[]; subscribe: UpstreamEntry[] } {
  const unsubscribe: UpstreamEntry[] = [];
  const subscribe: UpstreamEntry[] = [];
  for (const [key, held] of sent) {
    const want = wanted.get(key);
    if (!want || want.mode !== held.mode) unsubscribe.push(held);
  }
  for (const [key, want] of wanted) {
    const held = sent.get(key);
    if (!held || held.mode !== want.mode) subscribe.push(want);
  }
  return { unsubscribe, subscribe };
}

/**
 * Angel request texts (spec §2.2) for `entries`: one per mode (ascending), each listing its
 * tokens grouped by exchange type (ascending), split when a message would exceed
 * MAX_TOKENS_PER_REQUEST tokens. Action 1 subscribes, 0 unsubscribes.
 */
export function buildAngelRequests(action: 0 | 1, entries: readonly UpstreamEntry[], nextId: () => string): string[] {
  const byMode = new Map<Mode, Map<number, string[]>>();
  for (const { mode, exchangeType, token } of entries) {
    let byType = byMode.get(mode);
    if (!byType) byMode.set(mode, (byType = new Map()));
    let tokens = byType.get(exchangeType);
    if (!tokens) byType.set(exchangeType, (tokens = []));
    tokens.push(token);
  }
  const requests: string[] = [];
  for (const mode of [...byMode.keys()].sort((a, b) => a - b)) {
    const byType = byMode.get(mode)!;
    let tokenList: Array<{ exchangeType: number; tokens: string[] }> = [];
    let count = 0;
    const emit = (): void => {
      if (count === 0) return;
      requests.push(JSON.stringify({ correlationID: nextId(), action, params: { mode, tokenList } }));
      tokenList = [];
      count = 0;
    };
    for (const exchangeType of [...byType.keys()].sort((a, b) => a - b)) {
      const tokens = byType.get(exchangeType)!;
      for (let i = 0; i < tokens.length; ) {
        const take = Math.min(MAX_TOKENS_PER_REQUEST - count, tokens.length - i);
        tokenList.push({ exchangeType, tokens: tokens.slice(i, i + take) });
        count += take;
        i += take;
        if (count === MAX_TOKENS_PER_REQUEST) emit();
      }
    }
    emit();
  }
  return requests;
}

function missingCredentials(credentials: BrokerCredentials | undefined): string[] {
  if (!credentials) return ['apiKey', 'accessToken', 'clientCode', 'feedToken'];
  const missing: string[] = [];
  if (!credentials.apiKey) missing.push('apiKey');
  if (!credentials.accessToken) missing.push('accessToken');
  if (!credentials.clientCode) missing.push('clientCode');
  if (!credentials.feedToken) missing.push('feedToken');
  return missing;
}

/** Angel's login returns the JWT with or without `Bearer `, depending on the client; send it with. */
function bearer(token: string): string {
  return /^bearer\s/i.test(token) ? token : `Bearer ${token}`;
}

function streamKey(exchange: string, symbol: string): string {
  return `${exchange}\u0000${symbol}`;
}

function instrumentKey(exchangeType: number, token: string): string {
  return `${exchangeType}:${token}`;
}

function positive(name: string, value: number): number {
  if (!(value > 0) || !Number.isFinite(value)) throw new Error(`Angel adapter ${name} must be a positive number, got ${value}`);
  return value;
}

function nonNegative(name: string, value: number): number {
  if (!(value >= 0) || !Number.isFinite(value)) throw new Error(`Angel adapter ${name} must be zero or more, got ${value}`);
  return value;
}
