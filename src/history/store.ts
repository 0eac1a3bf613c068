/**
 * The history store, whatever holds it: the embedded SQLite day files (tick-store.ts) or, for a
 * fleet, PostgreSQL (pg-store.ts, with TimescaleDB when the extension is there). Writers (the
 * recorder's thread) and readers (`GET /api/ticks`, `tickcast replay`, the dashboard's stream
 * list) see only this interface, so a store is chosen in one place (open-store.ts) by its
 * location, which is plain data and crosses into worker threads as is.
 */
import type { Mode } from '../protocol/modes.js';

/** One recorded tick. */
export interface RecordedTick {
  /** Feed id (`simulator`, `zerodha.alice`; `shared` for OpenAlgo's bare topics). */
  feed: string;
  exchange: string;
  symbol: string;
  /** The mode of the tick's topic. */
  mode: Mode;
  /** When the gateway received it (epoch ms). */
  receivedAt: number;
  /** The broker's time of the trade or update (epoch ms), when the payload carries one. */
  exchangeTs: number | null;
  /** The JSON payload as it was received (what clients get as `data`). */
  payload: string;
}

export interface TickQuery {
  /** Receive time range, epoch ms, inclusive start and exclusive end. */
  from: number;
  to: number;
  /** Only these streams (each `{feed?, exchange, symbol}`; a missing feed matches every feed). */
  streams?: ReadonlyArray<{ feed?: string; exchange: string; symbol: string }>;
  /** Only these feeds. */
  feeds?: readonly string[];
  /** Only ticks of these topic modes. */
  modes?: readonly Mode[];
}

/** A day file as listed by `days()`. */
export interface DayFile {
  day: string;
  file: string;
  bytes: number;
}

/** A day that could not be read, with why; reads skip it and report it here. */
export interface DayProblem {
  day: string;
  message: string;
}

/**
 * A failure after which writing is pointless for a while: recording stops, says why, and is tried
 * again later (recorder.ts), instead of failing every batch into it.
 */
export type StoreFault = 'full' | 'unreachable';

/** A store's error, with the fault it is when it is one. */
export class HistoryStoreError extends Error {
  constructor(
    message: string,
    readonly fault?: StoreFault,
  ) {
    super(message);
    this.name = 'HistoryStoreError';
  }
}

/** A failure's fault as a message field (`{ fault }`, or nothing), for errors sent across a thread. */
export function faultField(error: unknown): { fault?: StoreFault } {
  return error instanceof HistoryStoreError && error.fault ? { fault: error.fault } : {};
}

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
