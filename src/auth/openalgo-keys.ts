/**
 * API keys read from OpenAlgo's own `api_keys` and `auth` tables (DATABASE_URL), for the same
 * verifier that reads tickcast's own store (key-verifier.ts). Nothing here writes: keys are
 * created, replaced and deleted in OpenAlgo, and take effect here at the next authentication:
 *
 * - SQLite: `revision()` is the connection's `data_version`, which moves on every commit by
 *   another connection, read without I/O; a cached key is re-read only after such a commit.
 * - PostgreSQL has no such counter, so `revision()` is a digest of the (small) `api_keys` rows
 *   and the users' brokers, read in one query per authentication; concurrent authentications
 *   share one read.
 */
import crypto from 'node:crypto';
import { ErrorCode, TickcastError } from '../errors.js';
import { type OpenAlgoDb, isTrue } from '../store/openalgo-db.js';
import { type ApiKeyListing, type ApiKeyRow, type CreatedApiKey, type InstanceKeys, fromSqlTimestamp } from './api-keys.js';
import { fernetDecrypt } from './fernet.js';
import type { KeyRowSource } from './key-verifier.js';

/** What a command that would write OpenAlgo's tables is told (exit 2). */
export const KEYS_MANAGED_BY_OPENALGO =
  "API keys are managed by OpenAlgo while DATABASE_URL points at its database: create, replace or delete them on OpenAlgo's API key page (tickcast reads them from there, never writes them)";

interface KeyRecord {
  id: number | string;
  user_id: string;
  api_key_hash: string;
  api_key_encrypted: string;
}

const KEY_COLUMNS = 'id, user_id, api_key_hash, api_key_encrypted';

function toRow(r: KeyRecord): ApiKeyRow {
  return { id: Number(r.id), user: r.user_id, hash: r.api_key_hash, encrypted: r.api_key_encrypted };
}

export interface OpenAlgoKeyStoreOptions {
  db: OpenAlgoDb;
  /** From deriveFernetKey(API_KEY_PEPPER, FERNET_SALT): for `keys list` previews. */
  fernetKey: Buffer;
}

export class OpenAlgoKeyStore implements KeyRowSource, InstanceKeys {
  readonly #db: OpenAlgoDb;
  readonly #fernetKey: Buffer;
  #count = 0;
  #revisionRead: Promise<string> | undefined;

  constructor({ db, fernetKey }: OpenAlgoKeyStoreOptions) {
    this.#db = db;
    this.#fernetKey = fernetKey;
  }

  async rows(): Promise<ApiKeyRow[]> {
    const rows = (await this.#db.all<KeyRecord>(`SELECT ${KEY_COLUMNS} FROM api_keys`)).map(toRow);
    this.#count = rows.length;
    return rows;
  }

  async rowFor(user: string): Promise<ApiKeyRow | null> {
    const [row] = await this.#db.all<KeyRecord>(`SELECT ${KEY_COLUMNS} FROM api_keys WHERE user_id = ?`, [user]);
    return row ? toRow(row) : null;
  }

  /** OpenAlgo's get_broker_name: auth.broker unless the user's auth row is revoked. */
  async brokerFor(user: string): Promise<string | null> {
    const [row] = await this.#db.all<{ broker: string | null; is_revoked: unknown }>('SELECT broker, is_revoked FROM auth WHERE name = ?', [user]);
    if (!row || isTrue(row.is_revoked)) return null;
    return row.broker || null;
  }

  revision(): string | Promise<string> {
    const counter = this.#db.changeCounter();
    if (counter !== undefined) return `v${counter}`;
    // One read for everyone authenticating at this moment.
    return (this.#revisionRead ??= this.#digest().finally(() => (this.#revisionRead = undefined)));
  }

  /** Keys counted at the last read (start, or the last change seen), for the start summary. */
  count(): number {
    return this.#count;
  }

  /** Reads the number of keys now. */
  async refreshCount(): Promise<number> {
    const [row] = await this.#db.all<{ n: number | string }>('SELECT COUNT(*) AS n FROM api_keys');
    this.#count = Number(row?.n ?? 0);
    return this.#count;
  }

  async create(_user: string, _broker: string): Promise<CreatedApiKey> {
    throw new TickcastError(ErrorCode.MANAGED_BY_OPENALGO, KEYS_MANAGED_BY_OPENALGO);
  }

  /** `tickcast keys list` on OpenAlgo's database. */
  async list(): Promise<ApiKeyListing[]> {
    const keys = await this.#db.all<{ user_id: string; api_key_encrypted: string; created_at?: unknown }>(
      'SELECT user_id, api_key_encrypted, created_at FROM api_keys ORDER BY user_id',
    );
    const auth = await this.#db.all<{ name: string; broker: string | null; is_revoked: unknown }>('SELECT name, broker, is_revoked FROM auth');
    const brokers = new Map(auth.map((a) => [a.name, isTrue(a.is_revoked) ? null : a.broker]));
    this.#count = keys.length;
    return keys.map((k) => {
      const key = fernetDecrypt(this.#fernetKey, k.api_key_encrypted);
      return {
        user: k.user_id,
        broker: brokers.get(k.user_id) ?? null,
        createdAt: fromSqlTimestamp(k.created_at),
        keyPreview: key === null ? null : `${key.slice(0, 8)}…`,
      };
    });
  }

  async #digest(): Promise<string> {
    const keys = await this.#db.all<KeyRecord>(`SELECT ${KEY_COLUMNS} FROM api_keys ORDER BY id`);
    const auth = await this.#db.all<{ name: string; broker: string | null; is_revoked: unknown }>('SELECT name, broker, is_revoked FROM auth ORDER BY id');
    this.#count = keys.length;
    const hash = crypto.createHash('sha256');
    for (const k of keys) hash.update(`${k.id}\u0000${k.user_id}\u0000${k.api_key_hash}\u0000${k.api_key_encrypted}\u0001`);
    hash.update('\u0002');
    for (const a of auth) hash.update(`${a.name}\u0000${a.broker ?? ''}\u0000${isTrue(a.is_revoked) ? 1 : 0}\u0001`);
    return hash.digest('base64');
  }
}
