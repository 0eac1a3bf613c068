/**
 * The latest value of every stream the client holds, and OpenAlgo's SDK views of it:
 * `getLtp()`, `getQuotes()`, `getDepth()` return the same nested shapes as the Python SDK's
 * `get_ltp()`, `get_quotes()`, `get_depth()` (`{ ltp: { NSE: { RELIANCE: {…} } } }`), including
 * its zero defaults and the depth book padded to five levels. Pure; the clock is injected.
 *
 * What feeds each view: every tick with a numeric `ltp` updates the LTP view; ticks tagged
 * Quote or Depth update the quote view; ticks tagged Depth that carry a book update the depth
 * view. (OpenAlgo's SDK fills each view only from ticks tagged with exactly that mode, so a
 * client holding LTP and Quote for a stream never saw its LTP view move.) Quote entries fall back
 * to `last_quantity` and `average_price`, the names Zerodha's adapter and the simulator use, where
 * OpenAlgo's SDK reports 0.
 */
import type { BookLevel, DepthEntry, DepthSnapshot, LtpSnapshot, Mode, QuoteEntry, QuoteSnapshot } from './types.js';

interface Entry {
  exchange: string;
  symbol: string;
  ltp?: { timestamp: number; ltp: number };
  quote?: QuoteEntry;
  depth?: DepthEntry;
}

const BOOK_LEVELS = 5;

function num(value: unknown): number {
  return typeof value === 'number' && Number.isFinite(value) ? value : 0;
}

function book(levels: unknown): Record<string, BookLevel> {
  const result: Record<string, BookLevel> = {};
  const list = Array.isArray(levels) ? levels : [];
  list.forEach((level: unknown, i) => {
    const l = level !== null && typeof level === 'object' ? (level as Record<string, unknown>) : {};
    result[String(i + 1)] = { price: num(l.price), qty: Math.trunc(num(l.quantity)), orders: Math.trunc(num(l.orders)) };
  });
  for (let i = list.length; i < BOOK_LEVELS; i++) result[String(i + 1)] = { price: 0, qty: 0, orders: 0 };
  return result;
}

export class LatestValues {
  private readonly entries = new Map<string, Entry>();

  constructor(private readonly now: () => number) {}

  /** Records a market_data message for `key` (`EXCHANGE:SYMBOL`) tagged `mode`. */
  update(key: string, exchange: string, symbol: string, mode: Mode, data: Record<string, unknown>): void {
    let entry = this.entries.get(key);
    if (!entry) {
      entry = { exchange, symbol };
      this.entries.set(key, entry);
    }
    const timestamp = typeof data.timestamp === 'number' ? data.timestamp : this.now();
    if (typeof data.ltp === 'number') entry.ltp = { timestamp, ltp: data.ltp };
    if (mode >= 2) {
      entry.quote = {
        timestamp,
        open: num(data.open),
        high: num(data.high),
        low: num(data.low),
        close: num(data.close),
        ltp: num(data.ltp),
        volume: num(data.volume),
        last_trade_quantity: num(data.last_trade_quantity ?? data.last_quantity),
        avg_trade_price: num(data.avg_trade_price ?? data.average_price),
        change: num(data.change),
        change_percent: num(data.change_percent),
      };
    }
    if (mode === 3 && data.depth !== null && typeof data.depth === 'object') {
      const depth = data.depth as Record<string, unknown>;
      entry.depth = { timestamp, ltp: num(data.ltp), buyBook: book(depth.buy), sellBook: book(depth.sell) };
    }
  }

  /** Drops a stream the client no longer holds. */
  forget(key: string): void {
    this.entries.delete(key);
  }

  clear(): void {
    this.entries.clear();
  }

  getLtp(exchange?: string, symbol?: string): LtpSnapshot {
    return { ltp: this.view(exchange, symbol, (e) => (e.ltp ? { ...e.ltp } : undefined)) };
  }

  getQuotes(exchange?: string, symbol?: string): QuoteSnapshot {
    return { quote: this.view(exchange, symbol, (e) => (e.quote ? { ...e.quote } : undefined)) };
  }

  getDepth(exchange?: string, symbol?: string): DepthSnapshot {
    return {
      depth: this.view(exchange, symbol, (e) =>
        e.depth ? { ...e.depth, buyBook: copyBook(e.depth.buyBook), sellBook: copyBook(e.depth.sellBook) } : undefined,
      ),
    };
  }

  /** Nested `{ EXCHANGE: { SYMBOL: value } }`, filtered as OpenAlgo's SDK filters. Copies, so callers cannot change the cache. */
  private view<T>(exchange: string | undefined, symbol: string | undefined, pick: (entry: Entry) => T | undefined): Record<string, Record<string, T>> {
    const result: Record<string, Record<string, T>> = {};
    for (const entry of this.entries.values()) {
      if (exchange && entry.exchange !== exchange) continue;
      if (symbol && entry.symbol !== symbol) continue;
      const value = pick(entry);
      if (value === undefined) continue;
      (result[entry.exchange] ??= {})[entry.symbol] = value;
    }
    return result;
  }
}

function copyBook(levels: Record<string, BookLevel>): Record<string, BookLevel> {
  const copy: Record<string, BookLevel> = {};
  for (const [level, value] of Object.entries(levels)) copy[level] = { ...value };
  return copy;
}
