/**
 * Dhan's 20-level depth feed (`wss://depth-api-feed.dhan.co/twentydepth`, docs/brokers/dhan.md):
 * the second socket of a Dhan user, for Depth subscriptions of `SYMBOL:20` streams. DhanAdapter
 * owns one and starts it on the first such subscription, stops it after the last. Its dialect:
 *
 * - auth in the query string as on the live feed, without `version`;
 * - JSON requests, code 23 to subscribe and 25 to unsubscribe (the annexure's code; the official
 *   client's 24 is its `+ 1` shortcut), at most 50 instruments a message;
 * - one socket of at most 50 instruments, NSE_EQ and NSE_FNO only; closing it after the last
 *   stream (or on stop) sends the disconnect request 12 first, as on the live feed;
 * - bid (41) and ask (51) sides arrive as separate packets: a side waits for the other side of
 *   its instrument, and the pair is published as one 20-level Depth tick (as OpenAlgo does);
 * - disconnect packets 806–810 refuse the credentials, as on the live feed.
 */
import { type StreamRef, type SubscribeResult, streamKey } from '../../feed.js';
import type { Mode } from '../../protocol/modes.js';
import type { BrokerFeedOptions, BrokerInstrument, BrokerTick } from '../broker.js';
import { BrokerFeed, type Diff, type Resolved, type SessionOptions, type Upstream } from '../session/broker-feed.js';
import type { BrokerSession } from '../session/broker-session.js';
import { LogThrottle, type SessionView } from '../session/feed-status.js';
import { chunks } from '../session/subscriptions.js';
import { type DhanPacket, decodeDhanDepth20, decodeDhanText, depth20Tick } from './decoder.js';
import {
  DEPTH20_SUFFIX, DHAN_AUTH_ERROR, DHAN_EXCHANGE_SEGMENT, type DhanInstrument, depth20Lookup, dhanSessionDialect, instrumentKey,
  parseSecurityId, refusalMessage,
} from './dialect.js';
import { dhanPayload } from './payload.js';

export const DHAN_DEPTH20_URL = 'wss://depth-api-feed.dhan.co/twentydepth';
/** Instruments per connection and per message (docs; the official client splits at 50). */
export const DHAN_DEPTH20_MAX_INSTRUMENTS = 50;
export const DHAN_DEPTH20_REQUEST_CODE = { subscribe: 23, unsubscribe: 25 } as const;
/** The only segments Dhan serves 20 levels for (docs). */
export const DHAN_DEPTH20_SEGMENTS: ReadonlySet<string> = new Set(['NSE_EQ', 'NSE_FNO']);

export interface DhanDepth20Options extends BrokerFeedOptions, SessionOptions {}

export interface DhanDepth20Counters {
  frames: number;
  packets: number;
  /** Bid or ask packets received. */
  sides: number;
  /** Pairs published as ticks. */
  ticks: number;
  heartbeats: number;
  disconnects: number;
  textFrames: number;
  invalid: number;
  /** Sides of instruments nobody holds. */
  unroutedSides: number;
  published: number;
  connects: number;
  messagesSent: number;
}

type Depth20Side = Extract<DhanPacket, { kind: 'depth20' }>;

/**
 * Pairs bid and ask packets into ticks (no I/O). A side is held until the other side of its
 * instrument arrives; a second side of the same kind replaces the first; each pair is used once.
 */
export class Depth20Pairs {
  private readonly pending = new Map<string, Depth20Side>();

  get size(): number {
    return this.pending.size;
  }

  /** The tick this side completes, if it does. */
  add(side: Depth20Side): BrokerTick | undefined {
    const key = instrumentKey(side.exchange, side.token);
    const other = this.pending.get(key);
    if (!other || other.side === side.side) {
      this.pending.set(key, side);
      return undefined;
    }
    this.pending.delete(key);
    return side.side === 'buy' ? depth20Tick(side, other) : depth20Tick(other, side);
  }

  /** Forgets a half-received pair (the instrument was dropped or subscribed afresh). */
  drop(key: string): void {
    this.pending.delete(key);
  }
}

/** The depth socket's request texts: one code per message, at most `size` instruments each. */
export function dhanDepth20Requests(action: 'subscribe' | 'unsubscribe', instruments: readonly DhanInstrument[], size = DHAN_DEPTH20_MAX_INSTRUMENTS): string[] {
  const code = DHAN_DEPTH20_REQUEST_CODE[action];
  const messages: string[] = [];
  for (const part of chunks(instruments, size)) {
    const list = part.map(({ ExchangeSegment, SecurityId }) => ({ ExchangeSegment, SecurityId }));
    messages.push(JSON.stringify({ RequestCode: code, InstrumentCount: list.length, InstrumentList: list }));
  }
  return messages;
}

/** The depth-feed URL for these credentials (the token is in it: never log it unredacted). */
export function dhanDepth20Url(base: string, accessToken: string, clientId: string): string {
  const target = new URL(base);
  target.searchParams.set('token', accessToken);
  target.searchParams.set('clientId', clientId);
  target.searchParams.set('authType', '2');
  return target.toString();
}

/** Whether a symbol-master row is one Dhan serves 20 levels for. */
export function hasDhanDepth20(found: BrokerInstrument): boolean {
  const segment = DHAN_EXCHANGE_SEGMENT[found.brexchange];
  return segment !== undefined && DHAN_DEPTH20_SEGMENTS.has(segment);
}

export class DhanDepth20Feed extends BrokerFeed<DhanInstrument> {
  readonly broker = 'dhan';

  private readonly authRetryMs: number;
  private readonly noticeLog: LogThrottle;
  private readonly pairs = new Depth20Pairs();
  private readonly counters = { frames: 0, packets: 0, sides: 0, ticks: 0, heartbeats: 0, disconnects: 0, textFrames: 0, invalid: 0, unroutedSides: 0 };
  private started = false;
  /** Streams held (by stream key), so the adapter can tell a new `:20` stream from a held one. */
  private readonly held = new Set<string>();

  constructor(options: DhanDepth20Options) {
    const authRetryMs = options.authRetryMs ?? 60_000;
    const base = options.url ?? DHAN_DEPTH20_URL;
    super(
      // `RELIANCE:20` is looked up as `RELIANCE`, and published under `RELIANCE:20`.
      { ...options, symbols: depth20Lookup(options.symbols) },
      dhanSessionDialect({
        socketName: 'Dhan 20-level depth feed',
        speaker: 'Dhan 20-level depth',
        refusalTag: '20-level depth feed, ',
        user: options.user,
        authRetryMs,
        url: (token, clientId) => dhanDepth20Url(base, token, clientId),
      }),
      {
        silenceMs: options.silenceMs ?? 90_000,
        batchDelayMs: options.batchDelayMs ?? 50,
        connectTimeoutMs: options.connectTimeoutMs ?? 10_000,
        maxConnections: 1,
        maxInstrumentsPerConnection: DHAN_DEPTH20_MAX_INSTRUMENTS,
      },
    );
    this.authRetryMs = authRetryMs;
    this.noticeLog = new LogThrottle(() => this.clock.now());
  }

  override async start(): Promise<void> {
    this.started = true;
    await super.start();
  }

  override async stop(): Promise<void> {
    this.started = false;
    await super.stop();
  }

  /** Whether the socket is wanted (started and not stopped). */
  get active(): boolean {
    return this.started;
  }

  /** Streams held. */
  get streamCount(): number {
    return this.held.size;
  }

  holds({ exchange, symbol }: StreamRef): boolean {
    return this.held.has(streamKey(exchange, symbol));
  }

  override async subscribe(stream: StreamRef, mode: Mode, depth: number): Promise<SubscribeResult> {
    const result = await super.subscribe(stream, mode, depth);
    if (result.ok) this.held.add(streamKey(stream.exchange, stream.symbol));
    return result;
  }

  override async unsubscribe(stream: StreamRef): Promise<void> {
    await super.unsubscribe(stream);
    this.held.delete(streamKey(stream.exchange, stream.symbol));
  }

  /** The socket's state while active; undefined when stopped. */
  socket(): Pick<SessionView, 'state' | 'message'> | undefined {
    const session = this.sessions[0];
    if (!this.started || !session) return undefined;
    return { state: session.state, message: session.message };
  }

  stats(): DhanDepth20Counters & { connections: number; tokens: number; streams: number } {
    const { published, connects } = this.routing;
    return { ...this.counters, published, connects, ...this.sizes() };
  }

  protected resolve(found: BrokerInstrument, { exchange, symbol }: StreamRef): Resolved<DhanInstrument> {
    const segment = DHAN_EXCHANGE_SEGMENT[found.brexchange];
    if (segment === undefined || !DHAN_DEPTH20_SEGMENTS.has(segment)) {
      return { ok: false, message: `Dhan serves 20-level depth on NSE_EQ and NSE_FNO only, not for ${symbol} on ${exchange}` };
    }
    const securityId = parseSecurityId(found.token);
    if (securityId === undefined) return { ok: false, message: `Token not found for ${symbol} on ${exchange}` };
    const key = instrumentKey(segment, securityId);
    // Said here, where the instrument is known, so the refusal can say why and what to do instead.
    if (!this.instrument(key) && this.sizes().tokens >= DHAN_DEPTH20_MAX_INSTRUMENTS) {
      const base = symbol.endsWith(DEPTH20_SUFFIX) ? symbol.slice(0, -DEPTH20_SUFFIX.length) : symbol;
      return {
        ok: false,
        message: `Dhan's 20-level depth feed carries at most ${DHAN_DEPTH20_MAX_INSTRUMENTS} instruments and all are in use: cannot add ${symbol} on ${exchange}; unsubscribe another ${DEPTH20_SUFFIX} symbol, or subscribe ${base} for 5-level depth`,
      };
    }
    return { ok: true, key, instrument: { ExchangeSegment: segment, SecurityId: securityId } };
  }

  protected depthFor(): number {
    return 20;
  }

  /** Unsubscribes (25) before subscribes (23); a half-received pair of either is forgotten. */
  protected encode({ stale, fresh }: Diff<DhanInstrument>): string[] {
    for (const entry of stale) this.pairs.drop(entry.key);
    for (const entry of fresh) this.pairs.drop(entry.key);
    // Every stream here is at mode 3, so there are no mode changes: stale is gone, fresh is new.
    return [
      ...dhanDepth20Requests('unsubscribe', stale.filter((entry) => !entry.changed).map((entry) => entry.value.instrument)),
      ...dhanDepth20Requests('subscribe', fresh.filter((entry) => entry.before === undefined).map((entry) => entry.value.instrument)),
    ];
  }

  protected onFrame(session: BrokerSession<string, Upstream<DhanInstrument>>, data: Buffer, isBinary: boolean): void {
    this.counters.frames += 1;
    if (!isBinary) {
      this.onText(session, data.toString('utf8'));
      return;
    }
    const now = this.clock.now();
    for (const packet of decodeDhanDepth20(data)) {
      this.counters.packets += 1;
      this.onPacket(session, packet, data, now);
    }
  }

  private onPacket(session: BrokerSession<string, Upstream<DhanInstrument>>, packet: DhanPacket, data: Buffer, now: number): void {
    switch (packet.kind) {
      case 'depth20': {
        this.counters.sides += 1;
        const key = instrumentKey(packet.exchange, packet.token);
        // Only held instruments wait for their other side, so garbage cannot grow the pairs.
        if (!this.instrument(key)) {
          this.counters.unroutedSides += 1;
          return;
        }
        const tick = this.pairs.add(packet);
        if (!tick) return;
        this.counters.ticks += 1;
        this.publish(key, 3, (symbol, exchange) => dhanPayload(tick, symbol, exchange, 3, now));
        return;
      }
      case 'heartbeat':
        this.counters.heartbeats += 1;
        return;
      case 'disconnect': {
        this.counters.disconnects += 1;
        const detail = `20-level depth feed, disconnect ${packet.code}: ${packet.reason}`;
        if (packet.refused) {
          session.refuse(refusalMessage(detail, this.authRetryMs));
          return;
        }
        this.notice({ connection: session.id, code: packet.code, reason: packet.reason }, 'Dhan is disconnecting the 20-level depth feed');
        return;
      }
      case 'invalid':
        this.counters.invalid += 1;
        this.notice({ connection: session.id, bytes: data.length, reason: packet.reason, head: data.subarray(0, 32).toString('hex') }, 'undecodable Dhan 20-level depth packet');
        return;
      default:
        // Live-feed packets are not decoded on this socket.
        this.counters.invalid += 1;
        return;
    }
  }

  private onText(session: BrokerSession<string, Upstream<DhanInstrument>>, text: string): void {
    this.counters.textFrames += 1;
    const decoded = decodeDhanText(text);
    const shown = decoded.kind === 'text' ? decoded.text : decoded.reason;
    if (decoded.kind === 'text' && DHAN_AUTH_ERROR.test(text)) {
      session.refuse(refusalMessage(`20-level depth feed: Dhan said "${shown}"`, this.authRetryMs));
      return;
    }
    this.notice({ connection: session.id, text: shown }, 'Dhan sent a text frame on the 20-level depth feed');
  }

  private notice(fields: Record<string, unknown>, message: string): void {
    this.noticeLog.log(this.logger, 'warn', { ...fields, counters: this.stats() }, message);
  }
}
