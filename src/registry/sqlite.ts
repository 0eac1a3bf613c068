/**
 * The SQLite registry: one file shared by every tickcast process of a user on a host. Many
 * processes open it at once, so it runs in WAL mode with a busy timeout, and every change that
 * must not interleave with another process's (claim, update, prune) runs in a `BEGIN IMMEDIATE`
 * transaction: the write lock is taken before anything is read, so two processes racing for a
 * name or a resource are serialised and only the first can win.
 */
import fs from 'node:fs';
import path from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { ErrorCode, TickcastError } from '../errors.js';
import { migrate, type Database, type Migration } from '../store/database.js';
import { withStorageAdvice } from '../store/storage-advice.js';
import { describeEntry, liveness, storedEntry, type Liveness, type RegistryOptions } from './liveness.js';
import type { ClaimResult, Endpoints, ListedEntry, NewEntry, Registry, RegistryEntry, Role } from './registry.js';

export interface SqliteRegistryOptions extends RegistryOptions {
  /** How long to wait for another process's write lock before failing. Default 5000 ms. */
  busyTimeoutMs?: number;
  /**
   * The same for heartbeats, which run on a serving process's event loop: better-sqlite3 blocks
   * while it waits, so a registry locked for long must cost a beat, not seconds of service.
   * A missed beat is retried at the next one (three fit in a TTL). Default 100 ms.
   */
  heartbeatBusyTimeoutMs?: number;
}

const REGISTRY_MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'registry entries and claimed resources',
    up(db) {
      db.exec(`
        CREATE TABLE IF NOT EXISTS registry_entries (
          id TEXT PRIMARY KEY,
          instance TEXT NOT NULL,
          role TEXT NOT NULL,
          name TEXT NOT NULL,
          pid INTEGER NOT NULL,
          host TEXT NOT NULL,
          endpoints TEXT NOT NULL DEFAULT '{}',
          started_at INTEGER NOT NULL,
          heartbeat_at INTEGER NOT NULL,
          UNIQUE (instance, role, name)
        );
        CREATE TABLE IF NOT EXISTS registry_resources (
          resource TEXT PRIMARY KEY,
          entry_id TEXT NOT NULL REFERENCES registry_entries (id) ON DELETE CASCADE
        );
        CREATE INDEX IF NOT EXISTS idx_registry_resources_entry ON registry_resources (entry_id);
      `);
    },
  },
];

interface EntryRow {
  id: string;
  instance: string;
  role: string;
  name: string;
  pid: number;
  host: string;
  endpoints: string;
  started_at: number;
  heartbeat_at: number;
}

const ROLES: readonly string[] = ['gateway', 'adapter'] satisfies Role[];
const ENDPOINT_KEYS = ['ws', 'bus', 'control'] as const;

/** Endpoints from stored JSON, or undefined when the text is not what we write. */
function parseEndpoints(text: unknown): Endpoints | undefined {
  if (typeof text !== 'string') return undefined;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined;
  const endpoints: Endpoints = {};
  for (const key of ENDPOINT_KEYS) {
    const url = (value as Record<string, unknown>)[key];
    if (url === undefined) continue;
    if (typeof url !== 'string') return undefined;
    endpoints[key] = url;
  }
  return endpoints;
}

/**
 * An entry from its row. A row we cannot make sense of (edited by hand, written by a broken
 * version) comes back with `valid: false`: it is listed as stale and reaped, never fatal.
 */
function toEntry(row: EntryRow, resources: string[]): { entry: RegistryEntry; valid: boolean } {
  const endpoints = parseEndpoints(row.endpoints);
  const entry: RegistryEntry = {
    id: String(row.id),
    instance: String(row.instance),
    role: row.role as Role,
    name: String(row.name),
    pid: Number(row.pid),
    host: String(row.host),
    endpoints: endpoints ?? {},
    resources,
    startedAt: Number(row.started_at),
    heartbeatAt: Number(row.heartbeat_at),
  };
  const valid = endpoints !== undefined && ROLES.includes(row.role) && Number.isSafeInteger(entry.pid) && Number.isFinite(entry.heartbeatAt);
  return { entry, valid };
}

const strip = ({ alive: _alive, ...entry }: ListedEntry): RegistryEntry => entry;

function causeOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Opens the file (creating it and its directory, private to the user) and brings the schema up to date. */
function openFile(file: string, busyTimeoutMs: number): Database {
  let db: Database | undefined;
  try {
    fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
    const isNew = !fs.existsSync(file);
    db = new BetterSqlite3(file, { timeout: busyTimeoutMs });
    // pids, hosts and endpoints of the user's processes: nobody else's business.
    if (isNew) fs.chmodSync(file, 0o600);
    db.pragma(`busy_timeout = ${busyTimeoutMs}`);
    const mode = db.pragma('journal_mode = WAL', { simple: true });
    if (String(mode).toLowerCase() !== 'wal') throw new Error(`could not enable WAL (journal_mode is ${String(mode)})`);
    db.pragma('synchronous = NORMAL'); // durable enough with WAL, much faster commits
    db.pragma('foreign_keys = ON');
    migrate(db, 'registry', REGISTRY_MIGRATIONS);
    return db;
  } catch (err) {
    try {
      db?.close();
    } catch {
      // already failing; the original cause is what matters
    }
    throw new TickcastError(ErrorCode.STORE_FAILED, withStorageAdvice(`cannot open registry database ${file}: ${causeOf(err)}`, err, 'registry', file));
  }
}

export class SqliteRegistry implements Registry {
  readonly url: string;

  private constructor(
    private readonly db: Database,
    private readonly file: string,
    private readonly live: Liveness,
    private readonly busyTimeoutMs: number,
    private readonly heartbeatBusyTimeoutMs: number,
  ) {
    this.url = `sqlite:${file}`;
  }

  /** Opens (creating if needed) the registry file; a corrupt or locked file is STORE_FAILED naming it. */
  static open(file: string, options: SqliteRegistryOptions): SqliteRegistry {
    const absolute = path.resolve(file);
    const live = liveness(options);
    const busyTimeoutMs = options.busyTimeoutMs ?? 5000;
    return new SqliteRegistry(openFile(absolute, busyTimeoutMs), absolute, live, busyTimeoutMs, Math.min(busyTimeoutMs, options.heartbeatBusyTimeoutMs ?? 100));
  }

  claim(entry: NewEntry): Promise<ClaimResult> {
    return this.run('claim', () => this.db.transaction(() => this.claimLocked(entry)).immediate());
  }

  update(id: string, change: { endpoints?: Endpoints; resources?: string[] }): Promise<boolean> {
    return this.run('update', () => this.db.transaction(() => this.updateLocked(id, change)).immediate());
  }

  heartbeat(id: string, entry?: RegistryEntry): Promise<boolean> {
    // An entry still present owns its name and resources (claims reap before they take), so a
    // late heartbeat simply revives it; only a reaped entry has to be claimed again. With the
    // owner's copy, its endpoints, pid and host are written again too (resources are rows that
    // only claims and updates change).
    return this.run('heartbeat', () =>
      this.waitingAtMost(this.heartbeatBusyTimeoutMs, () => {
        const now = this.live.clock.now();
        const result =
          entry === undefined || entry.id !== id
            ? this.db.prepare('UPDATE registry_entries SET heartbeat_at = ? WHERE id = ?').run(now, id)
            : this.db
                .prepare('UPDATE registry_entries SET heartbeat_at = ?, endpoints = ?, pid = ?, host = ? WHERE id = ?')
                .run(now, JSON.stringify(entry.endpoints), entry.pid, entry.host, id);
        return result.changes > 0;
      }),
    );
  }

  release(id: string): Promise<void> {
    return this.run('release', () => this.db.transaction(() => this.remove(id)).immediate());
  }

  list(): Promise<ListedEntry[]> {
    return this.run('list', () => this.readAll());
  }

  async find(instance: string, role?: Role): Promise<RegistryEntry[]> {
    const all = await this.list();
    return all.filter((e) => e.alive && e.instance === instance && (role === undefined || e.role === role)).map(strip);
  }

  holderOf(resource: string): Promise<RegistryEntry | undefined> {
    return this.run('holderOf', () => {
      const holder = this.holderRow(resource);
      return holder && holder.alive ? strip(holder) : undefined;
    });
  }

  prune(): Promise<RegistryEntry[]> {
    return this.run('prune', () => this.db.transaction(() => this.reapStale()).immediate());
  }

  async close(): Promise<void> {
    if (this.db.open) this.db.close();
  }

  /** Runs one operation, turning any database failure into STORE_FAILED naming the file and what to do. */
  private run<T>(operation: string, fn: () => T): Promise<T> {
    try {
      return Promise.resolve(fn());
    } catch (err) {
      if (err instanceof TickcastError) return Promise.reject(err);
      const message = withStorageAdvice(`registry ${this.file}: ${operation} failed: ${causeOf(err)}`, err, 'registry', this.file);
      return Promise.reject(new TickcastError(ErrorCode.STORE_FAILED, message));
    }
  }

  /** Runs `fn` with a shorter wait for locks, then restores the usual one. */
  private waitingAtMost<T>(ms: number, fn: () => T): T {
    this.db.pragma(`busy_timeout = ${ms}`);
    try {
      return fn();
    } finally {
      this.db.pragma(`busy_timeout = ${this.busyTimeoutMs}`);
    }
  }

  // The methods below run inside the caller's transaction.

  private claimLocked(entry: NewEntry): ClaimResult {
    this.reapStale();
    if (this.db.prepare('SELECT 1 FROM registry_entries WHERE id = ?').get(entry.id)) {
      throw new TickcastError(ErrorCode.STORE_FAILED, `registry ${this.file}: an entry with id ${entry.id} is already registered`);
    }
    const sameName = this.db
      .prepare('SELECT id FROM registry_entries WHERE instance = ? AND role = ? AND name = ?')
      .get(entry.instance, entry.role, entry.name) as { id: string } | undefined;
    if (sameName) return { ok: false, conflict: 'name', holder: strip(this.readOne(sameName.id)!) };
    const resources = [...new Set(entry.resources)];
    for (const resource of resources) {
      const holder = this.holderRow(resource);
      if (holder) return { ok: false, conflict: 'resource', resource, holder: strip(holder) };
    }
    const stored = storedEntry(entry, resources, this.live.clock.now());
    this.db
      .prepare(
        `INSERT INTO registry_entries (id, instance, role, name, pid, host, endpoints, started_at, heartbeat_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      )
      .run(stored.id, stored.instance, stored.role, stored.name, stored.pid, stored.host, JSON.stringify(stored.endpoints), stored.startedAt, stored.heartbeatAt);
    const insert = this.db.prepare('INSERT INTO registry_resources (resource, entry_id) VALUES (?, ?)');
    for (const resource of resources) insert.run(resource, stored.id);
    return { ok: true, entry: stored };
  }

  /**
   * Merges `endpoints` into the entry's and adds `resources` (ones it already holds are kept).
   * A resource held by another live entry aborts the whole update with PORT_IN_USE naming the
   * holder; a stale holder is reaped first, as in claim.
   */
  private updateLocked(id: string, change: { endpoints?: Endpoints; resources?: string[] }): boolean {
    const current = this.readOne(id);
    if (!current) return false;
    const insert = this.db.prepare('INSERT INTO registry_resources (resource, entry_id) VALUES (?, ?)');
    for (const resource of new Set(change.resources ?? [])) {
      if (current.resources.includes(resource)) continue;
      const holder = this.holderRow(resource);
      if (holder?.alive) {
        throw new TickcastError(ErrorCode.PORT_IN_USE, `${resource} is already held by ${describeEntry(holder)}`);
      }
      if (holder) this.remove(holder.id);
      insert.run(resource, id);
    }
    if (change.endpoints) {
      const endpoints = { ...current.endpoints, ...change.endpoints };
      this.db.prepare('UPDATE registry_entries SET endpoints = ? WHERE id = ?').run(JSON.stringify(endpoints), id);
    }
    return true;
  }

  private reapStale(): RegistryEntry[] {
    const stale = this.readAll().filter((e) => !e.alive);
    for (const entry of stale) this.remove(entry.id);
    return stale.map(strip);
  }

  private remove(id: string): void {
    this.db.prepare('DELETE FROM registry_resources WHERE entry_id = ?').run(id);
    this.db.prepare('DELETE FROM registry_entries WHERE id = ?').run(id);
  }

  private holderRow(resource: string): ListedEntry | undefined {
    const row = this.db.prepare('SELECT entry_id FROM registry_resources WHERE resource = ?').get(resource) as { entry_id: string } | undefined;
    return row ? this.readOne(row.entry_id) : undefined;
  }

  private readOne(id: string): ListedEntry | undefined {
    const row = this.db.prepare('SELECT * FROM registry_entries WHERE id = ?').get(id) as EntryRow | undefined;
    if (!row) return undefined;
    const resources = this.db.prepare('SELECT resource FROM registry_resources WHERE entry_id = ? ORDER BY rowid').pluck().all(id) as string[];
    return this.listed(row, resources);
  }

  private readAll(): ListedEntry[] {
    const rows = this.db.prepare('SELECT * FROM registry_entries ORDER BY started_at, rowid').all() as EntryRow[];
    const resources = new Map<string, string[]>();
    const pairs = this.db.prepare('SELECT entry_id, resource FROM registry_resources ORDER BY rowid').all() as { entry_id: string; resource: string }[];
    for (const { entry_id, resource } of pairs) {
      const held = resources.get(entry_id);
      if (held) held.push(resource);
      else resources.set(entry_id, [resource]);
    }
    return rows.map((row) => this.listed(row, resources.get(row.id) ?? []));
  }

  private listed(row: EntryRow, resources: string[]): ListedEntry {
    const { entry, valid } = toEntry(row, resources);
    return { ...entry, alive: valid && this.live.isAlive(entry) };
  }
}
