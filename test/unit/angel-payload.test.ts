import { describe, it, expect } from 'vitest';
import { decodeAngelBinary } from '../../src/adapters/angel/decoder.js';
import { angelPayload, price, priceChange } from '../../src/adapters/angel/payload.js';
import type { BrokerTick } from '../../src/adapters/broker.js';
import { loadAngelVectors, vectorFrame } from '../helpers/fake-angel.js';

const vectors = loadAngelVectors();
const NOW = 1_718_178_370_000;

function tick(name: string): BrokerTick {
  const decoded = decodeAngelBinary(vectorFrame(vectors, name));
  if (decoded.kind !== 'tick') throw new Error(name);
  return decoded.tick;
}

const PRICE_KEYS = ['ltp', 'open', 'high', 'low', 'close', 'average_price', 'upper_circuit', 'lower_circuit', 'price'];

/** Every price in the text is written as a float literal, so Python's json reads a float. */
function expectFloatPrices(text: string): void {
  for (const key of PRICE_KEYS) {
    const ints = [...text.matchAll(new RegExp(`"${key}":(-?\\d+)(?=[,}])`, 'g'))];
    expect(ints.map((m) => m[0]), `${key} written as an int`).toEqual([]);
  }
}

describe('angelPayload', () => {
  it('LTP: symbol, exchange, mode, ltp, ltt (exchange ms) and timestamp (local ms)', () => {
    const text = angelPayload(tick('angel/ltp_nse_cm_reliance'), 'RELIANCE', 'NSE', 1, NOW);
    expect(text).toBe('{"symbol":"RELIANCE","exchange":"NSE","mode":1,"ltp":2950.55,"ltt":1718178369123,"timestamp":1718178370000}');
  });

  it('writes whole prices as floats (1418.0, never 1418)', () => {
    const crude = angelPayload(tick('angel/ltp_mcx_fo_crudeoil_fut'), 'CRUDEOIL24JUNFUT', 'MCX', 1, NOW);
    expect(crude).toContain('"ltp":6512.0,');
    expect(price(1418)).toBe('1418.0');
    expect(price(1418.5)).toBe('1418.5');
    expect(price(0)).toBe('0.0');
    expect(price(-2)).toBe('-2.0');
    expect(price(undefined)).toBe('0.0');
    expect(price(Number.NaN)).toBe('0.0');
    expect(price(1e-7)).toBe('1e-7');
    for (const name of ['angel/quote_nse_cm_reliance', 'angel/quote_nse_cm_index_banknifty', 'angel/snapquote_nse_fo_nifty_fut_oi']) {
      for (const mode of [1, 2, 3] as const) expectFloatPrices(angelPayload(tick(name), 'X', 'NSE', mode, NOW));
    }
  });

  it('keeps currency prices at full precision', () => {
    const data = JSON.parse(angelPayload(tick('angel/ltp_cde_fo_usdinr_fut'), 'USDINR24JUNFUT', 'CDS', 1, NOW));
    expect(data.ltp).toBe(83.4525);
  });

  it('QUOTE: OpenAlgo\'s keys plus change and change_percent', () => {
    const text = angelPayload(tick('angel/quote_nse_cm_reliance'), 'RELIANCE', 'NSE', 2, NOW);
    const data = JSON.parse(text);
    expect(data).toEqual({
      symbol: 'RELIANCE',
      exchange: 'NSE',
      mode: 2,
      ltp: 2950.55,
      ltt: 1718178369123,
      timestamp: NOW,
      volume: 4817234,
      open: 2925,
      high: 2962.4,
      low: 2918.1,
      close: 2921.15,
      last_trade_quantity: 5,
      last_quantity: 5,
      average_price: 2941.37,
      total_buy_quantity: 412345,
      total_sell_quantity: 598812,
      change: 29.4,
      change_percent: 1.01,
    });
    expect(text).toContain('"change":29.40,"change_percent":1.01');
    expect(text).toContain('"open":2925.0,');
  });

  it('QUOTE for an index: zeros where the index has nothing', () => {
    const data = JSON.parse(angelPayload(tick('angel/quote_nse_cm_index_banknifty'), 'BANKNIFTY', 'NSE_INDEX', 2, NOW));
    expect(data).toMatchObject({
      exchange: 'NSE_INDEX',
      ltp: 49895.75,
      volume: 0,
      total_buy_quantity: 0,
      average_price: 0,
      open: 49790,
      close: 49705.85,
      change: 189.9,
      change_percent: 0.38,
    });
  });

  it('DEPTH: real OHLC (OpenAlgo bug 22 fixed), circuits, OI and five levels a side', () => {
    const data = JSON.parse(angelPayload(tick('angel/snapquote_nse_fo_nifty_fut_oi'), 'NIFTY24JUNFUT', 'NFO', 3, NOW));
    expect(data).toMatchObject({
      symbol: 'NIFTY24JUNFUT',
      exchange: 'NFO',
      mode: 3,
      ltp: 23390,
      ltt: 1718178369123,
      timestamp: NOW,
      volume: 5213450,
      open: 23410,
      high: 23499.95,
      low: 23365.1,
      close: 23338.35,
      last_quantity: 25,
      last_trade_quantity: 25,
      average_price: 23378.45,
      oi: 12845325,
      upper_circuit: 25672.15,
      lower_circuit: 21004.55,
      change: 51.65,
      change_percent: 0.22,
    });
    expect(data.depth.buy).toEqual([
      { price: 23389.9, quantity: 50, orders: 1 },
      { price: 23389.5, quantity: 125, orders: 3 },
      { price: 23389.05, quantity: 75, orders: 2 },
      { price: 23388.8, quantity: 400, orders: 6 },
      { price: 23388.5, quantity: 25, orders: 1 },
    ]);
    expect(data.depth.sell[0]).toEqual({ price: 23390, quantity: 100, orders: 2 });
    expect(data.depth.sell).toHaveLength(5);
  });

  it('DEPTH pads a thin or missing book to five empty levels', () => {
    const thin: BrokerTick = {
      broker: 'angel', token: '1', exchange: 'nse_cm', mode: 'full', isIndex: false, ltp: 10,
      depth: { buy: [{ price: 9.95, quantity: 3, orders: null }], sell: [] },
    };
    const data = JSON.parse(angelPayload(thin, 'A', 'NSE', 3, NOW));
    expect(data.depth.buy).toEqual([
      { price: 9.95, quantity: 3, orders: 0 },
      ...Array(4).fill({ price: 0, quantity: 0, orders: 0 }),
    ]);
    expect(data.depth.sell).toEqual(Array(5).fill({ price: 0, quantity: 0, orders: 0 }));
    const bare = JSON.parse(angelPayload({ ...thin, depth: undefined }, 'A', 'NSE', 3, NOW));
    expect(bare.depth.buy).toHaveLength(5);
    // Missing fields are written as zeros, as OpenAlgo does; the ltt falls back to receive time.
    expect(bare).toMatchObject({ open: 0, close: 0, oi: 0, volume: 0, change: 0, change_percent: 0, ltt: NOW });
  });

  it('computes change on exact decimals, rounding half away from zero', () => {
    expect(priceChange(2950.55, 2921.15)).toEqual({ absolute: '29.40', percent: '1.01' });
    expect(priceChange(2900, 2921.15)).toEqual({ absolute: '-21.15', percent: '-0.72' });
    expect(priceChange(100.005, 100)).toEqual({ absolute: '0.01', percent: '0.01' });
    expect(priceChange(99.995, 100)).toEqual({ absolute: '-0.01', percent: '-0.01' });
    expect(priceChange(83.4525, 83.4)).toEqual({ absolute: '0.05', percent: '0.06' });
    expect(priceChange(100, undefined)).toEqual({ absolute: '0.00', percent: '0.00' });
    expect(priceChange(100, 0)).toEqual({ absolute: '0.00', percent: '0.00' });
    expect(priceChange(100, 100)).toEqual({ absolute: '0.00', percent: '0.00' });
  });

  it('escapes symbols and exchanges as JSON', () => {
    const text = angelPayload(tick('angel/ltp_nse_cm_reliance'), 'M&M"X\\', 'NSE', 1, NOW);
    expect(JSON.parse(text).symbol).toBe('M&M"X\\');
  });
});
