/**
 * The history writer: what the recorder's thread does with each message (writer-thread.ts is
 * the thread around it). Batches go to the store, one transaction each; a failure is reported
 * with what kind of storage problem it is, so a full disk stops recording instead of retrying
 * every batch into it.
 */
import { storageProblem } from '../store/storage-advice.js';
import { type TickBatch, unpackBatch } from './batch.js';
import { TickStore, dayOf } from './tick-store.js';

export type WriterRequest =
  | { type: 'batch'; batch: TickBatch }
  | { type: 'prune'; now: number; maxAgeMs?: number; maxBytes?: number }
  | { type: 'size' }
  | { type: 'close' };

export type WriterReply =
  | { type: 'written'; id: number; ticks: number }
  | { type: 'failed'; id: number; ticks: number; full: boolean; message: string }
  | { type: 'size'; bytes: number; days: number; oldest?: string; newest?: string }
  | { type: 'pruned'; days: string[] }
  | { type: 'closed' };

export class HistoryWriter {
  private readonly store: TickStore;

  constructor(dir: string) {
    this.store = new TickStore({ dir });
  }

  handle(request: WriterRequest): WriterReply {
    switch (request.type) {
      case 'batch':
        return this.write(request.batch);
      case 'prune': {
        const { now, maxAgeMs, maxBytes } = request;
        return { type: 'pruned', days: this.store.prune({ now, ...(maxAgeMs ? { maxAgeMs } : {}), ...(maxBytes ? { maxBytes } : {}) }) };
      }
      case 'size': {
        const days = this.store.days();
        return {
          type: 'size',
          bytes: days.reduce((sum, day) => sum + day.bytes, 0),
          days: days.length,
          ...(days.length > 0 ? { oldest: days[0]!.day, newest: days.at(-1)!.day } : {}),
        };
      }
      case 'close':
        this.store.close();
        return { type: 'closed' };
    }
  }

  private write(batch: TickBatch): WriterReply {
    const ticks = unpackBatch(batch);
    // Past midnight the previous day's file is done: its handle is closed (reopened if a late tick comes).
    if (ticks.length > 0) this.store.closeDaysBefore(dayOf(ticks[0]!.receivedAt));
    try {
      this.store.append(ticks);
      return { type: 'written', id: batch.id, ticks: batch.count };
    } catch (error) {
      const problem = storageProblem(error, this.store.dir);
      return { type: 'failed', id: batch.id, ticks: batch.count, full: problem === 'full', message: (error as Error).message };
    }
  }
}
