/**
 * Client request parsing: frame → JSON object → action → typed request. Pure. The steps are
 * separate because OpenAlgo checks authentication between them (a bad mode from an
 * unauthenticated client is NOT_AUTHENTICATED, not INVALID_MODE).
 */
import { ProtocolErrorCode, ProtocolMessage } from '../errors.js';
import { nestedBeyond } from './json-depth.js';
import { FloatLiteral } from './float-literal.js';
import { type Mode, normalizeMode } from './modes.js';
import { pyStr, pyTruthy, pyTypeName } from './python.js';

export type JsonObject = Record<string, unknown>;

export interface ProtocolError {
  code: ProtocolErrorCode;
  message: string;
}

export type Parsed<T> = { ok: true; value: T } | { ok: false; error: ProtocolError };

const fail = (code: ProtocolErrorCode, message: string): { ok: false; error: ProtocolError } => ({
  ok: false,
  error: { code, message },
});

export type Action =
  | 'authenticate'
  | 'subscribe'
  | 'unsubscribe'
  | 'subscribe_orders'
  | 'unsubscribe_orders'
  | 'get_broker_info'
  | 'get_supported_brokers'
  | 'ping';

const ACTIONS: Record<string, Action> = {
  authenticate: 'authenticate',
  auth: 'authenticate',
  subscribe: 'subscribe',
  unsubscribe: 'unsubscribe',
  unsubscribe_all: 'unsubscribe',
  subscribe_orders: 'subscribe_orders',
  unsubscribe_orders: 'unsubscribe_orders',
  get_broker_info: 'get_broker_info',
  get_supported_brokers: 'get_supported_brokers',
  ping: 'ping',
};

/** Actions OpenAlgo serves without authentication. */
export const PUBLIC_ACTIONS: ReadonlySet<Action> = new Set(['authenticate', 'get_supported_brokers', 'ping']);

const FLOAT_MARK = '\u0000float';
// JSON's own number grammar: a looser one (`3.`, `02.0`) would turn invalid JSON into valid JSON.
const FLOAT_MODE = /("mode"\s*:\s*)(-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?)(?=\s*[,}\]])/g;

/**
 * JSON.parse reads `2.0` as 2, which OpenAlgo's Python server would refuse as a float mode.
 * Mark float literals of `mode` fields before parsing so normalisation can refuse them too.
 */
function markFloatModes(text: string): string {
  if (!text.includes('"mode"')) return text;
  return text.replace(FLOAT_MODE, (match, prefix: string, number: string) =>
    /[.eE]/.test(number) ? `${prefix}{"\\u0000float":"${number}"}` : match,
  );
}

function modeValue(value: unknown): unknown {
  if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
    const text = (value as JsonObject)[FLOAT_MARK];
    if (typeof text === 'string') return new FloatLiteral(text);
  }
  return value;
}

/**
 * Deepest nesting a request may have. Replies echo parts of a request and error messages quote
 * them, both by recursion, so deeper values would overflow the stack. OpenAlgo's `json.loads`
 * gives up at about the same depth (Python's recursion limit, 1000), with this message.
 */
export const MAX_REQUEST_DEPTH = 1000;

/** Frame → JSON object. Binary frames holding JSON are accepted, as OpenAlgo's `json.loads` does. */
export function decodeFrame(data: string | Buffer): Parsed<JsonObject> {
  const text = typeof data === 'string' ? data : data.toString('utf8');
  const tooDeep = nestedBeyond(text, MAX_REQUEST_DEPTH);
  if (tooDeep) {
    const what = tooDeep === '[' ? 'array' : 'object';
    return fail(ProtocolErrorCode.SERVER_ERROR, `maximum recursion depth exceeded while decoding a JSON ${what} from a unicode string`);
  }
  let value: unknown;
  try {
    value = JSON.parse(markFloatModes(text));
  } catch {
    return fail(ProtocolErrorCode.INVALID_JSON, ProtocolMessage.INVALID_JSON);
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    // OpenAlgo calls `.get` on whatever it parsed; clients see Python's exception text.
    return fail(ProtocolErrorCode.SERVER_ERROR, `'${pyTypeName(value)}' object has no attribute 'get'`);
  }
  return { ok: true, value: value as JsonObject };
}

/** `data.get("action") or data.get("type")`, then the alias table. */
export function resolveAction(request: JsonObject): Parsed<Action> {
  const raw = pyTruthy(request.action) ? request.action : request.type;
  const action = typeof raw === 'string' && Object.hasOwn(ACTIONS, raw) ? ACTIONS[raw] : undefined;
  if (action === undefined) return fail(ProtocolErrorCode.INVALID_ACTION, `Invalid action: ${pyStr(modeValue(raw))}`);
  return { ok: true, value: action };
}

/** `request_id` is echoed verbatim when present and not null. */
export function requestIdOf(request: JsonObject): unknown {
  return request.request_id ?? undefined;
}

export function apiKeyOf(request: JsonObject): unknown {
  return pyTruthy(request.api_key) ? request.api_key : request.apikey;
}

export interface SymbolItem {
  /** As the client sent them: echoed in replies, and validated to be strings by `checkItem`. */
  symbol: unknown;
  exchange: unknown;
}

/** A subscribe item: with `since`, the last `seq` its client saw (recovery after reconnect), as sent. */
export interface SubscribeItem extends SymbolItem {
  since?: unknown;
}

export interface SubscribeRequest {
  items: SubscribeItem[];
  mode: Mode;
  depth: unknown;
  requestId: unknown;
  /** The `seq_epoch` the client's `since` values count in (recovery after reconnect). */
  epoch: string | undefined;
}

/**
 * Reads a `symbols` list. Entries without a truthy symbol and exchange are skipped, as OpenAlgo
 * does; an entry that is not an object is the error OpenAlgo's `.get` raises on it.
 */
function readSymbolList(list: unknown): Parsed<JsonObject[]> {
  if (!Array.isArray(list)) {
    return fail(ProtocolErrorCode.INVALID_PARAMETERS, 'symbols must be a list of {"symbol", "exchange"} objects');
  }
  const items: JsonObject[] = [];
  for (const entry of list) {
    if (entry === null || typeof entry !== 'object' || Array.isArray(entry)) {
      return fail(ProtocolErrorCode.SERVER_ERROR, `'${pyTypeName(entry)}' object has no attribute 'get'`);
    }
    const item = entry as JsonObject;
    if (pyTruthy(item.symbol) && pyTruthy(item.exchange)) items.push(item);
  }
  return { ok: true, value: items };
}

/**
 * The requested depth as given (echoed in the reply when the feed reports none): `depth`, else
 * `depth_level` (the name OpenAlgo's docs use; its server reads only `depth`, so `depth` wins
 * when both are given), else 5.
 */
function depthOf(request: JsonObject): unknown {
  if (Object.hasOwn(request, 'depth')) return request.depth;
  if (Object.hasOwn(request, 'depth_level')) return request.depth_level;
  return 5;
}

export function parseSubscribe(request: JsonObject): Parsed<SubscribeRequest> {
  const mode = normalizeMode(modeValue(Object.hasOwn(request, 'mode') ? request.mode : 'Quote'));
  if (!mode.ok) return fail(ProtocolErrorCode.INVALID_MODE, mode.message);

  let items: SubscribeItem[] = [];
  if (pyTruthy(request.symbols)) {
    const list = readSymbolList(request.symbols);
    if (!list.ok) return list;
    items = list.value.map((item) => withSince({ symbol: item.symbol, exchange: item.exchange }, item));
  } else if (pyTruthy(request.symbol) && pyTruthy(request.exchange)) {
    items = [withSince({ symbol: request.symbol, exchange: request.exchange }, request)];
  }
  if (items.length === 0) return fail(ProtocolErrorCode.INVALID_PARAMETERS, ProtocolMessage.NO_SYMBOLS);
  const epoch = request.epoch ?? undefined;
  if (epoch !== undefined && (typeof epoch !== 'string' || epoch.length > MAX_NAME_LENGTH)) {
    return fail(ProtocolErrorCode.INVALID_PARAMETERS, 'epoch must be a string: the seq_epoch of the auth reply');
  }

  return {
    ok: true,
    value: { items, mode: mode.mode, depth: depthOf(request), requestId: requestIdOf(request), epoch },
  };
}

/** `since` as sent (null counts as absent); checked per item by `checkSince`. */
function withSince(item: SubscribeItem, from: JsonObject): SubscribeItem {
  const since = from.since ?? undefined;
  if (since !== undefined) item.since = since;
  return item;
}

/**
 * A subscribe item's `since`: an integer ≥ 0 (the last `seq` the client saw of the stream at the
 * request's mode), asked with the request's `epoch`, by a client that negotiated `seq`. Anything
 * else fails for that item alone, saying what to do.
 */
export function checkSince(since: unknown, epoch: string | undefined, seqNegotiated: boolean): { since: number | undefined } | { message: string } {
  if (since === undefined) return { since: undefined };
  if (typeof since !== 'number' || !Number.isSafeInteger(since) || since < 0) {
    return { message: 'since must be an integer >= 0: the last seq received of this stream at this mode' };
  }
  if (!seqNegotiated) return { message: 'since needs seq: authenticate with "seq": true, or subscribe without since' };
  if (epoch === undefined) return { message: 'since needs the request\'s "epoch": the seq_epoch of the auth reply the seq values came with' };
  return { since };
}

export interface UnsubscribeItem extends SymbolItem {
  /** The item's mode, or why it is invalid (reported per item in `failed`). */
  mode: { ok: true; mode: Mode } | { ok: false; message: string };
}

export type UnsubscribeRequest =
  | { all: true; requestId: unknown }
  | { all: false; items: UnsubscribeItem[]; requestId: unknown };

export function parseUnsubscribe(request: JsonObject): Parsed<UnsubscribeRequest> {
  const requestId = requestIdOf(request);
  if (request.action === 'unsubscribe_all' || request.type === 'unsubscribe_all') {
    return { ok: true, value: { all: true, requestId } };
  }
  if (pyTruthy(request.symbols)) {
    const list = readSymbolList(request.symbols);
    if (!list.ok) return list;
    // OpenAlgo reads the mode per item (default Quote). tickcast also falls back to a top-level
    // `mode`, which OpenAlgo's own UI and Flask client send and OpenAlgo silently ignores.
    const fallback = Object.hasOwn(request, 'mode') ? request.mode : 2;
    const items = list.value.map((item) => ({
      symbol: item.symbol,
      exchange: item.exchange,
      mode: normalizeMode(modeValue(Object.hasOwn(item, 'mode') ? item.mode : fallback)),
    }));
    return { ok: true, value: { all: false, items, requestId } };
  }
  if (pyTruthy(request.symbol) && pyTruthy(request.exchange)) {
    const mode = normalizeMode(modeValue(Object.hasOwn(request, 'mode') ? request.mode : 2));
    if (!mode.ok) return fail(ProtocolErrorCode.INVALID_MODE, mode.message);
    return { ok: true, value: { all: false, items: [{ symbol: request.symbol, exchange: request.exchange, mode }], requestId } };
  }
  return fail(ProtocolErrorCode.INVALID_PARAMETERS, ProtocolMessage.NO_UNSUBSCRIBE_TARGET);
}

export interface PingRequest {
  timestamp: unknown;
  pingId: unknown;
}

export function parsePing(request: JsonObject): PingRequest {
  return { timestamp: request.timestamp, pingId: request._pingId };
}

const MAX_NAME_LENGTH = 128;
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]/;

/**
 * Symbol and exchange must be printable strings of sane length to be looked up; anything else
 * fails for that item alone.
 */
export function checkItem(item: SymbolItem): { exchange: string; symbol: string } | { message: string } {
  const { symbol, exchange } = item;
  if (typeof symbol !== 'string' || typeof exchange !== 'string') {
    return { message: 'symbol and exchange must be strings' };
  }
  if (symbol.length > MAX_NAME_LENGTH || exchange.length > MAX_NAME_LENGTH) {
    return { message: `symbol and exchange must be at most ${MAX_NAME_LENGTH} characters` };
  }
  if (CONTROL.test(symbol) || CONTROL.test(exchange)) {
    return { message: 'symbol and exchange must not contain control characters' };
  }
  return { exchange, symbol };
}
