/**
 * What the history store holds per stream (the dashboard's "Recorded" list, `GET
 * /api/history/streams`): for every recorded stream its first and last receive time and tick
 * count over the whole store, and the ticks per second recorded over the last minute.
 *
 * A dashboard asks every few seconds, and summing a day of ticks costs a scan of that day, so
 * what cannot change any more is kept:
 *
 * - a day that ended more than `sealAfterMs` ago is summed once and kept under its day and byte
 *   size (a day rewritten or replaced is summed again; one no longer held is forgotten);
 * - a day still being written (today, and yesterday just after midnight) is kept up to a sealed
 *   instant, whole minutes at least `sealAfterMs` in the past, extended a minute at a time; only
 *   the recent part after it is read on each call, split at the start of the rate window.
 *
 * `sealAfterMs` is how late a tick may reach the store after it was received (the recorder
 * writes a batch within 200 ms; a queue of waiting batches takes longer) with a wide margin.
 * Any HistoryStore works (the SQLite day files, PostgreSQL); its work runs on the summary
 * thread (summary-thread.ts), never on the gateway's event loop.
 */
import type { DayProblem, HistoryStore, StoreFault, StoredDay, StreamSummary } from './store.js';

const MS_PER_DAY = 86_400_000;
const MINUTE = 60_000;

/** One recorded stream over the whole store, with its recent rate. */
export interface RecordedStream extends StreamSummary {
  /**
   * Ticks per second recorded over the last `rateWindowMs`, or since the stream's first tick if
   * that is more recent; 0 when the stream is idle.
   */
  rate: number;
}

export interface StoreSummary {
  /** The instant the summary describes (epoch ms). */
  at: number;
  /** The days the store holds, oldest first. */
  days: StoredDay[];
  /** Every recorded stream, ordered by feed, exchange, symbol. */
  streams: RecordedStream[];
  /** Days that could not be read (skipped; the others are summed). */
  damaged: DayProblem[];
  rateWindowMs: number;
}

export interface SummaryOptions {
  /** How long after its end a day, or after an instant the part before it, is taken as final (2 min). */
  sealAfterMs?: number;
  /** The window `rate` is measured over (60 s). */
  rateWindowMs?: number;
}

interface OpenDay {
  /** Summed up to here (exclusive). */
  until: number;
  /** The day's bytes when last seen: fewer means the day was replaced, and is summed afresh. */
  bytes: number;
  streams: Map<string, StreamSummary>;
}

export class SummaryCache {
  private readonly sealAfterMs: number;
  private readonly rateWindowMs: number;
  private readonly sealed = new Map<string, { bytes: number; streams: StreamSummary[] }>();
  private readonly open = new Map<string, OpenDay>();
  /** Sealed days summed by the call under way. */
  private summed: string[] = [];

  constructor(
    private readonly store: Pick<HistoryStore, 'days' | 'streams'>,
    options: SummaryOptions = {},
  ) {
    this.sealAfterMs = options.sealAfterMs ?? 2 * MINUTE;
    this.rateWindowMs = options.rateWindowMs ?? MINUTE;
  }

  async summarise(now: number): Promise<StoreSummary> {
    const days = await this.store.days();
    const held = new Set(days.map((d) => d.day));
    for (const day of [...this.sealed.keys(), ...this.open.keys()]) {
      if (!held.has(day)) {
        this.sealed.delete(day);
        this.open.delete(day);
      }
    }
    const damaged: DayProblem[] = [];
    const total = new Map<string, StreamSummary>();
    const recent = new Map<string, StreamSummary>();
    const rateFrom = now - this.rateWindowMs;
    for (const { day, bytes } of days) {
      const start = Date.parse(`${day}T00:00:00.000Z`);
      const end = start + MS_PER_DAY;
      if (end + this.sealAfterMs <= now) {
        this.open.delete(day);
        merge(total, await this.sealedDay(day, bytes, start, end, damaged));
        continue;
      }
      // Still being written: the sealed part from the cache, the rest read now.
      const sealUntil = clamp(Math.floor((now - this.sealAfterMs) / MINUTE) * MINUTE, start, end);
      let open = this.open.get(day);
      if (!open || bytes < open.bytes || open.until > sealUntil) open = { until: start, bytes, streams: new Map() };
      open.bytes = bytes;
      if (open.until < sealUntil) {
        const problems: DayProblem[] = [];
        const part = await this.read(open.until, sealUntil, problems);
        if (problems.length === 0) {
          merge(open.streams, part);
          open.until = sealUntil;
          this.open.set(day, open);
        } else {
          // Not kept: the next call reads it again.
          damaged.push(...problems);
          this.open.delete(day);
          continue;
        }
      } else {
        this.open.set(day, open);
      }
      merge(total, open.streams.values());
      const split = clamp(rateFrom, open.until, end);
      merge(total, await this.read(open.until, split, damaged));
      const lately = await this.read(split, end, damaged);
      merge(total, lately);
      merge(recent, lately);
    }
    // Reading a day file can add its sidecars (SQLite leaves a `-shm` behind a read-only reader):
    // the bytes it is kept under are those after the read, or it would be summed once more.
    if (this.summed.length > 0) {
      for (const { day, bytes } of await this.store.days()) {
        const kept = this.summed.includes(day) ? this.sealed.get(day) : undefined;
        if (kept) kept.bytes = bytes;
      }
      this.summed = [];
    }
    const streams = [...total.entries()]
      .map(([key, summary]): RecordedStream => {
        // A stream recorded for less than the window is measured over the time it has been (1 s at least).
        const span = Math.min(this.rateWindowMs, Math.max(1000, now - summary.first)) / 1000;
        return { ...summary, rate: (recent.get(key)?.ticks ?? 0) / span };
      })
      .sort(byStream);
    return { at: now, days, streams, damaged: dedupe(damaged), rateWindowMs: this.rateWindowMs };
  }

  private async sealedDay(day: string, bytes: number, start: number, end: number, damaged: DayProblem[]): Promise<StreamSummary[]> {
    const kept = this.sealed.get(day);
    if (kept && kept.bytes === bytes) return kept.streams;
    const problems: DayProblem[] = [];
    const streams = await this.read(start, end, problems);
    // A day that could not be read is not kept: it is tried again (and reported) next time.
    if (problems.length === 0) {
      this.sealed.set(day, { bytes, streams });
      this.summed.push(day);
    } else this.sealed.delete(day);
    damaged.push(...problems);
    return streams;
  }

  /** One range, always within one day, so a store of day files opens only that day's. */
  private async read(from: number, to: number, problems: DayProblem[]): Promise<StreamSummary[]> {
    if (!(to > from)) return [];
    return this.store.streams({ from, to }, (problem) => problems.push(problem));
  }
}

function clamp(value: number, low: number, high: number): number {
  return Math.min(Math.max(value, low), high);
}

function keyOf(s: { feed: string; exchange: string; symbol: string }): string {
  return `${s.feed}\u0000${s.exchange}\u0000${s.symbol}`;
}

/** Adds `parts` into `into`: ticks summed, the earliest first, the latest last, the highest mode. */
export function merge(into: Map<string, StreamSummary>, parts: Iterable<StreamSummary>): void {
  for (const part of parts) {
    const key = keyOf(part);
    const summary = into.get(key);
    if (!summary) {
      into.set(key, { ...part });
      continue;
    }
    summary.ticks += part.ticks;
    summary.first = Math.min(summary.first, part.first);
    summary.last = Math.max(summary.last, part.last);
    if (part.maxMode > summary.maxMode) summary.maxMode = part.maxMode;
  }
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function byStream(a: StreamSummary, b: StreamSummary): number {
  return compare(a.feed, b.feed) || compare(a.exchange, b.exchange) || compare(a.symbol, b.symbol);
}

function dedupe(problems: DayProblem[]): DayProblem[] {
  const seen = new Set<string>();
  return problems.filter((p) => !seen.has(p.day) && (seen.add(p.day), true));
}

/** To the summary thread. */
export type SummaryRequest = { type: 'summarise'; now: number } | { type: 'close' };

/** From the summary thread, one per `summarise`. */
export type SummaryMessage = { type: 'summary'; summary: StoreSummary } | { type: 'error'; message: string; fault?: StoreFault };
