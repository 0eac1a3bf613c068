/**
 * The PostgreSQL history store (src/history/pg-store.ts) against the machine's PostgreSQL, a fresh
 * database per test. The contract section runs the same cases on the SQLite day files and on
 * PostgreSQL, through openHistoryStore, so the two stores answer alike; the PostgreSQL section
 * covers what only it has: concurrent writers creating one day's partition, connection errors
 * and passwords, the layout it chose, a read losing its connection.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { BatchBuilder, streamRecordKey } from '../../src/history/batch.js';
import { PgHistoryStore, pgFault } from '../../src/history/pg-store.js';
import { HistoryStoreError } from '../../src/history/store.js';
import { HistoryWriter } from '../../src/history/writer.js';
import { openHistoryStore } from '../../src/history/open-store.js';
import type { DayProblem, HistoryLocation, HistoryStore, RecordedTick, TickQuery } from '../../src/history/store.js';
import type { Mode } from '../../src/protocol/modes.js';
import { type PgTestDatabase, createPgTestDatabase, pgUrl, withPgAdmin } from '../helpers/openalgo-db.js';

const DAY = 86_400_000;
/** 2026-01-05 00:00 UTC. */
const D0 = Date.UTC(2026, 0, 5);
const T0 = D0 + 10 * 3_600_000;

function tick(receivedAt: number, over: Partial<RecordedTick> = {}): RecordedTick {
  return {
    feed: 'sim',
    exchange: 'NSE',
    symbol: 'RELIANCE',
    mode: 2,
    receivedAt,
    exchangeTs: receivedAt - 5,
    payload: JSON.stringify({ ltp: 1000 + (receivedAt % 1000), at: receivedAt, note: 'tab\there "quoted" back\\slash\nnewline ✓' }),
    ...over,
  };
}

async function readAll(store: HistoryStore, query: TickQuery, problems: DayProblem[] = []): Promise<RecordedTick[]> {
  const out: RecordedTick[] = [];
  for await (const t of store.read(query, (p) => problems.push(p))) out.push(t);
  return out;
}

const ALL: TickQuery = { from: 0, to: D0 + 365 * DAY };
const key = (t: RecordedTick): string => `${t.feed}|${t.exchange}:${t.symbol}|${t.mode}|${t.receivedAt}`;

/** A place for a store, made fresh for each test and removed after it. */
interface Place {
  location: HistoryLocation;
  remove(): Promise<void>;
}

const KINDS: Array<{ kind: 'sqlite' | 'postgres'; make(): Promise<Place> }> = [
  {
    kind: 'sqlite',
    async make() {
      const dir = join(mkdtempSync(join(tmpdir(), 'tickcast-pg-contract-')), 'history');
      return { location: { kind: 'sqlite', dir }, remove: async () => rmSync(join(dir, '..'), { recursive: true, force: true }) };
    },
  },
  {
    kind: 'postgres',
    async make() {
      const db = await createPgTestDatabase();
      return { location: { kind: 'postgres', url: db.owner }, remove: () => db.drop() };
    },
  },
];

describe.each(KINDS)('history store contract: $kind', ({ make }) => {
  let place: Place;
  const open: HistoryStore[] = [];
  const openStore = async (readonly = false): Promise<HistoryStore> => {
    const store = await openHistoryStore(place.location, { readonly });
    open.push(store);
    return store;
  };

  beforeEach(async () => {
    place = await make();
  });
  afterEach(async () => {
    for (const store of open.splice(0)) await store.close();
    await place.remove();
  });

  it('reads back what was appended, in append order, the same on every read', async () => {
    const store = await openStore();
    const first = [tick(T0 + 5), tick(T0 + 1, { symbol: 'TCS', mode: 1, exchangeTs: null }), tick(T0 + 1, { feed: 'other' })];
    // Any text as payload, with what COPY's text format must escape.
    const second = [tick(T0 + 3, { exchange: 'BSE', mode: 3, payload: 'raw\ttab\nnewline\rreturn \\N back\\slash \u00e9\u{1F600}' }), tick(T0 + 2, { payload: '\\N' }), tick(T0 + 4, { payload: '' })];
    await store.append(first);
    await store.append([]);
    await store.append(second);
    const read = await readAll(store, ALL);
    // Receive order is the order of the appends, not of the receive times.
    expect(read).toEqual([...first, ...second]);
    expect(await readAll(store, ALL)).toEqual(read);
    expect(read[1]!.exchangeTs).toBeNull();
    expect(read.slice(3).map((t) => t.payload)).toEqual(['raw\ttab\nnewline\rreturn \\N back\\slash é😀', '\\N', '']);
  });

  it('takes `from` inclusive and `to` exclusive', async () => {
    const store = await openStore();
    await store.append([tick(T0 - 1), tick(T0), tick(T0 + 1), tick(T0 + 2)]);
    expect((await readAll(store, { from: T0, to: T0 + 2 })).map((t) => t.receivedAt)).toEqual([T0, T0 + 1]);
    expect(await readAll(store, { from: T0 + 1, to: T0 + 1 })).toEqual([]);
    expect(await readAll(store, { from: T0 + 2, to: T0 })).toEqual([]);
    expect((await readAll(store, { from: T0 + 0.5, to: T0 + 1.5 })).map((t) => t.receivedAt)).toEqual([T0 + 1]);
    expect((await readAll(store, { from: -Infinity, to: Infinity })).length).toBe(4);
  });

  it('filters by feeds, streams (with and without a feed) and modes', async () => {
    const store = await openStore();
    const ticks = [
      tick(T0, { feed: 'a', symbol: 'X', mode: 1 }),
      tick(T0 + 1, { feed: 'b', symbol: 'X', mode: 2 }),
      tick(T0 + 2, { feed: 'a', symbol: 'Y', mode: 3 }),
      tick(T0 + 3, { feed: 'b', symbol: 'Y', mode: 1 }),
      tick(T0 + 4, { feed: 'a', exchange: 'BSE', symbol: 'X', mode: 2 }),
    ];
    await store.append(ticks);
    const times = async (q: Omit<TickQuery, 'from' | 'to'>): Promise<number[]> => (await readAll(store, { ...ALL, ...q })).map((t) => t.receivedAt - T0);
    expect(await times({ feeds: ['a'] })).toEqual([0, 2, 4]);
    expect(await times({ feeds: ['b', 'a'] })).toEqual([0, 1, 2, 3, 4]);
    expect(await times({ feeds: [] })).toEqual([]);
    expect(await times({ feeds: ['none'] })).toEqual([]);
    expect(await times({ streams: [{ exchange: 'NSE', symbol: 'X' }] })).toEqual([0, 1]);
    expect(await times({ streams: [{ feed: 'b', exchange: 'NSE', symbol: 'X' }] })).toEqual([1]);
    expect(await times({ streams: [{ feed: 'b', exchange: 'NSE', symbol: 'X' }, { exchange: 'NSE', symbol: 'Y' }] })).toEqual([1, 2, 3]);
    expect(await times({ streams: [] })).toEqual([]);
    expect(await times({ streams: [{ exchange: 'NSE', symbol: 'X' }], feeds: ['a'] })).toEqual([0]);
    expect(await times({ modes: [1, 3] })).toEqual([0, 2, 3]);
    expect(await times({ modes: [] })).toEqual([0, 1, 2, 3, 4]);
    expect(await times({ modes: [2], feeds: ['a'] })).toEqual([4]);
  });

  it('keeps ticks of two UTC days from one append as two days', async () => {
    const store = await openStore();
    const midnight = D0 + DAY;
    const ticks = [tick(midnight - 2), tick(midnight - 1, { symbol: 'TCS' }), tick(midnight), tick(midnight + 1, { symbol: 'TCS' })];
    await store.append(ticks);
    const days = await store.days();
    expect(days.map((d) => d.day)).toEqual(['2026-01-05', '2026-01-06']);
    for (const d of days) expect(d.bytes).toBeGreaterThan(0);
    expect(await readAll(store, ALL)).toEqual(ticks);
    expect(await readAll(store, { from: midnight - 1, to: midnight + 1 })).toEqual(ticks.slice(1, 3));
    expect(await readAll(store, { from: midnight, to: midnight + DAY })).toEqual(ticks.slice(2));
  });

  it('summarises streams: count, first and last time, highest mode, sorted by feed, exchange, symbol', async () => {
    const store = await openStore();
    await store.append([
      tick(T0, { feed: 'b', symbol: 'X', mode: 1 }),
      tick(T0 + 1, { feed: 'a', symbol: 'Y', mode: 2 }),
      tick(T0 + 2, { feed: 'a', symbol: 'X', mode: 3 }),
      tick(T0 + 3, { feed: 'a', symbol: 'X', mode: 1 }),
      tick(T0 + DAY, { feed: 'a', symbol: 'X', mode: 2 }),
      tick(T0 + 4, { feed: 'a', exchange: 'BSE', symbol: 'Z', mode: 2 }),
    ]);
    expect(await store.streams(ALL)).toEqual([
      { feed: 'a', exchange: 'BSE', symbol: 'Z', ticks: 1, first: T0 + 4, last: T0 + 4, maxMode: 2 },
      { feed: 'a', exchange: 'NSE', symbol: 'X', ticks: 3, first: T0 + 2, last: T0 + DAY, maxMode: 3 },
      { feed: 'a', exchange: 'NSE', symbol: 'Y', ticks: 1, first: T0 + 1, last: T0 + 1, maxMode: 2 },
      { feed: 'b', exchange: 'NSE', symbol: 'X', ticks: 1, first: T0, last: T0, maxMode: 1 },
    ]);
    expect(await store.streams({ from: T0, to: T0 + DAY, streams: [{ exchange: 'NSE', symbol: 'X' }], modes: [1] })).toEqual([
      { feed: 'a', exchange: 'NSE', symbol: 'X', ticks: 1, first: T0 + 3, last: T0 + 3, maxMode: 1 },
      { feed: 'b', exchange: 'NSE', symbol: 'X', ticks: 1, first: T0, last: T0, maxMode: 1 },
    ]);
    expect(await store.streams({ ...ALL, feeds: ['b'] })).toEqual([{ feed: 'b', exchange: 'NSE', symbol: 'X', ticks: 1, first: T0, last: T0, maxMode: 1 }]);
    expect(await store.streams({ ...ALL, streams: [{ feed: 'b', exchange: 'NSE', symbol: 'Y' }] })).toEqual([]);
    expect(await store.streams({ from: T0 + 1, to: T0 + 1 })).toEqual([]);
  });

  it('prunes whole days by age and by size, oldest first, never today', async () => {
    const store = await openStore();
    for (let d = 0; d < 4; d++) await store.append(Array.from({ length: 50 }, (_, i) => tick(D0 + d * DAY + 3_600_000 + i, { symbol: `S${i % 5}` })));
    const today = D0 + 3 * DAY;
    const now = today + 12 * 3_600_000;
    expect((await store.days()).map((d) => d.day)).toEqual(['2026-01-05', '2026-01-06', '2026-01-07', '2026-01-08']);
    // The 5th ends on the 6th at 00:00, more than 2 days before now; the 6th ends 12 h later than that.
    expect(await store.prune({ now, maxAgeMs: 2 * DAY + 12 * 3_600_000 - 1 })).toEqual(['2026-01-05']);
    expect(await store.prune({ now, maxAgeMs: 2 * DAY })).toEqual([]);
    expect(await readAll(store, { from: D0, to: D0 + DAY })).toEqual([]);
    expect((await readAll(store, ALL)).length).toBe(150);

    const days = await store.days();
    const total = days.reduce((sum, d) => sum + d.bytes, 0);
    // Just over the limit: only the oldest goes.
    expect(await store.prune({ now, maxBytes: total - days[0]!.bytes })).toEqual(['2026-01-06']);
    // Nothing may stay but today: today stays.
    expect(await store.prune({ now, maxBytes: 0, maxAgeMs: 0 })).toEqual(['2026-01-07']);
    expect((await store.days()).map((d) => d.day)).toEqual(['2026-01-08']);
    expect((await readAll(store, ALL)).map((t) => t.receivedAt)).toEqual(Array.from({ length: 50 }, (_, i) => today + 3_600_000 + i));
    // A pruned day can be written again.
    await store.append([tick(D0 + 30)]);
    expect((await store.days()).map((d) => d.day)).toEqual(['2026-01-05', '2026-01-08']);
  });

  it('opens an empty location read-only as an empty store, and refuses to write there', async () => {
    const store = await openStore(true);
    expect(await store.days()).toEqual([]);
    expect(await readAll(store, ALL)).toEqual([]);
    expect(await store.streams(ALL)).toEqual([]);
    await expect(store.append([tick(T0)])).rejects.toThrow(/read-only/);
    expect(await store.days()).toEqual([]);
  });

  it('reads, when reopened, the streams it wrote before under their own names', async () => {
    const first = await openStore();
    await first.append([tick(T0, { symbol: 'A' }), tick(T0 + 1, { symbol: 'B' })]);
    await first.close();
    open.splice(open.indexOf(first), 1);
    const second = await openStore();
    await second.append([tick(T0 + 2, { symbol: 'B' }), tick(T0 + 3, { symbol: 'C' }), tick(T0 + 4, { symbol: 'A' })]);
    expect((await readAll(second, ALL)).map((t) => `${t.symbol}@${t.receivedAt - T0}`)).toEqual(['A@0', 'B@1', 'B@2', 'C@3', 'A@4']);
    expect((await second.streams(ALL)).map((s) => `${s.symbol}:${s.ticks}`)).toEqual(['A:2', 'B:2', 'C:1']);
    const reader = await openStore(true);
    expect((await readAll(reader, { ...ALL, streams: [{ exchange: 'NSE', symbol: 'A' }] })).map((t) => t.receivedAt - T0)).toEqual([0, 4]);
  });
});

describe('PostgreSQL history store', () => {
  let db: PgTestDatabase;
  const open: HistoryStore[] = [];
  const openStore = async (url = db.owner, readonly = false): Promise<PgHistoryStore> => {
    const store = await PgHistoryStore.open(url, { readonly });
    open.push(store);
    return store;
  };
  const admin = <T>(sql: string, params: unknown[] = []): Promise<T[]> => withPgAdmin(async (client) => (await client.query(sql, params)).rows as T[], db.owner);

  beforeEach(async () => {
    db = await createPgTestDatabase();
  });
  afterEach(async () => {
    for (const store of open.splice(0)) await store.close();
    await db.drop();
  });

  it('keeps its tables in the tickcast_history schema, one partition per day, and says so', async () => {
    const store = await openStore();
    expect(store.layout).toBe('partitions');
    await store.append([tick(T0), tick(T0 + DAY)]);
    const tables = await admin<{ name: string; kind: string }>(
      `SELECT c.relname AS name, c.relkind::text AS kind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = 'tickcast_history' AND c.relkind IN ('r', 'p') ORDER BY 1`,
    );
    expect(tables).toEqual([
      { name: 'streams', kind: 'r' },
      { name: 'ticks', kind: 'p' },
      { name: 'ticks_20260105', kind: 'r' },
      { name: 'ticks_20260106', kind: 'r' },
    ]);
    expect(await admin(`SELECT 1 FROM pg_tables WHERE schemaname = 'public'`)).toEqual([]);
    // A reopen (read-only too) reads the layout from the catalog.
    expect((await openStore(db.owner, true)).layout).toBe('partitions');
    // Received times are stored exactly, as epoch ms.
    expect(await admin(`SELECT received_at::text AS at FROM tickcast_history.ticks ORDER BY id`)).toEqual([{ at: String(T0) }, { at: String(T0 + DAY) }]);
  });

  it('refuses a ticks table it did not make, rather than guessing its layout', async () => {
    await admin(`CREATE SCHEMA tickcast_history; CREATE TABLE tickcast_history.ticks (id bigint)`);
    await expect(PgHistoryStore.open(db.owner, {})).rejects.toThrow(/cannot be set up: tickcast_history\.ticks is neither partitioned nor a TimescaleDB hypertable/);
  });

  it('opens read-only without creating anything', async () => {
    const store = await openStore(db.owner, true);
    expect(await store.days()).toEqual([]);
    expect(await admin(`SELECT 1 FROM pg_namespace WHERE nspname = 'tickcast_history'`)).toEqual([]);
  });

  it('lets two stores open a new database and append to the same new day at once', async () => {
    const [a, b] = await Promise.all([openStore(), openStore()]);
    const expected: string[] = [];
    for (let d = 0; d < 6; d++) {
      const at = D0 + d * DAY + 1000;
      const batchA = Array.from({ length: 200 }, (_, i) => tick(at + i, { feed: 'a', symbol: `S${i % 7}` }));
      const batchB = Array.from({ length: 200 }, (_, i) => tick(at + i, { feed: 'b', symbol: `S${i % 7}` }));
      await Promise.all([a!.append(batchA), b!.append(batchB)]);
      expected.push(...batchA.map(key), ...batchB.map(key));
    }
    expect((await a!.days()).map((d) => d.day)).toEqual(['2026-01-05', '2026-01-06', '2026-01-07', '2026-01-08', '2026-01-09', '2026-01-10']);
    const read = (await readAll(a!, ALL)).map(key);
    expect(read.sort()).toEqual(expected.sort());
    // Each writer's own ticks stay in its append order.
    for (const feed of ['a', 'b']) {
      const mine = (await readAll(b!, { ...ALL, feeds: [feed] })).map((t) => t.receivedAt);
      expect(mine).toEqual([...mine].sort((x, y) => x - y));
    }
    expect((await b!.streams(ALL)).length).toBe(14);
    expect(await admin(`SELECT count(*)::int AS n FROM tickcast_history.streams`)).toEqual([{ n: 14 }]);
  });

  it('stores nothing of a batch that fails, and forgets the stream ids that failure rolled back', async () => {
    const store = await openStore();
    await store.append([tick(T0, { symbol: 'OLD' })]);
    // PostgreSQL text cannot hold NUL: the COPY fails after the new stream was upserted.
    await expect(store.append([tick(T0 + 1, { symbol: 'NEW' }), tick(T0 + 2, { payload: 'bad\u0000' })])).rejects.toThrow(/did not store 2 ticks/);
    expect((await readAll(store, ALL)).map((t) => t.symbol)).toEqual(['OLD']);
    // The id NEW was given is not in the table: a store still holding it would write ticks
    // that belong to no stream.
    await store.append([tick(T0 + 4, { symbol: 'NEW' })]);
    expect((await readAll(store, ALL)).map((t) => `${t.symbol}@${t.receivedAt - T0}`)).toEqual(['OLD@0', 'NEW@4']);
    expect((await store.streams(ALL)).map((s) => s.symbol)).toEqual(['NEW', 'OLD']);
  });

  it('names the URL, without its password, when the database cannot be reached', async () => {
    const secret = 'sEcr3t-pw';
    const refused = `postgresql://someone:${secret}@127.0.0.1:1/nowhere`;
    const error = await PgHistoryStore.open(refused, {}).then(
      () => undefined,
      (e: Error) => e,
    );
    expect(error).toBeInstanceOf(Error);
    expect(error!.message).toMatch(/^the history database at postgresql:\/\/someone:\*\*\*@127\.0\.0\.1:1\/nowhere cannot be reached: .*ECONNREFUSED/);
    expect(error!.message).not.toContain(secret);

    const missing = pgUrl(`${db.name}_absent`, { user: 'postgres', password: secret });
    await expect(openHistoryStore({ kind: 'postgres', url: missing })).rejects.toThrow(/cannot be reached: database ".*_absent" does not exist/);
    await expect(openHistoryStore({ kind: 'postgres', url: missing })).rejects.not.toThrow(secret);

    await expect(PgHistoryStore.open('not a url', {})).rejects.toThrow(/^the history database URL postgres:\/\/\(unparseable url\) is not a PostgreSQL URL/);
    await expect(PgHistoryStore.open(`mysql://root:${secret}@127.0.0.1/db`, {})).rejects.toThrow(/^the history database URL mysql:\/\/root:\*\*\*@127\.0\.0\.1\/db is not a PostgreSQL URL/);
  });

  it('tells a server away and a full disk from other failures, so recording stops instead of failing every batch', async () => {
    // The store's errors when the server cannot be reached say so.
    const refused = await PgHistoryStore.open('postgresql://someone:pw@127.0.0.1:1/nowhere', {}).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(HistoryStoreError);
    expect((refused as HistoryStoreError).fault).toBe('unreachable');
    // The recorder's writer reports the fault with the failed batch.
    const writer = new HistoryWriter({ kind: 'postgres', url: 'postgresql://someone:pw@127.0.0.1:1/nowhere' });
    const builder = new BatchBuilder(10);
    builder.add(streamRecordKey('simulator', 'NSE', 'A'), 1, T0, '{"ltp":1}');
    expect(await writer.handle({ type: 'batch', batch: builder.take(1) })).toMatchObject({ type: 'failed', id: 1, ticks: 1, fault: 'unreachable' });
    // PostgreSQL's own codes, as its errors carry them.
    const coded = (code: string, message = 'x') => Object.assign(new Error(message), { code });
    expect(pgFault(coded('53100', 'could not extend file: No space left on device'))).toBe('full');
    for (const code of ['08006', '08001', '57P01', '57P03', '53300', 'ECONNREFUSED', 'ENOTFOUND']) expect(pgFault(coded(code)), code).toBe('unreachable');
    expect(pgFault(Object.assign(new AggregateError([coded('ECONNREFUSED'), coded('ECONNREFUSED')], ''), {}))).toBe('unreachable');
    expect(pgFault(new Error('timeout exceeded when trying to connect'))).toBe('unreachable');
    for (const code of ['23505', '22021', '42P01', '55000']) expect(pgFault(coded(code)), code).toBeUndefined();
    // A failed append carries its fault: a store whose database stopped taking connections mid-run.
    const store = await PgHistoryStore.open(db.owner, {});
    await store.append([tick(T0)]);
    await withPgAdmin((admin) => admin.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()', [db.name]));
    await withPgAdmin((admin) => admin.query(`ALTER DATABASE ${db.name} WITH ALLOW_CONNECTIONS false`));
    try {
      const failed = await store.append([tick(T0 + 1)]).catch((e: unknown) => e);
      expect(failed).toBeInstanceOf(HistoryStoreError);
      expect((failed as HistoryStoreError).fault, (failed as Error).message).toBe('unreachable');
    } finally {
      await withPgAdmin((admin) => admin.query(`ALTER DATABASE ${db.name} WITH ALLOW_CONNECTIONS true`));
      await store.close();
    }
  });

  it('hides the password in `where` and in the error of a role that may not create its tables', async () => {
    // The test database's second role may connect but not create a schema.
    await expect(PgHistoryStore.open(db.readerUrl, {})).rejects.toThrow(/cannot be set up: permission denied for database/);
    const error = await PgHistoryStore.open(db.readerUrl, {}).catch((e: Error) => e);
    expect((error as Error).message).toContain(`${db.reader.user}:***@`);
    expect((error as Error).message).not.toContain(db.reader.password);

    // Given the right, the same role opens the store; its password is nowhere in `where`.
    await admin(`GRANT CREATE ON DATABASE ${db.name} TO ${db.reader.user}`);
    const store = await openStore(db.readerUrl);
    expect(store.where).toBe(db.readerUrl.replace(db.reader.password, '***'));
    expect(store.where).not.toContain(db.reader.password);
    // Read-only, on the tables another role made and granted nothing on: a clear error, no password.
    await admin(`REVOKE ALL ON SCHEMA tickcast_history FROM ${db.reader.user}; ALTER SCHEMA tickcast_history OWNER TO postgres; ALTER TABLE tickcast_history.streams OWNER TO postgres; ALTER TABLE tickcast_history.ticks OWNER TO postgres`);
    const reader = await openStore(db.readerUrl, true);
    await expect(reader.streams(ALL)).rejects.toThrow(/^the history database at .*:\*\*\*@.* cannot be read: permission denied for schema tickcast_history/);
  });

  it('reports a connection lost in the middle of a read through onProblem, and throws when nothing could be read', async () => {
    const writer = await openStore();
    const ticks = Array.from({ length: 12_000 }, (_, i) => tick(T0 + i, { symbol: `S${i % 3}` }));
    for (let i = 0; i < ticks.length; i += 1000) await writer.append(ticks.slice(i, i + 1000));
    const reader = await openStore(db.owner, true);
    expect((await readAll(reader, ALL)).map(key)).toEqual(ticks.map(key));

    const problems: DayProblem[] = [];
    const read: RecordedTick[] = [];
    for await (const t of reader.read(ALL, (p) => problems.push(p))) {
      read.push(t);
      if (read.length === 1) {
        // No new connection may be made, and the open ones are ended.
        await withPgAdmin(async (client) => {
          await client.query(`ALTER DATABASE ${db.name} ALLOW_CONNECTIONS false`);
          await client.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()`, [db.name]);
        });
      }
    }
    expect(read.length).toBeGreaterThanOrEqual(1);
    expect(read.length).toBeLessThan(ticks.length);
    expect(read.map(key)).toEqual(ticks.slice(0, read.length).map(key));
    expect(problems).toHaveLength(1);
    expect(problems[0]!.day).toBe('2026-01-05');
    expect(problems[0]!.message).toMatch(/could not be read to the end/);

    await expect(readAll(reader, ALL)).rejects.toThrow(/^the history database at .* cannot be read: /);
    await expect(reader.streams(ALL)).rejects.toThrow(/cannot be read/);
    await expect(writer.append([tick(T0)])).rejects.toThrow(/did not store 1 ticks/);
    await withPgAdmin((client) => client.query(`ALTER DATABASE ${db.name} ALLOW_CONNECTIONS true`));
    // The store recovers once the database is back.
    await writer.append([tick(T0 + 20_000, { symbol: 'NEW' })]);
    expect((await readAll(reader, { ...ALL, streams: [{ exchange: 'NSE', symbol: 'NEW' }] })).length).toBe(1);
  });

  it('pages a long read in id order, with streams created during the read', async () => {
    const store = await openStore();
    const ticks = Array.from({ length: 11_000 }, (_, i) => tick(T0 + (i % 4000), { symbol: `S${i % 11}`, mode: ((i % 3) + 1) as Mode }));
    await store.append(ticks);
    const read: RecordedTick[] = [];
    for await (const t of store.read(ALL)) {
      read.push(t);
      if (read.length === 10) await store.append([tick(T0 + 1, { symbol: 'LATE' })]);
    }
    expect(read.map(key)).toEqual([...ticks, tick(T0 + 1, { symbol: 'LATE' })].map(key));
  });
});
