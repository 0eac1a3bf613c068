/**
 * The JSON `data` payload OpenAlgo's Angel adapter publishes for a tick (protocol spec §2.10),
 * written as text directly. Pure.
 *
 * Differences from OpenAlgo, all additive or fixes a client cannot be hurt by:
 * - DEPTH carries the real day OHLC and previous close (OpenAlgo bug 22 always sent 0).
 * - QUOTE and DEPTH add `change` and `change_percent` (LTP − previous close, 2 dp), which the
 *   SDK and the UI read and neither OpenAlgo adapter supplied.
 * - QUOTE and DEPTH both carry `last_trade_quantity` (the QUOTE name the SDK reads) and
 *   `last_quantity` (the DEPTH and Zerodha name), and DEPTH also carries every QUOTE key, so a
 *   Quote subscriber handed a DEPTH tick by mode fan-out still finds all its fields.
 *
 * Prices are written so Python's json sees floats (`1418.0`, `2950.55`), never ints; fields the
 * tick lacks are written as 0 / 0.0, as OpenAlgo does.
 */
import type { BrokerTick, DepthLevel } from '../broker.js';
import type { Mode } from '../../protocol/modes.js';

const DEPTH_LEVELS = 5;
/** Prices go to integer units of 1e-7 for the change arithmetic (covers paise and CDS 1e7). */
const UNITS_PER_RUPEE = 1e7;

export function angelPayload(tick: BrokerTick, symbol: string, exchange: string, mode: Mode, nowMs: number): string {
  let out =
    '{"symbol":' + JSON.stringify(symbol) +
    ',"exchange":' + JSON.stringify(exchange) +
    ',"mode":' + mode +
    ',"ltp":' + price(tick.ltp) +
    // OpenAlgo's ltt is the exchange timestamp (ms); a packet without one gets the receive time.
    ',"ltt":' + int(tick.exchangeTimestamp ?? nowMs) +
    ',"timestamp":' + int(nowMs);
  if (mode === 1) return out + '}';

  const change = priceChange(tick.ltp, tick.close);
  out +=
    ',"volume":' + int(tick.volume) +
    ',"open":' + price(tick.open) +
    ',"high":' + price(tick.high) +
    ',"low":' + price(tick.low) +
    ',"close":' + price(tick.close) +
    ',"last_trade_quantity":' + int(tick.lastQuantity) +
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
    ',"upper_circuit":' + price(tick.upperCircuit) +
    ',"lower_circuit":' + price(tick.lowerCircuit) +
    ',"depth":{"buy":' + levels(tick.depth?.buy) + ',"sell":' + levels(tick.depth?.sell) + '}}'
  );
}

/** Best first, padded with empty levels to five (OpenAlgo always sends five per side). */
function levels(side: readonly DepthLevel[] | undefined): string {
  const parts: string[] = [];
  for (let i = 0; i < DEPTH_LEVELS; i++) {
    const level = side?.[i];
    parts.push(
      level
        ? '{"price":' + price(level.price) + ',"quantity":' + int(level.quantity) + ',"orders":' + int(level.orders ?? 0) + '}'
        : '{"price":0.0,"quantity":0,"orders":0}',
    );
  }
  return '[' + parts.join(',') + ']';
}

/** A JSON number Python reads as a float: `1418.0`, `2950.55`, `83.4525`. */
export function price(value: number | undefined): string {
  if (value === undefined || !Number.isFinite(value)) return '0.0';
  const text = String(value);
  return /[.eE]/.test(text) ? text : text + '.0';
}

function int(value: number | undefined): string {
  if (value === undefined || !Number.isFinite(value)) return '0';
  return String(Math.trunc(value));
}

/**
 * LTP − previous close, and that as a percentage of the close, both to 2 dp (half away from
 * zero). The difference is taken on integer units so 2950.55 − 2921.15 is exactly 29.40.
 */
export function priceChange(ltp: number, close: number | undefined): { absolute: string; percent: string } {
  if (close === undefined || close === 0 || !Number.isFinite(close) || !Number.isFinite(ltp)) {
    return { absolute: '0.00', percent: '0.00' };
  }
  const closeUnits = Math.round(close * UNITS_PER_RUPEE);
  const diffUnits = Math.round(ltp * UNITS_PER_RUPEE) - closeUnits;
  return {
    absolute: fixed2(diffUnits / (UNITS_PER_RUPEE / 100)),
    percent: fixed2((diffUnits * 100 * 100) / closeUnits),
  };
}

/** `hundredths` rounded half away from zero, written with exactly two decimals. */
function fixed2(hundredths: number): string {
  const rounded = Math.sign(hundredths) * Math.round(Math.abs(hundredths));
  return (rounded / 100).toFixed(2);
}
