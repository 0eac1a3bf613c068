/**
 * The recorder: the gateway's side of recording. Each tick the bus delivers is offered to it
 * (`record`, on the fan-out's path, so it only appends to a batch); full batches, or whatever
 * waits after `flushMs`, go to the writer thread as columns. It never waits for the writer:
 * past `queueTicks` ticks unwritten, new ticks are shed (counted and logged), and a full disk or
 * a store that cannot be reached stops recording (an alert in the log, `/api/status` and
 * `/metrics`) until a retry a minute later, while delivery goes on.
 */
import type { Clock } from '../clock.js';
import type { Logger } from '../observability/logger.js';
import type { Mode } from '../protocol/modes.js';
import { SHARED_FEED } from '../protocol/topics.js';
import { BatchBuilder, streamRecordKey } from './batch.js';
import { type HoldFigure, RecordingHolds } from './holds.js';
import { type RecordSelection, SHARED_FEED_NAME } from './selection.js';
import type { HistoryLocation } from './store.js';
import { startHistoryThread } from './threads.js';
import type { WriterReply, WriterRequest } from './writer.js';
import { WriterLink, type WriterThreadPort } from './writer-link.js';

/** What the recorder needs of its writer thread (a Worker; tests may give a stand-in). */
export type WriterPort = WriterThreadPort<WriterRequest, WriterReply>;

export interface RecorderOptions {
  selection: RecordSelection;
  /** Where the history store is. */
  location: HistoryLocation;
  clock: Clock;
  logger: Logger;
  /** Ticks that may wait for the writer before new ones are shed. */
  queueTicks: number;
  /** Retention, applied at start and every `pruneEveryMs`: days older than this, bytes above this (0: no limit). */
  maxAgeMs: number;
  maxBytes: number;
  /** Ticks per batch (default 1000). */
  batchTicks?: number;
  /** A batch waits at most this long before it is written (default 200 ms). */
  flushMs?: number;
  /** Retention and disk figures are refreshed this often (default 60 s). */
  pruneEveryMs?: number;
  /** After a full disk or an unreachable store, recording is tried again this long later (default 60 s). */
  retryMs?: number;
  /** Starts the writer thread (default: writer-thread.js on a Worker). */
  startWriter?: (location: HistoryLocation) => WriterPort;
  /** The streams held upstream so they are recorded without a client (holds.ts); none by default. */
  holds?: RecordingHolds;
}

export interface RecorderFigures {
  state: 'recording' | 'stopped';
  /** Why recording stopped (a full disk), if it did. */
  reason?: string;
  selection: readonly string[];
  /** Ticks accepted into batches, written to disk, shed because the writer was behind, lost in failed writes. */
  recorded: number;
  written: number;
  shed: number;
  failed: number;
  /** Ticks posted and not yet written. */
  queued: number;
  /** The store on disk, as of the last refresh. */
  bytes: number;
  days: number;
  oldest?: string;
  newest?: string;
  /** The streams held for recording and their state, when the selection names any. */
  holds?: HoldFigure[];
}

export class Recorder {
  /** Held by whichever part of the process drives upstream (the gateway, or the primary's hub). */
  readonly holds: RecordingHolds;
  private readonly builder: BatchBuilder;
  private readonly writer: WriterLink<WriterRequest, WriterReply>;
  private flushTimer: NodeJS.Timeout | undefined;
  private nextId = 1;
  private queued = 0;
  private readonly figures = { recorded: 0, written: 0, shed: 0, failed: 0, bytes: 0, days: 0, oldest: undefined as string | undefined, newest: undefined as string | undefined };

  constructor(private readonly options: RecorderOptions) {
    this.holds = options.holds ?? new RecordingHolds([], options.logger);
    this.builder = new BatchBuilder(options.batchTicks ?? 1000);
    this.writer = new WriterLink((options.startWriter ?? startWriterThread)(options.location), {
      clock: options.clock,
      logger: options.logger,
      maxAgeMs: options.maxAgeMs,
      maxBytes: options.maxBytes,
      ...(options.pruneEveryMs !== undefined ? { pruneEveryMs: options.pruneEveryMs } : {}),
      ...(options.retryMs !== undefined ? { retryMs: options.retryMs } : {}),
      words: {
        writer: 'the history writer',
        stopped: 'recording stopped; the gateway keeps serving',
        again: 'recording again',
        shed: 'the history writer is behind: ticks are not being recorded (delivery is unaffected)',
        pruned: 'history days deleted by retention',
        restart: 'restart the gateway to record again',
      },
      onReply: (reply) => this.onReply(reply),
    });
  }

  /** Whether ticks of this stream are recorded (asked once per topic; the answer is memoised by the caller). */
  wants(feed: string, exchange: string, symbol: string): boolean {
    return this.options.selection.matches(feed, exchange, symbol);
  }

  /** Offers one delivered tick of a wanted stream. Never blocks, never throws. */
  record(feed: string, exchange: string, symbol: string, mode: Mode, payload: string): void {
    if (this.writer.refusing) {
      this.figures.shed++;
      return;
    }
    if (this.queued + this.builder.count >= this.options.queueTicks) {
      this.figures.shed++;
      return this.writer.shed(() => ({ queued: this.queued, queueTicks: this.options.queueTicks }));
    }
    this.builder.add(streamRecordKey(feed === SHARED_FEED ? SHARED_FEED_NAME : feed, exchange, symbol), mode, this.options.clock.now(), payload);
    this.figures.recorded++;
    if (this.builder.full) this.flush();
    else this.flushTimer ??= setTimeout(() => this.flush(), this.options.flushMs ?? 200);
  }

  snapshot(): RecorderFigures {
    const { recorded, written, shed, failed, bytes, days, oldest, newest } = this.figures;
    return {
      ...this.writer.state(),
      selection: this.options.selection.items,
      recorded,
      written,
      shed,
      failed,
      queued: this.queued + this.builder.count,
      bytes,
      days,
      ...(oldest ? { oldest } : {}),
      ...(newest ? { newest } : {}),
      ...(this.holds.size > 0 ? { holds: this.holds.figures() } : {}),
    };
  }

  /** Writes what is batched, waits for the writer to finish it, and stops the thread. */
  close(): Promise<void> {
    return this.writer.close(() => this.flush());
  }

  private flush(): void {
    if (this.flushTimer) clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
    if (this.builder.count === 0) return;
    const batch = this.builder.take(this.nextId++);
    this.queued += batch.count;
    this.writer.post({ type: 'batch', batch }, [batch.stream.buffer as ArrayBuffer, batch.mode.buffer as ArrayBuffer, batch.receivedAt.buffer as ArrayBuffer]);
  }

  private onReply(reply: Exclude<WriterReply, { type: 'pruned' } | { type: 'closed' }>): void {
    switch (reply.type) {
      case 'written':
        this.queued -= reply.ticks;
        this.figures.written += reply.ticks;
        return;
      case 'failed':
        this.queued -= reply.ticks;
        this.figures.failed += reply.ticks;
        if (reply.fault === 'full') {
          this.writer.stop(`the disk of the history store is full (${reply.message})`);
          this.writer.prune(); // retention may free room, and the figures show the disk as it is
        } else if (reply.fault === 'unreachable') {
          this.writer.stop(`the history store cannot be reached (${reply.message})`);
        } else {
          this.options.logger.error({ err: reply.message, ticks: reply.ticks }, 'a batch of ticks could not be recorded');
        }
        return;
      case 'size':
        this.figures.bytes = reply.bytes;
        this.figures.days = reply.days;
        this.figures.oldest = reply.oldest;
        this.figures.newest = reply.newest;
        return;
    }
  }
}

function startWriterThread(location: HistoryLocation): WriterPort {
  return startHistoryThread('writer-thread', { location }) as unknown as WriterPort;
}
