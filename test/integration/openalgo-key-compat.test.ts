/**
 * Cross-check with the libraries OpenAlgo itself uses (argon2-cffi and cryptography), through
 * Debian's /usr/bin/python3 (packages python3-argon2 and python3-cryptography). Fails, never
 * skips, when they are missing: without them this file proves nothing.
 */
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ApiKeyStore, verifyApiKeyHash } from '../../src/auth/api-keys.js';
import { deriveFernetKey, fernetDecrypt } from '../../src/auth/fernet.js';
import { ApiKeyVerifier } from '../../src/auth/key-verifier.js';
import { openDatabase } from '../../src/store/database.js';
import { PY_OPENALGO_KEY_MATERIAL } from '../helpers/openalgo-db.js';

const PYTHON = '/usr/bin/python3';
const PEPPER = crypto.randomBytes(32).toString('hex');

/** Runs a Python script with JSON on stdin and JSON on stdout; secrets never go on the command line. */
function python<T>(script: string, input: unknown, args: string[] = []): T {
  let out: string;
  try {
    out = execFileSync(PYTHON, ['-c', script, ...args], {
      input: JSON.stringify(input),
      encoding: 'utf8',
      timeout: 60_000,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
  } catch (err) {
    const stderr = String((err as { stderr?: unknown }).stderr ?? '').trim();
    throw new Error(`${PYTHON} failed: ${stderr.split('\n').at(-1) || (err as Error).message}`);
  }
  return JSON.parse(out) as T;
}

/** OpenAlgo's key material: its KDF salt choice, Fernet(urlsafe_b64(PBKDF2(pepper))) and
 * argon2-cffi's PasswordHasher. Shared by both directions below. */
const PY_OPENALGO = String.raw`
import json, sqlite3, sys
from argon2 import Type, extract_parameters
from argon2.exceptions import VerificationError, InvalidHash
from cryptography.fernet import InvalidToken
${PY_OPENALGO_KEY_MATERIAL}`;

/** (a) Python writes rows the way OpenAlgo's upsert_api_key does, straight into our database. */
const PY_WRITE = `${PY_OPENALGO}
req = json.load(sys.stdin)
fernet = fernet_for(req["pepper"], req["fernetSalt"])
db = sqlite3.connect(sys.argv[1])
for item in req["keys"]:
    hasher = PasswordHasher() if item["hasher"] == "default" else OPENALGO_HASHER
    db.execute(
        "INSERT INTO api_keys (user_id, api_key_hash, api_key_encrypted, created_at, order_mode)"
        " VALUES (?, ?, ?, CURRENT_TIMESTAMP, 'auto')",
        (item["user"], hasher.hash(item["apiKey"] + req["pepper"]), fernet.encrypt(item["apiKey"].encode()).decode()),
    )
    db.execute("INSERT INTO auth (name, auth, broker, is_revoked) VALUES (?, ?, ?, 0)",
               (item["user"], fernet.encrypt(b"broker-session-token").decode(), item["broker"]))
db.commit()
print(json.dumps({"written": len(req["keys"])}))
`;

/** (b) Python reads rows we wrote and checks them as OpenAlgo's verify_api_key / decrypt_token /
 * get_broker_name would. */
const PY_CHECK = `${PY_OPENALGO}
from datetime import datetime
req = json.load(sys.stdin)
fernet = fernet_for(req["pepper"], req["fernetSalt"])
db = sqlite3.connect(sys.argv[1])
results = []
for item in req["keys"]:
    row = db.execute("SELECT api_key_hash, api_key_encrypted, created_at, order_mode FROM api_keys WHERE user_id = ?",
                     (item["user"],)).fetchone()
    api_key_hash, api_key_encrypted, created_at, order_mode = row
    try:
        verified = PasswordHasher().verify(api_key_hash, item["apiKey"] + req["pepper"])
    except (VerificationError, InvalidHash):
        verified = False
    try:
        PasswordHasher().verify(api_key_hash, item["apiKey"] + req["pepper"] + "x")
        wrong_verified = True
    except (VerificationError, InvalidHash):
        wrong_verified = False
    try:
        decrypted = fernet.decrypt(api_key_encrypted.encode()).decode()
    except InvalidToken:
        decrypted = None
    p = extract_parameters(api_key_hash)
    broker = db.execute("SELECT broker FROM auth WHERE name = ? AND NOT is_revoked", (item["user"],)).fetchone()
    results.append({
        "user": item["user"],
        "verified": verified is True,
        "wrongVerified": wrong_verified,
        "decrypted": decrypted,
        "params": [p.type == Type.ID, p.time_cost, p.memory_cost, p.parallelism, p.hash_len, p.salt_len],
        "createdAtParses": datetime.strptime(created_at, "%Y-%m-%d %H:%M:%S.%f") is not None,
        "orderMode": order_mode,
        "broker": broker[0] if broker else None,
    })
print(json.dumps(results))
`;

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tickcast-compat-'));
});
afterEach(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('OpenAlgo API-key compatibility (argon2-cffi + cryptography via /usr/bin/python3)', () => {
  it('has python3-argon2 and python3-cryptography available', () => {
    let versions: { argon2: string; cryptography: string };
    try {
      versions = python(
        'import json, argon2, cryptography; print(json.dumps({"argon2": argon2.__version__, "cryptography": cryptography.__version__}))',
        null,
      );
    } catch (err) {
      throw new Error(
        `${PYTHON} cannot import argon2/cryptography; install the Debian packages python3-argon2 and ` +
          `python3-cryptography (${(err as Error).message.split('\n')[0]})`,
      );
    }
    expect(versions.argon2).toMatch(/^\d+\./);
    expect(versions.cryptography).toMatch(/^\d+\./);
  });

  for (const fernetSalt of ['', crypto.randomBytes(16).toString('hex')]) {
    const saltLabel = fernetSalt ? 'hex FERNET_SALT' : 'legacy static salt';

    it(`(a) accepts keys hashed and encrypted by OpenAlgo's libraries (${saltLabel})`, async () => {
      const file = path.join(dir, 'tickcast.db');
      openDatabase(file).close();
      const keys = [
        { user: 'alice', broker: 'zerodha', hasher: 'openalgo', apiKey: crypto.randomBytes(32).toString('hex') },
        { user: 'bob', broker: 'angel', hasher: 'default', apiKey: crypto.randomBytes(32).toString('hex') },
      ];
      expect(python<{ written: number }>(PY_WRITE, { pepper: PEPPER, fernetSalt, keys }, [file])).toEqual({ written: 2 });

      const db = openDatabase(file);
      try {
        const fernetKey = await deriveFernetKey(PEPPER, fernetSalt);
        const store = new ApiKeyStore({ db, pepper: PEPPER, fernetKey });
        let argon2Calls = 0;
        const verifier = new ApiKeyVerifier({
          store,
          pepper: PEPPER,
          fernetKey,
          verifyHash: (...args) => {
            argon2Calls++;
            return verifyApiKeyHash(...args);
          },
        });
        for (const k of keys) {
          const row = store.rowFor(k.user)!;
          expect(fernetDecrypt(fernetKey, row.encrypted)).toBe(k.apiKey);
          expect(await verifier.verify(k.apiKey)).toEqual({ user: k.user, broker: k.broker });
        }
        expect(argon2Calls).toBe(2); // found through the decrypted copy: one Argon2 each
        expect(await verifier.verify(crypto.randomBytes(32).toString('hex'))).toBeNull();
        expect(store.list().map((l) => [l.user, l.keyPreview])).toEqual(keys.map((k) => [k.user, `${k.apiKey.slice(0, 8)}…`]));

        // The same rows read with the wrong salt: Fernet fails, the Argon2 fallback still finds them.
        const otherKey = await deriveFernetKey(PEPPER, fernetSalt ? '' : 'cd'.repeat(16));
        const fallback = new ApiKeyVerifier({ store, pepper: PEPPER, fernetKey: otherKey });
        expect(fernetDecrypt(otherKey, store.rowFor('alice')!.encrypted)).toBeNull();
        expect(await fallback.verify(keys[1]!.apiKey)).toEqual({ user: 'bob', broker: 'angel' });
      } finally {
        db.close();
      }
    });

    it(`(b) writes keys OpenAlgo's libraries verify and decrypt (${saltLabel})`, async () => {
      const file = path.join(dir, 'tickcast.db');
      const db = openDatabase(file);
      const fernetKey = await deriveFernetKey(PEPPER, fernetSalt);
      const store = new ApiKeyStore({ db, pepper: PEPPER, fernetKey });
      const created = [await store.create('alice', 'zerodha'), await store.create('bob', 'angel')];
      db.close();

      const results = python<Record<string, unknown>[]>(
        PY_CHECK,
        { pepper: PEPPER, fernetSalt, keys: created.map((c) => ({ user: c.user, apiKey: c.apiKey })) },
        [file],
      );
      expect(results).toEqual(
        created.map((c) => ({
          user: c.user,
          verified: true,
          wrongVerified: false,
          decrypted: c.apiKey,
          params: [true, 3, 65536, 4, 32, 16],
          createdAtParses: true,
          orderMode: 'auto',
          broker: c.broker,
        })),
      );
    });
  }
});
