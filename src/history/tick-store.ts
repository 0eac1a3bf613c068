/**
 * The embedded history store (docs/history.md, "Choosing the embedded store"): one SQLite file
 * per UTC day, `ticks-YYYY-MM-DD.db`, in WAL mode. A day is the unit of retention (a file is
 * deleted whole) and of damage (a corrupt day is reported and skipped; the others still read).
 *
 * Each file holds `streams(id, feed, exchange, symbol)` and `ticks(id, stream, received_at,
 * exchange_ts, mode, payload)` with an index on (stream, received_at). `ticks.id` is the order
 * ticks were received in; every read returns ticks in that order, so two reads of one range
 * return the same ticks in the same order (replay is deterministic).
 *
 * Synchronous on purpose: it runs on the recorder's own thread (writer.ts) or in a reading
 * process, never on the gateway's event loop.
 */
import type BetterSqlite3 from 'better-sqlite3';
import type { Mode } from '../protocol/modes.js';
import { DayFiles, type WritableDay, dayOf, openDayForReading } from './day-files.js';
import type { DayFile, DayProblem, RecordedTick, StreamSummary, TickQuery } from './store.js';

export type { DayFile, DayProblem, RecordedTick, TickQuery } from './store.js';

const SCHEMA = `
  CREATE TABLE IF NOT EXISTS streams (
    id INTEGER PRIMARY KEY,
    feed TEXT NOT NULL,
    exchange TEXT NOT NULL,
    symbol TEXT NOT NULL,
    UNIQUE (feed, exchange, symbol)
  );
  CREATE TABLE IF NOT EXISTS ticks (
    id INTEGER PRIMARY KEY,
    stream INTEGER NOT NULL REFERENCES streams (id),
    received_at INTEGER NOT NULL,
    exchange_ts INTEGER,
    mode INTEGER NOT NULL,
    payload TEXT NOT NULL
  );
  CREATE INDEX IF NOT EXISTS ticks_stream_time ON ticks (stream, received_at);
  CREATE INDEX IF NOT EXISTS ticks_time ON ticks (received_at);
`;

interface OpenDay extends WritableDay {
  append: (ticks: readonly RecordedTick[]) => void;
}

export interface TickStoreOptions {
  dir: string;
  /** Open existing days only, never create or write (readers: replay, HTTP). */
  readonly?: boolean;
}

export class TickStore {
  private readonly files: DayFiles<OpenDay>;

  constructor({ dir, readonly = false }: TickStoreOptions) {
    this.files = new DayFiles({ dir, prefix: 'ticks', readonly }, SCHEMA, prepareDay);
  }

  get dir(): string {
    return this.files.dir;
  }

  /** Appends ticks (in receive order), each to its day's file, one transaction per day touched. */
  append(ticks: readonly RecordedTick[]): void {
    this.files.append(ticks, (tick) => tick.receivedAt, (day, run) => day.append(run));
  }

  /** Closes the files of days before `day` (called as the clock passes midnight). */
  closeDaysBefore(day: string): void {
    this.files.closeDaysBefore(day);
  }

  /** The day files present, oldest first. */
  days(): DayFile[] {
    return this.files.days();
  }

  /**
   * The ticks of `query` in receive order, day by day. A day file that cannot be read (damaged,
   * truncated, not a database) is skipped and reported through `onProblem`; the rest is read.
   */
  *read(query: TickQuery, onProblem: (problem: DayProblem) => void = () => {}): Generator<RecordedTick> {
    for (const { day, file } of this.files.daysIn(query.from, query.to)) yield* this.readDay(day, file, query, onProblem);
  }

  /**
   * Per stream, what `query` holds (ticks, first and last receive time, highest mode), summed over
   * its days, without reading the payloads. A day that cannot be read is skipped and reported.
   */
  streams(query: TickQuery, onProblem: (problem: DayProblem) => void = () => {}): StreamSummary[] {
    const summaries = new Map<string, StreamSummary>();
    for (const { day, file } of this.files.daysIn(query.from, query.to)) {
      let db: BetterSqlite3.Database | undefined;
      try {
        db = openDayForReading(file);
        const selected = selectTicks(db, query);
        if (!selected) continue;
        const rows = db
          .prepare(`SELECT stream, count(*) AS ticks, min(received_at) AS first, max(received_at) AS last, max(mode) AS max_mode FROM ticks WHERE ${selected.where} GROUP BY stream`)
          .all(...selected.params) as Array<{ stream: number; ticks: number; first: number; last: number; max_mode: number }>;
        for (const row of rows) {
          const stream = selected.streams.get(row.stream);
          if (!stream) continue;
          const key = streamKeyOf(stream.feed, stream.exchange, stream.symbol);
          const summary = summaries.get(key);
          if (!summary) {
            summaries.set(key, { ...stream, ticks: row.ticks, first: row.first, last: row.last, maxMode: row.max_mode as Mode });
            continue;
          }
          summary.ticks += row.ticks;
          summary.first = Math.min(summary.first, row.first);
          summary.last = Math.max(summary.last, row.last);
          if (row.max_mode > summary.maxMode) summary.maxMode = row.max_mode as Mode;
        }
      } catch (error) {
        onProblem({ day, message: `the history of ${day} cannot be read: ${(error as Error).message}` });
      } finally {
        db?.close();
      }
    }
    return [...summaries.values()].sort((a, b) => compare(a.feed, b.feed) || compare(a.exchange, b.exchange) || compare(a.symbol, b.symbol));
  }

  /**
   * Deletes whole days, oldest first, while any is older than `maxAgeMs` (by its last instant)
   * or the store is over `maxBytes`; today's file is never deleted. Returns the days deleted.
   */
  prune(limits: { now: number; maxAgeMs?: number; maxBytes?: number }): string[] {
    return this.files.prune(limits);
  }

  close(): void {
    this.files.close();
  }

  private *readDay(day: string, file: string, query: TickQuery, onProblem: (problem: DayProblem) => void): Generator<RecordedTick> {
    let db: BetterSqlite3.Database;
    try {
      db = openDayForReading(file);
    } catch (error) {
      onProblem({ day, message: `the history of ${day} cannot be opened: ${(error as Error).message}` });
      return;
    }
    try {
      let streams: Map<number, StreamName>;
      let rows: Iterable<unknown>;
      try {
        const selected = selectTicks(db, query);
        if (!selected) return;
        streams = selected.streams;
        rows = db.prepare(`SELECT stream, received_at, exchange_ts, mode, payload FROM ticks WHERE ${selected.where} ORDER BY id`).iterate(...selected.params);
      } catch (error) {
        onProblem({ day, message: `the history of ${day} cannot be read: ${(error as Error).message}` });
        return;
      }
      try {
        for (const row of rows as Iterable<{ stream: number; received_at: number; exchange_ts: number | null; mode: number; payload: string }>) {
          const stream = streams.get(row.stream);
          if (!stream) continue;
          yield { ...stream, mode: row.mode as Mode, receivedAt: row.received_at, exchangeTs: row.exchange_ts, payload: row.payload };
        }
      } catch (error) {
        onProblem({ day, message: `the history of ${day} is damaged after some ticks were read: ${(error as Error).message}` });
      }
    } finally {
      db.close();
    }
  }
}

/** A day's writing side: its streams' ids, and one transaction per append. */
function prepareDay(db: BetterSqlite3.Database): OpenDay {
  const streamIds = new Map<string, number>();
  const loadStreamIds = (): void => {
    streamIds.clear();
    for (const row of db.prepare('SELECT id, feed, exchange, symbol FROM streams').all() as Array<{ id: number } & StreamName>) {
      streamIds.set(streamKeyOf(row.feed, row.exchange, row.symbol), row.id);
    }
  };
  loadStreamIds();
  const insertStream = db.prepare('INSERT INTO streams (feed, exchange, symbol) VALUES (?, ?, ?)');
  const insertTick = db.prepare('INSERT INTO ticks (stream, received_at, exchange_ts, mode, payload) VALUES (?, ?, ?, ?, ?)');
  const transaction = db.transaction((ticks: readonly RecordedTick[]) => {
    for (const tick of ticks) {
      const key = streamKeyOf(tick.feed, tick.exchange, tick.symbol);
      let stream = streamIds.get(key);
      if (stream === undefined) {
        stream = Number(insertStream.run(tick.feed, tick.exchange, tick.symbol).lastInsertRowid);
        streamIds.set(key, stream);
      }
      insertTick.run(stream, Math.round(tick.receivedAt), tick.exchangeTs === null ? null : Math.round(tick.exchangeTs), tick.mode, tick.payload);
    }
  });
  return {
    db,
    append: (ticks) => {
      try {
        transaction(ticks);
      } catch (error) {
        // A failed transaction leaves stream ids in the map that were rolled back: forget them all.
        loadStreamIds();
        throw error;
      }
    },
  };
}

interface StreamName {
  feed: string;
  exchange: string;
  symbol: string;
}

/** A day's streams, and the WHERE clause of its ticks that `query` selects (undefined: none of its streams). */
function selectTicks(db: BetterSqlite3.Database, query: TickQuery): { streams: Map<number, StreamName>; where: string; params: unknown[] } | undefined {
  const streams = new Map<number, StreamName>();
  for (const row of db.prepare('SELECT id, feed, exchange, symbol FROM streams').all() as Array<{ id: number } & StreamName>) {
    streams.set(row.id, { feed: row.feed, exchange: row.exchange, symbol: row.symbol });
  }
  const wanted = [...streams].filter(([, s]) => matchesStreams(s, query)).map(([id]) => id);
  if (wanted.length === 0) return undefined;
  const where = ['received_at >= ?', 'received_at < ?'];
  if (wanted.length < streams.size) where.push(`stream IN (${wanted.join(',')})`);
  if (query.modes && query.modes.length > 0) where.push(`mode IN (${query.modes.map(Number).join(',')})`);
  return { streams, where: where.join(' AND '), params: [query.from, query.to] };
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function matchesStreams(stream: { feed: string; exchange: string; symbol: string }, query: TickQuery): boolean {
  if (query.feeds && !query.feeds.includes(stream.feed)) return false;
  if (!query.streams) return true;
  return query.streams.some((s) => s.exchange === stream.exchange && s.symbol === stream.symbol && (s.feed === undefined || s.feed === stream.feed));
}

function streamKeyOf(feed: string, exchange: string, symbol: string): string {
  return `${feed}\u0000${exchange}\u0000${symbol}`;
}
