/**
 * API key → user (and broker), as OpenAlgo's verify_api_key + get_broker_name, but cheaper:
 *
 * - Results are cached under sha256(key) (never the key): valid ones for 10 h, invalid ones for
 *   5 min, as OpenAlgo. Concurrent checks of one uncached key share one lookup.
 * - OpenAlgo runs Argon2 against every row until one matches. Here each row's Fernet copy of its
 *   key is decrypted once (microseconds) into a fingerprint index, so a key costs at most one
 *   Argon2 verify, and an unknown key none. Only rows we cannot decrypt (written under another
 *   pepper/FERNET_SALT) still need the Argon2 scan.
 * - Argon2 runs on libuv's thread pool (@node-rs/argon2's async verify), never on the event loop.
 * - A cached user is re-checked against the table (one indexed read, no Argon2) whenever the
 *   database changed, so a key revoked or replaced by another process stops working at once
 *   instead of after the TTL.
 * - The store may answer synchronously (tickcast's own SQLite store) or asynchronously (OpenAlgo's
 *   database in place, store/openalgo-db.ts). A store that cannot be reached
 *   (DATABASE_UNREACHABLE) makes verify() throw for keys it has not cached, so the client is told
 *   to retry rather than that its key is wrong; cached keys keep being served meanwhile.
 */
import crypto from 'node:crypto';
import type { Clock } from '../clock.js';
import { systemClock } from '../clock.js';
import { ErrorCode, TickcastError } from '../errors.js';
import { silentLogger, type Logger } from '../observability/logger.js';
import type { ApiKeyRow } from './api-keys.js';
import { verifyApiKeyHash } from './api-keys.js';
import { fernetDecrypt } from './fernet.js';

export interface VerifiedKey {
  user: string;
  /** The user's broker, null when their auth row is missing or revoked. */
  broker: string | null;
}

type Awaitable<T> = T | Promise<T>;

/** What the verifier reads from the store: an ApiKeyStore, OpenAlgo's database, or a stub in tests. */
export interface KeyRowSource {
  /** Every api_keys row. */
  rows(): Awaitable<readonly ApiKeyRow[]>;
  rowFor(user: string): Awaitable<ApiKeyRow | null>;
  /** OpenAlgo's get_broker_name: the user's broker, null when the auth row is missing or revoked. */
  brokerFor(user: string): Awaitable<string | null>;
  /** Changes whenever the rows (or the users' brokers) may have changed. */
  revision(): Awaitable<string>;
}

/** A store failure that says the store cannot be reached now (rather than that the key is bad). */
export function isStoreUnreachable(error: unknown): error is TickcastError {
  return error instanceof TickcastError && error.code === ErrorCode.DATABASE_UNREACHABLE;
}

export type HashVerifier = (phcHash: string, apiKey: string, pepper: string, signal?: AbortSignal) => Promise<boolean>;

export interface ApiKeyVerifierOptions {
  store: KeyRowSource;
  pepper: string;
  fernetKey: Buffer;
  clock?: Clock;
  /** OpenAlgo's verified_api_key_cache TTL (36000 s). */
  positiveTtlMs?: number;
  /** OpenAlgo's invalid_api_key_cache TTL (300 s). */
  negativeTtlMs?: number;
  /** Per cache; the oldest entry goes first. */
  maxEntries?: number;
  logger?: Logger;
  /** The Argon2 check; replaceable so tests can count calls. */
  verifyHash?: HashVerifier;
}

/** Real keys are 64 characters; anything this long is not worth hashing. */
const MAX_KEY_LENGTH = 1024;

interface PositiveEntry {
  user: string;
  broker: string | null;
  /** The row's hash when verified: a different one means the key was replaced. */
  rowHash: string;
  /** store.revision() when last confirmed. */
  revision: string;
  expiresAt: number;
}

interface RowIndex {
  revision: string;
  /** api_key_encrypted → sha256 of the key it decrypts to (null: does not decrypt). */
  fingerprints: Map<string, string | null>;
  byFingerprint: Map<string, ApiKeyRow>;
  undecryptable: ApiKeyRow[];
}

export class ApiKeyVerifier {
  readonly #store: KeyRowSource;
  readonly #pepper: string;
  readonly #fernetKey: Buffer;
  readonly #clock: Clock;
  readonly #positiveTtlMs: number;
  readonly #negativeTtlMs: number;
  readonly #maxEntries: number;
  readonly #log: Logger;
  readonly #verifyHash: HashVerifier;

  readonly #positive = new Map<string, PositiveEntry>();
  readonly #negative = new Map<string, number>();
  readonly #inFlight = new Map<string, Promise<VerifiedKey | null>>();
  #index: RowIndex | null = null;
  /** Bumped by invalidation, so a lookup that started before it does not cache its result. */
  #epoch = 0;

  constructor(options: ApiKeyVerifierOptions) {
    this.#store = options.store;
    this.#pepper = options.pepper;
    this.#fernetKey = options.fernetKey;
    this.#clock = options.clock ?? systemClock;
    this.#positiveTtlMs = options.positiveTtlMs ?? 36_000_000;
    this.#negativeTtlMs = options.negativeTtlMs ?? 300_000;
    this.#maxEntries = options.maxEntries ?? 10_000;
    this.#log = options.logger ?? silentLogger();
    this.#verifyHash = options.verifyHash ?? verifyApiKeyHash;
  }

  /**
   * The key's user and broker, or null for anything that is not a valid key. Throws only a
   * DATABASE_UNREACHABLE TickcastError, when the key is not cached and the store cannot be reached.
   */
  async verify(apiKey: unknown): Promise<VerifiedKey | null> {
    if (typeof apiKey !== 'string' || apiKey === '' || apiKey.length > MAX_KEY_LENGTH) return null;
    const fp = fingerprint(apiKey);
    // Taken now: an invalidation that comes while this verify waits on the store wins over it.
    const epoch = this.#epoch;
    const cached = this.#fromCache(fp);
    if (cached !== undefined) {
      const answer = await cached;
      if (answer !== undefined) return answer;
    }

    let pending = this.#inFlight.get(fp);
    if (!pending) {
      pending = this.#lookup(apiKey, fp, epoch).finally(() => this.#inFlight.delete(fp));
      this.#inFlight.set(fp, pending);
    }
    const result = await pending;
    return result && { ...result }; // callers sharing one lookup each get their own object
  }

  /** Forget what is cached for `user` (OpenAlgo's CACHE_INVALIDATE), and every negative entry,
   * as OpenAlgo's invalidate_user_cache does: a key just issued may sit in it. */
  invalidateUser(user: string): void {
    this.#epoch++;
    for (const [fp, entry] of this.#positive) if (entry.user === user) this.#positive.delete(fp);
    this.#negative.clear();
  }

  clear(): void {
    this.#epoch++;
    this.#positive.clear();
    this.#negative.clear();
    this.#index = null;
  }

  /**
   * Caches a key just created (e.g. the development key printed at start) so its first use skips
   * Argon2. Ignored unless the user's stored row really holds this key. Done at once with a store
   * that answers synchronously (tickcast's own).
   */
  prime(apiKey: string, user: string, broker: string | null): void | Promise<void> {
    const row = this.#store.rowFor(user);
    const revision = this.#store.revision();
    if (row instanceof Promise || revision instanceof Promise) {
      return Promise.all([row, revision]).then(([r, v]) => this.#prime(apiKey, user, broker, r, v));
    }
    this.#prime(apiKey, user, broker, row, revision);
  }

  #prime(apiKey: string, user: string, broker: string | null, row: ApiKeyRow | null, revision: string): void {
    if (!row || typeof apiKey !== 'string' || fernetDecrypt(this.#fernetKey, row.encrypted) !== apiKey) {
      this.#log.warn({ user }, 'api key not primed: the stored key for this user differs');
      return;
    }
    const fp = fingerprint(apiKey);
    this.#negative.delete(fp);
    this.#remember(this.#positive, fp, {
      user,
      broker,
      rowHash: row.hash,
      revision,
      expiresAt: this.#clock.now() + this.#positiveTtlMs,
    });
  }

  /**
   * A cached answer (null = known bad), or undefined when the key must be looked up; a promise of
   * either when a cached user must be confirmed against the store first.
   */
  #fromCache(fp: string): VerifiedKey | null | undefined | Promise<VerifiedKey | undefined> {
    const now = this.#clock.now();
    const badUntil = this.#negative.get(fp);
    if (badUntil !== undefined) {
      if (now < badUntil) return null;
      this.#negative.delete(fp);
    }
    const entry = this.#positive.get(fp);
    if (entry === undefined) return undefined;
    if (now >= entry.expiresAt) {
      this.#positive.delete(fp);
      return undefined;
    }
    return this.#stillCurrent(entry).then((current) => {
      // Dropped meanwhile (an invalidation): look the key up again.
      if (this.#positive.get(fp) !== entry) return undefined;
      if (!current) {
        this.#positive.delete(fp);
        return undefined;
      }
      return { user: entry.user, broker: entry.broker };
    });
  }

  /** After any database change, confirm the user still holds the same key and re-read the broker. */
  async #stillCurrent(entry: PositiveEntry): Promise<boolean> {
    try {
      const revision = await this.#store.revision();
      if (revision === entry.revision) return true;
      const row = await this.#store.rowFor(entry.user);
      if (!row || row.hash !== entry.rowHash) return false;
      entry.broker = await this.#store.brokerFor(entry.user);
      entry.revision = revision;
      return true;
    } catch (err) {
      // The database is unreadable: keep serving what we verified (OpenAlgo never re-checks).
      this.#log.warn({ err: errorText(err) }, 'api key cache re-check failed; using cached result');
      return true;
    }
  }

  async #lookup(apiKey: string, fp: string, epoch: number): Promise<VerifiedKey | null> {
    try {
      const revision = await this.#store.revision();
      const index = await this.#indexFor(revision);
      let match: ApiKeyRow | null = null;

      const candidate = index.byFingerprint.get(fp);
      if (candidate && sameKey(fp, index.fingerprints.get(candidate.encrypted))) {
        // The decrypted copy is only a pointer: the Argon2 hash stays the authority, as in OpenAlgo.
        if (await this.#verifyHash(candidate.hash, apiKey, this.#pepper)) match = candidate;
        else this.#log.warn({ user: candidate.user }, 'api_keys row: encrypted key and hash disagree');
      }
      match ??= await this.#scan(index.undecryptable, apiKey);

      const cacheable = epoch === this.#epoch;
      if (!match) {
        if (cacheable) this.#remember(this.#negative, fp, this.#clock.now() + this.#negativeTtlMs);
        this.#log.debug('api key rejected');
        return null;
      }
      const result = { user: match.user, broker: await this.#store.brokerFor(match.user) };
      if (cacheable) {
        this.#remember(this.#positive, fp, {
          ...result,
          rowHash: match.hash,
          revision,
          expiresAt: this.#clock.now() + this.#positiveTtlMs,
        });
      }
      this.#log.debug({ user: result.user }, 'api key verified');
      return result;
    } catch (err) {
      // Not cached: a database hiccup must not lock a valid key out for five minutes.
      this.#log.error({ err: errorText(err) }, 'api key verification failed');
      if (isStoreUnreachable(err)) throw err;
      return null;
    }
  }

  /** The fingerprint index for this revision, re-decrypting only ciphertexts not seen before. */
  async #indexFor(revision: string): Promise<RowIndex> {
    if (this.#index?.revision === revision) return this.#index;
    const rows = await this.#store.rows();
    const previous = this.#index?.fingerprints;
    const index: RowIndex = { revision, fingerprints: new Map(), byFingerprint: new Map(), undecryptable: [] };
    for (const row of rows) {
      let fp = previous?.get(row.encrypted);
      if (fp === undefined) {
        const key = fernetDecrypt(this.#fernetKey, row.encrypted);
        fp = key === null ? null : fingerprint(key);
      }
      index.fingerprints.set(row.encrypted, fp);
      if (fp === null) index.undecryptable.push(row);
      else if (!index.byFingerprint.has(fp)) index.byFingerprint.set(fp, row);
    }
    if (index.undecryptable.length > 0 && index.undecryptable.length !== this.#index?.undecryptable.length) {
      this.#log.warn(
        { users: index.undecryptable.map((r) => r.user) },
        'api_keys rows that do not decrypt with this API_KEY_PEPPER/FERNET_SALT are checked by a slow Argon2 scan',
      );
    }
    this.#index = index;
    return index;
  }

  /** Argon2 against each row at once (the thread pool bounds the real parallelism); the first
   * match wins and the queued rest are aborted. */
  async #scan(rows: readonly ApiKeyRow[], apiKey: string): Promise<ApiKeyRow | null> {
    if (rows.length === 0) return null;
    const abort = new AbortController();
    try {
      return await new Promise<ApiKeyRow | null>((resolve) => {
        let left = rows.length;
        for (const row of rows) {
          this.#verifyHash(row.hash, apiKey, this.#pepper, abort.signal)
            .then(
              (ok) => ok && resolve(row),
              () => undefined, // aborted or malformed: not a match
            )
            .finally(() => --left === 0 && resolve(null));
        }
      });
    } finally {
      abort.abort();
    }
  }

  /** Insert keeping the map bounded (Map order is insertion order: the first is the oldest). */
  #remember<V>(map: Map<string, V>, fp: string, value: V): void {
    map.delete(fp);
    if (map.size >= this.#maxEntries) {
      const oldest = map.keys().next();
      if (!oldest.done) map.delete(oldest.value);
    }
    map.set(fp, value);
  }
}

function fingerprint(apiKey: string): string {
  return crypto.createHash('sha256').update(apiKey, 'utf8').digest('hex');
}

/** Constant-time equality of two fingerprints (the Map lookup that found the candidate is not). */
function sameKey(fp: string, stored: string | null | undefined): boolean {
  if (typeof stored !== 'string') return false;
  return crypto.timingSafeEqual(Buffer.from(fp, 'hex'), Buffer.from(stored, 'hex'));
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
