/**
 * The JSON `data` payload OpenAlgo's Shoonya and Flattrade adapters publish for a tick
 * (`broker/shoonya/streaming/shoonya_adapter.py`, `broker/flattrade/streaming/flattrade_adapter.py`:
 * their LTP, Quote and Depth normalisers), written as text directly. Pure.
 *
 * Key sets by topic mode (OpenAlgo writes every key, 0 / 0.0 where the feed has no value; so
 * does this):
 *   1 LTP    symbol, exchange, mode, ltp, last_trade_time, <broker>_timestamp, timestamp
 *   2 QUOTE  + volume, open, high, low, close, average_price, percent_change, last_quantity
 *   3 DEPTH  + total_buy_quantity, total_sell_quantity, depth:{buy:[5], sell:[5]} of
 *            {price, quantity, orders}, depth_level:5, upper_circuit, lower_circuit,
 *            52_week_high, 52_week_low, open_interest (Shoonya) or total_traded_value (Flattrade)
 * where <broker>_timestamp is `shoonya_timestamp` or `flattrade_timestamp`: Noren's feed time
 * `ft`, epoch seconds. `last_trade_time` is Noren's `ltt` as OpenAlgo passes it on, the IST time
 * of day "HH:MM:SS" (null when the feed has none).
 *
 * Differences from OpenAlgo, additive or fixes a client cannot be hurt by:
 * - Every mode also carries `ltt` (epoch ms of the last trade, the feed time if none, the receive
 *   time if neither), as the Zerodha and Angel payloads do; Flattrade's LTP gains
 *   `last_trade_time`, as Shoonya's has.
 * - QUOTE and DEPTH add `change` and `change_percent` (LTP − previous close, 2 dp), which the
 *   SDK and the UI read; `percent_change` is the same percentage (OpenAlgo copies Noren's `pc`,
 *   which is that figure).
 * - QUOTE adds `total_buy_quantity` and `total_sell_quantity` (DEPTH has them in OpenAlgo), and
 *   DEPTH adds `oi`.
 * - `open_interest` is the instrument's open interest (`oi`); OpenAlgo's Shoonya adapter sends
 *   `toi`, the total open interest of the underlying. Flattrade's `total_traded_value`, which
 *   OpenAlgo fills with `toi` too, is volume × average price here.
 *
 * Prices are written so Python's json sees floats (`1418.0`), never ints.
 */
import type { BrokerTick, DepthLevel } from '../broker.js';
import type { Mode } from '../../protocol/modes.js';
import { price, priceChange } from '../angel/payload.js';

const DEPTH_LEVELS = 5;
const IST_MS = 19_800_000;

export function norenPayload(
  tick: BrokerTick,
  symbol: string,
  exchange: string,
  mode: Mode,
  nowMs: number,
  broker: 'shoonya' | 'flattrade' = tick.broker === 'flattrade' ? 'flattrade' : 'shoonya',
): string {
  let out =
    '{"symbol":' + JSON.stringify(symbol) +
    ',"exchange":' + JSON.stringify(exchange) +
    ',"mode":' + mode +
    ',"ltp":' + price(tick.ltp) +
    ',"ltt":' + int(tick.lastTradeTime ?? tick.exchangeTimestamp ?? nowMs) +
    ',"last_trade_time":' + istTimeOfDay(tick.lastTradeTime) +
    ',"' + broker + '_timestamp":' + int(tick.exchangeTimestamp === undefined ? undefined : tick.exchangeTimestamp / 1000) +
    ',"timestamp":' + int(nowMs);
  if (mode === 1) return out + '}';

  const change = priceChange(tick.ltp, tick.close);
  out +=
    ',"volume":' + int(tick.volume) +
    ',"open":' + price(tick.open) +
    ',"high":' + price(tick.high) +
    ',"low":' + price(tick.low) +
    ',"close":' + price(tick.close) +
    ',"average_price":' + price(tick.averagePrice) +
    ',"percent_change":' + change.percent +
    ',"last_quantity":' + int(tick.lastQuantity) +
    ',"total_buy_quantity":' + int(tick.totalBuyQuantity) +
    ',"total_sell_quantity":' + int(tick.totalSellQuantity) +
    ',"change":' + change.absolute +
    ',"change_percent":' + change.percent;
  if (mode === 2) return out + '}';

  out +=
    ',"depth":{"buy":' + levels(tick.depth?.buy) + ',"sell":' + levels(tick.depth?.sell) + '}' +
    ',"depth_level":' + DEPTH_LEVELS +
    ',"upper_circuit":' + price(tick.upperCircuit) +
    ',"lower_circuit":' + price(tick.lowerCircuit) +
    ',"52_week_high":' + price(tick.high52w) +
    ',"52_week_low":' + price(tick.low52w) +
    ',"oi":' + int(tick.oi);
  out +=
    broker === 'flattrade'
      ? ',"total_traded_value":' + int(tradedValue(tick))
      : ',"open_interest":' + int(tick.oi);
  return out + '}';
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

function int(value: number | undefined): string {
  if (value === undefined || !Number.isFinite(value)) return '0';
  return String(Math.trunc(value));
}

/** "HH:MM:SS" in IST, as Noren writes `ltt`, or null. */
function istTimeOfDay(ms: number | undefined): string {
  if (ms === undefined || !Number.isFinite(ms)) return 'null';
  const date = new Date(ms + IST_MS);
  const two = (n: number): string => String(n).padStart(2, '0');
  return '"' + two(date.getUTCHours()) + ':' + two(date.getUTCMinutes()) + ':' + two(date.getUTCSeconds()) + '"';
}

function tradedValue(tick: BrokerTick): number | undefined {
  if (tick.volume === undefined || tick.averagePrice === undefined) return undefined;
  return Math.round(tick.volume * tick.averagePrice);
}
