/**
 * The Dhan adapter: Dhan's live market feed v2 for the streams the gateway subscribes, published
 * on the bus with OpenAlgo's Dhan field names (payload.ts, bugs fixed). The session layer
 * (../session/) connects, reconnects and keeps each socket's subscriptions; this is Dhan's
 * dialect (docs/brokers/dhan.md):
 *
 * - auth in the query string only: `version=2&token=<access token>&clientId=<client id>&authType=2`
 *   (the token is in the URL, so the URL is never logged whole: `redactDhanUrl`);
 * - JSON requests `{RequestCode, InstrumentCount, InstrumentList: [{ExchangeSegment, SecurityId}]}`,
 *   one request code per message, at most 100 instruments each: 15/16 ticker (LTP), 17/18 quote,
 *   21/22 full (quote + OI + 5-level depth); an instrument is held at one code, so a mode change
 *   unsubscribes the old code before subscribing the new one;
 * - binary packets decoded by decoder.ts; the previous-close packet fills `close` when a quote or
 *   full packet has none;
 * - disconnect packets 806–810 (data plan, expired token, client id, authentication) refuse the
 *   credentials: the feed goes down with Dhan's reason and waits for a re-login; 805 and 800 are
 *   followed by Dhan closing the socket, and the session reconnects with backoff;
 * - liveness: Dhan pings from the server side (answered by the WebSocket library, and counted as
 *   life by the session); a socket with no frame and no ping for `silenceMs` is replaced.
 *
 * 20-level depth (a second endpoint, `…/twentydepth`, request code 23) is not served yet: a Depth
 * subscription of a `SYMBOL:20` stream is answered with a per-symbol error.
 */
import type { Mode } from '../../protocol/modes.js';
import type { StreamRef, SubscribeResult } from '../../feed.js';
import type { BrokerCredentials, BrokerFeedOptions, BrokerInstrument, BrokerTick } from '../broker.js';
import { authErrorPattern } from '../session/auth-error.js';
import { BrokerFeed, type Diff, type Resolved, type SessionOptions, type Upstream } from '../session/broker-feed.js';
import type { BrokerSession, SessionDialect } from '../session/broker-session.js';
import { LogThrottle } from '../session/feed-status.js';
import { positive } from '../session/schedule.js';
import { chunks } from '../session/subscriptions.js';
import { type DhanPacket, decodeDhanFeed, decodeDhanText } from './decoder.js';
import { dhanPayload } from './payload.js';

export const DHAN_FEED_URL = 'wss://api-feed.dhan.co';

/** Instruments per request message (docs; the official client splits at 100 too). */
export const DHAN_MAX_INSTRUMENTS_PER_MESSAGE = 100;
/** Instruments per connection (docs). */
export const DHAN_MAX_INSTRUMENTS_PER_CONNECTION = 5000;
/**
 * Dhan allows 5 connections per user, shared by the live feed and the 20-level depth feed; the
 * live feed takes at most 4 by default (one is left for the depth socket). A second socket only
 * opens past 5000 instruments.
 */
export const DHAN_DEFAULT_MAX_CONNECTIONS = 4;

/** Subscribe / unsubscribe request codes per tickcast mode: LTP → ticker, Quote → quote, Depth → full. */
export const DHAN_REQUEST_CODE: Readonly<Record<Mode, { subscribe: number; unsubscribe: number }>> = {
  1: { subscribe: 15, unsubscribe: 16 },
  2: { subscribe: 17, unsubscribe: 18 },
  3: { subscribe: 21, unsubscribe: 22 },
};

/** Segment names by the symbol master's brexchange: Dhan's own names, and OpenAlgo's exchanges (dhan_mapping.py). */
export const DHAN_EXCHANGE_SEGMENT: Readonly<Record<string, string>> = {
  IDX_I: 'IDX_I', NSE_EQ: 'NSE_EQ', NSE_FNO: 'NSE_FNO', NSE_CURRENCY: 'NSE_CURRENCY', BSE_EQ: 'BSE_EQ',
  MCX_COMM: 'MCX_COMM', BSE_CURRENCY: 'BSE_CURRENCY', BSE_FNO: 'BSE_FNO',
  NSE: 'NSE_EQ', NFO: 'NSE_FNO', CDS: 'NSE_CURRENCY', BSE: 'BSE_EQ', BFO: 'BSE_FNO', BCD: 'BSE_CURRENCY', MCX: 'MCX_COMM',
  NSE_INDEX: 'IDX_I', BSE_INDEX: 'IDX_I',
};

export interface DhanAdapterOptions extends BrokerFeedOptions, SessionOptions {
  maxInstrumentsPerMessage?: number;
  maxInstrumentsPerConnection?: number;
  maxConnections?: number;
}

/** Running totals, for metrics and tests. */
export interface DhanCounters {
  /** Every frame received. */
  frames: number;
  /** Packets decoded (a frame may hold several). */
  packets: number;
  ticks: number;
  /** Bus messages published (a tick goes to every stream on its instrument). */
  published: number;
  heartbeats: number;
  prevCloses: number;
  oiPackets: number;
  marketStatus: number;
  disconnects: number;
  textFrames: number;
  /** Packets (or whole frames) that could not be decoded. */
  invalid: number;
  /** Ticks for instruments nobody holds (in flight across an unsubscribe, or garbage). */
  unroutedTicks: number;
  /** Sockets opened. */
  connects: number;
  /** Request messages sent to Dhan. */
  messagesSent: number;
}

/** An instrument as Dhan's requests name it. */
export interface DhanInstrument {
  readonly ExchangeSegment: string;
  readonly SecurityId: string;
}

/** Topic mode of a tick: the packet says what it carries. */
const TOPIC_MODE: Record<BrokerTick['mode'], Mode> = { ltp: 1, quote: 2, full: 3, depth20: 3 };
/** A full packet carries five levels a side. */
const DEPTH_LEVELS = 5;
/** 5000 full packets are ~810 KB; anything far larger is not Dhan talking. */
const MAX_FRAME_BYTES = 2 * 1024 * 1024;
const TEXT_LOG_CHARS = 500;
const AUTH_ERROR = authErrorPattern(/access token|client ?id|data apis? not subscribed/);

/** The URL with the access token replaced, for anything shown or logged. */
export function redactDhanUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.searchParams.has('token')) parsed.searchParams.set('token', '***');
    return parsed.toString();
  } catch {
    return url.split('?')[0]!;
  }
}

/**
 * The Dhan client id: `clientCode`, or (OpenAlgo keeps `BROKER_API_KEY` as `client_id:::api_key`)
 * the part of the API key before `:::`.
 */
export function dhanClientId(credentials: BrokerCredentials): string | undefined {
  if (credentials.clientCode) return credentials.clientCode;
  const [first, ...rest] = (credentials.apiKey ?? '').split(':::');
  return rest.length > 0 && first ? first : undefined;
}

/** The live-feed URL for these credentials (the token is in it: never log it unredacted). */
export function dhanFeedUrl(base: string, accessToken: string, clientId: string): string {
  const target = new URL(base);
  target.searchParams.set('version', '2');
  target.searchParams.set('token', accessToken);
  target.searchParams.set('clientId', clientId);
  target.searchParams.set('authType', '2');
  return target.toString();
}

function dhanDialect(url: string, user: string, authRetryMs: number): SessionDialect {
  return {
    label: 'Dhan',
    socketName: 'Dhan market feed',
    maxFrameBytes: MAX_FRAME_BYTES,
    // 429 is Dhan's answer for a data plan that has lapsed (as OpenAlgo reads it): retrying soon cannot help.
    refusedStatuses: [401, 403, 429],
    dial(credentials) {
      const clientId = credentials ? dhanClientId(credentials) : undefined;
      if (!credentials?.accessToken || !clientId) {
        const missing = [!credentials?.accessToken && 'access token', !clientId && 'client id'].filter(Boolean).join(' and ');
        return { missing: `No Dhan credentials for user ${user} (missing ${missing}): log in to Dhan in OpenAlgo. Retrying every ${seconds(authRetryMs)}.` };
      }
      return { url: dhanFeedUrl(url, credentials.accessToken, clientId), headers: {} };
    },
    refusedUpgrade: (status, credentials) =>
      refusalMessage(`client ${dhanClientId(credentials) ?? '?'}, HTTP ${status}`, authRetryMs),
    isAuthError: (text) => AUTH_ERROR.test(text),
    silent: (silentFor) => `no frame or ping from Dhan for ${silentFor} ms`,
    lost: (reason, delay) => `Dhan connection lost (${reason}); reconnecting in ${seconds(delay)}`,
  };
}

export class DhanAdapter extends BrokerFeed<DhanInstrument> {
  readonly broker = 'dhan';

  private readonly maxPerMessage: number;
  private readonly authRetryMs: number;
  private readonly noticeLog: LogThrottle;
  private readonly counters = {
    frames: 0, packets: 0, ticks: 0, heartbeats: 0, prevCloses: 0, oiPackets: 0, marketStatus: 0, disconnects: 0, textFrames: 0, invalid: 0,
  };
  /** The previous-close packet's close per instrument key, for quote/full packets without one. */
  private readonly prevClose = new Map<string, number>();

  constructor(options: DhanAdapterOptions) {
    const authRetryMs = options.authRetryMs ?? 60_000;
    super(options, dhanDialect(options.url ?? DHAN_FEED_URL, options.user, authRetryMs), {
      // Dhan pings every 10 s from the server; OpenAlgo gives up after 90 s without any frame.
      silenceMs: options.silenceMs ?? 90_000,
      batchDelayMs: options.batchDelayMs ?? 50,
      connectTimeoutMs: options.connectTimeoutMs ?? 10_000,
      maxConnections: Math.floor(options.maxConnections ?? DHAN_DEFAULT_MAX_CONNECTIONS),
      maxInstrumentsPerConnection: Math.floor(options.maxInstrumentsPerConnection ?? DHAN_MAX_INSTRUMENTS_PER_CONNECTION),
    });
    this.authRetryMs = authRetryMs;
    this.maxPerMessage = Math.floor(positive('Dhan', 'maxInstrumentsPerMessage', options.maxInstrumentsPerMessage ?? DHAN_MAX_INSTRUMENTS_PER_MESSAGE));
    this.noticeLog = new LogThrottle(() => this.clock.now());
  }

  stats(): DhanCounters & { connections: number; tokens: number; streams: number } {
    const { published, unrouted, connects } = this.routing;
    return { ...this.counters, published, unroutedTicks: unrouted, connects, ...this.sizes() };
  }

  /** `SYMBOL:20` asks for 20-level depth, which needs Dhan's depth socket: not served yet. */
  override async subscribe(stream: StreamRef, mode: Mode, depth: number): Promise<SubscribeResult> {
    if (mode === 3 && stream.symbol.endsWith(':20')) {
      return {
        ok: false,
        message: `20-level depth is not served natively for Dhan yet: subscribe ${stream.symbol.slice(0, -3)} on ${stream.exchange} for 5-level depth`,
      };
    }
    return super.subscribe(stream, mode, depth);
  }

  protected resolve(found: BrokerInstrument, { exchange, symbol }: StreamRef): Resolved<DhanInstrument> {
    const segment = DHAN_EXCHANGE_SEGMENT[found.brexchange];
    if (segment === undefined) return { ok: false, message: `Exchange ${found.brexchange} of ${symbol} is not supported by the Dhan feed` };
    const securityId = parseSecurityId(found.token);
    if (securityId === undefined) return { ok: false, message: `Token not found for ${symbol} on ${exchange}` };
    return { ok: true, key: instrumentKey(segment, securityId), instrument: { ExchangeSegment: segment, SecurityId: securityId } };
  }

  /** Full packets carry the best five; other modes echo what was asked. */
  protected depthFor(mode: Mode, depth: number): number {
    return mode === 3 ? DEPTH_LEVELS : depth;
  }

  /**
   * Unsubscribes first (instruments gone, and the old code of a mode change), then subscribes;
   * one request code per message, by ascending code, at most `maxInstrumentsPerMessage` each.
   */
  protected encode({ stale, fresh }: Diff<DhanInstrument>): string[] {
    for (const entry of stale) if (!entry.changed) this.prevClose.delete(entry.key);
    return [
      ...dhanRequests('unsubscribe', stale.map((entry) => entry.value), this.maxPerMessage),
      ...dhanRequests('subscribe', fresh.map((entry) => entry.value), this.maxPerMessage),
    ];
  }

  protected onFrame(session: BrokerSession<string, Upstream<DhanInstrument>>, data: Buffer, isBinary: boolean): void {
    this.counters.frames += 1;
    if (!isBinary) {
      this.onText(session, data.toString('utf8'));
      return;
    }
    const now = this.clock.now();
    for (const packet of decodeDhanFeed(data)) {
      this.counters.packets += 1;
      this.onPacket(session, packet, data, now);
    }
  }

  private onPacket(session: BrokerSession<string, Upstream<DhanInstrument>>, packet: DhanPacket, data: Buffer, now: number): void {
    switch (packet.kind) {
      case 'tick': {
        this.counters.ticks += 1;
        const key = instrumentKey(packet.tick.exchange, packet.tick.token);
        let tick = packet.tick;
        const close = this.prevClose.get(key);
        if (tick.mode !== 'ltp' && tick.close === undefined && close !== undefined) tick = { ...tick, close };
        const mode = TOPIC_MODE[tick.mode];
        this.publish(key, mode, (symbol, exchange) => dhanPayload(tick, symbol, exchange, mode, now));
        return;
      }
      case 'prevClose':
        this.counters.prevCloses += 1;
        if (packet.close !== undefined && this.instrument(instrumentKey(packet.exchange, packet.token))) {
          this.prevClose.set(instrumentKey(packet.exchange, packet.token), packet.close);
        }
        return;
      case 'oi':
        // Sent beside quote packets of derivatives; OpenAlgo's quote payload has no OI.
        this.counters.oiPackets += 1;
        return;
      case 'marketStatus':
        this.counters.marketStatus += 1;
        return;
      case 'heartbeat':
        this.counters.heartbeats += 1;
        return;
      case 'disconnect': {
        this.counters.disconnects += 1;
        const detail = `disconnect ${packet.code}: ${packet.reason}`;
        if (packet.refused) {
          session.refuse(refusalMessage(detail, this.authRetryMs));
          return;
        }
        // 800, 804, 805…: Dhan closes the socket after this; the session reconnects with backoff.
        this.notice('warn', { connection: session.id, code: packet.code, reason: packet.reason }, 'Dhan is disconnecting the feed');
        return;
      }
      case 'depth20':
        // Not on this endpoint.
        this.counters.invalid += 1;
        return;
      case 'invalid':
        this.counters.invalid += 1;
        this.notice('warn', { connection: session.id, bytes: data.length, reason: packet.reason, head: data.subarray(0, 32).toString('hex') }, 'undecodable Dhan packet');
        return;
    }
  }

  private onText(session: BrokerSession<string, Upstream<DhanInstrument>>, text: string): void {
    this.counters.textFrames += 1;
    const decoded = decodeDhanText(text);
    const shown = decoded.kind === 'text' ? decoded.text : decoded.reason;
    if (decoded.kind === 'text' && AUTH_ERROR.test(text)) {
      session.refuse(refusalMessage(`Dhan said "${shown}"`, this.authRetryMs));
      return;
    }
    // Dhan sends binary only; a text frame is an error notice or noise.
    this.notice('warn', { connection: session.id, text: shown }, 'Dhan sent a text frame');
  }

  private notice(level: 'info' | 'warn', fields: Record<string, unknown>, message: string): void {
    this.noticeLog.log(this.logger, level, { ...fields, counters: this.stats() }, message);
  }
}

/**
 * Dhan request texts for `entries`: grouped by request code (ascending), at most `size`
 * instruments per message, in the order given within a code.
 */
export function dhanRequests(action: 'subscribe' | 'unsubscribe', entries: ReadonlyArray<Upstream<DhanInstrument>>, size = DHAN_MAX_INSTRUMENTS_PER_MESSAGE): string[] {
  const byCode = new Map<number, DhanInstrument[]>();
  for (const { instrument, mode } of entries) {
    const code = DHAN_REQUEST_CODE[mode][action];
    const group = byCode.get(code);
    const item = { ExchangeSegment: instrument.ExchangeSegment, SecurityId: instrument.SecurityId };
    if (group) group.push(item);
    else byCode.set(code, [item]);
  }
  const messages: string[] = [];
  for (const code of [...byCode.keys()].sort((a, b) => a - b)) {
    for (const part of chunks(byCode.get(code)!, size)) {
      messages.push(JSON.stringify({ RequestCode: code, InstrumentCount: part.length, InstrumentList: part }));
    }
  }
  return messages;
}

/** A Dhan security id from the symbol master: decimal digits that fit the packets' u32. */
export function parseSecurityId(token: string): string | undefined {
  const text = token.trim();
  if (!/^\d{1,10}$/.test(text)) return undefined;
  const value = Number(text);
  return value > 0 && value <= 0xffffffff ? String(value) : undefined;
}

/** Routing key: the segment name and security id, as both requests and decoded packets name them. */
function instrumentKey(segment: string, securityId: string): string {
  return `${segment}:${securityId}`;
}

function refusalMessage(detail: string, retryMs: number): string {
  return `Dhan refused the session (${detail}): log in to Dhan again in OpenAlgo to refresh the access token, or check the client id and the Data API subscription. Retrying every ${seconds(retryMs)}.`;
}

function seconds(ms: number): string {
  return ms >= 1000 ? `${Math.round(ms / 100) / 10} s` : `${ms} ms`;
}

