/**
 * The `data` payload OpenAlgo's Zerodha adapter publishes for a tick (OpenAlgo spec §2.10), as
 * JSON text, with that adapter's bugs fixed (§8 #20): OI from its real offset, CDS/BCD prices
 * at their own scale, `ltt` always epoch ms, index OHLC filled in. Pure.
 *
 * Key sets by topic mode (keys whose value the packet does not carry are left out — missing is
 * not zero — except `ltt`, which OpenAlgo always sends and stamps with local time when Kite
 * gives none):
 *   1 LTP    symbol, exchange, mode:"ltp", ltp, ltt, timestamp
 *   2 QUOTE  + volume, last_quantity, average_price, total_buy_quantity, total_sell_quantity,
 *            open, high, low, close, oi + open_interest (full packets only), change,
 *            change_percent, exchange_timestamp (full packets only); mode:"quote"
 *   3 DEPTH  the quote keys with mode:"full", plus depth:{buy:[5], sell:[5]} of
 *            {price, quantity, orders}, padded with zero levels to five as OpenAlgo does
 *   indices (mode 2/3): symbol, exchange, mode, ltp, ltt, timestamp, open, high, low, close,
 *            change, change_percent, price_change, price_change_percent (OpenAlgo's index keys,
 *            always 0 there; here the same values as change/change_percent),
 *            exchange_timestamp (full only). No volume and no depth: Kite sends none for indices.
 *
 * `change` = ltp − previous close and `change_percent` = change·100 / previous close, rounded
 * to 2 places (wire-formats §3.1), computed in whole price units so no float error shows up;
 * both are left out when the close is missing or 0. The OpenAlgo SDK and UI read them.
 *
 * Prices are written so Python's json sees floats: `1418.0`, never `1418`.
 */
import type { BrokerTick, DepthLevel } from '../broker.js';
import { priceDecimals } from './decoder.js';

export type PayloadMode = 1 | 2 | 3;

const MODE_NAME: Record<PayloadMode, string> = { 1: 'ltp', 2: 'quote', 3: 'full' };
const DEPTH_LEVELS = 5;
const EMPTY_LEVEL = '{"price":0.0,"quantity":0,"orders":0}';

export function kitePayload(tick: BrokerTick, symbol: string, exchange: string, mode: PayloadMode, nowMs: number): string {
  const timestamp = Math.floor(nowMs);
  const ltt = tick.lastTradeTime ?? tick.exchangeTimestamp ?? timestamp;
  let out =
    '{"symbol":' + JSON.stringify(symbol) +
    ',"exchange":' + JSON.stringify(exchange) +
    ',"mode":"' + MODE_NAME[mode] +
    '","ltp":' + pyFloat(tick.ltp) +
    ',"ltt":' + ltt +
    ',"timestamp":' + timestamp;
  if (mode === 1) return out + '}';

  if (!tick.isIndex) {
    out +=
      intField('volume', tick.volume) +
      intField('last_quantity', tick.lastQuantity) +
      priceField('average_price', tick.averagePrice) +
      intField('total_buy_quantity', tick.totalBuyQuantity) +
      intField('total_sell_quantity', tick.totalSellQuantity);
  }
  out +=
    priceField('open', tick.open) +
    priceField('high', tick.high) +
    priceField('low', tick.low) +
    priceField('close', tick.close);
  if (!tick.isIndex && tick.oi !== undefined) {
    out += intField('oi', tick.oi) + intField('open_interest', tick.oi);
  }
  const change = changeOf(tick);
  if (change) {
    out += ',"change":' + change.change + ',"change_percent":' + change.percent;
    if (tick.isIndex) out += ',"price_change":' + change.change + ',"price_change_percent":' + change.percent;
  }
  out += intField('exchange_timestamp', tick.exchangeTimestamp);
  if (mode === 3 && !tick.isIndex) {
    out += ',"depth":{"buy":' + depthSide(tick.depth?.buy) + ',"sell":' + depthSide(tick.depth?.sell) + '}';
  }
  return out + '}';
}

/**
 * A number as Python's json writes a float: integral values keep a `.0`, others use the
 * shortest repr that round-trips (JS and Python agree on it in the range prices live in).
 */
export function pyFloat(value: number): string {
  if (!Number.isFinite(value)) return 'null';
  const text = String(value);
  return Number.isInteger(value) && !text.includes('e') ? text + '.0' : text;
}

function priceField(key: string, value: number | undefined): string {
  return value === undefined ? '' : ',"' + key + '":' + pyFloat(value);
}

function intField(key: string, value: number | undefined): string {
  return value === undefined ? '' : ',"' + key + '":' + value;
}

/** Always five levels: the book as sent, then zero levels, as OpenAlgo's payload has them. */
function depthSide(levels: readonly DepthLevel[] | undefined): string {
  let out = '[';
  for (let i = 0; i < DEPTH_LEVELS; i++) {
    if (i > 0) out += ',';
    const level = levels?.[i];
    out += level
      ? '{"price":' + pyFloat(level.price) + ',"quantity":' + level.quantity + ',"orders":' + (level.orders ?? 0) + '}'
      : EMPTY_LEVEL;
  }
  return out + ']';
}

/** Change and change % as JSON number text, or undefined without a usable previous close. */
function changeOf(tick: BrokerTick): { change: string; percent: string } | undefined {
  if (tick.close === undefined || tick.close === 0) return undefined;
  // Both prices are exact multiples of 10^-decimals, so in those units the arithmetic is exact.
  const decimals = priceDecimals(tick.exchange);
  const unit = 10 ** decimals;
  const ltpUnits = Math.round(tick.ltp * unit);
  const closeUnits = Math.round(tick.close * unit);
  const diff = ltpUnits - closeUnits;
  const hundredths = roundHalfAway((diff * 10_000) / closeUnits);
  return { change: pyFloat(Number(decimal(diff, decimals))), percent: decimal(hundredths, 2) };
}

/** A signed integer count of 10^-places as decimal text: (-5, 2) → "-0.05". */
function decimal(units: number, places: number): string {
  const sign = units < 0 ? '-' : '';
  const digits = String(Math.abs(units)).padStart(places + 1, '0');
  const cut = digits.length - places;
  return sign + digits.slice(0, cut) + '.' + digits.slice(cut);
}

function roundHalfAway(value: number): number {
  return value < 0 ? -Math.round(-value) : Math.round(value);
}
