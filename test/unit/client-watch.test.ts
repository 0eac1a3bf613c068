/** `tickcast watch` formatting: prices, plain lines and the terminal table. Pure. */
import { describe, expect, it } from 'vitest';
import { boardLines, formatPrice, plainLine } from '../../src/cli/watch.js';
import type { DepthTick, MarketData } from '../../src/client/types.js';

const message = (data: DepthTick, mode: 1 | 2 | 3 = 3): MarketData<DepthTick> => ({ type: 'market_data', exchange: 'NSE', symbol: 'RELIANCE', mode, data, broker: 'x', seq: 7 });
const depth: DepthTick = {
  ltp: 1418,
  timestamp: Date.UTC(2025, 0, 2, 3, 45, 6, 7),
  open: 1410.5,
  high: 1420,
  low: 1405.25,
  volume: 1200,
  change: -2.5,
  change_percent: -0.18,
  depth: { buy: [{ price: 1417.95, quantity: 10, orders: 1 }], sell: [{ price: 1418.05, quantity: 4, orders: 2 }] },
};

describe('watch formatting', () => {
  it('prices: two decimals, more only when the price has them', () => {
    expect([1418, 1418.5, 0.0025, 83.1234, -2.5].map(formatPrice)).toEqual(['1418.00', '1418.50', '0.0025', '83.1234', '-2.50']);
    expect([undefined, 'x', Number.NaN].map(formatPrice)).toEqual(['-', '-', '-']);
  });

  it('plain lines carry the fields of the mode that the tick has', () => {
    expect(plainLine(message(depth), 3)).toBe(
      'NSE:RELIANCE ltp=1418.00 chg=-2.50 chg%=-0.18 open=1410.50 high=1420.00 low=1405.25 vol=1200 bid=1417.95x10 ask=1418.05x4 time=2025-01-02T03:45:06.007Z seq=7',
    );
    expect(plainLine(message(depth, 1), 1)).toBe('NSE:RELIANCE ltp=1418.00 time=2025-01-02T03:45:06.007Z seq=7');
    expect(plainLine(message({ ltp: 5 }, 2), 2)).toBe('NSE:RELIANCE ltp=5.00 seq=7');
  });

  it('the table: a header, a row per instrument in order (… until its first tick), the status last', () => {
    const latest = new Map([['NSE:RELIANCE', message(depth)]]);
    const lines = boardLines([{ exchange: 'NSE_INDEX', symbol: 'NIFTY' }, { exchange: 'NSE', symbol: 'RELIANCE' }], latest, 3, 'live');
    expect(lines).toHaveLength(4);
    expect(lines[0]!.split(/\s+/)).toEqual(['INSTRUMENT', 'LTP', 'CHG%', 'BID', 'BID', 'QTY', 'ASK', 'ASK', 'QTY', 'TIME']);
    expect(lines[1]!.split(/\s+/)).toEqual(['NSE_INDEX:NIFTY', '…', '…', '…', '…', '…', '…', '…']);
    expect(lines[2]!.split(/\s+/).slice(0, 7)).toEqual(['NSE:RELIANCE', '1418.00', '-0.18%', '1417.95', '10', '1418.05', '4']);
    expect(lines[3]).toBe('live');
    // Columns line up: every row is as wide as the header.
    expect(new Set(lines.slice(0, 3).map((l) => l.length)).size).toBe(1);
  });
});
