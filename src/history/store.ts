/**
 * The history store, whatever holds it: the embedded SQLite day files (tick-store.ts) or, for a
 * fleet, PostgreSQL (pg-store.ts, with TimescaleDB when the extension is there). Writers (the
 * recorder's thread) and readers (`GET /api/ticks`, `tickcast replay`, the dashboard's stream
 * list) see only this interface, so a store is chosen in one place (`openHistoryStore`) by its
 * location, which is plain data and crosses into worker threads as is.
 */
import type { DayFile, DayProblem, RecordedTick, TickQuery } from './tick-store.js';

export type { DayProblem, RecordedTick, TickQuery } from './tick-store.js';

/** Where the history is kept. */
export type HistoryLocation =
  | { kind: 'sqlite'; dir: string }
  /** `url` is a `postgres://` or `postgresql://` connection URL. */
  | { kind: 'postgres'; url: string };

/** One stream's recorded ticks within a range (the survey a replay starts from; the dashboard's list). */
export interface StreamSummary {
  feed: string;
  exchange: string;
  symbol: string;
  /** Ticks recorded in the range. */
  ticks: number;
  /** Receive times (epoch ms) of the first and last of them. */
  first: number;
  last: number;
  /** The highest topic mode recorded. */
  maxMode: RecordedTick['mode'];
}

/** A UTC day the store holds, with what it takes on disk. */
export type StoredDay = Omit<DayFile, 'file'>;

export interface HistoryStore {
  /** Where it is, for messages and logs: a directory, or the URL without its password. */
  readonly where: string;
  /** Appends ticks, in receive order; all or none of them are stored. */
  append(ticks: readonly RecordedTick[]): Promise<void>;
  /**
   * The ticks of `query` in receive order (the same ticks in the same order on every read of the
   * same range). A part that cannot be read is skipped and reported through `onProblem`.
   */
  read(query: TickQuery, onProblem?: (problem: DayProblem) => void): AsyncGenerator<RecordedTick>;
  /** Per stream, what the range holds (without reading the ticks), ordered by feed, exchange, symbol. */
  streams(query: TickQuery, onProblem?: (problem: DayProblem) => void): Promise<StreamSummary[]>;
  /** The days held, oldest first. */
  days(): Promise<StoredDay[]>;
  /**
   * Deletes whole days, oldest first, while any is older than `maxAgeMs` (by its last instant) or
   * the store is over `maxBytes`; today's is never deleted. Returns the days deleted.
   */
  prune(limits: { now: number; maxAgeMs?: number; maxBytes?: number }): Promise<string[]>;
  close(): Promise<void>;
}

export interface OpenOptions {
  /** Read only: never create or write (readers: replay, HTTP, the dashboard). */
  readonly?: boolean;
}

/** Opens the store at `location` (PostgreSQL's module is loaded only when it is used). */
export async function openHistoryStore(location: HistoryLocation, options: OpenOptions = {}): Promise<HistoryStore> {
  if (location.kind === 'postgres') {
    const { PgHistoryStore } = await import('./pg-store.js');
    return PgHistoryStore.open(location.url, options);
  }
  const { SqliteHistoryStore } = await import('./sqlite-store.js');
  return new SqliteHistoryStore(location.dir, options);
}

/** A location for messages: the directory, or the URL with its password taken out. */
export function describeLocation(location: HistoryLocation): string {
  if (location.kind === 'sqlite') return location.dir;
  try {
    const url = new URL(location.url);
    if (url.password) url.password = '***';
    return url.toString();
  } catch {
    return 'postgres://(unparseable url)';
  }
}
