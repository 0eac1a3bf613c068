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
import type BetterSqlite3 from 'better-sqlite3';
import { DayFiles, type WritableDay, openDayForReading } from './day-files.js';
import type { FrameConnectionInfo, RecordedFrame } from './frame-batch.js';
import type { DayFile, DayProblem } from './store.js';

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

interface OpenDay extends WritableDay {
  append: (frames: readonly RecordedFrame[]) => void;
}

export class FrameStore {
  private readonly files: DayFiles<OpenDay>;

  constructor({ dir, readonly = false }: { dir: string; readonly?: boolean }) {
    this.files = new DayFiles({ dir, prefix: 'frames', readonly }, SCHEMA, prepareDay);
  }

  get dir(): string {
    return this.files.dir;
  }

  /** Appends messages (in the order taken), each to its day's file, one transaction per day touched. */
  append(frames: readonly RecordedFrame[]): void {
    this.files.append(frames, (frame) => frame.receivedAt, (day, run) => day.append(run));
  }

  /** Closes the files of days before `day` (called as the clock passes midnight). */
  closeDaysBefore(day: string): void {
    this.files.closeDaysBefore(day);
  }

  /** The day files present, oldest first. */
  days(): DayFile[] {
    return this.files.days();
  }

  /**
   * The messages of `query` in the order they were taken, day by day. A day file that cannot be
   * read is skipped and reported through `onProblem`; the rest is read.
   */
  *read(query: FrameQuery, onProblem: (problem: DayProblem) => void = () => {}): Generator<RecordedFrame> {
    for (const { day, file } of this.files.daysIn(query.from, query.to)) {
      let db: BetterSqlite3.Database;
      try {
        db = openDayForReading(file);
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
    for (const { day, file } of this.files.daysIn(query.from, query.to)) {
      let db: BetterSqlite3.Database | undefined;
      try {
        db = openDayForReading(file);
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
  prune(limits: { now: number; maxAgeMs?: number; maxBytes?: number }): string[] {
    return this.files.prune(limits);
  }

  close(): void {
    this.files.close();
  }
}

/** A day's writing side: its connections' ids, and one transaction per append. */
function prepareDay(db: BetterSqlite3.Database): OpenDay {
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
  return {
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
