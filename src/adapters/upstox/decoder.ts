/**
 * Decodes Upstox Market Data Feed v3 messages (protobuf `FeedResponse`, MarketDataFeedV3.proto;
 * docs/brokers/upstox.md) into normalised ticks keyed by instrument key. Pure: no I/O, no
 * clock, no state, never throws.
 *
 * Every binary frame is one FeedResponse: `type` (initial_feed / live_feed / market_info),
 * `feeds` (instrument key → Feed), `currentTs` (epoch ms) and, in the first message after
 * connecting, `marketInfo` (segment → market status). A Feed carries one of `ltpc`,
 * `fullFeed` (`marketFF` for tradables, `indexFF` for indices) or `firstLevelWithGreeks`.
 *
 * Prices are IEEE doubles on the wire, already in rupees: no scaling. proto3 has no presence, so
 * an absent field and an explicit zero are the same thing; both are left undefined here
 * (missing is not zero), and a zero or missing LTP is NaN. Quantities, volumes and times that
 * come out negative or non-finite (garbage) are left out too.
 */
import type { BrokerTick, DepthLevel } from '../broker.js';
import { type MessageSpec, type ProtoMessage, type ProtoValue, decodeMessage } from './protobuf.js';

// ---- the schema (MarketDataFeedV3.proto, package com.upstox.marketdatafeederv3udapi.rpc.proto)

const LTPC: MessageSpec = {
  name: 'LTPC',
  fields: { 1: { name: 'ltp', type: 'double' }, 2: { name: 'ltt', type: 'int64' }, 3: { name: 'ltq', type: 'int64' }, 4: { name: 'cp', type: 'double' } },
};
const QUOTE: MessageSpec = {
  name: 'Quote',
  fields: { 1: { name: 'bidQ', type: 'int64' }, 2: { name: 'bidP', type: 'double' }, 3: { name: 'askQ', type: 'int64' }, 4: { name: 'askP', type: 'double' } },
};
const MARKET_LEVEL: MessageSpec = { name: 'MarketLevel', fields: { 1: { name: 'bidAskQuote', type: QUOTE, repeated: true } } };
const OPTION_GREEKS: MessageSpec = {
  name: 'OptionGreeks',
  fields: {
    1: { name: 'delta', type: 'double' }, 2: { name: 'theta', type: 'double' }, 3: { name: 'gamma', type: 'double' },
    4: { name: 'vega', type: 'double' }, 5: { name: 'rho', type: 'double' },
  },
};
const OHLC: MessageSpec = {
  name: 'OHLC',
  fields: {
    1: { name: 'interval', type: 'string' }, 2: { name: 'open', type: 'double' }, 3: { name: 'high', type: 'double' },
    4: { name: 'low', type: 'double' }, 5: { name: 'close', type: 'double' }, 6: { name: 'vol', type: 'int64' }, 7: { name: 'ts', type: 'int64' },
  },
};
const MARKET_OHLC: MessageSpec = { name: 'MarketOHLC', fields: { 1: { name: 'ohlc', type: OHLC, repeated: true } } };
const MARKET_FULL_FEED: MessageSpec = {
  name: 'MarketFullFeed',
  fields: {
    1: { name: 'ltpc', type: LTPC }, 2: { name: 'marketLevel', type: MARKET_LEVEL }, 3: { name: 'optionGreeks', type: OPTION_GREEKS },
    4: { name: 'marketOHLC', type: MARKET_OHLC }, 5: { name: 'atp', type: 'double' }, 6: { name: 'vtt', type: 'int64' },
    7: { name: 'oi', type: 'double' }, 8: { name: 'iv', type: 'double' }, 9: { name: 'tbq', type: 'double' }, 10: { name: 'tsq', type: 'double' },
  },
};
const INDEX_FULL_FEED: MessageSpec = { name: 'IndexFullFeed', fields: { 1: { name: 'ltpc', type: LTPC }, 2: { name: 'marketOHLC', type: MARKET_OHLC } } };
const FULL_FEED: MessageSpec = {
  name: 'FullFeed',
  fields: { 1: { name: 'marketFF', type: MARKET_FULL_FEED, oneof: 'FullFeedUnion' }, 2: { name: 'indexFF', type: INDEX_FULL_FEED, oneof: 'FullFeedUnion' } },
};
const FIRST_LEVEL_WITH_GREEKS: MessageSpec = {
  name: 'FirstLevelWithGreeks',
  fields: {
    1: { name: 'ltpc', type: LTPC }, 2: { name: 'firstDepth', type: QUOTE }, 3: { name: 'optionGreeks', type: OPTION_GREEKS },
    4: { name: 'vtt', type: 'int64' }, 5: { name: 'oi', type: 'double' }, 6: { name: 'iv', type: 'double' },
  },
};
const FEED: MessageSpec = {
  name: 'Feed',
  fields: {
    1: { name: 'ltpc', type: LTPC, oneof: 'FeedUnion' },
    2: { name: 'fullFeed', type: FULL_FEED, oneof: 'FeedUnion' },
    3: { name: 'firstLevelWithGreeks', type: FIRST_LEVEL_WITH_GREEKS, oneof: 'FeedUnion' },
    4: { name: 'requestMode', type: 'enum' },
  },
};
const MARKET_INFO: MessageSpec = { name: 'MarketInfo', fields: { 1: { name: 'segmentStatus', type: 'enum', map: true } } };
export const FEED_RESPONSE: MessageSpec = {
  name: 'FeedResponse',
  fields: {
    1: { name: 'type', type: 'enum' },
    2: { name: 'feeds', type: FEED, map: true },
    3: { name: 'currentTs', type: 'int64' },
    4: { name: 'marketInfo', type: MARKET_INFO },
  },
};

export const UPSTOX_MESSAGE_TYPES = ['initial_feed', 'live_feed', 'market_info'] as const;
export const UPSTOX_REQUEST_MODES = ['ltpc', 'full_d5', 'option_greeks', 'full_d30'] as const;
export const UPSTOX_MARKET_STATUSES = ['PRE_OPEN_START', 'PRE_OPEN_END', 'NORMAL_OPEN', 'NORMAL_CLOSE', 'CLOSING_START', 'CLOSING_END'] as const;

/** An enum value by name, or its number when this schema does not know it (proto3 keeps those). */
export type UpstoxMessageType = (typeof UPSTOX_MESSAGE_TYPES)[number] | number;
export type UpstoxRequestMode = (typeof UPSTOX_REQUEST_MODES)[number] | number;
export type UpstoxMarketStatus = (typeof UPSTOX_MARKET_STATUSES)[number] | number;

/** Levels kept per side: full_d30 sends 30. */
export const UPSTOX_MAX_DEPTH = 30;
/** Candles kept per instrument (Upstox sends 1d, I1, I30). */
const MAX_CANDLES = 8;
/** Nesting depth accepted: the schema's deepest path is 7 messages. */
const MAX_NESTING = 12;

export interface UpstoxGreeks {
  delta?: number;
  theta?: number;
  gamma?: number;
  vega?: number;
  rho?: number;
}

export interface UpstoxCandle {
  /** `1d`, `I1` (one minute), `I30`… as Upstox names them. */
  interval: string;
  open?: number;
  high?: number;
  low?: number;
  close?: number;
  volume?: number;
  /** Candle start, epoch ms. */
  ts?: number;
}

export interface UpstoxTick {
  /** The instrument key (`NSE_EQ|INE002A01018`), also `tick.token`. */
  key: string;
  tick: BrokerTick;
  /** The mode Upstox says it sent (Feed.requestMode; `ltpc` is also what an absent one means). */
  requestMode: UpstoxRequestMode;
  greeks?: UpstoxGreeks;
  /** Implied volatility. */
  iv?: number;
  candles?: UpstoxCandle[];
}

export type UpstoxDecoded =
  | {
      kind: 'feed';
      type: UpstoxMessageType;
      /** Upstox's time for the message, epoch ms. */
      currentTs?: number;
      ticks: UpstoxTick[];
      /** Feeds that could not become ticks (a bad key, no data), one reason each. */
      skipped: string[];
      /** Segment market status, from a market_info message. */
      marketStatus?: { segment: string; status: UpstoxMarketStatus }[];
    }
  | { kind: 'invalid'; reason: string };

/** Decodes one binary frame of the v3 feed. */
export function decodeUpstoxFeed(frame: Uint8Array): UpstoxDecoded {
  const result = decodeMessage(frame, FEED_RESPONSE, { maxDepth: MAX_NESTING });
  if (!result.ok) return { kind: 'invalid', reason: result.reason };
  const response = result.message;

  const decoded: Extract<UpstoxDecoded, { kind: 'feed' }> = {
    kind: 'feed',
    type: enumName(UPSTOX_MESSAGE_TYPES, response.type),
    ticks: [],
    skipped: [],
  };
  const currentTs = time(response.currentTs);
  if (currentTs !== undefined) decoded.currentTs = currentTs;

  const info = response.marketInfo;
  if (isMessage(info)) {
    const status = info.segmentStatus;
    decoded.marketStatus = [];
    if (status instanceof Map) {
      for (const [segment, value] of status) decoded.marketStatus.push({ segment, status: enumName(UPSTOX_MARKET_STATUSES, value) });
    }
  }

  const feeds = response.feeds;
  if (feeds instanceof Map) {
    for (const [key, feed] of feeds) {
      const tick = isMessage(feed) ? feedTick(key, feed, currentTs) : undefined;
      if (typeof tick === 'string') decoded.skipped.push(tick);
      else if (tick) decoded.ticks.push(tick);
    }
  }
  return decoded;
}

/** The segment of an instrument key (`NSE_EQ` of `NSE_EQ|INE002A01018`), or undefined if malformed. */
export function upstoxSegment(key: string): string | undefined {
  const bar = key.indexOf('|');
  if (bar <= 0 || bar === key.length - 1) return undefined;
  const segment = key.slice(0, bar);
  return /^[A-Z][A-Z0-9_]*$/.test(segment) ? segment : undefined;
}

function feedTick(key: string, feed: ProtoMessage, currentTs: number | undefined): UpstoxTick | string {
  const shown = key.length > 48 ? JSON.stringify(key.slice(0, 48)) + '…' : JSON.stringify(key);
  const segment = upstoxSegment(key);
  if (segment === undefined) return `instrument key ${shown} is not SEGMENT|TOKEN`;
  const requestMode = enumName(UPSTOX_REQUEST_MODES, feed.requestMode);

  const tick: BrokerTick = {
    broker: 'upstox',
    token: key,
    exchange: segment,
    mode: 'ltp',
    isIndex: segment.endsWith('_INDEX'),
    ltp: Number.NaN,
  };
  if (currentTs !== undefined) tick.exchangeTimestamp = currentTs;
  const out: UpstoxTick = { key, tick, requestMode };

  const { ltpc, fullFeed, firstLevelWithGreeks } = feed;
  if (isMessage(ltpc)) {
    applyLtpc(tick, ltpc);
    return out;
  }
  if (isMessage(fullFeed)) {
    tick.mode = 'full';
    const market = fullFeed.marketFF;
    const index = fullFeed.indexFF;
    if (isMessage(index)) {
      tick.isIndex = true;
      if (isMessage(index.ltpc)) applyLtpc(tick, index.ltpc);
      applyCandles(out, index.marketOHLC);
      return out;
    }
    if (!isMessage(market)) return `feed for ${shown} has an empty fullFeed`;
    if (isMessage(market.ltpc)) applyLtpc(tick, market.ltpc);
    setPrice(tick, 'averagePrice', market.atp);
    setCount(tick, 'volume', market.vtt);
    setCount(tick, 'oi', market.oi);
    setCount(tick, 'totalBuyQuantity', market.tbq);
    setCount(tick, 'totalSellQuantity', market.tsq);
    if (isMessage(market.marketLevel) && Array.isArray(market.marketLevel.bidAskQuote)) {
      tick.depth = depth(market.marketLevel.bidAskQuote);
    }
    if (isMessage(market.optionGreeks)) out.greeks = greeks(market.optionGreeks);
    const iv = finite(market.iv);
    if (iv !== undefined) out.iv = iv;
    applyCandles(out, market.marketOHLC);
    return out;
  }
  if (isMessage(firstLevelWithGreeks)) {
    tick.mode = 'quote';
    const first = firstLevelWithGreeks;
    if (isMessage(first.ltpc)) applyLtpc(tick, first.ltpc);
    setCount(tick, 'volume', first.vtt);
    setCount(tick, 'oi', first.oi);
    if (isMessage(first.firstDepth)) tick.depth = depth([first.firstDepth]);
    if (isMessage(first.optionGreeks)) out.greeks = greeks(first.optionGreeks);
    const iv = finite(first.iv);
    if (iv !== undefined) out.iv = iv;
    return out;
  }
  return `feed for ${shown} carries no data`;
}

function applyLtpc(tick: BrokerTick, ltpc: ProtoMessage): void {
  const ltp = finite(ltpc.ltp);
  if (ltp !== undefined) tick.ltp = ltp;
  const ltt = time(ltpc.ltt);
  if (ltt !== undefined) tick.lastTradeTime = ltt;
  setCount(tick, 'lastQuantity', ltpc.ltq);
  setPrice(tick, 'close', ltpc.cp);
}

/** Level i of `bidAskQuote` is the i-th bid and the i-th ask; an empty side of a level is left out. */
function depth(quotes: ProtoValue[]): { buy: DepthLevel[]; sell: DepthLevel[] } {
  const buy: DepthLevel[] = [];
  const sell: DepthLevel[] = [];
  for (const quote of quotes) {
    if (buy.length >= UPSTOX_MAX_DEPTH && sell.length >= UPSTOX_MAX_DEPTH) break;
    if (!isMessage(quote)) continue;
    const bid = level(quote.bidP, quote.bidQ);
    if (bid && buy.length < UPSTOX_MAX_DEPTH) buy.push(bid);
    const ask = level(quote.askP, quote.askQ);
    if (ask && sell.length < UPSTOX_MAX_DEPTH) sell.push(ask);
  }
  return { buy, sell };
}

function level(priceValue: ProtoValue | undefined, quantityValue: ProtoValue | undefined): DepthLevel | undefined {
  const price = finite(priceValue);
  const quantity = count(quantityValue);
  if (price === undefined && quantity === undefined) return undefined;
  return { price: price ?? 0, quantity: quantity ?? 0, orders: null };
}

function greeks(message: ProtoMessage): UpstoxGreeks {
  const out: UpstoxGreeks = {};
  for (const name of ['delta', 'theta', 'gamma', 'vega', 'rho'] as const) {
    const value = finite(message[name]);
    if (value !== undefined) out[name] = value;
  }
  return out;
}

/** Day open/high/low from the `1d` candle; every named candle kept for whoever wants them. */
function applyCandles(out: UpstoxTick, marketOHLC: ProtoValue | undefined): void {
  if (!isMessage(marketOHLC) || !Array.isArray(marketOHLC.ohlc)) return;
  const candles: UpstoxCandle[] = [];
  for (const item of marketOHLC.ohlc) {
    if (candles.length >= MAX_CANDLES) break;
    if (!isMessage(item) || typeof item.interval !== 'string' || item.interval === '') continue;
    const candle: UpstoxCandle = { interval: item.interval.slice(0, 16) };
    for (const name of ['open', 'high', 'low', 'close'] as const) {
      const value = finite(item[name]);
      if (value !== undefined) candle[name] = value;
    }
    const volume = count(item.vol);
    if (volume !== undefined) candle.volume = volume;
    const ts = time(item.ts);
    if (ts !== undefined) candle.ts = ts;
    candles.push(candle);
  }
  if (candles.length === 0) return;
  out.candles = candles;
  const day = candles.find((c) => c.interval === '1d');
  if (day) {
    if (day.open !== undefined) out.tick.open = day.open;
    if (day.high !== undefined) out.tick.high = day.high;
    if (day.low !== undefined) out.tick.low = day.low;
  }
}

type PriceField = 'averagePrice' | 'close';
type CountField = 'volume' | 'oi' | 'totalBuyQuantity' | 'totalSellQuantity' | 'lastQuantity';

function setPrice(tick: BrokerTick, field: PriceField, value: ProtoValue | undefined): void {
  const price = finite(value);
  if (price !== undefined) tick[field] = price;
}

function setCount(tick: BrokerTick, field: CountField, value: ProtoValue | undefined): void {
  const n = count(value);
  if (n !== undefined) tick[field] = n;
}

/** A finite, non-zero number (zero is proto3's "absent"). */
function finite(value: ProtoValue | undefined): number | undefined {
  return typeof value === 'number' && Number.isFinite(value) && value !== 0 ? value : undefined;
}

/** A positive whole count (quantities arrive as int64 or, for totals and OI, as doubles). */
function count(value: ProtoValue | undefined): number | undefined {
  return typeof value === 'number' && Number.isFinite(value) && value > 0 ? Math.trunc(value) : undefined;
}

/** A positive epoch-ms time. */
function time(value: ProtoValue | undefined): number | undefined {
  return typeof value === 'number' && Number.isSafeInteger(value) && value > 0 ? value : undefined;
}

function enumName<T extends string>(names: readonly T[], value: ProtoValue | undefined): T | number {
  const n = typeof value === 'number' ? value : 0;
  return names[n] ?? n;
}

function isMessage(value: ProtoValue | undefined): value is ProtoMessage {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !(value instanceof Map) && !(value instanceof Uint8Array);
}
