/**
 * The history store in PostgreSQL (docs/history.md), for a fleet whose gateways record into one
 * database. Its tables live in their own schema, `tickcast_history`, so they never meet the tables
 * of an OpenAlgo database the store may share:
 *
 *   streams(id, feed, exchange, symbol)          one row per stream, unique by name
 *   ticks(id, stream, received_at, exchange_ts, mode, payload)
 *
 * Times are epoch milliseconds in `bigint` columns, as in the SQLite day files: exact both ways,
 * no time-zone conversion. `ticks.id` (a sequence) is the order ticks were stored in; every read
 * returns ticks in that order, so two reads of one range give the same ticks in the same order.
 *
 * The day is the unit of retention, as with the day files, in one of two layouts:
 * - `partitions`: native range partitioning on received_at, one partition per UTC day
 *   (`ticks_YYYYMMDD`), created when a tick of that day is first appended; `days()` lists the
 *   partitions and `prune` drops them whole.
 * - `timescaledb`: when the extension is available and can be created, a hypertable with one-day
 *   chunks; `days()` lists the chunks and `prune` calls drop_chunks. The extension is not
 *   installed where this store is tested, so this layout is unexercised there; it is kept to the
 *   `timescaleLayout` object below.
 * A database keeps the layout it was created with (read back from the catalog on every open).
 *
 * Appends: one transaction per batch: stream ids upserted, then the ticks in one
 * `COPY … FROM STDIN` (pg-copy-streams), in the order given, so ids follow it. COPY took a
 * 1000-tick batch 1.6–1.9 times as fast as one multi-row INSERT … SELECT FROM unnest(…)
 * (bench/history-postgres.ts). A day's partition is created before that transaction, so a batch
 * that fails may leave its day empty (as a day file is created before its first write). Payloads
 * cannot hold NUL (PostgreSQL text cannot): such a batch fails whole; JSON never has one.
 *
 * Reads page by keyset (`id > last … ORDER BY id LIMIT`), so a long read holds no transaction
 * (and no lock a partition's creation or drop would wait for). A read is not a snapshot: ticks
 * committed while it runs may or may not be in it, and with two writers a tick whose id is below
 * the page already read but which commits later is missed by that read (not by the next).
 *
 * Failures: opening fails with an Error naming the URL (without its password). A read that fails
 * before it has yielded a tick throws, as when the whole store is unreachable; once ticks were
 * yielded, the failure is reported through `onProblem` (with the day being read) and the read
 * ends, as a day file damaged midway is reported and skipped.
 */
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import type { Mode } from '../protocol/modes.js';
import { type HistoryStore, HistoryStoreError, type OpenOptions, type StoreFault, type StoredDay, type StreamSummary, describeLocation } from './store.js';
import { MS_PER_DAY, dayOf, dayStart } from './day-files.js';
import type { DayProblem, RecordedTick, TickQuery } from './store.js';

export type PgLayout = 'partitions' | 'timescaledb';

const SCHEMA = 'tickcast_history';
/** Ticks per page of a read. */
const PAGE_ROWS = 5000;
/** Receive times a query may name: within what `bigint` and Date both hold. */
const MAX_TIME = 8.64e15;
/** Key of the advisory lock that serialises creating the tables (two stores opening a new database). */
const SCHEMA_LOCK = 0x7469636b; // 'tick'
const CONNECT_TIMEOUT_MS = 10_000;
const INT8_OID = 20;

/** `bigint` columns as numbers: epoch ms and counts are far below 2^53. */
const TYPES = {
  getTypeParser(oid: number, format?: 'text' | 'binary') {
    if (oid === INT8_OID && format !== 'binary') return (value: string) => Number(value);
    return pg.types.getTypeParser(oid, format);
  },
} as pg.CustomTypesConfig;


function partitionName(day: string): string {
  return `ticks_${day.replaceAll('-', '')}`;
}

/** SQLSTATEs of a name already taken by a concurrent CREATE … IF NOT EXISTS. */
const DUPLICATE = new Set(['23505', '42P07', '42710']);
/** SQLSTATEs of tables not there (a read-only open of an empty database). */
const MISSING = new Set(['42P01', '3F000']);

function sqlState(error: unknown): string | undefined {
  return (error as { code?: unknown }).code as string | undefined;
}

/** Socket errors of a server that is away (a connection to a host's names may fail with several at once). */
const AWAY = new Set(['ECONNREFUSED', 'ECONNRESET', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'ETIMEDOUT', 'EPIPE']);

/**
 * Whether a failure means writing is pointless for now: the server's disk is full (SQLSTATE
 * 53100), or the server cannot be reached or will not take a connection now (a connection
 * exception, class 08; the server shutting down or starting, 57P01–57P03; too many connections,
 * 53300; the database not accepting connections, 55000 with that message; a socket error; pg's
 * connect timeout or a connection ended).
 */
export function pgFault(error: unknown): StoreFault | undefined {
  if (error instanceof HistoryStoreError) return error.fault;
  const code = sqlState(error);
  if (code === '53100') return 'full';
  if (code !== undefined && (code.startsWith('08') || ['57P01', '57P02', '57P03', '53300'].includes(code) || AWAY.has(code))) return 'unreachable';
  if (code === '55000' && /not currently accepting connections/.test(messageOf(error))) return 'unreachable';
  const { errors } = error as { errors?: unknown[] };
  if (Array.isArray(errors) && errors.length > 0 && errors.every((e) => AWAY.has(sqlState(e) ?? ''))) return 'unreachable';
  return /timeout exceeded when trying to connect|Connection terminated/i.test(messageOf(error)) ? 'unreachable' : undefined;
}

/** How the ticks table is split into days: the part that differs between the two layouts. */
interface Layout {
  readonly name: PgLayout;
  /** Creates the ticks table (in a transaction holding the schema lock; streams exist). */
  createTicks(client: pg.ClientBase): Promise<void>;
  /** Makes room for `day`'s ticks (outside the append's transaction). */
  prepareDay(pool: pg.Pool, day: string): Promise<void>;
  days(pool: pg.Pool): Promise<StoredDay[]>;
  dropDay(pool: pg.Pool, day: string): Promise<void>;
}

const TICKS_COLUMNS = `
  id bigserial NOT NULL,
  stream integer NOT NULL,
  received_at bigint NOT NULL,
  exchange_ts bigint,
  mode smallint NOT NULL,
  payload text NOT NULL`;

// No foreign key from ticks.stream: it would cost a lookup per inserted row, and streams rows
// are never deleted.
const TICKS_INDEXES = `
  CREATE INDEX IF NOT EXISTS ticks_id ON ${SCHEMA}.ticks (id);
  CREATE INDEX IF NOT EXISTS ticks_stream_time ON ${SCHEMA}.ticks (stream, received_at);`;

const partitionLayout: Layout = {
  name: 'partitions',

  async createTicks(client) {
    await client.query(`
      CREATE TABLE IF NOT EXISTS ${SCHEMA}.ticks (${TICKS_COLUMNS}) PARTITION BY RANGE (received_at);
      CREATE INDEX IF NOT EXISTS ticks_time ON ${SCHEMA}.ticks (received_at);
      ${TICKS_INDEXES}`);
  },

  async prepareDay(pool, day) {
    const start = dayStart(day);
    const sql = `CREATE TABLE IF NOT EXISTS ${SCHEMA}.${partitionName(day)} PARTITION OF ${SCHEMA}.ticks FOR VALUES FROM (${start}) TO (${start + MS_PER_DAY})`;
    // Two writers may create the same day at once: IF NOT EXISTS checks before either has
    // committed, and the loser fails on the catalog's unique index. Once the winner is done the
    // statement succeeds.
    for (let attempt = 1; ; attempt++) {
      try {
        await pool.query(sql);
        return;
      } catch (error) {
        if (!DUPLICATE.has(sqlState(error) ?? '') || attempt === 5) throw error;
      }
    }
  },

  async days(pool) {
    const { rows } = await pool.query<{ name: string; bytes: number }>(
      `SELECT c.relname AS name, pg_total_relation_size(c.oid) AS bytes
         FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
        WHERE i.inhparent = to_regclass('${SCHEMA}.ticks')`,
    );
    return daysOf(rows);
  },

  async dropDay(pool, day) {
    await pool.query(`DROP TABLE IF EXISTS ${SCHEMA}.${partitionName(day)}`);
  },
};

/** TimescaleDB: a hypertable of one-day chunks. Not exercised by the tests (no extension there). */
const timescaleLayout: Layout = {
  name: 'timescaledb',

  async createTicks(client) {
    // Integer time: chunks are aligned on multiples of the interval from 0, so on UTC days.
    await client.query(`
      CREATE TABLE IF NOT EXISTS ${SCHEMA}.ticks (${TICKS_COLUMNS});
      SELECT create_hypertable('${SCHEMA}.ticks', 'received_at', chunk_time_interval => ${MS_PER_DAY}::bigint, if_not_exists => true);
      ${TICKS_INDEXES}`);
  },

  async prepareDay() {
    // Chunks are created by the insert itself.
  },

  async days(pool) {
    const { rows } = await pool.query<{ start: number; bytes: number }>(
      `SELECT range_start_integer AS start, pg_total_relation_size(format('%I.%I', chunk_schema, chunk_name)::regclass) AS bytes
         FROM timescaledb_information.chunks
        WHERE hypertable_schema = '${SCHEMA}' AND hypertable_name = 'ticks'`,
    );
    return mergeDays(rows.map((row) => ({ day: dayOf(row.start), bytes: row.bytes })));
  },

  async dropDay(pool, day) {
    // Days are dropped oldest first, so every chunk ending by this day's end is this day's.
    await pool.query(`SELECT drop_chunks('${SCHEMA}.ticks', older_than => $1::bigint)`, [dayStart(day) + MS_PER_DAY]);
  },
};

function daysOf(rows: ReadonlyArray<{ name: string; bytes: number }>): StoredDay[] {
  const days: StoredDay[] = [];
  for (const { name, bytes } of rows) {
    const match = /^ticks_(\d{4})(\d{2})(\d{2})$/.exec(name);
    if (match) days.push({ day: `${match[1]}-${match[2]}-${match[3]}`, bytes });
  }
  return mergeDays(days);
}

function mergeDays(days: readonly StoredDay[]): StoredDay[] {
  const byDay = new Map<string, number>();
  for (const { day, bytes } of days) byDay.set(day, (byDay.get(day) ?? 0) + bytes);
  return [...byDay].sort(([a], [b]) => compare(a, b)).map(([day, bytes]) => ({ day, bytes }));
}

interface StreamName {
  feed: string;
  exchange: string;
  symbol: string;
}

export class PgHistoryStore implements HistoryStore {
  /** Stream ids by `streamKeyOf`, as this store has upserted or read them. */
  private readonly streamIds = new Map<string, number>();
  /** Days this store has made room for (their partitions exist unless pruned meanwhile). */
  private readonly preparedDays = new Set<string>();
  private closed = false;

  private constructor(
    private readonly pool: pg.Pool,
    readonly where: string,
    readonly layout: PgLayout,
    private readonly layoutOps: Layout,
    private readonly readonly: boolean,
    private readonly password: string,
  ) {}

  /**
   * Connects to the database at `url` and, unless read-only, creates the tables it lacks. Throws
   * an Error naming the URL (password hidden) when it cannot be reached or written.
   */
  static async open(url: string, { readonly = false }: OpenOptions = {}): Promise<PgHistoryStore> {
    const where = describeLocation({ kind: 'postgres', url });
    let password = '';
    try {
      const parsed = new URL(url);
      if (parsed.protocol !== 'postgres:' && parsed.protocol !== 'postgresql:') throw new Error(`${parsed.protocol} is not postgres: or postgresql:`);
      password = decodeURIComponent(parsed.password);
    } catch (error) {
      throw new Error(`the history database URL ${where} is not a PostgreSQL URL: ${messageOf(error)}`);
    }
    const hide = (text: string): string => (password ? text.replaceAll(password, '***') : text);
    const pool = new pg.Pool({
      connectionString: url,
      // One connection for the writer's transactions, the others for reads running meanwhile.
      max: 4,
      connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
      idleTimeoutMillis: 30_000,
      application_name: 'tickcast-history',
      types: TYPES,
    });
    // A pooled connection that breaks while idle is only dropped; the next query reconnects.
    pool.on('error', () => {});
    try {
      const layout = await withClient(
        pool,
        async (client) => {
          try {
            return (await existingLayout(client)) ?? (readonly ? partitionLayout : await createTables(client));
          } catch (error) {
            throw new Error(`the history database at ${where} cannot be ${readonly ? 'read' : 'set up'}: ${hide(messageOf(error))}`);
          }
        },
        (error) => new HistoryStoreError(`the history database at ${where} cannot be reached: ${hide(messageOf(error))}`, 'unreachable'),
      );
      return new PgHistoryStore(pool, where, layout.name, layout, readonly, password);
    } catch (error) {
      await pool.end().catch(() => {});
      throw error;
    }
  }

  async append(ticks: readonly RecordedTick[]): Promise<void> {
    if (this.readonly) throw new Error('the history store was opened read-only');
    if (ticks.length === 0) return;
    try {
      for (const tick of ticks) {
        const day = dayOf(tick.receivedAt);
        if (this.preparedDays.has(day)) continue;
        await this.layoutOps.prepareDay(this.pool, day);
        this.preparedDays.add(day);
      }
      await withClient(this.pool, async (client) => {
        await client.query('BEGIN');
        try {
          const streams = await this.streamIdsOf(client, ticks);
          await pipeline(Readable.from([copyText(ticks, streams)]), client.query(copyFrom(`COPY ${SCHEMA}.ticks (stream, received_at, exchange_ts, mode, payload) FROM STDIN`)));
          await client.query('COMMIT');
        } catch (error) {
          await client.query('ROLLBACK').catch(() => {});
          throw error;
        }
      });
    } catch (error) {
      // Stream ids upserted in the failed transaction were rolled back, and a day may have been
      // pruned by another process: forget both, they are looked up again next time.
      this.streamIds.clear();
      this.preparedDays.clear();
      throw new HistoryStoreError(`the history database at ${this.where} did not store ${ticks.length} ticks: ${this.hide(messageOf(error))}`, pgFault(error));
    }
  }

  async *read(query: TickQuery, onProblem: (problem: DayProblem) => void = () => {}): AsyncGenerator<RecordedTick> {
    const range = rangeOf(query);
    if (!range) return;
    let yielded = false;
    /** Receive time of the last tick yielded: its day is the one a failure is reported on. */
    let at = range.from;
    try {
      let names = await this.streamNames();
      const wanted = (id: number): StreamName | undefined => {
        const stream = names.get(id);
        return stream && matchesStreams(stream, query) ? stream : undefined;
      };
      const ids = [...names.keys()].filter((id) => wanted(id));
      if (ids.length === 0 && (query.streams || query.feeds)) return;
      const where = ['received_at >= $1', 'received_at < $2', 'id > $3'];
      const params: unknown[] = [range.from, range.to, 0];
      // Narrowed to the matching ids only when a filter is given: new streams may appear while
      // a read without one runs, and their ticks belong in it.
      if (query.streams || query.feeds) where.push(`stream = ANY($${params.push(ids)}::int[])`);
      if (query.modes && query.modes.length > 0) where.push(`mode = ANY($${params.push(query.modes.map(Number))}::smallint[])`);
      const sql = `SELECT id, stream, received_at, exchange_ts, mode, payload FROM ${SCHEMA}.ticks WHERE ${where.join(' AND ')} ORDER BY id LIMIT ${PAGE_ROWS}`;
      for (;;) {
        const { rows } = await this.pool.query<{ id: number; stream: number; received_at: number; exchange_ts: number | null; mode: number; payload: string }>(sql, params);
        for (const row of rows) {
          let stream = wanted(row.stream);
          if (!stream && !names.has(row.stream)) {
            // A stream created since the read began.
            names = await this.streamNames();
            stream = wanted(row.stream);
          }
          if (!stream) continue;
          at = row.received_at;
          yielded = true;
          yield { ...stream, mode: row.mode as Mode, receivedAt: row.received_at, exchangeTs: row.exchange_ts, payload: row.payload };
        }
        if (rows.length < PAGE_ROWS) return;
        params[2] = rows[rows.length - 1]!.id;
      }
    } catch (error) {
      if (MISSING.has(sqlState(error) ?? '')) return;
      const message = this.hide(messageOf(error));
      if (!yielded) throw new HistoryStoreError(`the history database at ${this.where} cannot be read: ${message}`, pgFault(error));
      const day = dayOf(at);
      onProblem({ day, message: `the history of ${day} could not be read to the end (after some ticks were read): ${message}` });
    }
  }

  async streams(query: TickQuery, _onProblem?: (problem: DayProblem) => void): Promise<StreamSummary[]> {
    const range = rangeOf(query);
    if (!range) return [];
    const where = ['t.received_at >= $1', 't.received_at < $2'];
    const params: unknown[] = [range.from, range.to];
    if (query.feeds) where.push(`s.feed = ANY($${params.push(query.feeds)}::text[])`);
    if (query.streams) {
      const e = params.push(query.streams.map((s) => s.exchange));
      const y = params.push(query.streams.map((s) => s.symbol));
      const f = params.push(query.streams.map((s) => s.feed ?? null));
      where.push(
        `EXISTS (SELECT 1 FROM unnest($${e}::text[], $${y}::text[], $${f}::text[]) AS q (exchange, symbol, feed)
                  WHERE q.exchange = s.exchange AND q.symbol = s.symbol AND (q.feed IS NULL OR q.feed = s.feed))`,
      );
    }
    if (query.modes && query.modes.length > 0) where.push(`t.mode = ANY($${params.push(query.modes.map(Number))}::smallint[])`);
    let rows: Array<{ feed: string; exchange: string; symbol: string; ticks: number; first: number; last: number; max_mode: number }>;
    try {
      ({ rows } = await this.pool.query(
        `SELECT s.feed, s.exchange, s.symbol, count(*) AS ticks, min(t.received_at) AS first, max(t.received_at) AS last, max(t.mode) AS max_mode
           FROM ${SCHEMA}.ticks t JOIN ${SCHEMA}.streams s ON s.id = t.stream
          WHERE ${where.join(' AND ')}
          GROUP BY s.feed, s.exchange, s.symbol`,
        params,
      ));
    } catch (error) {
      if (MISSING.has(sqlState(error) ?? '')) return [];
      throw new HistoryStoreError(`the history database at ${this.where} cannot be read: ${this.hide(messageOf(error))}`, pgFault(error));
    }
    // Sorted here, as the day files' summaries are, not by the database's collation.
    return rows
      .map((row) => ({ feed: row.feed, exchange: row.exchange, symbol: row.symbol, ticks: row.ticks, first: row.first, last: row.last, maxMode: row.max_mode as Mode }))
      .sort((a, b) => compare(a.feed, b.feed) || compare(a.exchange, b.exchange) || compare(a.symbol, b.symbol));
  }

  async days(): Promise<StoredDay[]> {
    try {
      return await this.layoutOps.days(this.pool);
    } catch (error) {
      if (MISSING.has(sqlState(error) ?? '')) return [];
      throw new HistoryStoreError(`the history database at ${this.where} cannot be read: ${this.hide(messageOf(error))}`, pgFault(error));
    }
  }

  async prune({ now, maxAgeMs, maxBytes }: { now: number; maxAgeMs?: number; maxBytes?: number }): Promise<string[]> {
    // Deleting is writing: a read-only store refuses it.
    if (this.readonly) throw new Error('the history store was opened read-only');
    const today = dayOf(now);
    const days = await this.days();
    let total = days.reduce((sum, day) => sum + day.bytes, 0);
    const deleted: string[] = [];
    for (const { day, bytes } of days) {
      if (day >= today) break;
      const tooOld = maxAgeMs !== undefined && dayStart(day) + MS_PER_DAY <= now - maxAgeMs;
      const tooBig = maxBytes !== undefined && total > maxBytes;
      if (!tooOld && !tooBig) break;
      try {
        await this.layoutOps.dropDay(this.pool, day);
      } catch (error) {
        throw new Error(`the history database at ${this.where} could not delete ${day}: ${this.hide(messageOf(error))}`);
      }
      this.preparedDays.delete(day);
      total -= bytes;
      deleted.push(day);
    }
    return deleted;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.pool.end();
  }

  private hide(text: string): string {
    return this.password ? text.replaceAll(this.password, '***') : text;
  }

  /** The ids of the ticks' streams, in tick order; unknown streams are upserted in `client`'s transaction. */
  private async streamIdsOf(client: pg.ClientBase, ticks: readonly RecordedTick[]): Promise<number[]> {
    const missing = new Map<string, StreamName>();
    for (const tick of ticks) {
      const key = streamKeyOf(tick.feed, tick.exchange, tick.symbol);
      if (!this.streamIds.has(key)) missing.set(key, { feed: tick.feed, exchange: tick.exchange, symbol: tick.symbol });
    }
    if (missing.size > 0) {
      const names = [...missing.values()];
      const params = [names.map((s) => s.feed), names.map((s) => s.exchange), names.map((s) => s.symbol)];
      // DO NOTHING, then a select: a stream another writer is inserting is waited for, and its
      // committed row is then visible to the select (a new statement under READ COMMITTED).
      await client.query(
        `INSERT INTO ${SCHEMA}.streams (feed, exchange, symbol) SELECT * FROM unnest($1::text[], $2::text[], $3::text[]) ON CONFLICT DO NOTHING`,
        params,
      );
      const { rows } = await client.query<{ id: number } & StreamName>(
        `SELECT s.id, s.feed, s.exchange, s.symbol FROM ${SCHEMA}.streams s
           JOIN unnest($1::text[], $2::text[], $3::text[]) AS q (feed, exchange, symbol)
             ON s.feed = q.feed AND s.exchange = q.exchange AND s.symbol = q.symbol`,
        params,
      );
      for (const row of rows) this.streamIds.set(streamKeyOf(row.feed, row.exchange, row.symbol), row.id);
    }
    return ticks.map((tick) => {
      const id = this.streamIds.get(streamKeyOf(tick.feed, tick.exchange, tick.symbol));
      if (id === undefined) throw new Error(`no stream id for ${tick.feed} ${tick.exchange}:${tick.symbol}`);
      return id;
    });
  }

  private async streamNames(): Promise<Map<number, StreamName>> {
    const { rows } = await this.pool.query<{ id: number } & StreamName>(`SELECT id, feed, exchange, symbol FROM ${SCHEMA}.streams`);
    return new Map(rows.map((row) => [row.id, { feed: row.feed, exchange: row.exchange, symbol: row.symbol }]));
  }
}

/**
 * Runs `fn` on a connection of the pool. While checked out, a connection has no listener of the
 * pool's: one breaking here must not become an uncaught 'error' event (the query in progress
 * fails by itself), and a broken one is not put back.
 */
async function withClient<T>(pool: pg.Pool, fn: (client: pg.PoolClient) => Promise<T>, connectError: (error: unknown) => Error = (e) => e as Error): Promise<T> {
  let client: pg.PoolClient;
  try {
    client = await pool.connect();
  } catch (error) {
    throw connectError(error);
  }
  let broken: Error | undefined;
  const onError = (error: Error): void => {
    broken = error;
  };
  client.on('error', onError);
  try {
    return await fn(client);
  } finally {
    client.off('error', onError);
    client.release(broken);
  }
}

/** The layout of the tables already there, or undefined when there are none. */
async function existingLayout(client: pg.ClientBase): Promise<Layout | undefined> {
  const { rows } = await client.query<{ relkind: string }>(
    `SELECT c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relname = 'ticks'`,
    [SCHEMA],
  );
  const relkind = rows[0]?.relkind;
  if (relkind === undefined) return undefined;
  if (relkind === 'p') return partitionLayout;
  const hypertable = await client
    .query(`SELECT 1 FROM timescaledb_information.hypertables WHERE hypertable_schema = $1 AND hypertable_name = 'ticks'`, [SCHEMA])
    .catch(() => ({ rowCount: 0 }));
  if (hypertable.rowCount) return timescaleLayout;
  throw new Error(`${SCHEMA}.ticks is neither partitioned nor a TimescaleDB hypertable`);
}

/** Creates the schema and tables, on TimescaleDB when it can be had; returns the layout used. */
async function createTables(client: pg.ClientBase): Promise<Layout> {
  const timescale = await canUseTimescale(client);
  await client.query('BEGIN');
  try {
    // Two stores opening a new database at once would race on every CREATE … IF NOT EXISTS.
    await client.query('SELECT pg_advisory_xact_lock($1)', [SCHEMA_LOCK]);
    const layout = (await existingLayout(client)) ?? (timescale ? timescaleLayout : partitionLayout);
    await client.query(`
      CREATE SCHEMA IF NOT EXISTS ${SCHEMA};
      CREATE TABLE IF NOT EXISTS ${SCHEMA}.streams (
        id serial PRIMARY KEY,
        feed text NOT NULL,
        exchange text NOT NULL,
        symbol text NOT NULL,
        UNIQUE (feed, exchange, symbol)
      )`);
    await layout.createTicks(client);
    await client.query('COMMIT');
    return layout;
  } catch (error) {
    await client.query('ROLLBACK').catch(() => {});
    throw error;
  }
}

/** Whether the timescaledb extension is (or can be made) installed in this database. */
async function canUseTimescale(client: pg.ClientBase): Promise<boolean> {
  const available = await client.query(`SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'`);
  if (!available.rowCount) return false;
  try {
    // Fails without shared_preload_libraries = timescaledb, or without the right to create it.
    await client.query('CREATE EXTENSION IF NOT EXISTS timescaledb');
    return true;
  } catch {
    return false;
  }
}

/** The query's receive-time range as integer bounds a `bigint` holds; undefined when empty. */
function rangeOf(query: TickQuery): { from: number; to: number } | undefined {
  if (!(query.to > query.from)) return undefined;
  // For integer times t: t >= a ⇔ t >= ⌈a⌉ and t < b ⇔ t < ⌈b⌉.
  const from = Math.ceil(Math.max(query.from, -MAX_TIME));
  const to = Math.ceil(Math.min(query.to, MAX_TIME));
  return to > from ? { from, to } : undefined;
}

function matchesStreams(stream: StreamName, query: TickQuery): boolean {
  if (query.feeds && !query.feeds.includes(stream.feed)) return false;
  if (!query.streams) return true;
  return query.streams.some((s) => s.exchange === stream.exchange && s.symbol === stream.symbol && (s.feed === undefined || s.feed === stream.feed));
}

/** A batch as `COPY … FROM STDIN` text: tab-separated, one line per tick, \N for NULL. */
function copyText(ticks: readonly RecordedTick[], streams: readonly number[]): Buffer {
  let text = '';
  for (let i = 0; i < ticks.length; i++) {
    const tick = ticks[i]!;
    const exchangeTs = tick.exchangeTs === null ? '\\N' : Math.round(tick.exchangeTs);
    text += `${streams[i]}\t${Math.round(tick.receivedAt)}\t${exchangeTs}\t${Number(tick.mode)}\t${copyField(tick.payload)}\n`;
  }
  return Buffer.from(text);
}

/** A text field of COPY's text format: backslash, tab, newline and carriage return escaped. */
function copyField(text: string): string {
  return /[\\\t\n\r]/.test(text) ? text.replace(/[\\\t\n\r]/g, (c) => COPY_ESCAPES[c]!) : text;
}

const COPY_ESCAPES: Readonly<Record<string, string>> = { '\\': '\\\\', '\t': '\\t', '\n': '\\n', '\r': '\\r' };

/** An error's message; a refused connection to a name with several addresses has none of its own. */
function messageOf(error: unknown): string {
  const { message, errors, code } = error as Error & { errors?: unknown[]; code?: unknown };
  if (message) return message;
  if (Array.isArray(errors) && errors.length > 0) return errors.map(messageOf).join('; ');
  return typeof code === 'string' ? code : String(error);
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function streamKeyOf(feed: string, exchange: string, symbol: string): string {
  return `${feed}\u0000${exchange}\u0000${symbol}`;
}
