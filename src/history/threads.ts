/**
 * Starts one of the history's worker threads (`reader-thread`, `writer-thread`, `summary-thread`, `frame-writer-thread`): the built module, or the
 * TypeScript source through thread-entry.mjs when tickcast runs from its sources (tests), since
 * Node 20's worker threads do not inherit tsx's loader.
 */
import { Worker } from 'node:worker_threads';

export function startHistoryThread(name: 'reader-thread' | 'writer-thread' | 'summary-thread' | 'frame-writer-thread', workerData: Record<string, unknown>): Worker {
  const here = import.meta.url;
  if (here.endsWith('.ts')) return new Worker(new URL('./thread-entry.mjs', here), { workerData: { ...workerData, module: `./${name}.ts` } });
  return new Worker(new URL(`./${name}.js`, here), { workerData });
}
