import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { BrokerTick } from '../../src/adapters/broker.js';
import { decodeKiteBinary } from '../../src/adapters/zerodha/decoder.js';
import { kitePayload, pyFloat } from '../../src/adapters/zerodha/payload.js';
import { kiteFrame, kitePacket } from '../helpers/fake-kite.js';

interface Vector {
  name: string;
  frame: string;
  direction: string;
  hex: string;
  decoded: unknown;
}

const VECTORS = JSON.parse(
  readFileSync(new URL('../fixtures/vectors/zerodha.json', import.meta.url), 'utf8'),
) as Vector[];

const NOW = 1_718_178_370_123.6;
const NOW_MS = 1_718_178_370_123;

function vectorTicks(name: string): BrokerTick[] {
  const vector = VECTORS.find((v) => v.name === name);
  if (!vector) throw new Error(`no vector ${name}`);
  const result = decodeKiteBinary(Buffer.from(vector.hex, 'hex'));
  if (result.kind !== 'ticks') throw new Error(result.kind);
  return result.ticks;
}

function tickOf(length: number, fields: Record<string, unknown> & { instrument_token: number }): BrokerTick {
  const result = decodeKiteBinary(kiteFrame([kitePacket(length, fields)]));
  if (result.kind !== 'ticks' || result.ticks.length !== 1) throw new Error('bad test frame');
  return result.ticks[0]!;
}

/** Price keys must reach Python as floats: never a bare integer literal. */
function expectPythonFloats(text: string): void {
  const integral = /"(ltp|average_price|open|high|low|close|change|price_change|price)":-?\d+[,}]/.exec(text);
  expect(integral?.[0], text).toBeUndefined();
}

const QUOTE_KEYS = [
  'symbol', 'exchange', 'mode', 'ltp', 'ltt', 'timestamp', 'volume', 'last_quantity', 'average_price',
  'total_buy_quantity', 'total_sell_quantity', 'open', 'high', 'low', 'close',
];

describe('kitePayload', () => {
  it('LTP: exactly OpenAlgo’s keys, ltt in epoch ms', () => {
    const [tick] = vectorTicks('kite/nse_eq_ltp_reliance');
    const text = kitePayload(tick!, 'RELIANCE', 'NSE', 1, NOW);
    expect(text).toBe(`{"symbol":"RELIANCE","exchange":"NSE","mode":"ltp","ltp":2950.55,"ltt":${NOW_MS},"timestamp":${NOW_MS}}`);
  });

  it('writes integral prices as Python floats', () => {
    const [tick] = vectorTicks('kite/mcx_ltp_goldguinea');
    const text = kitePayload(tick!, 'GOLDGUINEA', 'MCX', 1, NOW);
    expect(text).toContain('"ltp":58430.0,');
    expect(pyFloat(1418)).toBe('1418.0');
    expect(pyFloat(0)).toBe('0.0');
    expect(pyFloat(-3)).toBe('-3.0');
    expect(pyFloat(2950.55)).toBe('2950.55');
    expect(pyFloat(Number.NaN)).toBe('null');
  });

  it('CDS and BCD prices at their own scale', () => {
    const [cds] = vectorTicks('kite/cds_ltp_usdinr');
    expect(JSON.parse(kitePayload(cds!, 'USDINR24JUNFUT', 'CDS', 1, NOW)).ltp).toBe(83.4525);
    const [bcd] = vectorTicks('kite/bcd_ltp_usdinr');
    expect(JSON.parse(kitePayload(bcd!, 'USDINR24JUNFUT', 'BCD', 1, NOW)).ltp).toBe(83.455);
  });

  it('QUOTE: OpenAlgo’s keys plus change, no OI or times a quote packet lacks', () => {
    const [tick] = vectorTicks('kite/nse_eq_quote_reliance');
    const text = kitePayload(tick!, 'RELIANCE', 'NSE', 2, NOW);
    expectPythonFloats(text);
    const data = JSON.parse(text);
    expect(Object.keys(data)).toEqual([...QUOTE_KEYS, 'change', 'change_percent']);
    expect(data).toEqual({
      symbol: 'RELIANCE', exchange: 'NSE', mode: 'quote', ltp: 2950.55,
      // A quote packet has no trade time: OpenAlgo stamps local time, in ms.
      ltt: NOW_MS, timestamp: NOW_MS,
      volume: 4817234, last_quantity: 5, average_price: 2941.37, total_buy_quantity: 412345, total_sell_quantity: 598812,
      open: 2925, high: 2962.4, low: 2918.1, close: 2921.15,
      change: 29.4, change_percent: 1.01,
    });
    expect(text).toContain('"open":2925.0,');
  });

  it('DEPTH: quote keys with mode "full", OI from its real offset, five levels a side', () => {
    const [tick] = vectorTicks('kite/nfo_full_nifty_fut');
    const text = kitePayload(tick!, 'NIFTY24JUNFUT', 'NFO', 3, NOW);
    expectPythonFloats(text);
    const data = JSON.parse(text);
    expect(Object.keys(data)).toEqual([
      ...QUOTE_KEYS, 'oi', 'open_interest', 'change', 'change_percent', 'exchange_timestamp', 'depth',
    ]);
    expect(data).toMatchObject({
      mode: 'full', ltp: 23390, oi: 12845325, open_interest: 12845325,
      ltt: 1718178368000, exchange_timestamp: 1718178369000, timestamp: NOW_MS,
      change: 51.65, change_percent: 0.22,
    });
    expect(data.depth.buy).toEqual([
      { price: 23389.9, quantity: 50, orders: 1 },
      { price: 23389.5, quantity: 125, orders: 3 },
      { price: 23389.05, quantity: 75, orders: 2 },
      { price: 23388.8, quantity: 400, orders: 6 },
      { price: 23388.5, quantity: 25, orders: 1 },
    ]);
    expect(data.depth.sell[4]).toEqual({ price: 23391.5, quantity: 1200, orders: 14 });
    expect(text).toContain('{"price":23390.0,"quantity":100,"orders":2}');
  });

  it('pads a thin book with zero levels, as OpenAlgo does', () => {
    const tick = tickOf(184, {
      instrument_token: 738561, last_price: 295055, close: 292115,
      depth: { buy: [{ quantity: 10, price: 295050, orders: 1 }, { quantity: 4, price: 295000, orders: 2 }], sell: [] },
    });
    const text = kitePayload(tick, 'RELIANCE', 'NSE', 3, NOW);
    const data = JSON.parse(text);
    const zero = { price: 0, quantity: 0, orders: 0 };
    expect(data.depth.buy).toEqual([{ price: 2950.5, quantity: 10, orders: 1 }, { price: 2950, quantity: 4, orders: 2 }, zero, zero, zero]);
    expect(data.depth.sell).toEqual([zero, zero, zero, zero, zero]);
    expect(text).toContain('{"price":0.0,"quantity":0,"orders":0}');
    // LTT 0 on the wire is "none": local time, as OpenAlgo stamps it.
    expect(data.ltt).toBe(NOW_MS);
  });

  it('indices: OHLC parsed, change filled in, no volume or depth', () => {
    const [quote] = vectorTicks('kite/nse_index_quote_nifty50');
    const quoteText = kitePayload(quote!, 'NIFTY', 'NSE_INDEX', 2, NOW);
    expectPythonFloats(quoteText);
    const q = JSON.parse(quoteText);
    expect(q).toEqual({
      symbol: 'NIFTY', exchange: 'NSE_INDEX', mode: 'quote', ltp: 23322.95, ltt: NOW_MS, timestamp: NOW_MS,
      open: 23344.45, high: 23441.95, low: 23295.95, close: 23264.85,
      change: 58.1, change_percent: 0.25, price_change: 58.1, price_change_percent: 0.25,
    });

    const [full] = vectorTicks('kite/nse_index_full_nifty50');
    const f = JSON.parse(kitePayload(full!, 'NIFTY', 'NSE_INDEX', 3, NOW));
    expect(f.mode).toBe('full');
    expect(f.ltt).toBe(1718178369000);
    expect(f.exchange_timestamp).toBe(1718178369000);
    expect(f).not.toHaveProperty('depth');
    expect(f).not.toHaveProperty('volume');

    const [ltp] = vectorTicks('kite/nse_index_ltp_nifty50');
    expect(Object.keys(JSON.parse(kitePayload(ltp!, 'NIFTY', 'NSE_INDEX', 1, NOW)))).toEqual(['symbol', 'exchange', 'mode', 'ltp', 'ltt', 'timestamp']);
  });

  it('computes change exactly, at the segment’s scale', () => {
    // 83.4525 − 83.41 in floats is 0.04250000000000398; in price units it is 0.0425.
    const cds = tickOf(44, { instrument_token: 552195, last_price: 834525000, close: 834100000 });
    const data = JSON.parse(kitePayload(cds, 'USDINR24JUNFUT', 'CDS', 2, NOW));
    expect(data.change).toBe(0.0425);
    expect(data.change_percent).toBe(0.05);

    const down = tickOf(44, { instrument_token: 738561, last_price: 10000, close: 30000 });
    expect(JSON.parse(kitePayload(down, 'X', 'NSE', 2, NOW))).toMatchObject({ change: -200, change_percent: -66.67 });
    expect(kitePayload(down, 'X', 'NSE', 2, NOW)).toContain('"change":-200.0,"change_percent":-66.67');

    const flat = tickOf(44, { instrument_token: 738561, last_price: 10000, close: 10000 });
    expect(kitePayload(flat, 'X', 'NSE', 2, NOW)).toContain('"change":0.0,"change_percent":0.00');
  });

  it('leaves change out without a previous close', () => {
    const tick = tickOf(44, { instrument_token: 738561, last_price: 10000, close: 0 });
    const data = JSON.parse(kitePayload(tick, 'X', 'NSE', 2, NOW));
    expect(data.close).toBe(0);
    expect(data).not.toHaveProperty('change');
    expect(data).not.toHaveProperty('change_percent');
  });

  it('escapes symbol and exchange into valid JSON', () => {
    const [tick] = vectorTicks('kite/nse_eq_ltp_reliance');
    const data = JSON.parse(kitePayload(tick!, 'M&M"\\', 'NSE', 1, NOW));
    expect(data.symbol).toBe('M&M"\\');
  });

  it('agrees with pykiteconnect’s change on every vector tick', () => {
    for (const vector of VECTORS.filter((v) => v.frame === 'binary' && Array.isArray(v.decoded))) {
      const result = decodeKiteBinary(Buffer.from(vector.hex, 'hex'));
      if (result.kind !== 'ticks') throw new Error(vector.name);
      result.ticks.forEach((tick, i) => {
        const py = (vector.decoded as Array<Record<string, any>>)[i]!;
        const mode = tick.mode === 'ltp' ? 1 : tick.mode === 'quote' ? 2 : 3;
        const text = kitePayload(tick, 'S', 'X', mode, NOW);
        expectPythonFloats(text);
        const data = JSON.parse(text);
        expect(data.ltp).toBe(py.last_price);
        if (py.change !== undefined && py.ohlc.close !== 0) {
          expect(data.change_percent, vector.name).toBeCloseTo(py.change, 2);
        }
      });
    }
  });
});
