/**
 * The Noren adapter: the market-data WebSocket of brokers on Noren OMS, in two dialects,
 * Shoonya (Finvasia) and Flattrade (docs/brokers/noren.md). The session layer (../session/)
 * connects, reconnects and keeps the subscriptions; this is Noren's dialect:
 *
 * - nothing in the URL or headers: the connect message is the dialect's `login`, sent first on
 *   each socket, and only an OK answer (`ak`, or `ck`) logs the socket in (`session.loggedIn()`).
 *   Until then the session layer subscribes nothing and does not report the feed live; a refusal
 *   ends the socket with the broker's reason (`session.refuse`), and the slow retry waits for a
 *   re-login; no answer within `loginTimeoutMs` replaces the socket;
 * - touchline (`t`/`u`) for LTP and Quote, depth (`d`/`ud`) for Depth, `k` lists of
 *   `EXCHANGE|TOKEN` joined by `#`, at most 100 per message, one connection;
 * - a text heartbeat `{"t":"h"}` every 30 s and a WebSocket ping every 30 s (as OpenAlgo; the
 *   official client pings too), a reconnect after 60 s of silence;
 * - acknowledgements carry a token's whole state and updates only what changed: every message
 *   is merged in a `NorenBook` (cleared on a new socket, forgotten on unsubscribe) and the merged
 *   state published with OpenAlgo's field names (payload.ts).
 *
 * Dialects. Both use the `t:"a"` connect message with `accesstoken`, answered `ak`: that is what
 * the Flattrade client and OpenAlgo's Flattrade adapter send, and what OpenAlgo's Shoonya adapter
 * sends on `NorenWSAPI` since Shoonya moved to OAuth (the token OpenAlgo stores for a Shoonya user
 * is that OAuth access token, which is what tickcast reads). The official Shoonya client's older
 * `t:"c"` / `susertoken` message (a QuickAuth session on `NorenWSTP`) is available with
 * `connect: 'c'` and the matching `url`.
 */
import type { StreamRef } from '../../feed.js';
import type { Mode } from '../../protocol/modes.js';
import type { BrokerCredentials, BrokerFeedOptions, BrokerInstrument } from '../broker.js';
import { authErrorPattern } from '../session/auth-error.js';
import { BrokerFeed, type Diff, type Resolved, type SessionOptions, type Upstream } from '../session/broker-feed.js';
import type { BrokerSession, SessionDialect } from '../session/broker-session.js';
import { LogThrottle } from '../session/feed-status.js';
import { positive } from '../session/schedule.js';
import { chunks } from '../session/subscriptions.js';
import { NorenBook, decodeNorenText, norenSubscribe, norenUnsubscribe } from './decoder.js';
import { norenPayload } from './payload.js';

export type NorenDialectName = 'shoonya' | 'flattrade';

/** The connect message's type: `a` with `accesstoken` (answered `ak`), `c` with `susertoken` (`ck`). */
export type NorenConnectType = 'a' | 'c';

export interface NorenDialectInfo {
  readonly label: string;
  readonly url: string;
  readonly connect: NorenConnectType;
}

export const NOREN_DIALECTS: Readonly<Record<NorenDialectName, NorenDialectInfo>> = {
  shoonya: { label: 'Shoonya', url: 'wss://api.shoonya.com/NorenWSAPI/', connect: 'a' },
  flattrade: { label: 'Flattrade', url: 'wss://piconnect.flattrade.in/PiConnectWSAPI/', connect: 'a' },
};

/** Noren's exchange for the symbol master's brexchange; indices ride on their exchange. */
export const NOREN_EXCHANGE: Readonly<Record<string, string>> = {
  NSE: 'NSE', NFO: 'NFO', BSE: 'BSE', BFO: 'BFO', CDS: 'CDS', MCX: 'MCX', NSE_INDEX: 'NSE', BSE_INDEX: 'BSE',
};

export interface NorenAdapterOptions extends BrokerFeedOptions, SessionOptions {
  dialect: NorenDialectName;
  /** Override of the dialect's connect message (`c` for a QuickAuth `susertoken` on NorenWSTP). */
  connect?: NorenConnectType;
  /** Text heartbeat period. */
  heartbeatMs?: number;
  /** WebSocket ping period. */
  wsPingMs?: number;
  /** Scrips per subscription message. */
  maxScripsPerMessage?: number;
  /** Tokens whose merged state is kept. */
  maxTokens?: number;
}

export interface NorenInstrument {
  /** Noren's exchange: `NSE`, `NFO`, `BSE`, `BFO`, `CDS`, `MCX`. */
  readonly exchange: string;
  readonly token: string;
  readonly isIndex: boolean;
}

/** What the adapter has seen, for metrics and tests. */
export interface NorenCounters {
  connects: number;
  /** Connect messages sent, and their answers. */
  logins: number;
  loginsRefused: number;
  frames: number;
  /** Market messages decoded (acknowledgements and updates). */
  messages: number;
  ticks: number;
  /** Updates for a token with no last price yet (no tick made). */
  pending: number;
  heartbeats: number;
  /** Order updates and their subscription's acknowledgement (not market data; ignored). */
  accountMessages: number;
  /** Frames that were not a valid Noren message (counted, logged at a bounded rate, skipped). */
  invalid: number;
  published: number;
  unrouted: number;
}

/** Noren messages are small JSON texts; the decoder refuses over 64 KiB anyway. */
const MAX_FRAME_BYTES = 256 * 1024;
const HEARTBEAT = '{"t":"h"}';
const TOKEN = /^[A-Za-z0-9_.-]{1,32}$/;
const AUTH_ERROR = authErrorPattern(/invalid (?:session|access ?token|user ?id)|session (?:key|token)/);

export class NorenAdapter extends BrokerFeed<NorenInstrument> {
  readonly broker: NorenDialectName;

  private readonly label: string;
  private readonly maxScripsPerMessage: number;
  private readonly authRetryMs: number;
  private readonly book: NorenBook;
  /** The credentials of the latest dial: the connect message carries them. */
  private readonly dialled: { credentials?: BrokerCredentials };
  /** The mode each scrip was subscribed at on the current socket (publishing picks the topic by it). */
  private readonly upstream = new Map<string, Mode>();
  private readonly counters = {
    logins: 0, loginsRefused: 0, frames: 0, messages: 0, ticks: 0, pending: 0, heartbeats: 0, accountMessages: 0, invalid: 0,
  };
  private readonly invalidLog: LogThrottle;

  constructor(options: NorenAdapterOptions) {
    const dialect = NOREN_DIALECTS[options.dialect];
    if (!dialect) throw new Error(`unknown Noren dialect ${String(options.dialect)}`);
    const authRetryMs = options.authRetryMs ?? 60_000;
    const connectType = options.connect ?? dialect.connect;
    const dialled: { credentials?: BrokerCredentials } = {};
    const heartbeatMs = positive(dialect.label, 'heartbeatMs', options.heartbeatMs ?? 30_000);
    const wsPingMs = positive(dialect.label, 'wsPingMs', options.wsPingMs ?? 30_000);
    super(options, norenDialect(dialect, options.url ?? dialect.url, connectType, authRetryMs, heartbeatMs, wsPingMs, dialled), {
      silenceMs: options.silenceMs ?? 60_000,
      batchDelayMs: options.batchDelayMs ?? 100,
      connectTimeoutMs: options.connectTimeoutMs ?? 10_000,
      maxConnections: 1,
      maxInstrumentsPerConnection: Infinity,
    });
    this.broker = options.dialect;
    this.label = dialect.label;
    this.dialled = dialled;
    this.authRetryMs = authRetryMs;
    this.maxScripsPerMessage = Math.floor(positive(dialect.label, 'maxScripsPerMessage', options.maxScripsPerMessage ?? 100));
    this.book = new NorenBook({
      broker: options.dialect,
      maxTokens: options.maxTokens,
      isIndex: (exchange, token) => this.instrument(scrip(exchange, token))?.isIndex ?? false,
    });
    this.invalidLog = new LogThrottle(() => this.clock.now());
  }

  /** A snapshot of the counters. */
  stats(): NorenCounters {
    const { published, unrouted, connects } = this.routing;
    return { ...this.counters, connects, published, unrouted };
  }

  /** What the current socket was asked for: `EXCHANGE|TOKEN` → mode (1–2 touchline, 3 depth). */
  upstreamModes(): Map<string, Mode> {
    return new Map(this.upstream);
  }

  protected resolve(found: BrokerInstrument, { exchange, symbol }: StreamRef): Resolved<NorenInstrument> {
    const norenExchange = NOREN_EXCHANGE[found.brexchange] ?? NOREN_EXCHANGE[exchange];
    if (norenExchange === undefined) {
      return { ok: false, message: `Exchange ${found.brexchange} of ${symbol} is not supported by the ${this.label} feed` };
    }
    const token = found.token.trim();
    if (!TOKEN.test(token)) return { ok: false, message: `Token not found for ${symbol} on ${exchange}` };
    const isIndex = exchange.endsWith('_INDEX') || found.brexchange.endsWith('_INDEX');
    return { ok: true, key: scrip(norenExchange, token), instrument: { exchange: norenExchange, token, isIndex } };
  }

  /** Depth is always Noren's five levels; touchline modes echo what was asked. */
  protected depthFor(mode: Mode, depth: number): number {
    return mode === 3 ? 5 : depth;
  }

  /** A new socket starts with a fresh book; its login is counted (the session layer sends it). */
  protected override socketOpened(): void {
    this.book.clear();
    this.upstream.clear();
    this.counters.logins++;
  }

  /**
   * Sent only once the socket is logged in. Unsubscribes (`u`, `ud`) before subscribes (`t`,
   * `d`); LTP ↔ Quote is the same touchline, so nothing.
   */
  protected encode({ stale, fresh }: Diff<NorenInstrument>): string[] {
    const drop = { touchline: [] as string[], depth: [] as string[] };
    const add = { touchline: [] as string[], depth: [] as string[] };
    for (const { key, value, changed } of stale) {
      if (changed) continue;
      drop[feedOf(value.mode)].push(key);
      this.upstream.delete(key);
      this.book.forget(value.instrument.exchange, value.instrument.token);
    }
    for (const { key, value, before } of fresh) {
      this.upstream.set(key, value.mode);
      const now = feedOf(value.mode);
      if (before !== undefined) {
        const was = feedOf(before.mode);
        if (was === now) continue;
        drop[was].push(key);
      }
      add[now].push(key);
    }
    const size = this.maxScripsPerMessage;
    const messages: string[] = [];
    for (const kind of ['touchline', 'depth'] as const) for (const part of chunks(drop[kind], size)) messages.push(norenUnsubscribe(kind, part));
    for (const kind of ['touchline', 'depth'] as const) for (const part of chunks(add[kind], size)) messages.push(norenSubscribe(kind, part));
    return messages;
  }

  protected onFrame(session: BrokerSession<string, Upstream<NorenInstrument>>, frame: Buffer, isBinary: boolean): void {
    this.counters.frames++;
    if (isBinary) {
      this.invalid(`a binary frame of ${frame.length} bytes`);
      return;
    }
    const decoded = decodeNorenText(frame.toString('utf8'));
    switch (decoded.kind) {
      case 'market': {
        this.counters.messages++;
        const applied = this.book.apply(decoded);
        if (applied.kind !== 'tick') {
          this.counters.pending++;
          return;
        }
        this.counters.ticks++;
        const { tick } = applied;
        const key = scrip(decoded.exchange, decoded.token);
        // Published once, at the mode held (tickcast's adapters do; the gateway makes the lower
        // modes' messages): a touchline serves LTP or Quote, a depth message Depth.
        const held = this.upstream.get(key) ?? (tick.mode === 'full' ? 3 : 2);
        const mode = Math.min(held, tick.mode === 'full' ? 3 : 2) as Mode;
        const now = this.clock.now();
        this.publish(key, mode, (symbol, exchange) => norenPayload(tick, symbol, exchange, mode, now, this.broker));
        return;
      }
      case 'connect':
        this.onLoginAnswer(session, decoded.ok, decoded.message);
        return;
      case 'heartbeat':
        this.counters.heartbeats++;
        return;
      case 'order':
      case 'ack':
        this.counters.accountMessages++;
        return;
      case 'invalid':
        this.invalid(decoded.reason);
    }
  }

  private onLoginAnswer(session: BrokerSession<string, Upstream<NorenInstrument>>, ok: boolean, message: string): void {
    if (!ok) {
      this.counters.loginsRefused++;
      const user = this.dialled.credentials?.clientCode ?? '';
      session.refuse(refusalMessage(this.label, `login of user ${user} answered "${message}"`, this.authRetryMs));
      return;
    }
    session.loggedIn();
  }

  private invalid(reason: string): void {
    this.counters.invalid++;
    this.invalidLog.log(this.logger, 'warn', { reason, invalid: this.counters.invalid }, `skipping invalid ${this.label} messages`);
  }
}

function norenDialect(
  info: NorenDialectInfo,
  url: string,
  connect: NorenConnectType,
  authRetryMs: number,
  heartbeatMs: number,
  wsPingMs: number,
  dialled: { credentials?: BrokerCredentials },
): SessionDialect {
  const { label } = info;
  return {
    label,
    socketName: `${label} feed`,
    maxFrameBytes: MAX_FRAME_BYTES,
    ping: { everyMs: heartbeatMs, text: HEARTBEAT },
    wsPing: { everyMs: wsPingMs },
    login: (credentials) => norenConnectMessage(connect, credentials),
    dial(credentials) {
      if (!credentials?.clientCode || !credentials.accessToken) {
        const missing = [!credentials?.clientCode && 'user id', !credentials?.accessToken && (connect === 'c' ? 'session token' : 'access token')].filter(Boolean);
        return { missing: `No ${label} credentials for this user (missing ${missing.join(', ')}): log in to ${label} in OpenAlgo. Retrying every ${seconds(authRetryMs)}.` };
      }
      dialled.credentials = credentials;
      return { url, headers: {} };
    },
    refusedUpgrade: (status, credentials) => refusalMessage(label, `HTTP ${status} for user ${credentials.clientCode ?? ''}`, authRetryMs),
    isAuthError: (text) => AUTH_ERROR.test(text),
    silent: (silentFor) => `no message from ${label} for ${silentFor} ms`,
    lost: (reason, delay) => `${label} connection lost (${reason}); reconnecting in ${seconds(delay)}`,
  };
}

/** The message that logs a socket in: `uid` and `actid` are both the user id, `source` is `API`. */
export function norenConnectMessage(type: NorenConnectType, credentials: BrokerCredentials): string {
  const uid = credentials.clientCode ?? '';
  return type === 'c'
    ? JSON.stringify({ t: 'c', uid, actid: uid, susertoken: credentials.accessToken, source: 'API' })
    : JSON.stringify({ t: 'a', uid, actid: uid, accesstoken: credentials.accessToken, source: 'API' });
}

function feedOf(mode: Mode): 'touchline' | 'depth' {
  return mode === 3 ? 'depth' : 'touchline';
}

function scrip(exchange: string, token: string): string {
  return exchange + '|' + token;
}

function refusalMessage(label: string, detail: string, retryMs: number): string {
  return `${label} refused the login (${detail}): log in to ${label} again in OpenAlgo to refresh the token. Retrying every ${seconds(retryMs)}.`;
}

function seconds(ms: number): string {
  return ms >= 1000 ? `${Math.round(ms / 100) / 10} s` : `${ms} ms`;
}
