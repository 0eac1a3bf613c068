/**
 * Decodes Angel One SmartAPI WebSocket 2.0 ("SmartStream") frames into normalised ticks
 * (wire-formats spec §2.3–2.7 and §3). Pure: no I/O, no clock, no state.
 *
 * A binary frame is one little-endian packet whose length is fixed by its mode byte:
 * LTP 51, QUOTE 123, SNAP_QUOTE 379, DEPTH-20 443. Anything else is reported as `invalid`;
 * the decoder never throws and never trusts a length read from the frame.
 *
 * Prices arrive as integers in the segment's smallest unit. They are scaled exactly: the decimal
 * string is built from the integer and the segment's number of decimals, then parsed once, so a
 * price is always the double nearest its true decimal value.
 */
import type { BrokerTick, DepthLevel } from '../broker.js';
import { scaleDecimal } from '../decimal.js';

export interface AngelExchange {
  /** The name used in BrokerTick.exchange (Angel's own segment names, lower case). */
  name: string;
  /** Decimals in a wire price: 2 means paise (÷100). */
  priceDecimals: number;
}

/**
 * Angel exchange types (byte 1 of every packet). CDE_FO (currency) uses 7 decimals: the official
 * clients apply no scale, Angel's instrument master writes currency prices in 1e7 units, Kite
 * uses 1e7 for the same segment, and the shared vectors (USDINR 834525000 → 83.4525) assume it.
 * ÷100 would put USDINR at 8 345 250 rupees. Spec §5 Q3 asks for one live check against REST
 * `ltpData`; if it disagrees, this table is the only place to change.
 */
export const ANGEL_EXCHANGES: ReadonlyMap<number, AngelExchange> = new Map([
  [1, { name: 'nse_cm', priceDecimals: 2 }],
  [2, { name: 'nse_fo', priceDecimals: 2 }],
  [3, { name: 'bse_cm', priceDecimals: 2 }],
  [4, { name: 'bse_fo', priceDecimals: 2 }],
  [5, { name: 'mcx_fo', priceDecimals: 2 }],
  [7, { name: 'ncx_fo', priceDecimals: 2 }],
  [13, { name: 'cde_fo', priceDecimals: 7 }],
]);

/** Packet length for each subscription mode (byte 0). */
export const ANGEL_PACKET_LENGTH: Readonly<Record<number, number>> = { 1: 51, 2: 123, 3: 379, 4: 443 };

export type AngelPacketMode = 1 | 2 | 3 | 4;

export type AngelDecoded =
  | {
      kind: 'tick';
      tick: BrokerTick;
      /** Byte 0: the subscription mode the packet was sent for (4 = depth-20). */
      packetMode: AngelPacketMode;
      /** Byte 1: tokens are only unique within one exchange type. */
      exchangeType: number;
      /** Something odd but harmless (a best-5 flag that disagrees with the level's position). */
      anomaly?: string;
    }
  | { kind: 'pong' }
  | { kind: 'text'; data: unknown }
  | { kind: 'invalid'; reason: string };

export interface AngelDecodeOptions {
  /**
   * Whether (exchangeType, token) is an index, from the symbol master. Without it, a QUOTE or
   * SNAP_QUOTE packet whose volume, quantities and average price are all zero is taken to be an
   * index (that is how Angel sends them); LTP and depth packets are then reported as non-index.
   */
  isIndex?: (exchangeType: number, token: string) => boolean;
}

const MODE_NAME: Record<AngelPacketMode, BrokerTick['mode']> = { 1: 'ltp', 2: 'quote', 3: 'full', 4: 'depth20' };

const TOKEN_START = 2;
const TOKEN_END = 27;
const BEST_FIVE_BUY = 147;
const BEST_FIVE_SELL = 247;
const BEST_FIVE_SIZE = 20;
const DEPTH20_BUY = 43;
const DEPTH20_SELL = 243;
const DEPTH20_SIZE = 10;
const TWO_POW_32 = 4294967296;

export function decodeAngelText(text: string): AngelDecoded {
  const trimmed = text.trim();
  if (trimmed === '') return { kind: 'invalid', reason: 'empty text frame' };
  if (trimmed === 'pong') return { kind: 'pong' };
  try {
    return { kind: 'text', data: JSON.parse(trimmed) as unknown };
  } catch {
    // Not JSON: still a server message worth logging (error texts are not always JSON).
    return { kind: 'text', data: text };
  }
}

export function decodeAngelBinary(frame: Buffer, options: AngelDecodeOptions = {}): AngelDecoded {
  if (frame.length < 1) return { kind: 'invalid', reason: 'empty binary frame' };
  const mode = frame[0]!;
  const expected = ANGEL_PACKET_LENGTH[mode];
  if (expected === undefined) return { kind: 'invalid', reason: `unknown subscription mode ${mode}` };
  if (frame.length !== expected) {
    return { kind: 'invalid', reason: `mode ${mode} packet must be ${expected} bytes, got ${frame.length}` };
  }
  const exchangeType = frame[1]!;
  const exchange = ANGEL_EXCHANGES.get(exchangeType);
  if (!exchange) return { kind: 'invalid', reason: `unknown exchange type ${exchangeType}` };
  const token = readToken(frame);
  if (token === undefined) return { kind: 'invalid', reason: 'token is empty or not printable ASCII' };

  const packetMode = mode as AngelPacketMode;
  if (packetMode === 4) {
    return { kind: 'tick', tick: decodeDepth20(frame, token, exchange, options.isIndex?.(exchangeType, token) ?? false), packetMode, exchangeType };
  }
  const decimals = exchange.priceDecimals;
  const tick: BrokerTick = {
    broker: 'angel',
    token,
    exchange: exchange.name,
    mode: MODE_NAME[packetMode],
    isIndex: false,
    ltp: readPrice(frame, 43, decimals),
    sequence: readInt64(frame, 27),
  };
  const exchangeTimestamp = readInt64(frame, 35);
  if (exchangeTimestamp > 0) tick.exchangeTimestamp = exchangeTimestamp;

  if (packetMode === 1) {
    tick.isIndex = options.isIndex?.(exchangeType, token) ?? false;
    return { kind: 'tick', tick, packetMode, exchangeType };
  }

  const lastQuantity = readInt64(frame, 51);
  const averageRaw = readInt64(frame, 59);
  const volume = readInt64(frame, 67);
  const totalBuy = wholeQuantity(frame.readDoubleLE(75));
  const totalSell = wholeQuantity(frame.readDoubleLE(83));
  const looksLikeIndex = lastQuantity === 0 && averageRaw === 0 && volume === 0 && !totalBuy && !totalSell;
  tick.isIndex = options.isIndex?.(exchangeType, token) ?? looksLikeIndex;
  // Indices report zeros for what they do not have; missing is not zero (spec §3.2).
  if (!tick.isIndex) {
    tick.lastQuantity = lastQuantity;
    tick.volume = volume;
    if (totalBuy !== undefined) tick.totalBuyQuantity = totalBuy;
    if (totalSell !== undefined) tick.totalSellQuantity = totalSell;
  }
  setPrice(tick, 'averagePrice', frame, 59, decimals);
  setPrice(tick, 'open', frame, 91, decimals);
  setPrice(tick, 'high', frame, 99, decimals);
  setPrice(tick, 'low', frame, 107, decimals);
  setPrice(tick, 'close', frame, 115, decimals);
  if (packetMode === 2) return { kind: 'tick', tick, packetMode, exchangeType };

  // SNAP_QUOTE: last-trade time is epoch seconds (exchange_timestamp is ms).
  const lastTradeSeconds = readInt64(frame, 123);
  if (lastTradeSeconds > 0) tick.lastTradeTime = lastTradeSeconds * 1000;
  if (!tick.isIndex) tick.oi = readInt64(frame, 131);
  setPrice(tick, 'upperCircuit', frame, 347, decimals);
  setPrice(tick, 'lowerCircuit', frame, 355, decimals);
  setPrice(tick, 'high52w', frame, 363, decimals);
  setPrice(tick, 'low52w', frame, 371, decimals);

  // Split by position (buy block first), not by flag: with a partly filled book the flag split
  // of the official Python client can return 3 + 7 levels. The flag is only cross-checked.
  let flagMismatch = false;
  const side = (start: number, flag: number): DepthLevel[] => {
    const levels: DepthLevel[] = [];
    for (let i = 0; i < 5; i++) {
      const at = start + i * BEST_FIVE_SIZE;
      const quantity = readInt64(frame, at + 2);
      const priceRaw = readInt64(frame, at + 10);
      if (quantity === 0 && priceRaw === 0) continue;
      if (frame.readUInt16LE(at) !== flag) flagMismatch = true;
      levels.push({ price: readPrice(frame, at + 10, decimals), quantity, orders: frame.readUInt16LE(at + 18) });
    }
    return levels;
  };
  tick.depth = { buy: side(BEST_FIVE_BUY, 1), sell: side(BEST_FIVE_SELL, 0) };
  return flagMismatch
    ? { kind: 'tick', tick, packetMode, exchangeType, anomaly: 'best-5 flag disagrees with the level position' }
    : { kind: 'tick', tick, packetMode, exchangeType };
}

/**
 * DEPTH-20 carries no LTP: `ltp` is NaN so no consumer mistakes it for a price. Bytes [27,35)
 * are the exchange timestamp and [35,43) the packet-received time (Java/JS naming, spec §2.5);
 * both are taken as epoch ms, as the sample values are.
 */
function decodeDepth20(frame: Buffer, token: string, exchange: AngelExchange, isIndex: boolean): BrokerTick {
  const decimals = exchange.priceDecimals;
  const side = (start: number): DepthLevel[] => {
    const levels: DepthLevel[] = [];
    for (let i = 0; i < 20; i++) {
      const at = start + i * DEPTH20_SIZE;
      const quantity = frame.readInt32LE(at);
      const priceRaw = frame.readInt32LE(at + 4);
      if (quantity === 0 && priceRaw === 0) continue;
      levels.push({ price: scaleDecimal(priceRaw, decimals), quantity, orders: frame.readInt16LE(at + 8) });
    }
    return levels;
  };
  const tick: BrokerTick = {
    broker: 'angel',
    token,
    exchange: exchange.name,
    mode: 'depth20',
    isIndex,
    ltp: Number.NaN,
    depth: { buy: side(DEPTH20_BUY), sell: side(DEPTH20_SELL) },
  };
  const exchangeTimestamp = readInt64(frame, 27);
  if (exchangeTimestamp > 0) tick.exchangeTimestamp = exchangeTimestamp;
  return tick;
}

type PriceField = 'averagePrice' | 'open' | 'high' | 'low' | 'close' | 'upperCircuit' | 'lowerCircuit' | 'high52w' | 'low52w';

/** A zero price means "none yet" on this feed (indices, pre-open), so it stays undefined. */
function setPrice(tick: BrokerTick, field: PriceField, frame: Buffer, offset: number, decimals: number): void {
  if (readInt64(frame, offset) === 0) return;
  tick[field] = readPrice(frame, offset, decimals);
}

/** Token: ASCII, NUL-padded; read up to the first NUL. */
function readToken(frame: Buffer): string | undefined {
  let end = TOKEN_START;
  while (end < TOKEN_END && frame[end] !== 0) {
    const c = frame[end]!;
    if (c <= 0x20 || c >= 0x7f) return undefined;
    end++;
  }
  return end === TOKEN_START ? undefined : frame.toString('latin1', TOKEN_START, end);
}

/**
 * A little-endian int64 as a number: exact within ±2^53 (every real price, quantity and
 * timestamp), nearest double beyond (only garbage gets there).
 */
function readInt64(frame: Buffer, offset: number): number {
  const high = frame.readInt32LE(offset + 4);
  const low = frame.readUInt32LE(offset);
  const value = high * TWO_POW_32 + low;
  return Number.isSafeInteger(value) ? value : Number(frame.readBigInt64LE(offset));
}

function readPrice(frame: Buffer, offset: number, decimals: number): number {
  const high = frame.readInt32LE(offset + 4);
  const low = frame.readUInt32LE(offset);
  const value = high * TWO_POW_32 + low;
  return scaleDecimal(Number.isSafeInteger(value) ? value : frame.readBigInt64LE(offset), decimals);
}


/** Totals are IEEE doubles on the wire; a whole, non-negative count or undefined if nonsense. */
function wholeQuantity(value: number): number | undefined {
  return Number.isFinite(value) && value >= 0 ? Math.trunc(value) : undefined;
}
