/**
 * Decodes the Noren OMS WebSocket feed (Shoonya/Finvasia, Flattrade and other brokers on Noren)
 * into normalised ticks; docs/brokers/noren.md describes the protocol. Pure: no I/O, no clock.
 *
 * Every message is one JSON object in a text frame, dispatched on `t`. Market data comes as an
 * acknowledgement with the token's full state (`tk` touchline, `dk` depth) and then updates that
 * carry only the fields that changed (`tf`, `df`), all values as strings of decimals. So a tick
 * is made in two steps:
 *
 * 1. `decodeNorenText(text)`: the message, its fields checked and parsed (no state);
 * 2. `NorenBook.apply(message)`: merged onto the last state of its `exchange|token` and turned
 *    into a `BrokerTick`. The book keeps only known fields, for at most `maxTokens` tokens
 *    (least recently updated dropped first), so its memory is bounded whatever the feed sends.
 *
 * Neither step throws for any input; what cannot be used is reported as `invalid` with a reason.
 */
import { nestedBeyond } from '../../protocol/json-depth.js';
import type { BrokerTick, DepthLevel } from '../broker.js';

export type NorenMarketType = 'tk' | 'tf' | 'dk' | 'df';

/** A market message's known fields, parsed: numbers for numeric fields, strings for `ts`, `ltt`. */
export type NorenFields = Partial<Record<NorenField, number | string>>;

export type NorenDecoded =
  | {
      kind: 'market';
      /** `tk`/`dk` acknowledge a subscription with the full state; `tf`/`df` carry changes only. */
      type: NorenMarketType;
      exchange: string;
      token: string;
      fields: NorenFields;
    }
  /** The answer to the connect message: `ck` (t:"c" dialect) or `ak` (t:"a" dialect). */
  | { kind: 'connect'; type: 'ck' | 'ak'; ok: boolean; message: string }
  | { kind: 'heartbeat' }
  /** An order update (`om`): not market data. */
  | { kind: 'order'; data: Record<string, unknown> }
  /** The order-update subscription's acknowledgement (`ok`). */
  | { kind: 'ack'; type: 'ok' }
  | { kind: 'invalid'; reason: string };

const PRICE_FIELDS = ['lp', 'o', 'h', 'l', 'c', 'ap', 'uc', 'lc', '52h', '52l', 'pc', 'ti'] as const;
const INTEGER_FIELDS = ['v', 'ltq', 'tbq', 'tsq', 'oi', 'poi', 'toi', 'ft', 'pp', 'ls'] as const;
const LEVELS = [1, 2, 3, 4, 5] as const;
const DEPTH_FIELDS = LEVELS.flatMap((i) => [`bp${i}`, `sp${i}`, `bq${i}`, `sq${i}`, `bo${i}`, `so${i}`] as const);
const TEXT_FIELDS = ['ts', 'ltt'] as const;

export type NorenField =
  | (typeof PRICE_FIELDS)[number]
  | (typeof INTEGER_FIELDS)[number]
  | (typeof TEXT_FIELDS)[number]
  | `${'bp' | 'sp' | 'bq' | 'sq' | 'bo' | 'so'}${(typeof LEVELS)[number]}`;

const DECIMAL_FIELDS: ReadonlySet<string> = new Set<string>([...PRICE_FIELDS, ...DEPTH_FIELDS.filter((f) => f[1] === 'p')]);
const WHOLE_FIELDS: ReadonlySet<string> = new Set<string>([...INTEGER_FIELDS, ...DEPTH_FIELDS.filter((f) => f[1] !== 'p')]);
const STRING_FIELDS: ReadonlySet<string> = new Set<string>(TEXT_FIELDS);

/** A decimal as Noren writes it: optional sign, digits, optional fraction. */
const DECIMAL = /^-?\d{1,20}(?:\.\d{1,12})?$/;
const WHOLE = /^\d{1,20}$/;
const NAME = /^[A-Za-z0-9_]{1,16}$/;
const TOKEN = /^[A-Za-z0-9_.-]{1,32}$/;
const MAX_TEXT = 64 * 1024;
const MAX_DEPTH = 8;
const MAX_STRING_FIELD = 64;

export function decodeNorenText(text: string): NorenDecoded {
  if (typeof text !== 'string') return { kind: 'invalid', reason: 'not a text message' };
  if (text.length > MAX_TEXT) return { kind: 'invalid', reason: `message of ${text.length} characters (over ${MAX_TEXT})` };
  const trimmed = text.trim();
  if (trimmed === '') return { kind: 'invalid', reason: 'empty message' };
  // Every Noren message is an object: anything else is refused before parsing deep structures.
  if (trimmed[0] !== '{') return { kind: 'invalid', reason: 'not a JSON object' };
  // Nothing Noren sends nests deeply; an order update is passed on whole, so it must stay printable.
  if (nestedBeyond(trimmed, MAX_DEPTH)) return { kind: 'invalid', reason: `message nests deeper than ${MAX_DEPTH} levels` };
  let data: unknown;
  try {
    data = JSON.parse(trimmed);
  } catch {
    return { kind: 'invalid', reason: 'not JSON' };
  }
  if (typeof data !== 'object' || data === null || Array.isArray(data)) return { kind: 'invalid', reason: 'not a JSON object' };
  return decodeNorenMessage(data as Record<string, unknown>);
}

/** The same for a message already parsed. */
export function decodeNorenMessage(data: Record<string, unknown>): NorenDecoded {
  const t = data.t;
  if (typeof t !== 'string') return { kind: 'invalid', reason: 'no message type (t)' };
  switch (t) {
    case 'tk':
    case 'tf':
    case 'dk':
    case 'df':
      return decodeMarket(t, data);
    case 'ck':
    case 'ak': {
      const status = data.s;
      const ok = typeof status === 'string' && status.toUpperCase() === 'OK';
      const reason = typeof data.emsg === 'string' ? data.emsg : typeof status === 'string' ? status : 'no status';
      return { kind: 'connect', type: t, ok, message: ok ? 'OK' : short(reason) };
    }
    case 'h':
      return { kind: 'heartbeat' };
    case 'om':
      return { kind: 'order', data };
    case 'ok':
      return { kind: 'ack', type: 'ok' };
    default:
      return { kind: 'invalid', reason: `unknown message type ${JSON.stringify(short(t))}` };
  }
}

function decodeMarket(type: NorenMarketType, data: Record<string, unknown>): NorenDecoded {
  const exchange = data.e;
  const token = data.tk;
  if (typeof exchange !== 'string' || !NAME.test(exchange)) return { kind: 'invalid', reason: `${type}: no valid exchange (e)` };
  if (typeof token !== 'string' || !TOKEN.test(token)) return { kind: 'invalid', reason: `${type}: no valid token (tk)` };
  const fields: NorenFields = {};
  for (const key of Object.keys(data)) {
    const value = data[key];
    if (DECIMAL_FIELDS.has(key) || WHOLE_FIELDS.has(key)) {
      const parsed = parseNumber(value, WHOLE_FIELDS.has(key));
      if (parsed === null) return { kind: 'invalid', reason: `${type} ${exchange}|${token}: ${key} is not a number (${describe(value)})` };
      if (parsed !== undefined) fields[key as NorenField] = parsed;
    } else if (STRING_FIELDS.has(key)) {
      if (typeof value !== 'string') return { kind: 'invalid', reason: `${type} ${exchange}|${token}: ${key} is not a string (${describe(value)})` };
      if (value !== '') fields[key as NorenField] = value.slice(0, MAX_STRING_FIELD);
    }
    // Other keys (t, e, tk, and fields tickcast does not use) are ignored.
  }
  return { kind: 'market', type, exchange, token, fields };
}

/** A number, undefined for "no value" ("" or "-"), null for anything that is not a number. */
function parseNumber(value: unknown, whole: boolean): number | undefined | null {
  if (typeof value === 'number') return Number.isFinite(value) && (!whole || (Number.isInteger(value) && value >= 0)) ? value : null;
  if (typeof value !== 'string') return null;
  if (value === '' || value === '-') return undefined;
  // Whole fields are sometimes written with a fraction of zeros ("100.00"); accept that only.
  if (whole) {
    if (WHOLE.test(value)) return Number(value);
    return /^\d{1,20}\.0+$/.test(value) ? Number(value.slice(0, value.indexOf('.'))) : null;
  }
  return DECIMAL.test(value) ? Number(value) : null;
}

function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(short(value));
  return value === null ? 'null' : Array.isArray(value) ? 'an array' : typeof value;
}

function short(text: string): string {
  return text.length > 200 ? text.slice(0, 200) + '…' : text;
}

export interface NorenBookOptions {
  broker?: 'shoonya' | 'flattrade';
  /** Tokens whose state is kept; past it the least recently updated is dropped. */
  maxTokens?: number;
  /** Whether (exchange, token) is an index, from the symbol master; else guessed (see `toTick`). */
  isIndex?: (exchange: string, token: string) => boolean;
}

export type NorenApplied = { kind: 'tick'; tick: BrokerTick } | { kind: 'invalid'; reason: string };

/**
 * The per-token state of a feed. An acknowledgement (`tk`, `dk`) replaces the token's state; an
 * update (`tf`, `df`) overwrites the fields it carries and keeps the rest. An update for a token
 * with no state starts one (as the official feed example does) but makes a tick only once the
 * state has a last price. `forget` on unsubscribe, `clear` on reconnect (the server sends fresh
 * acknowledgements when the subscriptions are sent again).
 */
export class NorenBook {
  readonly maxTokens: number;
  private readonly broker: 'shoonya' | 'flattrade';
  private readonly isIndex?: (exchange: string, token: string) => boolean;
  private readonly states = new Map<string, { depth: boolean; fields: NorenFields }>();

  constructor(options: NorenBookOptions = {}) {
    this.broker = options.broker ?? 'shoonya';
    this.maxTokens = Math.max(1, Math.floor(options.maxTokens ?? 10_000));
    this.isIndex = options.isIndex;
  }

  get size(): number {
    return this.states.size;
  }

  /** The merged fields of a token (a copy), for tests and diagnostics. */
  fields(exchange: string, token: string): NorenFields | undefined {
    const state = this.states.get(exchange + '|' + token);
    return state ? { ...state.fields } : undefined;
  }

  apply(message: Extract<NorenDecoded, { kind: 'market' }>): NorenApplied {
    const key = message.exchange + '|' + message.token;
    const fresh = message.type === 'tk' || message.type === 'dk';
    const depth = message.type === 'dk' || message.type === 'df';
    const previous = this.states.get(key);
    this.states.delete(key); // re-inserted last: Map order is least recently updated first
    const state = fresh || !previous ? { depth, fields: { ...message.fields } } : { depth: previous.depth || depth, fields: Object.assign(previous.fields, message.fields) };
    this.states.set(key, state);
    while (this.states.size > this.maxTokens) this.states.delete(this.states.keys().next().value as string);
    if (typeof state.fields.lp !== 'number') return { kind: 'invalid', reason: `${message.type} ${key}: no last price yet` };
    return { kind: 'tick', tick: toTick(this.broker, message.exchange, message.token, state.fields, state.depth, this.isIndex) };
  }

  forget(exchange: string, token: string): void {
    this.states.delete(exchange + '|' + token);
  }

  clear(): void {
    this.states.clear();
  }
}

const IST_MS = 19_800_000;
const DAY_MS = 86_400_000;

/**
 * A token's merged fields as a tick. Touchline state gives mode `quote`, depth state `full` with
 * five levels a side. Zero OHLC, average, circuits and 52-week range mean "none" and are left out;
 * an index (no volume, no quotes) gets no quantities. `ft` (epoch seconds) is the exchange
 * timestamp; `ltt` (IST time of day) becomes an instant on `ft`'s IST day.
 */
export function toTick(
  broker: 'shoonya' | 'flattrade',
  exchange: string,
  token: string,
  fields: NorenFields,
  depth: boolean,
  isIndex?: (exchange: string, token: string) => boolean,
): BrokerTick {
  const num = (key: NorenField): number | undefined => {
    const value = fields[key];
    return typeof value === 'number' ? value : undefined;
  };
  const positive = (key: NorenField): number | undefined => {
    const value = num(key);
    return value !== undefined && value > 0 ? value : undefined;
  };
  const looksLikeIndex = fields.v === undefined && fields.bp1 === undefined && fields.sp1 === undefined && fields.ltq === undefined && fields.ap === undefined;
  const index = isIndex ? isIndex(exchange, token) : looksLikeIndex;
  const tick: BrokerTick = { broker, token, exchange, mode: depth ? 'full' : 'quote', isIndex: index, ltp: num('lp') ?? 0 };
  const set = <K extends keyof BrokerTick>(key: K, value: BrokerTick[K] | undefined): void => {
    if (value !== undefined) tick[key] = value;
  };
  set('open', positive('o'));
  set('high', positive('h'));
  set('low', positive('l'));
  set('close', positive('c'));
  set('averagePrice', positive('ap'));
  if (!index) {
    set('volume', num('v'));
    set('lastQuantity', num('ltq'));
    set('totalBuyQuantity', num('tbq'));
    set('totalSellQuantity', num('tsq'));
  }
  set('oi', num('oi'));
  set('upperCircuit', positive('uc'));
  set('lowerCircuit', positive('lc'));
  set('high52w', positive('52h'));
  set('low52w', positive('52l'));
  const ft = positive('ft');
  if (ft !== undefined) tick.exchangeTimestamp = ft * 1000;
  set('lastTradeTime', lastTradeTime(fields.ltt, tick.exchangeTimestamp));
  if (depth && !index) tick.depth = { buy: side(fields, 'b'), sell: side(fields, 's') };
  return tick;
}

/** Levels 1–5 by position, up to the last one with a price or a quantity. */
function side(fields: NorenFields, prefix: 'b' | 's'): DepthLevel[] {
  const levels: DepthLevel[] = [];
  let last = 0;
  for (const i of LEVELS) {
    const price = fields[`${prefix}p${i}`];
    const quantity = fields[`${prefix}q${i}`];
    const orders = fields[`${prefix}o${i}`];
    const level: DepthLevel = {
      price: typeof price === 'number' ? price : 0,
      quantity: typeof quantity === 'number' ? quantity : 0,
      orders: typeof orders === 'number' ? orders : null,
    };
    levels.push(level);
    if (level.price !== 0 || level.quantity !== 0) last = i;
  }
  return levels.slice(0, last);
}

/**
 * `ltt` is the IST time of day of the last trade ("15:29:59"; "05:30:00" is epoch 0, no trade),
 * or a full IST date-time ("12-06-2024 15:29:59"). A time of day is put on the IST day of the feed
 * time, the day before if that would be in the future.
 */
export function lastTradeTime(ltt: unknown, feedTimeMs: number | undefined): number | undefined {
  if (typeof ltt !== 'string') return undefined;
  const full = /^(\d{2})-(\d{2})-(\d{4}) (\d{2}):(\d{2}):(\d{2})$/.exec(ltt);
  if (full) {
    const [, dd, mm, yyyy, h, m, s] = full.map(Number) as [number, number, number, number, number, number, number];
    if (h > 23 || m > 59 || s > 59 || mm < 1 || mm > 12 || dd < 1 || dd > 31) return undefined;
    const ms = Date.UTC(yyyy, mm - 1, dd, h, m, s) - IST_MS;
    return ms > 0 ? ms : undefined;
  }
  const time = /^(\d{2}):(\d{2}):(\d{2})$/.exec(ltt);
  if (!time || feedTimeMs === undefined || ltt === '05:30:00') return undefined;
  const [h, m, s] = [Number(time[1]), Number(time[2]), Number(time[3])];
  if (h > 23 || m > 59 || s > 59) return undefined;
  const istDayStart = Math.floor((feedTimeMs + IST_MS) / DAY_MS) * DAY_MS - IST_MS;
  let ms = istDayStart + ((h * 60 + m) * 60 + s) * 1000;
  if (ms > feedTimeMs + 60_000) ms -= DAY_MS;
  return ms;
}

/** The client's messages (docs/brokers/noren.md): `k` is `EXCHANGE|TOKEN` joined with `#`. */
export function norenSubscribe(kind: 'touchline' | 'depth', scrips: readonly string[]): string {
  return JSON.stringify({ t: kind === 'touchline' ? 't' : 'd', k: scrips.join('#') });
}

export function norenUnsubscribe(kind: 'touchline' | 'depth', scrips: readonly string[]): string {
  return JSON.stringify({ t: kind === 'touchline' ? 'u' : 'ud', k: scrips.join('#') });
}
