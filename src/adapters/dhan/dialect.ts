/**
 * What Dhan's two sockets share (docs/brokers/dhan.md): the credentials in the query string, the
 * instrument names of the JSON requests, the refusal wording, the disconnect request sent before
 * a close, and the session dialect built from them. The live market feed (dhan-adapter.ts) and the 20-level depth feed (depth20-feed.ts)
 * differ only in URL, socket name and what they say and decode.
 */
import type { BrokerCredentials, SymbolLookup } from '../broker.js';
import { authErrorPattern } from '../session/auth-error.js';
import type { SessionDialect } from '../session/broker-session.js';

/** An instrument as Dhan's requests name it. */
export interface DhanInstrument {
  readonly ExchangeSegment: string;
  readonly SecurityId: string;
}

/** Segment names by the symbol master's brexchange: Dhan's own names, and OpenAlgo's exchanges (dhan_mapping.py). */
export const DHAN_EXCHANGE_SEGMENT: Readonly<Record<string, string>> = {
  IDX_I: 'IDX_I', NSE_EQ: 'NSE_EQ', NSE_FNO: 'NSE_FNO', NSE_CURRENCY: 'NSE_CURRENCY', BSE_EQ: 'BSE_EQ',
  MCX_COMM: 'MCX_COMM', BSE_CURRENCY: 'BSE_CURRENCY', BSE_FNO: 'BSE_FNO',
  NSE: 'NSE_EQ', NFO: 'NSE_FNO', CDS: 'NSE_CURRENCY', BSE: 'BSE_EQ', BFO: 'BSE_FNO', BCD: 'BSE_CURRENCY', MCX: 'MCX_COMM',
  NSE_INDEX: 'IDX_I', BSE_INDEX: 'IDX_I',
};

/** 5000 full packets are ~810 KB; anything far larger is not Dhan talking. */
export const DHAN_MAX_FRAME_BYTES = 2 * 1024 * 1024;

/** Request code 12, the disconnect request, sent just before tickcast closes a Dhan socket. */
export const DHAN_FAREWELL = '{"RequestCode":12}';

export const DHAN_AUTH_ERROR = authErrorPattern(/access token|client ?id|data apis? not subscribed/);

/** OpenAlgo's suffix for 20-level depth: `RELIANCE:20` is a stream of its own, looked up as `RELIANCE`. */
export const DEPTH20_SUFFIX = ':20';

export function isDepth20Symbol(symbol: string): boolean {
  return symbol.length > DEPTH20_SUFFIX.length && symbol.endsWith(DEPTH20_SUFFIX);
}

/** The symbol master read with the `:20` suffix stripped, as OpenAlgo's Dhan adapter looks it up. */
export function depth20Lookup(symbols: SymbolLookup): SymbolLookup {
  return {
    lookup: (broker, exchange, symbol) =>
      symbols.lookup(broker, exchange, isDepth20Symbol(symbol) ? symbol.slice(0, -DEPTH20_SUFFIX.length) : symbol),
  };
}

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

/** A Dhan security id from the symbol master: decimal digits that fit the packets' u32. */
export function parseSecurityId(token: string): string | undefined {
  const text = token.trim();
  if (!/^\d{1,10}$/.test(text)) return undefined;
  const value = Number(text);
  return value > 0 && value <= 0xffffffff ? String(value) : undefined;
}

/** Routing key: the segment name and security id, as both requests and decoded packets name them. */
export function instrumentKey(segment: string, securityId: string): string {
  return `${segment}:${securityId}`;
}

export function refusalMessage(detail: string, retryMs: number): string {
  return `Dhan refused the session (${detail}): log in to Dhan again in OpenAlgo to refresh the access token, or check the client id and the Data API subscription. Retrying every ${seconds(retryMs)}.`;
}

export function seconds(ms: number): string {
  return ms >= 1000 ? `${Math.round(ms / 100) / 10} s` : `${ms} ms`;
}

export interface DhanDialectOptions {
  /** The socket in log lines: `Dhan market feed`. */
  socketName: string;
  /** Who speaks in status messages: `Dhan`, `Dhan 20-level depth`. */
  speaker: string;
  /** Put before the client id in a refusal, to say which socket was refused (`20-level depth feed, `). */
  refusalTag?: string;
  user: string;
  authRetryMs: number;
  /** The upgrade URL for these credentials (the token is in it). */
  url(accessToken: string, clientId: string): string;
}

export function dhanSessionDialect({ socketName, speaker, refusalTag = '', user, authRetryMs, url }: DhanDialectOptions): SessionDialect {
  return {
    label: 'Dhan',
    socketName,
    maxFrameBytes: DHAN_MAX_FRAME_BYTES,
    // 429 is Dhan's answer for a data plan that has lapsed (as OpenAlgo reads it): retrying soon cannot help.
    refusedStatuses: [401, 403, 429],
    // Dhan's disconnect request, which its docs ask for before a client closes (both sockets).
    // No pings of our own: Dhan's server pings every 10 s, `ws` answers them, and each counts as
    // life for the silence watchdog.
    farewell: DHAN_FAREWELL,
    dial(credentials) {
      const clientId = credentials ? dhanClientId(credentials) : undefined;
      if (!credentials?.accessToken || !clientId) {
        const missing = [!credentials?.accessToken && 'access token', !clientId && 'client id'].filter(Boolean).join(' and ');
        return { missing: `No Dhan credentials for user ${user} (missing ${missing}): log in to Dhan in OpenAlgo. Retrying every ${seconds(authRetryMs)}.` };
      }
      return { url: url(credentials.accessToken, clientId), headers: {} };
    },
    refusedUpgrade: (status, credentials) =>
      refusalMessage(`${refusalTag}client ${dhanClientId(credentials) ?? '?'}, HTTP ${status}`, authRetryMs),
    isAuthError: (text) => DHAN_AUTH_ERROR.test(text),
    silent: (silentFor) => `no frame or ping from ${speaker} for ${silentFor} ms`,
    lost: (reason, delay) => `${speaker} connection lost (${reason}); reconnecting in ${seconds(delay)}`,
  };
}
