/**
 * Kite ticker frames → normalised ticks (wire-formats spec §1.4–1.6, §3). Pure: no I/O, no
 * state, and no throw for any input — a broker (or a man in the middle) can send anything, and
 * one bad frame must cost only itself.
 *
 * Every read is bounds-checked against the frame actually received, and nothing is allocated
 * from a length field, so a forged packet count or length cannot make us read or reserve more
 * than the frame holds.
 */
import { nestedBeyond } from '../../protocol/json-depth.js';
import type { BrokerTick, DepthLevel } from '../broker.js';
import { scaleDecimal } from '../decimal.js';

export type KiteDecoded =
  | {
      kind: 'ticks';
      ticks: BrokerTick[];
      /** One entry per packet (or envelope problem) that could not be decoded, e.g. an unknown length. */
      rejected: string[];
    }
  | { kind: 'heartbeat' }
  | { kind: 'text'; type: string; data: unknown }
  | { kind: 'invalid'; reason: string };

export interface KiteSegment {
  /** Exchange segment name, upper case (`NSE`, `CDS`, `INDICES`…). */
  exchange: string;
  /** Decimal places of the price divisor: 2 (÷100), 7 (÷1e7, CDS) or 4 (÷1e4, BCD). */
  decimals: number;
  isIndex: boolean;
}

/** pykiteconnect's EXCHANGE_MAP, segment = token & 0xff, with each segment's price scale. */
const SEGMENTS: ReadonlyArray<KiteSegment | undefined> = [
  undefined,
  { exchange: 'NSE', decimals: 2, isIndex: false },
  { exchange: 'NFO', decimals: 2, isIndex: false },
  { exchange: 'CDS', decimals: 7, isIndex: false },
  { exchange: 'BSE', decimals: 2, isIndex: false },
  { exchange: 'BFO', decimals: 2, isIndex: false },
  { exchange: 'BCD', decimals: 4, isIndex: false },
  { exchange: 'MCX', decimals: 2, isIndex: false },
  { exchange: 'MCXSX', decimals: 2, isIndex: false },
  { exchange: 'INDICES', decimals: 2, isIndex: true },
];

/**
 * The segment of an instrument token. Segments the official clients do not know still decode
 * (as they do in pykiteconnect, with the default ÷100), named `SEGMENT<n>`.
 */
export function kiteSegment(token: number): KiteSegment {
  const segment = token & 0xff;
  return SEGMENTS[segment] ?? { exchange: `SEGMENT${segment}`, decimals: 2, isIndex: false };
}

/** Price decimals for a decoded tick's `exchange` (the segment name this decoder wrote). */
export function priceDecimals(exchange: string): number {
  return exchange === 'CDS' ? 7 : exchange === 'BCD' ? 4 : 2;
}

/** Packet lengths and what they carry (§1.6). The mode is known only from the length. */
const LTP = 8;
const INDEX_QUOTE = 28;
const INDEX_FULL = 32;
const QUOTE = 44;
const FULL = 184;

/** Rejections quoted in an invalid frame's reason (a forged count can make tens of thousands). */
const REASONS_QUOTED = 3;
/** Deepest text frame read: the adapter serialises `data` to log it, recursively. */
const MAX_TEXT_DEPTH = 1000;

const DEPTH_LEVELS = 5;
const DEPTH_ENTRY = 12;
const BUY_DEPTH_AT = 64;
const SELL_DEPTH_AT = 124;

export function decodeKiteBinary(frame: Buffer): KiteDecoded {
  try {
    return decodeEnvelope(frame);
  } catch (err) {
    // Unreachable by construction (every read is bounds-checked); kept so a future slip
    // still cannot take the socket callback down.
    return { kind: 'invalid', reason: `decoder error: ${(err as Error).message}` };
  }
}

function decodeEnvelope(frame: Buffer): KiteDecoded {
  const size = frame.length;
  if (size === 0) return { kind: 'invalid', reason: 'empty binary frame' };
  // Kite's heartbeat is one byte; pykiteconnect drops anything under two bytes the same way.
  if (size === 1) return { kind: 'heartbeat' };
  const count = frame.readUInt16BE(0);
  if (count === 0) return { kind: 'invalid', reason: `frame of ${size} bytes declares 0 packets` };

  const ticks: BrokerTick[] = [];
  const rejected: string[] = [];
  let offset = 2;
  let truncated: string | undefined;
  for (let i = 0; i < count; i++) {
    if (offset + 2 > size) {
      truncated = `truncated: packet ${i + 1} of ${count} has no length (frame is ${size} bytes)`;
      break;
    }
    const length = frame.readUInt16BE(offset);
    offset += 2;
    if (offset + length > size) {
      truncated = `truncated: packet ${i + 1} of ${count} claims ${length} bytes, ${size - offset} left`;
      break;
    }
    const problem = decodePacket(frame, offset, length, ticks);
    if (problem !== undefined) rejected.push(`packet ${i + 1} of ${count}: ${problem}`);
    offset += length;
  }
  if (truncated !== undefined) {
    rejected.push(truncated);
    // Nothing usable and the envelope itself is broken: the frame as a whole is garbage.
    if (ticks.length === 0) return { kind: 'invalid', reason: summarise(rejected) };
  } else if (offset < size) {
    rejected.push(`${size - offset} trailing bytes after ${count} packets`);
  }
  return { kind: 'ticks', ticks, rejected };
}

/** The first few rejections and how many more, so a reason stays short whatever the frame claims. */
function summarise(rejected: readonly string[]): string {
  if (rejected.length <= REASONS_QUOTED + 1) return rejected.join('; ');
  const last = rejected[rejected.length - 1]!;
  return `${rejected.slice(0, REASONS_QUOTED).join('; ')}; … ${rejected.length - REASONS_QUOTED - 1} more; ${last}`;
}

/** Decodes one packet at [at, at + length) onto `out`; returns why not, if it cannot. */
function decodePacket(frame: Buffer, at: number, length: number, out: BrokerTick[]): string | undefined {
  if (length !== LTP && length !== INDEX_QUOTE && length !== INDEX_FULL && length !== QUOTE && length !== FULL) {
    const token = length >= 4 ? ` (token ${frame.readUInt32BE(at)})` : '';
    return `unknown packet length ${length}${token}`;
  }
  const u32 = (field: number): number => frame.readUInt32BE(at + field);
  const token = u32(0);
  const segment = kiteSegment(token);
  const price = (field: number): number => scaleDecimal(u32(field), segment.decimals);

  if (length === LTP) {
    out.push({
      broker: 'zerodha',
      token: String(token),
      exchange: segment.exchange,
      mode: 'ltp',
      isIndex: segment.isIndex,
      ltp: price(4),
    });
    return undefined;
  }

  if (length === INDEX_QUOTE || length === INDEX_FULL) {
    // Index layout: H, L, O, C order; [24,28) is a "change" field both official parsers ignore
    // (§1.6, §3.1: change is computed from ltp and close instead). No volume, depth or LTT.
    const tick: BrokerTick = {
      broker: 'zerodha',
      token: String(token),
      exchange: segment.exchange,
      mode: length === INDEX_FULL ? 'full' : 'quote',
      isIndex: true,
      ltp: price(4),
      high: price(8),
      low: price(12),
      open: price(16),
      close: price(20),
    };
    if (length === INDEX_FULL) tick.exchangeTimestamp = epochMs(u32(28));
    out.push(tick);
    return undefined;
  }

  const tick: BrokerTick = {
    broker: 'zerodha',
    token: String(token),
    exchange: segment.exchange,
    mode: length === FULL ? 'full' : 'quote',
    isIndex: segment.isIndex,
    ltp: price(4),
    lastQuantity: u32(8),
    averagePrice: price(12),
    volume: u32(16),
    totalBuyQuantity: u32(20),
    totalSellQuantity: u32(24),
    open: price(28),
    high: price(32),
    low: price(36),
    close: price(40),
  };
  if (length === FULL) {
    tick.lastTradeTime = epochMs(u32(44));
    // OI lives at [48,52), not at the tail of the depth block where OpenAlgo reads it (§8 #20).
    tick.oi = u32(48);
    tick.oiDayHigh = u32(52);
    tick.oiDayLow = u32(56);
    tick.exchangeTimestamp = epochMs(u32(60));
    tick.depth = {
      buy: depthSide(frame, at + BUY_DEPTH_AT, segment.decimals),
      sell: depthSide(frame, at + SELL_DEPTH_AT, segment.decimals),
    };
  }
  out.push(tick);
  return undefined;
}

/** Five 12-byte entries (quantity u32, price u32, orders u16, 2 pad bytes), best first. */
function depthSide(frame: Buffer, at: number, decimals: number): DepthLevel[] {
  const levels: DepthLevel[] = [];
  for (let i = 0; i < DEPTH_LEVELS; i++) {
    const entry = at + i * DEPTH_ENTRY;
    const quantity = frame.readUInt32BE(entry);
    const rawPrice = frame.readUInt32BE(entry + 4);
    // An empty level is all zeros on the wire; it is absent, not a bid of 0 at 0.
    if (quantity === 0 && rawPrice === 0) continue;
    levels.push({ price: scaleDecimal(rawPrice, decimals), quantity, orders: frame.readUInt16BE(entry + 8) });
  }
  return levels;
}

/** Kite sends epoch seconds; 0 means "none" (pykiteconnect would print 1970-01-01). */
function epochMs(seconds: number): number | undefined {
  return seconds === 0 ? undefined : seconds * 1000;
}


/**
 * A text frame: Kite's `{"type": "order"|"error"|"message", "data": …}`. Anything else —
 * not JSON, not an object, no string `type`, nested deeper than MAX_TEXT_DEPTH — is invalid.
 */
export function decodeKiteText(text: string): KiteDecoded {
  if (nestedBeyond(text, MAX_TEXT_DEPTH)) return { kind: 'invalid', reason: `text frame nests deeper than ${MAX_TEXT_DEPTH} levels` };
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { kind: 'invalid', reason: `text frame is not JSON (${text.length} chars)` };
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return { kind: 'invalid', reason: 'text frame is not a JSON object' };
  }
  const { type, data } = value as { type?: unknown; data?: unknown };
  if (typeof type !== 'string') return { kind: 'invalid', reason: 'text frame has no string "type"' };
  return { kind: 'text', type, data };
}
