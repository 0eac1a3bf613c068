/**
 * The pepper a store's secrets were made with. API keys are Argon2id(key + pepper) and broker
 * credentials are Fernet-encrypted under a pepper-derived key, so with another pepper every one of
 * them silently stops working. The store therefore records a fingerprint of its pepper (never the
 * pepper) and every opening of the store checks it:
 *
 * - the store holds keys or credentials and the pepper differs, or no pepper is configured and
 *   the pepper file is gone: PEPPER_MISMATCH, saying how to get the right pepper back or how to
 *   start over; no new pepper is created over existing secrets;
 * - a store made before fingerprints existed (secrets, no fingerprint): the current pepper is
 *   recorded once it is confirmed by a stored secret it opens (a key's Fernet copy decrypting and
 *   its Argon2 hash verifying, or a credential decrypting); if none opens, it is a mismatch;
 * - a store without secrets takes the current pepper's fingerprint (there is nothing to lose).
 *
 * The fingerprint is PBKDF2-HMAC-SHA256(pepper, random salt) at the Fernet key's own cost, so it
 * offers no cheaper way to test pepper guesses than the encrypted keys beside it already do.
 */
import crypto from 'node:crypto';
import { promisify } from 'node:util';
import { ErrorCode, TickcastError } from '../errors.js';
import type { Database } from '../store/database.js';
import type { OpenAlgoDb } from '../store/openalgo-db.js';
import { StoreMetadata } from '../store/metadata.js';
import { verifyApiKeyHash } from './api-keys.js';
import { deriveFernetKey, fernetDecrypt } from './fernet.js';
import { findPepper, pepperFile, resolvePepper, type ResolvedPepper } from './pepper.js';

const pbkdf2 = promisify(crypto.pbkdf2);

/** The metadata key of the fingerprint. */
export const PEPPER_FINGERPRINT = 'pepper_fingerprint';

const SCHEME = 'pbkdf2-sha256';
const ITERATIONS = 100_000;
const SALT_BYTES = 16;
const HASH_BYTES = 32;
/** Stored secrets tried when confirming a pepper for a store without a fingerprint. */
const CONFIRM_ROWS = 3;

/** `pbkdf2-sha256$ITERATIONS$SALT$HASH` (base64). */
export async function pepperFingerprint(pepper: string, salt: Buffer = crypto.randomBytes(SALT_BYTES)): Promise<string> {
  const hash = await pbkdf2(Buffer.from(pepper, 'utf8'), salt, ITERATIONS, HASH_BYTES, 'sha256');
  return [SCHEME, ITERATIONS, salt.toString('base64'), hash.toString('base64')].join('$');
}

/** Whether `pepper` made `fingerprint`; undefined when the fingerprint is in a form this version
 * does not know (written by a newer tickcast). */
export async function fingerprintMatches(fingerprint: string, pepper: string): Promise<boolean | undefined> {
  const parts = fingerprint.split('$');
  if (parts.length !== 4 || parts[0] !== SCHEME || !/^[1-9][0-9]{0,8}$/.test(parts[1]!)) return undefined;
  const salt = Buffer.from(parts[2]!, 'base64');
  const expected = Buffer.from(parts[3]!, 'base64');
  if (salt.length === 0 || expected.length === 0) return undefined;
  const actual = await pbkdf2(Buffer.from(pepper, 'utf8'), salt, Number(parts[1]), expected.length, 'sha256');
  return crypto.timingSafeEqual(actual, expected);
}

/** What a store holds that depends on its pepper. */
export interface PepperedSecrets {
  /** Rows of `api_keys`. */
  keys: number;
  /** Users whose `auth` row holds encrypted broker credentials or a broker session. */
  credentials: number;
}

export function pepperedSecrets(db: Database): PepperedSecrets {
  return db
    .prepare(
      `SELECT (SELECT COUNT(*) FROM api_keys) AS keys,
              (SELECT COUNT(*) FROM auth WHERE COALESCE(auth, '') <> '' OR feed_token IS NOT NULL OR secret_api_key IS NOT NULL) AS credentials`,
    )
    .get() as PepperedSecrets;
}

export interface StorePepperOptions {
  db: Database;
  /** API_KEY_PEPPER, if set. */
  configured: string | undefined;
  /** FERNET_SALT, if set. */
  fernetSalt: string | undefined;
  /** The instance's directory, which holds the pepper file. */
  dir: string;
  /** The instance's name, for the commands the messages suggest. */
  instance: string;
}

export interface StorePepper extends ResolvedPepper {
  fernetKey: Buffer;
}

/**
 * The pepper to use with this store, and its Fernet key; PEPPER_MISMATCH when the store's keys or
 * credentials were made with another one. Records the fingerprint when the store has none yet.
 */
export async function openStorePepper(options: StorePepperOptions): Promise<StorePepper> {
  const { db, configured, fernetSalt, dir } = options;
  const meta = new StoreMetadata(db);
  const held = pepperedSecrets(db);
  const hasSecrets = held.keys + held.credentials > 0;

  // A new random pepper over existing secrets would only hide that they were lost.
  const resolved = hasSecrets ? findPepper(configured, dir) : resolvePepper(configured, dir);
  if (resolved === null) {
    throw refusal(options, held, `API_KEY_PEPPER is not set and the pepper file ${pepperFile(dir)} does not exist, so no new pepper is made`);
  }
  const { pepper } = resolved;
  const fernetKey = deriveFernetKey(pepper, fernetSalt);
  fernetKey.catch(() => undefined); // awaited below unless a refusal comes first

  // The check reads, hashes (off the event loop) and then writes in one IMMEDIATE transaction
  // that first makes sure nobody changed the fingerprint meanwhile; if someone did, look again.
  for (let attempt = 0; ; attempt++) {
    const stored = meta.get(PEPPER_FINGERPRINT);
    const matches = stored === undefined ? false : await fingerprintMatches(stored, pepper);
    if (matches === undefined) {
      throw new TickcastError(
        ErrorCode.PEPPER_MISMATCH,
        `the store in ${dir} records its pepper's fingerprint in a form this tickcast does not know (made by a newer version); upgrade tickcast`,
      );
    }
    let confirmed = true;
    if (stored === undefined && hasSecrets) confirmed = await opensStoredSecret(db, pepper, await fernetKey);
    const fresh = matches ? undefined : await pepperFingerprint(pepper);

    const outcome = db
      .transaction((): 'done' | 'changed' | 'mismatch' | 'unconfirmed' => {
        if (meta.get(PEPPER_FINGERPRINT) !== stored) return 'changed';
        if (matches) return 'done';
        const now = pepperedSecrets(db);
        if (now.keys + now.credentials > 0) {
          if (stored !== undefined) return 'mismatch';
          if (!confirmed) return 'unconfirmed';
        }
        meta.set(PEPPER_FINGERPRINT, fresh!);
        return 'done';
      })
      .immediate();

    if (outcome === 'done') return { ...resolved, fernetKey: await fernetKey };
    if (outcome === 'mismatch') throw refusal(options, pepperedSecrets(db), `${describeSource(resolved, dir)} is not the pepper they were made with${await hint(resolved, dir, stored!)}`);
    if (outcome === 'unconfirmed') {
      throw refusal(options, pepperedSecrets(db), `none of them can be opened with ${describeSource(resolved, dir)} and FERNET_SALT as configured (this store records no pepper fingerprint yet, so a stored secret was tried)`);
    }
    if (attempt >= 3) throw new TickcastError(ErrorCode.STORE_FAILED, `the pepper fingerprint of the store in ${dir} keeps changing under this process; is another tickcast writing it with another pepper?`);
  }
}

/** Whether `pepper` opens one of the stored secrets: a key's Fernet copy that decrypts and whose
 * Argon2 hash then verifies, or a credential that decrypts. */
async function opensStoredSecret(db: Database, pepper: string, fernetKey: Buffer): Promise<boolean> {
  const rows = db.prepare('SELECT api_key_hash AS hash, api_key_encrypted AS encrypted FROM api_keys ORDER BY id').iterate() as Iterable<{ hash: string; encrypted: string }>;
  // Started only once the keys' iteration is over: one statement runs on the connection at a time.
  function* tokens(): Iterable<string | null> {
    const secrets = db
      .prepare(
        `SELECT auth, feed_token AS feedToken, secret_api_key AS apiKey FROM auth
         WHERE COALESCE(auth, '') <> '' OR feed_token IS NOT NULL OR secret_api_key IS NOT NULL`,
      )
      .iterate() as Iterable<{ auth: string | null; feedToken: string | null; apiKey: string | null }>;
    for (const row of secrets) yield* [row.auth, row.feedToken, row.apiKey];
  }
  return opensAnySecret(rows, tokens(), pepper, fernetKey);
}

/** Whether `pepper` opens one of the keys (decrypts and verifies; the first few that decrypt are
 * tried) or one of the Fernet tokens given. */
async function opensAnySecret(
  keys: Iterable<{ hash: string; encrypted: string }>,
  tokens: Iterable<string | null>,
  pepper: string,
  fernetKey: Buffer,
): Promise<boolean> {
  let tried = 0;
  for (const row of keys) {
    const key = fernetDecrypt(fernetKey, row.encrypted);
    if (key === null) continue;
    if (await verifyApiKeyHash(row.hash, key, pepper)) return true;
    if (++tried >= CONFIRM_ROWS) break;
  }
  for (const value of tokens) {
    if (value && fernetDecrypt(fernetKey, value) !== null) return true;
  }
  return false;
}

/** Rows of OpenAlgo's tables read to check the pepper against: a handful is proof enough. */
const OPENALGO_PEPPER_SAMPLE = 50;

/**
 * The equivalent of the fingerprint check for OpenAlgo's own database (DATABASE_URL), where
 * tickcast records nothing: API_KEY_PEPPER and FERNET_SALT must open one of the API keys or
 * broker tokens there, when it holds any. PEPPER_MISMATCH naming them otherwise.
 */
export async function checkOpenAlgoPepper(db: OpenAlgoDb, pepper: string, fernetKey: Buffer, fernetSaltSet: boolean): Promise<void> {
  const keys = await db.all<{ hash: string; encrypted: string }>(
    `SELECT api_key_hash AS hash, api_key_encrypted AS encrypted FROM api_keys ORDER BY id LIMIT ${OPENALGO_PEPPER_SAMPLE}`,
  );
  // Only Fernet tokens (which start with version byte 0x80, "gAAAAA" in base64) say anything
  // about the key: OpenAlgo also leaves '' after a logout and placeholders such as 'pending'.
  const auth = await db.all<{ auth: string | null; feed_token: string | null }>(
    `SELECT auth, feed_token FROM auth WHERE auth LIKE 'gAAAAA%' OR feed_token LIKE 'gAAAAA%' ORDER BY id LIMIT ${OPENALGO_PEPPER_SAMPLE}`,
  );
  if (keys.length === 0 && auth.length === 0) return;
  if (await opensAnySecret(keys, auth.flatMap((row) => [row.auth, row.feed_token]), pepper, fernetKey)) return;
  const held = [keys.length > 0 ? 'API keys' : '', auth.length > 0 ? 'broker session tokens' : ''].filter(Boolean).join(' and ');
  throw new TickcastError(
    ErrorCode.PEPPER_MISMATCH,
    `API_KEY_PEPPER${fernetSaltSet ? ' and FERNET_SALT' : ' (with FERNET_SALT unset)'} do not open any of the ${held} in OpenAlgo's database (DATABASE_URL ${db.where}): ` +
      "set API_KEY_PEPPER and FERNET_SALT to the values in OpenAlgo's .env",
  );
}

function describeSource(resolved: ResolvedPepper, dir: string): string {
  return resolved.source === 'config' ? 'API_KEY_PEPPER' : `the pepper in ${pepperFile(dir)} (API_KEY_PEPPER is not set)`;
}

/** When API_KEY_PEPPER is set but the pepper file holds the right pepper, say so. */
async function hint(resolved: ResolvedPepper, dir: string, stored: string): Promise<string> {
  if (resolved.source !== 'config') return '';
  let file: ResolvedPepper | null;
  try {
    file = findPepper(undefined, dir);
  } catch {
    return '';
  }
  if (file === null || !(await fingerprintMatches(stored, file.pepper))) return '';
  return ` (${pepperFile(dir)} holds the pepper they were made with: unset API_KEY_PEPPER to use it)`;
}

function refusal(options: StorePepperOptions, held: PepperedSecrets, why: string): TickcastError {
  const { dir, configured, instance } = options;
  const what = [
    held.keys > 0 ? `${held.keys} API key${held.keys === 1 ? '' : 's'}` : '',
    held.credentials > 0 ? `the broker credentials of ${held.credentials} user${held.credentials === 1 ? '' : 's'}` : '',
  ]
    .filter(Boolean)
    .join(' and ');
  const file = pepperFile(dir);
  const restore = configured
    ? `, or, if they were made without API_KEY_PEPPER, unset it and restore the pepper file ${file}`
    : `, or restore the pepper file ${file} they were made with`;
  return new TickcastError(
    ErrorCode.PEPPER_MISMATCH,
    `the store in ${dir} holds ${what} made with a different pepper: ${why}. ` +
      `Set API_KEY_PEPPER to the value used when they were made${restore}; ` +
      `to start over instead, delete them with \`tickcast keys reset --instance ${instance} --yes\` (every user then needs a new key, and broker credentials must be set again)`,
  );
}

/**
 * Deletes everything the pepper protects: every API key, and the encrypted broker credentials and
 * sessions in `auth` (the rows stay: they map users to brokers). For starting over after the
 * pepper was lost; the next opening records the pepper then in use.
 */
export function deletePepperedSecrets(db: Database): PepperedSecrets {
  return db
    .transaction(() => {
      const held = pepperedSecrets(db);
      db.prepare('DELETE FROM api_keys').run();
      db.prepare(
        `UPDATE auth SET auth = '', feed_token = NULL, user_id = NULL, secret_api_key = NULL
         WHERE COALESCE(auth, '') <> '' OR feed_token IS NOT NULL OR secret_api_key IS NOT NULL`,
      ).run();
      new StoreMetadata(db).delete(PEPPER_FINGERPRINT);
      return held;
    })
    .immediate();
}
