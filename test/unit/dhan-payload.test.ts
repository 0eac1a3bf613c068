import { readFileSync } from 'node:fs';
import { describe, it, expect } from 'vitest';
import type { BrokerTick } from '../../src/adapters/broker.js';
import { decodeDhanDepth20, decodeDhanFeed, depth20Tick } from '../../src/adapters/dhan/decoder.js';
import { dhanPayload } from '../../src/adapters/dhan/payload.js';

interface Vector {
  name: string;
  hex: string;
}

const vectors = JSON.parse(readFileSync(new URL('../fixtures/vectors/dhan.json', import.meta.url), 'utf8')) as Vector[];
const frame = (name: string): Buffer => Buffer.from(vectors.find((v) => v.name === 'dhan/' + name)!.hex, 'hex');
const NOW = 1_718_186_400_000;
/** 2024-06-12 15:29:59 IST, the vectors' last-trade time, as a real instant. */
const LTT_MS = 1_718_186_399_000;

function tick(name: string): BrokerTick {
  const [packet] = decodeDhanFeed(frame(name));
  if (packet?.kind !== 'tick') throw new Error(name);
  return packet.tick;
}

function depth20(name: string): BrokerTick {
  const [bid, ask] = decodeDhanDepth20(frame(name));
  if (bid?.kind !== 'depth20' || ask?.kind !== 'depth20') throw new Error(name);
  return depth20Tick(bid, ask)!;
}

const PRICE_KEYS = ['ltp', 'open', 'high', 'low', 'close', 'average_price', 'price'];

/** Every price in the text is written as a float literal, so Python's json reads a float. */
function expectFloatPrices(text: string): void {
  for (const key of PRICE_KEYS) {
    const ints = [...text.matchAll(new RegExp(`"${key}":(-?\\d+)(?=[,}])`, 'g'))];
    expect(ints.map((m) => m[0]), `${key} written as an int`).toEqual([]);
  }
}

describe('dhanPayload (OpenAlgo Dhan field names)', () => {
  it('LTP: symbol, exchange, mode, ltp, ltt (real instant, ms) and timestamp', () => {
    const text = dhanPayload(tick('ticker_nse_eq_reliance'), 'RELIANCE', 'NSE', 1, NOW);
    expect(text).toBe(`{"symbol":"RELIANCE","exchange":"NSE","mode":1,"ltp":2950.55,"ltt":${LTT_MS},"timestamp":${NOW}}`);
  });

  it('LTP without a trade time gets the receive time; a round price is a float', () => {
    const text = dhanPayload(tick('ticker_mcx_crudeoil_fut'), 'CRUDEOIL19JUN24FUT', 'MCX', 1, NOW);
    expect(JSON.parse(text)).toMatchObject({ ltp: 6512, ltt: LTT_MS });
    expect(text).toContain('"ltp":6512.0');
    expect(JSON.parse(dhanPayload(tick('ticker_no_trade_time'), 'HDFCBANK', 'NSE', 1, NOW)).ltt).toBe(NOW);
  });

  it('QUOTE: OpenAlgo\'s keys, plus change and change_percent', () => {
    const text = dhanPayload(tick('quote_nse_eq_reliance'), 'RELIANCE', 'NSE', 2, NOW);
    expect(JSON.parse(text)).toEqual({
      symbol: 'RELIANCE', exchange: 'NSE', mode: 2, ltp: 2950.55, ltt: LTT_MS, timestamp: NOW,
      volume: 5_123_456, open: 2925, high: 2962.5, low: 2915.1, close: 2921.15,
      last_quantity: 25, average_price: 2938.4, total_buy_quantity: 654_321, total_sell_quantity: 812_345,
      change: 29.4, change_percent: 1.01,
    });
    expect(text).toContain('"change":29.40,"change_percent":1.01');
    expectFloatPrices(text);
  });

  it('QUOTE of an index: zeros for what it does not have', () => {
    const data = JSON.parse(dhanPayload(tick('quote_idx_banknifty'), 'BANKNIFTY', 'NSE_INDEX', 2, NOW));
    expect(data).toMatchObject({ ltp: 49895.3, volume: 0, last_quantity: 0, average_price: 0, open: 49700.05, close: 49650.7 });
  });

  it('currency keeps 4 decimals', () => {
    const data = JSON.parse(dhanPayload(tick('quote_bse_currency_eurinr_fut'), 'EURINR26JUN24FUT', 'BCD', 2, NOW));
    expect(data).toMatchObject({ ltp: 90.1275, average_price: 90.1132, low: 90.0375, change: 0.13, change_percent: 0.14 });
  });

  it('DEPTH (5 levels): the quote keys, oi, oi_high, oi_low, five levels a side, depth_level 5', () => {
    const text = dhanPayload(tick('full_nse_fno_nifty_fut'), 'NIFTY27JUN24FUT', 'NFO', 3, NOW);
    const data = JSON.parse(text);
    expect(data).toMatchObject({
      mode: 3, ltp: 23310.4, volume: 4_123_400, oi: 12_345_600, oi_high: 12_500_000, oi_low: 11_900_025,
      last_quantity: 25, average_price: 23288.65, total_buy_quantity: 498_750, total_sell_quantity: 512_300,
      close: 23300.5, change: 9.9, depth_level: 5,
    });
    expect(data.depth.buy).toHaveLength(5);
    expect(data.depth.buy[0]).toEqual({ price: 23310.05, quantity: 150, orders: 3 });
    expect(data.depth.sell[4]).toEqual({ price: 23310.6, quantity: 275, orders: 8 });
    expectFloatPrices(text);
  });

  it('DEPTH of a thin book is padded with zero levels after the real ones', () => {
    const data = JSON.parse(dhanPayload(tick('full_nse_eq_partial_book'), 'RELIANCE', 'NSE', 3, NOW));
    expect(data.depth.buy.map((l: { price: number }) => l.price)).toEqual([2950.5, 2950.45, 2950.4, 0, 0]);
    expect(data.depth.sell.map((l: { price: number }) => l.price)).toEqual([2950.55, 2950.6, 0, 0, 0]);
    expect(data.oi).toBe(0);
  });

  it('DEPTH-20 (SYMBOL:20): 20 levels a side, depth_level 20, no ltp from the depth feed', () => {
    const text = dhanPayload(depth20('depth20_pair_nse_fno_partial_asks'), 'NIFTY27JUN24FUT:20', 'NFO', 3, NOW);
    const data = JSON.parse(text);
    expect(Object.keys(data)).toEqual(['symbol', 'exchange', 'mode', 'timestamp', 'depth', 'depth_level']);
    expect(data).toMatchObject({ symbol: 'NIFTY27JUN24FUT:20', mode: 3, depth_level: 20 });
    expect(data.depth.buy).toHaveLength(20);
    expect(data.depth.sell).toHaveLength(20);
    expect(data.depth.sell[0]).toEqual({ price: 23310.4, quantity: 50, orders: 1 });
    expect(data.depth.sell[8]).toEqual({ price: 0, quantity: 0, orders: 0 });
    expect(text).toContain('"price":0.0');
  });

  it('DEPTH-20 with an LTP merged in by the adapter carries ltp and ltt', () => {
    const merged = { ...depth20('depth20_pair_nse_eq_reliance'), ltp: 2950.55, lastTradeTime: LTT_MS };
    expect(JSON.parse(dhanPayload(merged, 'RELIANCE:20', 'NSE', 3, NOW))).toMatchObject({ ltp: 2950.55, ltt: LTT_MS, depth_level: 20 });
  });
});
