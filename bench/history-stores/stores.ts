/**
 * The candidate tick stores, each behind the same small interface: append one packed batch
 * durably (it is on disk, fsynced, when append returns), read one stream's ticks over a time
 * range in receive order, scan everything in write order (the crash check), close.
 *
 * - sqlite-json / sqlite-msgpack: better-sqlite3, WAL, synchronous=FULL (the WAL is fsynced at
 *   every commit), one transaction per batch, an index on (stream, received_at); the payload is
 *   the JSON bytes as they came, or MessagePack of the parsed object (JSON again on read).
 * - duckdb: @duckdb/node-api, the Appender (one flush, i.e. one commit, per batch), payload as
 *   VARCHAR, DuckDB's own compression; CHECKPOINT on close.
 * - seg-deflate / seg-brotli: append-only per-day files of blocks, one block per batch: a small
 *   uncompressed header (record count, time range, stream ids present, names of streams new to
 *   the file) and the records in columns compressed with raw deflate level 1 or brotli quality 4;
 *   a CRC-32 per block; fdatasync after every block. Opening scans the headers (index in memory)
 *   and drops a torn last block.
 */
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import BetterSqlite3 from 'better-sqlite3';
import { Packr } from 'msgpackr';
import { splitKey, unpackBatch } from './ticks.js';

export interface Row {
  receivedAt: number;
  exchangeTs: number | null;
  mode: number;
  /** JSON text, as an HTTP reply would carry it. */
  payload: string;
}

export interface StoredTick extends Row {
  key: string;
}

export interface HistoryStore {
  append(batch: ArrayBuffer): void | Promise<void>;
  /** One stream's ticks with from ≤ receivedAt ≤ to, in receive order. */
  read(key: string, from: number, to: number): Promise<Row[]>;
  /** Every tick, in the order written. */
  scanAll(): Promise<StoredTick[]>;
  /** A self-check after reopening: 'ok' or what is wrong. */
  check(): Promise<string>;
  /** Writes the whole store as a Parquet file, where the store can. */
  exportParquet?(file: string): Promise<void>;
  close(): Promise<void>;
}

export interface Candidate {
  name: string;
  open(dir: string): Promise<HistoryStore>;
}

// ---------------------------------------------------------------------------------------------
// SQLite

const SQLITE_SCHEMA = `
CREATE TABLE IF NOT EXISTS streams (
  id INTEGER PRIMARY KEY,
  feed TEXT NOT NULL,
  exchange TEXT NOT NULL,
  symbol TEXT NOT NULL,
  UNIQUE (feed, exchange, symbol)
);
CREATE TABLE IF NOT EXISTS ticks (
  stream INTEGER NOT NULL,
  received_at INTEGER NOT NULL,
  exchange_ts INTEGER,
  mode INTEGER NOT NULL,
  payload BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS ticks_stream_time ON ticks (stream, received_at);
`;

class SqliteStore implements HistoryStore {
  private readonly db: BetterSqlite3.Database;
  private readonly ids = new Map<string, number>();
  private readonly keys = new Map<number, string>();
  private readonly insertTick: BetterSqlite3.Statement;
  private readonly insertStream: BetterSqlite3.Statement;
  private readonly selectRange: BetterSqlite3.Statement;
  private readonly writeBatch: (batch: ArrayBuffer) => void;
  private readonly packr = new Packr({ useRecords: false });

  constructor(file: string, private readonly format: 'json' | 'msgpack', sync: 'full' | 'normal') {
    this.db = new BetterSqlite3(file);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma(`synchronous = ${sync}`);
    this.db.exec(SQLITE_SCHEMA);
    for (const row of this.db.prepare('SELECT id, feed, exchange, symbol FROM streams').all() as Array<{ id: number; feed: string; exchange: string; symbol: string }>) {
      const key = `${row.feed}|${row.exchange}:${row.symbol}`;
      this.ids.set(key, row.id);
      this.keys.set(row.id, key);
    }
    this.insertTick = this.db.prepare('INSERT INTO ticks (stream, received_at, exchange_ts, mode, payload) VALUES (?, ?, ?, ?, ?)');
    this.insertStream = this.db.prepare('INSERT INTO streams (feed, exchange, symbol) VALUES (?, ?, ?)');
    this.selectRange = this.db.prepare(
      'SELECT received_at, exchange_ts, mode, payload FROM ticks WHERE stream = ? AND received_at BETWEEN ? AND ? ORDER BY received_at',
    );
    this.writeBatch = this.db.transaction((batch: ArrayBuffer) => {
      for (const r of unpackBatch(batch)) {
        let id = this.ids.get(r.key);
        if (id === undefined) {
          const { feed, exchange, symbol } = splitKey(r.key);
          id = Number(this.insertStream.run(feed, exchange, symbol).lastInsertRowid);
          this.ids.set(r.key, id);
          this.keys.set(id, r.key);
        }
        const payload = this.format === 'json' ? r.payload : this.packr.pack(JSON.parse(r.payload.toString('utf8')));
        this.insertTick.run(id, r.receivedAt, r.exchangeTs, r.mode, payload);
      }
    });
  }

  append(batch: ArrayBuffer): void {
    this.writeBatch(batch);
  }

  private text(payload: Buffer): string {
    return this.format === 'json' ? payload.toString('utf8') : JSON.stringify(this.packr.unpack(payload));
  }

  async read(key: string, from: number, to: number): Promise<Row[]> {
    const id = this.ids.get(key);
    if (id === undefined) return [];
    const rows = this.selectRange.raw().all(id, from, to) as Array<[number, number | null, number, Buffer]>;
    return rows.map(([receivedAt, exchangeTs, mode, payload]) => ({ receivedAt, exchangeTs, mode, payload: this.text(payload) }));
  }

  async scanAll(): Promise<StoredTick[]> {
    const rows = this.db.prepare('SELECT stream, received_at, exchange_ts, mode, payload FROM ticks ORDER BY rowid').raw().all() as Array<[number, number, number | null, number, Buffer]>;
    return rows.map(([stream, receivedAt, exchangeTs, mode, payload]) => ({ key: this.keys.get(stream)!, receivedAt, exchangeTs, mode, payload: this.text(payload) }));
  }

  async check(): Promise<string> {
    const result = this.db.pragma('integrity_check', { simple: true });
    return result === 'ok' ? 'ok' : `integrity_check: ${String(result)}`;
  }

  async close(): Promise<void> {
    this.db.pragma('wal_checkpoint(TRUNCATE)');
    this.db.close();
  }
}

// ---------------------------------------------------------------------------------------------
// DuckDB

type Duck = typeof import('@duckdb/node-api');
type DuckConnection = import('@duckdb/node-api').DuckDBConnection;
type DuckInstance = import('@duckdb/node-api').DuckDBInstance;
type DuckAppender = import('@duckdb/node-api').DuckDBAppender;

let duckModule: Promise<Duck> | undefined;
/** Loads the native module once per thread (not part of opening a store). */
export const loadDuckDB = (): Promise<Duck> => (duckModule ??= import('@duckdb/node-api'));

class DuckStore implements HistoryStore {
  private readonly ids = new Map<string, number>();
  private readonly keys = new Map<number, string>();

  private constructor(
    private readonly instance: DuckInstance,
    private readonly connection: DuckConnection,
    private appender: DuckAppender,
  ) {}

  static async open(file: string): Promise<DuckStore> {
    const duck = await loadDuckDB();
    const instance = await duck.DuckDBInstance.create(file);
    const connection = await instance.connect();
    await connection.run(`
      CREATE TABLE IF NOT EXISTS streams (id INTEGER PRIMARY KEY, feed VARCHAR NOT NULL, exchange VARCHAR NOT NULL, symbol VARCHAR NOT NULL);
      CREATE TABLE IF NOT EXISTS ticks (stream INTEGER NOT NULL, received_at BIGINT NOT NULL, exchange_ts BIGINT, mode UTINYINT NOT NULL, payload VARCHAR NOT NULL);
    `);
    const store = new DuckStore(instance, connection, await connection.createAppender('ticks'));
    const rows = (await connection.runAndReadAll('SELECT id, feed, exchange, symbol FROM streams')).getRows();
    for (const [id, feed, exchange, symbol] of rows) {
      const key = `${String(feed)}|${String(exchange)}:${String(symbol)}`;
      store.ids.set(key, Number(id));
      store.keys.set(Number(id), key);
    }
    return store;
  }

  async append(batch: ArrayBuffer): Promise<void> {
    const a = this.appender;
    for (const r of unpackBatch(batch)) {
      let id = this.ids.get(r.key);
      if (id === undefined) {
        id = this.ids.size + 1;
        const { feed, exchange, symbol } = splitKey(r.key);
        await this.connection.run('INSERT INTO streams VALUES ($1, $2, $3, $4)', [id, feed, exchange, symbol]);
        this.ids.set(r.key, id);
        this.keys.set(id, r.key);
      }
      a.appendInteger(id);
      a.appendBigInt(BigInt(r.receivedAt));
      if (r.exchangeTs === null) a.appendNull();
      else a.appendBigInt(BigInt(r.exchangeTs));
      a.appendUTinyInt(r.mode);
      a.appendVarchar(r.payload.toString('utf8'));
      a.endRow();
    }
    // A flush is the batch's commit (the appender's connection auto-commits), WAL fsynced.
    a.flushSync();
  }

  async read(key: string, from: number, to: number): Promise<Row[]> {
    const id = this.ids.get(key);
    if (id === undefined) return [];
    const reader = await this.connection.runAndReadAll(
      'SELECT received_at, exchange_ts, mode, payload FROM ticks WHERE stream = $1 AND received_at BETWEEN $2 AND $3 ORDER BY received_at',
      [id, BigInt(from), BigInt(to)],
    );
    return reader.getRows().map(([receivedAt, exchangeTs, mode, payload]) => ({
      receivedAt: Number(receivedAt),
      exchangeTs: exchangeTs === null ? null : Number(exchangeTs),
      mode: Number(mode),
      payload: payload as string,
    }));
  }

  async scanAll(): Promise<StoredTick[]> {
    const reader = await this.connection.runAndReadAll('SELECT stream, received_at, exchange_ts, mode, payload FROM ticks ORDER BY rowid');
    return reader.getRows().map(([stream, receivedAt, exchangeTs, mode, payload]) => ({
      key: this.keys.get(Number(stream))!,
      receivedAt: Number(receivedAt),
      exchangeTs: exchangeTs === null ? null : Number(exchangeTs),
      mode: Number(mode),
      payload: payload as string,
    }));
  }

  async check(): Promise<string> {
    // No integrity pragma: a full scan of every column has to succeed.
    await this.connection.runAndReadAll('SELECT count(*), sum(length(payload)), max(received_at) FROM ticks');
    return 'ok';
  }

  async exportParquet(file: string): Promise<void> {
    await this.connection.run(`COPY (SELECT * FROM ticks ORDER BY stream, received_at) TO '${file.replaceAll("'", "''")}' (FORMAT parquet)`);
  }

  async close(): Promise<void> {
    this.appender.closeSync();
    await this.connection.run('CHECKPOINT');
    this.connection.closeSync();
    this.instance.closeSync();
  }
}

// ---------------------------------------------------------------------------------------------
// Segment files

const MAGIC = 0x31424354; // 'TCB1'
const PREFIX = 16;
type Codec = 'deflate' | 'brotli';

interface BlockEntry {
  offset: number;
  length: number;
  count: number;
  min: number;
  max: number;
  /** Bit i set: stream id i has records in the block. */
  streams: Uint8Array;
}

/** One day's file: its blocks and its stream dictionary (ids are per file, so a file stands alone). */
interface DayFile {
  file: string;
  fd: number;
  end: number;
  ids: Map<string, number>;
  keys: string[];
  blocks: BlockEntry[];
}

const dayOf = (ms: number): string => new Date(ms).toISOString().slice(0, 10);

class SegmentStore implements HistoryStore {
  private readonly days = new Map<string, DayFile>();

  constructor(private readonly dir: string, private readonly codec: Codec) {
    for (const name of fs.readdirSync(dir).filter((n) => n.endsWith('.seg')).sort()) this.days.set(name.slice(0, 10), this.load(path.join(dir, name)));
  }

  /** Reads every block header; a last block that is short or fails its CRC is cut off. */
  private load(file: string): DayFile {
    const fd = fs.openSync(file, 'r+');
    const size = fs.fstatSync(fd).size;
    const day: DayFile = { file, fd, end: 0, ids: new Map(), keys: [], blocks: [] };
    const prefix = Buffer.alloc(PREFIX);
    let at = 0;
    while (at + PREFIX <= size) {
      fs.readSync(fd, prefix, 0, PREFIX, at);
      const length = prefix.readUInt32LE(4);
      if (prefix.readUInt32LE(0) !== MAGIC || length < PREFIX || at + length > size) break;
      const headerLength = prefix.readUInt32LE(12);
      let block: Buffer;
      if (at + length === size) {
        // The last block: the only one a crash can have torn, so its CRC is checked now.
        block = Buffer.alloc(length);
        fs.readSync(fd, block, 0, length, at);
        if (zlib.crc32(block.subarray(PREFIX)) !== block.readUInt32LE(8)) break;
      } else {
        block = Buffer.alloc(PREFIX + headerLength);
        fs.readSync(fd, block, 0, PREFIX + headerLength, at);
      }
      this.addBlock(day, block.subarray(PREFIX, PREFIX + headerLength), at, length);
      at += length;
    }
    if (at < size) fs.ftruncateSync(fd, at);
    day.end = at;
    return day;
  }

  private addBlock(day: DayFile, header: Buffer, offset: number, length: number): void {
    const count = header.readUInt32LE(0);
    const min = header.readDoubleLE(4);
    const max = header.readDoubleLE(12);
    let at = 20;
    const fresh = header.readUInt16LE(at);
    at += 2;
    for (let i = 0; i < fresh; i++) {
      const id = header.readUInt16LE(at);
      const len = header.readUInt16LE(at + 2);
      const key = header.toString('utf8', at + 4, at + 4 + len);
      day.ids.set(key, id);
      day.keys[id] = key;
      at += 4 + len;
    }
    const present = header.readUInt16LE(at);
    at += 2;
    const streams = new Uint8Array((day.keys.length + 7) >> 3);
    for (let i = 0; i < present; i++) {
      const id = header.readUInt16LE(at + 2 * i);
      streams[id >> 3]! |= 1 << (id & 7);
    }
    day.blocks.push({ offset, length, count, min, max, streams });
  }

  private dayFile(day: string): DayFile {
    let file = this.days.get(day);
    if (!file) {
      const name = path.join(this.dir, `${day}.seg`);
      file = { file: name, fd: fs.openSync(name, 'a+'), end: 0, ids: new Map(), keys: [], blocks: [] };
      this.days.set(day, file);
    }
    return file;
  }

  append(batch: ArrayBuffer): void {
    // Records of one batch are in receive order; a batch that crosses midnight makes two blocks.
    let records = [...unpackBatch(batch)];
    while (records.length > 0) {
      const day = dayOf(records[0]!.receivedAt);
      let n = 1;
      while (n < records.length && dayOf(records[n]!.receivedAt) === day) n++;
      this.writeBlock(this.dayFile(day), records.slice(0, n));
      records = records.slice(n);
    }
  }

  private writeBlock(day: DayFile, records: ReturnType<typeof unpackBatch> extends Generator<infer R> ? R[] : never): void {
    const n = records.length;
    const fresh: Array<[number, Buffer]> = [];
    const ids = new Uint16Array(n);
    const present = new Set<number>();
    let payloadBytes = 0;
    for (let i = 0; i < n; i++) {
      const r = records[i]!;
      let id = day.ids.get(r.key);
      if (id === undefined) {
        id = day.keys.length;
        day.ids.set(r.key, id);
        day.keys.push(r.key);
        fresh.push([id, Buffer.from(r.key, 'utf8')]);
      }
      ids[i] = id;
      present.add(id);
      payloadBytes += r.payload.length;
    }
    // Body: stream u16 ×n, mode u8 ×n, received f64 ×n, exchange f64 ×n (NaN: absent), payload length u32 ×n, payloads.
    const body = Buffer.allocUnsafe(n * 23 + payloadBytes);
    let at = 0;
    for (let i = 0; i < n; i++, at += 2) body.writeUInt16LE(ids[i]!, at);
    for (let i = 0; i < n; i++, at += 1) body[at] = records[i]!.mode;
    for (let i = 0; i < n; i++, at += 8) body.writeDoubleLE(records[i]!.receivedAt, at);
    for (let i = 0; i < n; i++, at += 8) body.writeDoubleLE(records[i]!.exchangeTs ?? NaN, at);
    for (let i = 0; i < n; i++, at += 4) body.writeUInt32LE(records[i]!.payload.length, at);
    for (let i = 0; i < n; i++) at += records[i]!.payload.copy(body, at);
    const compressed =
      this.codec === 'deflate'
        ? zlib.deflateRawSync(body, { level: 1 })
        : zlib.brotliCompressSync(body, {
            params: {
              [zlib.constants.BROTLI_PARAM_QUALITY]: 4,
              [zlib.constants.BROTLI_PARAM_MODE]: zlib.constants.BROTLI_MODE_TEXT,
              [zlib.constants.BROTLI_PARAM_SIZE_HINT]: body.length,
            },
          });

    let headerLength = 20 + 2 + 2 + 2 * present.size;
    for (const [, name] of fresh) headerLength += 4 + name.length;
    const block = Buffer.allocUnsafe(PREFIX + headerLength + compressed.length);
    block.writeUInt32LE(MAGIC, 0);
    block.writeUInt32LE(block.length, 4);
    block.writeUInt32LE(headerLength, 12);
    let h = PREFIX;
    block.writeUInt32LE(n, h);
    block.writeDoubleLE(records[0]!.receivedAt, h + 4);
    block.writeDoubleLE(records[n - 1]!.receivedAt, h + 12);
    h += 20;
    block.writeUInt16LE(fresh.length, h);
    h += 2;
    for (const [id, name] of fresh) {
      block.writeUInt16LE(id, h);
      block.writeUInt16LE(name.length, h + 2);
      name.copy(block, h + 4);
      h += 4 + name.length;
    }
    block.writeUInt16LE(present.size, h);
    h += 2;
    for (const id of present) {
      block.writeUInt16LE(id, h);
      h += 2;
    }
    compressed.copy(block, h);
    block.writeUInt32LE(zlib.crc32(block.subarray(PREFIX)), 8);
    fs.writeSync(day.fd, block, 0, block.length, day.end);
    fs.fdatasyncSync(day.fd);
    this.addBlock(day, block.subarray(PREFIX, PREFIX + headerLength), day.end, block.length);
    day.end += block.length;
  }

  /** Reads one block, checks its CRC and decompresses its records (in columns). */
  private readBlock(day: DayFile, entry: BlockEntry): { body: Buffer; n: number } {
    const block = Buffer.allocUnsafe(entry.length);
    fs.readSync(day.fd, block, 0, entry.length, entry.offset);
    if (zlib.crc32(block.subarray(PREFIX)) !== block.readUInt32LE(8)) throw new Error(`${day.file}: block at ${entry.offset} fails its CRC`);
    const compressed = block.subarray(PREFIX + block.readUInt32LE(12));
    const body = this.codec === 'deflate' ? zlib.inflateRawSync(compressed) : zlib.brotliDecompressSync(compressed);
    return { body, n: entry.count };
  }

  private *rows(day: DayFile, entry: BlockEntry, want: number | undefined, from: number, to: number): Generator<StoredTick> {
    const { body, n } = this.readBlock(day, entry);
    const modeAt = 2 * n;
    const recvAt = 3 * n;
    const exchAt = 11 * n;
    const lenAt = 19 * n;
    let payloadAt = 23 * n;
    for (let i = 0; i < n; i++) {
      const len = body.readUInt32LE(lenAt + 4 * i);
      const id = body.readUInt16LE(2 * i);
      if (want === undefined || id === want) {
        const receivedAt = body.readDoubleLE(recvAt + 8 * i);
        if (receivedAt >= from && receivedAt <= to) {
          const exchangeTs = body.readDoubleLE(exchAt + 8 * i);
          yield {
            key: day.keys[id]!,
            receivedAt,
            exchangeTs: Number.isNaN(exchangeTs) ? null : exchangeTs,
            mode: body[modeAt + i]!,
            payload: body.toString('utf8', payloadAt, payloadAt + len),
          };
        }
      }
      payloadAt += len;
    }
  }

  async read(key: string, from: number, to: number): Promise<Row[]> {
    const out: Row[] = [];
    for (const [name, day] of [...this.days].sort(([a], [b]) => (a < b ? -1 : 1))) {
      if (name < dayOf(from) || name > dayOf(to)) continue;
      const id = day.ids.get(key);
      if (id === undefined) continue;
      for (const entry of day.blocks) {
        if (entry.max < from || entry.min > to) continue;
        if (!((entry.streams[id >> 3] ?? 0) & (1 << (id & 7)))) continue;
        for (const { key: _key, ...row } of this.rows(day, entry, id, from, to)) out.push(row);
      }
    }
    return out;
  }

  async scanAll(): Promise<StoredTick[]> {
    const out: StoredTick[] = [];
    for (const [, day] of [...this.days].sort(([a], [b]) => (a < b ? -1 : 1))) {
      for (const entry of day.blocks) for (const row of this.rows(day, entry, undefined, -Infinity, Infinity)) out.push(row);
    }
    return out;
  }

  async check(): Promise<string> {
    // Every block's CRC and decompression.
    for (const day of this.days.values()) for (const entry of day.blocks) this.readBlock(day, entry);
    return 'ok';
  }

  async close(): Promise<void> {
    for (const day of this.days.values()) fs.closeSync(day.fd);
    this.days.clear();
  }
}

// ---------------------------------------------------------------------------------------------

export function candidates(options: { sqliteSync: 'full' | 'normal' }): Candidate[] {
  return [
    { name: 'sqlite-json', open: async (dir) => new SqliteStore(path.join(dir, 'history.db'), 'json', options.sqliteSync) },
    { name: 'sqlite-msgpack', open: async (dir) => new SqliteStore(path.join(dir, 'history.db'), 'msgpack', options.sqliteSync) },
    { name: 'duckdb', open: (dir) => DuckStore.open(path.join(dir, 'history.duckdb')) },
    { name: 'seg-deflate', open: async (dir) => new SegmentStore(dir, 'deflate') },
    { name: 'seg-brotli', open: async (dir) => new SegmentStore(dir, 'brotli') },
  ];
}

export const CANDIDATE_NAMES = candidates({ sqliteSync: 'full' }).map((c) => c.name);

/** Bytes of every file under `dir` (database, WAL and other sidecars, segments). */
export function bytesOnDisk(dir: string): number {
  let total = 0;
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    total += entry.isDirectory() ? bytesOnDisk(full) : fs.statSync(full).size;
  }
  return total;
}
