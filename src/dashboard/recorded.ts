/**
 * The "Recorded" view's model (pure): the caller's recorded streams from
 * `/api/history/streams`, sorted, with each range in local time and its length, the ticks and
 * the recent rate formatted, and a line that says honestly what the store holds.
 */
import { formatInteger, formatRate, formatUptime } from './format.js';

/** One stream as `/api/history/streams` lists it. */
export interface RecordedStream {
  feed: string;
  exchange: string;
  symbol: string;
  /** ISO times of the first and last recorded tick. */
  first: string;
  last: string;
  ticks: number;
  /** Ticks per second over the last minute. */
  rate: number;
  mode?: string;
}

export interface RecordedAnswer {
  /** `recorded`: the store holds days; `none`: it holds nothing; `no-feed`: no feed serves the caller here. */
  history: string;
  message?: string;
  feed?: string;
  recording?: { state?: string; reason?: string };
  store?: { days?: number; bytes?: number; oldest?: string; newest?: string };
  damaged_days?: string[];
  data: RecordedStream[];
}

export type SortKey = 'stream' | 'first' | 'last' | 'ticks' | 'rate';
export interface Sort {
  key: SortKey;
  descending: boolean;
}

/** The order a list starts in: by feed, exchange, symbol. */
export const DEFAULT_SORT: Sort = { key: 'stream', descending: false };

export interface RecordedRow {
  /** `FEED/EXCHANGE:SYMBOL`, unique in a list. */
  key: string;
  symbol: string;
  exchange: string;
  feed: string;
  range: string;
  /** The range's dates in full, for a tooltip. */
  rangeTitle: string;
  duration: string;
  ticks: string;
  rate: string;
  /** Ticks came in the last minute. */
  live: boolean;
}

export interface RecordedLook {
  rows: RecordedRow[];
  /** Shown instead of the table when there are no rows, else under it; empty for none. */
  notice: string;
  /** The store in one line: recording state and days held. */
  summary: string;
}

const compareText = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);
const streamKey = (s: RecordedStream): string => `${s.feed}/${s.exchange}:${s.symbol}`;

/** A sorted copy; ties (and the stream key itself) fall back to feed, exchange, symbol. */
export function sortStreams(streams: readonly RecordedStream[], sort: Sort = DEFAULT_SORT): RecordedStream[] {
  const byStream = (a: RecordedStream, b: RecordedStream): number => compareText(a.feed, b.feed) || compareText(a.exchange, b.exchange) || compareText(a.symbol, b.symbol);
  const value = (s: RecordedStream): number => {
    switch (sort.key) {
      case 'first':
        return Date.parse(s.first);
      case 'last':
        return Date.parse(s.last);
      case 'ticks':
        return s.ticks;
      default:
        return s.rate;
    }
  };
  const sign = sort.descending ? -1 : 1;
  return [...streams].sort((a, b) => (sort.key === 'stream' ? sign * byStream(a, b) : sign * (value(a) - value(b)) || byStream(a, b)));
}

export interface TimeOptions {
  /** The page's time now (ms): a range within today shows times only. */
  now: number;
  /** An IANA zone; unset: the browser's own. */
  timeZone?: string;
}

function formats(timeZone: string | undefined): { time: Intl.DateTimeFormat; date: Intl.DateTimeFormat; day: Intl.DateTimeFormat } {
  const zone = timeZone === undefined ? {} : { timeZone };
  return {
    time: new Intl.DateTimeFormat('en-GB', { hour: '2-digit', minute: '2-digit', second: '2-digit', hourCycle: 'h23', ...zone }),
    date: new Intl.DateTimeFormat('en-GB', { day: 'numeric', month: 'short', ...zone }),
    day: new Intl.DateTimeFormat('en-CA', { year: 'numeric', month: '2-digit', day: '2-digit', ...zone }),
  };
}

/**
 * `09:15:02 – 15:29:58` when both ends are today (local time), else with their dates:
 * `2 May 09:15:02 – 3 May 15:29:58`; the title has both in full with the zone's offset.
 */
export function formatRange(first: number, last: number, { now, timeZone }: TimeOptions): { text: string; title: string } {
  if (!Number.isFinite(first) || !Number.isFinite(last)) return { text: '—', title: '' };
  const f = formats(timeZone);
  const today = f.day.format(now);
  const end = (ms: number): string => (f.day.format(ms) === today ? f.time.format(ms) : `${f.date.format(ms)} ${f.time.format(ms)}`);
  const full = new Intl.DateTimeFormat('en-GB', { dateStyle: 'medium', timeStyle: 'long', ...(timeZone === undefined ? {} : { timeZone }) });
  return { text: `${end(first)} – ${end(last)}`, title: `${full.format(first)} – ${full.format(last)}` };
}

/** A range's length: `45s`, `12m 05s`, `3h 07m`, `2d 04h`; `0s` for a single tick. */
export function formatDuration(first: number, last: number): string {
  return formatUptime(Math.max(0, last - first) / 1000);
}

/** The store and recording state in one line. */
export function storeLine(answer: RecordedAnswer): string {
  const state = answer.recording?.state;
  const recording =
    state === 'recording' ? 'Recording' : state === 'stopped' ? `Recording stopped${answer.recording?.reason ? `: ${answer.recording.reason}` : ''}` : state === 'off' ? 'Not recording' : 'Recording state unknown';
  const days = answer.store?.days;
  if (days === undefined || days === 0) return `${recording} · nothing stored`;
  const span = answer.store?.oldest && answer.store.newest && answer.store.oldest !== answer.store.newest ? ` (${answer.store.oldest} to ${answer.store.newest})` : '';
  return `${recording} · ${days} ${days === 1 ? 'day' : 'days'} held${span}`;
}

export function recordedLook(answer: RecordedAnswer, sort: Sort, time: TimeOptions): RecordedLook {
  const rows = sortStreams(answer.data, sort).map((s): RecordedRow => {
    const first = Date.parse(s.first);
    const last = Date.parse(s.last);
    const range = formatRange(first, last, time);
    return {
      key: streamKey(s),
      symbol: s.symbol,
      exchange: s.exchange,
      feed: s.feed,
      range: range.text,
      rangeTitle: range.title,
      duration: formatDuration(first, last),
      ticks: formatInteger(s.ticks),
      rate: formatRate(s.rate),
      live: s.rate > 0,
    };
  });
  let notice = '';
  if (answer.history === 'no-feed') notice = answer.message ?? 'No feed serves your broker here, so nothing of yours is recorded.';
  else if (answer.history === 'none') notice = answer.message ?? 'The history store holds nothing.';
  else if (rows.length === 0) notice = answer.recording?.state === 'recording' ? 'None of your streams is recorded yet: the selected streams appear once their feed delivers ticks.' : 'None of your streams is recorded.';
  if (answer.damaged_days && answer.damaged_days.length > 0) {
    notice = `${notice ? `${notice} ` : ''}Days that could not be read: ${answer.damaged_days.join(', ')}.`;
  }
  return { rows, notice, summary: storeLine(answer) };
}
