/**
 * The symbol master: OpenAlgo (symbol, exchange) → the broker's instrument token, in a `symtoken`
 * table laid out as OpenAlgo's (`database/symbol.py`, `broker/<broker>/database/
 * master_contract_db.py`), so rows read the same to both programs.
 *
 * One extension: a `broker` column. OpenAlgo's table holds one broker's master at a time (the
 * logged-in broker's); tickcast may serve several brokers from one database, so each row names
 * its broker and (broker, symbol, exchange) is unique. Rows without a broker (written by OpenAlgo
 * into a table it created) are never read. Keep tickcast's master in its own database file:
 * OpenAlgo's master-contract download empties the whole table, tickcast's rows included.
 *
 * Imports stage their rows in a connection-private temporary table while the file streams in,
 * then replace the broker's rows in one short transaction: nothing changes when a file turns out
 * to be unusable, and readers never see half a master. Rows equal to what is stored are left
 * untouched (same id, no write), so re-importing the same file changes nothing.
 */
import crypto from 'node:crypto';
import type { BrokerInstrument, BrokerName, SymbolLookup } from './instrument.js';
import { ErrorCode, TickcastError } from '../errors.js';
import { type Database, type Migration, migrate } from '../store/database.js';

/** One symtoken row as the importers produce it (OpenAlgo's column names). */
export interface SymbolRow {
  /** OpenAlgo's symbol (`NIFTY`, `RELIANCE`, `NIFTY28MAR24FUT`). */
  symbol: string;
  /** The broker's own trading symbol. */
  brsymbol: string;
  name: string;
  /** OpenAlgo's exchange (`NSE`, `NFO`, `NSE_INDEX`…). */
  exchange: string;
  brexchange: string;
  /** As OpenAlgo stores it (Zerodha: `instrument_token::::exchange_token`). */
  token: string;
  /** `DD-MON-YY` (e.g. `28-MAR-24`), or '' for instruments without one. */
  expiry: string;
  strike: number;
  lotsize: number;
  instrumenttype: string;
  tick_size: number;
}

/** A stored row, with the broker it belongs to. */
export interface SymbolRecord extends SymbolRow {
  id: number;
  broker: string;
  contract_value: number | null;
}

/** Where a bad row is in its file: a 1-based line (CSV) or a 0-based array index (JSON). */
export type Rejection = { line: number; reason: string } | { index: number; reason: string };

export interface ImportReport {
  broker: BrokerName;
  /** Rows the broker has in the table after the import. */
  imported: number;
  /** Valid rows not stored, counted by reason (a later duplicate, an exchange OpenAlgo does not map). */
  skipped: number;
  skippedReasons: Record<string, number>;
  /** The first MAX_REJECTIONS_KEPT bad rows. */
  rejected: Rejection[];
  /** All bad rows, including those not kept. */
  rejectedCount: number;
  /** What the import changed: new rows, changed rows, rows no longer in the file. */
  added: number;
  updated: number;
  removed: number;
}

export const MAX_REJECTIONS_KEPT = 20;

/** Rows staged per transaction: large enough to be fast, small enough to keep the heap flat. */
const STAGE_BATCH = 2000;
const ROWS_PER_INSERT = 25;

export const SYMBOL_MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'symtoken table with a broker column',
    up(db) {
      const existing = columnsOf(db, 'symtoken');
      if (existing.size === 0) {
        // OpenAlgo's columns and types (SQLAlchemy's DDL for SymToken), plus `broker`.
        db.exec(`
          CREATE TABLE symtoken (
            id INTEGER PRIMARY KEY,
            symbol VARCHAR NOT NULL,
            brsymbol VARCHAR NOT NULL,
            name VARCHAR,
            exchange VARCHAR,
            brexchange VARCHAR,
            token VARCHAR,
            expiry VARCHAR,
            strike FLOAT,
            lotsize INTEGER,
            instrumenttype VARCHAR,
            tick_size FLOAT,
            contract_value FLOAT,
            broker VARCHAR(20) NOT NULL
          )`);
      } else {
        // A table OpenAlgo made: add what it lacks (its own code adds contract_value the same way).
        if (!existing.has('contract_value')) db.exec('ALTER TABLE symtoken ADD COLUMN contract_value FLOAT');
        if (!existing.has('broker')) db.exec('ALTER TABLE symtoken ADD COLUMN broker VARCHAR(20)');
      }
      // Serves lookups too. NULL brokers never collide, so OpenAlgo's own rows cannot break it.
      db.exec('CREATE UNIQUE INDEX IF NOT EXISTS idx_symtoken_broker_symbol_exchange ON symtoken (broker, symbol, exchange)');
      // Bumped by every import that changed something, so a long-running process can tell
      // cheaply whether to reload (SymbolMaster.refresh).
      db.exec(`
        CREATE TABLE IF NOT EXISTS tickcast_symbol_imports (
          broker VARCHAR(20) PRIMARY KEY,
          generation INTEGER NOT NULL,
          imported_at TEXT NOT NULL,
          rows INTEGER NOT NULL
        )`);
    },
  },
];

/** Creates or upgrades the symbol tables (cheap when they are current). */
export function ensureSymbolSchema(db: Database): void {
  migrate(db, 'symbols', SYMBOL_MIGRATIONS);
}

function columnsOf(db: Database, table: string): Set<string> {
  const rows = db.prepare(`PRAGMA table_info(${table})`).all() as { name: string }[];
  return new Set(rows.map((r) => r.name));
}

/** The token a feed subscribes with: OpenAlgo keeps Zerodha's as `instrument_token::::exchange_token`. */
export function feedToken(storedToken: string): string {
  const cut = storedToken.indexOf('::::');
  return cut < 0 ? storedToken : storedToken.slice(0, cut);
}

const ROW_COLUMNS = ['symbol', 'brsymbol', 'name', 'exchange', 'brexchange', 'token', 'expiry', 'strike', 'lotsize', 'instrumenttype', 'tick_size'] as const;
const DUPLICATE_REASON = 'same symbol and exchange as a later row, which replaces it';

/**
 * One import in progress: rows go to a temporary table, then finish() swaps them in. Of rows
 * with the same symbol and exchange the last one counts, as OpenAlgo's in-memory cache keeps the
 * last it loads. The staging table is the connection's own, so the stored master only changes,
 * all at once, in finish().
 */
export class MasterImport {
  readonly #db: Database;
  readonly #broker: BrokerName;
  #batch: SymbolRow[] = [];
  #valid = 0;
  #skipped = new Map<string, number>();
  #rejected: Rejection[] = [];
  #rejectedCount = 0;
  #open = true;
  readonly #stage: (rows: SymbolRow[]) => void;
  /** The staging table's name: unique, so imports on one connection cannot collide. */
  readonly #table = `tickcast_symtoken_staged_${crypto.randomBytes(6).toString('hex')}`;

  constructor(db: Database, broker: BrokerName) {
    this.#db = db;
    this.#broker = broker;
    ensureSymbolSchema(db);
    const staged = `temp.${this.#table}`;
    // No index while rows stream in (one bulk index build at the end is far cheaper).
    db.exec(`CREATE TABLE ${staged} (seq INTEGER PRIMARY KEY, ${ROW_COLUMNS.join(', ')})`);
    // Several rows per statement: per-call overhead, not SQLite, dominates single-row inserts.
    const values = (n: number): string => Array.from({ length: n }, () => `(${ROW_COLUMNS.map(() => '?').join(', ')})`).join(', ');
    const insertMany = db.prepare(`INSERT INTO ${staged} (${ROW_COLUMNS.join(', ')}) VALUES ${values(ROWS_PER_INSERT)}`);
    const insertOne = db.prepare(`INSERT INTO ${staged} (${ROW_COLUMNS.join(', ')}) VALUES ${values(1)}`);
    this.#stage = db.transaction((rows: SymbolRow[]) => {
      let i = 0;
      for (; i + ROWS_PER_INSERT <= rows.length; i += ROWS_PER_INSERT) insertMany.run(rows.slice(i, i + ROWS_PER_INSERT).flatMap(rowValues));
      for (; i < rows.length; i++) insertOne.run(rowValues(rows[i]!));
    });
  }

  add(row: SymbolRow): void {
    this.#valid++;
    this.#batch.push(row);
    if (this.#batch.length >= STAGE_BATCH) this.#flush();
  }

  skip(reason: string): void {
    this.#skipped.set(reason, (this.#skipped.get(reason) ?? 0) + 1);
  }

  reject(rejection: Rejection): void {
    this.#rejectedCount++;
    if (this.#rejected.length < MAX_REJECTIONS_KEPT) this.#rejected.push(rejection);
  }

  /**
   * Replaces the broker's rows with the staged ones in one IMMEDIATE transaction. Refuses
   * (TickcastError USAGE) when the file held no valid row: an empty download must not wipe a
   * working master.
   */
  finish(what: string): ImportReport {
    if (!this.#open) throw new Error('import already finished');
    try {
      this.#flush();
      if (this.#valid === 0) {
        const kept = this.#count();
        throw new TickcastError(
          ErrorCode.USAGE,
          `${what} has no valid instruments (${this.#rejectedCount} rejected); the ${kept} stored ${this.#broker} symbols are unchanged`,
        );
      }
      return this.#swap();
    } finally {
      this.abort();
    }
  }

  /** Drops the staged rows; the stored master is untouched. Safe to call twice. */
  abort(): void {
    if (!this.#open) return;
    this.#open = false;
    this.#batch = [];
    this.#db.exec(`DROP TABLE IF EXISTS temp.${this.#table}`);
  }

  #flush(): void {
    if (this.#batch.length === 0) return;
    this.#stage(this.#batch);
    this.#batch = [];
  }

  #count(): number {
    return (this.#db.prepare('SELECT COUNT(*) AS n FROM symtoken WHERE broker = ?').get(this.#broker) as { n: number }).n;
  }

  #swap(): ImportReport {
    const db = this.#db;
    const broker = this.#broker;
    const staged = `temp.${this.#table}`;
    db.exec(`CREATE INDEX temp.${this.#table}_key ON ${this.#table} (symbol, exchange, seq)`);
    const latest = `${staged} s WHERE NOT EXISTS
      (SELECT 1 FROM ${staged} t WHERE t.symbol = s.symbol AND t.exchange = s.exchange AND t.seq > s.seq)`;
    const differs = ROW_COLUMNS.filter((c) => c !== 'symbol' && c !== 'exchange')
      .map((c) => `symtoken.${c} IS NOT excluded.${c}`)
      .join(' OR ');
    const remove = db.prepare(
      `DELETE FROM symtoken WHERE broker = ? AND NOT EXISTS
         (SELECT 1 FROM ${staged} s WHERE s.symbol = symtoken.symbol AND s.exchange = symtoken.exchange)`,
    );
    // Only changed rows are written, so an unchanged file writes nothing. `WHERE … ORDER BY`
    // also keeps SQLite from reading ON CONFLICT as a join constraint.
    const upsert = db.prepare(
      `INSERT INTO symtoken (broker, ${ROW_COLUMNS.join(', ')})
       SELECT ?, ${ROW_COLUMNS.map((c) => `s.${c}`).join(', ')} FROM ${latest} ORDER BY s.seq
       ON CONFLICT (broker, symbol, exchange) DO UPDATE SET
         ${ROW_COLUMNS.filter((c) => c !== 'symbol' && c !== 'exchange').map((c) => `${c} = excluded.${c}`).join(', ')}
       WHERE ${differs}`,
    );
    const bump = db.prepare(
      `INSERT INTO tickcast_symbol_imports (broker, generation, imported_at, rows) VALUES (?, 1, ?, ?)
       ON CONFLICT (broker) DO UPDATE SET generation = generation + 1, imported_at = excluded.imported_at, rows = excluded.rows`,
    );

    const { added, updated, removed, imported } = db
      .transaction(() => {
        const before = this.#count();
        const removedRows = remove.run(broker).changes;
        const written = upsert.run(broker).changes;
        const after = this.#count();
        const addedRows = after - (before - removedRows);
        if (removedRows + written > 0) bump.run(broker, new Date().toISOString(), after);
        return { added: addedRows, updated: written - addedRows, removed: removedRows, imported: after };
      })
      .immediate();

    const duplicates = this.#valid - imported; // the broker's rows are now exactly the file's distinct keys
    if (duplicates > 0) this.#skipped.set(DUPLICATE_REASON, duplicates);
    const skippedReasons = Object.fromEntries(this.#skipped);
    return {
      broker,
      imported,
      skipped: Object.values(skippedReasons).reduce((a, b) => a + b, 0),
      skippedReasons,
      rejected: this.#rejected,
      rejectedCount: this.#rejectedCount,
      added,
      updated,
      removed,
    };
  }
}

function rowValues(r: SymbolRow): unknown[] {
  return [r.symbol, r.brsymbol, r.name, r.exchange, r.brexchange, r.token, r.expiry, r.strike, r.lotsize, r.instrumenttype, r.tick_size];
}

type ExchangeIndex = Map<string, Map<string, BrokerInstrument>>;

/**
 * Lookups from memory: exact, case-sensitive (symbol, exchange) per broker, as OpenAlgo's token
 * cache. The index is built on first use or reload(); refresh() rebuilds it only when an import
 * has changed the table since.
 */
export class SymbolMaster implements SymbolLookup {
  #index: Map<string, ExchangeIndex> | undefined;
  #generation = '';
  readonly #sql;

  constructor(db: Database) {
    ensureSymbolSchema(db);
    this.#sql = {
      all: db.prepare('SELECT broker, symbol, exchange, brexchange, token FROM symtoken WHERE broker IS NOT NULL'),
      count: db.prepare('SELECT COUNT(*) AS n FROM symtoken WHERE broker IS NOT NULL'),
      countBroker: db.prepare('SELECT COUNT(*) AS n FROM symtoken WHERE broker = ?'),
      find: db.prepare('SELECT * FROM symtoken WHERE broker = ? AND exchange = ? AND symbol = ?'),
      generation: db.prepare("SELECT COALESCE(group_concat(broker || ':' || generation, ','), '') AS g FROM (SELECT broker, generation FROM tickcast_symbol_imports ORDER BY broker)"),
    };
  }

  lookup(broker: BrokerName, exchange: string, symbol: string): BrokerInstrument | undefined {
    const index = this.#index ?? this.#load();
    return index.get(broker)?.get(exchange)?.get(symbol);
  }

  /** Rebuilds the index from the table (after an import through another connection, say). */
  reload(): void {
    this.#load();
  }

  /** Reloads when an import changed the table since the last load; true if it did. */
  refresh(): boolean {
    if (this.#index !== undefined && this.#currentGeneration() === this.#generation) return false;
    this.#load();
    return true;
  }

  /** Stored rows, of one broker or of all. */
  count(broker?: BrokerName): number {
    const row = (broker === undefined ? this.#sql.count.get() : this.#sql.countBroker.get(broker)) as { n: number };
    return row.n;
  }

  /** The whole stored row, straight from the table (no index needed: for one-off queries). */
  find(broker: BrokerName, exchange: string, symbol: string): SymbolRecord | undefined {
    return this.#sql.find.get(broker, exchange, symbol) as SymbolRecord | undefined;
  }

  #currentGeneration(): string {
    return (this.#sql.generation.get() as { g: string }).g;
  }

  #load(): Map<string, ExchangeIndex> {
    try {
      // Read the generation first: an import landing mid-load then triggers another refresh.
      const generation = this.#currentGeneration();
      const index = new Map<string, ExchangeIndex>();
      const brexchanges = new Map<string, string>(); // one string per distinct value, not per row
      for (const row of this.#sql.all.iterate() as IterableIterator<{ broker: string; symbol: string; exchange: string; brexchange: string | null; token: string | null }>) {
        if (row.token === null) continue;
        let exchanges = index.get(row.broker);
        if (!exchanges) index.set(row.broker, (exchanges = new Map()));
        let symbols = exchanges.get(row.exchange);
        if (!symbols) exchanges.set(row.exchange, (symbols = new Map()));
        const brexchange = row.brexchange ?? '';
        let shared = brexchanges.get(brexchange);
        if (shared === undefined) brexchanges.set(brexchange, (shared = brexchange));
        symbols.set(row.symbol, { token: feedToken(row.token), brexchange: shared });
      }
      this.#index = index;
      this.#generation = generation;
      return index;
    } catch (err) {
      if (err instanceof TickcastError) throw err;
      throw new TickcastError(ErrorCode.STORE_FAILED, `cannot load the symbol master: ${(err as Error).message}`);
    }
  }
}
