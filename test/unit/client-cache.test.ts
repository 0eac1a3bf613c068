/** The SDK's latest-value cache and its OpenAlgo SDK-shaped views; gap tracking; backoff. */
import { describe, expect, it } from 'vitest';
import { reconnectDelay, reconnectSettings } from '../../src/client/backoff.js';
import { LatestValues } from '../../src/client/cache.js';
import { GapTracker } from '../../src/client/gaps.js';

const quote = { ltp: 1418.5, ltt: 1, timestamp: 1700000000000, volume: 10, last_quantity: 3, average_price: 1417.25, open: 1410, high: 1420, low: 1405, close: 1400, change: 18.5, change_percent: 1.32 };
const depth = { ...quote, depth: { buy: [{ price: 1418.45, quantity: 5, orders: 2 }, { price: 1418.4, quantity: 7, orders: 1 }], sell: [{ price: 1418.55, quantity: 4, orders: 3 }] } };

describe('latest values', () => {
  it('getLtp: { ltp: { EXCHANGE: { SYMBOL: { timestamp, ltp } } } }, from ticks of any mode', () => {
    const cache = new LatestValues(() => 5);
    cache.update('NSE:RELIANCE', 'NSE', 'RELIANCE', 1, { ltp: 1418.5, timestamp: 99 });
    cache.update('NSE_INDEX:NIFTY', 'NSE_INDEX', 'NIFTY', 3, { ltp: 24850.2 });
    expect(cache.getLtp()).toStrictEqual({
      ltp: { NSE: { RELIANCE: { timestamp: 99, ltp: 1418.5 } }, NSE_INDEX: { NIFTY: { timestamp: 5, ltp: 24850.2 } } },
    });
    expect(cache.getLtp('NSE')).toStrictEqual({ ltp: { NSE: { RELIANCE: { timestamp: 99, ltp: 1418.5 } } } });
    expect(cache.getLtp('NSE', 'NOPE')).toStrictEqual({ ltp: {} });
    expect(cache.getQuotes()).toStrictEqual({ quote: { NSE_INDEX: { NIFTY: expect.objectContaining({ ltp: 24850.2 }) } } });
  });

  it('getQuotes: the SDK fields, 0 where missing, with the Zerodha/simulator names as fallbacks', () => {
    const cache = new LatestValues(() => 0);
    cache.update('NSE:A', 'NSE', 'A', 2, quote);
    cache.update('NSE:B', 'NSE', 'B', 2, { ltp: 7, timestamp: 1, last_trade_quantity: 9, avg_trade_price: 6.5 });
    expect(cache.getQuotes('NSE', 'A')).toStrictEqual({
      quote: {
        NSE: {
          A: { timestamp: 1700000000000, open: 1410, high: 1420, low: 1405, close: 1400, ltp: 1418.5, volume: 10, last_trade_quantity: 3, avg_trade_price: 1417.25, change: 18.5, change_percent: 1.32 },
        },
      },
    });
    expect(cache.getQuotes('NSE', 'B').quote.NSE!.B).toStrictEqual({ timestamp: 1, open: 0, high: 0, low: 0, close: 0, ltp: 7, volume: 0, last_trade_quantity: 9, avg_trade_price: 6.5, change: 0, change_percent: 0 });
    // An LTP tick does not touch the quote view.
    cache.update('NSE:A', 'NSE', 'A', 1, { ltp: 1, timestamp: 2 });
    expect(cache.getQuotes('NSE', 'A').quote.NSE!.A!.ltp).toBe(1418.5);
    expect(cache.getLtp('NSE', 'A').ltp.NSE!.A).toStrictEqual({ timestamp: 2, ltp: 1 });
  });

  it('getDepth: books keyed "1".. with qty, padded to five zero levels; only depth ticks with a book', () => {
    const cache = new LatestValues(() => 0);
    cache.update('NSE:A', 'NSE', 'A', 3, { ltp: 1, timestamp: 1 }); // no book: ignored
    expect(cache.getDepth()).toStrictEqual({ depth: {} });
    cache.update('NSE:A', 'NSE', 'A', 3, depth);
    const zero = { price: 0, qty: 0, orders: 0 };
    expect(cache.getDepth()).toStrictEqual({
      depth: {
        NSE: {
          A: {
            timestamp: 1700000000000,
            ltp: 1418.5,
            buyBook: { 1: { price: 1418.45, qty: 5, orders: 2 }, 2: { price: 1418.4, qty: 7, orders: 1 }, 3: zero, 4: zero, 5: zero },
            sellBook: { 1: { price: 1418.55, qty: 4, orders: 3 }, 2: zero, 3: zero, 4: zero, 5: zero },
          },
        },
      },
    });
  });

  it('views are copies, and forgotten streams disappear', () => {
    const cache = new LatestValues(() => 0);
    cache.update('NSE:A', 'NSE', 'A', 3, depth);
    cache.getDepth().depth.NSE!.A!.buyBook['1']!.price = -1;
    cache.getLtp().ltp.NSE!.A!.ltp = -1;
    expect(cache.getDepth().depth.NSE!.A!.buyBook['1']!.price).toBe(1418.45);
    expect(cache.getLtp().ltp.NSE!.A!.ltp).toBe(1418.5);
    cache.forget('NSE:A');
    expect([cache.getLtp(), cache.getQuotes(), cache.getDepth()]).toStrictEqual([{ ltp: {} }, { quote: {} }, { depth: {} }]);
  });
});

describe('gaps', () => {
  it('a jump is a gap; repeats and restarts are not', () => {
    const gaps = new GapTracker();
    expect(gaps.observe('NSE:A', 1, 'NSE', 'A', 5)).toBeUndefined();
    expect(gaps.observe('NSE:A', 1, 'NSE', 'A', 6)).toBeUndefined();
    expect(gaps.observe('NSE:A', 1, 'NSE', 'A', 9)).toStrictEqual({ stream: 'NSE:A', exchange: 'NSE', symbol: 'A', mode: 1, reason: 'seq', expected: 7, received: 9, missed: 2 });
    expect(gaps.observe('NSE:A', 1, 'NSE', 'A', 9)).toBeUndefined(); // a snapshot repeats the last number
    expect(gaps.observe('NSE:A', 1, 'NSE', 'A', 1)).toBeUndefined(); // the gateway restarted
    expect(gaps.observe('NSE:A', 1, 'NSE', 'A', 2)).toBeUndefined();
    expect(gaps.observe('NSE:B', 1, 'NSE', 'B', 40)).toBeUndefined(); // streams are separate
    gaps.forget('NSE:A');
    expect(gaps.observe('NSE:A', 1, 'NSE', 'A', 10)).toBeUndefined();
  });

  it('numbers each mode of a stream apart: LTP and Depth messages interleaved are no gap', () => {
    const gaps = new GapTracker();
    for (const [mode, seq] of [[1, 40], [3, 100], [1, 41], [3, 101], [1, 42]] as const) {
      expect(gaps.observe('NSE:A', mode, 'NSE', 'A', seq)).toBeUndefined();
    }
    expect(gaps.observe('NSE:A', 3, 'NSE', 'A', 104)).toMatchObject({ mode: 3, expected: 102, missed: 2 });
    gaps.forget('NSE:A');
    expect(gaps.observe('NSE:A', 3, 'NSE', 'A', 200)).toBeUndefined();
  });
});

describe('reconnect backoff', () => {
  const settings = reconnectSettings({ initialDelayMs: 100, maxDelayMs: 1000, jitter: 1 });

  it('the ceiling doubles per attempt up to the maximum; full jitter spreads below it', () => {
    expect([1, 2, 3, 4, 5, 50].map((n) => reconnectDelay(n, settings, () => 0))).toEqual([100, 200, 400, 800, 1000, 1000]);
    expect(reconnectDelay(3, settings, () => 0.999999)).toBe(0);
    expect(reconnectDelay(3, settings, () => 0.5)).toBe(200);
    const half = reconnectSettings({ initialDelayMs: 100, maxDelayMs: 1000, jitter: 0.5 });
    expect(reconnectDelay(1, half, () => 0.999999)).toBe(50);
    expect(reconnectDelay(1, reconnectSettings({ initialDelayMs: 100, jitter: 0 }), Math.random)).toBe(100);
  });

  it('defaults, and bad settings refused with INVALID_ARGUMENT', () => {
    expect(reconnectSettings()).toStrictEqual({ initialDelayMs: 500, maxDelayMs: 30_000, jitter: 1 });
    expect(reconnectSettings({ maxDelayMs: 2000, initialDelayMs: undefined })).toStrictEqual({ initialDelayMs: 500, maxDelayMs: 2000, jitter: 1 });
    for (const bad of [{ initialDelayMs: 0 }, { initialDelayMs: -1 }, { maxDelayMs: 100 }, { jitter: 1.5 }, { jitter: -0.1 }, { initialDelayMs: Number.NaN }]) {
      expect(() => reconnectSettings(bad)).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
    }
  });
});
