import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ApiKeyStore } from '../../src/auth/api-keys.js';
import { CredentialStore } from '../../src/auth/credentials.js';
import { deriveFernetKey, fernetDecrypt, fernetEncrypt } from '../../src/auth/fernet.js';
import { ErrorCode, TickcastError } from '../../src/errors.js';
import { openDatabase, type Database } from '../../src/store/database.js';

const PEPPER = 'credentials-test-pepper-0123456789abcdef0123';
const OTHER_PEPPER = 'another-pepper-entirely-0123456789abcdef01234';
const KITE = { apiKey: 'kiteapikey123', accessToken: 'kiteAccessToken0123456789abcdef' };
const ANGEL = { apiKey: 'angelAppKey', accessToken: 'eyJhbGciOiJIUzUxMiJ9.eyJzdWIiOiJBMTIzNCJ9.c2lnbmF0dXJl', feedToken: 'feedTok3n', clientCode: 'A1234' };

let fernetKey: Buffer;
let otherKey: Buffer;
let dir: string;
let db: Database;
let store: CredentialStore;

beforeAll(async () => {
  fernetKey = await deriveFernetKey(PEPPER);
  otherKey = await deriveFernetKey(OTHER_PEPPER);
});
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tickcast-creds-'));
  db = openDatabase(path.join(dir, 'tickcast.db'));
  store = new CredentialStore({ db, fernetKey });
});
afterEach(() => {
  db.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

interface AuthRow {
  name: string;
  auth: string;
  feed_token: string | null;
  broker: string;
  user_id: string | null;
  secret_api_key: string | null;
  is_revoked: number;
}
const authRow = (user: string): AuthRow => db.prepare('SELECT * FROM auth WHERE name = ?').get(user) as AuthRow;

function expectError(fn: () => unknown, code: ErrorCode, text: string | RegExp): void {
  let error: unknown;
  try {
    fn();
  } catch (err) {
    error = err;
  }
  expect(error).toBeInstanceOf(TickcastError);
  expect((error as TickcastError).code).toBe(code);
  expect((error as TickcastError).message).toMatch(text);
}

describe('CredentialStore', () => {
  it('round-trips Zerodha and Angel credentials', () => {
    store.set('alice', 'zerodha', KITE);
    store.set('bob', 'angel', ANGEL);
    expect(store.get('alice')).toEqual({ broker: 'zerodha', credentials: KITE });
    expect(store.get('bob')).toEqual({ broker: 'angel', credentials: ANGEL });
    expect(store.get('carol')).toBeUndefined();
  });

  it("encrypts at rest, in OpenAlgo's columns and forms", () => {
    store.set('alice', 'zerodha', { ...KITE, clientCode: 'AB1234' });
    store.set('bob', 'angel', ANGEL);
    const dump = JSON.stringify(db.prepare('SELECT * FROM auth').all());
    for (const secret of [KITE.apiKey, KITE.accessToken, ANGEL.apiKey, ANGEL.accessToken, ANGEL.feedToken]) expect(dump).not.toContain(secret);
    const bytes = fs.readFileSync(db.name).toString('latin1') + (fs.existsSync(`${db.name}-wal`) ? fs.readFileSync(`${db.name}-wal`).toString('latin1') : '');
    expect(bytes).not.toContain(KITE.accessToken);
    expect(bytes).not.toContain(ANGEL.accessToken);

    const alice = authRow('alice');
    // OpenAlgo's Zerodha login stores "api_key:access_token" in auth.auth.
    expect(fernetDecrypt(fernetKey, alice.auth)).toBe(`${KITE.apiKey}:${KITE.accessToken}`);
    expect(fernetDecrypt(fernetKey, alice.secret_api_key!)).toBe(KITE.apiKey);
    expect(alice).toMatchObject({ broker: 'zerodha', feed_token: null, user_id: 'AB1234', is_revoked: 0 });
    const bob = authRow('bob');
    expect(fernetDecrypt(fernetKey, bob.auth)).toBe(ANGEL.accessToken);
    expect(fernetDecrypt(fernetKey, bob.feed_token!)).toBe(ANGEL.feedToken);
    expect(bob).toMatchObject({ broker: 'angel', user_id: 'A1234' });
  });

  it('reads rows OpenAlgo wrote (api_key:access_token, no secret_api_key)', () => {
    db.prepare("INSERT INTO auth (name, auth, broker, user_id, is_revoked) VALUES ('oa', ?, 'zerodha', 'ZX1', 0)").run(fernetEncrypt(fernetKey, 'oakey:oatoken'));
    expect(store.get('oa')).toEqual({ broker: 'zerodha', credentials: { apiKey: 'oakey', accessToken: 'oatoken', clientCode: 'ZX1' } });
    db.prepare("INSERT INTO auth (name, auth, feed_token, broker, is_revoked) VALUES ('oa2', ?, ?, 'angel', 0)").run(fernetEncrypt(fernetKey, 'jwt'), fernetEncrypt(fernetKey, 'feed'));
    expect(store.get('oa2')).toEqual({ broker: 'angel', credentials: { apiKey: '', accessToken: 'jwt', feedToken: 'feed' } });
  });

  it('cannot be read with another pepper', async () => {
    store.set('alice', 'zerodha', KITE);
    const stranger = new CredentialStore({ db, fernetKey: otherKey });
    expectError(() => stranger.get('alice'), ErrorCode.STORE_FAILED, /access token of user "alice" does not decrypt.*API_KEY_PEPPER/);
    await expect(stranger.sourceFor('alice').load()).rejects.toThrow(/does not decrypt/);
    expect(stranger.describe('alice')).toMatchObject({ accessToken: true, apiKey: true, readable: false });
    expect(store.describe('alice')).toMatchObject({ readable: true });
  });

  it('hands out revoked, emptied or unknown-broker rows as none', () => {
    store.set('alice', 'zerodha', KITE);
    db.prepare('UPDATE auth SET is_revoked = 1 WHERE name = ?').run('alice');
    expect(store.get('alice')).toBeUndefined();
    expect(store.describe('alice')).toMatchObject({ revoked: true });
    store.set('alice', 'zerodha', KITE); // a new login clears OpenAlgo's revoked flag
    expect(store.get('alice')?.broker).toBe('zerodha');
    db.prepare("INSERT INTO auth (name, auth, broker) VALUES ('sim', '', 'simulator')").run();
    expect(store.get('sim')).toBeUndefined();
    db.prepare("INSERT INTO auth (name, auth, broker) VALUES ('fy', ?, 'fyers')").run(fernetEncrypt(fernetKey, 'x'));
    expect(store.get('fy')).toBeUndefined();
  });

  it('sources re-read the database on every load, across connections', async () => {
    store.set('alice', 'zerodha', KITE);
    const source = store.sourceFor('alice');
    expect(await source.load()).toEqual(KITE);
    // A re-login written by another process (another connection) shows at the next load.
    const other = openDatabase(db.name);
    try {
      new CredentialStore({ db: other, fernetKey }).set('alice', 'zerodha', { ...KITE, accessToken: 'freshToken' });
    } finally {
      other.close();
    }
    expect(await source.load()).toEqual({ ...KITE, accessToken: 'freshToken' });
    store.remove('alice');
    expect(await source.load()).toBeUndefined();
  });

  it("a broker's source never yields another broker's credentials", async () => {
    store.set('alice', 'angel', ANGEL);
    expect(await store.sourceFor('alice', 'angel').load()).toEqual(ANGEL);
    expect(await store.sourceFor('alice', 'zerodha').load()).toBeUndefined();
  });

  it("remove clears the secrets but keeps the user's auth row, API key and broker", async () => {
    const keys = new ApiKeyStore({ db, pepper: PEPPER, fernetKey });
    await keys.create('alice', 'zerodha');
    store.set('alice', 'zerodha', { ...KITE, clientCode: 'AB1234' });
    expect(store.remove('alice')).toBe(true);
    expect(store.remove('alice')).toBe(false);
    expect(authRow('alice')).toMatchObject({ auth: '', feed_token: null, user_id: null, secret_api_key: null, broker: 'zerodha' });
    expect(keys.brokerFor('alice')).toBe('zerodha');
    expect(keys.count()).toBe(1);
    expect(store.get('alice')).toBeUndefined();
    expect(store.remove('nobody')).toBe(false);
  });

  it("keeps an API key's auth row working: set switches the broker, keys create keeps the session", async () => {
    const keys = new ApiKeyStore({ db, pepper: PEPPER, fernetKey });
    await keys.create('alice', 'simulator');
    store.set('alice', 'zerodha', KITE);
    expect(keys.brokerFor('alice')).toBe('zerodha');
    await keys.create('alice', 'zerodha'); // a new key does not wipe the broker session
    expect(store.get('alice')?.credentials).toEqual(KITE);
  });

  it('validates what it stores, never echoing secrets', () => {
    expectError(() => store.set('alice', 'angel', KITE), ErrorCode.USAGE, 'Angel needs a feed token and a client code too');
    expectError(() => store.set('alice', 'angel', { ...ANGEL, clientCode: undefined }), ErrorCode.USAGE, /needs a client code/);
    expectError(() => store.set('alice', 'zerodha', { ...KITE, feedToken: 'x' }), ErrorCode.USAGE, /Zerodha has no feed token/);
    expectError(() => store.set('alice', 'zerodha', { ...KITE, apiKey: 'a:b' }), ErrorCode.USAGE, /no ':'/);
    expectError(() => store.set('alice', 'zerodha', { ...KITE, accessToken: '' }), ErrorCode.USAGE, /access token is empty/);
    expectError(() => store.set('alice', 'zerodha', { ...KITE, accessToken: 'has space secret' }), ErrorCode.USAGE, /printable ASCII without spaces/);
    expectError(() => store.set('alice', 'fyers' as 'zerodha', KITE), ErrorCode.USAGE, /broker must be one of zerodha, angel/);
    expectError(() => store.set('', 'zerodha', KITE), ErrorCode.USAGE, /user must be/);
    try {
      store.set('alice', 'zerodha', { ...KITE, accessToken: 'has space secret' });
    } catch (err) {
      expect((err as Error).message).not.toContain('secret');
    }
    // Angel's JWT may carry its "Bearer " prefix.
    store.set('bob', 'angel', { ...ANGEL, accessToken: `Bearer ${ANGEL.accessToken}` });
    expect(store.get('bob')?.credentials.accessToken).toBe(`Bearer ${ANGEL.accessToken}`);
    expect(db.prepare('SELECT COUNT(*) AS n FROM auth').get()).toEqual({ n: 1 });
  });
});
