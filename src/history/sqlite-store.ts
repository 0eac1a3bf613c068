/**
 * The embedded history store behind the HistoryStore interface: tick-store.ts's SQLite day files,
 * whose work is synchronous (it runs on the recorder's thread or a reader's, never the gateway's
 * event loop); the promises here only carry its answers.
 */
import type { HistoryStore, OpenOptions, StoredDay, StreamSummary } from './store.js';
import { dayOf } from './day-files.js';
import { type DayProblem, type RecordedTick, type TickQuery, TickStore } from './tick-store.js';

export class SqliteHistoryStore implements HistoryStore {
  private readonly store: TickStore;

  constructor(dir: string, { readonly = false }: OpenOptions = {}) {
    this.store = new TickStore({ dir, readonly });
  }

  get where(): string {
    return this.store.dir;
  }

  async append(ticks: readonly RecordedTick[]): Promise<void> {
    // Past midnight the previous day's file is done: its handle is closed (reopened if a late tick comes).
    if (ticks.length > 0) this.store.closeDaysBefore(dayOf(ticks[0]!.receivedAt));
    this.store.append(ticks);
  }

  async *read(query: TickQuery, onProblem?: (problem: DayProblem) => void): AsyncGenerator<RecordedTick> {
    yield* this.store.read(query, onProblem);
  }

  async streams(query: TickQuery, onProblem?: (problem: DayProblem) => void): Promise<StreamSummary[]> {
    return this.store.streams(query, onProblem);
  }

  async days(): Promise<StoredDay[]> {
    return this.store.days().map(({ day, bytes }) => ({ day, bytes }));
  }

  async prune(limits: { now: number; maxAgeMs?: number; maxBytes?: number }): Promise<string[]> {
    return this.store.prune(limits);
  }

  async close(): Promise<void> {
    this.store.close();
  }
}
