/**
 * The history writer: what the recorder's thread does with each message (writer-thread.ts is
 * the thread around it). Batches go to the store, one transaction each; a failure is reported
 * with what kind of storage problem it is, so a full disk stops recording instead of retrying
 * every batch into it.
 */
import { storageProblem } from '../store/storage-advice.js';
import { type TickBatch, unpackBatch } from './batch.js';
import { type HistoryLocation, type HistoryStore, HistoryStoreError, type StoreFault } from './store.js';
import { openHistoryStore } from './open-store.js';

export type WriterRequest =
  | { type: 'batch'; batch: TickBatch }
  | { type: 'prune'; now: number; maxAgeMs?: number; maxBytes?: number }
  | { type: 'size' }
  | { type: 'close' };

export type WriterReply =
  | { type: 'written'; id: number; ticks: number }
  | { type: 'failed'; id: number; ticks: number; fault?: StoreFault; message: string }
  | { type: 'size'; bytes: number; days: number; oldest?: string; newest?: string }
  | { type: 'pruned'; days: string[] }
  | { type: 'closed' };

export class HistoryWriter {
  private store: Promise<HistoryStore> | undefined;

  constructor(private readonly location: HistoryLocation) {}

  /** Answers one request; the caller runs them one at a time, in order. */
  async handle(request: WriterRequest): Promise<WriterReply> {
    switch (request.type) {
      case 'batch':
        return this.write(request.batch);
      case 'prune': {
        const { now, maxAgeMs, maxBytes } = request;
        const store = await this.open();
        return { type: 'pruned', days: await store.prune({ now, ...(maxAgeMs ? { maxAgeMs } : {}), ...(maxBytes ? { maxBytes } : {}) }) };
      }
      case 'size': {
        const days = await (await this.open()).days();
        return {
          type: 'size',
          bytes: days.reduce((sum, day) => sum + day.bytes, 0),
          days: days.length,
          ...(days.length > 0 ? { oldest: days[0]!.day, newest: days.at(-1)!.day } : {}),
        };
      }
      case 'close':
        if (this.store) await (await this.store.catch(() => undefined))?.close();
        return { type: 'closed' };
    }
  }

  /** The store, opened on first use; a failed open is tried again by the next request. */
  private open(): Promise<HistoryStore> {
    this.store ??= openHistoryStore(this.location).catch((error: unknown) => {
      this.store = undefined;
      throw error;
    });
    return this.store;
  }

  private async write(batch: TickBatch): Promise<WriterReply> {
    try {
      await (await this.open()).append(unpackBatch(batch));
      return { type: 'written', id: batch.id, ticks: batch.count };
    } catch (error) {
      const fault = this.faultOf(error);
      return { type: 'failed', id: batch.id, ticks: batch.count, ...(fault ? { fault } : {}), message: (error as Error).message };
    }
  }

  private faultOf(error: unknown): StoreFault | undefined {
    if (error instanceof HistoryStoreError) return error.fault;
    return this.location.kind === 'sqlite' && storageProblem(error, this.location.dir) === 'full' ? 'full' : undefined;
  }
}
