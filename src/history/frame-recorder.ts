/**
 * The frame recorder (TICKCAST_RECORD_FRAMES): the raw messages of the native broker sockets, in
 * and out, kept in `frames-YYYY-MM-DD.db` beside the tick history. A session hands each message
 * to its connection here, which copies it into the batch being built and returns; full batches,
 * or whatever waits after `flushMs`, go to a writer thread of their own (frame-writer-thread.ts).
 * It never waits for the writer: past `queueBytes` unwritten, new messages are shed (counted and
 * logged at most every 10 s), and a full disk stops frame recording (an alert in the log and in
 * `/api/status`) until a retry a minute later, while the feeds go on.
 */
import type { Clock } from '../clock.js';
import type { Logger } from '../observability/logger.js';
import type { FrameConnection, FrameSink } from '../adapters/session/frame-sink.js';
import { type BatchSlot, FRAME_BINARY, FRAME_OUT, FrameBatchBuilder, batchTransfer } from './frame-batch.js';
import type { FrameWriterReply, FrameWriterRequest } from './frame-writer.js';
import { startHistoryThread } from './threads.js';
import { WriterLink, type WriterThreadPort } from './writer-link.js';

/** What the recorder needs of its writer thread (a Worker; tests may give a stand-in). */
export type FrameWriterPort = WriterThreadPort<FrameWriterRequest, FrameWriterReply>;

/** The brokers whose frames are recorded: every native one, or those named. */
export type FrameSelection = 'all' | readonly string[];

/** Bytes of messages that may wait for the frame writer before new ones are shed. */
export const FRAME_QUEUE_BYTES = 64 * 1024 * 1024;

export interface FrameRecorderOptions {
  brokers: FrameSelection;
  /** The history directory: the day files go beside the ticks'. */
  dir: string;
  clock: Clock;
  logger: Logger;
  /** Retention, applied at start and every `pruneEveryMs`: days older than this, bytes above this (0: no limit). */
  maxAgeMs: number;
  maxBytes: number;
  /** Default FRAME_QUEUE_BYTES. */
  queueBytes?: number;
  /** Messages per batch (default 4096) and the batch buffer's size (default 1 MiB). */
  batchFrames?: number;
  batchBytes?: number;
  /** A batch waits at most this long before it is written (default 200 ms). */
  flushMs?: number;
  /** Retention and disk figures are refreshed this often (default 60 s). */
  pruneEveryMs?: number;
  /** After a full disk, recording is tried again this long later (default 60 s). */
  retryMs?: number;
  /** Starts the writer thread (default: frame-writer-thread.js on a Worker). */
  startWriter?: (dir: string) => FrameWriterPort;
}

export interface FrameFigures {
  state: 'recording' | 'stopped';
  reason?: string;
  brokers: FrameSelection;
  /** Messages taken into batches, written, shed (writer behind, or recording stopped), lost in failed writes. */
  recorded: number;
  written: number;
  shed: number;
  failed: number;
  /** Bytes of messages taken and written. */
  recordedBytes: number;
  writtenBytes: number;
  /** Bytes posted or batched and not yet written. */
  queuedBytes: number;
  /** The frame day files on disk, as of the last refresh. */
  bytes: number;
  days: number;
  /** Sockets recorded since start. */
  connections: number;
}

class RecordedConnection implements FrameConnection {
  readonly slot: BatchSlot;

  constructor(
    private readonly recorder: FrameRecorder,
    readonly id: string,
    broker: string,
    feed: string,
    socket: string,
    openedAt: number,
  ) {
    this.slot = { info: { id, broker, feed, socket, openedAt }, batch: -1, index: 0 };
  }

  frame(out: boolean, binary: boolean, data: Buffer | string): void {
    this.recorder.take(this.slot, (out ? FRAME_OUT : 0) | (binary ? FRAME_BINARY : 0), data);
  }
}

export class FrameRecorder implements FrameSink {
  private readonly builder: FrameBatchBuilder;
  private readonly writer: WriterLink<FrameWriterRequest, FrameWriterReply>;
  /** Sockets opened per feed: the `<n>` of `<feed>#<n>`. */
  private readonly opened = new Map<string, number>();
  private readonly queueBytes: number;
  private flushTimer: NodeJS.Timeout | undefined;
  private nextId = 1;
  private queued = 0;
  private readonly figures = { recorded: 0, written: 0, shed: 0, failed: 0, recordedBytes: 0, writtenBytes: 0, bytes: 0, days: 0, connections: 0 };

  constructor(private readonly options: FrameRecorderOptions) {
    this.queueBytes = options.queueBytes ?? FRAME_QUEUE_BYTES;
    this.builder = new FrameBatchBuilder(options.batchFrames ?? 4096, options.batchBytes ?? 1024 * 1024);
    this.writer = new WriterLink((options.startWriter ?? startFrameWriterThread)(options.dir), {
      clock: options.clock,
      logger: options.logger,
      maxAgeMs: options.maxAgeMs,
      maxBytes: options.maxBytes,
      ...(options.pruneEveryMs !== undefined ? { pruneEveryMs: options.pruneEveryMs } : {}),
      ...(options.retryMs !== undefined ? { retryMs: options.retryMs } : {}),
      words: {
        writer: 'the frame writer',
        stopped: 'frame recording stopped; the feeds go on',
        again: 'recording frames again',
        shed: 'the frame writer is behind: broker frames are not being recorded (the feeds are unaffected)',
        pruned: 'frame days deleted by retention',
        restart: 'restart to record frames again',
      },
      onReply: (reply) => this.onReply(reply),
    });
  }

  open(broker: string, feed: string, socket: string): FrameConnection | undefined {
    const { brokers } = this.options;
    if (this.writer.shuttingDown || (brokers !== 'all' && !brokers.includes(broker))) return undefined;
    const n = (this.opened.get(feed) ?? 0) + 1;
    this.opened.set(feed, n);
    this.figures.connections++;
    return new RecordedConnection(this, `${feed}#${n}`, broker, feed, socket, this.options.clock.now());
  }

  /** One message of a recorded socket (RecordedConnection.frame). Never blocks, never throws. */
  take(slot: BatchSlot, flags: number, data: Buffer | string): void {
    if (this.writer.refusing) {
      this.figures.shed++;
      return;
    }
    const length = typeof data === 'string' ? Buffer.byteLength(data) : data.length;
    if (this.queued + this.builder.bytes + length > this.queueBytes) {
      this.figures.shed++;
      return this.writer.shed(() => ({ queuedBytes: this.queued + this.builder.bytes, queueBytes: this.queueBytes }));
    }
    if (!this.builder.fits(length)) this.flush();
    this.builder.add(slot, flags, this.options.clock.now(), data);
    this.figures.recorded++;
    this.figures.recordedBytes += length;
    if (this.builder.full) this.flush();
    else this.flushTimer ??= setTimeout(() => this.flush(), this.options.flushMs ?? 200);
  }

  snapshot(): FrameFigures {
    const { recorded, written, shed, failed, recordedBytes, writtenBytes, bytes, days, connections } = this.figures;
    return {
      ...this.writer.state(),
      brokers: this.options.brokers,
      recorded,
      written,
      shed,
      failed,
      recordedBytes,
      writtenBytes,
      queuedBytes: this.queued + this.builder.bytes,
      bytes,
      days,
      connections,
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
    this.queued += batch.bytes;
    this.writer.post({ type: 'batch', batch }, batchTransfer(batch));
  }

  private onReply(reply: Exclude<FrameWriterReply, { type: 'pruned' } | { type: 'closed' }>): void {
    switch (reply.type) {
      case 'written':
        this.queued -= reply.bytes;
        this.figures.written += reply.frames;
        this.figures.writtenBytes += reply.bytes;
        return;
      case 'failed':
        this.queued -= reply.bytes;
        this.figures.failed += reply.frames;
        if (reply.full) {
          this.writer.stop(`the disk of the frame store is full (${reply.message})`);
          this.writer.prune(); // retention may free room, and the figures show the disk as it is
        } else {
          this.options.logger.error({ err: reply.message, frames: reply.frames }, 'a batch of broker frames could not be recorded');
        }
        return;
      case 'size':
        this.figures.bytes = reply.bytes;
        this.figures.days = reply.days;
        return;
    }
  }
}

function startFrameWriterThread(dir: string): FrameWriterPort {
  return startHistoryThread('frame-writer-thread', { dir }) as unknown as FrameWriterPort;
}
