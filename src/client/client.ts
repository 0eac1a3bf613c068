/**
 * `TickcastClient`: a connection to a tickcast gateway (or OpenAlgo's proxy) for Node and
 * browsers. It authenticates, keeps the application's subscriptions on the gateway across
 * reconnections, delivers ticks to typed callbacks, keeps the latest values (OpenAlgo SDK-shaped
 * getters) and reports feed status and sequence gaps as events.
 *
 * This file is the wiring: sockets and timers. The protocol logic it drives is pure and lives
 * beside it (messages, subscriptions, sync, cache, gaps, backoff).
 */
import { ClientErrorCode, ProtocolErrorCode } from '../errors.js';
import { DEFAULT_RECONNECT, type ReconnectSettings, reconnectDelay, reconnectSettings } from './backoff.js';
import { LatestValues } from './cache.js';
import { TickcastClientError } from './client-error.js';
import { Emitter } from './emitter.js';
import { GapTracker } from './gaps.js';
import { HistoryAnswer, historyUrl, httpBaseOf } from './history.js';
import { parseInstruments, parseMode } from './instruments.js';
import { Link } from './link.js';
import {
  type WireMessage,
  authenticateRequest,
  errorOf,
  pingRequest,
  readAuthReply,
  readMarketData,
  readRecovery,
  readSubscribeReply,
  subscribeRequests,
  unsubscribeRequests,
} from './messages.js';
import { type Held, type Removal, Subscriptions, type TickCallback } from './subscriptions.js';
import { SubscriptionSync } from './sync.js';
import type {
  ClientEvents,
  ClientOptions,
  ClientState,
  ConnectedEvent,
  DepthSnapshot,
  FeedStatusEvent,
  HistoryOptions,
  HistoryStream,
  Instrument,
  InstrumentInput,
  LtpSnapshot,
  MarketData,
  Mode,
  ModeInput,
  NegotiatedExtensions,
  QuoteSnapshot,
  SubscriptionHandle,
  TickOf,
  WebSocketConstructor,
} from './types.js';
import { resolveWebSocket } from './websocket.js';

const DEFAULTS = { requestTimeoutMs: 20_000, connectTimeoutMs: 10_000, heartbeatMs: 20_000 };
/** Wait before resending requests the gateway refused for its request rate. */
const RATE_LIMIT_RETRY_MS = 1_000;
const MODE_NAME: Record<Mode, string> = { 1: 'LTP', 2: 'Quote', 3: 'Depth' };

interface Settings {
  url: string;
  /** The HTTP base `history()` reads from, without a trailing slash. */
  httpUrl: string;
  apiKey: string;
  encoding: 'json' | 'msgpack';
  batch: boolean;
  snapshot: boolean;
  reconnect: ReconnectSettings | false;
  requestTimeoutMs: number;
  connectTimeoutMs: number;
  heartbeatMs: number | false;
  WebSocket: WebSocketConstructor | undefined;
}

function invalid(message: string): TickcastClientError {
  return new TickcastClientError(ClientErrorCode.INVALID_ARGUMENT, message);
}

function positive(name: string, value: unknown, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !(value > 0) || !Number.isFinite(value)) throw invalid(`${name} must be a positive number of milliseconds, got ${String(value)}`);
  return value;
}

function settingsFrom(options: ClientOptions): Settings {
  if (options === null || typeof options !== 'object') throw invalid('options must be an object with url and apiKey');
  const { url, apiKey } = options;
  if (typeof url !== 'string' || !/^wss?:\/\/[^/]/i.test(url)) throw invalid(`url must be a ws:// or wss:// URL, got ${JSON.stringify(url)}`);
  if (typeof apiKey !== 'string' || apiKey.trim() === '') throw invalid('apiKey must be a non-empty string');
  const encoding = options.encoding ?? 'json';
  if (encoding !== 'json' && encoding !== 'msgpack') throw invalid(`encoding must be "json" or "msgpack", got ${JSON.stringify(encoding)}`);
  for (const flag of ['batch', 'snapshot'] as const) {
    if (options[flag] !== undefined && typeof options[flag] !== 'boolean') throw invalid(`${flag} must be true or false`);
  }
  if (options.WebSocket !== undefined && typeof options.WebSocket !== 'function') throw invalid('WebSocket must be a WebSocket constructor');
  const { httpUrl } = options;
  if (httpUrl !== undefined && (typeof httpUrl !== 'string' || !/^https?:\/\/[^/]/i.test(httpUrl))) throw invalid(`httpUrl must be an http:// or https:// URL, got ${JSON.stringify(httpUrl)}`);
  return {
    url,
    httpUrl: httpUrl !== undefined ? httpUrl.replace(/\/+$/, '') : httpBaseOf(url),
    apiKey,
    encoding,
    batch: options.batch ?? true,
    snapshot: options.snapshot ?? true,
    reconnect: options.reconnect === false ? false : reconnectSettings(options.reconnect ?? DEFAULT_RECONNECT),
    requestTimeoutMs: positive('requestTimeoutMs', options.requestTimeoutMs, DEFAULTS.requestTimeoutMs),
    connectTimeoutMs: positive('connectTimeoutMs', options.connectTimeoutMs, DEFAULTS.connectTimeoutMs),
    heartbeatMs: options.heartbeatMs === false ? false : positive('heartbeatMs', options.heartbeatMs, DEFAULTS.heartbeatMs),
    WebSocket: options.WebSocket,
  };
}

/** Failures that retrying cannot fix: reconnection stops and the error is emitted. */
function isFatal(error: TickcastClientError): boolean {
  switch (error.code) {
    case ProtocolErrorCode.AUTHENTICATION_ERROR:
      return !error.message.startsWith('Too many'); // the failed-auth limit passes; a bad key does not
    case ProtocolErrorCode.BROKER_ERROR:
    case ClientErrorCode.NO_WEBSOCKET:
    case ClientErrorCode.INVALID_ARGUMENT:
      return true;
    default:
      return false;
  }
}

function asClientError(error: unknown): TickcastClientError {
  return error instanceof TickcastClientError ? error : new TickcastClientError(ClientErrorCode.CONNECT_FAILED, (error as Error)?.message ?? String(error));
}

export class TickcastClient {
  private readonly settings: Settings;
  private readonly subscriptions = new Subscriptions();
  private readonly sync = new SubscriptionSync();
  private readonly cache = new LatestValues(() => Date.now());
  private readonly gaps = new GapTracker();
  private readonly events: Emitter<ClientEvents>;

  private link: Link | undefined;
  private current: ConnectedEvent | undefined;
  private stateValue: ClientState = 'idle';
  /** The connection attempt in progress, if any. */
  private attempt: Promise<void> | undefined;
  /** `connect()` calls made while reconnecting, settled by the next outcome. */
  private waiters: Array<{ resolve: () => void; reject: (error: TickcastClientError) => void }> = [];
  /** Bumped by `close()`, so that attempts started before it give up. */
  private generation = 0;
  private retries = 0;
  private reconnectTimer: ReturnType<typeof setTimeout> | undefined;
  private retryTimer: ReturnType<typeof setTimeout> | undefined;
  private heartbeatTimer: ReturnType<typeof setInterval> | undefined;
  private flushQueued = false;
  /** The gateway's `seq_epoch` of the current connection, and of the one being adopted. */
  private epoch: string | undefined;
  private adoptedEpoch: string | undefined;
  /**
   * After a reconnection: the previous connection's epoch and the (stream|mode) pairs held then,
   * whose first subscribe asks for what was missed (`since`). Each pair asks once.
   */
  private resume: { epoch: string; pending: Set<string> } | undefined;
  /** `history()` reads in progress, aborted by `close()`. */
  private readonly historyReads = new Set<AbortController>();

  constructor(options: ClientOptions) {
    this.settings = settingsFrom(options);
    this.events = new Emitter<ClientEvents>((event, error) => {
      // A throwing 'error' listener cannot be told about itself.
      if (event !== 'error') this.fail(ClientErrorCode.CALLBACK_FAILED, `a "${String(event)}" listener threw: ${(error as Error)?.message ?? String(error)}`);
    });
  }

  /** `idle` (not connected, not trying), `connecting`, `connected`, `reconnecting` or `closed` (by `close()`). */
  get state(): ClientState {
    return this.stateValue;
  }

  /** The broker, user and extensions of the current connection (undefined until connected). */
  get session(): ConnectedEvent | undefined {
    return this.current;
  }

  get extensions(): NegotiatedExtensions | undefined {
    return this.current?.extensions;
  }

  /** Adds an event listener; returns a function that removes it. */
  on<E extends keyof ClientEvents>(event: E, listener: (payload: ClientEvents[E]) => void): () => void {
    return this.events.on(event, listener);
  }

  once<E extends keyof ClientEvents>(event: E, listener: (payload: ClientEvents[E]) => void): () => void {
    return this.events.once(event, listener);
  }

  off<E extends keyof ClientEvents>(event: E, listener: (payload: ClientEvents[E]) => void): void {
    this.events.off(event, listener);
  }

  /**
   * Connects and authenticates. Resolves once authenticated (subscriptions already held are sent
   * right after). Rejects with the gateway's code (`AUTHENTICATION_ERROR` for a bad key) or
   * `CONNECT_FAILED`; a first connection is not retried, a lost one is (see `reconnect`).
   */
  connect(): Promise<void> {
    if (this.stateValue === 'connected') return Promise.resolve();
    if (this.stateValue === 'reconnecting' || this.attempt) {
      return new Promise((resolve, reject) => this.waiters.push({ resolve, reject }));
    }
    this.stateValue = 'connecting';
    const generation = this.generation;
    return this.establish(generation).then(
      () => this.established(false),
      (error: TickcastClientError) => {
        if (generation === this.generation) this.stateValue = 'idle';
        this.settleWaiters(error);
        throw error;
      },
    );
  }

  /**
   * Closes the connection and stops reconnecting. Subscriptions stay registered: a later
   * `connect()` sends them again. Resolves once the socket has closed.
   */
  close(): Promise<void> {
    this.generation++;
    this.stateValue = 'closed';
    this.clearTimers();
    const closed = new TickcastClientError(ClientErrorCode.CLIENT_CLOSED, 'the client was closed');
    this.settleWaiters(closed);
    this.subscriptions.failAllPending('the client was closed before the gateway answered');
    for (const read of this.historyReads) read.abort();
    this.historyReads.clear();
    const link = this.link;
    this.link = undefined;
    this.current = undefined;
    if (!link) return Promise.resolve();
    link.close(1000, 'client closed');
    this.events.emit('disconnected', { code: 1000, reason: 'client closed', willReconnect: false });
    return link.closed;
  }

  /**
   * Subscribes `instruments` at `mode`. The callback gets every tick of those streams (typed by
   * the mode); without one, ticks only update the latest-value cache. Bad instruments or modes
   * throw INVALID_ARGUMENT. Works before `connect()`: the subscription is sent once connected.
   */
  subscribe<M extends ModeInput>(
    instruments: InstrumentInput | readonly InstrumentInput[],
    mode: M,
    callback?: (message: MarketData<TickOf<M>>) => void,
  ): SubscriptionHandle {
    const list = parseInstruments(instruments);
    const parsedMode = parseMode(mode);
    if (callback !== undefined && typeof callback !== 'function') throw invalid('callback must be a function');
    const { id, ready, added } = this.subscriptions.add(list, parsedMode, callback as TickCallback | undefined, (key, m) =>
      this.link !== undefined && this.sync.isAcknowledged(key, m),
    );
    for (const held of added) this.sync.markDirty(held);
    this.queueFlush();
    const subscriptions = this.subscriptions;
    const release = (removal: Removal): void => this.release(removal);
    return {
      get instruments(): readonly Instrument[] {
        return subscriptions.instrumentsOf(id);
      },
      mode: parsedMode,
      ready,
      unsubscribe(): void {
        release(subscriptions.removeHandle(id));
      },
    };
  }

  /** Removes `instruments` at `mode` from every subscription holding them. */
  unsubscribe(instruments: InstrumentInput | readonly InstrumentInput[], mode: ModeInput): void {
    this.release(this.subscriptions.removeInstruments(parseInstruments(instruments), parseMode(mode)));
  }

  /** Latest LTPs: `{ ltp: { EXCHANGE: { SYMBOL: { timestamp, ltp } } } }` (OpenAlgo SDK's `get_ltp`). */
  getLtp(exchange?: string, symbol?: string): LtpSnapshot {
    return this.cache.getLtp(exchange, symbol);
  }

  /** Latest quotes: `{ quote: { EXCHANGE: { SYMBOL: {…} } } }` (OpenAlgo SDK's `get_quotes`). */
  getQuotes(exchange?: string, symbol?: string): QuoteSnapshot {
    return this.cache.getQuotes(exchange, symbol);
  }

  /** Latest books: `{ depth: { EXCHANGE: { SYMBOL: { ltp, buyBook, sellBook } } } }` (OpenAlgo SDK's `get_depth`). */
  getDepth(exchange?: string, symbol?: string): DepthSnapshot {
    return this.cache.getDepth(exchange, symbol);
  }

  /** Round trip of an application-level ping, in milliseconds. */
  async ping(): Promise<number> {
    const link = this.requireLink();
    const started = Date.now();
    const reply = await link.request(pingRequest(started), this.settings.requestTimeoutMs);
    const failure = errorOf(reply);
    if (failure) throw new TickcastClientError(failure.code, failure.message);
    return Date.now() - started;
  }

  /**
   * One stream's recorded ticks received in [from, to), from the gateway's `GET /api/ticks`,
   * streamed: `for await (const tick of client.history({ exchange, symbol, from, to }))`. Needs
   * the API key only, not a connection. The request goes out when iteration starts; the answer
   * is iterated once, then its `summary` says how it ended (cut by `limit`, damaged days, no
   * history here). Bad arguments throw INVALID_ARGUMENT here; the gateway's refusals
   * (INVALID_PARAMETERS, RANGE_TOO_LARGE, HISTORY_BUSY, …) and an answer cut off mid-way
   * (CONNECTION_LOST) are thrown by the iteration. `close()` aborts reads in progress.
   */
  history<M extends ModeInput = 'ltp'>(options: HistoryOptions<M>): HistoryStream<TickOf<M>> {
    const url = historyUrl(this.settings.httpUrl, options);
    const endpoint = { baseUrl: this.settings.httpUrl, apiKey: this.settings.apiKey, headersTimeoutMs: this.settings.requestTimeoutMs };
    return new HistoryAnswer<TickOf<M>>(endpoint, url, (abort) => {
      this.historyReads.add(abort);
      return () => this.historyReads.delete(abort);
    });
  }

  // --- connection -----------------------------------------------------------------------------

  private requireLink(): Link {
    if (!this.link || this.stateValue !== 'connected') throw new TickcastClientError(ClientErrorCode.CONNECTION_LOST, `not connected (state: ${this.stateValue})`);
    return this.link;
  }

  /** One connection attempt; `connect()` calls made meanwhile wait for it. */
  private establish(generation: number): Promise<void> {
    const attempt = this.openAndAuthenticate(generation)
      .catch((error: unknown) => {
        throw asClientError(error);
      })
      .finally(() => {
        if (this.attempt === attempt) this.attempt = undefined;
      });
    this.attempt = attempt;
    return attempt;
  }

  /** Opens a link and authenticates on it; adopts it unless `close()` came in between. */
  private async openAndAuthenticate(generation: number): Promise<void> {
    const closed = (): TickcastClientError => new TickcastClientError(ClientErrorCode.CLIENT_CLOSED, 'the client was closed');
    const WebSocketImpl = await resolveWebSocket(this.settings.WebSocket);
    if (generation !== this.generation) throw closed();
    let adopted: Link | undefined;
    const link = await Link.open(WebSocketImpl, this.settings.url, this.settings.connectTimeoutMs, {
      push: (message) => {
        if (adopted && adopted === this.link) this.onPush(message);
      },
      ended: (code, reason) => {
        if (adopted && adopted === this.link) this.onEnded(code, reason);
      },
      problem: (error) => this.events.emit('error', error),
    });
    let reply: WireMessage;
    try {
      const { apiKey, encoding, batch, snapshot } = this.settings;
      reply = await link.request(authenticateRequest({ apiKey, encoding, batch, snapshot }), this.settings.connectTimeoutMs);
    } catch (error) {
      link.close();
      throw new TickcastClientError(ClientErrorCode.CONNECT_FAILED, `no answer to authenticate from ${this.settings.url}: ${(error as Error).message}`);
    }
    const outcome = readAuthReply(reply);
    if (!outcome.ok) {
      link.close();
      throw new TickcastClientError(outcome.code, outcome.message);
    }
    if (generation !== this.generation || !link.isOpen) {
      link.close();
      throw generation !== this.generation ? closed() : new TickcastClientError(ClientErrorCode.CONNECT_FAILED, 'the connection closed right after authenticating');
    }
    adopted = link;
    this.link = link;
    this.current = { broker: outcome.broker, userId: outcome.userId, extensions: outcome.extensions, reconnected: false };
    this.adoptedEpoch = outcome.seqEpoch;
  }

  private established(reconnected: boolean): void {
    this.stateValue = 'connected';
    this.retries = 0;
    this.current = { ...this.current!, reconnected };
    const held = this.subscriptions.held();
    // Back after a loss: ask for what was missed, in the numbering the last seqs came in. A
    // gateway process that is not the same one answers `gap` (reason epoch), never a silent hole.
    const previousEpoch = this.epoch;
    this.epoch = this.adoptedEpoch;
    this.resume =
      reconnected && previousEpoch !== undefined && this.current.extensions.seq
        ? { epoch: previousEpoch, pending: new Set(held.map(({ key, mode }) => `${key}|${mode}`)) }
        : undefined;
    this.sync.reset(held);
    this.flush();
    this.startHeartbeat();
    this.settleWaiters(undefined);
    this.events.emit('connected', { ...this.current });
  }

  private onEnded(code: number, reason: string): void {
    this.link = undefined;
    this.current = undefined;
    this.clearTimers();
    const willReconnect = this.settings.reconnect !== false && this.stateValue !== 'closed';
    this.stateValue = willReconnect ? 'reconnecting' : 'idle';
    this.events.emit('disconnected', { code, reason, willReconnect });
    if (willReconnect) this.scheduleReconnect();
    else this.settleWaiters(new TickcastClientError(ClientErrorCode.CONNECTION_LOST, `connection closed (code ${code})`));
  }

  private scheduleReconnect(): void {
    const settings = this.settings.reconnect as ReconnectSettings;
    const delayMs = reconnectDelay(++this.retries, settings, Math.random);
    this.events.emit('reconnecting', { attempt: this.retries, delayMs });
    if (this.stateValue !== 'reconnecting') return; // a listener closed the client
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      const generation = this.generation;
      this.establish(generation).then(
        () => {
          if (generation === this.generation) this.established(true);
        },
        (error: TickcastClientError) => {
          if (generation !== this.generation) return;
          if (isFatal(error)) {
            this.stateValue = 'idle';
            this.settleWaiters(error);
            this.events.emit('error', error);
          } else {
            this.scheduleReconnect();
          }
        },
      );
    }, delayMs);
  }

  private settleWaiters(error: TickcastClientError | undefined): void {
    for (const waiter of this.waiters.splice(0)) {
      if (error) waiter.reject(error);
      else waiter.resolve();
    }
  }

  private startHeartbeat(): void {
    const every = this.settings.heartbeatMs;
    if (every === false) return;
    this.heartbeatTimer = setInterval(() => {
      const link = this.link;
      // Pending requests already prove (or disprove) that the gateway answers.
      if (!link || link.waiting > 0) return;
      link.request(pingRequest(Date.now()), this.settings.requestTimeoutMs).catch(() => {
        // A timeout ends the link, which reconnects; nothing else to do here.
      });
    }, every);
  }

  private clearTimers(): void {
    for (const timer of [this.reconnectTimer, this.retryTimer]) if (timer) clearTimeout(timer);
    if (this.heartbeatTimer) clearInterval(this.heartbeatTimer);
    this.reconnectTimer = this.retryTimer = this.heartbeatTimer = undefined;
  }

  // --- subscriptions --------------------------------------------------------------------------

  private release(removal: Removal): void {
    for (const held of removal.released) this.sync.markDirty(held);
    for (const key of removal.dropped) {
      this.cache.forget(key);
      this.gaps.forget(key);
    }
    this.queueFlush();
  }

  /** Changes made in one turn of the event loop go out together. */
  private queueFlush(): void {
    if (this.flushQueued || !this.sync.hasWork) return;
    this.flushQueued = true;
    queueMicrotask(() => {
      this.flushQueued = false;
      this.flush();
    });
  }

  private flush(): void {
    const link = this.link;
    if (!link || !this.sync.hasWork) return;
    const plan = this.sync.plan((key, mode) => this.subscriptions.holds(key, mode));
    // Subscribes first: a stream moving between modes is then never released upstream in between.
    const resume = this.resume;
    for (const [mode, instruments] of plan.subscribe) {
      const from = resume && {
        epoch: resume.epoch,
        since: (instrument: Instrument): number | undefined => {
          const key = `${instrument.exchange}:${instrument.symbol}`;
          if (!resume.pending.delete(`${key}|${mode}`)) return undefined;
          return this.gaps.lastSeen(key, mode);
        },
      };
      for (const request of subscribeRequests(instruments, mode, undefined, from)) this.sendSubscribe(link, request, mode);
    }
    for (const [mode, instruments] of plan.unsubscribe) {
      for (const request of unsubscribeRequests(instruments, mode)) this.sendUnsubscribe(link, request, mode);
    }
  }

  private sendSubscribe(link: Link, request: WireMessage, mode: Mode): void {
    const instruments = (request.symbols as Instrument[]).map(({ exchange, symbol }) => ({ exchange, symbol }));
    link.request(request, this.settings.requestTimeoutMs).then(
      (reply) => {
        if (link !== this.link) return;
        const { error, outcomes } = readSubscribeReply(reply, instruments);
        if (error?.code === ProtocolErrorCode.LIMIT_EXCEEDED) {
          this.sync.retry(instruments.map((instrument) => heldOf(instrument, mode)));
          this.retryLater();
          return;
        }
        for (const [key, outcome] of outcomes) {
          this.sync.answered(key, mode, outcome.ok);
          const removal = this.subscriptions.settle(key, mode, outcome);
          for (const dropped of removal.dropped) {
            this.cache.forget(dropped);
            this.gaps.forget(dropped);
          }
          if (!outcome.ok) this.fail(ClientErrorCode.SUBSCRIBE_FAILED, `${key} (${MODE_NAME[mode]}): ${outcome.message}`);
        }
      },
      () => {
        // The link is gone; the next one subscribes everything again.
      },
    );
  }

  private sendUnsubscribe(link: Link, request: WireMessage, mode: Mode): void {
    link.request(request, this.settings.requestTimeoutMs).then(
      (reply) => {
        if (link !== this.link) return;
        const failure = errorOf(reply);
        if (failure?.code === ProtocolErrorCode.LIMIT_EXCEEDED) {
          this.sync.retryUnsubscribe((request.symbols as Instrument[]).map((instrument) => heldOf(instrument, mode)));
          this.retryLater();
        } else if (failure) {
          this.fail(failure.code, `unsubscribe failed: ${failure.message}`);
        }
      },
      () => {},
    );
  }

  private retryLater(): void {
    if (this.retryTimer) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.flush();
    }, RATE_LIMIT_RETRY_MS);
  }

  // --- pushed messages ------------------------------------------------------------------------

  private onPush(message: WireMessage): void {
    if (message.type === 'feed_status') {
      this.events.emit('feed_status', message as unknown as FeedStatusEvent);
      return;
    }
    if (message.type === 'recovered' || message.type === 'gap') {
      this.onRecovery(message);
      return;
    }
    if (message.type !== 'market_data') return;
    const tick = readMarketData(message);
    if (!tick) {
      this.fail(ClientErrorCode.PROTOCOL_ERROR, `a malformed market_data message: ${JSON.stringify(message).slice(0, 200)}`);
      return;
    }
    const key = `${tick.exchange}:${tick.symbol}`;
    if (!this.subscriptions.holdsStream(key)) return; // in flight when it was unsubscribed
    if (tick.seq !== undefined) {
      const gap = this.gaps.observe(key, tick.mode, tick.exchange, tick.symbol, tick.seq);
      if (gap) this.events.emit('gap', gap);
    }
    this.cache.update(key, tick.exchange, tick.symbol, tick.mode, tick.data);
    for (const callback of this.subscriptions.callbacks(key, tick.mode)) {
      try {
        callback(message as unknown as MarketData);
      } catch (error) {
        this.fail(ClientErrorCode.CALLBACK_FAILED, `a ${key} callback threw: ${(error as Error)?.message ?? String(error)}`);
      }
    }
  }

  /** The gateway's answer to a `since`: everything missed was resent (`recovered`), or not (`gap`). */
  private onRecovery(message: WireMessage): void {
    const recovery = readRecovery(message);
    if (!recovery) {
      this.fail(ClientErrorCode.PROTOCOL_ERROR, `a malformed ${String(message.type)} message: ${JSON.stringify(message).slice(0, 200)}`);
      return;
    }
    const { exchange, symbol, mode } = recovery;
    const stream = `${exchange}:${symbol}`;
    if (!this.subscriptions.holdsStream(stream)) return;
    if (recovery.type === 'recovered') {
      const { from, to, count } = recovery;
      this.events.emit('recovered', { stream, exchange, symbol, mode, from, to, count });
      return;
    }
    const { since, next, reason } = recovery;
    // Live ticks continue from `next`, in this gateway's numbering: no second report of the jump.
    this.gaps.expect(stream, mode, next);
    const expected = since + 1;
    this.events.emit('gap', { stream, exchange, symbol, mode, reason, expected, received: next, missed: reason === 'history' ? Math.max(0, next - expected) : 0, message: recovery.message });
  }

  private fail(code: string, message: string): void {
    this.events.emit('error', new TickcastClientError(code, message));
  }
}

function heldOf(instrument: Instrument, mode: Mode): Held {
  return { key: `${instrument.exchange}:${instrument.symbol}`, instrument, mode };
}
