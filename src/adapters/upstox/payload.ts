/**
 * The JSON `data` payload OpenAlgo's Upstox adapter publishes for a tick
 * (broker/upstox/streaming/upstox_adapter.py, `_extract_ltp_data` / `_extract_quote_data` /
 * `_extract_depth_data`), written as text directly. Pure.
 *
 * OpenAlgo's keys, by topic mode:
 *   1 LTP    symbol, exchange, token, ltp, ltq, ltt, cp
 *   2 QUOTE  symbol, exchange, token, open, high, low, close, ltp, last_trade_quantity, volume,
 *            average_price, total_buy_quantity, total_sell_quantity, timestamp
 *   3 DEPTH  symbol, exchange, token, ltp, timestamp, depth:{buy:[5], sell:[5], timestamp} of
 *            {price, quantity, orders:0}, bids best first, asks best first, padded to five
 *
 * Differences, all additive or fixes a client cannot be hurt by:
 * - every payload has `mode` (1/2/3) and `timestamp`, as the other brokers' payloads do;
 * - QUOTE `close` is the previous close (`cp`), as for every other broker; OpenAlgo sent the
 *   day candle's close, which is the current price, so change and change % read as zero;
 * - QUOTE `timestamp` is the message time (`currentTs`); OpenAlgo sent the day candle's start;
 * - QUOTE and DEPTH add `last_quantity`, `oi`, `change`, `change_percent`, and DEPTH carries
 *   every QUOTE key (OpenAlgo's DEPTH had only ltp and the book), so a Quote subscriber handed a
 *   DEPTH tick still finds its fields;
 * - LTP keeps `ltq` and `cp`, QUOTE and DEPTH add them too.
 *
 * Prices are written so Python's json sees floats (`2950.0`); fields the tick lacks are 0 / 0.0,
 * as OpenAlgo writes them. Depth is five levels per side even for full_d30 ticks.
 */
import type { BrokerTick, DepthLevel } from '../broker.js';
import type { Mode } from '../../protocol/modes.js';
import { price, priceChange } from '../angel/payload.js';

const DEPTH_LEVELS = 5;

export function upstoxPayload(tick: BrokerTick, symbol: string, exchange: string, mode: Mode, nowMs: number): string {
  const timestamp = int(tick.exchangeTimestamp ?? nowMs);
  let out =
    '{"symbol":' + JSON.stringify(symbol) +
    ',"exchange":' + JSON.stringify(exchange) +
    ',"token":' + JSON.stringify(tick.token) +
    ',"mode":' + mode +
    ',"ltp":' + price(tick.ltp) +
    ',"ltq":' + int(tick.lastQuantity) +
    ',"ltt":' + int(tick.lastTradeTime ?? tick.exchangeTimestamp ?? nowMs) +
    ',"cp":' + price(tick.close) +
    ',"timestamp":' + timestamp;
  if (mode === 1) return out + '}';

  const change = priceChange(tick.ltp, tick.close);
  out +=
    ',"open":' + price(tick.open) +
    ',"high":' + price(tick.high) +
    ',"low":' + price(tick.low) +
    ',"close":' + price(tick.close) +
    ',"last_trade_quantity":' + int(tick.lastQuantity) +
    ',"last_quantity":' + int(tick.lastQuantity) +
    ',"volume":' + int(tick.volume) +
    ',"average_price":' + price(tick.averagePrice) +
    ',"total_buy_quantity":' + int(tick.totalBuyQuantity) +
    ',"total_sell_quantity":' + int(tick.totalSellQuantity) +
    ',"oi":' + int(tick.oi) +
    ',"change":' + change.absolute +
    ',"change_percent":' + change.percent;
  if (mode === 2) return out + '}';

  return (
    out +
    ',"depth":{"buy":' + levels(tick.depth?.buy, (a, b) => b - a) +
    ',"sell":' + levels(tick.depth?.sell, (a, b) => a - b) +
    ',"timestamp":' + timestamp + '}}'
  );
}

/**
 * Five levels, best first (OpenAlgo sorts bids down and asks up, drops levels without a positive
 * price, and pads with zero levels); Upstox gives no order counts, so `orders` is 0.
 */
function levels(side: readonly DepthLevel[] | undefined, order: (a: number, b: number) => number): string {
  const kept = (side ?? []).filter((level) => Number.isFinite(level.price) && level.price > 0);
  kept.sort((a, b) => order(a.price, b.price));
  const parts: string[] = [];
  for (let i = 0; i < DEPTH_LEVELS; i++) {
    const level = kept[i];
    parts.push(
      level
        ? '{"price":' + price(level.price) + ',"quantity":' + int(level.quantity) + ',"orders":' + int(level.orders ?? 0) + '}'
        : '{"price":0.0,"quantity":0,"orders":0}',
    );
  }
  return '[' + parts.join(',') + ']';
}

function int(value: number | undefined): string {
  if (value === undefined || !Number.isFinite(value)) return '0';
  return String(Math.trunc(value));
}
