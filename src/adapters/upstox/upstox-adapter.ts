/**
 * The Upstox adapter: Market Data Feed v3 for the streams the gateway subscribes, decoded
 * (decoder.ts) and published on the bus with OpenAlgo's Upstox field names (payload.ts). The
 * session layer (../session/) connects, reconnects and keeps the subscriptions; this is Upstox's
 * dialect (docs/brokers/upstox.md):
 *
 * - the upgrade goes to the v3 endpoint the official SDK's streamer opens, with
 *   `Authorization: Bearer <access token>`, and follows the server's redirect to the single-use
 *   feed URL (`…/feeds?requestId=…&code=…`; each attempt gets a fresh one); an upgrade answered
 *   401/403, at either hop, is a refusal;
 * - requests are JSON sent as BINARY frames (as the SDK sends them): `sub` per mode for new
 *   instruments, `change_mode` for a mode change, `unsub` (no mode) for instruments dropped, each
 *   listing at most `maxKeysPerMessage` instrument keys;
 * - LTP rides `ltpc`, Quote and Depth both ride `full` (five levels a side), as in OpenAlgo;
 * - the per-connection limits per mode (ltpc 5000 alone / 2000 mixed, full 2000 / 1500) are
 *   checked before a subscription is accepted;
 * - there is no application heartbeat: liveness is any frame or WebSocket ping/pong within
 *   `silenceMs` (the server pings when it has no data);
 * - a full-mode update may come without its LTPC block: the last LTP and previous close seen for
 *   the instrument are carried into it, as OpenAlgo does.
 */
import { randomUUID } from 'node:crypto';
import type { Mode } from '../../protocol/modes.js';
import { type StreamRef, type SubscribeResult, streamKey } from '../../feed.js';
import type { BrokerFeedOptions, BrokerInstrument, BrokerTick } from '../broker.js';
import { authErrorPattern } from '../session/auth-error.js';
import { BrokerFeed, type Diff, type Resolved, type SessionOptions, type Upstream } from '../session/broker-feed.js';
import type { BrokerSession, SessionDialect } from '../session/broker-session.js';
import { LogThrottle } from '../session/feed-status.js';
import { positive } from '../session/schedule.js';
import { chunks } from '../session/subscriptions.js';
import { decodeUpstoxFeed, upstoxSegment } from './decoder.js';
import { upstoxPayload } from './payload.js';

/** What the SDK's MarketDataFeederV3 opens (the server redirects to the authorized feed). */
export const UPSTOX_FEED_URL = 'wss://api.upstox.com/v3/feed/market-data-feed';
/**
 * Redirects of the upgrade followed: Upstox answers with one, to the single-use feed URL; a few
 * more leave room for a change on their side without letting a loop run on.
 */
export const UPSTOX_MAX_REDIRECTS = 3;

/** Request modes tickcast uses: LTP → ltpc; Quote and Depth → full (5 levels), as OpenAlgo. */
export type UpstoxMode = 'ltpc' | 'full';
export const UPSTOX_MODE: Readonly<Record<Mode, UpstoxMode>> = { 1: 'ltpc', 2: 'full', 3: 'full' };

/**
 * Subscriptions per connection, per mode: alone (the only mode on the socket) and mixed (other
 * modes on it too), from Upstox's v3 documentation.
 */
export const UPSTOX_MODE_LIMITS: Readonly<Record<UpstoxMode, { alone: number; mixed: number }>> = {
  ltpc: { alone: 5000, mixed: 2000 },
  full: { alone: 2000, mixed: 1500 },
};

export interface UpstoxAdapterOptions extends BrokerFeedOptions, SessionOptions {
  /** Instrument keys per request message (Upstox documents no limit). */
  maxKeysPerMessage?: number;
  /** Per-mode subscription limits of one connection (tests shrink them). */
  modeLimits?: Partial<Record<UpstoxMode, { alone: number; mixed: number }>>;
  /** How often to send Upstox a WebSocket ping. Default 30 s, as OpenAlgo's client does. */
  wsPingMs?: number;
}

/** What the adapter has seen, for metrics and tests. */
export interface UpstoxCounters {
  connects: number;
  /** Frames received, of every kind. */
  frames: number;
  /** Feeds decoded into ticks. */
  ticks: number;
  /** Bus messages published. */
  published: number;
  /** Ticks for instruments no stream holds. */
  unrouted: number;
  /** Frames that were not a FeedResponse. */
  invalid: number;
  /** Feeds inside good frames that could not become ticks. */
  skipped: number;
  /** market_info messages. */
  marketInfo: number;
  /** Text frames (Upstox documents none; errors arrive this way). */
  texts: number;
  /** Ticks whose LTP (or previous close) came from the last one seen. */
  carried: number;
  /** Request messages sent. */
  messagesSent: number;
}

interface UpstoxInstrument {
  /** `NSE_EQ|INE002A01018`. */
  readonly key: string;
}

/** Five levels a side is what `full` carries. */
const DEPTH_LEVELS = 5;
/** An initial_feed of 2000 full snapshots is a few MB; anything far bigger is not Upstox. */
const MAX_FRAME_BYTES = 16 * 1024 * 1024;
const MAX_KEYS_PER_MESSAGE = 500;
const TEXT_LOG_CHARS = 500;
/** Upstox's own wording too: "Invalid token used to access API", error code UDAPI100050. */
const AUTH_ERROR = authErrorPattern(/access[ _]?token|UDAPI100050/);
const TOPIC_MODE: Record<BrokerTick['mode'], Mode> = { ltp: 1, quote: 2, full: 3, depth20: 3 };

function upstoxDialect(url: string, user: string, authRetryMs: number, wsPingMs: number): SessionDialect {
  return {
    label: 'Upstox',
    socketName: 'Upstox market data feed',
    maxFrameBytes: MAX_FRAME_BYTES,
    // Upstox sends no heartbeat of its own; OpenAlgo's client pings every 30 s.
    wsPing: { everyMs: wsPingMs },
    // The feed URL answers the upgrade with a redirect to a single-use URL, as the SDK expects.
    followRedirects: UPSTOX_MAX_REDIRECTS,
    dial(credentials) {
      const token = credentials?.accessToken?.replace(/^bearer\s+/i, '').trim();
      if (!token) {
        return { missing: `No Upstox credentials for user ${user}: log in to Upstox in OpenAlgo. Retrying every ${seconds(authRetryMs)}.` };
      }
      return { url, headers: { Authorization: `Bearer ${token}` } };
    },
    refusedUpgrade: (status) => refusalMessage(`HTTP ${status}`, authRetryMs),
    isAuthError: (text) => AUTH_ERROR.test(text),
    silent: (silentFor) => `no frame or ping from Upstox for ${silentFor} ms`,
    lost: (reason, delay) => `${reason}; reconnecting in ${seconds(delay)}`,
  };
}

export class UpstoxAdapter extends BrokerFeed<UpstoxInstrument> {
  readonly broker = 'upstox';

  private readonly maxKeysPerMessage: number;
  private readonly modeLimits: Record<UpstoxMode, { alone: number; mixed: number }>;
  private readonly authRetryMs: number;
  private readonly counters = { frames: 0, ticks: 0, invalid: 0, skipped: 0, marketInfo: 0, texts: 0, carried: 0 };
  private readonly invalidLog: LogThrottle;
  private readonly textLog: LogThrottle;
  /** Each stream's instrument key and mode, for the per-mode limits. */
  private readonly held = new Map<string, { key: string; mode: Mode }>();
  /** The last LTP and previous close per instrument key, for updates that come without them. */
  private readonly lastLtpc = new Map<string, { ltp?: number; close?: number }>();
  /** Segment → market status name (or number), from market_info. */
  private readonly marketStatus = new Map<string, string | number>();

  constructor(options: UpstoxAdapterOptions) {
    const authRetryMs = options.authRetryMs ?? 60_000;
    const limits = { ...UPSTOX_MODE_LIMITS, ...options.modeLimits };
    super(options, upstoxDialect(options.url ?? UPSTOX_FEED_URL, options.user, authRetryMs, options.wsPingMs ?? 30_000), {
      // No heartbeat: the server pings when idle; OpenAlgo gives up after 90 s of silence.
      silenceMs: options.silenceMs ?? 90_000,
      batchDelayMs: options.batchDelayMs ?? 50,
      connectTimeoutMs: options.connectTimeoutMs ?? 10_000,
      // One connection per app and user (documentation).
      maxConnections: 1,
      maxInstrumentsPerConnection: Math.max(limits.ltpc.alone, limits.full.alone),
    });
    this.authRetryMs = authRetryMs;
    this.modeLimits = limits;
    this.maxKeysPerMessage = Math.floor(positive('Upstox', 'maxKeysPerMessage', options.maxKeysPerMessage ?? MAX_KEYS_PER_MESSAGE));
    this.invalidLog = new LogThrottle(() => this.clock.now());
    this.textLog = new LogThrottle(() => this.clock.now());
  }

  stats(): UpstoxCounters & { connections: number; tokens: number; streams: number } {
    const { published, unrouted, connects } = this.routing;
    return { ...this.counters, published, unrouted, connects, ...this.sizes() };
  }

  /** Market status per segment from the last market_info (`NSE_EQ` → `NORMAL_OPEN`). */
  marketStatuses(): ReadonlyMap<string, string | number> {
    return this.marketStatus;
  }

  /** Refuses a subscription that would take a mode past its per-connection limit. */
  override async subscribe(stream: StreamRef, mode: Mode, depth: number): Promise<SubscribeResult> {
    const id = streamKey(stream.exchange, stream.symbol);
    let key: string | undefined;
    try {
      const found = this.options.symbols.lookup(this.broker, stream.exchange, stream.symbol);
      const resolved = found ? this.resolve(found, stream) : undefined;
      if (resolved?.ok) key = resolved.key;
    } catch {
      // super.subscribe looks it up again and reports the failure.
    }
    const before = this.held.get(id);
    if (key !== undefined) {
      const over = this.overLimit(id, key, mode);
      if (over) return { ok: false, message: `Upstox subscription limit reached (${over}); cannot add ${stream.symbol} on ${stream.exchange}` };
      // Counted before anything else runs, so subscriptions made together cannot pass the limit together.
      this.held.set(id, { key, mode });
    }
    const result = await super.subscribe(stream, mode, depth);
    if (!result.ok && key !== undefined) {
      if (before) this.held.set(id, before);
      else this.held.delete(id);
    }
    return result;
  }

  override async unsubscribe(stream: StreamRef): Promise<void> {
    this.held.delete(streamKey(stream.exchange, stream.symbol));
    await super.unsubscribe(stream);
  }

  protected resolve(found: BrokerInstrument, { exchange, symbol }: StreamRef): Resolved<UpstoxInstrument> {
    const key = upstoxInstrumentKey(found);
    if (key === undefined) return { ok: false, message: `Token not found for ${symbol} on ${exchange}` };
    return { ok: true, key, instrument: { key } };
  }

  /** `full` carries five levels a side; LTP and Quote echo what was asked. */
  protected depthFor(mode: Mode, depth: number): number {
    return mode === 3 ? DEPTH_LEVELS : depth;
  }

  /**
   * `unsub` for instruments gone, `sub` per mode for new ones, `change_mode` per mode for those
   * whose Upstox mode changed (Quote ↔ Depth is `full` either way: nothing to send), each at most
   * maxKeysPerMessage keys, as JSON in binary frames.
   */
  protected encode({ stale, fresh }: Diff<UpstoxInstrument>): Buffer[] {
    const requests = buildUpstoxRequests(
      stale.filter((entry) => !entry.changed).map((entry) => entry.value.instrument.key),
      fresh.map(({ value, before }) => ({ key: value.instrument.key, mode: UPSTOX_MODE[value.mode], before: before && UPSTOX_MODE[before.mode] })),
      this.maxKeysPerMessage,
    );
    return requests.map(binaryFrame);
  }

  protected onFrame(session: BrokerSession<string, Upstream<UpstoxInstrument>>, data: Buffer, isBinary: boolean): void {
    this.counters.frames += 1;
    if (!isBinary) {
      this.onText(session, data.toString('utf8'));
      return;
    }
    const decoded = decodeUpstoxFeed(data);
    if (decoded.kind === 'invalid') {
      this.counters.invalid += 1;
      this.invalidLog.log(this.logger, 'warn', { reason: decoded.reason, bytes: data.length, head: data.subarray(0, 32).toString('hex') }, 'skipping undecodable Upstox frames');
      return;
    }
    if (decoded.marketStatus) {
      this.counters.marketInfo += 1;
      for (const { segment, status } of decoded.marketStatus) this.marketStatus.set(segment, status);
    }
    if (decoded.skipped.length > 0) {
      this.counters.skipped += decoded.skipped.length;
      this.invalidLog.log(this.logger, 'warn', { skipped: decoded.skipped.slice(0, 5) }, 'feeds in an Upstox frame skipped');
    }
    const now = this.clock.now();
    for (const { key, tick } of decoded.ticks) {
      this.counters.ticks += 1;
      if (this.instrument(key) === undefined) {
        this.routing.unrouted += 1;
        continue;
      }
      this.carryLtpc(key, tick);
      const mode = TOPIC_MODE[tick.mode];
      this.publish(key, mode, (symbol, exchange) => upstoxPayload(tick, symbol, exchange, mode, now));
    }
  }

  /** Fills a missing LTP or previous close from the last seen, and remembers what this tick has. */
  private carryLtpc(key: string, tick: BrokerTick): void {
    let last = this.lastLtpc.get(key);
    if (!last) {
      if (this.lastLtpc.size >= 2 * this.sizes().tokens + 64) this.pruneLtpc();
      this.lastLtpc.set(key, (last = {}));
    }
    let carried = false;
    if (Number.isFinite(tick.ltp)) last.ltp = tick.ltp;
    else if (last.ltp !== undefined) {
      tick.ltp = last.ltp;
      carried = true;
    }
    if (tick.close !== undefined) last.close = tick.close;
    else if (last.close !== undefined) {
      tick.close = last.close;
      carried = true;
    }
    if (carried) this.counters.carried += 1;
  }

  /** Forgets instruments no stream holds any more. */
  private pruneLtpc(): void {
    for (const key of this.lastLtpc.keys()) if (this.instrument(key) === undefined) this.lastLtpc.delete(key);
  }

  private onText(session: BrokerSession<string, Upstream<UpstoxInstrument>>, text: string): void {
    this.counters.texts += 1;
    const shown = text.length > TEXT_LOG_CHARS ? `${text.slice(0, TEXT_LOG_CHARS)}…` : text;
    if (AUTH_ERROR.test(text)) {
      session.refuse(refusalMessage(`Upstox said "${shown}"`, this.authRetryMs));
      return;
    }
    // OpenAlgo logs {"status":"failed","method":…,"error":…} texts as errors; nothing else comes as text.
    this.textLog.log(this.logger, 'warn', { connection: session.id, text: shown }, 'Upstox sent a text message');
  }

  /** Why adding stream `id` on `key` at `mode` would pass a per-mode limit, if it would. */
  private overLimit(id: string, key: string, mode: Mode): string | undefined {
    // The Upstox mode each instrument would ride with this stream at `mode`.
    const byKey = new Map<string, Mode>();
    for (const [stream, entry] of this.held) {
      if (stream === id) continue;
      byKey.set(entry.key, Math.max(byKey.get(entry.key) ?? 1, entry.mode) as Mode);
    }
    byKey.set(key, Math.max(byKey.get(key) ?? 1, mode) as Mode);
    const counts: Record<UpstoxMode, number> = { ltpc: 0, full: 0 };
    for (const held of byKey.values()) counts[UPSTOX_MODE[held]] += 1;
    const mixed = counts.ltpc > 0 && counts.full > 0;
    for (const upstoxMode of ['ltpc', 'full'] as const) {
      const limit = mixed ? this.modeLimits[upstoxMode].mixed : this.modeLimits[upstoxMode].alone;
      if (counts[upstoxMode] > limit) return `${limit} ${upstoxMode} instruments per connection${mixed ? ' with other modes' : ''}`;
    }
    return undefined;
  }
}

/** One Upstox request (docs/brokers/upstox.md, "Requests"). */
export interface UpstoxRequest {
  guid: string;
  method: 'sub' | 'unsub' | 'change_mode';
  data: { mode?: UpstoxMode; instrumentKeys: string[] };
}

/**
 * The requests for a socket's diff: `unsub` for `gone`; for `fresh`, `sub` per mode (new keys)
 * and `change_mode` per mode (keys whose Upstox mode changed; a change within the same Upstox
 * mode sends nothing); modes in a fixed order (ltpc, full), keys in the order given, at most
 * `maxKeys` per message.
 */
export function buildUpstoxRequests(
  gone: readonly string[],
  fresh: ReadonlyArray<{ key: string; mode: UpstoxMode; before: UpstoxMode | undefined }>,
  maxKeys: number,
  guid: () => string = randomUUID,
): UpstoxRequest[] {
  const requests: UpstoxRequest[] = [];
  for (const part of chunks(gone, maxKeys)) requests.push({ guid: guid(), method: 'unsub', data: { instrumentKeys: part } });
  for (const method of ['sub', 'change_mode'] as const) {
    for (const mode of ['ltpc', 'full'] as const) {
      const keys = fresh
        .filter((entry) => entry.mode === mode && (method === 'sub' ? entry.before === undefined : entry.before !== undefined && entry.before !== mode))
        .map((entry) => entry.key);
      for (const part of chunks(keys, maxKeys)) requests.push({ guid: guid(), method, data: { mode, instrumentKeys: part } });
    }
  }
  return requests;
}

/**
 * The instrument key of a symbol-master row: its token when that is already `SEGMENT|TOKEN`
 * (OpenAlgo's Upstox master stores instrument keys), else the broker exchange's segment and the
 * token (`NSE` + `INE002A01018` → `NSE_EQ|INE002A01018`), as OpenAlgo maps exchanges.
 */
export function upstoxInstrumentKey(found: BrokerInstrument): string | undefined {
  const token = found.token.trim();
  if (token === '' || token.length > 128 || /[\u0000-\u001f]/.test(token)) return undefined;
  if (token.includes('|')) return upstoxSegment(token) === undefined ? undefined : token;
  const segment = UPSTOX_SEGMENT[found.brexchange] ?? (KNOWN_SEGMENTS.has(found.brexchange) ? found.brexchange : undefined);
  return segment === undefined ? undefined : `${segment}|${token}`;
}

/** OpenAlgo's exchange → Upstox segment map. */
const UPSTOX_SEGMENT: Readonly<Record<string, string>> = {
  NSE: 'NSE_EQ', NFO: 'NSE_FO', CDS: 'NSE_CD', BSE: 'BSE_EQ', BFO: 'BSE_FO', BCD: 'BCD_FO', MCX: 'MCX_FO',
  NSE_INDEX: 'NSE_INDEX', BSE_INDEX: 'BSE_INDEX', MCX_INDEX: 'MCX_INDEX',
};
const KNOWN_SEGMENTS = new Set(['NSE_EQ', 'NSE_FO', 'NSE_CD', 'NSE_INDEX', 'NSE_COM', 'BSE_EQ', 'BSE_FO', 'BCD_FO', 'BSE_INDEX', 'MCX_FO', 'MCX_INDEX', 'NCD_FO']);

/** A request as a binary frame: Upstox's requests are JSON sent with opcode 2, as the SDK sends them. */
function binaryFrame(request: UpstoxRequest): Buffer {
  return Buffer.from(JSON.stringify(request), 'utf8');
}

function refusalMessage(detail: string, retryMs: number): string {
  return `Upstox refused the access token (${detail}): log in to Upstox again in OpenAlgo to refresh it. Retrying every ${seconds(retryMs)}.`;
}

function seconds(ms: number): string {
  return ms >= 1000 ? `${Math.round(ms / 100) / 10} s` : `${ms} ms`;
}
