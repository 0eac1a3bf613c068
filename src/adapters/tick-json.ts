/**
 * A normalised broker tick as a plain JSON object, for people reading captured frames
 * (`tickcast decode`): snake_case names, prices as numbers, timestamps as ISO 8601 UTC, and only
 * the fields the packet carried.
 */
import type { BrokerTick } from './broker.js';

const iso = (ms: number | undefined): string | undefined => (ms === undefined ? undefined : new Date(ms).toISOString());

export function tickJson(tick: BrokerTick): Record<string, unknown> {
  const fields: Record<string, unknown> = {
    broker: tick.broker,
    token: tick.token,
    exchange: tick.exchange,
    mode: tick.mode,
    is_index: tick.isIndex,
    // Depth-20 packets carry no last price (the decoder leaves NaN there).
    ltp: Number.isNaN(tick.ltp) ? undefined : tick.ltp,
    open: tick.open,
    high: tick.high,
    low: tick.low,
    close: tick.close,
    volume: tick.volume,
    oi: tick.oi,
    oi_day_high: tick.oiDayHigh,
    oi_day_low: tick.oiDayLow,
    last_quantity: tick.lastQuantity,
    average_price: tick.averagePrice,
    total_buy_quantity: tick.totalBuyQuantity,
    total_sell_quantity: tick.totalSellQuantity,
    upper_circuit: tick.upperCircuit,
    lower_circuit: tick.lowerCircuit,
    high_52w: tick.high52w,
    low_52w: tick.low52w,
    exchange_timestamp: iso(tick.exchangeTimestamp),
    last_trade_time: iso(tick.lastTradeTime),
    sequence: tick.sequence,
    depth: tick.depth,
  };
  for (const key of Object.keys(fields)) if (fields[key] === undefined) delete fields[key];
  return fields;
}
