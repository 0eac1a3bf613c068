/** The dashboard's pure parts: formatting, tick merging, sparklines, latency quantiles, rates, watchlists, staleness. */
import { describe, expect, it } from 'vitest';
import { FeedStates } from '../../src/client/freshness.js';
import { direction, formatChange, formatInteger, formatMillis, formatPercent, formatPrice, formatRate, formatUptime } from '../../src/dashboard/format.js';
import { parseInstrument, parseWatchlist } from '../../src/dashboard/instrument.js';
import { histogramDelta, parseHistogram, quantile } from '../../src/dashboard/prometheus.js';
import { mergeTick, spread } from '../../src/dashboard/quote.js';
import { RateMeter } from '../../src/dashboard/rate.js';
import { PriceSeries, sparklinePath } from '../../src/dashboard/sparkline.js';
import { STALE_AFTER_MS, feedLook, rowLook } from '../../src/dashboard/staleness.js';

describe('format', () => {
  it('groups digits the Indian way and pads paise', () => {
    expect(formatPrice(1418.3)).toBe('1,418.30');
    expect(formatPrice(1234567.5)).toBe('12,34,567.50');
    expect(formatPrice(13.25, 4)).toBe('13.2500');
    expect(formatInteger(12345678)).toBe('1,23,45,678');
  });

  it('signs changes with + and a true minus, and leaves zero unsigned', () => {
    expect(formatChange(2.35)).toBe('+2.35');
    expect(formatChange(-3.1)).toBe('\u22123.10');
    expect(formatChange(0)).toBe('0.00');
    expect(formatChange(-0.001)).toBe('0.00');
    expect(formatPercent(0.874)).toBe('+0.87%');
    expect(formatPrice(-5)).toBe('\u22125.00');
  });

  it('shows a dash for anything that is not a finite number', () => {
    for (const value of [undefined, null, NaN, Infinity, '12', {}]) {
      expect(formatPrice(value)).toBe('—');
      expect(formatChange(value)).toBe('—');
      expect(formatInteger(value)).toBe('—');
    }
    expect(formatRate(-1)).toBe('—');
  });

  it('formats rates, durations and latencies compactly', () => {
    expect([formatRate(0), formatRate(8.46), formatRate(1240.4), formatRate(12_345), formatRate(1_250_000)]).toEqual(['0', '8.5', '1,240', '12.3k', '1.25M']);
    expect([formatMillis(0.42), formatMillis(12.4), formatMillis(1250)]).toEqual(['0.4 ms', '12 ms', '1.25 s']);
    expect([formatUptime(45), formatUptime(725), formatUptime(11_220), formatUptime(187_200)]).toEqual(['45s', '12m 05s', '3h 07m', '2d 04h']);
  });

  it('tells which way a price moved', () => {
    expect([direction(undefined, 1), direction(1, 1), direction(1, 2), direction(2, 1)]).toEqual([0, 0, 1, -1]);
  });
});

describe('mergeTick', () => {
  const depthTick = {
    ltp: 1420.5,
    volume: 1200,
    open: 1410,
    high: 1425,
    low: 1405,
    close: 1418,
    change: 2.5,
    change_percent: 0.18,
    total_buy_quantity: 5000,
    total_sell_quantity: 4000,
    depth: {
      buy: [{ price: 1420.45, quantity: 10, orders: 2 }, { price: 1420.4, quantity: 20, orders: 3 }],
      sell: [{ price: 1420.55, quantity: 15, orders: 1 }],
    },
  };

  it('takes a depth payload whole: quote fields, book, best bid and ask', () => {
    const quote = mergeTick(undefined, depthTick);
    expect(quote).toMatchObject({ ltp: 1420.5, volume: 1200, close: 1418, change: 2.5, changePercent: 0.18, totalBuyQuantity: 5000 });
    expect(quote.bid).toEqual({ price: 1420.45, quantity: 10, orders: 2 });
    expect(quote.ask).toEqual({ price: 1420.55, quantity: 15, orders: 1 });
    expect(quote.depth?.buy).toHaveLength(2);
    expect(spread(quote)).toBeCloseTo(0.1, 6);
  });

  it('updates the price from an LTP tick and derives the change from the known close', () => {
    const quote = mergeTick(mergeTick(undefined, depthTick), { ltp: 1400.0 });
    expect(quote.ltp).toBe(1400);
    expect(quote.change).toBeCloseTo(-18, 6);
    expect(quote.changePercent).toBeCloseTo((-18 / 1418) * 100, 6);
    expect(quote.volume).toBe(1200);
    expect(quote.bid?.price).toBe(1420.45);
  });

  it('derives no change from a zero close (Angel sends 0) and drops zero-padded levels', () => {
    const quote = mergeTick(undefined, { ltp: 100, close: 0, depth: { buy: [{ price: 0, quantity: 0, orders: 0 }], sell: 'junk' } });
    expect(quote.change).toBeUndefined();
    expect(quote.depth).toEqual({ buy: [], sell: [] });
    expect(quote.bid).toBeUndefined();
    expect(spread(quote)).toBeUndefined();
  });

  it('ignores fields of the wrong type', () => {
    expect(mergeTick({ ltp: 5 }, { ltp: '6', volume: null })).toEqual({ ltp: 5 });
  });
});

describe('sparklines', () => {
  it('keeps one point per interval, the latest value of each, up to its capacity', () => {
    const series = new PriceSeries(3, 1000);
    series.add(1, 0);
    series.add(2, 500);
    expect(series.points()).toEqual([2]);
    series.add(3, 1000);
    series.add(4, 2000);
    series.add(5, 3000);
    expect(series.points()).toEqual([3, 4, 5]);
    series.add(NaN, 5000);
    expect(series.points()).toEqual([3, 4, 5]);
  });

  it('scales the path into the box, highest value at the top', () => {
    expect(sparklinePath([1], 100, 20)).toBe('');
    expect(sparklinePath([1, 3, 2], 100, 20, 0)).toBe('M0.0 20.0L50.0 0.0L100.0 10.0');
    expect(sparklinePath([5, 5], 100, 20)).toBe('M0.0 10.0L100.0 10.0');
  });
});

describe('latency from /metrics', () => {
  const scrape = (counts: number[], sum: number): string =>
    [
      '# HELP tickcast_publish_to_send_seconds latency',
      '# TYPE tickcast_publish_to_send_seconds histogram',
      ...[0.001, 0.002, 0.005].map((le, i) => `tickcast_publish_to_send_seconds_bucket{le="${le}"} ${counts[i]}`),
      `tickcast_publish_to_send_seconds_bucket{le="+Inf"} ${counts[3]}`,
      `tickcast_publish_to_send_seconds_sum ${sum}`,
      `tickcast_publish_to_send_seconds_count ${counts[3]}`,
      'tickcast_connections 3',
    ].join('\n');

  it('parses the histogram and interpolates quantiles inside buckets', () => {
    const histogram = parseHistogram(scrape([50, 90, 100, 100], 0.15), 'tickcast_publish_to_send_seconds')!;
    expect(histogram.count).toBe(100);
    expect(histogram.buckets.map((b) => b.le)).toEqual([0.001, 0.002, 0.005, Infinity]);
    expect(quantile(histogram, 0.5)).toBeCloseTo(0.001, 9);
    expect(quantile(histogram, 0.7)).toBeCloseTo(0.0015, 9);
    expect(quantile(histogram, 0.99)).toBeCloseTo(0.0047, 9);
    expect(parseHistogram('tickcast_connections 3', 'tickcast_publish_to_send_seconds')).toBeUndefined();
  });

  it('looks only at what was observed since the previous scrape', () => {
    const name = 'tickcast_publish_to_send_seconds';
    const before = parseHistogram(scrape([100, 100, 100, 100], 0.05), name)!;
    const after = parseHistogram(scrape([100, 100, 200, 200], 0.45), name)!;
    const recent = histogramDelta(after, before);
    expect(recent.count).toBe(100);
    expect(quantile(recent, 0.5)).toBeCloseTo(0.0035, 9);
    expect(histogramDelta(before, after)).toBe(before); // a restart: counts went down
    expect(quantile(histogramDelta(before, before), 0.5)).toBeUndefined();
  });

  it('reports the last finite bound for ranks in the +Inf bucket', () => {
    const histogram = parseHistogram(scrape([0, 0, 0, 10], 30), 'tickcast_publish_to_send_seconds')!;
    expect(quantile(histogram, 0.99)).toBe(0.005);
  });
});

describe('RateMeter', () => {
  it('turns running totals into a per-second rate, and starts over when a total shrinks', () => {
    const meter = new RateMeter();
    expect(meter.sample(100, 0)).toBeUndefined();
    expect(meter.sample(300, 2000)).toBe(100);
    expect(meter.sample(300, 2000)).toBe(100); // no time passed: the last rate stands
    expect(meter.sample(10, 4000)).toBeUndefined();
    expect(meter.sample(60, 4500)).toBe(100);
  });
});

describe('instruments and the stored watchlist', () => {
  it('parses EXCHANGE:SYMBOL in any case and refuses anything else', () => {
    expect(parseInstrument('nse:reliance')).toEqual({ exchange: 'NSE', symbol: 'RELIANCE' });
    expect(parseInstrument(' NSE_INDEX : NIFTY ')).toEqual({ exchange: 'NSE_INDEX', symbol: 'NIFTY' });
    expect(parseInstrument('NSE:M&M')).toEqual({ exchange: 'NSE', symbol: 'M&M' });
    for (const bad of ['RELIANCE', 'NSE:', ':TCS', 'NSE:<b>', '1NSE:TCS']) expect(parseInstrument(bad), bad).toBeUndefined();
  });

  it('restores a stored watchlist, skipping junk, duplicates and anything past the limit', () => {
    expect(parseWatchlist(JSON.stringify(['NSE:TCS', 'nse:tcs', 42, 'bad', 'NSE_INDEX:NIFTY', 'BSE:INFY']), 2)).toEqual([
      { exchange: 'NSE', symbol: 'TCS' },
      { exchange: 'NSE_INDEX', symbol: 'NIFTY' },
    ]);
    expect(parseWatchlist('{not json', 5)).toEqual([]);
    expect(parseWatchlist('{"a":1}', 5)).toEqual([]);
    expect(parseWatchlist(null, 5)).toEqual([]);
  });
});

describe('ages, stale rows and the feed state', () => {
  const live = { now: 100_000, feedDown: undefined, connected: true };

  it('shows each row the age of its last tick, and marks it stale past the threshold', () => {
    expect(STALE_AFTER_MS).toBe(5000);
    expect(rowLook(99_600, live)).toEqual({ state: 'fresh', age: '0.4s', mark: '', rowClass: undefined });
    expect(rowLook(100_000 - STALE_AFTER_MS, live)).toMatchObject({ state: 'fresh', age: '5.0s' });
    expect(rowLook(88_000, live)).toEqual({ state: 'stale', age: '12s', mark: 'stale', rowClass: 'row-stale' });
    expect(rowLook(100_000 - 3 * 60_000, live)).toMatchObject({ age: '3m', rowClass: 'row-stale' });
    expect(rowLook(undefined, live)).toEqual({ state: 'waiting', age: '—', mark: '', rowClass: undefined });
  });

  it('marks every row while the feed is not live or the connection is down, fresh ticks or not', () => {
    const feedDown = { feed: 'simulator', status: 'down' };
    expect(rowLook(99_900, { ...live, feedDown })).toEqual({ state: 'feed', age: '0.1s', mark: 'feed down', rowClass: 'row-feed-down' });
    expect(rowLook(undefined, { ...live, feedDown: { feed: 'x', status: 'reconnecting' } })).toMatchObject({ mark: 'feed reconnecting', rowClass: 'row-feed-down' });
    expect(rowLook(99_900, { ...live, feedDown, connected: false })).toMatchObject({ mark: 'no connection', rowClass: 'row-offline' });
  });

  it('shows the feed pill once a feed has reported, with a notice while it is not live', () => {
    const feeds = new FeedStates();
    expect(feedLook(feeds)).toMatchObject({ hidden: true, notice: '' });
    feeds.update({ feed: 'simulator', status: 'live' });
    expect(feedLook(feeds)).toEqual({ hidden: false, kind: 'pill-ok', label: 'Feed live', title: 'simulator: live', notice: '' });
    feeds.update({ feed: 'simulator', status: 'down', message: 'adapter stopped' });
    expect(feedLook(feeds)).toEqual({
      hidden: false,
      kind: 'pill-bad',
      label: 'Feed down',
      title: 'simulator: down (adapter stopped)',
      notice: 'Feed simulator is down: adapter stopped. Prices shown may be stale.',
    });
    feeds.update({ feed: 'simulator', status: 'reconnecting' });
    expect(feedLook(feeds)).toMatchObject({ kind: 'pill-warn', label: 'Feed reconnecting', notice: 'Feed simulator is reconnecting. Prices shown may be stale.' });
  });
});
