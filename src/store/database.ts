/**
 * The SQLite store: one file in the data directory (or OpenAlgo's own database, since the tables
 * below are laid out exactly as OpenAlgo's SQLAlchemy models in `database/auth_db.py`, so either
 * program can read rows the other wrote).
 */
import fs from 'node:fs';
import path from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { ErrorCode, TickcastError } from '../errors.js';
import { makePrivateDir } from './data-dir.js';
import { storageError } from './storage-advice.js';

export type Database = BetterSqlite3.Database;

export interface Migration {
  /** 1, 2, 3… in order; never renumber a released one. */
  version: number;
  name: string;
  up(db: Database): void;
}

/** Version bookkeeping lives in its own table (not `PRAGMA user_version`), because the file may be
 * OpenAlgo's database and other components may keep their own tables in it. */
const MIGRATIONS_TABLE = `CREATE TABLE IF NOT EXISTS tickcast_schema_migrations (
  component TEXT NOT NULL,
  version INTEGER NOT NULL,
  name TEXT NOT NULL,
  applied_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP,
  PRIMARY KEY (component, version)
)`;

/**
 * Applies the pending migrations of one component, each in its own IMMEDIATE transaction so two
 * processes starting together do not both apply it. Returns how many were applied.
 */
export function migrate(db: Database, component: string, migrations: readonly Migration[]): number {
  try {
    return applyMigrations(db, component, migrations);
  } catch (err) {
    const cause = err instanceof Error ? err.message : String(err);
    // The SQLite code stays reachable, so callers can tell a locked file from a damaged one.
    throw Object.assign(new TickcastError(ErrorCode.STORE_FAILED, `cannot migrate database ${db.name} (${component}): ${cause}`), { cause: err });
  }
}

function applyMigrations(db: Database, component: string, migrations: readonly Migration[]): number {
  db.exec(MIGRATIONS_TABLE);
  const sorted = [...migrations].sort((a, b) => a.version - b.version);
  const known = sorted.at(-1)?.version ?? 0;
  const currentStmt = db.prepare(
    'SELECT COALESCE(MAX(version), 0) AS v FROM tickcast_schema_migrations WHERE component = ?',
  );
  const record = db.prepare('INSERT INTO tickcast_schema_migrations (component, version, name) VALUES (?, ?, ?)');
  const current = (): number => (currentStmt.get(component) as { v: number }).v;

  const startVersion = current();
  if (startVersion > known) {
    throw new Error(`schema is at version ${startVersion}, newer than this tickcast knows (${known}); upgrade tickcast`);
  }
  let applied = 0;
  for (const m of sorted) {
    // Already applied: no write lock needed, so opening works while another process writes.
    if (m.version <= startVersion) continue;
    const ran = db
      .transaction(() => {
        if (current() >= m.version) return false; // another process got there first
        m.up(db);
        record.run(component, m.version, m.name);
        return true;
      })
      .immediate();
    if (ran) applied++;
  }
  return applied;
}

/**
 * The `auth` and `api_keys` tables as OpenAlgo's SQLAlchemy `create_all` makes them, with the
 * Python-side defaults also declared in SQL so rows inserted by hand get them too. IF NOT EXISTS:
 * pointed at an existing OpenAlgo database, its tables are used as they are.
 */
export const STORE_MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'openalgo auth and api_keys tables',
    up(db) {
      db.exec(`
        CREATE TABLE IF NOT EXISTS auth (
          id INTEGER PRIMARY KEY,
          name VARCHAR(255) NOT NULL UNIQUE,
          auth TEXT NOT NULL,
          feed_token TEXT,
          broker VARCHAR(20) NOT NULL,
          user_id VARCHAR(255),
          is_revoked BOOLEAN DEFAULT 0,
          secret_api_key TEXT,
          primary_ip VARCHAR(45),
          secondary_ip VARCHAR(45),
          ip_updated_at DATETIME,
          aux_param1 TEXT,
          aux_param2 TEXT,
          aux_param3 TEXT,
          aux_param4 TEXT
        );
        CREATE INDEX IF NOT EXISTS idx_auth_broker ON auth (broker);
        CREATE INDEX IF NOT EXISTS idx_auth_user_id ON auth (user_id);
        CREATE INDEX IF NOT EXISTS idx_auth_is_revoked ON auth (is_revoked);

        CREATE TABLE IF NOT EXISTS api_keys (
          id INTEGER PRIMARY KEY,
          user_id VARCHAR NOT NULL UNIQUE,
          api_key_hash TEXT NOT NULL,
          api_key_encrypted TEXT NOT NULL,
          created_at DATETIME DEFAULT CURRENT_TIMESTAMP,
          order_mode VARCHAR(20) DEFAULT 'auto'
        );
        CREATE INDEX IF NOT EXISTS idx_api_keys_order_mode ON api_keys (order_mode);
        CREATE INDEX IF NOT EXISTS idx_api_keys_created_at ON api_keys (created_at);
      `);
    },
  },
];

/**
 * Opens (creating if needed) the database file, in WAL mode with a 5 s busy timeout and foreign
 * keys on, and brings the store schema up to date. ':memory:' works too (tests).
 */
export function openDatabase(file: string): Database {
  const inMemory = file === ':memory:' || file === '';
  let db: Database | undefined;
  try {
    const isNew = !inMemory && !fs.existsSync(file);
    if (!inMemory) makePrivateDir(path.dirname(path.resolve(file)));
    db = new BetterSqlite3(file, { timeout: 5000 });
    // Hashes and encrypted keys live here: keep a file we created private to its owner.
    if (isNew) fs.chmodSync(file, 0o600);
    db.pragma('busy_timeout = 5000');
    if (!inMemory) {
      const mode = db.pragma('journal_mode = WAL', { simple: true });
      if (String(mode).toLowerCase() !== 'wal') throw new Error(`could not enable WAL (journal_mode is ${String(mode)})`);
      db.pragma('synchronous = NORMAL'); // durable enough with WAL, much faster commits
    }
    db.pragma('foreign_keys = ON');
    migrate(db, 'store', STORE_MIGRATIONS);
    return db;
  } catch (err) {
    try {
      db?.close();
    } catch {
      // already failing; the original cause is what matters
    }
    const cause = err instanceof TickcastError ? err.message : `cannot open database ${file}: ${err instanceof Error ? err.message : String(err)}`;
    throw storageError(cause, err, 'store', file, err instanceof TickcastError ? err.code : ErrorCode.STORE_FAILED);
  }
}
