/**
 * The Angel One adapter: a SmartAPI WebSocket 2.0 ("SmartStream") session per user, carrying
 * exactly the streams the gateway asks for, decoded and published on the bus as OpenAlgo's Angel
 * adapter would (payload.ts), with OpenAlgo's bugs 22–24 fixed. The session layer (../session/)
 * connects, reconnects and keeps the subscriptions; this is Angel's dialect: four headers on the
 * upgrade (spec §2.1), a text `ping` every pingMs, requests grouped by mode and exchange type, and
 * a mode change sent as an unsubscribe at the old mode plus a subscribe at the new one, because
 * Angel keeps subscriptions per (mode, token): without the unsubscribe both packet kinds keep
 * coming.
 */
import type { Mode } from '../../protocol/modes.js';
import type { Backoff } from '../backoff.js';
import type { StreamRef } from '../../feed.js';
import type { BrokerCredentials, BrokerFeedOptions, BrokerInstrument } from '../broker.js';
import { authErrorPattern } from '../session/auth-error.js';
import { BrokerFeed, type Diff, type Resolved, type SessionOptions, type Upstream } from '../session/broker-feed.js';
import type { BrokerSession, SessionDialect } from '../session/broker-session.js';
import { LogThrottle } from '../session/feed-status.js';
import { positive } from '../session/schedule.js';
import { decodeAngelBinary, decodeAngelText } from './decoder.js';
import { angelPayload } from './payload.js';

export const ANGEL_SMARTSTREAM_URL = 'wss://smartapisocket.angelone.in/smart-stream';

/**
 * Angel `exchangeType` by the symbol master's brexchange (OpenAlgo's names, indices by theirs)
 * and by Angel's own segment names. Anything else is refused rather than guessed: OpenAlgo's
 * default of 1 (NSE) silently subscribes the wrong instrument.
 */
export const ANGEL_EXCHANGE_TYPE: Readonly<Record<string, number>> = {
  NSE: 1, NFO: 2, BSE: 3, BFO: 4, MCX: 5, NCX: 7, NCDEX: 7, CDS: 13, NSE_INDEX: 1, BSE_INDEX: 3, MCX_INDEX: 5,
  nse_cm: 1, nse_fo: 2, bse_cm: 3, bse_fo: 4, mcx_fo: 5, ncx_fo: 7, cde_fo: 13,
};

export type BackoffOptions = Backoff;

export interface AngelAdapterOptions extends BrokerFeedOptions, SessionOptions {
  /** Text `ping` period. */
  pingMs?: number;
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

interface AngelInstrument {
  readonly exchangeType: number;
  readonly token: string;
  readonly isIndex: boolean;
}

/** Best-5 is all SNAP_QUOTE offers (depth-20 is deprecated and has no LTP). */
const DEPTH_LEVELS = 5;
/** Angel packets are at most 443 bytes; anything far bigger is not Angel talking. */
const MAX_FRAME_BYTES = 64 * 1024;
/** Tokens per request message; Angel documents no limit, this keeps messages modest. */
const MAX_TOKENS_PER_REQUEST = 500;
const TEXT_LOG_CHARS = 500;
const AUTH_ERROR = authErrorPattern(/invalid (?:jwt|api ?key|feed ?token|client ?code)/);

function angelDialect(url: string, user: string, pingMs: number): SessionDialect {
  return {
    label: 'Angel',
    socketName: 'Angel SmartStream',
    maxFrameBytes: MAX_FRAME_BYTES,
    ping: { everyMs: pingMs, text: 'ping' },
    dial(credentials) {
      const missing = missingCredentials(credentials);
      if (missing.length > 0 || !credentials) {
        return { missing: `No Angel credentials for user ${user} (missing ${missing.join(', ')}); log in to Angel again` };
      }
      const headers = {
        Authorization: bearer(credentials.accessToken),
        'x-api-key': credentials.apiKey,
        'x-client-code': credentials.clientCode!,
        'x-feed-token': credentials.feedToken!,
      };
      return { url, headers };
    },
    refusedUpgrade: (status, credentials) =>
      `Angel refused the login for client ${credentials.clientCode} (HTTP ${status}); check the API key, client code, JWT and feed token, or log in to Angel again`,
    isAuthError: (text) => AUTH_ERROR.test(text),
    silent: (silentFor) => `no frame from Angel for ${silentFor} ms`,
    lost: (reason, delay) => `Angel connection lost (${reason}); retrying in ${delay} ms`,
  };
}

export class AngelAdapter extends BrokerFeed<AngelInstrument> {
  readonly broker = 'angel';

  private readonly counters = { frames: 0, ticks: 0, invalid: 0, anomalies: 0, texts: 0, pongs: 0 };
  private readonly invalidLog: LogThrottle;
  private readonly textLog: LogThrottle;
  private requestCount = 0;
  private readonly isIndexHint = (exchangeType: number, token: string): boolean =>
    this.instrument(instrumentKey(exchangeType, token))?.isIndex ?? false;

  constructor(options: AngelAdapterOptions) {
    const pingMs = positive('Angel', 'pingMs', options.pingMs ?? 10_000);
    super(options, angelDialect(options.url ?? ANGEL_SMARTSTREAM_URL, options.user, pingMs), {
      silenceMs: options.silenceMs ?? 25_000,
      batchDelayMs: options.batchDelayMs ?? 50,
      connectTimeoutMs: options.connectTimeoutMs ?? 10_000,
      maxConnections: 1,
      maxInstrumentsPerConnection: Infinity,
    });
    this.invalidLog = new LogThrottle(() => this.clock.now());
    this.textLog = new LogThrottle(() => this.clock.now());
  }

  /** A snapshot of the counters. */
  stats(): AngelCounters {
    const { published, unrouted, connects } = this.routing;
    return { ...this.counters, connects, published, unrouted };
  }

  protected resolve(found: BrokerInstrument, { exchange, symbol }: StreamRef): Resolved<AngelInstrument> {
    const exchangeType = ANGEL_EXCHANGE_TYPE[found.brexchange];
    if (exchangeType === undefined) {
      return { ok: false, message: `Exchange ${found.brexchange} of ${symbol} is not supported by the Angel feed` };
    }
    const isIndex = exchange.endsWith('_INDEX') || found.brexchange.endsWith('_INDEX');
    return { ok: true, key: instrumentKey(exchangeType, found.token), instrument: { exchangeType, token: found.token, isIndex } };
  }

  /** Angel's only book is the best five (SNAP_QUOTE); other modes echo what was asked. */
  protected depthFor(mode: Mode, depth: number): number {
    return mode === 3 ? DEPTH_LEVELS : depth;
  }

  protected encode({ stale, fresh }: Diff<AngelInstrument>): string[] {
    const entry = ({ value }: { value: Upstream<AngelInstrument> }): UpstreamEntry => ({
      exchangeType: value.instrument.exchangeType,
      token: value.instrument.token,
      mode: value.mode,
    });
    const nextId = (): string => `tc${(++this.requestCount % 36 ** 8).toString(36)}`;
    return [...buildAngelRequests(0, stale.map(entry), nextId), ...buildAngelRequests(1, fresh.map(entry), nextId)];
  }

  protected onFrame(session: BrokerSession<string, Upstream<AngelInstrument>>, frame: Buffer, isBinary: boolean): void {
    this.counters.frames++;
    if (isBinary) this.onPacket(frame);
    else this.onText(session, frame.toString('utf8'));
  }

  private onPacket(frame: Buffer): void {
    const decoded = decodeAngelBinary(frame, { isIndex: this.isIndexHint });
    if (decoded.kind !== 'tick') {
      this.counters.invalid++;
      const reason = decoded.kind === 'invalid' ? decoded.reason : decoded.kind;
      this.invalidLog.log(this.logger, 'warn', { reason, bytes: frame.length, head: frame.subarray(0, 32).toString('hex') }, 'skipping invalid Angel frames');
      return;
    }
    this.counters.ticks++;
    if (decoded.anomaly) {
      this.counters.anomalies++;
      this.invalidLog.log(this.logger, 'warn', { anomaly: decoded.anomaly }, 'odd Angel packet (published anyway)');
    }
    // The topic mode is the packet's own (1 LTP, 2 QUOTE, 3 SNAP_QUOTE → DEPTH), as OpenAlgo's.
    const topicMode = decoded.packetMode === 4 ? undefined : decoded.packetMode;
    if (topicMode === undefined) {
      this.routing.unrouted++;
      return;
    }
    const now = this.clock.now();
    const key = instrumentKey(decoded.exchangeType, decoded.tick.token);
    this.publish(key, topicMode, (symbol, exchange) => angelPayload(decoded.tick, symbol, exchange, topicMode, now));
  }

  private onText(session: BrokerSession<string, Upstream<AngelInstrument>>, text: string): void {
    if (decodeAngelText(text).kind === 'pong') {
      this.counters.pongs++;
      return;
    }
    this.counters.texts++;
    const shown = text.length > TEXT_LOG_CHARS ? text.slice(0, TEXT_LOG_CHARS) + '…' : text;
    if (AUTH_ERROR.test(text)) {
      session.refuse(`Angel refused the session: ${shown}`);
      return;
    }
    // Angel reports failed requests as text; nothing else surfaces them (spec §2.6).
    this.textLog.log(this.logger, 'warn', { text: shown }, 'Angel sent a text message');
  }
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

function instrumentKey(exchangeType: number, token: string): string {
  return `${exchangeType}:${token}`;
}
