/**
 * The raw broker frames (docs/history.md, "Raw broker frames"): one SQLite file per UTC day,
 * `frames-YYYY-MM-DD.db`, beside the tick history's day files and kept the same way (WAL,
 * synchronous=FULL, a day deleted whole, a damaged day reported and skipped).
 *
 * Each file holds `connections(id, name, broker, feed, socket, opened_at)` (a socket, named
 * `<feed>#<n>` and told apart from a later process's same name by its open time) and
 * `frames(id, connection, received_at, direction, binary, data)`; `frames.id` is the order the
 * messages were received or sent in, and every read returns them in it.
 *
 * Synchronous on purpose: it runs on the frame writer's thread or in a reading process.
 */
import fs from 'node:fs';
import path from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { makePrivateDir } from '../store/data-dir.js';
import type { FrameConnectionInfo, RecordedFrame } from './frame-batch.js';
import type { DayFile, DayProblem } from './store.js';
import { dayOf } from './tick-store.js';

const DAY_FILE = /^frames-(\d{4}-\d{2}-\d{2})\.db$/;
const SIDECARS = ['', '-wal', '-shm'];
const MS_PER_DAY = 86_400_000;

const SCHEMA = `
  CREATE TABLE IF NOT EXISTS connections (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    broker TEXT NOT NULL,
    feed TEXT NOT NULL,
    socket TEXT NOT NULL,
    opened_at INTEGER NOT NULL,
    UNIQUE (name, opened_at)
  );
  CREATE TABLE IF NOT EXISTS frames (
    id INTEGER PRIMARY KEY,
    connection INTEGER NOT NULL REFERENCES connections (id),
    received_at INTEGER NOT NULL,
    direction INTEGER NOT NULL,
    binary INTEGER NOT NULL,
    data BLOB NOT NULL
  );
  CREATE INDEX IF NOT EXISTS frames_time ON frames (received_at);
`;

/** Which frames a read wants: a receive-time range `[from, to)`, and optionally connections and brokers. */
export interface FrameQuery {
  from: number;
  to: number;
  /** Connection names (`kite#1`), every socket of that name in the range. */
  connections?: readonly string[];
  brokers?: readonly string[];
  /** Only messages received (`in`) or sent (`out`). */
  direction?: 'in' | 'out';
}

/** One socket's messages in a range, summed over its days. */
export interface ConnectionSummary extends FrameConnectionInfo {
  framesIn: number;
  framesOut: number;
  bytes: number;
  first: number;
  last: number;
}

interface OpenDay {
  db: BetterSqlite3.Database;
  append: (frames: readonly RecordedFrame[]) => void;
}

export class FrameStore {
  readonly dir: string;
  private readonly readonly: boolean;
  private readonly open = new Map<string, OpenDay>();

  constructor({ dir, readonly = false }: { dir: string; readonly?: boolean }) {
    this.dir = dir;
    this.readonly = readonly;
    if (!readonly) makePrivateDir(dir);
  }

  /** Appends messages (in the order taken), each to its day's file, one transaction per day touched. */
  append(frames: readonly RecordedFrame[]): void {
    if (this.readonly) throw new Error('the frame store was opened read-only');
    let start = 0;
    while (start < frames.length) {
      const day = dayOf(frames[start]!.receivedAt);
      let end = start + 1;
      while (end < frames.length && dayOf(frames[end]!.receivedAt) === day) end++;
      this.writable(day).append(start === 0 && end === frames.length ? frames : frames.slice(start, end));
      start = end;
    }
  }

  /** Closes the files of days before `day` (called as the clock passes midnight). */
  closeDaysBefore(day: string): void {
    for (const [open, entry] of this.open) {
      if (open < day) {
        entry.db.close();
        this.open.delete(open);
      }
    }
  }

  /** The day files present, oldest first. */
  days(): DayFile[] {
    let names: string[];
    try {
      names = fs.readdirSync(this.dir);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw error;
    }
    const days: DayFile[] = [];
    for (const name of names.sort()) {
      const match = DAY_FILE.exec(name);
      if (!match) continue;
      const file = path.join(this.dir, name);
      days.push({ day: match[1]!, file, bytes: fileBytes(file) });
    }
    return days;
  }

  /**
   * The messages of `query` in the order they were taken, day by day. A day file that cannot be
   * read is skipped and reported through `onProblem`; the rest is read.
   */
  *read(query: FrameQuery, onProblem: (problem: DayProblem) => void = () => {}): Generator<RecordedFrame> {
    for (const { day, file } of this.daysIn(query)) {
      let db: BetterSqlite3.Database;
      try {
        db = new BetterSqlite3(file, { readonly: true, fileMustExist: true, timeout: 5000 });
      } catch (error) {
        onProblem({ day, message: `the frames of ${day} cannot be opened: ${(error as Error).message}` });
        continue;
      }
      try {
        let connections: Map<number, FrameConnectionInfo>;
        let rows: Iterable<unknown>;
        try {
          const selected = select(db, query);
          if (!selected) continue;
          connections = selected.connections;
          rows = db.prepare(`SELECT connection, received_at, direction, binary, data FROM frames WHERE ${selected.where} ORDER BY id`).iterate(...selected.params);
        } catch (error) {
          onProblem({ day, message: `the frames of ${day} cannot be read: ${(error as Error).message}` });
          continue;
        }
        try {
          for (const row of rows as Iterable<{ connection: number; received_at: number; direction: number; binary: number; data: Buffer }>) {
            const connection = connections.get(row.connection);
            if (!connection) continue;
            yield { connection, direction: row.direction === 1 ? 'out' : 'in', binary: row.binary === 1, receivedAt: row.received_at, data: row.data };
          }
        } catch (error) {
          onProblem({ day, message: `the frames of ${day} are damaged after some were read: ${(error as Error).message}` });
        }
      } finally {
        db.close();
      }
    }
  }

  /** The sockets `query` holds messages of, by open time, with their counts summed over their days. */
  connections(query: FrameQuery, onProblem: (problem: DayProblem) => void = () => {}): ConnectionSummary[] {
    const found = new Map<string, ConnectionSummary>();
    for (const { day, file } of this.daysIn(query)) {
      let db: BetterSqlite3.Database | undefined;
      try {
        db = new BetterSqlite3(file, { readonly: true, fileMustExist: true, timeout: 5000 });
        const selected = select(db, query);
        if (!selected) continue;
        const rows = db
          .prepare(
            `SELECT connection, sum(direction = 0) AS framesIn, sum(direction = 1) AS framesOut, sum(length(data)) AS bytes, min(received_at) AS first, max(received_at) AS last FROM frames WHERE ${selected.where} GROUP BY connection`,
          )
          .all(...selected.params) as Array<{ connection: number; framesIn: number; framesOut: number; bytes: number; first: number; last: number }>;
        for (const row of rows) {
          const info = selected.connections.get(row.connection);
          if (!info) continue;
          const key = `${info.id}\u0000${info.openedAt}`;
          const summary = found.get(key);
          if (!summary) {
            found.set(key, { ...info, framesIn: row.framesIn, framesOut: row.framesOut, bytes: row.bytes, first: row.first, last: row.last });
            continue;
          }
          summary.framesIn += row.framesIn;
          summary.framesOut += row.framesOut;
          summary.bytes += row.bytes;
          summary.first = Math.min(summary.first, row.first);
          summary.last = Math.max(summary.last, row.last);
        }
      } catch (error) {
        onProblem({ day, message: `the frames of ${day} cannot be read: ${(error as Error).message}` });
      } finally {
        db?.close();
      }
    }
    return [...found.values()].sort((a, b) => a.openedAt - b.openedAt || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  /**
   * Deletes whole days, oldest first, while any is older than `maxAgeMs` (by its last instant) or
   * the frames are over `maxBytes`; today's file is never deleted. Returns the days deleted.
   */
  prune({ now, maxAgeMs, maxBytes }: { now: number; maxAgeMs?: number; maxBytes?: number }): string[] {
    const today = dayOf(now);
    const days = this.days();
    let total = days.reduce((sum, day) => sum + day.bytes, 0);
    const deleted: string[] = [];
    for (const { day, file, bytes } of days) {
      if (day >= today) break;
      const tooOld = maxAgeMs !== undefined && dayStart(day) + MS_PER_DAY <= now - maxAgeMs;
      const tooBig = maxBytes !== undefined && total > maxBytes;
      if (!tooOld && !tooBig) break;
      this.open.get(day)?.db.close();
      this.open.delete(day);
      for (const suffix of SIDECARS) fs.rmSync(file + suffix, { force: true });
      total -= bytes;
      deleted.push(day);
    }
    return deleted;
  }

  close(): void {
    for (const entry of this.open.values()) entry.db.close();
    this.open.clear();
  }

  private daysIn(query: FrameQuery): DayFile[] {
    if (!(query.to > query.from)) return [];
    return this.days().filter(({ day }) => dayStart(day) + MS_PER_DAY > query.from && dayStart(day) < query.to);
  }

  private writable(day: string): OpenDay {
    const existing = this.open.get(day);
    if (existing) return existing;
    const file = path.join(this.dir, `frames-${day}.db`);
    const isNew = !fs.existsSync(file);
    const db = new BetterSqlite3(file, { timeout: 5000 });
    try {
      if (isNew) fs.chmodSync(file, 0o600);
      db.pragma('journal_mode = WAL');
      // As the tick history: a commit (one per batch) is on disk before it is acknowledged.
      db.pragma('synchronous = FULL');
      db.exec(SCHEMA);
    } catch (error) {
      db.close();
      throw error;
    }
    const ids = new Map<string, number>();
    const load = (): void => {
      ids.clear();
      for (const row of db.prepare('SELECT id, name, opened_at FROM connections').all() as Array<{ id: number; name: string; opened_at: number }>) {
        ids.set(connectionKey(row.name, row.opened_at), row.id);
      }
    };
    load();
    const insertConnection = db.prepare('INSERT INTO connections (name, broker, feed, socket, opened_at) VALUES (?, ?, ?, ?, ?)');
    const insertFrame = db.prepare('INSERT INTO frames (connection, received_at, direction, binary, data) VALUES (?, ?, ?, ?, ?)');
    const transaction = db.transaction((frames: readonly RecordedFrame[]) => {
      for (const frame of frames) {
        const { id, broker, feed, socket, openedAt } = frame.connection;
        const opened = Math.round(openedAt);
        const key = connectionKey(id, opened);
        let connection = ids.get(key);
        if (connection === undefined) {
          connection = Number(insertConnection.run(id, broker, feed, socket, opened).lastInsertRowid);
          ids.set(key, connection);
        }
        insertFrame.run(connection, Math.round(frame.receivedAt), frame.direction === 'out' ? 1 : 0, frame.binary ? 1 : 0, frame.data);
      }
    });
    const entry: OpenDay = {
      db,
      append: (frames) => {
        try {
          transaction(frames);
        } catch (error) {
          // A failed transaction leaves connection ids in the map that were rolled back.
          load();
          throw error;
        }
      },
    };
    this.open.set(day, entry);
    return entry;
  }
}

/** The connections of a day `query` selects, and the WHERE clause of their frames (undefined: none). */
function select(db: BetterSqlite3.Database, query: FrameQuery): { connections: Map<number, FrameConnectionInfo>; where: string; params: unknown[] } | undefined {
  const connections = new Map<number, FrameConnectionInfo>();
  const rows = db.prepare('SELECT id, name, broker, feed, socket, opened_at FROM connections').all() as Array<{ id: number; name: string; broker: string; feed: string; socket: string; opened_at: number }>;
  for (const row of rows) {
    if (query.connections && !query.connections.includes(row.name)) continue;
    if (query.brokers && !query.brokers.includes(row.broker)) continue;
    connections.set(row.id, { id: row.name, broker: row.broker, feed: row.feed, socket: row.socket, openedAt: row.opened_at });
  }
  if (connections.size === 0) return undefined;
  const where = ['received_at >= ?', 'received_at < ?'];
  if (connections.size < rows.length) where.push(`connection IN (${[...connections.keys()].join(',')})`);
  if (query.direction) where.push(`direction = ${query.direction === 'out' ? 1 : 0}`);
  return { connections, where: where.join(' AND '), params: [query.from, query.to] };
}

function connectionKey(name: string, openedAt: number): string {
  return `${name}\u0000${openedAt}`;
}

function dayStart(day: string): number {
  return Date.parse(`${day}T00:00:00.000Z`);
}

function fileBytes(file: string): number {
  let bytes = 0;
  for (const suffix of SIDECARS) {
    try {
      bytes += fs.statSync(file + suffix).size;
    } catch {
      // absent sidecar
    }
  }
  return bytes;
}
