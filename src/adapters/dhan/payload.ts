/**
 * The JSON `data` payload OpenAlgo's Dhan adapter publishes for a tick
 * (`broker/dhan/streaming/dhan_adapter.py`, `_normalize_5depth_data` and `_on_data_20depth`),
 * written as text directly. Pure.
 *
 * Key sets by topic mode (every key always present, 0 / 0.0 when the tick lacks it, as OpenAlgo
 * does with `data.get(key, 0)`):
 *   1 LTP     symbol, exchange, mode:1, ltp, ltt, timestamp
 *   2 QUOTE   + volume, open, high, low, close, last_quantity, average_price,
 *               total_buy_quantity, total_sell_quantity, change, change_percent
 *   3 DEPTH   the QUOTE keys with mode:3, + oi, oi_high, oi_low, depth:{buy:[5], sell:[5]} of
 *               {price, quantity, orders} padded with zero levels to five, depth_level:5
 *   3 DEPTH-20 (a `depth20` tick, asked for with `SYMBOL:20`): symbol, exchange, mode:3,
 *               timestamp, depth:{buy:[20], sell:[20]} padded to twenty, depth_level:20 — and
 *               ltp/ltt only when the tick has an LTP (the depth feed sends none).
 *
 * Differences from OpenAlgo, all additive or fixes a client cannot be hurt by:
 * - Prices are the exchange's decimal prices (2950.55), not float32 widened to double
 *   (2950.550048828125).
 * - `ltt` is epoch milliseconds of the real instant, as for every tickcast broker; OpenAlgo
 *   passes on Dhan's LTT, epoch seconds of the IST wall clock (5 h 30 min ahead). A packet
 *   without one gets the receive time.
 * - DEPTH also carries last_quantity, average_price and the buy/sell totals (OpenAlgo dropped
 *   them from full packets though they are there), so a Quote subscriber handed a DEPTH tick by
 *   mode fan-out still finds all its keys; QUOTE and DEPTH add change and change_percent
 *   (LTP − previous close, 2 dp), which the SDK and the UI read.
 * - Empty depth levels are padded after the real ones instead of appearing wherever the wire had
 *   them.
 *
 * Prices are written so Python's json sees floats (`1418.0`, `2950.55`), never ints.
 */
import type { BrokerTick, DepthLevel } from '../broker.js';
import type { Mode } from '../../protocol/modes.js';
import { price, priceChange } from '../angel/payload.js';

export { price, priceChange };

export function dhanPayload(tick: BrokerTick, symbol: string, exchange: string, mode: Mode, nowMs: number): string {
  const timestamp = Math.floor(nowMs);
  const head = '{"symbol":' + JSON.stringify(symbol) + ',"exchange":' + JSON.stringify(exchange) + ',"mode":' + mode;
  const ltt = int(tick.lastTradeTime ?? tick.exchangeTimestamp ?? timestamp);

  if (tick.mode === 'depth20' && mode === 3) {
    const ltp = Number.isFinite(tick.ltp) ? ',"ltp":' + price(tick.ltp) + ',"ltt":' + ltt : '';
    return (
      head + ltp + ',"timestamp":' + timestamp +
      ',"depth":{"buy":' + levels(tick.depth?.buy, 20) + ',"sell":' + levels(tick.depth?.sell, 20) + '},"depth_level":20}'
    );
  }

  let out = head + ',"ltp":' + price(tick.ltp) + ',"ltt":' + ltt + ',"timestamp":' + timestamp;
  if (mode === 1) return out + '}';

  const change = priceChange(tick.ltp, tick.close);
  out +=
    ',"volume":' + int(tick.volume) +
    ',"open":' + price(tick.open) +
    ',"high":' + price(tick.high) +
    ',"low":' + price(tick.low) +
    ',"close":' + price(tick.close) +
    ',"last_quantity":' + int(tick.lastQuantity) +
    ',"average_price":' + price(tick.averagePrice) +
    ',"total_buy_quantity":' + int(tick.totalBuyQuantity) +
    ',"total_sell_quantity":' + int(tick.totalSellQuantity) +
    ',"change":' + change.absolute +
    ',"change_percent":' + change.percent;
  if (mode === 2) return out + '}';

  return (
    out +
    ',"oi":' + int(tick.oi) +
    ',"oi_high":' + int(tick.oiDayHigh) +
    ',"oi_low":' + int(tick.oiDayLow) +
    ',"depth":{"buy":' + levels(tick.depth?.buy, 5) + ',"sell":' + levels(tick.depth?.sell, 5) + '},"depth_level":5}'
  );
}

/** Best first, padded with empty levels to `count` (OpenAlgo always sends that many per side). */
function levels(side: readonly DepthLevel[] | undefined, count: number): string {
  const parts: string[] = [];
  for (let i = 0; i < count; i++) {
    const level = side?.[i];
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
