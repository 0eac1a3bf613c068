/**
 * OpenAlgo's own database, opened where it is (DATABASE_URL) and only ever read: tickcast runs
 * beside OpenAlgo, which keeps writing it.
 *
 * - SQLite: a read-only connection (`readonly`, and `query_only` on top), so it can never take a
 *   write lock; every read is one short statement in its own implicit transaction, so no read
 *   transaction is held open while OpenAlgo writes. A short busy timeout: the connection is
 *   synchronous, and a long wait would stall the event loop.
 * - PostgreSQL: a small `pg.Pool` whose sessions are read-only by default
 *   (`default_transaction_read_only`) with a statement timeout; plain SELECTs. The role needs
 *   nothing but SELECT on `api_keys`, `auth` and `symtoken`.
 *
 * Driver errors come out as TickcastErrors naming DATABASE_URL (never its password): the server
 * unreachable (DATABASE_UNREACHABLE), a wrong user, password or database (CONFIG_INVALID), tables
 * or privileges missing (DATABASE_SCHEMA).
 */
import BetterSqlite3 from 'better-sqlite3';
import type { Pool, PoolConfig } from 'pg';
import { type DatabaseUrl, type ServerDatabaseUrl, type SqliteDatabaseUrl, serverAddress } from '../config/database-url.js';
import { ErrorCode, TickcastError } from '../errors.js';

/** What tickcast does with OpenAlgo's database: SELECTs with `?` placeholders. */
export interface OpenAlgoDb {
  readonly url: DatabaseUrl;
  /** The URL without its password, for messages. */
  readonly where: string;
  all<T extends object>(sql: string, params?: readonly unknown[]): Promise<T[]>;
  /**
   * A number that moves whenever another connection commits (SQLite's `data_version`), read
   * without I/O; undefined for a server database, which has no such counter.
   */
  changeCounter(): number | undefined;
  close(): Promise<void>;
}

/** The columns tickcast reads, per table; `optional` ones are used when present. */
export const OPENALGO_COLUMNS = {
  api_keys: { required: ['id', 'user_id', 'api_key_hash', 'api_key_encrypted'], optional: ['created_at'] },
  auth: { required: ['id', 'name', 'auth', 'feed_token', 'broker', 'user_id', 'is_revoked'], optional: ['secret_api_key'] },
  symtoken: { required: ['id', 'symbol', 'exchange', 'brexchange', 'token'], optional: [] },
} as const satisfies Record<string, { required: readonly string[]; optional: readonly string[] }>;

export type OpenAlgoTable = keyof typeof OPENALGO_COLUMNS;

/** Which optional columns the database has. */
export interface OpenAlgoSchema {
  columns: Record<OpenAlgoTable, ReadonlySet<string>>;
}

/** A BOOLEAN as the drivers return it: 0/1 from SQLite, true/false from PostgreSQL. */
export function isTrue(value: unknown): boolean {
  if (typeof value === 'number' || typeof value === 'bigint') return value !== 0 && value !== 0n;
  if (typeof value === 'string') return !['', '0', 'f', 'false'].includes(value.toLowerCase());
  return value === true;
}

/** Opens the database and checks that it answers; throws a TickcastError saying what is wrong. */
export async function openOpenAlgoDb(url: DatabaseUrl): Promise<OpenAlgoDb> {
  return url.kind === 'sqlite' ? SqliteOpenAlgoDb.open(url) : PostgresOpenAlgoDb.open(url);
}

/**
 * Checks that the tables and columns tickcast reads exist and can be read; DATABASE_SCHEMA
 * naming everything missing otherwise.
 */
export async function checkOpenAlgoSchema(db: OpenAlgoDb): Promise<OpenAlgoSchema> {
  const tables = Object.keys(OPENALGO_COLUMNS) as OpenAlgoTable[];
  if (db.url.kind === 'postgresql') {
    // A table the role may not read looks column-less in information_schema: ask the catalog
    // which tables exist, and try reading each, so a missing GRANT is named as such (42501).
    const existing = await db.all<{ relname: string }>(
      `SELECT c.relname FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
       WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p', 'v') AND c.relname IN (${tables.map(() => '?').join(', ')})`,
      tables,
    );
    for (const { relname } of existing) await db.all(`SELECT 1 FROM ${relname} LIMIT 0`);
  }
  const present = await columnsOf(db, tables);
  const missing: string[] = [];
  for (const table of tables) {
    const have = present.get(table);
    if (!have || have.size === 0) {
      missing.push(`table ${table}`);
      continue;
    }
    const lacking = OPENALGO_COLUMNS[table].required.filter((c) => !have.has(c));
    if (lacking.length > 0) missing.push(`${table}.${lacking.join(`, ${table}.`)}`);
  }
  if (missing.length > 0) {
    throw new TickcastError(
      ErrorCode.DATABASE_SCHEMA,
      `DATABASE_URL (${db.where}) is not OpenAlgo's database: it lacks ${missing.join('; ')}. ` +
        "Point DATABASE_URL at the database OpenAlgo's .env names (OpenAlgo creates these tables at its first start)",
    );
  }
  // Reading the very columns tickcast uses proves the role may read them (column grants too).
  for (const table of tables) await db.all(`SELECT ${OPENALGO_COLUMNS[table].required.join(', ')} FROM ${table} LIMIT 1`);
  const columns = Object.fromEntries(tables.map((t) => [t, present.get(t)!])) as unknown as Record<OpenAlgoTable, ReadonlySet<string>>;
  return { columns };
}

async function columnsOf(db: OpenAlgoDb, tables: readonly OpenAlgoTable[]): Promise<Map<string, Set<string>>> {
  const found = new Map<string, Set<string>>();
  if (db.url.kind === 'sqlite') {
    for (const table of tables) {
      const rows = await db.all<{ name: string }>(`SELECT name FROM pragma_table_info('${table}')`);
      found.set(table, new Set(rows.map((r) => r.name)));
    }
    return found;
  }
  const rows = await db.all<{ table_name: string; column_name: string }>(
    `SELECT table_name, column_name FROM information_schema.columns
     WHERE table_schema = current_schema() AND table_name IN (${tables.map(() => '?').join(', ')})`,
    tables,
  );
  for (const row of rows) {
    let set = found.get(row.table_name);
    if (!set) found.set(row.table_name, (set = new Set()));
    set.add(row.column_name);
  }
  return found;
}

// ---------------------------------------------------------------------------------------------

/** A synchronous read here blocks the event loop while OpenAlgo commits: keep the wait short. */
const SQLITE_BUSY_TIMEOUT_MS = 1000;

class SqliteOpenAlgoDb implements OpenAlgoDb {
  readonly where: string;
  readonly #statements = new Map<string, BetterSqlite3.Statement>();

  private constructor(
    readonly url: SqliteDatabaseUrl,
    private readonly db: BetterSqlite3.Database,
  ) {
    this.where = url.display;
  }

  static open(url: SqliteDatabaseUrl): SqliteOpenAlgoDb {
    let db: BetterSqlite3.Database | undefined;
    try {
      db = new BetterSqlite3(url.file, { readonly: true, fileMustExist: true, timeout: SQLITE_BUSY_TIMEOUT_MS });
      db.pragma('query_only = ON');
      db.prepare('SELECT count(*) FROM sqlite_schema').get(); // reads the header: not a database fails here
      return new SqliteOpenAlgoDb(url, db);
    } catch (error) {
      db?.close();
      throw explainSqlite(url, error, true);
    }
  }

  async all<T extends object>(sql: string, params: readonly unknown[] = []): Promise<T[]> {
    try {
      let statement = this.#statements.get(sql);
      if (!statement) this.#statements.set(sql, (statement = this.db.prepare(sql)));
      return statement.all(...params) as T[];
    } catch (error) {
      // A statement prepared against a table OpenAlgo since dropped stays broken: prepare again.
      this.#statements.delete(sql);
      throw explainSqlite(this.url, error, false);
    }
  }

  changeCounter(): number {
    return this.db.pragma('data_version', { simple: true }) as number;
  }

  async close(): Promise<void> {
    if (this.db.open) this.db.close();
  }
}

function explainSqlite(url: SqliteDatabaseUrl, error: unknown, opening: boolean): TickcastError {
  if (error instanceof TickcastError) return error;
  const code = String((error as { code?: unknown }).code ?? '');
  const message = error instanceof Error ? error.message : String(error);
  const where = `DATABASE_URL (${url.display})`;
  if (opening && (code === 'SQLITE_CANTOPEN' || /unable to open|does not exist/i.test(message))) {
    return new TickcastError(
      ErrorCode.CONFIG_INVALID,
      `${where}: cannot open ${url.file} (${message}); sqlite:/// is followed by a path relative to the working directory, sqlite://// by an absolute one`,
    );
  }
  if (code === 'SQLITE_NOTADB' || code.startsWith('SQLITE_CORRUPT')) {
    return new TickcastError(ErrorCode.CONFIG_INVALID, `${where}: ${url.file} is not a readable SQLite database (${message})`);
  }
  if (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED')) {
    return new TickcastError(ErrorCode.DATABASE_UNREACHABLE, `${where}: ${url.file} is locked by a writer (OpenAlgo) for longer than ${SQLITE_BUSY_TIMEOUT_MS} ms; try again`);
  }
  if (/no such (table|column)/i.test(message)) {
    return new TickcastError(ErrorCode.DATABASE_SCHEMA, `${where}: ${message} (is OpenAlgo replacing the table just now?)`);
  }
  return new TickcastError(opening ? ErrorCode.DATABASE_UNREACHABLE : ErrorCode.STORE_FAILED, `${where}: ${message}`);
}

// ---------------------------------------------------------------------------------------------

const PG_POOL_MAX = 4;
const PG_CONNECT_TIMEOUT_S = 5;
const PG_STATEMENT_TIMEOUT_MS = 10_000;
/** After the server was found unreachable, fail at once for this long instead of each caller
 * waiting for its own connection timeout. */
const PG_RETRY_AFTER_MS = 1000;

const PG_UNREACHABLE = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'ETIMEDOUT', 'ECONNRESET', 'EHOSTUNREACH', 'ENETUNREACH', 'EPIPE', 'ENOENT', '57P01', '57P02', '57P03', '53300']);

class PostgresOpenAlgoDb implements OpenAlgoDb {
  readonly where: string;
  #down: { until: number; error: TickcastError } | undefined;

  private constructor(
    readonly url: ServerDatabaseUrl,
    private readonly pool: Pool,
  ) {
    this.where = url.display;
  }

  static async open(url: ServerDatabaseUrl): Promise<PostgresOpenAlgoDb> {
    // Loaded only when DATABASE_URL names PostgreSQL.
    const { default: pg } = await import('pg');
    const config: PoolConfig = {
      host: url.host,
      port: url.port,
      database: url.database,
      max: PG_POOL_MAX,
      idleTimeoutMillis: 30_000,
      connectionTimeoutMillis: (url.connectTimeoutSeconds ?? PG_CONNECT_TIMEOUT_S) * 1000,
      application_name: 'tickcast',
      // Belt and braces: even a statement that tried to write would be refused by the server.
      options: `-c default_transaction_read_only=on -c statement_timeout=${PG_STATEMENT_TIMEOUT_MS}`,
      ...(url.user !== undefined ? { user: url.user } : {}),
      ...(url.password !== undefined ? { password: url.password } : {}),
      ...(url.sslmode === 'require' ? { ssl: { rejectUnauthorized: false } } : {}),
      ...(url.sslmode === 'verify-ca' ? { ssl: { rejectUnauthorized: true, checkServerIdentity: () => undefined } } : {}),
      ...(url.sslmode === 'verify-full' ? { ssl: { rejectUnauthorized: true } } : {}),
    };
    const pool = new pg.Pool(config);
    // An idle pooled connection the server closed: the pool drops it and the next query reconnects.
    pool.on('error', () => undefined);
    const db = new PostgresOpenAlgoDb(url, pool);
    try {
      await db.all('SELECT 1 AS ok');
    } catch (error) {
      await db.close();
      throw error;
    }
    return db;
  }

  async all<T extends object>(sql: string, params: readonly unknown[] = []): Promise<T[]> {
    const down = this.#down;
    if (down && Date.now() < down.until) throw down.error;
    try {
      const result = await this.pool.query(toDollarParams(sql), params as unknown[]);
      this.#down = undefined;
      return result.rows as T[];
    } catch (error) {
      const explained = explainPostgres(this.url, error);
      if (explained.code === ErrorCode.DATABASE_UNREACHABLE) this.#down = { until: Date.now() + PG_RETRY_AFTER_MS, error: explained };
      throw explained;
    }
  }

  changeCounter(): undefined {
    return undefined;
  }

  async close(): Promise<void> {
    await this.pool.end().catch(() => undefined);
  }
}

/** `?` placeholders → `$1, $2…` (the SQL here has no `?` inside string literals). */
function toDollarParams(sql: string): string {
  let n = 0;
  return sql.replace(/\?/g, () => `$${++n}`);
}

function explainPostgres(url: ServerDatabaseUrl, error: unknown): TickcastError {
  if (error instanceof TickcastError) return error;
  const code = String((error as { code?: unknown }).code ?? '');
  const message = error instanceof Error ? error.message : String(error);
  const where = `DATABASE_URL (${url.display})`;
  const address = serverAddress(url);
  if (PG_UNREACHABLE.has(code) || code.startsWith('08') || (code === '' && /timeout|terminated|connect/i.test(message))) {
    return new TickcastError(
      ErrorCode.DATABASE_UNREACHABLE,
      `${where}: the PostgreSQL server at ${address} cannot be reached (${message || code}); check that it runs and accepts connections from this host`,
    );
  }
  if (code === '28P01' || code === '28000') {
    return new TickcastError(ErrorCode.CONFIG_INVALID, `${where}: the server at ${address} refused the login (${message}); check the user and password in DATABASE_URL`);
  }
  if (code === '3D000') {
    return new TickcastError(ErrorCode.CONFIG_INVALID, `${where}: the server at ${address} has no database "${url.database}" (${message})`);
  }
  if (code === '42501') {
    return new TickcastError(
      ErrorCode.DATABASE_SCHEMA,
      `${where}: ${message}; tickcast needs SELECT on api_keys, auth and symtoken (GRANT SELECT ON api_keys, auth, symtoken TO ${url.user ?? 'its role'})`,
    );
  }
  if (code === '42P01' || code === '42703') {
    return new TickcastError(ErrorCode.DATABASE_SCHEMA, `${where}: ${message} (is OpenAlgo replacing the table just now?)`);
  }
  return new TickcastError(ErrorCode.STORE_FAILED, `${where}: ${message}`);
}
