import { readFileSync } from 'node:fs';
import { describe, it, expect } from 'vitest';
import type { BrokerTick } from '../../src/adapters/broker.js';
import { NorenBook, decodeNorenText } from '../../src/adapters/noren/decoder.js';
import { norenPayload } from '../../src/adapters/noren/payload.js';

const vectors = JSON.parse(readFileSync(new URL('../fixtures/vectors/noren.json', import.meta.url), 'utf8')) as { name: string; text: string }[];
const NOW = 1_718_186_400_500;

function ticks(broker: 'shoonya' | 'flattrade', ...names: string[]): BrokerTick {
  const book = new NorenBook({ broker });
  let last: BrokerTick | undefined;
  for (const name of names) {
    const decoded = decodeNorenText(vectors.find((v) => v.name === 'noren/' + name)!.text);
    if (decoded.kind !== 'market') throw new Error(name);
    const applied = book.apply(decoded);
    if (applied.kind === 'tick') last = applied.tick;
  }
  return last!;
}

const PRICE_KEYS = ['ltp', 'open', 'high', 'low', 'close', 'average_price', 'upper_circuit', 'lower_circuit', '52_week_high', '52_week_low', 'price'];

function expectFloatPrices(text: string): void {
  for (const key of PRICE_KEYS) {
    const ints = [...text.matchAll(new RegExp(`"${key}":(-?\\d+)(?=[,}])`, 'g'))];
    expect(ints.map((m) => m[0]), `${key} written as an int`).toEqual([]);
  }
}

describe('norenPayload', () => {
  it('LTP: OpenAlgo\'s Shoonya keys, plus ltt in epoch ms', () => {
    const text = norenPayload(ticks('shoonya', 'tk_nse_equity_reliance'), 'RELIANCE', 'NSE', 1, NOW);
    expect(JSON.parse(text)).toEqual({
      symbol: 'RELIANCE', exchange: 'NSE', mode: 1, ltp: 2950.55,
      ltt: 1718186399000, last_trade_time: '15:29:59', shoonya_timestamp: 1718186399, timestamp: NOW,
    });
  });

  it('Flattrade names its feed time flattrade_timestamp', () => {
    const data = JSON.parse(norenPayload(ticks('flattrade', 'tk_nse_equity_reliance'), 'RELIANCE', 'NSE', 1, NOW));
    expect(data.flattrade_timestamp).toBe(1718186399);
    expect(data.shoonya_timestamp).toBeUndefined();
  });

  it('QUOTE: merged state after partial updates, with change and change_percent', () => {
    const text = norenPayload(ticks('shoonya', 'tk_nse_equity_reliance', 'tf_nse_equity_reliance_ltp', 'tf_nse_equity_reliance_trade'), 'RELIANCE', 'NSE', 2, NOW);
    expect(JSON.parse(text)).toEqual({
      symbol: 'RELIANCE', exchange: 'NSE', mode: 2, ltp: 2950.75,
      ltt: 1718186400000, last_trade_time: '15:30:00', shoonya_timestamp: 1718186401, timestamp: NOW,
      volume: 4817334, open: 2925, high: 2962.4, low: 2918.1, close: 2921.15, average_price: 2941.38,
      percent_change: 1.01, last_quantity: 100, total_buy_quantity: 412345, total_sell_quantity: 598812,
      change: 29.6, change_percent: 1.01,
    });
    expect(text).toContain('"open":2925.0,');
    expect(text).toContain('"change":29.60,"change_percent":1.01');
  });

  it('QUOTE for an index: zeros where the index has nothing, null last_trade_time', () => {
    const data = JSON.parse(norenPayload(ticks('shoonya', 'tk_nse_index_nifty'), 'NIFTY', 'NSE_INDEX', 2, NOW));
    expect(data).toMatchObject({ ltp: 23264.85, volume: 0, last_quantity: 0, last_trade_time: null, close: 23169.4, ltt: 1718186399000 });
  });

  it('DEPTH: five levels a side, circuits, 52-week range, OI from oi (not toi)', () => {
    const data = JSON.parse(norenPayload(ticks('shoonya', 'dk_nse_equity_sbin_5'), 'SBIN', 'NSE', 3, NOW));
    expect(data.depth.buy).toHaveLength(5);
    expect(data.depth.buy[0]).toEqual({ price: 834.05, quantity: 310, orders: 7 });
    expect(data.depth.sell[4]).toEqual({ price: 834.3, quantity: 780, orders: 9 });
    expect(data).toMatchObject({ depth_level: 5, upper_circuit: 909.6, lower_circuit: 744.3, '52_week_high': 912, '52_week_low': 555.25, total_buy_quantity: 845120 });

    const future = JSON.parse(norenPayload(ticks('shoonya', 'dk_nfo_future_nifty_sparse', 'df_nfo_future_nifty_oi'), 'NIFTY27JUN24FUT', 'NFO', 3, NOW));
    expect(future.open_interest).toBe(14026100);
    expect(future.oi).toBe(14026100);
    expect(future.depth.buy[4]).toEqual({ price: 0, quantity: 0, orders: 0 });
    expect(future.depth.sell).toHaveLength(5);
  });

  it('Flattrade DEPTH: total_traded_value is volume × average price', () => {
    const data = JSON.parse(norenPayload(ticks('flattrade', 'dk_nse_equity_sbin_5'), 'SBIN', 'NSE', 3, NOW));
    expect(data.total_traded_value).toBe(Math.round(12873410 * 831.92));
    expect(data.open_interest).toBeUndefined();
  });

  it('writes every price as a float literal, in every mode', () => {
    for (const names of [['tk_nse_equity_reliance'], ['tk_nse_index_nifty'], ['dk_nse_equity_sbin_5'], ['dk_nfo_future_nifty_sparse'], ['tk_cds_usdinr']]) {
      for (const mode of [1, 2, 3] as const) {
        const text = norenPayload(ticks('shoonya', ...names), 'X', 'NSE', mode, NOW);
        expectFloatPrices(text);
        expect(() => JSON.parse(text)).not.toThrow();
      }
    }
    expect(JSON.parse(norenPayload(ticks('shoonya', 'tk_cds_usdinr'), 'USDINR', 'CDS', 1, NOW)).ltp).toBe(83.4525);
  });

  it('a tick without times stamps ltt with the receive time', () => {
    const tick: BrokerTick = { broker: 'shoonya', token: '1', exchange: 'NSE', mode: 'quote', isIndex: false, ltp: 10 };
    const data = JSON.parse(norenPayload(tick, 'A', 'NSE', 1, NOW));
    expect(data).toMatchObject({ ltt: NOW, last_trade_time: null, shoonya_timestamp: 0 });
  });
});
