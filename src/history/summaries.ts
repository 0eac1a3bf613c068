/**
 * The gateway's side of the stream list (`GET /api/history/streams`): one summary thread per
 * process (summary-thread.ts), started at the first request and ended after `idleMs` without
 * one, runs one summary at a time. A request while one runs waits for that same answer; an
 * answer younger than `freshMs` is given again without asking the thread, so many dashboards
 * polling together cost one summary.
 *
 * The thread keeps its cache (summary.ts) while it lives: the first summary after a start sums
 * every held day, the next ones only what is still being written.
 */
import type { Worker } from 'node:worker_threads';
import { type HistoryLocation, HistoryStoreError } from './store.js';
import type { StoreSummary, SummaryMessage, SummaryRequest } from './summary.js';
import { startHistoryThread } from './threads.js';

/** What the summaries need of a summary thread (a Worker; tests may give a stand-in). */
export type SummaryPort = Pick<Worker, 'postMessage' | 'terminate'> & {
  on(event: 'message', listener: (message: SummaryMessage) => void): unknown;
  on(event: 'error', listener: (error: Error) => void): unknown;
  on(event: 'exit', listener: (code: number) => void): unknown;
  unref?(): void;
};

export interface HistorySummariesOptions {
  location: HistoryLocation;
  /** Starts the summary thread (default: summary-thread on a Worker). */
  startThread?: (location: HistoryLocation) => SummaryPort;
  /** The thread ends after this long without a request (5 min); its cache goes with it. */
  idleMs?: number;
  /** An answer this young is given again (1 s). */
  freshMs?: number;
  now?: () => number;
}

export class HistorySummaries {
  private thread: SummaryPort | undefined;
  private running: { promise: Promise<StoreSummary>; resolve(summary: StoreSummary): void; reject(error: Error): void } | undefined;
  private last: StoreSummary | undefined;
  private idle: ReturnType<typeof setTimeout> | undefined;

  constructor(private readonly options: HistorySummariesOptions) {}

  /** Whether a summary is being made now. */
  get busy(): boolean {
    return this.running !== undefined;
  }

  /** The store's summary now: a fresh one, the one being made, or a new one. */
  summarise(): Promise<StoreSummary> {
    const now = (this.options.now ?? Date.now)();
    if (this.last && now - this.last.at < (this.options.freshMs ?? 1000) && now >= this.last.at) return Promise.resolve(this.last);
    if (this.running) return this.running.promise;
    let resolve!: (summary: StoreSummary) => void;
    let reject!: (error: Error) => void;
    const promise = new Promise<StoreSummary>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    this.running = { promise, resolve, reject };
    if (this.idle) clearTimeout(this.idle);
    this.post({ type: 'summarise', now });
    return promise;
  }

  /** Ends the thread (closing its store); a later request starts another. */
  close(): void {
    if (this.idle) clearTimeout(this.idle);
    this.idle = undefined;
    const thread = this.thread;
    this.thread = undefined;
    this.fail(new Error('the history summary was closed'));
    if (!thread) return;
    thread.postMessage({ type: 'close' } satisfies SummaryRequest);
    // A thread stuck in a long summary does not hold the process.
    const timer = setTimeout(() => void thread.terminate(), 5000);
    timer.unref();
    thread.on('exit', () => clearTimeout(timer));
  }

  private post(request: SummaryRequest): void {
    if (!this.thread) {
      const thread = (this.options.startThread ?? ((location: HistoryLocation) => startHistoryThread('summary-thread', { location })))(this.options.location);
      thread.on('message', (message) => {
        if (thread !== this.thread) return;
        if (message.type === 'summary') {
          this.last = message.summary;
          this.settle()?.resolve(message.summary);
        } else {
          this.settle()?.reject(new HistoryStoreError(message.message, message.fault));
        }
      });
      thread.on('error', (error) => {
        if (thread === this.thread) this.fail(error);
      });
      thread.on('exit', () => {
        if (thread !== this.thread) return;
        this.thread = undefined;
        this.fail(new Error('the history summary thread stopped before answering'));
      });
      // A summary thread never keeps a stopping gateway's process alive (after the listeners:
      // adding a message listener refs the thread's port again).
      thread.unref?.();
      this.thread = thread;
    }
    this.thread.postMessage(request);
  }

  /** Ends the running summary and arms the idle timer. */
  private settle(): HistorySummaries['running'] {
    const running = this.running;
    this.running = undefined;
    if (this.idle) clearTimeout(this.idle);
    this.idle = setTimeout(() => this.close(), this.options.idleMs ?? 5 * 60_000);
    this.idle.unref();
    return running;
  }

  private fail(error: Error): void {
    const running = this.running;
    this.running = undefined;
    running?.reject(error);
  }
}
