/**
 * What a recorder does with its writer thread, the same for ticks (recorder.ts) and raw broker
 * frames (frame-recorder.ts): retention and the disk figures asked for at start and every minute;
 * recording stopped with a reason (a full disk or a store away: tried again a minute later; the
 * thread dead: for good); items shed while the writer is behind, counted and logged at most every
 * 10 s; and closing, which writes the last batch and stops the thread, never waiting forever.
 * The recorders keep what differs: their batches, their figures, and what a reply means to them.
 */
import type { Clock } from '../clock.js';
import type { Logger } from '../observability/logger.js';

/** Requests every writer thread takes besides its batches. */
export type LinkRequest = { type: 'prune'; now: number; maxAgeMs?: number; maxBytes?: number } | { type: 'size' } | { type: 'close' };
/** Replies every writer thread gives besides its batches' and sizes'. */
export type LinkReply = { type: 'pruned'; days: string[] } | { type: 'closed' } | { type: 'error'; message: string };

/** A writer thread (a Worker; tests may give a stand-in). */
export interface WriterThreadPort<Request, Reply> {
  postMessage(message: Request, transfer?: ArrayBuffer[]): void;
  on(event: 'message', listener: (reply: Reply | { type: 'error'; message: string }) => void): void;
  on(event: 'error', listener: (error: Error) => void): void;
  terminate(): Promise<number>;
}

export interface WriterLinkOptions<Reply> {
  clock: Clock;
  logger: Logger;
  /** Retention: days older than this, bytes above this (0: no limit). */
  maxAgeMs: number;
  maxBytes: number;
  /** Retention and disk figures are refreshed this often (default 60 s). */
  pruneEveryMs?: number;
  /** After a full disk or an unreachable store, recording is tried again this long later (default 60 s). */
  retryMs?: number;
  /** How the log names things: the writer (`the history writer`), what stops, what is recorded again. */
  words: { writer: string; stopped: string; again: string; shed: string; pruned: string; restart: string };
  /** A reply that is the recorder's own (its batches', its sizes'). */
  onReply(reply: Exclude<Reply, LinkReply>): void;
}

const SHED_LOG_MS = 10_000;
const CLOSE_WAIT_MS = 10_000;

export class WriterLink<Request extends { type: string }, Reply extends { type: string }> {
  private readonly timers: NodeJS.Timeout[] = [];
  private stoppedFor: string | undefined;
  private lastShedLog = -Infinity;
  private shedSinceLog = 0;
  private closing: Promise<void> | undefined;
  private closed: (() => void) | undefined;

  constructor(
    private readonly port: WriterThreadPort<Request | LinkRequest, Reply | LinkReply>,
    private readonly options: WriterLinkOptions<Reply>,
  ) {
    port.on('message', (reply) => this.onReply(reply));
    // A writer thread that died is not restarted: what it was writing is unknown.
    port.on('error', (error) => this.stop(`${options.words.writer} failed (${error.message}); ${options.words.restart}`, false));
    this.prune();
    const pruneEvery = setInterval(() => this.prune(), options.pruneEveryMs ?? 60_000);
    pruneEvery.unref();
    this.timers.push(pruneEvery);
  }

  /** Whether nothing is to be recorded now (stopped, or closing). */
  get refusing(): boolean {
    return this.stoppedFor !== undefined || this.shuttingDown;
  }

  /** Whether `close` was called. */
  get shuttingDown(): boolean {
    return this.closing !== undefined;
  }

  /** `state` and, when stopped, `reason`, as the figures show them. */
  state(): { state: 'recording' | 'stopped'; reason?: string } {
    return this.stoppedFor === undefined ? { state: 'recording' } : { state: 'stopped', reason: this.stoppedFor };
  }

  post(request: Request, transfer?: ArrayBuffer[]): void {
    this.port.postMessage(request, transfer);
  }

  /** Stops recording, saying why; with `retry`, it is tried again after `retryMs`, else for good. */
  stop(reason: string, retry = true): void {
    if (this.stoppedFor !== undefined && retry) return;
    this.stoppedFor = reason;
    this.options.logger.error({ reason }, this.options.words.stopped);
    if (!retry) return;
    const again = setTimeout(() => {
      this.timers.splice(this.timers.indexOf(again), 1);
      if (this.stoppedFor !== reason) return; // stopped for good meanwhile
      this.stoppedFor = undefined;
      this.options.logger.info(this.options.words.again);
    }, this.options.retryMs ?? 60_000);
    again.unref();
    this.timers.push(again);
  }

  /** One item shed because the writer is behind: logged with `context` at most every 10 s. */
  shed(context: () => Record<string, unknown>): void {
    this.shedSinceLog++;
    const now = this.options.clock.now();
    if (now - this.lastShedLog < SHED_LOG_MS) return;
    this.options.logger.warn({ shed: this.shedSinceLog, ...context() }, this.options.words.shed);
    this.lastShedLog = now;
    this.shedSinceLog = 0;
  }

  /** Asks for retention, then the disk figures. */
  prune(): void {
    const { maxAgeMs, maxBytes, clock } = this.options;
    this.port.postMessage({ type: 'prune', now: clock.now(), ...(maxAgeMs > 0 ? { maxAgeMs } : {}), ...(maxBytes > 0 ? { maxBytes } : {}) });
    this.port.postMessage({ type: 'size' });
  }

  /** Runs `flush` (the last batch), waits for the writer to finish it, and stops the thread. */
  close(flush: () => void): Promise<void> {
    this.closing ??= new Promise<void>((resolve) => {
      for (const timer of this.timers) clearTimeout(timer);
      flush();
      this.closed = resolve;
      this.port.postMessage({ type: 'close' });
      // A writer that does not answer is not waited on forever.
      setTimeout(() => {
        void this.port.terminate();
        resolve();
      }, CLOSE_WAIT_MS).unref();
    });
    return this.closing;
  }

  private onReply(reply: Reply | LinkReply): void {
    switch (reply.type) {
      case 'pruned': {
        const { days } = reply as { days: string[] };
        if (days.length > 0) this.options.logger.info({ days }, this.options.words.pruned);
        return;
      }
      case 'closed':
        this.closed?.();
        return;
      case 'error':
        this.options.logger.error({ err: (reply as { message: string }).message }, `${this.options.words.writer} could not do what it was asked`);
        return;
      default:
        this.options.onReply(reply as Exclude<Reply, LinkReply>);
    }
  }
}
