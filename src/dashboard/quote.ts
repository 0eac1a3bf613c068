/**
 * A watched instrument's latest state, merged from `market_data` payloads (pure). Payload fields
 * differ by mode and by broker (an LTP tick has only `ltp`; Angel sends `close: 0`; depth levels
 * may be zero-padded), so every field is optional and change is derived from the previous close
 * when the payload does not carry it.
 */
import { isNumber } from './format.js';

export interface DepthLevel {
  price: number;
  quantity: number;
  orders?: number;
}

export interface Quote {
  ltp?: number;
  change?: number;
  changePercent?: number;
  volume?: number;
  open?: number;
  high?: number;
  low?: number;
  close?: number;
  averagePrice?: number;
  lastQuantity?: number;
  totalBuyQuantity?: number;
  totalSellQuantity?: number;
  bid?: DepthLevel;
  ask?: DepthLevel;
  depth?: { buy: DepthLevel[]; sell: DepthLevel[] };
  /** The publisher's timestamp (epoch ms), if it sent one. */
  timestamp?: number;
}

function levels(value: unknown): DepthLevel[] | undefined {
  if (!Array.isArray(value)) return undefined;
  const result: DepthLevel[] = [];
  for (const level of value) {
    if (typeof level !== 'object' || level === null) continue;
    const { price, quantity, orders } = level as Record<string, unknown>;
    // Zero-priced levels are padding (Angel sends five whatever the book holds).
    if (!isNumber(price) || price <= 0 || !isNumber(quantity)) continue;
    result.push(isNumber(orders) ? { price, quantity, orders } : { price, quantity });
  }
  return result;
}

/** The previous state updated by one payload. */
export function mergeTick(previous: Quote | undefined, data: Readonly<Record<string, unknown>>): Quote {
  const next: Quote = { ...previous };
  const take = (field: keyof Quote, key: string): void => {
    const value = data[key];
    if (isNumber(value)) (next as Record<string, unknown>)[field] = value;
  };
  take('ltp', 'ltp');
  take('volume', 'volume');
  take('open', 'open');
  take('high', 'high');
  take('low', 'low');
  take('close', 'close');
  take('averagePrice', 'average_price');
  take('lastQuantity', 'last_quantity');
  take('totalBuyQuantity', 'total_buy_quantity');
  take('totalSellQuantity', 'total_sell_quantity');
  take('timestamp', 'timestamp');

  const close = next.close;
  if (isNumber(data.change)) next.change = data.change;
  else if (next.ltp !== undefined && close !== undefined && close > 0) next.change = next.ltp - close;
  if (isNumber(data.change_percent)) next.changePercent = data.change_percent;
  else if (next.ltp !== undefined && close !== undefined && close > 0) next.changePercent = ((next.ltp - close) / close) * 100;

  const depth = data.depth;
  if (typeof depth === 'object' && depth !== null) {
    const buy = levels((depth as Record<string, unknown>).buy) ?? [];
    const sell = levels((depth as Record<string, unknown>).sell) ?? [];
    next.depth = { buy, sell };
    if (buy[0]) next.bid = buy[0];
    else delete next.bid;
    if (sell[0]) next.ask = sell[0];
    else delete next.ask;
  }
  return next;
}

/** Ask minus bid, when both sides are known. */
export function spread(quote: Quote): number | undefined {
  return quote.bid && quote.ask ? quote.ask.price - quote.bid.price : undefined;
}
