import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ApiKeyStore } from '../../src/auth/api-keys.js';
import { CredentialStore, OpenAlgoCredentials, openAlgoBrokerKey } from '../../src/auth/credentials.js';
import { deriveFernetKey, fernetDecrypt, fernetEncrypt } from '../../src/auth/fernet.js';
import { ErrorCode, TickcastError } from '../../src/errors.js';
import { openDatabase, type Database } from '../../src/store/database.js';
import type { OpenAlgoDb } from '../../src/store/openalgo-db.js';

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

describe('the brokers beyond Zerodha and Angel', () => {
  const DHAN = { apiKey: '', accessToken: 'dhanAccessToken.jwt', clientCode: '1000000123' };
  const UPSTOX = { apiKey: '', accessToken: 'upstoxAccessToken' };
  const NOREN = { apiKey: '', accessToken: 'norenSessionToken', clientCode: 'FA12345' };

  it('stores what each feed needs and no API key it does not', () => {
    store.set('d', 'dhan', DHAN);
    store.set('u', 'upstox', UPSTOX);
    store.set('s', 'shoonya', NOREN);
    store.set('f', 'flattrade', { ...NOREN, apiKey: 'ftAppKey' });
    expect(store.get('d')).toEqual({ broker: 'dhan', credentials: DHAN });
    expect(store.get('u')).toEqual({ broker: 'upstox', credentials: UPSTOX });
    expect(store.get('s')).toEqual({ broker: 'shoonya', credentials: NOREN });
    expect(store.get('f')).toEqual({ broker: 'flattrade', credentials: { ...NOREN, apiKey: 'ftAppKey' } });
    // OpenAlgo's form: the token alone in auth, the client code plain in user_id.
    expect(fernetDecrypt(fernetKey, authRow('d').auth)).toBe(DHAN.accessToken);
    expect(authRow('d')).toMatchObject({ user_id: DHAN.clientCode, secret_api_key: null, feed_token: null });
    expect(store.describe('u')).toMatchObject({ broker: 'upstox', accessToken: true, apiKey: false, clientCode: false, readable: true });
  });

  it('refuses what a feed cannot work without, and what it has no use for', () => {
    expectError(() => store.set('d', 'dhan', { ...DHAN, clientCode: undefined }), ErrorCode.USAGE, 'Dhan needs a client id too');
    expectError(() => store.set('s', 'shoonya', { apiKey: '', accessToken: 't' }), ErrorCode.USAGE, 'Shoonya needs a user id too');
    expectError(() => store.set('f', 'flattrade', { apiKey: '', accessToken: 't' }), ErrorCode.USAGE, 'Flattrade needs a user id too');
    expectError(() => store.set('u', 'upstox', { ...UPSTOX, feedToken: 'x' }), ErrorCode.USAGE, /Upstox has no feed token/);
    expectError(() => store.set('u', 'upstox', { ...UPSTOX, accessToken: '' }), ErrorCode.USAGE, /access token is empty/);
    expectError(() => store.set('u', 'upstox', { ...UPSTOX, apiKey: 'has space' }), ErrorCode.USAGE, /API key must be printable/);
    expectError(() => store.set('k', 'zerodha', { ...KITE, apiKey: '' }), ErrorCode.USAGE, /API key is empty/);
    expect(db.prepare('SELECT COUNT(*) AS n FROM auth').get()).toEqual({ n: 0 });
  });
});

describe('openAlgoBrokerKey', () => {
  it("reads BROKER_API_KEY as OpenAlgo's streaming adapters do", () => {
    expect(openAlgoBrokerKey('1000000123:::dhanAppKey')).toEqual({ clientCode: '1000000123', apiKey: 'dhanAppKey' });
    expect(openAlgoBrokerKey('FA12345:::')).toEqual({ clientCode: 'FA12345' });
    expect(openAlgoBrokerKey('smartApiKey')).toEqual({ apiKey: 'smartApiKey' });
    expect(openAlgoBrokerKey(':::key')).toEqual({ apiKey: 'key' });
    expect(openAlgoBrokerKey('')).toEqual({});
    expect(openAlgoBrokerKey(undefined)).toEqual({});
  });
});

describe("OpenAlgoCredentials over OpenAlgo's auth rows", () => {
  /** OpenAlgo's database, as the rows tickcast's own store holds (the same table). */
  function openalgoDb(): OpenAlgoDb {
    return { all: async (sql: string, params?: readonly unknown[]) => db.prepare(sql).all(...(params ?? [])) } as unknown as OpenAlgoDb;
  }
  function insert(name: string, broker: string, token: string, userId: string | null): void {
    db.prepare('INSERT INTO auth (name, auth, broker, user_id, is_revoked) VALUES (?, ?, ?, ?, 0)').run(name, fernetEncrypt(fernetKey, token), broker, userId);
  }

  it("fills what a row lacks from BROKER_API_KEY, and a row's own values win", async () => {
    insert('dhanuser', 'dhan', 'dhanTok', '1000000123'); // OpenAlgo keeps Dhan's client id in user_id
    insert('shoonyauser', 'shoonya', 'susertoken', null); // and Shoonya's nowhere: its adapter reads BROKER_API_KEY
    insert('angeluser', 'angel', 'jwt', 'A1234');
    const withKey = new OpenAlgoCredentials({ db: openalgoDb(), fernetKey, hasSecretApiKey: true, brokerApiKey: 'FA99999:::appKey' });
    expect(await withKey.get('dhanuser')).toEqual({ broker: 'dhan', credentials: { apiKey: 'appKey', accessToken: 'dhanTok', clientCode: '1000000123' } });
    expect(await withKey.get('shoonyauser')).toEqual({ broker: 'shoonya', credentials: { apiKey: 'appKey', accessToken: 'susertoken', clientCode: 'FA99999' } });
    expect(await withKey.sourceFor('shoonyauser', 'flattrade').load()).toBeUndefined(); // never another broker's token
    const plainKey = new OpenAlgoCredentials({ db: openalgoDb(), fernetKey, hasSecretApiKey: true, brokerApiKey: 'smartApiKey' });
    expect(await plainKey.get('angeluser')).toEqual({ broker: 'angel', credentials: { apiKey: 'smartApiKey', accessToken: 'jwt', clientCode: 'A1234' } });
    const without = new OpenAlgoCredentials({ db: openalgoDb(), fernetKey, hasSecretApiKey: true });
    expect(await without.get('shoonyauser')).toEqual({ broker: 'shoonya', credentials: { apiKey: '', accessToken: 'susertoken' } });
  });
});
