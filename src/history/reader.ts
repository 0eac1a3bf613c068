/**
 * The gateway's side of history reads (`GET /api/ticks`): each read runs on a thread of its own
 * (reader-thread.ts), so the SQLite work (up to ~110 ms for one stream's day) never stops the
 * event loop that serves the clients. At most `maxReads` run at once; the caller is told when the
 * reader is busy and refuses the request instead of queueing it.
 *
 * A read hands its chunks to `chunk` one at a time: the thread reads the next only once `more()`
 * is called (after the HTTP response has taken the last), so a slow client slows its read and
 * nothing piles up. `cancel()` stops it (the client went away); a thread that does not stop within
 * `cancelGraceMs` is terminated. A read's slot is free once its thread has sent the end of the
 * read (what remains is its exit, which does no more reading) or has exited.
 */
import type { Worker } from 'node:worker_threads';
import type { ReadRequest, ReaderMessage, ReaderRequest } from './read-job.js';
import { type DayProblem, HistoryStoreError } from './store.js';
import { startHistoryThread } from './threads.js';

/** What the reader needs of a reader thread (a Worker; tests may give a stand-in). */
export type ReaderPort = Pick<Worker, 'postMessage' | 'terminate'> & {
  on(event: 'message', listener: (message: ReaderMessage) => void): unknown;
  on(event: 'error', listener: (error: Error) => void): unknown;
  on(event: 'exit', listener: (code: number) => void): unknown;
};

export interface ReadEnd {
  rows: number;
  truncated: boolean;
  damaged: DayProblem[];
  /** False when the store holds no day at all. */
  stored: boolean;
}

export interface ReadHandlers {
  /** A chunk of formatted ticks, with the days found damaged since the last one. */
  chunk(text: string, damaged: DayProblem[]): void;
  end(end: ReadEnd): void;
  /** The read failed (the thread failed or died); nothing more comes. */
  fail(error: Error): void;
}

export interface TickRead {
  /** Asks for the next chunk (after the last one was taken). */
  more(): void;
  /** Stops the read; no handler is called after this. */
  cancel(): void;
}

export interface TickReaderOptions {
  /** Reads at once, at most. */
  maxReads: number;
  /** Starts a reader thread (default: reader-thread on a Worker). */
  startThread?: (request: ReadRequest) => ReaderPort;
  cancelGraceMs?: number;
}

export class TickReader {
  private active = 0;

  constructor(private readonly options: TickReaderOptions) {}

  /** Reads running now. */
  get running(): number {
    return this.active;
  }

  /** Starts a read, or returns undefined when `maxReads` already run. */
  read(request: ReadRequest, handlers: ReadHandlers): TickRead | undefined {
    if (this.active >= this.options.maxReads) return undefined;
    this.active++;
    const port = (this.options.startThread ?? ((r: ReadRequest) => startHistoryThread('reader-thread', { ...r })))(request);
    let settled = false;
    let exited = false;
    let released = false;
    // A caller that reads again right after an answer must not find the slot still taken.
    const release = (): void => {
      if (released) return;
      released = true;
      this.active--;
    };
    port.on('exit', () => {
      exited = true;
      release();
      if (!settled) {
        settled = true;
        handlers.fail(new Error('the history reader stopped before the end of the read'));
      }
    });
    port.on('error', (error) => {
      if (settled) return;
      settled = true;
      handlers.fail(error);
    });
    port.on('message', (message) => {
      if (settled) return;
      switch (message.type) {
        case 'chunk':
          handlers.chunk(message.text, message.damaged);
          return;
        case 'end':
          settled = true;
          release();
          handlers.end({ rows: message.rows, truncated: message.truncated, damaged: message.damaged, stored: message.stored });
          return;
        case 'error':
          settled = true;
          handlers.fail(new HistoryStoreError(message.message, message.fault));
          return;
      }
    });
    const post = (request: ReaderRequest): void => {
      if (!exited) port.postMessage(request);
    };
    return {
      more: () => {
        if (!settled) post({ type: 'more' });
      },
      cancel: () => {
        settled = true;
        if (exited) return;
        post({ type: 'cancel' });
        const timer = setTimeout(() => void port.terminate(), this.options.cancelGraceMs ?? 5000);
        timer.unref();
        port.on('exit', () => clearTimeout(timer));
      },
    };
  }
}
