/** `tickcast watch` formatting: prices, plain lines, the terminal table, ages and staleness. Pure. */
import { describe, expect, it } from 'vitest';
import { type Board, boardLines, formatPrice, plainLine } from '../../src/cli/watch.js';
import { FeedStates, formatAge, streamFreshness } from '../../src/client/freshness.js';
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

  const NOW = 1_000_000;
  const board = (over: Partial<Board> = {}): Board => ({
    instruments: [{ exchange: 'NSE_INDEX', symbol: 'NIFTY' }, { exchange: 'NSE', symbol: 'RELIANCE' }],
    latest: new Map([['NSE:RELIANCE', { message: message(depth), at: NOW - 400 }]]),
    mode: 3,
    now: NOW,
    staleAfterMs: 5000,
    feeds: new FeedStates(),
    connected: true,
    status: 'connected',
    ...over,
  });
  const words = (line: string | undefined): string[] => line!.trim().split(/\s+/);

  it('the table: a header, a row per instrument in order (… until its first tick) with its age, the status last', () => {
    const lines = boardLines(board());
    expect(lines).toHaveLength(4);
    expect(words(lines[0])).toEqual(['INSTRUMENT', 'LTP', 'CHG%', 'BID', 'BID', 'QTY', 'ASK', 'ASK', 'QTY', 'TIME', 'AGE']);
    expect(words(lines[1])).toEqual(['NSE_INDEX:NIFTY', '…', '…', '…', '…', '…', '…', '…', '…']);
    expect(words(lines[2]).slice(0, 7)).toEqual(['NSE:RELIANCE', '1418.00', '-0.18%', '1417.95', '10', '1418.05', '4']);
    expect(words(lines[2]).at(-1)).toBe('0.4s');
    expect(lines[3]).toBe('connected');
    // Columns line up: every unmarked row is as wide as the header.
    expect(new Set(lines.slice(0, 3).map((l) => l.length)).size).toBe(1);
  });

  it('ages grow with the clock alone, and past the threshold the row is marked stale', () => {
    const ageAt = (now: number): string[] => words(boardLines(board({ now }))[2]).slice(-2);
    expect(ageAt(NOW).at(-1)).toBe('0.4s');
    expect(ageAt(NOW + 4600).at(-1)).toBe('5.0s'); // exactly the threshold: not yet stale
    expect(ageAt(NOW + 4601)).toEqual(['5.0s', 'stale']);
    expect(ageAt(NOW + 12_000)).toEqual(['12s', 'stale']);
    expect(ageAt(NOW + 185_000)).toEqual(['3m', 'stale']);
    // A row still waiting for its first tick is not called stale: it has no price to distrust.
    expect(boardLines(board({ now: NOW + 60_000 }))[1]).not.toContain('stale');
  });

  it('a feed that is not live marks every row and leads the status line; live again, the marks go', () => {
    const feeds = new FeedStates();
    feeds.update({ feed: 'simulator', status: 'down', message: 'adapter stopped' });
    const down = boardLines(board({ feeds }));
    expect(words(down[1]).slice(-2)).toEqual(['feed', 'down']);
    expect(words(down[2]).slice(-3)).toEqual(['0.4s', 'feed', 'down']);
    expect(down[3]).toBe('feed simulator down (adapter stopped) · connected');

    feeds.update({ feed: 'simulator', status: 'reconnecting' });
    expect(words(boardLines(board({ feeds }))[2]).slice(-2)).toEqual(['feed', 'reconnecting']);

    feeds.update({ feed: 'simulator', status: 'live' });
    const live = boardLines(board({ feeds }));
    expect(words(live[2]).at(-1)).toBe('0.4s');
    expect(live[3]).toBe('feed simulator live · connected');
  });

  it('without a connection every row is marked, whatever the feed last said', () => {
    const feeds = new FeedStates();
    feeds.update({ feed: 'simulator', status: 'live' });
    const lines = boardLines(board({ feeds, connected: false, status: 'reconnecting (attempt 1, in 300 ms)' }));
    for (const row of lines.slice(1, 3)) expect(row).toMatch(/ {2}no connection$/);
  });
});

describe('ages and freshness', () => {
  it('formats ages compactly, never rounding up', () => {
    expect([0, 399, 400, 9999, 10_000, 59_999, 60_000, 3_599_999, 3_600_000, 86_400_000 * 2].map(formatAge)).toEqual([
      '0.0s', '0.3s', '0.4s', '9.9s', '10s', '59s', '1m', '59m', '1h', '2d',
    ]);
    expect([-5, Number.NaN].map(formatAge)).toEqual(['0.0s', '0.0s']);
  });

  it('ranks what makes a price untrustworthy: no connection, then the feed, then its age', () => {
    const base = { lastTickAt: 0, now: 6000, staleAfterMs: 5000, feedDown: undefined, connected: true };
    const down = { feed: 'f', status: 'down' };
    expect(streamFreshness(base)).toEqual({ state: 'stale', age: '6.0s', marker: 'stale' });
    expect(streamFreshness({ ...base, now: 100 })).toEqual({ state: 'fresh', age: '0.1s', marker: '' });
    expect(streamFreshness({ ...base, lastTickAt: undefined })).toEqual({ state: 'waiting', age: undefined, marker: '' });
    expect(streamFreshness({ ...base, feedDown: down })).toMatchObject({ state: 'feed', marker: 'feed down' });
    expect(streamFreshness({ ...base, lastTickAt: undefined, feedDown: down })).toMatchObject({ state: 'feed', marker: 'feed down' });
    expect(streamFreshness({ ...base, feedDown: down, connected: false })).toMatchObject({ state: 'offline', marker: 'no connection' });
  });

  it('knows the feeds from their last status; one not live is reported', () => {
    const feeds = new FeedStates();
    expect(feeds.notLive()).toBeUndefined();
    feeds.update({ feed: 'a', status: 'live' });
    feeds.update({ feed: 'b', status: 'stale', message: 'silent' });
    expect(feeds.notLive()).toEqual({ feed: 'b', status: 'stale', message: 'silent' });
    feeds.update({ feed: 'b', status: 'live' });
    expect(feeds.notLive()).toBeUndefined();
    expect(feeds.all().map((f) => f.feed)).toEqual(['a', 'b']);
  });
});
