/**
 * The Zerodha adapter: Kite ticker (KiteTicker) market data for the streams the gateway
 * subscribes, published on the bus as OpenAlgo's Zerodha adapter would (bugs fixed, payload.ts).
 * The session layer (../session/) connects, reconnects and keeps each socket's subscriptions;
 * this is Kite's dialect: the URL and query auth, `subscribe` + `mode` / `mode` / `unsubscribe`
 * messages of at most 200 tokens on up to 3 sockets of 3000, heartbeats as liveness, and
 * Kite's refusal wording.
 */
import type { Mode } from '../../protocol/modes.js';
import type { Backoff } from '../backoff.js';
import type { StreamRef } from '../../feed.js';
import type { BrokerFeedOptions, BrokerInstrument, BrokerTick } from '../broker.js';
import { BrokerFeed, type Diff, type Resolved, type SessionOptions, type Upstream } from '../session/broker-feed.js';
import type { BrokerSession, SessionDialect } from '../session/broker-session.js';
import { LogThrottle } from '../session/feed-status.js';
import { authErrorPattern } from '../session/auth-error.js';
import { positive } from '../session/schedule.js';
import { chunks } from '../session/subscriptions.js';
import { decodeKiteBinary, decodeKiteText } from './decoder.js';
import { kitePayload } from './payload.js';

export const KITE_TICKER_URL = 'wss://ws.kite.trade';

export type KiteBackoff = Partial<Backoff>;

export interface KiteAdapterOptions extends BrokerFeedOptions, SessionOptions {
  maxTokensPerMessage?: number;
  maxTokensPerConnection?: number;
  maxConnections?: number;
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
/** 3000 full packets are ~560 KB; anything far larger is not a Kite frame. */
const MAX_FRAME_BYTES = 2 * 1024 * 1024;
/** Kite's own wording too: "Invalid access token.", "Incorrect `api_key` or `access_token`.". */
const AUTH_ERROR = authErrorPattern(/access[ _]token/);

function kiteDialect(url: string, authRetryMs: number): SessionDialect {
  return {
    label: 'Zerodha',
    socketName: 'Zerodha ticker',
    maxFrameBytes: MAX_FRAME_BYTES,
    dial(credentials) {
      if (!credentials?.apiKey || !credentials.accessToken) {
        return { missing: `No Zerodha credentials for this user: log in to Zerodha in OpenAlgo. Retrying every ${seconds(authRetryMs)}.` };
      }
      const target = new URL(url);
      target.searchParams.set('api_key', credentials.apiKey);
      target.searchParams.set('access_token', credentials.accessToken);
      return { url: target.toString(), headers: { 'X-Kite-Version': '3' } };
    },
    refusedUpgrade: (status) => refusalMessage(`HTTP ${status}`, authRetryMs),
    isAuthError: (text) => AUTH_ERROR.test(text),
    silent: (_silentFor, silenceMs) => `no data from Zerodha for ${silenceMs} ms`,
    lost: (reason, delay) => `${reason}; reconnecting in ${seconds(delay)}`,
  };
}

export class KiteAdapter extends BrokerFeed<number> {
  readonly broker = 'zerodha';

  private readonly maxTokensPerMessage: number;
  private readonly authRetryMs: number;
  private readonly noticeLog: LogThrottle;
  private readonly counters = {
    frames: 0, heartbeats: 0, textFrames: 0, ticks: 0, invalidFrames: 0, rejectedPackets: 0,
  };

  constructor(options: KiteAdapterOptions) {
    const authRetryMs = options.authRetryMs ?? 60_000;
    super(options, kiteDialect(options.url ?? KITE_TICKER_URL, authRetryMs), {
      silenceMs: options.silenceMs ?? 5000,
      batchDelayMs: options.batchDelayMs ?? 100,
      connectTimeoutMs: options.connectTimeoutMs ?? 10_000,
      maxConnections: Math.floor(options.maxConnections ?? 3),
      maxInstrumentsPerConnection: Math.floor(options.maxTokensPerConnection ?? 3000),
    });
    this.authRetryMs = authRetryMs;
    this.maxTokensPerMessage = Math.floor(positive('Zerodha', 'maxTokensPerMessage', options.maxTokensPerMessage ?? 200));
    this.noticeLog = new LogThrottle(() => this.clock.now());
  }

  stats(): KiteCounters & { connections: number; tokens: number; streams: number } {
    const { published, unrouted, connects } = this.routing;
    return { ...this.counters, published, unroutedTicks: unrouted, connects, ...this.sizes() };
  }

  protected resolve(found: BrokerInstrument, { exchange, symbol }: StreamRef): Resolved<number> {
    const token = parseKiteToken(found.token);
    if (token === undefined) return { ok: false, message: `Token not found for ${symbol} on ${exchange}` };
    return { ok: true, key: String(token), instrument: token };
  }

  protected depthFor(): number {
    return DEPTH_LEVELS;
  }

  /**
   * `unsubscribe` for tokens gone; for new tokens `subscribe` then `mode` per mode group (Kite
   * subscribes in quote mode by default), as pykiteconnect resubscribes; `mode` alone for a change.
   */
  protected encode({ stale, fresh }: Diff<number>): string[] {
    const size = this.maxTokensPerMessage;
    const messages: unknown[] = [];
    const gone = stale.filter((entry) => !entry.changed).map((entry) => entry.value.instrument);
    for (const part of chunks(gone, size)) messages.push({ a: 'unsubscribe', v: part });
    const added = groupByMode(fresh.filter((entry) => entry.before === undefined).map((entry) => entry.value));
    const changed = groupByMode(fresh.filter((entry) => entry.before !== undefined).map((entry) => entry.value));
    for (const [mode, tokens] of added) {
      for (const part of chunks(tokens, size)) messages.push({ a: 'subscribe', v: part }, { a: 'mode', v: [mode, part] });
    }
    for (const [mode, tokens] of changed) for (const part of chunks(tokens, size)) messages.push({ a: 'mode', v: [mode, part] });
    return messages.map((message) => JSON.stringify(message));
  }

  protected onFrame(session: BrokerSession<string, Upstream<number>>, data: Buffer, isBinary: boolean): void {
    this.counters.frames += 1;
    const decoded = isBinary ? decodeKiteBinary(data) : decodeKiteText(data.toString('utf8'));
    if (!isBinary) this.counters.textFrames += 1;
    switch (decoded.kind) {
      case 'heartbeat':
        this.counters.heartbeats += 1;
        return;
      case 'invalid':
        this.counters.invalidFrames += 1;
        this.notice('warn', { connection: session.id, bytes: data.length, reason: decoded.reason }, 'undecodable Zerodha frame');
        return;
      case 'text':
        this.onText(session, decoded.type, decoded.data);
        return;
      case 'ticks': {
        if (decoded.rejected.length > 0) {
          this.counters.rejectedPackets += decoded.rejected.length;
          this.notice('warn', { connection: session.id, bytes: data.length, rejected: decoded.rejected.slice(0, 5) }, 'undecodable packets in a Zerodha frame');
        }
        const now = this.clock.now();
        for (const tick of decoded.ticks) {
          this.counters.ticks += 1;
          const mode = TOPIC_MODE[tick.mode];
          this.publish(tick.token, mode, (symbol, exchange) => kitePayload(tick, symbol, exchange, mode, now));
        }
      }
    }
  }

  private onText(session: BrokerSession<string, Upstream<number>>, type: string, data: unknown): void {
    const text = typeof data === 'string' ? data : JSON.stringify(data) ?? '';
    if (type === 'error') {
      if (AUTH_ERROR.test(text)) {
        session.refuse(refusalMessage(`Kite said "${truncate(text, 200)}"`, this.authRetryMs));
        return;
      }
      this.notice('warn', { connection: session.id, error: truncate(text, 500) }, 'Zerodha ticker error');
    } else if (type === 'message') {
      this.notice('info', { connection: session.id, text: truncate(text, 500) }, 'Zerodha ticker message');
    } else {
      // Order postbacks (`order`) are account updates, not market data; they are not ours to route.
      this.logger.debug({ connection: session.id, type }, 'Zerodha text frame ignored');
    }
  }

  private notice(level: 'info' | 'warn', fields: Record<string, unknown>, message: string): void {
    this.noticeLog.log(this.logger, level, { ...fields, counters: this.stats() }, message);
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

function groupByMode(entries: ReadonlyArray<Upstream<number>>): Map<KiteMode, number[]> {
  const groups = new Map<KiteMode, number[]>();
  for (const { instrument, mode } of entries) {
    const group = groups.get(KITE_MODE[mode]);
    if (group) group.push(instrument);
    else groups.set(KITE_MODE[mode], [instrument]);
  }
  return groups;
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
