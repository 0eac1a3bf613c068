import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { parseOptions } from '@node-rs/argon2';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ApiKeyStore, verifyApiKeyHash } from '../../src/auth/api-keys.js';
import { deriveFernetKey, fernetDecrypt } from '../../src/auth/fernet.js';
import { resolvePepper } from '../../src/auth/pepper.js';
import { ErrorCode, TickcastError } from '../../src/errors.js';
import { migrate, openDatabase, type Database } from '../../src/store/database.js';

const PEPPER = 'unit-test-pepper-0123456789abcdef0123456789';
let fernetKey: Buffer;
let dir: string;

beforeAll(async () => {
  fernetKey = await deriveFernetKey(PEPPER);
});
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tickcast-keys-'));
});
afterEach(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

function columns(db: Database, table: string): Record<string, { type: string; notnull: number; dflt: unknown }> {
  const rows = db.prepare(`PRAGMA table_info(${table})`).all() as {
    name: string;
    type: string;
    notnull: number;
    dflt_value: unknown;
  }[];
  return Object.fromEntries(rows.map((r) => [r.name, { type: r.type, notnull: r.notnull, dflt: r.dflt_value }]));
}

function expectStoreFailed(fn: () => unknown, text: string): void {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(TickcastError);
    expect((err as TickcastError).code).toBe(ErrorCode.STORE_FAILED);
    expect((err as TickcastError).message).toContain(text);
    return;
  }
  throw new Error('expected STORE_FAILED');
}

describe('openDatabase', () => {
  it('creates the parent directory, a private WAL file and the OpenAlgo tables', () => {
    const file = path.join(dir, 'nested', 'deeper', 'tickcast.db');
    const db = openDatabase(file);
    try {
      expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
      expect(db.pragma('busy_timeout', { simple: true })).toBe(5000);
      expect(db.pragma('foreign_keys', { simple: true })).toBe(1);
      expect(fs.statSync(file).mode & 0o777).toBe(0o600);

      const keys = columns(db, 'api_keys');
      expect(Object.keys(keys)).toEqual(['id', 'user_id', 'api_key_hash', 'api_key_encrypted', 'created_at', 'order_mode']);
      expect(keys['user_id']).toMatchObject({ type: 'VARCHAR', notnull: 1 });
      expect(keys['api_key_hash']).toMatchObject({ type: 'TEXT', notnull: 1 });
      expect(keys['created_at']?.type).toBe('DATETIME');
      expect(keys['order_mode']).toMatchObject({ type: 'VARCHAR(20)', dflt: "'auto'" });

      const auth = columns(db, 'auth');
      for (const name of ['id', 'name', 'auth', 'feed_token', 'broker', 'user_id', 'is_revoked']) expect(auth).toHaveProperty(name);
      expect(auth['name']).toMatchObject({ type: 'VARCHAR(255)', notnull: 1 });
      expect(auth['broker']).toMatchObject({ type: 'VARCHAR(20)', notnull: 1 });
      expect(auth['is_revoked']).toMatchObject({ type: 'BOOLEAN', dflt: '0' });

      // UNIQUE(user_id) and UNIQUE(name), as OpenAlgo's models declare.
      db.prepare("INSERT INTO api_keys (user_id, api_key_hash, api_key_encrypted) VALUES ('u', 'h', 'e')").run();
      expect(() => db.prepare("INSERT INTO api_keys (user_id, api_key_hash, api_key_encrypted) VALUES ('u', 'h', 'e')").run()).toThrow(/UNIQUE/);
      const row = db.prepare("SELECT order_mode, created_at FROM api_keys WHERE user_id = 'u'").get() as Record<string, string>;
      expect(row['order_mode']).toBe('auto');
      expect(row['created_at']).toMatch(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/);
    } finally {
      db.close();
    }
  });

  it('migrates once: reopening keeps the data and applies nothing', () => {
    const file = path.join(dir, 'tickcast.db');
    const first = openDatabase(file);
    first.prepare("INSERT INTO auth (name, auth, broker) VALUES ('alice', '', 'zerodha')").run();
    first.close();
    const second = openDatabase(file);
    try {
      expect(migrate(second, 'store', [{ version: 1, name: 'x', up: () => { throw new Error('re-ran'); } }])).toBe(0);
      expect(second.prepare('SELECT broker FROM auth').get()).toEqual({ broker: 'zerodha' });
    } finally {
      second.close();
    }
  });

  it('runs a component’s migrations in order and refuses a newer schema', () => {
    const db = openDatabase(path.join(dir, 'tickcast.db'));
    try {
      const order: number[] = [];
      const migrations = [2, 1].map((version) => ({ version, name: `v${version}`, up: () => void order.push(version) }));
      expect(migrate(db, 'other', migrations)).toBe(2);
      expect(order).toEqual([1, 2]);
      expectStoreFailed(() => migrate(db, 'other', migrations.slice(1)), 'newer than this tickcast knows');
    } finally {
      db.close();
    }
  });

  it('rolls a failed migration back and names the file', () => {
    const file = path.join(dir, 'tickcast.db');
    const db = openDatabase(file);
    try {
      const bad = { version: 1, name: 'bad', up: (d: Database) => { d.exec('CREATE TABLE half (x)'); d.exec('NOT SQL'); } };
      expectStoreFailed(() => migrate(db, 'broken', [bad]), file);
      expect(db.prepare("SELECT name FROM sqlite_master WHERE name = 'half'").get()).toBeUndefined();
    } finally {
      db.close();
    }
  });

  it('reports an unusable file as STORE_FAILED naming it', () => {
    const notADb = path.join(dir, 'garbage.db');
    fs.writeFileSync(notADb, 'this is not a database, just some text that is long enough'.repeat(20));
    expectStoreFailed(() => openDatabase(notADb), notADb);
    const blocked = path.join(dir, 'file-not-dir', 'x.db');
    fs.writeFileSync(path.join(dir, 'file-not-dir'), '');
    expectStoreFailed(() => openDatabase(blocked), blocked);
  });
});

describe('resolvePepper', () => {
  it('uses a configured pepper of at least 32 characters', () => {
    expect(resolvePepper(PEPPER, dir)).toEqual({ pepper: PEPPER, source: 'config' });
    expect(() => resolvePepper('too-short', dir)).toThrow(/at least 32 characters \(got 9\)/);
    expect(fs.existsSync(path.join(dir, 'pepper'))).toBe(false);
  });

  it('creates a private 64-hex-char file once, then reads it', () => {
    const dataDir = path.join(dir, 'data');
    const created = resolvePepper(undefined, dataDir);
    expect(created.source).toBe('created');
    expect(created.pepper).toMatch(/^[0-9a-f]{64}$/);
    expect(fs.statSync(path.join(dataDir, 'pepper')).mode & 0o777).toBe(0o600);
    expect(fs.readdirSync(dataDir)).toEqual(['pepper']); // no temp files left
    expect(resolvePepper(undefined, dataDir)).toEqual({ pepper: created.pepper, source: 'file' });
    expect(resolvePepper('', dataDir)).toEqual({ pepper: created.pepper, source: 'file' });
  });

  it('reads a hand-written file (trailing newline) and rejects a short one', () => {
    fs.writeFileSync(path.join(dir, 'pepper'), `${PEPPER}\n`);
    expect(resolvePepper(undefined, dir)).toEqual({ pepper: PEPPER, source: 'file' });
    fs.writeFileSync(path.join(dir, 'pepper'), 'short\n');
    expect(() => resolvePepper(undefined, dir)).toThrow(/pepper file .* at least 32/);
  });

  it('gives racing processes one and the same pepper', async () => {
    const pepperModule = fileURLToPath(new URL('../../src/auth/pepper.ts', import.meta.url));
    const code =
      'const { resolvePepper } = await import(process.argv[1]);' +
      'const r = resolvePepper(undefined, process.argv[2]); console.log(JSON.stringify(r));';
    const run = promisify(execFile);
    const results = await Promise.all(
      Array.from({ length: 4 }, () =>
        run(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code, pepperModule, dir]),
      ),
    );
    const parsed = results.map((r) => JSON.parse(r.stdout) as { pepper: string; source: string });
    expect(new Set(parsed.map((p) => p.pepper)).size).toBe(1);
    expect(parsed.filter((p) => p.source === 'created')).toHaveLength(1);
    expect(fs.readFileSync(path.join(dir, 'pepper'), 'utf8').trim()).toBe(parsed[0]!.pepper);
  });
});

describe('ApiKeyStore', () => {
  let db: Database;
  let store: ApiKeyStore;
  const at = Date.UTC(2026, 0, 2, 3, 4, 5, 678);

  beforeEach(() => {
    db = openDatabase(path.join(dir, 'tickcast.db'));
    store = new ApiKeyStore({ db, pepper: PEPPER, fernetKey, clock: { now: () => at } });
  });
  afterEach(() => db.close());

  it('creates an OpenAlgo-style key: token_hex(32), Argon2id(key + pepper), Fernet(key)', async () => {
    const created = await store.create('alice', 'zerodha');
    expect(created).toEqual({
      apiKey: expect.stringMatching(/^[0-9a-f]{64}$/),
      user: 'alice',
      broker: 'zerodha',
      createdAt: '2026-01-02T03:04:05Z',
      replaced: false,
    });
    const row = db.prepare('SELECT * FROM api_keys').get() as Record<string, string>;
    expect(row['user_id']).toBe('alice');
    expect(row['order_mode']).toBe('auto');
    expect(row['created_at']).toBe('2026-01-02 03:04:05.678000');
    expect(row['api_key_hash']).toMatch(/^\$argon2id\$v=19\$m=65536,t=3,p=4\$/);
    expect(parseOptions(row['api_key_hash']!)).toMatchObject({ outputLen: 32, saltLen: 16 });
    expect(await verifyApiKeyHash(row['api_key_hash']!, created.apiKey, PEPPER)).toBe(true);
    expect(await verifyApiKeyHash(row['api_key_hash']!, created.apiKey, `${PEPPER}x`)).toBe(false);
    expect(fernetDecrypt(fernetKey, row['api_key_encrypted']!)).toBe(created.apiKey);

    const auth = db.prepare('SELECT name, auth, broker, is_revoked FROM auth').all();
    expect(auth).toEqual([{ name: 'alice', auth: '', broker: 'zerodha', is_revoked: 0 }]);
    expect(store.brokerFor('alice')).toBe('zerodha');
    expect(store.count()).toBe(1);
  });

  it('replaces a user’s key (one per user) and keeps their broker session', async () => {
    const first = await store.create('alice', 'zerodha');
    db.prepare("UPDATE auth SET auth = 'encrypted-broker-token', is_revoked = 1 WHERE name = 'alice'").run();
    const idBefore = store.rowFor('alice')!.id;
    const second = await store.create('alice', 'angel');
    expect(second.replaced).toBe(true);
    expect(second.apiKey).not.toBe(first.apiKey);
    expect(store.count()).toBe(1);
    const row = store.rowFor('alice')!;
    expect(row.id).toBe(idBefore);
    expect(await verifyApiKeyHash(row.hash, first.apiKey, PEPPER)).toBe(false);
    expect(await verifyApiKeyHash(row.hash, second.apiKey, PEPPER)).toBe(true);
    expect(db.prepare("SELECT auth, broker, is_revoked FROM auth WHERE name = 'alice'").get()).toEqual({
      auth: 'encrypted-broker-token',
      broker: 'angel',
      is_revoked: 0,
    });
  });

  it('lists users with a preview of each key, never the key', async () => {
    const bob = await store.create('bob', 'angel');
    const alice = await store.create('alice', 'zerodha');
    db.prepare("INSERT INTO api_keys (user_id, api_key_hash, api_key_encrypted) VALUES ('carol', 'h', 'not-fernet')").run();
    db.prepare("UPDATE auth SET is_revoked = 1 WHERE name = 'bob'").run();
    const list = store.list();
    expect(list).toEqual([
      { user: 'alice', broker: 'zerodha', createdAt: '2026-01-02T03:04:05Z', keyPreview: `${alice.apiKey.slice(0, 8)}…` },
      { user: 'bob', broker: null, createdAt: '2026-01-02T03:04:05Z', keyPreview: `${bob.apiKey.slice(0, 8)}…` },
      { user: 'carol', broker: null, createdAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/), keyPreview: null },
    ]);
    expect(JSON.stringify(list)).not.toContain(alice.apiKey);
  });

  it('revokes a key, leaving the auth row', async () => {
    await store.create('alice', 'zerodha');
    expect(store.revoke('alice')).toBe(true);
    expect(store.revoke('alice')).toBe(false);
    expect(store.count()).toBe(0);
    expect(store.rowFor('alice')).toBeNull();
    expect(store.brokerFor('alice')).toBe('zerodha');
  });

  it('reads the broker as OpenAlgo’s get_broker_name (revoked or missing → null)', () => {
    db.prepare("INSERT INTO auth (name, auth, broker, is_revoked) VALUES ('a', '', 'zerodha', NULL), ('b', '', 'angel', 1)").run();
    expect(store.brokerFor('a')).toBe('zerodha');
    expect(store.brokerFor('b')).toBeNull();
    expect(store.brokerFor('nobody')).toBeNull();
  });

  it('validates user and broker', async () => {
    await expect(store.create('', 'zerodha')).rejects.toMatchObject({ code: ErrorCode.USAGE });
    await expect(store.create('a\nb', 'zerodha')).rejects.toMatchObject({ code: ErrorCode.USAGE });
    await expect(store.create('alice', 'has space')).rejects.toMatchObject({ code: ErrorCode.USAGE });
    await expect(store.create('alice', 'x'.repeat(21))).rejects.toMatchObject({ code: ErrorCode.USAGE });
    expect(store.count()).toBe(0);
  });

  it('moves its revision on writes from this and from other connections', async () => {
    const r0 = store.revision();
    expect(store.revision()).toBe(r0);
    await store.create('alice', 'zerodha');
    const r1 = store.revision();
    expect(r1).not.toBe(r0);
    const other = openDatabase(path.join(dir, 'tickcast.db'));
    other.prepare("DELETE FROM api_keys WHERE user_id = 'alice'").run();
    other.close();
    expect(store.revision()).not.toBe(r1);
  });
});
