/**
 * A directory of SQLite files, one per UTC day (`PREFIX-YYYY-MM-DD.db`): what the tick history
 * (tick-store.ts) and the raw frames (frame-store.ts) keep the same way. A day is the unit of
 * retention (a file is deleted whole, with its WAL) and of damage (a reader skips a day it cannot
 * read). This module lists the days, opens them for writing (WAL, synchronous=FULL, mode 0600)
 * and reading, splits a batch by day, and prunes; what a day file holds is its store's.
 *
 * Synchronous on purpose: it runs on a writer's or reader's thread, never the gateway's event loop.
 */
import fs from 'node:fs';
import path from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { makePrivateDir } from '../store/data-dir.js';
import type { DayFile } from './store.js';

const SIDECARS = ['', '-wal', '-shm'];
export const MS_PER_DAY = 86_400_000;

/** The UTC day of an epoch-ms instant, `YYYY-MM-DD`. */
export function dayOf(ms: number): string {
  return new Date(ms).toISOString().slice(0, 10);
}

/** The first instant of a `YYYY-MM-DD` day (UTC). */
export function dayStart(day: string): number {
  return Date.parse(`${day}T00:00:00.000Z`);
}

/** What is open of a day for writing: its database, closed when the day is done or deleted. */
export interface WritableDay {
  db: BetterSqlite3.Database;
}

export class DayFiles<Day extends WritableDay> {
  readonly dir: string;
  readonly readonly: boolean;
  private readonly prefix: string;
  private readonly pattern: RegExp;
  /** Days open for writing (today's, and yesterday's around midnight); closed by `closeDaysBefore`. */
  private readonly open = new Map<string, Day>();

  /**
   * `prefix` names the files (`ticks`, `frames`); `prepare` makes a day's writing side from its
   * freshly opened database (its schema is made already); `schema` is run on every day opened for writing.
   */
  constructor(
    options: { dir: string; prefix: string; readonly?: boolean },
    private readonly schema: string,
    private readonly prepare: (db: BetterSqlite3.Database) => Day,
  ) {
    this.dir = options.dir;
    this.readonly = options.readonly ?? false;
    this.prefix = options.prefix;
    this.pattern = new RegExp(`^${options.prefix}-(\\d{4}-\\d{2}-\\d{2})\\.db$`);
    if (!this.readonly) makePrivateDir(options.dir);
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
      const match = this.pattern.exec(name);
      if (!match) continue;
      const file = path.join(this.dir, name);
      days.push({ day: match[1]!, file, bytes: fileBytes(file) });
    }
    return days;
  }

  /** The days a receive-time range `[from, to)` touches, oldest first. */
  daysIn(from: number, to: number): DayFile[] {
    if (!(to > from)) return [];
    return this.days().filter(({ day }) => dayStart(day) + MS_PER_DAY > from && dayStart(day) < to);
  }

  /** Hands `write` each run of `items` (in order) that falls on one UTC day, with that day open for writing. */
  append<T>(items: readonly T[], timeOf: (item: T) => number, write: (day: Day, items: readonly T[]) => void): void {
    if (this.readonly) throw new Error(`the store in ${this.dir} was opened read-only: nothing is written there`);
    let start = 0;
    while (start < items.length) {
      const day = dayOf(timeOf(items[start]!));
      let end = start + 1;
      while (end < items.length && dayOf(timeOf(items[end]!)) === day) end++;
      write(this.writable(day), start === 0 && end === items.length ? items : items.slice(start, end));
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

  /**
   * Deletes whole days, oldest first, while any is older than `maxAgeMs` (by its last instant)
   * or the files are over `maxBytes`; today's file is never deleted. Returns the days deleted.
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

  private writable(day: string): Day {
    const existing = this.open.get(day);
    if (existing) return existing;
    const file = path.join(this.dir, `${this.prefix}-${day}.db`);
    const isNew = !fs.existsSync(file);
    const db = new BetterSqlite3(file, { timeout: 5000 });
    let entry: Day;
    try {
      if (isNew) fs.chmodSync(file, 0o600);
      db.pragma('journal_mode = WAL');
      // Every commit (one per batch) is on disk before it is acknowledged: FULL cost 7 % of the
      // ingest rate against NORMAL in the store benchmark, and survives a power loss too.
      db.pragma('synchronous = FULL');
      db.exec(this.schema);
      entry = this.prepare(db);
    } catch (error) {
      db.close();
      throw error;
    }
    this.open.set(day, entry);
    return entry;
  }
}

/** A day file opened for reading only (readers skip and report a day this throws for). */
export function openDayForReading(file: string): BetterSqlite3.Database {
  return new BetterSqlite3(file, { readonly: true, fileMustExist: true, timeout: 5000 });
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
