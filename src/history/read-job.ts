/**
 * One read of the history store for `GET /api/ticks`, in chunks: what the reader thread
 * (reader-thread.ts) runs, one chunk each time the gateway asks for more. A chunk is at most
 * `chunkRows` ticks or about `chunkBytes` of text, whichever comes first, so the thread never
 * holds more than one chunk however large the answer.
 */
import { type DayProblem, type HistoryLocation, type HistoryStore, type RecordedTick, type StoreFault, type TickQuery } from './store.js';
import { openHistoryStore } from './open-store.js';
import { type TickFormat, formatTick } from './tick-format.js';

export interface ReadRequest {
  location: HistoryLocation;
  query: TickQuery;
  format: TickFormat;
  /** Most ticks to send; one more found means the answer was cut (`truncated`). */
  limit: number;
  chunkRows?: number;
  chunkBytes?: number;
}

/** From the reader thread. */
export type ReaderMessage =
  | { type: 'chunk'; text: string; rows: number; damaged: DayProblem[] }
  | {
      type: 'end';
      rows: number;
      truncated: boolean;
      damaged: DayProblem[];
      /** False when the store holds no day at all (recording was never on, or everything was pruned). */
      stored: boolean;
    }
  | { type: 'error'; message: string; fault?: StoreFault };

/** To the reader thread: the next chunk, or stop (the client went away). */
export type ReaderRequest = { type: 'more' } | { type: 'cancel' };

export const CHUNK_ROWS = 1000;
export const CHUNK_BYTES = 256 * 1024;

export class ReadJob {
  private damaged: DayProblem[] = [];
  private rows = 0;
  private truncated = false;
  private done = false;

  private constructor(
    private readonly request: ReadRequest,
    private readonly store: HistoryStore,
    private readonly stored: boolean,
    private readonly ticks: AsyncGenerator<RecordedTick> | undefined,
  ) {}

  static async start(request: ReadRequest): Promise<ReadJob> {
    const store = await openHistoryStore(request.location, { readonly: true });
    try {
      const stored = (await store.days()).length > 0;
      let job: ReadJob | undefined;
      const ticks = stored ? store.read(request.query, (problem) => job!.damaged.push(problem)) : undefined;
      job = new ReadJob(request, store, stored, ticks);
      return job;
    } catch (error) {
      await store.close();
      throw error;
    }
  }

  /** The next chunk, or the end (after which every call is the end again). */
  async next(): Promise<ReaderMessage> {
    const { format, limit } = this.request;
    const maxRows = this.request.chunkRows ?? CHUNK_ROWS;
    const maxBytes = this.request.chunkBytes ?? CHUNK_BYTES;
    let text = '';
    let rows = 0;
    while (!this.done && rows < maxRows && text.length < maxBytes) {
      const next = await this.ticks?.next();
      if (!next || next.done) {
        await this.finish();
      } else if (this.rows === limit) {
        // A tick past the limit: the answer is cut before it.
        this.truncated = true;
        await this.finish();
      } else {
        text += formatTick(next.value, format);
        rows++;
        this.rows++;
      }
    }
    if (rows > 0) return { type: 'chunk', text, rows, damaged: this.takeDamaged() };
    return { type: 'end', rows: this.rows, truncated: this.truncated, damaged: this.takeDamaged(), stored: this.stored };
  }

  /** Stops reading: the store is closed now, not at the end of the range. */
  cancel(): Promise<void> {
    return this.finish();
  }

  private async finish(): Promise<void> {
    if (this.done) return;
    this.done = true;
    try {
      await this.ticks?.return(undefined);
    } finally {
      await this.store.close();
    }
  }

  private takeDamaged(): DayProblem[] {
    const damaged = this.damaged;
    this.damaged = [];
    return damaged;
  }
}
