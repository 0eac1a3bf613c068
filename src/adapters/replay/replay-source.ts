/**
 * The replay's pure parts: reading the command's times, speed and stream lists, and pacing
 * recorded ticks onto the bus.
 *
 * Pacing keeps the recorded spacing divided by the speed: the first tick goes out at once and
 * each next one when its spacing from the one before, divided by the speed, has passed, summed on
 * one monotonic clock (late ticks are sent at once, never skipped, so a stalled loop delays but
 * loses nothing). A spacing longer than `maxGapMs` (a night, a weekend, a clock that jumped
 * forward while recording) counts as `maxGapMs`; one below zero (a clock that jumped back) as 0.
 * `max` sends ticks as fast as the bus takes them, yielding to the event loop after every chunk
 * so the publisher drains as it goes. The ticks, their order and which of them are sent depend
 * only on what was read and on `emit`: two runs over the same recording send the same ticks in
 * the same order.
 */
import type { RecordedTick, StreamSummary } from '../../history/store.js';

/** Ticks per second multiplier, or as fast as the bus accepts. */
export type Speed = number | 'max';

export type Parsed<T> = { ok: true; value: T } | { ok: false; message: string };

const MS_PER_DAY = 86_400_000;
const DATE = /^(\d{4})-(\d{2})-(\d{2})$/;
const EPOCH_MS = /^\d{1,16}$/;
/** ISO 8601 date and time with a zone: `2024-01-02T09:15`, seconds and fraction optional. */
const DATE_TIME = /^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?(Z|[+-]\d{2}:?\d{2})$/i;
const DATE_TIME_NO_ZONE = /^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?$/;

/** A point of the command line: an instant, or a whole UTC day (its first instant and the next day's). */
export interface TimeArg {
  start: number;
  /** For a date, the first instant of the next day; for an instant, the instant itself. */
  end: number;
  isDate: boolean;
}

/**
 * Reads an ISO 8601 date (`2024-01-02`, that whole UTC day), date and time with a zone
 * (`2024-01-02T09:15:00+05:30`, `…Z`) or epoch milliseconds.
 */
export function parseTime(text: string): Parsed<TimeArg> {
  const given = text.trim();
  const date = DATE.exec(given);
  if (date) {
    const start = Date.UTC(Number(date[1]), Number(date[2]) - 1, Number(date[3]));
    if (new Date(start).toISOString().slice(0, 10) !== given) return { ok: false, message: `"${text}" is not a calendar date` };
    return { ok: true, value: { start, end: start + MS_PER_DAY, isDate: true } };
  }
  if (EPOCH_MS.test(given)) {
    const ms = Number(given);
    return { ok: true, value: { start: ms, end: ms, isDate: false } };
  }
  const dateTime = DATE_TIME.exec(given);
  if (dateTime) {
    const [, y, mo, d, h, mi, s = '0'] = dateTime;
    const ms = Date.parse(given.replace(' ', 'T').replace(/([+-]\d{2})(\d{2})$/, '$1:$2'));
    // Date.parse rolls 2024-02-30 over to March: refuse what is not on the calendar or the clock.
    const day = Date.UTC(Number(y), Number(mo) - 1, Number(d));
    const calendar = new Date(day).toISOString().slice(0, 10) === `${y}-${mo}-${d}`;
    if (!Number.isFinite(ms) || !calendar || Number(h) > 23 || Number(mi) > 59 || Number(s) > 59) {
      return { ok: false, message: `"${text}" is not a valid date and time` };
    }
    return { ok: true, value: { start: ms, end: ms, isDate: false } };
  }
  if (DATE_TIME_NO_ZONE.test(given)) {
    return { ok: false, message: `"${text}" has no time zone: add Z for UTC or an offset such as +05:30` };
  }
  return { ok: false, message: `"${text}" is not a time: expected an ISO 8601 date (2024-01-02, that whole UTC day), a date and time with a zone (2024-01-02T09:15:00+05:30) or epoch milliseconds` };
}

/** The receive-time range `[from, to)` of `--from` and `--to` (a `--to` date includes that day; no `--to` after a `--from` date is that day). */
export function parseRange(fromText: string, toText: string | undefined): Parsed<{ from: number; to: number }> {
  const from = parseTime(fromText);
  if (!from.ok) return { ok: false, message: `--from ${from.message}` };
  if (toText === undefined) {
    if (!from.value.isDate) return { ok: false, message: '--to is required when --from is a time (a --from date alone replays that UTC day)' };
    return { ok: true, value: { from: from.value.start, to: from.value.end } };
  }
  const to = parseTime(toText);
  if (!to.ok) return { ok: false, message: `--to ${to.message}` };
  const range = { from: from.value.start, to: to.value.end };
  if (!(range.to > range.from)) {
    return { ok: false, message: `--from ${fromText} (${iso(range.from)}) is not before --to ${toText} (${iso(range.to)})` };
  }
  return { ok: true, value: range };
}

/** `max`, or a positive finite multiplier (`1` is real time, `10` ten times faster, `0.5` half speed). */
export function parseSpeed(text: string): Parsed<Speed> {
  const given = text.trim().toLowerCase();
  if (given === 'max') return { ok: true, value: 'max' };
  const speed = given === '' ? NaN : Number(given.replace(/x$/, ''));
  if (!Number.isFinite(speed) || !(speed > 0)) {
    return { ok: false, message: `--speed "${text}" is not valid: expected a number greater than 0 (1 is the recorded pace, 10 ten times faster) or max` };
  }
  return { ok: true, value: speed };
}

/** `--max-gap`: seconds of recorded time (0 or more), or `none` to keep every gap; in ms. */
export function parseMaxGap(text: string): Parsed<number> {
  const given = text.trim().toLowerCase();
  if (given === 'none') return { ok: true, value: Infinity };
  const seconds = given === '' ? NaN : Number(given.replace(/s$/, ''));
  if (!Number.isFinite(seconds) || seconds < 0) {
    return { ok: false, message: `--max-gap "${text}" is not valid: expected seconds of recorded time (0 or more), or none to keep every gap` };
  }
  return { ok: true, value: seconds * 1000 };
}

/** `NSE:RELIANCE,NSE:INFY` as streams (split at the first colon). */
export function parseStreams(text: string): Parsed<Array<{ exchange: string; symbol: string }>> {
  const entries = text.split(',').map((entry) => entry.trim()).filter((entry) => entry !== '');
  if (entries.length === 0) return { ok: false, message: '--streams is empty: expected EXCHANGE:SYMBOL[,EXCHANGE:SYMBOL…], e.g. NSE:RELIANCE,NSE:INFY' };
  const streams: Array<{ exchange: string; symbol: string }> = [];
  const bad: string[] = [];
  for (const entry of entries) {
    const colon = entry.indexOf(':');
    const exchange = entry.slice(0, colon).trim();
    const symbol = entry.slice(colon + 1).trim();
    // eslint-disable-next-line no-control-regex
    if (colon <= 0 || exchange === '' || symbol === '' || /[\u0000-\u001f]/.test(entry)) bad.push(JSON.stringify(entry));
    else streams.push({ exchange, symbol });
  }
  if (bad.length > 0) return { ok: false, message: `--streams ${bad.join(', ')} ${bad.length === 1 ? 'is' : 'are'} not EXCHANGE:SYMBOL (e.g. NSE:RELIANCE)` };
  return { ok: true, value: streams };
}

/** `simulator,zerodha.alice` as a list of feed ids. */
export function parseList(flag: string, text: string): Parsed<string[]> {
  const entries = text.split(',').map((entry) => entry.trim()).filter((entry) => entry !== '');
  if (entries.length === 0) return { ok: false, message: `${flag} is empty` };
  return { ok: true, value: [...new Set(entries)] };
}

/** An instant as ISO 8601 UTC, for messages. */
export function iso(ms: number): string {
  const date = new Date(ms);
  return Number.isNaN(date.getTime()) ? String(ms) : date.toISOString();
}

/** What pacing needs of time: a monotonic clock in ms and a way to wait. */
export interface Scheduler {
  now(): number;
  /** Resolves after `ms`; `0` resolves after pending I/O has run (setImmediate). */
  sleep(ms: number): Promise<void>;
}

export const systemScheduler: Scheduler = {
  now: () => performance.now(),
  sleep: (ms) => new Promise((resolve) => (ms <= 0 ? setImmediate(resolve) : setTimeout(resolve, ms))),
};

export interface PaceOptions {
  ticks: AsyncIterable<RecordedTick> | Iterable<RecordedTick>;
  speed: Speed;
  scheduler: Scheduler;
  /** Sends one tick; returns false if it was not sent (no one wants its stream). */
  emit(tick: RecordedTick): boolean;
  /** Checked before each tick: true stops the run. */
  stopped?(): boolean;
  /** Ticks sent back to back before yielding to the event loop (default 256, one bus batch). */
  chunk?: number;
  /** Longest recorded spacing kept, ms (default: every spacing kept). */
  maxGapMs?: number;
}

export interface PaceResult {
  /** Ticks read from the recording. */
  read: number;
  /** Ticks emitted (wanted). */
  sent: number;
  /** Receive times of the first and last tick read. */
  first: number | undefined;
  last: number | undefined;
  /** Whether the run was stopped before the recording was exhausted. */
  stopped: boolean;
}

const DEFAULT_CHUNK = 256;

/** Sends `ticks` in order with their recorded spacing divided by `speed` (see the module header). */
export async function pace(options: PaceOptions): Promise<PaceResult> {
  const { speed, scheduler, emit } = options;
  const chunk = options.chunk ?? DEFAULT_CHUNK;
  const maxGap = options.maxGapMs ?? Infinity;
  const result: PaceResult = { read: 0, sent: 0, first: undefined, last: undefined, stopped: false };
  let startedAt = 0;
  /** Recorded time since the first tick, each spacing clamped to [0, maxGap]. */
  let elapsed = 0;
  let previous = 0;
  let sinceYield = 0;
  for await (const tick of options.ticks) {
    if (options.stopped?.()) {
      result.stopped = true;
      break;
    }
    if (result.first === undefined) {
      result.first = tick.receivedAt;
      previous = tick.receivedAt;
      startedAt = scheduler.now();
    }
    elapsed += Math.min(Math.max(tick.receivedAt - previous, 0), maxGap);
    previous = tick.receivedAt;
    if (speed !== 'max') {
      const wait = startedAt + elapsed / speed - scheduler.now();
      // Timers are whole milliseconds: what is due within one goes out now.
      if (wait >= 1) {
        await scheduler.sleep(wait);
        sinceYield = 0;
        if (options.stopped?.()) {
          result.stopped = true;
          break;
        }
      }
    }
    result.read++;
    result.last = tick.receivedAt;
    if (emit(tick)) result.sent++;
    if (++sinceYield >= chunk) {
      sinceYield = 0;
      await scheduler.sleep(0);
    }
  }
  return result;
}

/** One recorded stream of a range, as the survey found it. */
export interface RecordedStream {
  exchange: string;
  symbol: string;
  /** Feeds it was recorded from (more than one: their ticks are replayed together). */
  feeds: Set<string>;
  /** The highest topic mode recorded. */
  maxMode: RecordedTick['mode'];
  ticks: number;
}

export interface Survey {
  ticks: number;
  first: number | undefined;
  last: number | undefined;
  /** By streamKey (feed.ts). */
  streams: Map<string, RecordedStream>;
}

/** What a range holds, from the store's per-stream summaries (store.ts `streams`), by stream across feeds. */
export function survey(summaries: readonly StreamSummary[], keyOf: (exchange: string, symbol: string) => string): Survey {
  const result: Survey = { ticks: 0, first: undefined, last: undefined, streams: new Map() };
  for (const summary of summaries) {
    result.ticks += summary.ticks;
    result.first = Math.min(result.first ?? Infinity, summary.first);
    result.last = Math.max(result.last ?? -Infinity, summary.last);
    const key = keyOf(summary.exchange, summary.symbol);
    const stream = result.streams.get(key);
    if (!stream) {
      result.streams.set(key, { exchange: summary.exchange, symbol: summary.symbol, feeds: new Set([summary.feed]), maxMode: summary.maxMode, ticks: summary.ticks });
      continue;
    }
    stream.ticks += summary.ticks;
    stream.feeds.add(summary.feed);
    if (summary.maxMode > stream.maxMode) stream.maxMode = summary.maxMode;
  }
  return result;
}
