/**
 * Ingest into the PostgreSQL history store (src/history/pg-store.ts) against the SQLite day files
 * (TickStore), and the two ways of putting a batch into PostgreSQL: `COPY … FROM STDIN`
 * (pg-copy-streams, text format: what the store does) and one multi-row
 * `INSERT … SELECT FROM unnest(…)` in the same transaction (`pg-unnest`, written out below).
 *
 * Ticks: `--ticks` per run over `--streams` streams of one UTC day, payloads of ~400 bytes of
 * JSON, appended in batches of `--batch` from the main thread, each append awaited before the
 * next (as the recorder's writer does). Every commit is durable on both sides: SQLite with
 * synchronous=FULL (the store's setting), PostgreSQL with the server's fsync and
 * synchronous_commit (printed). Per run, each candidate in turn (the order rotates) on a fresh
 * store; the first batch is written untimed (it creates the day's file or partition and most
 * streams), ticks/s is over the rest. Medians of `--runs`, with the median of per-run ratios to
 * SQLite.
 *
 * PostgreSQL: a database `tickcast_bench_<random>` is created on the server of
 * TICKCAST_BENCH_POSTGRES (default postgresql://postgres@127.0.0.1:5432/postgres) and dropped
 * at the end; SQLite writes under os.tmpdir().
 *
 *   npm run bench:history-postgres -- [--runs 5] [--ticks 200000] [--batch 1000] [--streams 500]
 *
 * Also, per run of `sqlite` and `pg-store`: bytes on disk per tick, and the time to read one
 * stream's ticks of the day (SYM7, ~400 ticks) back through the HistoryStore interface, as
 * `/api/ticks` and replay do. docs/history.md ("A fleet's store") has the figures.
 */
import crypto from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { openHistoryStore } from '../src/history/open-store.js';
import { PgHistoryStore } from '../src/history/pg-store.js';
import type { HistoryLocation } from '../src/history/store.js';
import { type RecordedTick, TickStore } from '../src/history/tick-store.js';
import type { Mode } from '../src/protocol/modes.js';

const { values: opts } = parseArgs({
  options: {
    runs: { type: 'string', default: '5' },
    ticks: { type: 'string', default: '200000' },
    batch: { type: 'string', default: '1000' },
    streams: { type: 'string', default: '500' },
  },
});
const RUNS = Number(opts.runs);
const TICKS = Number(opts.ticks);
const BATCH = Number(opts.batch);
const STREAMS = Number(opts.streams);
const ADMIN_URL = process.env.TICKCAST_BENCH_POSTGRES ?? 'postgresql://postgres@127.0.0.1:5432/postgres';
/** 2026-01-05 09:15 IST. */
const DAY_START = Date.UTC(2026, 0, 5, 3, 45);
const CANDIDATES = ['sqlite', 'pg-store', 'pg-unnest'] as const;
type Candidate = (typeof CANDIDATES)[number];

const median = (values: number[]): number => {
  const sorted = values.filter((v) => Number.isFinite(v)).sort((a, b) => a - b);
  if (sorted.length === 0) return NaN;
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
};
const fmt = (v: number, digits = 0): string => (Number.isFinite(v) ? v.toLocaleString('en', { minimumFractionDigits: digits, maximumFractionDigits: digits }) : '-');

/** A Quote-like tick of ~400 bytes; times advance 1–3 ms per tick. */
function generate(count: number, streams: number): RecordedTick[] {
  const ticks: RecordedTick[] = [];
  let at = DAY_START;
  let seed = 1;
  const next = (): number => (seed = (seed * 1_103_515_245 + 12_345) % 2_147_483_648) / 2_147_483_648;
  for (let i = 0; i < count; i++) {
    at += 1 + Math.floor(next() * 3);
    const s = Math.floor(next() * streams);
    const ltp = 100 + s + Math.round(next() * 10_000) / 100;
    const payload = JSON.stringify({
      symbol: `SYM${s}`,
      exchange: 'NSE',
      token: String(10_000 + s),
      mode: 2,
      ltp,
      ltt: at - 40,
      ltq: Math.floor(next() * 500),
      volume: 1_000_000 + i,
      average_price: ltp - 0.35,
      open: ltp - 1.2,
      high: ltp + 2.45,
      low: ltp - 3.1,
      close: ltp - 0.8,
      total_buy_quantity: 123_456 + i,
      total_sell_quantity: 654_321 - (i % 1000),
      oi: 0,
      upper_circuit: ltp * 1.1,
      lower_circuit: ltp * 0.9,
      bid: ltp - 0.05,
      ask: ltp + 0.05,
      timestamp: at,
    });
    ticks.push({ feed: 'simulator', exchange: 'NSE', symbol: `SYM${s}`, mode: 2 as Mode, receivedAt: at, exchangeTs: i % 4 === 0 ? null : at - 40, payload });
  }
  return ticks;
}

async function admin<T>(fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: ADMIN_URL, connectionTimeoutMillis: 5000 });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

/**
 * The store's append with one INSERT … SELECT FROM unnest(…) in place of its COPY: the same
 * transaction, stream ids upserted for the streams not yet known, then the batch as five arrays.
 */
class UnnestWriter {
  private readonly ids = new Map<string, number>();
  constructor(private readonly client: pg.Client) {}

  async append(ticks: readonly RecordedTick[]): Promise<void> {
    const client = this.client;
    await client.query('BEGIN');
    try {
      const missing = [...new Set(ticks.map((t) => `${t.feed}\u0000${t.exchange}\u0000${t.symbol}`).filter((k) => !this.ids.has(k)))].map((k) => k.split('\u0000'));
      if (missing.length > 0) {
        const params = [missing.map((m) => m[0]), missing.map((m) => m[1]), missing.map((m) => m[2])];
        await client.query('INSERT INTO tickcast_history.streams (feed, exchange, symbol) SELECT * FROM unnest($1::text[], $2::text[], $3::text[]) ON CONFLICT DO NOTHING', params);
        const { rows } = await client.query<{ id: number; feed: string; exchange: string; symbol: string }>(
          `SELECT s.id, s.feed, s.exchange, s.symbol FROM tickcast_history.streams s
             JOIN unnest($1::text[], $2::text[], $3::text[]) AS q (feed, exchange, symbol) ON s.feed = q.feed AND s.exchange = q.exchange AND s.symbol = q.symbol`,
          params,
        );
        for (const row of rows) this.ids.set(`${row.feed}\u0000${row.exchange}\u0000${row.symbol}`, row.id);
      }
      await client.query(
        `INSERT INTO tickcast_history.ticks (stream, received_at, exchange_ts, mode, payload)
         SELECT stream, received_at, exchange_ts, mode, payload
           FROM unnest($1::int[], $2::bigint[], $3::bigint[], $4::smallint[], $5::text[]) WITH ORDINALITY AS t (stream, received_at, exchange_ts, mode, payload, n)
          ORDER BY n`,
        [
          ticks.map((t) => this.ids.get(`${t.feed}\u0000${t.exchange}\u0000${t.symbol}`)!),
          ticks.map((t) => Math.round(t.receivedAt)),
          ticks.map((t) => (t.exchangeTs === null ? null : Math.round(t.exchangeTs))),
          ticks.map((t) => t.mode),
          ticks.map((t) => t.payload),
        ],
      );
      await client.query('COMMIT');
    } catch (error) {
      this.ids.clear();
      await client.query('ROLLBACK').catch(() => {});
      throw error;
    }
  }
}

interface Writer {
  append(ticks: readonly RecordedTick[]): Promise<void>;
  close(): Promise<void>;
  /** Ticks stored, to check the run. */
  count(): Promise<number>;
}

async function openWriter(candidate: Candidate, url: string, dir: string): Promise<Writer> {
  if (candidate === 'sqlite') {
    const store = new TickStore({ dir });
    return {
      append: async (ticks) => store.append(ticks),
      close: async () => store.close(),
      count: async () => {
        let n = 0;
        for (const _ of new TickStore({ dir, readonly: true }).read({ from: 0, to: Infinity })) n++;
        return n;
      },
    };
  }
  const countRows = async (): Promise<number> => {
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      return Number((await client.query('SELECT count(*) AS n FROM tickcast_history.ticks')).rows[0].n);
    } finally {
      await client.end();
    }
  };
  const store = await PgHistoryStore.open(url, {});
  if (candidate === 'pg-store') return { append: (ticks) => store.append(ticks), close: () => store.close(), count: countRows };
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  const writer = new UnnestWriter(client);
  let first = true;
  return {
    // The store writes the first (untimed) batch, so the day's partition exists.
    append: async (ticks) => {
      if (first) {
        first = false;
        return store.append(ticks);
      }
      return writer.append(ticks);
    },
    close: async () => {
      await client.end();
      await store.close();
    },
    count: countRows,
  };
}

interface RunResult {
  rate: number;
  /** Bytes on disk per stored tick (the day files with their WAL; the day's partition with its indexes and TOAST). */
  bytesPerTick: number;
  /** One stream's ticks of the day read back through the HistoryStore interface, ms. */
  readMs: number;
}

/** Bytes per tick and the time to read one stream's day, through the store as readers open it. */
async function readBack(location: HistoryLocation, stored: number): Promise<{ bytesPerTick: number; readMs: number }> {
  const store = await openHistoryStore(location, { readonly: true });
  try {
    const bytes = (await store.days()).reduce((sum, day) => sum + day.bytes, 0);
    const t0 = performance.now();
    let read = 0;
    for await (const _ of store.read({ from: 0, to: Number.MAX_SAFE_INTEGER, streams: [{ exchange: 'NSE', symbol: 'SYM7' }] })) read++;
    const readMs = performance.now() - t0;
    if (read === 0) throw new Error(`${location.kind}: the stream read back empty`);
    return { bytesPerTick: bytes / stored, readMs };
  } finally {
    await store.close();
  }
}

async function run(candidate: Candidate, url: string, batches: RecordedTick[][]): Promise<RunResult> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'tickcast-history-pg-'));
  // Each run on fresh tables.
  const reset = new pg.Client({ connectionString: url });
  await reset.connect();
  await reset.query('DROP SCHEMA IF EXISTS tickcast_history CASCADE');
  await reset.end();
  const writer = await openWriter(candidate, url, dir);
  try {
    await writer.append(batches[0]!);
    const t0 = performance.now();
    let ticks = 0;
    for (const batch of batches.slice(1)) {
      await writer.append(batch);
      ticks += batch.length;
    }
    const seconds = (performance.now() - t0) / 1000;
    const stored = await writer.count();
    const expected = batches.reduce((sum, b) => sum + b.length, 0);
    if (stored !== expected) throw new Error(`${candidate}: ${stored} ticks stored, ${expected} appended`);
    await writer.close();
    // The unnest writer stores what the store does: its size and reads are the store's.
    const back = candidate === 'pg-unnest' ? { bytesPerTick: NaN, readMs: NaN } : await readBack(candidate === 'sqlite' ? { kind: 'sqlite', dir } : { kind: 'postgres', url }, stored);
    return { rate: ticks / seconds, ...back };
  } finally {
    await writer.close().catch(() => {});
    rmSync(dir, { recursive: true, force: true });
  }
}

const name = `tickcast_bench_${crypto.randomBytes(4).toString('hex')}`;
const url = (() => {
  const u = new URL(ADMIN_URL);
  u.pathname = `/${name}`;
  return u.toString();
})();
const settings = await admin(async (c) => {
  await c.query(`CREATE DATABASE ${name}`);
  const row = (await c.query(`SELECT version() AS v, current_setting('fsync') AS fsync, current_setting('synchronous_commit') AS sc`)).rows[0];
  return `${String(row.v).split(' on ')[0]}, fsync=${row.fsync}, synchronous_commit=${row.sc}`;
});
try {
  const ticks = generate(TICKS, STREAMS);
  const batches: RecordedTick[][] = [];
  for (let i = 0; i < ticks.length; i += BATCH) batches.push(ticks.slice(i, i + BATCH));
  const meanPayload = ticks.reduce((sum, t) => sum + t.payload.length, 0) / ticks.length;
  console.log(
    `history ingest: ${TICKS.toLocaleString('en')} ticks over ${STREAMS} streams, batches of ${BATCH}, mean payload ${meanPayload.toFixed(0)} B, ${RUNS} runs ` +
      `(node ${process.version}, ${os.cpus().length} cpus; ${settings}; sqlite synchronous=FULL)`,
  );
  const results = new Map<Candidate, number[]>(CANDIDATES.map((c) => [c, []]));
  const sizes = new Map<Candidate, number[]>(CANDIDATES.map((c) => [c, []]));
  const reads = new Map<Candidate, number[]>(CANDIDATES.map((c) => [c, []]));
  for (let r = 0; r < RUNS; r++) {
    const order = CANDIDATES.map((_, i) => CANDIDATES[(i + r) % CANDIDATES.length]!);
    const line: string[] = [];
    for (const candidate of order) {
      const { rate, bytesPerTick, readMs } = await run(candidate, url, batches);
      results.get(candidate)!.push(rate);
      sizes.get(candidate)!.push(bytesPerTick);
      reads.get(candidate)!.push(readMs);
      line.push(`${candidate} ${fmt(rate)}`);
    }
    console.log(`run ${r + 1}: ${line.join(', ')} ticks/s`);
  }
  const ratio = (candidate: Candidate, to: Candidate): number => {
    const base = results.get(to)!;
    return median(results.get(candidate)!.map((v, i) => v / base[i]!));
  };
  console.log(`\n| store | ingest ticks/s (median of ${RUNS}) | ÷ sqlite | ÷ pg-unnest | bytes per tick | one stream's day read (${fmt(TICKS / STREAMS)} ticks), ms |`);
  console.log('|---|---|---|---|---|---|');
  for (const candidate of CANDIDATES) {
    console.log(
      `| ${candidate} | ${fmt(median(results.get(candidate)!))} | ${fmt(ratio(candidate, 'sqlite'), 2)} | ${fmt(ratio(candidate, 'pg-unnest'), 2)} | ${fmt(median(sizes.get(candidate)!))} | ${fmt(median(reads.get(candidate)!), 1)} |`,
    );
  }
  console.log('(ratios: medians of the per-run ratios)');
} finally {
  await admin((c) => c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`));
}
