/**
 * The Dhan adapter: Dhan's live market feed v2 for the streams the gateway subscribes, published
 * on the bus with OpenAlgo's Dhan field names (payload.ts, bugs fixed), and Dhan's 20-level depth
 * feed for Depth subscriptions of `SYMBOL:20` streams (depth20-feed.ts). The session layer
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
 *   life by the session); a socket with no frame and no ping for `silenceMs` is replaced;
 * - a socket closed on purpose (stop, a re-login, an extra socket no longer needed) is first sent
 *   the disconnect request `{"RequestCode":12}` (the dialect's farewell); a lost one is not.
 *
 * `SYMBOL:20` (OpenAlgo's suffix) is looked up as `SYMBOL` and published under `SYMBOL:20`. At
 * Depth on NSE_EQ or NSE_FNO it rides the depth socket, opened on the first such stream and
 * closed after the last; anywhere else, and at LTP or Quote, it rides the live feed (5 levels,
 * as OpenAlgo falls back). The gateway sees one adapter: its status is the live feed's, and a
 * depth socket that is not open is said in `statusMessage()` and, while refused, in the answer
 * to a new `:20` subscription.
 */
import type { Mode } from '../../protocol/modes.js';
import type { StreamRef, SubscribeResult } from '../../feed.js';
import type { BrokerFeedOptions, BrokerInstrument, BrokerTick } from '../broker.js';
import { BrokerFeed, type Diff, type Resolved, type SessionOptions, type Upstream } from '../session/broker-feed.js';
import type { BrokerSession } from '../session/broker-session.js';
import { LogThrottle } from '../session/feed-status.js';
import { positive } from '../session/schedule.js';
import { chunks } from '../session/subscriptions.js';
import { type DhanPacket, decodeDhanFeed, decodeDhanText } from './decoder.js';
import { DHAN_DEPTH20_URL, DhanDepth20Feed, hasDhanDepth20 } from './depth20-feed.js';
import {
  DEPTH20_SUFFIX, DHAN_AUTH_ERROR, DHAN_EXCHANGE_SEGMENT, type DhanInstrument, depth20Lookup, dhanSessionDialect, instrumentKey,
  isDepth20Symbol, parseSecurityId, refusalMessage,
} from './dialect.js';
import { dhanPayload } from './payload.js';

export { DHAN_EXCHANGE_SEGMENT, type DhanInstrument, dhanClientId, parseSecurityId, redactDhanUrl } from './dialect.js';
export { DHAN_DEPTH20_URL } from './depth20-feed.js';

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

export interface DhanAdapterOptions extends BrokerFeedOptions, SessionOptions {
  maxInstrumentsPerMessage?: number;
  maxInstrumentsPerConnection?: number;
  maxConnections?: number;
  /**
   * Dhan's 20-level depth endpoint, for Depth subscriptions of `SYMBOL:20` streams; default
   * `wss://depth-api-feed.dhan.co/twentydepth`. The credentials go in its query as on `url`.
   */
  depthUrl?: string;
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

/** Topic mode of a tick: the packet says what it carries. */
const TOPIC_MODE: Record<BrokerTick['mode'], Mode> = { ltp: 1, quote: 2, full: 3, depth20: 3 };
/** A full packet carries five levels a side. */
const DEPTH_LEVELS = 5;

/** The live-feed URL for these credentials (the token is in it: never log it unredacted). */
export function dhanFeedUrl(base: string, accessToken: string, clientId: string): string {
  const target = new URL(base);
  target.searchParams.set('version', '2');
  target.searchParams.set('token', accessToken);
  target.searchParams.set('clientId', clientId);
  target.searchParams.set('authType', '2');
  return target.toString();
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
  /** The second socket, for Depth subscriptions of `SYMBOL:20` on NSE_EQ and NSE_FNO. */
  private readonly depth20: DhanDepth20Feed;
  private started = false;
  /** The depth socket closing after its last stream went, awaited by stop(). */
  private depth20Closing: Promise<void> | undefined;

  constructor(options: DhanAdapterOptions) {
    const authRetryMs = options.authRetryMs ?? 60_000;
    const url = options.url ?? DHAN_FEED_URL;
    // `SYMBOL:20` streams this socket carries (LTP, Quote, or Depth off NSE) are looked up as `SYMBOL`.
    super({ ...options, symbols: depth20Lookup(options.symbols) }, dhanSessionDialect({
      socketName: 'Dhan market feed',
      speaker: 'Dhan',
      user: options.user,
      authRetryMs,
      url: (token, clientId) => dhanFeedUrl(url, token, clientId),
    }), {
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
    // Its log lines (its own 'feed status' among them) say which socket they are about.
    this.depth20 = new DhanDepth20Feed({ ...options, url: options.depthUrl ?? DHAN_DEPTH20_URL, logger: options.logger.child({ socket: 'depth20' }) });
  }

  stats(): DhanCounters & { connections: number; tokens: number; streams: number; depth20: ReturnType<DhanDepth20Feed['stats']> } {
    const { published, unrouted, connects } = this.routing;
    return { ...this.counters, published, unroutedTicks: unrouted, connects, ...this.sizes(), depth20: this.depth20.stats() };
  }

  override async start(): Promise<void> {
    this.started = true;
    await super.start();
    // Streams subscribed before the start: their socket opens now.
    if (this.depth20.streamCount > 0) await this.depth20.start();
  }

  override async stop(): Promise<void> {
    this.started = false;
    await Promise.all([super.stop(), this.depth20.stop(), this.depth20Closing]);
  }

  override credentialsChanged(): void {
    super.credentialsChanged();
    this.depth20.credentialsChanged();
  }

  /**
   * The live feed's word when it is not live; else, while `:20` streams are held and the depth
   * socket is not open, why (the feed's status stays the live feed's: its streams still flow).
   */
  override statusMessage(): string | undefined {
    if (this.status() !== 'live') return super.statusMessage();
    const socket = this.depth20.socket();
    if (!socket || socket.state === 'open') return undefined;
    return `20-level depth (SYMBOL:20) is not streaming: ${socket.message ?? 'connecting to the Dhan 20-level depth feed'}`;
  }

  /**
   * `SYMBOL:20` at Depth on NSE_EQ or NSE_FNO goes to the depth socket; anything else to the live
   * feed. A stream moving between them (a mode change) leaves the other once the new one took it.
   */
  override async subscribe(stream: StreamRef, mode: Mode, depth: number): Promise<SubscribeResult> {
    if (!isDepth20Symbol(stream.symbol)) return super.subscribe(stream, mode, depth);
    if (mode !== 3 || !this.onDepth20Socket(stream)) {
      const result = await super.subscribe(stream, mode, depth);
      if (result.ok) await this.leaveDepth20(stream);
      return result;
    }
    const socket = this.depth20.socket();
    // A new stream is not promised a book Dhan refuses to send; a held one stays held.
    if (socket?.state === 'down' && !this.depth20.holds(stream)) {
      const base = stream.symbol.slice(0, -DEPTH20_SUFFIX.length);
      return {
        ok: false,
        message: `20-level depth is unavailable for ${stream.symbol} on ${stream.exchange}: ${socket.message ?? 'the Dhan 20-level depth feed is down'} Subscribe ${base} for 5-level depth meanwhile.`,
      };
    }
    const result = await this.depth20.subscribe(stream, 3, depth);
    if (!result.ok) return result;
    await super.unsubscribe(stream);
    if (this.started && !this.depth20.active) await this.depth20.start();
    return result;
  }

  override async unsubscribe(stream: StreamRef): Promise<void> {
    await super.unsubscribe(stream);
    if (isDepth20Symbol(stream.symbol)) await this.leaveDepth20(stream);
  }

  /** Whether Dhan serves this `:20` stream 20 levels; unknown symbols go there too, to be refused by it. */
  private onDepth20Socket(stream: StreamRef): boolean {
    let found: BrokerInstrument | undefined;
    try {
      found = this.options.symbols.lookup(this.broker, stream.exchange, stream.symbol);
    } catch {
      return true;
    }
    return found === undefined || hasDhanDepth20(found);
  }

  /** Drops a stream from the depth socket, and closes the socket when it was the last. */
  private async leaveDepth20(stream: StreamRef): Promise<void> {
    await this.depth20.unsubscribe(stream);
    if (this.depth20.streamCount > 0 || !this.depth20.active) return;
    // Not awaited: an unsubscribe need not wait for Dhan's close handshake.
    const closing = this.depth20.stop();
    this.depth20Closing = closing;
    void closing.finally(() => {
      if (this.depth20Closing === closing) this.depth20Closing = undefined;
    });
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
    if (decoded.kind === 'text' && DHAN_AUTH_ERROR.test(text)) {
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
