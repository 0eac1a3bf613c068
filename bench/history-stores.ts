/**
 * Candidate embedded stores for market history (docs/history.md, "Choosing the embedded store"),
 * measured on the same simulated trading day: SQLite (better-sqlite3; payload as the JSON bytes or
 * as MessagePack), DuckDB (@duckdb/node-api, the Appender) and append-only segment files of
 * zlib-compressed blocks (raw deflate level 1 or brotli quality 4). bench/history-stores/stores.ts
 * describes each.
 *
 * The day: `--ticks` ticks from the project's simulator over `--symbols` streams (mode per stream
 * 30 % LTP, 50 % Quote, 20 % Depth), 09:15–15:30 IST, receive times monotonic. As a recorder
 * would run, a worker thread writes and the main thread only posts batches of `--batch` ticks
 * (packed into one transferred buffer; at most 4 in flight); every append is durable (fsynced)
 * before the worker acknowledges it. Per round, each candidate in turn (the order rotates):
 * - ingest: ticks/s from the first post to the last acknowledgement; the writing thread's CPU
 *   (and all threads but the main one: DuckDB has its own);
 * - bytes per tick of every file of the store after closing it (WAL checkpointed);
 * - one stream's whole day and one 5-minute window (12:00 IST), each in a fresh worker that
 *   reopens the store (cold-ish: the OS page cache stays warm; open time included), then warm
 *   (median of 3 more reads in the same worker); the rows come back in order as JSON text;
 * - DuckDB only, first round: COPY … TO Parquet of the whole table;
 * - kill -9: a child process writes a `--crash-ticks` day and is killed with SIGKILL after a
 *   random 30–70 % of its batches; the store is reopened and checked: acknowledged ticks lost,
 *   a torn batch visible, any tick read back differing from what was written, the store's own
 *   check, and whether one more batch can be appended.
 * Before the rounds: the main thread's cost of posting one batch, structured clone of plain
 * objects versus packing into one transferred buffer.
 * Medians over rounds, with ratios to the first candidate (per round, then the median).
 * Temporary files go under os.tmpdir() and are removed.
 *
 *   npm run bench:history-stores -- [--rounds 3] [--ticks 2000000] [--symbols 500] [--batch 1000]
 *     [--candidates sqlite-json,duckdb,seg-deflate] [--crash-ticks 50000] [--sqlite-sync full|normal] [--seed 1]
 *
 * --candidates: any of sqlite-json, sqlite-msgpack, duckdb, seg-deflate, seg-brotli (the first is
 * the baseline of the ratios). All five took 9 minutes on a 2-core machine; the default three
 * (one of each kind) take less.
 */
import { fork } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { Worker } from 'node:worker_threads';
import { CANDIDATE_NAMES, bytesOnDisk, candidates, loadDuckDB, type StoredTick } from './history-stores/stores.js';
import { DAY_START, type Day, cloneRecords, generateDay, packBatch, packDayBatch, tickOf } from './history-stores/ticks.js';
import type { IngestJob, ReadJob, ReadResult } from './history-stores/worker.js';

const { values: opts } = parseArgs({
  options: {
    rounds: { type: 'string', default: '3' },
    ticks: { type: 'string', default: '2000000' },
    symbols: { type: 'string', default: '500' },
    batch: { type: 'string', default: '1000' },
    candidates: { type: 'string', default: 'sqlite-json,duckdb,seg-deflate' },
    'crash-ticks': { type: 'string', default: '50000' },
    'sqlite-sync': { type: 'string', default: 'full' },
    seed: { type: 'string', default: '1' },
  },
});
const ROUNDS = Number(opts.rounds);
const TICKS = Number(opts.ticks);
const SYMBOLS = Number(opts.symbols);
const BATCH = Number(opts.batch);
const CRASH_TICKS = Number(opts['crash-ticks']);
const SEED = Number(opts.seed);
const SQLITE_SYNC = opts['sqlite-sync'] as 'full' | 'normal';
const CANDIDATES = opts.candidates!.split(',').map((s) => s.trim());
for (const name of CANDIDATES) if (!CANDIDATE_NAMES.includes(name)) throw new Error(`unknown candidate ${name} (known: ${CANDIDATE_NAMES.join(', ')})`);
if (SQLITE_SYNC !== 'full' && SQLITE_SYNC !== 'normal') throw new Error('--sqlite-sync is full or normal');
const IN_FLIGHT = 4;
const WARM_READS = 3;
const READ_KEY = 'simulator|NSE:RELIANCE';
// The whole calendar day (UTC) of the session, and a 5-minute window in it.
const DAY_FROM = DAY_START - (DAY_START % 86_400_000);
const DAY_TO = DAY_FROM + 86_400_000 - 1;
const WINDOW_FROM = DAY_START + 165 * 60_000; // 12:00 IST
const WINDOW_TO = WINDOW_FROM + 5 * 60_000 - 1;
const WORKER = new URL('./history-stores/worker-entry.mjs', import.meta.url);
const CRASH_CHILD = new URL('./history-stores/crash-child.ts', import.meta.url);

const median = (values: number[]): number => {
  const sorted = values.filter((v) => Number.isFinite(v)).sort((a, b) => a - b);
  if (sorted.length === 0) return NaN;
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
};
const tempDir = (): string => mkdtempSync(path.join(os.tmpdir(), 'tickcast-history-'));

/** CPU seconds of this process (all threads) and of its main thread. */
function cpu(): { process: number; main: number } {
  const read = (file: string): number => {
    const stat = readFileSync(file, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100;
  };
  return { process: read('/proc/self/stat'), main: read(`/proc/self/task/${process.pid}/stat`) };
}

function startWorker(data: IngestJob | ReadJob | { job: 'sink' }): Worker {
  return new Worker(WORKER, { workerData: data });
}

function nextMessage<T>(worker: Worker): Promise<T> {
  return new Promise((resolve, reject) => {
    const onMessage = (message: T): void => {
      cleanup();
      if (message && typeof message === 'object' && 'error' in message) reject(new Error(String((message as { error: unknown }).error)));
      else resolve(message);
    };
    const onError = (err: Error): void => {
      cleanup();
      reject(err);
    };
    const cleanup = (): void => {
      worker.off('message', onMessage);
      worker.off('error', onError);
    };
    worker.on('message', onMessage);
    worker.on('error', onError);
  });
}

interface IngestResult {
  ticksPerS: number;
  writerCpuS: number;
  otherThreadsCpuS: number;
  wallS: number;
  closeMs: number;
}

async function ingest(candidate: string, dir: string, batches: ArrayBuffer[], ticks: number): Promise<IngestResult> {
  const worker = startWorker({ job: 'ingest', candidate, dir, sqliteSync: SQLITE_SYNC });
  await nextMessage<string>(worker);
  const cpu0 = cpu();
  const t0 = performance.now();
  let posted = 0;
  let acked = 0;
  const post = (): void => {
    const copy = batches[posted++]!.slice(0);
    worker.postMessage({ batch: copy }, [copy]);
  };
  while (posted < Math.min(IN_FLIGHT, batches.length)) post();
  const elapsed = await new Promise<number>((resolve, reject) => {
    worker.on('error', reject);
    worker.on('message', (message: unknown) => {
      if (message !== 'ack') {
        if (message && typeof message === 'object' && 'error' in message) reject(new Error(String((message as { error: unknown }).error)));
        return;
      }
      acked++;
      if (posted < batches.length) post();
      if (acked === batches.length) resolve(performance.now() - t0);
    });
  });
  const cpu1 = cpu();
  worker.removeAllListeners('message');
  worker.postMessage({ end: true });
  const done = await nextMessage<{ cpuSeconds: number; closeMs: number }>(worker);
  await worker.terminate();
  return {
    ticksPerS: ticks / (elapsed / 1000),
    writerCpuS: done.cpuSeconds,
    otherThreadsCpuS: cpu1.process - cpu0.process - (cpu1.main - cpu0.main),
    wallS: elapsed / 1000,
    closeMs: done.closeMs,
  };
}

async function read(candidate: string, dir: string, from: number, to: number, parquet?: string): Promise<ReadResult> {
  const job: ReadJob = { job: 'read', candidate, dir, sqliteSync: SQLITE_SYNC, key: READ_KEY, from, to, warm: WARM_READS };
  if (parquet) job.parquet = parquet;
  const worker = startWorker(job);
  const result = await nextMessage<ReadResult>(worker);
  await worker.terminate();
  return result;
}

/**
 * Main-thread µs to post one batch to a worker (timed until postMessage returns, which is when
 * the structured clone has been serialised): plain objects (one per tick) cloned; the same ticks
 * as columns (key and payload strings cloned, numbers in typed arrays transferred); packed into
 * one buffer (the packing timed too) and transferred.
 */
async function postCost(day: Day, batches: number): Promise<{ objectsUs: number; columnsUs: number; packedUs: number }> {
  const worker = startWorker({ job: 'sink' });
  const sample = Array.from({ length: batches }, (_, b) => {
    const from = Math.floor((b * (day.count - BATCH)) / batches);
    return Array.from({ length: BATCH }, (_, i) => tickOf(day, from + i));
  });
  const objects = sample.map((ticks) => cloneRecords(ticks));
  const times = { objects: [] as number[], columns: [] as number[], packed: [] as number[] };
  for (let round = 0; round < 2; round++) {
    // The first pass warms up every path; the second is timed.
    for (let b = 0; b < batches; b++) {
      const ticks = sample[b]!;
      const columns = {
        keys: ticks.map((x) => x.key),
        payloads: ticks.map((x) => x.payload),
        receivedAt: Float64Array.from(ticks, (x) => x.receivedAt),
        exchangeTs: Float64Array.from(ticks, (x) => x.exchangeTs ?? NaN),
        mode: Uint8Array.from(ticks, (x) => x.mode),
      };
      let t = performance.now();
      worker.postMessage(objects[b]);
      if (round) times.objects.push(performance.now() - t);
      await nextMessage(worker);
      t = performance.now();
      worker.postMessage(columns, [columns.receivedAt.buffer, columns.exchangeTs.buffer, columns.mode.buffer]);
      if (round) times.columns.push(performance.now() - t);
      await nextMessage(worker);
      t = performance.now();
      const buffer = packBatch(ticks);
      worker.postMessage(buffer, [buffer]);
      if (round) times.packed.push(performance.now() - t);
      await nextMessage(worker);
    }
  }
  await worker.terminate();
  return { objectsUs: median(times.objects) * 1000, columnsUs: median(times.columns) * 1000, packedUs: median(times.packed) * 1000 };
}

interface CrashResult {
  opened: string;
  ackedTicks: number;
  foundTicks: number;
  lostAcked: number;
  tornBatch: boolean;
  mismatched: number;
  check: string;
  appendAfter: string;
  reopenMs: number;
}

async function crashTrial(candidate: string, crashDay: Day, fraction: number): Promise<CrashResult> {
  const dir = tempDir();
  try {
    const totalBatches = Math.ceil(crashDay.count / BATCH);
    const target = Math.max(1, Math.floor(totalBatches * fraction));
    const args = { candidate, dir, ticks: CRASH_TICKS, symbols: SYMBOLS, seed: SEED + 7, batch: BATCH, sqliteSync: SQLITE_SYNC };
    const child = fork(CRASH_CHILD, [JSON.stringify(args)], { execArgv: process.execArgv, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    let committed = 0;
    const exited = new Promise<string>((resolve) => child.on('exit', (code, signal) => resolve(signal ?? `exit ${code}`)));
    child.on('message', (message: { committed?: number }) => {
      if (message.committed) committed = message.committed;
      // A random moment within the next batch's write.
      if (committed === target) setTimeout(() => child.kill('SIGKILL'), Math.random() * 30);
    });
    const how = await exited;
    if (how !== 'SIGKILL') throw new Error(`${candidate}: the writing child ended with ${how} before it was killed`);

    const ackedTicks = Math.min(committed * BATCH, crashDay.count);
    if (candidate === 'duckdb') await loadDuckDB();
    const t = performance.now();
    const found = candidates({ sqliteSync: SQLITE_SYNC }).find((c) => c.name === candidate)!;
    let store;
    try {
      store = await found.open(dir);
    } catch (err) {
      return { opened: `no: ${(err as Error).message}`, ackedTicks, foundTicks: 0, lostAcked: ackedTicks, tornBatch: false, mismatched: 0, check: '-', appendAfter: '-', reopenMs: NaN };
    }
    const reopenMs = performance.now() - t;
    const check = await store.check();
    const rows = await store.scanAll();
    const normalise = candidate === 'sqlite-msgpack' ? (s: string): string => JSON.stringify(JSON.parse(s)) : (s: string): string => s;
    let mismatched = 0;
    for (let i = 0; i < rows.length; i++) {
      const row: StoredTick = rows[i]!;
      const want = i < crashDay.count ? tickOf(crashDay, i) : undefined;
      if (!want || row.key !== want.key || row.receivedAt !== want.receivedAt || row.exchangeTs !== want.exchangeTs || row.mode !== want.mode || row.payload !== normalise(want.payload)) mismatched++;
    }
    let appendAfter = 'ok';
    try {
      const from = rows.length;
      const to = Math.min(crashDay.count, from + BATCH);
      await store.append(packDayBatch(crashDay, from, to));
      const after = (await store.scanAll()).length;
      if (after !== to) appendAfter = `holds ${after} ticks, expected ${to}`;
    } catch (err) {
      appendAfter = `failed: ${(err as Error).message}`;
    }
    await store.close();
    return {
      opened: 'yes',
      ackedTicks,
      foundTicks: rows.length,
      lostAcked: Math.max(0, ackedTicks - rows.length),
      tornBatch: rows.length % BATCH !== 0 && rows.length !== crashDay.count,
      mismatched,
      check,
      appendAfter,
      reopenMs,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

interface RoundResult {
  ingest: IngestResult;
  bytesPerTick: number;
  day: ReadResult;
  window: ReadResult;
  parquetBytesPerTick: number;
  crash: CrashResult;
}

// ---------------------------------------------------------------------------------------------

console.log(`history stores: ${TICKS.toLocaleString('en')} ticks over ${SYMBOLS} streams, batches of ${BATCH}, ${ROUNDS} rounds, sqlite synchronous=${SQLITE_SYNC} (node ${process.version}, ${os.cpus().length} cpus)`);
let t = performance.now();
const day = generateDay(TICKS, SYMBOLS, SEED);
const batches: ArrayBuffer[] = [];
for (let from = 0; from < day.count; from += BATCH) batches.push(packDayBatch(day, from, Math.min(day.count, from + BATCH)));
const crashDay = generateDay(CRASH_TICKS, SYMBOLS, SEED + 7);
const readIndex = day.keys.indexOf(READ_KEY);
const expected = { day: 0, dayBytes: 0, window: 0 };
for (let i = 0; i < day.count; i++) {
  if (day.stream[i] !== readIndex) continue;
  expected.day++;
  expected.dayBytes += day.payloadAt[i + 1]! - day.payloadAt[i]!;
  if (day.receivedAt[i]! >= WINDOW_FROM && day.receivedAt[i]! <= WINDOW_TO) expected.window++;
}
const modeCounts = [0, 0, 0, 0];
for (let i = 0; i < day.count; i++) modeCounts[day.mode[i]!]!++;
console.log(
  `generated in ${((performance.now() - t) / 1000).toFixed(1)} s: mean payload ${day.meanPayloadBytes.toFixed(0)} B of JSON; ` +
    `LTP/Quote/Depth ${modeCounts.slice(1).map((c) => ((100 * c) / day.count).toFixed(0) + ' %').join(' / ')}; ` +
    `${READ_KEY} has ${expected.day} ticks in the day, ${expected.window} in the window`,
);

t = performance.now();
const post = await postCost(day, 100);
console.log(
  `main thread per posted batch of ${BATCH} ticks: ${post.objectsUs.toFixed(0)} µs as objects (structured clone), ` +
    `${post.columnsUs.toFixed(0)} µs as columns (strings cloned, typed arrays transferred), ${post.packedUs.toFixed(0)} µs packed into one transferred buffer (packing included)`,
);

const results = new Map<string, RoundResult[]>(CANDIDATES.map((c) => [c, []]));
for (let round = 0; round < ROUNDS; round++) {
  const order = CANDIDATES.map((_, i) => CANDIDATES[(i + round) % CANDIDATES.length]!);
  for (const candidate of order) {
    const dir = tempDir();
    try {
      const ingested = await ingest(candidate, dir, batches, day.count);
      const bytesPerTick = bytesOnDisk(dir) / day.count;
      const parquetFile = path.join(dir, 'export.parquet');
      const dayRead = await read(candidate, dir, DAY_FROM, DAY_TO, round === 0 ? parquetFile : undefined);
      const parquetBytesPerTick = dayRead.parquetMs === undefined ? NaN : bytesOnDisk(dir) / day.count - bytesPerTick;
      const windowRead = await read(candidate, dir, WINDOW_FROM, WINDOW_TO);
      for (const [what, r, want] of [['day', dayRead, expected.day], ['window', windowRead, expected.window]] as const) {
        if (r.count !== want || !r.inOrder) throw new Error(`${candidate}: ${what} read gave ${r.count} ticks (in order: ${r.inOrder}), expected ${want}`);
      }
      if (candidate !== 'sqlite-msgpack' && dayRead.payloadBytes !== expected.dayBytes) throw new Error(`${candidate}: day read gave ${dayRead.payloadBytes} payload bytes, expected ${expected.dayBytes}`);
      rmSync(dir, { recursive: true, force: true });
      const crash = await crashTrial(candidate, crashDay, 0.3 + 0.4 * ((round * 7 + CANDIDATES.indexOf(candidate) * 3) % 10) / 10);
      results.get(candidate)!.push({ ingest: ingested, bytesPerTick, day: dayRead, window: windowRead, parquetBytesPerTick, crash });
      console.log(
        `round ${round + 1} ${candidate}: ${Math.round(ingested.ticksPerS).toLocaleString('en')} ticks/s, ${bytesPerTick.toFixed(1)} B/tick, ` +
          `day ${dayRead.coldMs.toFixed(0)}/${median(dayRead.warmMs).toFixed(0)} ms, window ${windowRead.coldMs.toFixed(1)}/${median(windowRead.warmMs).toFixed(1)} ms, ` +
          `kill -9 after ${crash.ackedTicks} acked: ${crash.foundTicks} found, ${crash.mismatched} differ, check ${crash.check}`,
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
}

const base = CANDIDATES[0]!;
const ratio = (candidate: string, get: (r: RoundResult) => number): number =>
  median(results.get(candidate)!.map((r, i) => get(r) / get(results.get(base)![i]!)));
const fmt = (v: number, digits = 0): string => (Number.isFinite(v) ? v.toLocaleString('en', { minimumFractionDigits: digits, maximumFractionDigits: digits }) : '-');

console.log(`\nmedians of ${ROUNDS} rounds; ÷ ${base}: median of per-round ratios`);
console.log('| store | ingest ticks/s | ÷ base | writer thread CPU % | writer µs/tick | other threads µs/tick | bytes/tick | day read cold ms | day read warm ms | 5-min cold ms | 5-min warm ms | open ms |');
console.log('|---|---|---|---|---|---|---|---|---|---|---|---|');
for (const candidate of CANDIDATES) {
  const rs = results.get(candidate)!;
  const m = (get: (r: RoundResult) => number): number => median(rs.map(get));
  console.log(
    `| ${candidate} | ${fmt(m((r) => r.ingest.ticksPerS))} | ${fmt(ratio(candidate, (r) => r.ingest.ticksPerS), 2)} | ` +
      `${fmt(m((r) => (100 * r.ingest.writerCpuS) / r.ingest.wallS))} | ${fmt(m((r) => (1e6 * r.ingest.writerCpuS) / TICKS), 1)} | ` +
      `${fmt(m((r) => (1e6 * (r.ingest.otherThreadsCpuS - r.ingest.writerCpuS)) / TICKS), 1)} | ${fmt(m((r) => r.bytesPerTick), 1)} | ` +
      `${fmt(m((r) => r.day.coldMs))} | ${fmt(m((r) => median(r.day.warmMs)))} | ${fmt(m((r) => r.window.coldMs), 1)} | ${fmt(m((r) => median(r.window.warmMs)), 1)} | ` +
      `${fmt(m((r) => r.window.openMs), 1)} |`,
  );
}
console.log(`\n(raw JSON payload: ${day.meanPayloadBytes.toFixed(0)} B/tick; one stream's day: ${expected.day} ticks, ${(expected.dayBytes / 1024).toFixed(0)} KiB of JSON)`);
for (const candidate of CANDIDATES) {
  const rs = results.get(candidate)!;
  if (rs.some((r) => r.day.parquetMs !== undefined)) {
    console.log(`${candidate}: COPY TO Parquet of the day ${fmt(median(rs.map((r) => r.day.parquetMs!)))} ms, ${fmt(median(rs.map((r) => r.parquetBytesPerTick)), 1)} B/tick`);
  }
  console.log(`${candidate}: close (checkpoint) ${fmt(median(rs.map((r) => r.ingest.closeMs)))} ms`);
}

console.log(`\nkill -9 mid-ingest (${CRASH_TICKS.toLocaleString('en')}-tick day, SIGKILL after a committed batch; per round)`);
console.log('| store | opens | acked ticks → found | acked lost | torn batch | ticks differing | check | append after | reopen ms |');
console.log('|---|---|---|---|---|---|---|---|---|');
for (const candidate of CANDIDATES) {
  const rs = results.get(candidate)!.map((r) => r.crash);
  const list = (get: (c: CrashResult) => string | number | boolean): string => [...new Set(rs.map((c) => String(get(c))))].join(', ');
  console.log(
    `| ${candidate} | ${list((c) => c.opened)} | ${rs.map((c) => `${c.ackedTicks} → ${c.foundTicks}`).join('; ')} | ${list((c) => c.lostAcked)} | ` +
      `${list((c) => (c.tornBatch ? 'yes' : 'no'))} | ${list((c) => c.mismatched)} | ${list((c) => c.check)} | ${list((c) => c.appendAfter)} | ${fmt(median(rs.map((c) => c.reopenMs)), 1)} |`,
  );
}
