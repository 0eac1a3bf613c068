/** What a history directory holds once its gateway has stopped: bytes, and ticks by mode, read-only. */
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';

export interface StoreContents {
  /** Every file in the directory (day files and any WAL or shared-memory sidecars). */
  bytes: number;
  files: number;
  ticks: number;
  /** Per topic mode (1 LTP, 2 Quote, 3 Depth): ticks and mean payload bytes. */
  byMode: Map<number, { ticks: number; payloadBytes: number }>;
  /** `PRAGMA quick_check` of every day file was `ok`. */
  ok: boolean;
}

const DAY_FILE = /^ticks-\d{4}-\d{2}-\d{2}\.db$/;

export function storeContents(dir: string): StoreContents {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return { bytes: 0, files: 0, ticks: 0, byMode: new Map(), ok: true };
  }
  const bytes = names.reduce((sum, name) => sum + statSync(join(dir, name)).size, 0);
  const byMode = new Map<number, { ticks: number; payloadBytes: number }>();
  let ticks = 0;
  let ok = true;
  for (const name of names.filter((n) => DAY_FILE.test(n))) {
    const db = new BetterSqlite3(join(dir, name), { readonly: true, fileMustExist: true });
    try {
      ticks += (db.prepare('SELECT COUNT(*) AS n FROM ticks').get() as { n: number }).n;
      const rows = db.prepare('SELECT mode, COUNT(*) AS n, SUM(LENGTH(CAST(payload AS BLOB))) AS b FROM ticks GROUP BY mode').all() as Array<{ mode: number; n: number; b: number }>;
      for (const row of rows) {
        const entry = byMode.get(row.mode) ?? { ticks: 0, payloadBytes: 0 };
        entry.ticks += row.n;
        entry.payloadBytes += row.b;
        byMode.set(row.mode, entry);
      }
      if ((db.pragma('quick_check', { simple: true }) as string) !== 'ok') ok = false;
    } finally {
      db.close();
    }
  }
  return { bytes, files: names.length, ticks, byMode, ok };
}

/** Ticks in the store only (what the kill -9 runs need; also opens the files after a crash). */
export function storedTicks(dir: string): { ticks: number; ok: boolean } {
  const { ticks, ok } = storeContents(dir);
  return { ticks, ok };
}
