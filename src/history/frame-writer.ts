/**
 * The frame writer: what the frame recorder's thread does with each message (frame-writer-thread.ts
 * is the thread around it). Batches go to the frame store, one transaction per day touched; a
 * failure says whether the disk is full, so the recorder stops instead of retrying into it.
 */
import { storageProblem } from '../store/storage-advice.js';
import { type FrameBatch, unpackFrames } from './frame-batch.js';
import { FrameStore } from './frame-store.js';
import { dayOf } from './day-files.js';

export type FrameWriterRequest =
  | { type: 'batch'; batch: FrameBatch }
  | { type: 'prune'; now: number; maxAgeMs?: number; maxBytes?: number }
  | { type: 'size' }
  | { type: 'close' };

export type FrameWriterReply =
  | { type: 'written'; id: number; frames: number; bytes: number }
  | { type: 'failed'; id: number; frames: number; bytes: number; full: boolean; message: string }
  | { type: 'size'; bytes: number; days: number }
  | { type: 'pruned'; days: string[] }
  | { type: 'closed' };

export class FrameWriter {
  private store: FrameStore | undefined;

  constructor(private readonly dir: string) {}

  /** Answers one request; the caller runs them one at a time, in order. */
  handle(request: FrameWriterRequest): FrameWriterReply {
    switch (request.type) {
      case 'batch':
        return this.write(request.batch);
      case 'prune': {
        const { now, maxAgeMs, maxBytes } = request;
        return { type: 'pruned', days: this.open().prune({ now, ...(maxAgeMs ? { maxAgeMs } : {}), ...(maxBytes ? { maxBytes } : {}) }) };
      }
      case 'size': {
        const days = this.open().days();
        return { type: 'size', bytes: days.reduce((sum, day) => sum + day.bytes, 0), days: days.length };
      }
      case 'close':
        this.store?.close();
        return { type: 'closed' };
    }
  }

  private open(): FrameStore {
    this.store ??= new FrameStore({ dir: this.dir });
    return this.store;
  }

  private write(batch: FrameBatch): FrameWriterReply {
    try {
      const frames = unpackFrames(batch);
      const store = this.open();
      // Past midnight the previous day's file is done: its handle is closed (reopened if a late frame comes).
      if (frames.length > 0) store.closeDaysBefore(dayOf(frames[0]!.receivedAt));
      store.append(frames);
      return { type: 'written', id: batch.id, frames: batch.count, bytes: batch.bytes };
    } catch (error) {
      return { type: 'failed', id: batch.id, frames: batch.count, bytes: batch.bytes, full: storageProblem(error, this.dir) === 'full', message: (error as Error).message };
    }
  }
}
