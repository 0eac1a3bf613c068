/**
 * The public types of the client SDK (`tickcast/client`): instruments, modes, the tick payloads
 * as they travel on the wire, events, options and the OpenAlgo-shaped cache snapshots. Types
 * only; no code runs from this file.
 */
import type { ClientErrorCode, ProtocolErrorCode } from '../errors.js';

/** OpenAlgo's subscription modes: 1 = LTP, 2 = Quote, 3 = Depth. */
export type Mode = 1 | 2 | 3;

/** A mode by name (case-insensitive at run time) or number. */
export type ModeInput = Mode | 'ltp' | 'quote' | 'depth' | 'LTP' | 'Quote' | 'Depth';

/** One instrument. `exchange` and `symbol` are case-sensitive, as the gateway matches them. */
export interface Instrument {
  exchange: string;
  symbol: string;
}

/** An instrument as `{ exchange, symbol }` or `'EXCHANGE:SYMBOL'` (`'NSE_INDEX:NIFTY'`). */
export type InstrumentInput = Instrument | string;

/**
 * A mode-1 (LTP) payload. Fields are the publisher's: tickcast's simulator and OpenAlgo's
 * Zerodha adapter send these; other adapters may add fields (kept, typed `unknown`).
 */
export interface LtpTick {
  /** Last traded price. */
  ltp: number;
  /** Last trade time (epoch ms; Zerodha full ticks use epoch seconds). */
  ltt?: number;
  /** When the adapter published the tick, epoch ms. */
  timestamp?: number;
  [field: string]: unknown;
}

/** A mode-2 (Quote) payload. Which fields are present depends on the publisher and instrument. */
export interface QuoteTick extends LtpTick {
  open?: number;
  high?: number;
  low?: number;
  close?: number;
  volume?: number;
  /** Quantity of the last trade (Zerodha, simulator). Angel's quote calls it `last_trade_quantity`. */
  last_quantity?: number;
  last_trade_quantity?: number;
  average_price?: number;
  total_buy_quantity?: number;
  total_sell_quantity?: number;
  change?: number;
  change_percent?: number;
  oi?: number;
}

export interface DepthLevel {
  price: number;
  quantity: number;
  orders: number;
}

/** A mode-3 (Depth) payload: a quote plus the order book, best level first. */
export interface DepthTick extends QuoteTick {
  depth?: { buy: DepthLevel[]; sell: DepthLevel[] };
}

/** The payload type delivered for each mode. */
export type TickOf<M extends ModeInput> = M extends 1 | 'ltp' | 'LTP'
  ? LtpTick
  : M extends 2 | 'quote' | 'Quote'
    ? QuoteTick
    : M extends 3 | 'depth' | 'Depth'
      ? DepthTick
      : LtpTick;

/**
 * A `market_data` message, as the gateway sends it. `mode` is the mode the gateway tagged it
 * with: the highest mode this client holds for the stream that the tick carries (so an LTP
 * callback may see a tick tagged 3 whose payload is a whole depth tick).
 */
export interface MarketData<T extends LtpTick = LtpTick> {
  type: 'market_data';
  exchange: string;
  symbol: string;
  mode: Mode;
  data: T;
  /** The client's broker. */
  broker: string;
  /** The stream's sequence number (tickcast's `seq` extension), when negotiated. */
  seq?: number;
  /** Resent after a reconnection: a message missed while disconnected (recovery, tickcast). */
  recovered?: true;
}

/** What the gateway answered for one instrument of a subscribe. */
export type SubscribeResult =
  | { instrument: Instrument; ok: true; /** depth levels the feed gives */ depth?: number }
  | { instrument: Instrument; ok: false; message: string };

/** Returned by `subscribe`: the subscription, until `unsubscribe()`. */
export interface SubscriptionHandle {
  readonly instruments: readonly Instrument[];
  readonly mode: Mode;
  /**
   * Resolves, never rejects, once the gateway has answered for every instrument (after the
   * client connects, if it is not connected yet). Failed instruments are dropped from the handle.
   */
  readonly ready: Promise<SubscribeResult[]>;
  /** Stops this subscription's callback; the gateway is told once no other handle needs the stream. */
  unsubscribe(): void;
}

/** The extensions the gateway agreed to in its auth reply. */
export interface NegotiatedExtensions {
  encoding: 'json' | 'msgpack';
  batch: boolean;
  /** Sequence numbers (gap detection works only when true; OpenAlgo's own proxy has none). */
  seq: boolean;
  snapshot: boolean;
}

export interface ConnectedEvent {
  broker: string;
  userId: string;
  extensions: NegotiatedExtensions;
  /** True when this is a reconnection after a loss. */
  reconnected: boolean;
}

export interface DisconnectedEvent {
  /** WebSocket close code (1006 when the connection simply dropped). */
  code: number;
  reason: string;
  /** Whether the client will try to reconnect. */
  willReconnect: boolean;
}

export interface ReconnectingEvent {
  /** 1 for the first retry after a loss. */
  attempt: number;
  /** How long the client waits before this attempt. */
  delayMs: number;
}

/** tickcast's feed status event: the upstream feed of this client's broker changed state. */
export interface FeedStatusEvent {
  type: 'feed_status';
  feed: string;
  broker: string;
  status: 'live' | 'reconnecting' | 'stale' | 'down' | (string & {});
  timestamp: number;
  message?: string;
}

/**
 * Ticks of a stream were missed. `reason` says how it showed:
 * - `seq`: the sequence number jumped from `expected - 1` to `received` (conflation under load,
 *   or messages the gateway could not resend after a reconnection);
 * - `epoch`, `history`, `ahead`: after a reconnection the gateway could not resend what was
 *   missed since `expected - 1` (its `gap` message; `message` says why): `epoch` — the numbering
 *   is another gateway process's (it restarted, or the client reached another worker or node);
 *   `history` — the gateway no longer holds them; `ahead` — the gateway's numbering of the
 *   stream restarted. Live ticks follow; the application should resync what it derives from them.
 */
export interface GapEvent {
  /** `EXCHANGE:SYMBOL`. */
  stream: string;
  exchange: string;
  symbol: string;
  /** The mode whose messages skipped (each mode of a stream is numbered on its own). */
  mode: Mode;
  reason: 'seq' | RecoveryGapReason;
  /** The first number not received. */
  expected: number;
  /** The number of the next message received (for `epoch` and `ahead` in a new numbering). */
  received: number;
  /** How many ticks were missed: `received - expected`; 0 for `epoch` and `ahead`, where it cannot be known. */
  missed: number;
  /** The gateway's explanation (recovery gaps). */
  message?: string;
}

/** Why the gateway could not resend what a reconnecting client missed (see `GapEvent`). */
export type RecoveryGapReason = 'epoch' | 'history' | 'ahead';

/**
 * After a reconnection, the gateway resent every tick of a stream's `mode` the client missed,
 * numbered `from` to `to` (`count` of them, 0 when none was missed), before live ones: they
 * reached the subscription callbacks as ordinary ticks marked `recovered: true`.
 */
export interface RecoveredEvent {
  /** `EXCHANGE:SYMBOL`. */
  stream: string;
  exchange: string;
  symbol: string;
  mode: Mode;
  from: number;
  to: number;
  count: number;
}

export interface ClientErrorShape extends Error {
  /** A client code (ClientErrorCode) or the gateway's (AUTHENTICATION_ERROR, LIMIT_EXCEEDED, …). */
  readonly code: ClientErrorCode | ProtocolErrorCode | (string & {});
}

/** The events `client.on(...)` offers, with their payloads. */
export interface ClientEvents {
  connected: ConnectedEvent;
  disconnected: DisconnectedEvent;
  reconnecting: ReconnectingEvent;
  feed_status: FeedStatusEvent;
  gap: GapEvent;
  recovered: RecoveredEvent;
  error: ClientErrorShape;
}

export interface ReconnectOptions {
  /** Ceiling of the first retry's delay (default 500 ms). */
  initialDelayMs?: number;
  /** Largest ceiling; it doubles per failed attempt up to this (default 30,000 ms). */
  maxDelayMs?: number;
  /**
   * How much of the delay is random, 0 to 1 (default 1, "full jitter": each delay is uniform
   * between 0 and its ceiling), so clients dropped together do not return together.
   */
  jitter?: number;
}

/**
 * The subset of the WebSocket API the client uses: the browser's `WebSocket` and the `ws`
 * package's both fit.
 */
export interface WebSocketLike {
  readonly readyState: number;
  binaryType: string;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  // Handler parameters are `any` so that both the DOM's and `ws`'s event types are accepted.
  /* eslint-disable @typescript-eslint/no-explicit-any */
  onopen: ((event: any) => void) | null;
  onmessage: ((event: any) => void) | null;
  onclose: ((event: any) => void) | null;
  onerror: ((event: any) => void) | null;
  /* eslint-enable @typescript-eslint/no-explicit-any */
}

export type WebSocketConstructor = new (url: string) => WebSocketLike;

export interface ClientOptions {
  /** The gateway, `ws://host:port` or `wss://host:port`. */
  url: string;
  /** An OpenAlgo API key. */
  apiKey: string;
  /** Wire encoding for everything after the auth reply (default `json`). */
  encoding?: 'json' | 'msgpack';
  /** Ask for market data produced together to arrive as one frame (default true). */
  batch?: boolean;
  /** Ask for each stream's last known value right after subscribing (default true). */
  snapshot?: boolean;
  /** Reconnection after a lost connection; `false` turns it off. */
  reconnect?: ReconnectOptions | false;
  /** A reply not received within this long means the connection is dead (default 20,000 ms). */
  requestTimeoutMs?: number;
  /** Opening the WebSocket and authenticating must finish within this long (default 10,000 ms). */
  connectTimeoutMs?: number;
  /**
   * An application-level ping while the connection is otherwise idle, so a silently dead
   * connection is noticed (browsers cannot send protocol pings). Default every 20,000 ms;
   * `false` turns it off. Its reply must arrive within `requestTimeoutMs`.
   */
  heartbeatMs?: number | false;
  /**
   * The WebSocket implementation. Default: the global `WebSocket` (browsers, Node ≥ 22), else
   * the `ws` package, loaded on first connect.
   */
  WebSocket?: WebSocketConstructor;
  /**
   * The gateway's HTTP base URL, for `history()` (`http://host:port`, or with a path prefix behind
   * a proxy: `/api/ticks` is appended). Default: `url` with ws→http, wss→https, same host and
   * port, no path.
   */
  httpUrl?: string;
}

/** A time for `history()`: a Date, epoch milliseconds, or ISO 8601 text with `Z` or an offset (or a date alone: that UTC day's start). */
export type TimeInput = Date | number | string;

/** What `client.history()` reads: one stream's recorded ticks received in [from, to). */
export interface HistoryOptions<M extends ModeInput = ModeInput> {
  exchange: string;
  symbol: string;
  /** Receive time, inclusive. */
  from: TimeInput;
  /** Receive time, exclusive; after `from`, at most the gateway's longest range (24 h by default) later. */
  to: TimeInput;
  /** Only ticks recorded from this mode's topic; unset: every mode recorded. */
  mode?: M;
  /** Most ticks in the answer (default and ceiling: the gateway's TICKCAST_TICKS_MAX_ROWS). */
  limit?: number;
}

/** A recorded tick, as `client.history()` yields it. */
export interface HistoryTick<T extends LtpTick = LtpTick> {
  exchange: string;
  symbol: string;
  /** The mode of the topic it was recorded from. */
  mode: Mode;
  /** The payload exactly as recorded (what live clients got as `data`). */
  data: T;
  /** When the gateway received it, epoch ms. */
  receivedAt: number;
  /** The broker's time of the trade or update, epoch ms, or null when the payload carried none. */
  exchangeTs: number | null;
}

/** How a `history()` answer ended; set on `summary` once the iteration reached the end. */
export interface HistorySummary {
  /** Ticks yielded. */
  count: number;
  /** The answer was cut by `limit` before the end of the range: ask again from the last `receivedAt` on. */
  truncated: boolean;
  /** The limit the gateway applied. */
  limit: number | undefined;
  /** Days (`YYYY-MM-DD`, UTC) the gateway could not read: the answer lacks their ticks. */
  damagedDays: string[];
  /** The feed whose recording was read (`simulator`, `zerodha.alice`): the caller's own. */
  feed?: string;
  /**
   * Why the answer is empty, when the gateway said: `none` — it holds no recorded day at all
   * (recording was never on, or retention deleted everything); `no-feed` — no feed here serves
   * this user's broker.
   */
  history?: 'none' | 'no-feed';
}

/**
 * `client.history()`'s answer: iterate it once with `for await`; afterwards `summary` says how
 * it ended (undefined until the iteration reached the end, and when it threw or was left early).
 */
export interface HistoryStream<T extends LtpTick = LtpTick> extends AsyncIterable<HistoryTick<T>> {
  readonly summary: HistorySummary | undefined;
}

/** `getLtp()`: `{ ltp: { EXCHANGE: { SYMBOL: { timestamp, ltp } } } }`, as OpenAlgo's SDK. */
export interface LtpSnapshot {
  ltp: Record<string, Record<string, { timestamp: number; ltp: number }>>;
}

export interface QuoteEntry {
  timestamp: number;
  open: number;
  high: number;
  low: number;
  close: number;
  ltp: number;
  volume: number;
  last_trade_quantity: number;
  avg_trade_price: number;
  change: number;
  change_percent: number;
}

/** `getQuotes()`: `{ quote: { EXCHANGE: { SYMBOL: QuoteEntry } } }`, as OpenAlgo's SDK. */
export interface QuoteSnapshot {
  quote: Record<string, Record<string, QuoteEntry>>;
}

export interface BookLevel {
  price: number;
  qty: number;
  orders: number;
}

export interface DepthEntry {
  timestamp: number;
  ltp: number;
  /** Levels keyed `"1"` (best) to `"5"` at least, padded with zero levels, as OpenAlgo's SDK. */
  buyBook: Record<string, BookLevel>;
  sellBook: Record<string, BookLevel>;
}

/** `getDepth()`: `{ depth: { EXCHANGE: { SYMBOL: DepthEntry } } }`, as OpenAlgo's SDK. */
export interface DepthSnapshot {
  depth: Record<string, Record<string, DepthEntry>>;
}

export type ClientState = 'idle' | 'connecting' | 'connected' | 'reconnecting' | 'closed';
