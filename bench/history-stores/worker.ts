/**
 * The writing thread of bench/history-stores.ts, in one of three jobs (workerData.job):
 * - `ingest`: opens a store, appends each posted batch, answers `ack` after each, and on `end`
 *   closes the store and reports this thread's CPU time over the batches;
 * - `read`: opens the store (timed), reads one stream's range once (cold-ish: a fresh open) and
 *   then `warm` more times, and checks what came back;
 * - `sink`: answers every message with `ack` (the main-thread post cost is timed against it).
 */
import { readFileSync } from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';
import { candidates, loadDuckDB, type HistoryStore } from './stores.js';

export interface IngestJob {
  job: 'ingest';
  candidate: string;
  dir: string;
  sqliteSync: 'full' | 'normal';
}

export interface ReadJob {
  job: 'read';
  candidate: string;
  dir: string;
  sqliteSync: 'full' | 'normal';
  key: string;
  from: number;
  to: number;
  warm: number;
  /** Also time a Parquet export to this file, where the store can. */
  parquet?: string;
}

export interface ReadResult {
  openMs: number;
  coldMs: number;
  warmMs: number[];
  count: number;
  payloadBytes: number;
  inOrder: boolean;
  parquetMs?: number;
}

/** CPU seconds (user + system) of the calling thread, from /proc (USER_HZ = 100). */
export function threadCpuSeconds(): number {
  const stat = readFileSync('/proc/thread-self/stat', 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

const port = parentPort!;
const job = workerData as IngestJob | ReadJob | { job: 'sink' };

async function open(candidate: string, dir: string, sqliteSync: 'full' | 'normal'): Promise<HistoryStore> {
  const found = candidates({ sqliteSync }).find((c) => c.name === candidate);
  if (!found) throw new Error(`unknown candidate ${candidate}`);
  return found.open(dir);
}

if (job.job === 'sink') {
  port.on('message', () => port.postMessage('ack'));
} else if (job.job === 'ingest') {
  const store = await open(job.candidate, job.dir, job.sqliteSync);
  let cpuStart = 0;
  let cpuEnd = 0;
  let first = true;
  let chain = Promise.resolve();
  port.on('message', (message: { batch?: ArrayBuffer; end?: true }) => {
    chain = chain.then(async () => {
      if (message.batch) {
        if (first) {
          cpuStart = threadCpuSeconds();
          first = false;
        }
        await store.append(message.batch);
        cpuEnd = threadCpuSeconds();
        port.postMessage('ack');
      } else {
        const closing = performance.now();
        await store.close();
        port.postMessage({ done: true, cpuSeconds: cpuEnd - cpuStart, closeMs: performance.now() - closing });
      }
    });
    chain.catch((err: unknown) => {
      port.postMessage({ error: String((err as Error)?.stack ?? err) });
    });
  });
  port.postMessage('ready');
} else {
  if (job.candidate === 'duckdb') await loadDuckDB();
  const started = performance.now();
  const store = await open(job.candidate, job.dir, job.sqliteSync);
  const openMs = performance.now() - started;
  let rows = await store.read(job.key, job.from, job.to);
  const coldMs = performance.now() - started;
  const warmMs: number[] = [];
  for (let i = 0; i < job.warm; i++) {
    const t = performance.now();
    rows = await store.read(job.key, job.from, job.to);
    warmMs.push(performance.now() - t);
  }
  let inOrder = true;
  let payloadBytes = 0;
  for (let i = 0; i < rows.length; i++) {
    if (i > 0 && rows[i]!.receivedAt < rows[i - 1]!.receivedAt) inOrder = false;
    payloadBytes += rows[i]!.payload.length;
  }
  const result: ReadResult = { openMs, coldMs, warmMs, count: rows.length, payloadBytes, inOrder };
  if (job.parquet && store.exportParquet) {
    const t = performance.now();
    await store.exportParquet(job.parquet);
    result.parquetMs = performance.now() - t;
  }
  await store.close();
  port.postMessage(result);
}
