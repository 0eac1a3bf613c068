import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ApiKeyStore } from '../../src/auth/api-keys.js';
import { CredentialStore } from '../../src/auth/credentials.js';
import {
  PEPPER_FINGERPRINT,
  deletePepperedSecrets,
  fingerprintMatches,
  openStorePepper,
  pepperFingerprint,
  pepperedSecrets,
  type StorePepper,
} from '../../src/auth/store-pepper.js';
import { ErrorCode, TickcastError } from '../../src/errors.js';
import { openDatabase, type Database } from '../../src/store/database.js';
import { StoreMetadata } from '../../src/store/metadata.js';

const PEPPER = 'store-pepper-test-0123456789abcdef0123456789';
const OTHER = 'a-different-pepper-0123456789abcdef01234567';

let dir: string;
let db: Database;

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tickcast-pepper-'));
  db = openDatabase(path.join(dir, 'tickcast.db'));
});
afterEach(() => {
  db.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

const open = (configured: string | undefined): Promise<StorePepper> =>
  openStorePepper({ db, configured, fernetSalt: undefined, dir, instance: 'desk' });

async function refused(configured: string | undefined): Promise<string> {
  const error = await open(configured).then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(error).toBeInstanceOf(TickcastError);
  expect((error as TickcastError).code).toBe(ErrorCode.PEPPER_MISMATCH);
  return (error as TickcastError).message;
}

async function createKey(pepper: string, user = 'alice'): Promise<void> {
  const { fernetKey } = await open(pepper);
  await new ApiKeyStore({ db, pepper, fernetKey }).create(user, 'simulator');
}

const fingerprint = (): string | undefined => new StoreMetadata(db).get(PEPPER_FINGERPRINT);

describe('pepper fingerprints', () => {
  it('tell the pepper that made them from any other, and never contain it', async () => {
    const made = await pepperFingerprint(PEPPER);
    expect(made).toMatch(/^pbkdf2-sha256\$100000\$[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+$/);
    expect(made).not.toContain(PEPPER);
    expect(await fingerprintMatches(made, PEPPER)).toBe(true);
    expect(await fingerprintMatches(made, OTHER)).toBe(false);
    // Salted: the same pepper fingerprints differently each time.
    expect(await pepperFingerprint(PEPPER)).not.toBe(made);
    expect(await fingerprintMatches('scrypt$1$2$3', PEPPER)).toBeUndefined();
  });
});

describe('openStorePepper', () => {
  it("records a new store's pepper, then accepts it again", async () => {
    const first = await open(PEPPER);
    expect(first).toMatchObject({ pepper: PEPPER, source: 'config' });
    expect(first.fernetKey).toHaveLength(32);
    const recorded = fingerprint();
    expect(await fingerprintMatches(recorded!, PEPPER)).toBe(true);
    await createKey(PEPPER);
    expect((await open(PEPPER)).pepper).toBe(PEPPER);
    expect(fingerprint()).toBe(recorded);
  });

  it('refuses another API_KEY_PEPPER over stored keys, saying how to fix it', async () => {
    await createKey(PEPPER);
    await createKey(PEPPER, 'bob');
    const message = await refused(OTHER);
    expect(message).toContain('API_KEY_PEPPER');
    expect(message).toContain('2 API keys made with a different pepper');
    expect(message).toContain('Set API_KEY_PEPPER to the value used when they were made');
    expect(message).toContain('tickcast keys reset --instance desk --yes');
    expect(message).not.toContain(PEPPER);
    expect(message).not.toContain(OTHER);
    expect(await fingerprintMatches(fingerprint()!, PEPPER)).toBe(true); // untouched
  });

  it('never makes a new pepper over stored keys when API_KEY_PEPPER is unset and the pepper file is gone', async () => {
    const made = await open(undefined);
    expect(made.source).toBe('created');
    await new ApiKeyStore({ db, pepper: made.pepper, fernetKey: made.fernetKey }).create('alice', 'simulator');
    expect((await open(undefined)).pepper).toBe(made.pepper); // the file is read back

    fs.rmSync(path.join(dir, 'pepper'));
    const message = await refused(undefined);
    expect(message).toContain('API_KEY_PEPPER is not set');
    expect(message).toContain(`restore the pepper file ${path.join(dir, 'pepper')}`);
    expect(fs.existsSync(path.join(dir, 'pepper'))).toBe(false);
    // Another pepper file is no better than none.
    fs.writeFileSync(path.join(dir, 'pepper'), `${OTHER}\n`);
    expect(await refused(undefined)).toContain(`the pepper in ${path.join(dir, 'pepper')} (API_KEY_PEPPER is not set) is not the pepper they were made with`);
  });

  it('points at the pepper file when API_KEY_PEPPER was set over keys made with the file', async () => {
    const made = await open(undefined);
    await new ApiKeyStore({ db, pepper: made.pepper, fernetKey: made.fernetKey }).create('alice', 'simulator');
    expect(await refused(OTHER)).toContain('holds the pepper they were made with: unset API_KEY_PEPPER to use it');
  });

  it('guards broker credentials as it guards keys', async () => {
    const { fernetKey } = await open(PEPPER);
    new CredentialStore({ db, fernetKey }).set('carol', 'zerodha', { apiKey: 'kiteapp', accessToken: 'kitetoken0123' });
    expect(pepperedSecrets(db)).toEqual({ keys: 0, credentials: 1 });
    expect(await refused(OTHER)).toContain('the broker credentials of 1 user made with a different pepper');
  });

  it('takes the current pepper when the store holds nothing it protects', async () => {
    await open(PEPPER);
    const before = fingerprint();
    expect((await open(OTHER)).pepper).toBe(OTHER);
    expect(fingerprint()).not.toBe(before);
    expect(await fingerprintMatches(fingerprint()!, OTHER)).toBe(true);
  });

  it('records the pepper of a store made before fingerprints once a stored key confirms it', async () => {
    await createKey(PEPPER);
    new StoreMetadata(db).delete(PEPPER_FINGERPRINT); // as a store from before this version
    const message = await refused(OTHER);
    expect(message).toContain('none of them can be opened with API_KEY_PEPPER');
    expect(fingerprint()).toBeUndefined();
    await open(PEPPER);
    expect(await fingerprintMatches(fingerprint()!, PEPPER)).toBe(true);
    await refused(OTHER);
  });

  it('refuses a fingerprint it cannot read rather than guess', async () => {
    await createKey(PEPPER);
    new StoreMetadata(db).set(PEPPER_FINGERPRINT, 'argon2id$whatever');
    const error = await open(PEPPER).catch((err: TickcastError) => err);
    expect(error).toBeInstanceOf(TickcastError);
    expect((error as TickcastError).message).toContain('upgrade tickcast');
  });

  it('starts over after deletePepperedSecrets: keys and credentials gone, users and brokers kept', async () => {
    const { fernetKey } = await open(PEPPER);
    await new ApiKeyStore({ db, pepper: PEPPER, fernetKey }).create('alice', 'zerodha');
    new CredentialStore({ db, fernetKey }).set('alice', 'zerodha', { apiKey: 'kiteapp', accessToken: 'kitetoken0123' });
    expect(deletePepperedSecrets(db)).toEqual({ keys: 1, credentials: 1 });
    expect(pepperedSecrets(db)).toEqual({ keys: 0, credentials: 0 });
    expect(db.prepare('SELECT name, broker FROM auth').all()).toEqual([{ name: 'alice', broker: 'zerodha' }]);
    expect(fingerprint()).toBeUndefined();
    expect((await open(OTHER)).pepper).toBe(OTHER);
  });
});
