import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { decodeUpstoxFeed } from '../../src/adapters/upstox/decoder.js';
import { upstoxPayload } from '../../src/adapters/upstox/payload.js';

const VECTORS = JSON.parse(readFileSync(new URL('../fixtures/vectors/upstox.json', import.meta.url), 'utf8')) as { name: string; hex?: string }[];
const NOW = 1718178370000;

function tickOf(name: string, key?: string) {
  const result = decodeUpstoxFeed(Buffer.from(VECTORS.find((v) => v.name === `upstox/${name}`)!.hex!, 'hex'));
  if (result.kind !== 'feed') throw new Error(result.reason);
  return (key ? result.ticks.find((t) => t.key === key) : result.ticks[0])!.tick;
}

describe('Upstox payloads (OpenAlgo field names)', () => {
  it('LTP', () => {
    const text = upstoxPayload(tickOf('ltpc_nse_eq_reliance'), 'RELIANCE', 'NSE', 1, NOW);
    expect(text).toBe(
      '{"symbol":"RELIANCE","exchange":"NSE","token":"NSE_EQ|INE002A01018","mode":1,"ltp":2950.55,"ltq":25,"ltt":1718178368000,"cp":2921.15,"timestamp":1718178369123}',
    );
  });

  it('Quote: day OHLC from the 1d candle, close is the previous close, change computed', () => {
    const data = JSON.parse(upstoxPayload(tickOf('full_nse_eq_depth5'), 'RELIANCE', 'NSE', 2, NOW));
    expect(data).toMatchObject({
      open: 2930, high: 2961.4, low: 2925.1, close: 2921.15, ltp: 2950.55, last_trade_quantity: 25, last_quantity: 25,
      volume: 7512345, average_price: 2944.87, total_buy_quantity: 412345, total_sell_quantity: 398765, oi: 0,
      change: 29.4, change_percent: 1.01, timestamp: 1718178369123,
    });
    expect(data.depth).toBeUndefined();
  });

  it('Depth: five levels a side, best first, orders 0, plus every quote key', () => {
    const text = upstoxPayload(tickOf('full_d30_nse_eq_depth30'), 'INFY', 'NSE', 3, NOW);
    const data = JSON.parse(text);
    expect(data.depth.buy).toHaveLength(5);
    expect(data.depth.sell).toHaveLength(5);
    expect(data.depth.buy[0]).toEqual({ price: 1532.35, quantity: 40, orders: 0 });
    expect(data.depth.sell[0]).toEqual({ price: 1532.45, quantity: 40, orders: 0 });
    expect(data.depth.buy[1].price).toBeLessThan(data.depth.buy[0].price);
    expect(data.depth.timestamp).toBe(1718178369123);
    expect(data.volume).toBe(5123456789);
    expect(text).toContain('"depth":{"buy":[{"price":1532.35,');
  });

  it('Depth of a thin book pads with zero levels; prices are Python floats', () => {
    const text = upstoxPayload(tickOf('full_partial_book'), 'INFY', 'NSE', 3, NOW);
    const data = JSON.parse(text);
    expect(data.depth.buy.map((l: { price: number }) => l.price)).toEqual([1532.35, 1532.3, 1532, 0, 0]);
    expect(data.depth.sell.map((l: { price: number }) => l.price)).toEqual([1532.45, 0, 0, 0, 0]);
    expect(text).toContain('{"price":1532.0,"quantity":5,"orders":0}');
    expect(text).toContain('{"price":0.0,"quantity":0,"orders":0}');
    // No currentTs in this message: the receive time stands in.
    expect(data.timestamp).toBe(NOW);
  });

  it('an option greeks tick gives OI and volume; a missing LTP is 0.0', () => {
    const data = JSON.parse(upstoxPayload(tickOf('option_greeks_nse_fo_call'), 'NIFTY24JUN24000CE', 'NFO', 2, NOW));
    expect(data).toMatchObject({ ltp: 182.35, oi: 4567800, volume: 98765400, close: 160.1 });
    const missing = upstoxPayload(tickOf('full_missing_ltpc'), 'RELIANCE', 'NSE', 1, NOW);
    expect(missing).toContain('"ltp":0.0,"ltq":0,"ltt":1718178369123,"cp":0.0');
  });

  it('index quote: no volume, OHLC from the candle', () => {
    const data = JSON.parse(upstoxPayload(tickOf('full_nse_index_nifty'), 'NIFTY', 'NSE_INDEX', 2, NOW));
    expect(data).toMatchObject({ ltp: 24851.2, open: 24800, high: 24890.75, low: 24760.1, close: 24789.35, volume: 0 });
  });
});
