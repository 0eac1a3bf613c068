/**
 * Decodes Dhan's two market-data feeds into normalised ticks (docs/brokers/dhan.md). Pure: no
 * I/O, no clock, no state; never throws; every read is bounds-checked and nothing is allocated
 * from a length field beyond what the frame holds.
 *
 * - The live market feed (`wss://api-feed.dhan.co?version=2…`): little-endian packets behind an
 *   8-byte header `u8 response code, u16 packet length (header included), u8 exchange segment,
 *   u32 security id`. Ticker 16 bytes, quote 50, OI 12, previous close 16, market status 8,
 *   full (with 5-level depth) 162, disconnect 10. The official client reads one packet per
 *   message; OpenAlgo walks several by their length, and so does this decoder.
 * - The 20-level depth feed (`wss://depth-api-feed.dhan.co/twentydepth…`): packets behind a
 *   12-byte header `u16 length, u8 code, u8 segment, u32 security id, u32 sequence`, bid (41) and
 *   ask (51) sides sent as separate 332-byte packets, often several in one message.
 *
 * Prices are IEEE floats in rupees (float32 on the live feed, float64 on the depth feed), not
 * scaled integers. Each is rounded to its segment's decimals (2, or 4 for currency), which gives
 * back the exchange's price exactly below 131 072; above it a float32 only carries steps of
 * 1/64 rupee and the paise can be off by one (the feed cannot say better).
 *
 * Times: the last-trade time (LTT) is epoch seconds of the IST wall clock written as if it were
 * UTC (DhanHQ-py issue #51; the official client formats it as UTC to print IST); it is turned
 * into a real instant by subtracting 5 h 30 min. Zero means "no trade yet" and stays undefined.
 *
 * Missing is not zero: zero prices, an index's zero quantities and an empty depth level are left
 * out; OI is kept only for derivative segments.
 */
import type { BrokerTick, DepthLevel } from '../broker.js';

export interface DhanSegment {
  /** Dhan's segment name, used as BrokerTick.exchange (`NSE_EQ`, `IDX_I`…). */
  name: string;
  /** Decimals a price is rounded to: 2, and 4 for currency (tick 0.0025). */
  priceDecimals: number;
  isIndex: boolean;
  /** Futures and options (OI is meaningful). */
  derivative: boolean;
}

/** Exchange segments (byte 3 of the live-feed header, byte 3 of the depth header). */
export const DHAN_SEGMENTS: ReadonlyMap<number, DhanSegment> = new Map([
  [0, { name: 'IDX_I', priceDecimals: 2, isIndex: true, derivative: false }],
  [1, { name: 'NSE_EQ', priceDecimals: 2, isIndex: false, derivative: false }],
  [2, { name: 'NSE_FNO', priceDecimals: 2, isIndex: false, derivative: true }],
  [3, { name: 'NSE_CURRENCY', priceDecimals: 4, isIndex: false, derivative: true }],
  [4, { name: 'BSE_EQ', priceDecimals: 2, isIndex: false, derivative: false }],
  [5, { name: 'MCX_COMM', priceDecimals: 2, isIndex: false, derivative: true }],
  [7, { name: 'BSE_CURRENCY', priceDecimals: 4, isIndex: false, derivative: true }],
  [8, { name: 'BSE_FNO', priceDecimals: 2, isIndex: false, derivative: true }],
]);

/** Live-feed response codes and their packet lengths (header included). */
export const DHAN_PACKET_LENGTH: Readonly<Record<number, number>> = { 2: 16, 4: 50, 5: 12, 6: 16, 7: 8, 8: 162, 50: 10 };
export const DHAN_DEPTH20_PACKET_LENGTH = 332;
const DEPTH20_HEADER = 12;
const DEPTH20_LEVELS = 20;
const DEPTH20_LEVEL_SIZE = 16;
const FULL_DEPTH_AT = 62;
const FULL_LEVEL_SIZE = 20;

/** Seconds between the IST wall clock Dhan writes as epoch seconds and UTC. */
export const DHAN_IST_OFFSET_S = 19_800;

/**
 * Disconnect reasons (packet code 50). The texts of 805–809 are the official client's; 800, 804
 * and 810 come from the DhanHQ annexure's data-API errors, which word 808–809 differently.
 */
export const DHAN_DISCONNECT_REASONS: Readonly<Record<number, string>> = {
  800: 'internal server error',
  804: 'requested number of instruments exceeds the limit',
  805: 'no. of active websocket connections exceeded',
  806: 'subscribe to Data APIs to continue',
  807: 'access token is expired',
  808: 'invalid client ID',
  809: 'authentication failed',
  810: 'client ID is invalid',
};

/** Disconnect codes that mean the credentials (or the data plan) are refused: retrying will not help. */
export function isDhanRefusal(code: number): boolean {
  return code >= 806 && code <= 810;
}

interface Instrument {
  token: string;
  exchange: string;
  segment: number;
}

export type DhanPacket =
  | { kind: 'tick'; tick: BrokerTick; responseCode: 2 | 4 | 8; segment: number }
  /** OI packet (5): sent beside quote packets of derivatives. */
  | ({ kind: 'oi'; oi: number } & Instrument)
  /** Previous-close packet (6), sent once per subscription: the close and, for derivatives, the previous OI. */
  | ({ kind: 'prevClose'; close?: number; prevOi?: number } & Instrument)
  /** Market-status packet (7): its body is undocumented and it carries nothing more. */
  | { kind: 'marketStatus'; segment: number; securityId: number }
  | { kind: 'disconnect'; code: number; reason: string; refused: boolean }
  /** One side of a 20-level book (depth feed, codes 41 and 51); `depth20Tick` joins a pair. */
  | ({ kind: 'depth20'; side: 'buy' | 'sell'; sequence: number; levels: DepthLevel[] } & Instrument)
  /** Response code 0 with a plausible length, which OpenAlgo's client skips as a heartbeat (undocumented). */
  | { kind: 'heartbeat' }
  | { kind: 'invalid'; reason: string };

export type DhanTextDecoded = { kind: 'text'; text: string } | { kind: 'invalid'; reason: string };

/** Dhan sends binary only; a text frame is kept (shortened) for the log. */
export function decodeDhanText(text: string): DhanTextDecoded {
  if (text.trim() === '') return { kind: 'invalid', reason: 'empty text frame' };
  return { kind: 'text', text: text.length > 500 ? text.slice(0, 500) + '…' : text };
}

/**
 * A live-feed message → its packets, in order. Never empty: a frame with nothing decodable is
 * one `invalid`. A packet that cannot be decoded is an `invalid` in its place; when its length
 * cannot be trusted, the rest of the frame is dropped with it.
 */
export function decodeDhanFeed(frame: Uint8Array): DhanPacket[] {
  const view = asBuffer(frame);
  const packets: DhanPacket[] = [];
  if (view.length === 0) return [{ kind: 'invalid', reason: 'empty binary frame' }];
  let at = 0;
  while (at < view.length) {
    const left = view.length - at;
    if (left < 8) {
      packets.push({ kind: 'invalid', reason: `${left} bytes left after the last packet, less than a header` });
      break;
    }
    const code = view[at]!;
    const declared = view.readUInt16LE(at + 1);
    const sane = declared >= 8 && declared <= left;
    if (code === 0 && sane) {
      packets.push({ kind: 'heartbeat' });
      at += declared;
      continue;
    }
    const expected = DHAN_PACKET_LENGTH[code];
    if (expected === undefined) {
      packets.push({ kind: 'invalid', reason: `unknown response code ${code}` });
      if (!sane) break;
      at += declared;
      continue;
    }
    const size = packetSize(declared, expected, at, left);
    if (size === undefined) {
      packets.push({ kind: 'invalid', reason: `response code ${code}: length ${declared} with ${left} bytes left, expected ${expected}` });
      if (!sane || declared >= expected) break;
      at += declared;
      continue;
    }
    packets.push(decodeFeedPacket(view, at, code));
    at += size;
  }
  return packets;
}

/**
 * The packet's size: the length field when it is the expected one (or longer, fields appended
 * later being ignored), or, for a frame holding exactly one packet, the expected size whatever
 * the field says. Undefined when the packet cannot be delimited or is short.
 */
function packetSize(declared: number, expected: number, at: number, left: number): number | undefined {
  if (declared >= expected && declared <= left) return declared;
  if (at === 0 && left === expected) return expected;
  return undefined;
}

function decodeFeedPacket(view: Buffer, at: number, code: number): DhanPacket {
  const segmentCode = view[at + 3]!;
  const securityId = view.readUInt32LE(at + 4);
  if (code === 50) {
    const reasonCode = view.readUInt16LE(at + 8);
    return disconnect(reasonCode);
  }
  if (code === 7) return { kind: 'marketStatus', segment: segmentCode, securityId };
  const segment = DHAN_SEGMENTS.get(segmentCode);
  if (!segment) return { kind: 'invalid', reason: `response code ${code}: unknown exchange segment ${segmentCode}` };
  const instrument: Instrument = { token: String(securityId), exchange: segment.name, segment: segmentCode };
  const decimals = segment.priceDecimals;

  if (code === 5) return { kind: 'oi', ...instrument, oi: view.readUInt32LE(at + 8) };
  if (code === 6) {
    const packet: DhanPacket = { kind: 'prevClose', ...instrument };
    const close = optionalPrice(view, at + 8, decimals);
    if (close !== undefined) packet.close = close;
    if (segment.derivative) packet.prevOi = view.readUInt32LE(at + 12);
    return packet;
  }

  const ltp = price(view, at + 8, decimals);
  if (ltp === undefined) return { kind: 'invalid', reason: `response code ${code}: LTP is not a finite number` };
  const tick: BrokerTick = {
    broker: 'dhan',
    token: instrument.token,
    exchange: segment.name,
    mode: code === 2 ? 'ltp' : code === 4 ? 'quote' : 'full',
    isIndex: segment.isIndex,
    ltp,
  };
  if (code === 2) {
    setTime(tick, view.readUInt32LE(at + 12));
    return { kind: 'tick', tick, responseCode: 2, segment: segmentCode };
  }

  // Quote and full share their first 34 bytes.
  const lastQuantity = view.readUInt16LE(at + 12);
  setTime(tick, view.readUInt32LE(at + 14));
  const volume = view.readUInt32LE(at + 22);
  const totalSell = view.readUInt32LE(at + 26);
  const totalBuy = view.readUInt32LE(at + 30);
  // An index has no trades of its own: its zeros mean "not available".
  if (!segment.isIndex) {
    tick.lastQuantity = lastQuantity;
    tick.volume = volume;
    tick.totalBuyQuantity = totalBuy;
    tick.totalSellQuantity = totalSell;
  }
  setPrice(tick, 'averagePrice', view, at + 18, decimals);
  const ohlcAt = code === 4 ? at + 34 : at + 46;
  setPrice(tick, 'open', view, ohlcAt, decimals);
  setPrice(tick, 'close', view, ohlcAt + 4, decimals);
  setPrice(tick, 'high', view, ohlcAt + 8, decimals);
  setPrice(tick, 'low', view, ohlcAt + 12, decimals);
  if (code === 4) return { kind: 'tick', tick, responseCode: 4, segment: segmentCode };

  if (segment.derivative) {
    tick.oi = view.readUInt32LE(at + 34);
    tick.oiDayHigh = view.readUInt32LE(at + 38);
    tick.oiDayLow = view.readUInt32LE(at + 42);
  }
  const buy: DepthLevel[] = [];
  const sell: DepthLevel[] = [];
  for (let i = 0; i < 5; i++) {
    const level = at + FULL_DEPTH_AT + i * FULL_LEVEL_SIZE;
    pushLevel(buy, view.readUInt32LE(level), roundPrice(view.readFloatLE(level + 12), decimals), view.readUInt16LE(level + 8));
    pushLevel(sell, view.readUInt32LE(level + 4), roundPrice(view.readFloatLE(level + 16), decimals), view.readUInt16LE(level + 10));
  }
  tick.depth = { buy, sell };
  return { kind: 'tick', tick, responseCode: 8, segment: segmentCode };
}

/**
 * A 20-level depth message → its packets (bid and ask sides, disconnects), in order. Never empty.
 * Levels are kept by position (best first, as sent); empty levels (price and quantity 0) are
 * left out.
 */
export function decodeDhanDepth20(frame: Uint8Array): DhanPacket[] {
  const view = asBuffer(frame);
  const packets: DhanPacket[] = [];
  if (view.length === 0) return [{ kind: 'invalid', reason: 'empty binary frame' }];
  let at = 0;
  while (at < view.length) {
    const left = view.length - at;
    if (left < DEPTH20_HEADER) {
      packets.push({ kind: 'invalid', reason: `${left} bytes left after the last packet, less than a depth header` });
      break;
    }
    const declared = view.readUInt16LE(at);
    const code = view[at + 2]!;
    const sane = declared >= DEPTH20_HEADER && declared <= left;
    if (code === 50) {
      // The official client reads the reason as the u32 where data packets carry the sequence.
      packets.push(disconnect(view.readUInt32LE(at + 8)));
      at += sane ? declared : Math.min(left, DEPTH20_HEADER);
      continue;
    }
    if (code === 0 && sane) {
      packets.push({ kind: 'heartbeat' });
      at += declared;
      continue;
    }
    if (code !== 41 && code !== 51) {
      packets.push({ kind: 'invalid', reason: `unknown depth response code ${code}` });
      if (!sane) break;
      at += declared;
      continue;
    }
    const size = packetSize(declared, DHAN_DEPTH20_PACKET_LENGTH, at, left);
    if (size === undefined) {
      packets.push({ kind: 'invalid', reason: `depth code ${code}: length ${declared} with ${left} bytes left, expected ${DHAN_DEPTH20_PACKET_LENGTH}` });
      if (!sane || declared >= DHAN_DEPTH20_PACKET_LENGTH) break;
      at += declared;
      continue;
    }
    packets.push(decodeDepth20Packet(view, at, code));
    at += size;
  }
  return packets;
}

function decodeDepth20Packet(view: Buffer, at: number, code: number): DhanPacket {
  const segmentCode = view[at + 3]!;
  const segment = DHAN_SEGMENTS.get(segmentCode);
  if (!segment) return { kind: 'invalid', reason: `depth code ${code}: unknown exchange segment ${segmentCode}` };
  const levels: DepthLevel[] = [];
  for (let i = 0; i < DEPTH20_LEVELS; i++) {
    const level = at + DEPTH20_HEADER + i * DEPTH20_LEVEL_SIZE;
    const raw = view.readDoubleLE(level);
    if (!Number.isFinite(raw)) return { kind: 'invalid', reason: `depth code ${code}: level ${i + 1} price is not a finite number` };
    pushLevel(levels, view.readUInt32LE(level + 8), roundPrice(raw, segment.priceDecimals), view.readUInt32LE(level + 12));
  }
  return {
    kind: 'depth20',
    side: code === 41 ? 'buy' : 'sell',
    token: String(view.readUInt32LE(at + 4)),
    exchange: segment.name,
    segment: segmentCode,
    sequence: view.readUInt32LE(at + 8),
    levels,
  };
}

type Depth20Side = Extract<DhanPacket, { kind: 'depth20' }>;

/**
 * A bid and an ask side of the same instrument → one `depth20` tick. The depth feed has no LTP:
 * `ltp` is NaN so no consumer mistakes it for a price (as for Angel's depth-20). Undefined when
 * the sides are not a bid and an ask of one instrument.
 */
export function depth20Tick(bid: Depth20Side, ask: Depth20Side): BrokerTick | undefined {
  if (bid.side !== 'buy' || ask.side !== 'sell' || bid.token !== ask.token || bid.segment !== ask.segment) return undefined;
  return {
    broker: 'dhan',
    token: bid.token,
    exchange: bid.exchange,
    mode: 'depth20',
    isIndex: false,
    ltp: Number.NaN,
    sequence: Math.max(bid.sequence, ask.sequence),
    depth: { buy: bid.levels, sell: ask.levels },
  };
}

function disconnect(code: number): DhanPacket {
  return { kind: 'disconnect', code, reason: DHAN_DISCONNECT_REASONS[code] ?? `disconnect code ${code}`, refused: isDhanRefusal(code) };
}

function asBuffer(frame: Uint8Array): Buffer {
  return Buffer.isBuffer(frame) ? frame : Buffer.from(frame.buffer, frame.byteOffset, frame.byteLength);
}

/** The nearest double to the price rounded to `decimals` places; undefined if not finite. */
function roundPrice(value: number, decimals: number): number | undefined {
  if (!Number.isFinite(value)) return undefined;
  const rounded = Number(value.toFixed(decimals));
  return rounded === 0 ? 0 : rounded; // no -0
}

function price(view: Buffer, offset: number, decimals: number): number | undefined {
  return roundPrice(view.readFloatLE(offset), decimals);
}

/** Zero (or garbage) means none: indices, pre-open, no trade yet. */
function optionalPrice(view: Buffer, offset: number, decimals: number): number | undefined {
  const value = price(view, offset, decimals);
  return value === 0 ? undefined : value;
}

type PriceField = 'averagePrice' | 'open' | 'high' | 'low' | 'close';

function setPrice(tick: BrokerTick, field: PriceField, view: Buffer, offset: number, decimals: number): void {
  const value = optionalPrice(view, offset, decimals);
  if (value !== undefined) tick[field] = value;
}

function setTime(tick: BrokerTick, ltt: number): void {
  if (ltt === 0) return;
  tick.lastTradeTime = (ltt - DHAN_IST_OFFSET_S) * 1000;
}

/** An empty level (no quantity and no price) is left out; so is a level whose price is not finite. */
function pushLevel(levels: DepthLevel[], quantity: number, levelPrice: number | undefined, orders: number): void {
  if (levelPrice === undefined || (quantity === 0 && levelPrice === 0)) return;
  levels.push({ price: levelPrice, quantity, orders });
}
