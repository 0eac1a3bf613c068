import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ApiKeyStore, hashApiKey, verifyApiKeyHash } from '../../src/auth/api-keys.js';
import { deriveFernetKey, fernetEncrypt } from '../../src/auth/fernet.js';
import { ApiKeyVerifier, type ApiKeyVerifierOptions, type KeyRowSource, isStoreUnreachable } from '../../src/auth/key-verifier.js';
import { ErrorCode, TickcastError } from '../../src/errors.js';
import { openDatabase, type Database } from '../../src/store/database.js';

const PEPPER = 'verifier-test-pepper-0123456789abcdef01234';
let fernetKey: Buffer;
let foreignFernetKey: Buffer; // as if written by OpenAlgo with another FERNET_SALT

beforeAll(async () => {
  fernetKey = await deriveFernetKey(PEPPER);
  foreignFernetKey = await deriveFernetKey(PEPPER, 'ab'.repeat(16));
});

let dir: string;
let file: string;
let db: Database;
let store: ApiKeyStore;
let now: number;
let argon2Calls: number;
const clock = { now: () => now };

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tickcast-verifier-'));
  file = path.join(dir, 'tickcast.db');
  db = openDatabase(file);
  store = new ApiKeyStore({ db, pepper: PEPPER, fernetKey });
  now = 1_000_000;
  argon2Calls = 0;
});
afterEach(() => {
  db.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

function makeVerifier(overrides: Partial<ApiKeyVerifierOptions> = {}): ApiKeyVerifier {
  return new ApiKeyVerifier({
    store,
    pepper: PEPPER,
    fernetKey,
    clock,
    verifyHash: (hash, key, pepper, signal) => {
      argon2Calls++;
      return verifyApiKeyHash(hash, key, pepper, signal);
    },
    ...overrides,
  });
}

/** A row as OpenAlgo would write it under a FERNET_SALT we do not know. */
async function insertForeignRow(user: string, apiKey = crypto.randomBytes(32).toString('hex')): Promise<string> {
  const hash = await hashApiKey(apiKey, PEPPER);
  db.prepare('INSERT INTO api_keys (user_id, api_key_hash, api_key_encrypted) VALUES (?, ?, ?)').run(
    user,
    hash,
    fernetEncrypt(foreignFernetKey, apiKey),
  );
  db.prepare("INSERT INTO auth (name, auth, broker) VALUES (?, '', 'angel')").run(user);
  return apiKey;
}

const otherKey = () => crypto.randomBytes(32).toString('hex');

describe('ApiKeyVerifier', () => {
  it('accepts a valid key with one Argon2 verify and rejects unknown keys with none', async () => {
    const { apiKey } = await store.create('alice', 'zerodha');
    await store.create('bob', 'angel');
    const verifier = makeVerifier();

    expect(await verifier.verify(apiKey)).toEqual({ user: 'alice', broker: 'zerodha' });
    expect(argon2Calls).toBe(1);
    expect(await verifier.verify(otherKey())).toBeNull();
    expect(await verifier.verify(apiKey.toUpperCase())).toBeNull();
    expect(argon2Calls).toBe(1);
  });

  it('answers repeated keys from the cache without Argon2', async () => {
    const { apiKey } = await store.create('alice', 'zerodha');
    const verifier = makeVerifier();
    await verifier.verify(apiKey);
    for (let i = 0; i < 5; i++) expect(await verifier.verify(apiKey)).toEqual({ user: 'alice', broker: 'zerodha' });
    expect(argon2Calls).toBe(1);
  });

  it('returns copies: a caller mutating the result does not change the cache', async () => {
    const { apiKey } = await store.create('alice', 'zerodha');
    const verifier = makeVerifier();
    const first = await verifier.verify(apiKey);
    first!.user = 'mallory';
    expect(await verifier.verify(apiKey)).toEqual({ user: 'alice', broker: 'zerodha' });
  });

  it('rejects non-strings, empty and absurdly long keys without touching Argon2 or the store', async () => {
    await store.create('alice', 'zerodha');
    const verifier = makeVerifier({
      store: {
        rows: () => { throw new Error('store read'); },
        rowFor: () => { throw new Error('store read'); },
        brokerFor: () => { throw new Error('store read'); },
        revision: () => { throw new Error('store read'); },
      },
    });
    for (const bad of [undefined, null, 42, {}, ['k'], Buffer.from('k'), '', 'k'.repeat(2000)]) {
      expect(await verifier.verify(bad)).toBeNull();
    }
    expect(argon2Calls).toBe(0);
  });

  it('caches an invalid key for the negative TTL on the injected clock', async () => {
    await insertForeignRow('legacy'); // forces the Argon2 scan, so each lookup is visible
    const verifier = makeVerifier({ negativeTtlMs: 300_000 });
    const bad = otherKey();

    expect(await verifier.verify(bad)).toBeNull();
    expect(argon2Calls).toBe(1);
    now += 299_999;
    expect(await verifier.verify(bad)).toBeNull();
    expect(argon2Calls).toBe(1);
    now += 1;
    expect(await verifier.verify(bad)).toBeNull();
    expect(argon2Calls).toBe(2);
  });

  it('expires a valid key after the positive TTL', async () => {
    const { apiKey } = await store.create('alice', 'zerodha');
    const verifier = makeVerifier({ positiveTtlMs: 36_000_000 });
    await verifier.verify(apiKey);
    now += 35_999_999;
    await verifier.verify(apiKey);
    expect(argon2Calls).toBe(1);
    now += 1;
    expect(await verifier.verify(apiKey)).toEqual({ user: 'alice', broker: 'zerodha' });
    expect(argon2Calls).toBe(2);
  });

  it('shares one lookup between concurrent verifies of the same key', async () => {
    const { apiKey } = await store.create('alice', 'zerodha');
    const verifier = makeVerifier();
    const results = await Promise.all(Array.from({ length: 8 }, () => verifier.verify(apiKey)));
    expect(results.every((r) => r?.user === 'alice')).toBe(true);
    expect(argon2Calls).toBe(1);

    await insertForeignRow('legacy');
    const bad = otherKey();
    expect(await Promise.all([verifier.verify(bad), verifier.verify(bad), verifier.verify(bad)])).toEqual([null, null, null]);
    expect(argon2Calls).toBe(2);
  });

  it('invalidateUser drops that user’s entries (and negative ones), not other users’', async () => {
    const alice = await store.create('alice', 'zerodha');
    const bob = await store.create('bob', 'angel');
    const verifier = makeVerifier();
    await verifier.verify(alice.apiKey);
    await verifier.verify(bob.apiKey);
    expect(argon2Calls).toBe(2);

    verifier.invalidateUser('alice');
    await verifier.verify(bob.apiKey);
    expect(argon2Calls).toBe(2);
    expect(await verifier.verify(alice.apiKey)).toEqual({ user: 'alice', broker: 'zerodha' });
    expect(argon2Calls).toBe(3);

    verifier.clear();
    await verifier.verify(bob.apiKey);
    expect(argon2Calls).toBe(4);
  });

  it('does not cache a lookup that an invalidation overtook', async () => {
    const { apiKey } = await store.create('alice', 'zerodha');
    const verifier = makeVerifier();
    const pending = verifier.verify(apiKey);
    verifier.invalidateUser('alice');
    expect(await pending).toEqual({ user: 'alice', broker: 'zerodha' });
    await verifier.verify(apiKey);
    expect(argon2Calls).toBe(2);
  });

  it('falls back to an Argon2 scan for rows it cannot decrypt', async () => {
    await insertForeignRow('legacy-1');
    const legacyKey = await insertForeignRow('legacy-2');
    await insertForeignRow('legacy-3');
    const { apiKey } = await store.create('alice', 'zerodha');
    const verifier = makeVerifier();

    expect(await verifier.verify(legacyKey)).toEqual({ user: 'legacy-2', broker: 'angel' });
    expect(argon2Calls).toBeGreaterThanOrEqual(2);
    expect(argon2Calls).toBeLessThanOrEqual(3); // only the undecryptable rows, never alice's
    argon2Calls = 0;
    expect(await verifier.verify(apiKey)).toEqual({ user: 'alice', broker: 'zerodha' });
    expect(argon2Calls).toBe(1);
    argon2Calls = 0;
    expect(await verifier.verify(otherKey())).toBeNull();
    expect(argon2Calls).toBe(3);
  });

  it('sees keys revoked or replaced by another process at once, without Argon2', async () => {
    const alice = await store.create('alice', 'zerodha');
    const bob = await store.create('bob', 'angel');
    const verifier = makeVerifier();
    await verifier.verify(alice.apiKey);
    await verifier.verify(bob.apiKey);
    argon2Calls = 0;

    const other = openDatabase(file);
    other.prepare("DELETE FROM api_keys WHERE user_id = 'alice'").run();
    other.prepare("UPDATE auth SET broker = 'fyers' WHERE name = 'bob'").run();
    other.close();

    expect(await verifier.verify(alice.apiKey)).toBeNull();
    expect(await verifier.verify(bob.apiKey)).toEqual({ user: 'bob', broker: 'fyers' });
    expect(argon2Calls).toBe(0);

    const cli = openDatabase(file); // e.g. `tickcast keys create` in another process
    const replaced = await new ApiKeyStore({ db: cli, pepper: PEPPER, fernetKey }).create('bob', 'fyers');
    cli.close();
    expect(await verifier.verify(bob.apiKey)).toBeNull();
    expect(await verifier.verify(replaced.apiKey)).toEqual({ user: 'bob', broker: 'fyers' });
    expect(argon2Calls).toBe(1);
  });

  it('reports a null broker when the user’s auth row is revoked', async () => {
    const { apiKey } = await store.create('alice', 'zerodha');
    db.prepare("UPDATE auth SET is_revoked = 1 WHERE name = 'alice'").run();
    expect(await makeVerifier().verify(apiKey)).toEqual({ user: 'alice', broker: null });
  });

  it('prime() makes a fresh key’s first use instant, and only for the stored key', async () => {
    const { apiKey } = await store.create('alice', 'zerodha');
    const verifier = makeVerifier();
    verifier.prime(otherKey(), 'alice', 'zerodha'); // not alice's key: ignored
    verifier.prime(apiKey, 'alice', 'zerodha');
    expect(await verifier.verify(apiKey)).toEqual({ user: 'alice', broker: 'zerodha' });
    expect(argon2Calls).toBe(0);
  });

  it('returns null, uncached, when the store fails', async () => {
    const { apiKey } = await store.create('alice', 'zerodha');
    let broken = true;
    const verifier = makeVerifier({
      store: {
        rows: () => {
          if (broken) throw new Error('database is locked');
          return store.rows();
        },
        rowFor: (u) => store.rowFor(u),
        brokerFor: (u) => store.brokerFor(u),
        revision: () => store.revision(),
      },
    });
    expect(await verifier.verify(apiKey)).toBeNull();
    broken = false;
    expect(await verifier.verify(apiKey)).toEqual({ user: 'alice', broker: 'zerodha' });
  });

  it('keeps the caches bounded', async () => {
    const verifier = makeVerifier({ maxEntries: 3 });
    await insertForeignRow('legacy');
    const keys = Array.from({ length: 4 }, otherKey);
    for (const k of keys) await verifier.verify(k);
    expect(argon2Calls).toBe(4);
    await verifier.verify(keys[3]); // newest: still cached
    expect(argon2Calls).toBe(4);
    await verifier.verify(keys[0]); // oldest: evicted
    expect(argon2Calls).toBe(5);
  });

  it('runs Argon2 off the event loop', async () => {
    const { apiKey } = await store.create('alice', 'zerodha');
    const verifier = makeVerifier();
    let ticks = 0;
    const timer = setInterval(() => ticks++, 1);
    try {
      const result = await verifier.verify(apiKey);
      expect(result?.user).toBe('alice');
      // A synchronous verify would block every timer until it returned.
      expect(ticks).toBeGreaterThan(0);
    } finally {
      clearInterval(timer);
    }
  });
});

describe('ApiKeyVerifier over a store that answers asynchronously (OpenAlgo’s database)', () => {
  /** The same store, each answer a promise, as a server database gives them. */
  function asyncStore(fail: () => Error | undefined = () => undefined): KeyRowSource {
    const later = async <T>(read: () => T): Promise<T> => {
      await new Promise((resolve) => setImmediate(resolve));
      const error = fail();
      if (error) throw error;
      return read();
    };
    return {
      rows: () => later(() => store.rows()),
      rowFor: (u) => later(() => store.rowFor(u)),
      brokerFor: (u) => later(() => store.brokerFor(u)),
      revision: () => later(() => store.revision()),
    };
  }

  it('verifies, caches, and sees a replaced key at the next verify', async () => {
    const alice = await store.create('alice', 'zerodha');
    const verifier = makeVerifier({ store: asyncStore() });
    expect(await verifier.verify(alice.apiKey)).toEqual({ user: 'alice', broker: 'zerodha' });
    expect(await verifier.verify(alice.apiKey)).toEqual({ user: 'alice', broker: 'zerodha' });
    expect(argon2Calls).toBe(1);
    const replaced = await store.create('alice', 'zerodha');
    expect(await verifier.verify(alice.apiKey)).toBeNull();
    expect(await verifier.verify(replaced.apiKey)).toEqual({ user: 'alice', broker: 'zerodha' });
  });

  it('primes once the store has answered', async () => {
    const { apiKey } = await store.create('alice', 'zerodha');
    const verifier = makeVerifier({ store: asyncStore() });
    await verifier.prime(apiKey, 'alice', 'zerodha');
    expect(await verifier.verify(apiKey)).toEqual({ user: 'alice', broker: 'zerodha' });
    expect(argon2Calls).toBe(0);
  });

  it('throws DATABASE_UNREACHABLE for keys it has not verified while the store is away, serves those it has, and caches no refusal', async () => {
    const alice = await store.create('alice', 'zerodha');
    const bob = await store.create('bob', 'angel');
    let away = false;
    const verifier = makeVerifier({
      store: asyncStore(() => (away ? new TickcastError(ErrorCode.DATABASE_UNREACHABLE, 'DATABASE_URL (postgresql://oa@db:5432/oa): the PostgreSQL server at db:5432 cannot be reached') : undefined)),
    });
    expect(await verifier.verify(alice.apiKey)).toEqual({ user: 'alice', broker: 'zerodha' });
    away = true;
    await expect(verifier.verify(bob.apiKey)).rejects.toSatisfy(isStoreUnreachable);
    expect(await verifier.verify(alice.apiKey)).toEqual({ user: 'alice', broker: 'zerodha' });
    away = false;
    expect(await verifier.verify(bob.apiKey)).toEqual({ user: 'bob', broker: 'angel' });
  });

  it('answers null, as before, for any other store failure', async () => {
    const { apiKey } = await store.create('alice', 'zerodha');
    const verifier = makeVerifier({ store: asyncStore(() => new Error('disk I/O error')) });
    expect(await verifier.verify(apiKey)).toBeNull();
  });
});
