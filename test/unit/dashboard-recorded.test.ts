/** The dashboard's "Recorded" view model (src/dashboard/recorded.ts): sorting, ranges in local time, durations, the honest empty states. */
import { describe, expect, it } from 'vitest';
import { DEFAULT_SORT, type RecordedAnswer, type RecordedStream, formatDuration, formatRange, recordedLook, sortStreams, storeLine } from '../../src/dashboard/recorded.js';

const IST = { timeZone: 'Asia/Kolkata' };
const now = Date.parse('2024-05-03T10:00:00Z'); // 15:30 IST

const stream = (symbol: string, first: string, last: string, ticks: number, rate: number, exchange = 'NSE', feed = 'simulator'): RecordedStream => ({ feed, exchange, symbol, first, last, ticks, rate });
const streams = [
  stream('TCS', '2024-05-03T03:45:00Z', '2024-05-03T09:59:58Z', 5000, 0),
  stream('RELIANCE', '2024-05-01T03:45:00Z', '2024-05-03T09:59:59Z', 120_000, 12.34),
  stream('SENSEX', '2024-05-03T04:00:00Z', '2024-05-03T04:00:00Z', 1, 0, 'BSE_INDEX'),
];

describe('sortStreams', () => {
  it('orders by feed, exchange, symbol by default, and by any column either way', () => {
    expect(sortStreams(streams).map((s) => s.symbol)).toEqual(['SENSEX', 'RELIANCE', 'TCS']);
    expect(sortStreams(streams, { key: 'stream', descending: true }).map((s) => s.symbol)).toEqual(['TCS', 'RELIANCE', 'SENSEX']);
    expect(sortStreams(streams, { key: 'ticks', descending: true }).map((s) => s.symbol)).toEqual(['RELIANCE', 'TCS', 'SENSEX']);
    expect(sortStreams(streams, { key: 'first', descending: false }).map((s) => s.symbol)).toEqual(['RELIANCE', 'TCS', 'SENSEX']);
    // Equal rates fall back to the stream order.
    expect(sortStreams(streams, { key: 'rate', descending: false }).map((s) => s.symbol)).toEqual(['SENSEX', 'TCS', 'RELIANCE']);
    expect(streams.map((s) => s.symbol)).toEqual(['TCS', 'RELIANCE', 'SENSEX']); // a copy is sorted
  });
});

describe('ranges and durations', () => {
  it('shows times only within today, dates otherwise, in the given zone', () => {
    expect(formatRange(Date.parse('2024-05-03T03:45:00Z'), Date.parse('2024-05-03T09:59:58Z'), { now, ...IST }).text).toBe('09:15:00 – 15:29:58');
    expect(formatRange(Date.parse('2024-05-01T03:45:00Z'), Date.parse('2024-05-03T09:59:59Z'), { now, ...IST }).text).toBe('1 May 09:15:00 – 15:29:59');
    // 20:00 UTC on 2 May is 01:30 on 3 May in India: today there.
    expect(formatRange(Date.parse('2024-05-02T20:00:00Z'), Date.parse('2024-05-02T20:00:00Z'), { now, ...IST }).text).toBe('01:30:00 – 01:30:00');
    expect(formatRange(Date.parse('2024-05-02T20:00:00Z'), Date.parse('2024-05-02T20:00:00Z'), { now, timeZone: 'UTC' }).text).toBe('2 May 20:00:00 – 2 May 20:00:00');
    const { title } = formatRange(Date.parse('2024-05-03T03:45:00Z'), Date.parse('2024-05-03T09:59:58Z'), { now, ...IST });
    expect(title).toContain('3 May 2024');
    expect(formatRange(Number.NaN, 0, { now }).text).toBe('—');
  });

  it('gives the length of a range', () => {
    expect(formatDuration(0, 0)).toBe('0s');
    expect(formatDuration(0, 45_000)).toBe('45s');
    expect(formatDuration(0, 6 * 3_600_000 + 15 * 60_000)).toBe('6h 15m');
    expect(formatDuration(0, 2 * 86_400_000 + 6 * 3_600_000)).toBe('2d 06h');
  });
});

describe('recordedLook', () => {
  const answer: RecordedAnswer = { history: 'recorded', feed: 'simulator', recording: { state: 'recording' }, store: { days: 3, oldest: '2024-05-01', newest: '2024-05-03' }, data: streams };

  it('makes one row per stream, sorted, with range, duration, ticks and rate', () => {
    const look = recordedLook(answer, DEFAULT_SORT, { now, ...IST });
    expect(look.notice).toBe('');
    expect(look.summary).toBe('Recording · 3 days held (2024-05-01 to 2024-05-03)');
    expect(look.rows.map((r) => r.key)).toEqual(['simulator/BSE_INDEX:SENSEX', 'simulator/NSE:RELIANCE', 'simulator/NSE:TCS']);
    expect(look.rows[1]).toMatchObject({ symbol: 'RELIANCE', exchange: 'NSE', feed: 'simulator', range: '1 May 09:15:00 – 15:29:59', duration: '2d 06h', ticks: '1,20,000', rate: '12.3', live: true });
    expect(look.rows[2]).toMatchObject({ ticks: '5,000', rate: '0', live: false });
  });

  it('says honestly why the list is empty', () => {
    const none: RecordedAnswer = { history: 'none', message: 'The history store holds nothing: recording was never on here, or every day was deleted', recording: { state: 'off' }, store: { days: 0 }, data: [] };
    expect(recordedLook(none, DEFAULT_SORT, { now })).toEqual({ rows: [], notice: none.message, summary: 'Not recording · nothing stored' });
    const noFeed = recordedLook({ history: 'no-feed', data: [] }, DEFAULT_SORT, { now });
    expect(noFeed.notice).toMatch(/No feed serves your broker/);
    expect(noFeed.summary).toBe('Recording state unknown · nothing stored');
    const notYours = recordedLook({ ...answer, data: [] }, DEFAULT_SORT, { now });
    expect(notYours.notice).toMatch(/None of your streams is recorded yet/);
    expect(recordedLook({ ...answer, damaged_days: ['2024-05-02'] }, DEFAULT_SORT, { now }).notice).toBe('Days that could not be read: 2024-05-02.');
  });

  it('names a stopped recording with its reason', () => {
    expect(storeLine({ ...answer, recording: { state: 'stopped', reason: 'the disk is full' }, store: { days: 1, oldest: '2024-05-03', newest: '2024-05-03' } })).toBe('Recording stopped: the disk is full · 1 day held');
  });
});
