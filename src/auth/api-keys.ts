/**
 * API keys in OpenAlgo's `api_keys` table: Argon2id(key + pepper) to verify, Fernet(key) to show
 * a preview. One key per user (user_id is UNIQUE), so a new key replaces the old one. Plaintext
 * keys leave this module only from create().
 */
import crypto from 'node:crypto';
import { hash, verify, type Algorithm } from '@node-rs/argon2';
import type { Clock } from '../clock.js';
import { systemClock } from '../clock.js';
import { ErrorCode, TickcastError } from '../errors.js';
import type { Database } from '../store/database.js';
import { fernetDecrypt, fernetEncrypt } from './fernet.js';

/** argon2-cffi's PasswordHasher defaults since 21.2 (RFC 9106 low-memory), as OpenAlgo hashes. */
export const OPENALGO_ARGON2 = {
  algorithm: 2 as Algorithm, // Algorithm.Argon2id: an ambient const enum, unreadable under isolatedModules
  timeCost: 3,
  memoryCost: 65536,
  parallelism: 4,
  outputLen: 32,
} as const;

/** PHC string of Argon2id(apiKey + pepper); runs on the libuv thread pool. */
export function hashApiKey(apiKey: string, pepper: string): Promise<string> {
  return hash(apiKey + pepper, OPENALGO_ARGON2);
}

/** Whether `apiKey` matches a stored PHC hash (parameters come from the hash itself). Off the
 * event loop; an aborted call rejects. Malformed hashes count as a mismatch. */
export async function verifyApiKeyHash(
  phcHash: string,
  apiKey: string,
  pepper: string,
  signal?: AbortSignal,
): Promise<boolean> {
  try {
    return await verify(phcHash, apiKey + pepper, undefined, signal);
  } catch (err) {
    if (signal?.aborted) throw err;
    return false;
  }
}

export interface CreatedApiKey {
  apiKey: string;
  user: string;
  broker: string;
  /** ISO-8601 UTC. */
  createdAt: string;
  /** The user had a key, which no longer works. */
  replaced: boolean;
}

export interface ApiKeyListing {
  user: string;
  /** The user's broker (`auth.broker`), null without a live auth row. */
  broker: string | null;
  createdAt: string | null;
  /** First 8 characters and an ellipsis; null when the row does not decrypt with our key. */
  keyPreview: string | null;
}

/** A stored row as the verifier needs it: never the plaintext key. */
export interface ApiKeyRow {
  id: number;
  user: string;
  hash: string;
  encrypted: string;
}

/** What a running instance offers about its keys: the count for its summary, and creation
 * (which a store managed by OpenAlgo refuses). */
export interface InstanceKeys {
  count(): number;
  create(user: string, broker: string): Promise<CreatedApiKey>;
}

export interface ApiKeyStoreOptions {
  db: Database;
  pepper: string;
  /** From deriveFernetKey(pepper, FERNET_SALT). */
  fernetKey: Buffer;
  clock?: Clock;
}

const USER_MAX = 255;
const BROKER_PATTERN = /^[A-Za-z0-9_-]{1,20}$/; // auth.broker is VARCHAR(20)

const ROW_COLUMNS = 'id, user_id AS user, api_key_hash AS hash, api_key_encrypted AS encrypted';

/** The statements, prepared once per store (tables must exist: open with openDatabase). */
function prepare(db: Database) {
  return {
    hasKey: db.prepare('SELECT 1 FROM api_keys WHERE user_id = ?'),
    upsertKey: db.prepare(
      `INSERT INTO api_keys (user_id, api_key_hash, api_key_encrypted, created_at, order_mode)
       VALUES (?, ?, ?, ?, 'auto')
       ON CONFLICT (user_id) DO UPDATE SET api_key_hash = excluded.api_key_hash,
         api_key_encrypted = excluded.api_key_encrypted, created_at = excluded.created_at`,
    ),
    // OpenAlgo's get_broker_name reads the broker from auth; keep any broker session it holds.
    upsertAuth: db.prepare(
      `INSERT INTO auth (name, auth, broker, is_revoked) VALUES (?, '', ?, 0)
       ON CONFLICT (name) DO UPDATE SET broker = excluded.broker, is_revoked = 0`,
    ),
    list: db.prepare(
      `SELECT k.user_id AS user, k.api_key_encrypted AS encrypted, k.created_at AS createdAt,
              CASE WHEN COALESCE(a.is_revoked, 0) = 0 THEN a.broker END AS broker
       FROM api_keys k LEFT JOIN auth a ON a.name = k.user_id
       ORDER BY k.user_id`,
    ),
    revoke: db.prepare('DELETE FROM api_keys WHERE user_id = ?'),
    broker: db.prepare('SELECT broker FROM auth WHERE name = ? AND COALESCE(is_revoked, 0) = 0'),
    count: db.prepare('SELECT COUNT(*) AS n FROM api_keys'),
    rows: db.prepare(`SELECT ${ROW_COLUMNS} FROM api_keys`),
    rowFor: db.prepare(`SELECT ${ROW_COLUMNS} FROM api_keys WHERE user_id = ?`),
    totalChanges: db.prepare('SELECT total_changes() AS n'),
  };
}

export class ApiKeyStore implements InstanceKeys {
  readonly #db: Database;
  readonly #sql: ReturnType<typeof prepare>;
  readonly #pepper: string;
  readonly #fernetKey: Buffer;
  readonly #clock: Clock;

  constructor(options: ApiKeyStoreOptions) {
    this.#db = options.db;
    this.#sql = prepare(options.db);
    this.#pepper = options.pepper;
    this.#fernetKey = options.fernetKey;
    this.#clock = options.clock ?? systemClock;
  }

  /** A new key for `user` on `broker`, replacing the user's previous key if any. */
  async create(user: string, broker: string): Promise<CreatedApiKey> {
    checkUser(user);
    if (!BROKER_PATTERN.test(broker)) {
      throw new TickcastError(ErrorCode.USAGE, `broker must be 1-20 letters, digits, '-' or '_' (got "${broker}")`);
    }
    const apiKey = crypto.randomBytes(32).toString('hex'); // OpenAlgo's secrets.token_hex(32)
    const keyHash = await hashApiKey(apiKey, this.#pepper);
    const encrypted = fernetEncrypt(this.#fernetKey, apiKey);
    const now = new Date(this.#clock.now());
    const sql = this.#sql;

    const replaced = this.#db
      .transaction(() => {
        const had = sql.hasKey.get(user) !== undefined;
        sql.upsertKey.run(user, keyHash, encrypted, toSqlTimestamp(now));
        sql.upsertAuth.run(user, broker);
        return had;
      })
      .immediate();

    return { apiKey, user, broker, createdAt: toIso(now), replaced };
  }

  list(): ApiKeyListing[] {
    const rows = this.#sql.list.all() as { user: string; encrypted: string; createdAt: unknown; broker: string | null }[];
    return rows.map((r) => {
      const key = fernetDecrypt(this.#fernetKey, r.encrypted);
      return {
        user: r.user,
        broker: r.broker ?? null,
        createdAt: fromSqlTimestamp(r.createdAt),
        keyPreview: key === null ? null : `${key.slice(0, 8)}…`,
      };
    });
  }

  /** Deletes the user's key (their auth row and broker session stay). False if they had none. */
  revoke(user: string): boolean {
    return this.#sql.revoke.run(user).changes > 0;
  }

  /** OpenAlgo's get_broker_name for a user: auth.broker unless the auth row is revoked. */
  brokerFor(user: string): string | null {
    const row = this.#sql.broker.get(user) as { broker: string | null } | undefined;
    return row?.broker || null;
  }

  count(): number {
    return (this.#sql.count.get() as { n: number }).n;
  }

  rows(): ApiKeyRow[] {
    return this.#sql.rows.all() as ApiKeyRow[];
  }

  rowFor(user: string): ApiKeyRow | null {
    const row = this.#sql.rowFor.get(user) as ApiKeyRow | undefined;
    return row ?? null;
  }

  /**
   * Changes whenever the database may have changed: `PRAGMA data_version` moves on commits by
   * other connections (OpenAlgo, the CLI), `total_changes()` on writes through this one.
   */
  revision(): string {
    const version = this.#db.pragma('data_version', { simple: true });
    const own = (this.#sql.totalChanges.get() as { n: number }).n;
    return `${String(version)}:${own}`;
  }
}

function checkUser(user: string): void {
  if (typeof user !== 'string' || user.trim() === '' || user.length > USER_MAX || /[\u0000-\u001f\u007f]/.test(user)) {
    throw new TickcastError(ErrorCode.USAGE, `user must be 1-${USER_MAX} printable characters`);
  }
}

/** SQLAlchemy's SQLite DATETIME text ('YYYY-MM-DD HH:MM:SS.ffffff', UTC as CURRENT_TIMESTAMP),
 * which OpenAlgo's models parse back. */
function toSqlTimestamp(date: Date): string {
  return `${date.toISOString().slice(0, 19).replace('T', ' ')}.${String(date.getUTCMilliseconds() * 1000).padStart(6, '0')}`;
}

function toIso(date: Date): string {
  return `${date.toISOString().slice(0, 19)}Z`;
}

/** 'YYYY-MM-DD HH:MM:SS[.ffffff]' (UTC) or a Date (a server database's timestamp) → ISO-8601;
 * anything else as it is; null if absent. */
export function fromSqlTimestamp(value: unknown): string | null {
  if (value === null || value === undefined) return null;
  if (value instanceof Date) return Number.isNaN(value.getTime()) ? null : toIso(value);
  const text = String(value);
  const m = /^(\d{4}-\d{2}-\d{2})[ T](\d{2}:\d{2}:\d{2})(?:\.\d+)?$/.exec(text);
  return m ? `${m[1]}T${m[2]}Z` : text;
}
