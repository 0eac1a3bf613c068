/**
 * OpenAlgo's database in place (DATABASE_URL): a gateway authenticating OpenAlgo's users with the
 * keys, broker sessions and symbol master OpenAlgo keeps, while "OpenAlgo" (its own libraries
 * through /usr/bin/python3, and psql) changes them under it. Real SQLite files, and the machine's
 * PostgreSQL with a fresh database per test, read by a role that may only SELECT. Never skipped:
 * without Python's argon2/cryptography or a PostgreSQL server these tests fail, saying what is
 * missing.
 */
import crypto from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ZmqPublisher } from '../../src/bus/zeromq.js';
import { loadConfig } from '../../src/config/load.js';
import { ErrorCode, ProtocolMessage, type TickcastError } from '../../src/errors.js';
import { type RunningInstance, startGateway as startGatewayRole } from '../../src/roles/gateway.js';
import { silentLogger } from '../../src/observability/logger.js';
import { killSpawnedProcesses, runCli, startGatewayProcess } from '../helpers/cli.js';
import { testConfig } from '../helpers/instance.js';
import { TestClient, waitUntil } from '../helpers/client.js';
import { FakeKite } from '../helpers/fake-kite.js';
import {
  type Dialect,
  OpenAlgoWriter,
  type PgTestDatabase,
  type SymtokenRow,
  createPgTestDatabase,
  grantSelectOnly,
  withPgAdmin,
} from '../helpers/openalgo-db.js';

const PEPPER = crypto.randomBytes(32).toString('hex'); // OpenAlgo's .env: secrets.token_hex(32)
const FERNET_SALT = crypto.randomBytes(32).toString('hex');
const KITE = { apiKey: 'kite-app-key', accessToken: 'kite-token-1' };
/** OpenAlgo's Zerodha master: `instrument_token::::exchange_token`. */
const RELIANCE: SymtokenRow = { symbol: 'RELIANCE', exchange: 'NSE', brexchange: 'NSE', token: '738561::::2885' };
const SBIN: SymtokenRow = { symbol: 'SBIN', exchange: 'NSE', brexchange: 'NSE', token: '779521::::3045' };
const INFY: SymtokenRow = { symbol: 'INFY', exchange: 'NSE', brexchange: 'NSE', token: '408065::::1594' };

let kite: FakeKite;
beforeAll(async () => {
  kite = await FakeKite.start(KITE);
});
afterAll(async () => {
  await kite.close();
});

/** A database OpenAlgo owns and a DATABASE_URL tickcast reads it with. */
interface Backend {
  dialect: Dialect;
  openalgo: OpenAlgoWriter;
  url: string;
  cleanup(): Promise<void>;
}

async function sqliteBackend(): Promise<Backend> {
  const dir = mkdtempSync(join(tmpdir(), 'tickcast-openalgo-'));
  const file = join(dir, 'db', 'openalgo.db');
  mkdirSync(join(dir, 'db'));
  const openalgo = new OpenAlgoWriter('sqlite', file, PEPPER, FERNET_SALT);
  openalgo.createSchema();
  return { dialect: 'sqlite', openalgo, url: `sqlite:///${file}`, cleanup: async () => rmSync(dir, { recursive: true, force: true }) };
}

async function postgresBackend(): Promise<Backend & { db: PgTestDatabase }> {
  const db = await createPgTestDatabase();
  try {
    const openalgo = new OpenAlgoWriter('postgresql', db.owner, PEPPER, FERNET_SALT);
    openalgo.createSchema();
    openalgo.apply([grantSelectOnly(db)]);
    return { dialect: 'postgresql', openalgo, url: db.readerUrl, db, cleanup: () => db.drop() };
  } catch (error) {
    await db.drop();
    throw error;
  }
}

const dataDirs: string[] = [];

function configFor(url: string, env: Record<string, string> = {}) {
  return testConfig(dataDirFor(), {
    DATABASE_URL: url,
    API_KEY_PEPPER: PEPPER,
    FERNET_SALT,
    TICKCAST_KITE_URL: kite.url,
    TICKCAST_AUTH_FAILURES: '1000',
    ...env,
  });
}

async function startGateway(url: string, env: Record<string, string> = {}): Promise<RunningInstance> {
  return startGatewayRole(configFor(url, env), { logger: silentLogger() });
}

async function startFails(url: string, env: Record<string, string> = {}): Promise<TickcastError> {
  const error = await startGateway(url, env).then(
    async (gw) => {
      await gw.stop();
      throw new Error('the gateway started');
    },
    (e: unknown) => e as TickcastError,
  );
  return error;
}

/** Authenticates and returns the reply (the client is closed after). */
async function authReply(gw: RunningInstance, apiKey: string): Promise<Record<string, any>> {
  const client = await TestClient.connect(gw.url);
  try {
    return await client.request({ action: 'authenticate', api_key: apiKey });
  } finally {
    await client.close();
  }
}

/** Polls `check` until it holds: a hang catcher, not a timing assertion. */
async function eventually(check: () => Promise<boolean>, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`not within ${timeoutMs} ms: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

const zerodha = (extra: Partial<{ token: string; revoked: boolean; undecryptable: boolean }> = {}) => ({
  broker: 'zerodha',
  token: `${KITE.apiKey}:${KITE.accessToken}`,
  userId: 'ZX1234',
  ...extra,
});

afterEach(async () => {
  await killSpawnedProcesses();
  for (const dir of dataDirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

describe('prerequisites', () => {
  it('has /usr/bin/python3 with argon2-cffi and cryptography, and a PostgreSQL server with psql', async () => {
    const backend = await sqliteBackend(); // writes through python3's argon2, cryptography and sqlite3
    await backend.cleanup();
    const version = await withPgAdmin(async (admin) => (await admin.query<{ server_version: string }>('SHOW server_version')).rows[0]!.server_version);
    expect(version).toMatch(/^\d+/);
  });
});

for (const kind of ['sqlite', 'postgresql'] as const) {
  describe(`OpenAlgo's database on ${kind}`, () => {
    let backend: Backend;
    let gw: RunningInstance | undefined;

    beforeEach(async () => {
      backend = kind === 'sqlite' ? await sqliteBackend() : await postgresBackend();
      backend.openalgo.apply([
        { op: 'auth', user: 'alice', ...zerodha() },
        { op: 'auth', user: 'bob', ...zerodha() },
        { op: 'symtoken', rows: [RELIANCE, SBIN] },
      ]);
    });
    afterEach(async () => {
      await gw?.stop();
      gw = undefined;
      await backend.cleanup();
    });

    it("authenticates a key OpenAlgo made, with the user's broker from its auth row", async () => {
      const key = backend.openalgo.newKey('alice');
      gw = await startGateway(backend.url);
      expect(gw.keys.count()).toBe(1);
      expect(await authReply(gw, key)).toMatchObject({ type: 'auth', status: 'success', user_id: 'alice', broker: 'zerodha' });
      expect(await authReply(gw, crypto.randomBytes(32).toString('hex'))).toEqual({ status: 'error', code: 'AUTHENTICATION_ERROR', message: 'Invalid API key' });
      // Creating keys is OpenAlgo's business.
      await expect(gw.keys.create('mallory', 'zerodha')).rejects.toMatchObject({ code: ErrorCode.MANAGED_BY_OPENALGO, message: expect.stringMatching(/OpenAlgo's API key page/) });
    });

    it('follows keys created, replaced and deleted in OpenAlgo at the next authentication', async () => {
      const first = backend.openalgo.newKey('alice');
      gw = await startGateway(backend.url);
      expect(await authReply(gw, first)).toMatchObject({ status: 'success', user_id: 'alice' });

      const bobKey = backend.openalgo.newKey('bob'); // created while the gateway runs
      expect(await authReply(gw, bobKey)).toMatchObject({ status: 'success', user_id: 'bob' });

      const second = backend.openalgo.newKey('alice'); // "regenerate": replaces alice's key in place
      expect(await authReply(gw, first)).toMatchObject({ code: 'AUTHENTICATION_ERROR', message: 'Invalid API key' });
      expect(await authReply(gw, second)).toMatchObject({ status: 'success', user_id: 'alice' });

      backend.openalgo.apply([{ op: 'delete_key', user: 'bob' }]);
      expect(await authReply(gw, bobKey)).toMatchObject({ code: 'AUTHENTICATION_ERROR', message: 'Invalid API key' });
      expect(await authReply(gw, second)).toMatchObject({ status: 'success', user_id: 'alice' });
    });

    it("applies OpenAlgo's CACHE_INVALIDATE from the bus at once: a key refused before it existed gets in", async () => {
      backend.openalgo.newKey('alice');
      gw = await startGateway(backend.url);
      const early = crypto.randomBytes(32).toString('hex');
      expect(await authReply(gw, early)).toMatchObject({ message: 'Invalid API key' });
      backend.openalgo.apply([{ op: 'key', user: 'bob', apiKey: early }]);
      // A refusal is remembered for up to 5 minutes, as OpenAlgo's invalid-key cache...
      expect(await authReply(gw, early)).toMatchObject({ message: 'Invalid API key' });
      // ...unless OpenAlgo says the user's cached data is stale.
      const publisher = new ZmqPublisher({ endpoint: gw.busEndpoint });
      try {
        const gateway = (gw as RunningInstance).gateway;
        const before = gateway.busListener.counters.cacheInvalidations;
        await eventually(async () => {
          publisher.publish('CACHE_INVALIDATE_AUTH_bob', JSON.stringify({ action: 'invalidate', user_id: 'bob', cache_type: 'AUTH' }));
          await new Promise((resolve) => setTimeout(resolve, 50));
          return gateway.busListener.counters.cacheInvalidations > before;
        }, 'the gateway received CACHE_INVALIDATE');
      } finally {
        await publisher.close();
      }
      expect(await authReply(gw, early)).toMatchObject({ status: 'success', user_id: 'bob' });
    });

    it("refuses a revoked (logged-out) user as OpenAlgo does, and serves the others", async () => {
      const aliceKey = backend.openalgo.newKey('alice');
      const bobKey = backend.openalgo.newKey('bob');
      backend.openalgo.apply([{ op: 'auth', user: 'bob', ...zerodha({ token: '', revoked: true }) }]);
      gw = await startGateway(backend.url);
      expect(await authReply(gw, bobKey)).toEqual({ status: 'error', code: 'BROKER_ERROR', message: ProtocolMessage.NO_BROKER });
      expect(await authReply(gw, aliceKey)).toMatchObject({ status: 'success', user_id: 'alice' });
      // A logout while the gateway runs counts from the next authentication.
      backend.openalgo.apply([{ op: 'auth', user: 'alice', ...zerodha({ token: '', revoked: true }) }]);
      expect(await authReply(gw, aliceKey)).toMatchObject({ code: 'BROKER_ERROR' });
      backend.openalgo.apply([{ op: 'auth', user: 'alice', ...zerodha() }]); // and a login again
      expect(await authReply(gw, aliceKey)).toMatchObject({ status: 'success' });
    });

    it("tells a user whose broker tokens do not decrypt why they get no feed, while another user's feed runs", async () => {
      const aliceKey = backend.openalgo.newKey('alice');
      const bobKey = backend.openalgo.newKey('bob');
      backend.openalgo.apply([{ op: 'auth', user: 'bob', ...zerodha({ undecryptable: true }) }]);
      gw = await startGateway(backend.url);

      const bob = await TestClient.authenticated(gw.url, bobKey);
      const status = await bob.next((m) => m.type === 'feed_status');
      expect(status).toMatchObject({ status: 'unavailable', broker: 'zerodha' });
      expect(status.message).toMatch(/zerodha session tokens do not decrypt with this API_KEY_PEPPER and FERNET_SALT.*log in to the broker again in OpenAlgo/);
      const refused = await bob.request({ action: 'subscribe', symbols: [{ symbol: 'RELIANCE', exchange: 'NSE' }], mode: 1 });
      expect(refused.subscriptions[0]).toMatchObject({ status: 'error', message: status.message });

      const alice = await TestClient.authenticated(gw.url, aliceKey);
      const reply = await alice.request({ action: 'subscribe', symbols: [{ symbol: 'RELIANCE', exchange: 'NSE' }], mode: 1 });
      expect(reply.subscriptions[0]).toMatchObject({ status: 'success' });
      await waitUntil(() => kite.sent('subscribe').some((m) => (m.v as number[]).includes(738561)), "alice's feed subscribed RELIANCE at Kite");
      await bob.close();
      await alice.close();
    });

    it("follows OpenAlgo's daily master-contract refresh of symtoken without an import", async () => {
      const key = backend.openalgo.newKey('alice');
      gw = await startGateway(backend.url);
      const alice = await TestClient.authenticated(gw.url, key);
      const subscribe = async (row: SymtokenRow) =>
        (await alice.request({ action: 'subscribe', symbols: [{ symbol: row.symbol, exchange: row.exchange }], mode: 1 })).subscriptions[0];

      // The dashboard's search reads the same master.
      const search = async (q: string): Promise<string[]> => {
        const response = await fetch(`${gw!.url.replace('ws://', 'http://')}/api/symbols?q=${q}`, { headers: { 'x-api-key': key } });
        expect(response.status).toBe(200);
        return ((await response.json()) as { data: Array<{ exchange: string; symbol: string }> }).data.map((h) => `${h.exchange}:${h.symbol}`);
      };

      expect(await subscribe(INFY)).toMatchObject({ status: 'error', message: 'Token not found for INFY on NSE' });
      expect(await search('S')).toEqual(['NSE:SBIN']);
      // The download empties the table and fills it again (new ids, INFY listed, SBIN gone).
      backend.openalgo.apply([{ op: 'symtoken', rows: [RELIANCE, INFY] }]);
      expect(await subscribe(INFY)).toMatchObject({ status: 'success' });
      await waitUntil(() => kite.sent('subscribe').some((m) => (m.v as number[]).includes(408065)), 'INFY subscribed at Kite with the new token');
      expect(await subscribe(SBIN)).toMatchObject({ status: 'error', message: 'Token not found for SBIN on NSE' });
      expect(await search('S')).toEqual([]);
      expect(await search('INF')).toEqual(['NSE:INFY']);
      expect(await search('NSE:RE')).toEqual(['NSE:RELIANCE']);
      await alice.close();
    });

    it('refuses to start with a pepper that opens nothing of OpenAlgo’s, naming API_KEY_PEPPER', async () => {
      backend.openalgo.newKey('alice');
      const error = await startFails(backend.url, { API_KEY_PEPPER: crypto.randomBytes(32).toString('hex') });
      expect(error).toMatchObject({ code: ErrorCode.PEPPER_MISMATCH });
      expect(error.message).toMatch(/^API_KEY_PEPPER and FERNET_SALT do not open any of the API keys and broker session tokens in OpenAlgo's database \(DATABASE_URL /);
      if (kind === 'postgresql') expect(error.message).not.toContain((backend as Backend & { db: PgTestDatabase }).db.reader.password);
    });
  });
}

describe("OpenAlgo's database on sqlite: read-only", () => {
  it('never writes the file: same bytes and modification time after a whole session, no journal left', async () => {
    const backend = await sqliteBackend();
    try {
      const key = backend.openalgo.newKey('alice');
      backend.openalgo.apply([{ op: 'auth', user: 'alice', ...zerodha() }, { op: 'symtoken', rows: [RELIANCE] }]);
      const file = backend.url.slice('sqlite:///'.length);
      const before = { hash: sha256(file), mtime: statSync(file).mtimeMs, files: readdirSync(join(file, '..')) };

      const gw = await startGateway(backend.url);
      try {
        const alice = await TestClient.authenticated(gw.url, key);
        expect((await alice.request({ action: 'subscribe', symbols: [{ symbol: 'RELIANCE', exchange: 'NSE' }], mode: 1 })).status).toBe('success');
        expect(await authReply(gw, crypto.randomBytes(32).toString('hex'))).toMatchObject({ code: 'AUTHENTICATION_ERROR' });
        await alice.close();
      } finally {
        await gw.stop();
      }
      const cli = await runCli(['keys', 'list', '--json'], { dataDir: dataDirFor(), env: { DATABASE_URL: backend.url, API_KEY_PEPPER: PEPPER, FERNET_SALT } });
      expect(cli.code, cli.stderr).toBe(0);
      expect(JSON.parse(cli.stdout)).toEqual([{ user: 'alice', broker: 'zerodha', created_at: expect.any(String), key_preview: `${key.slice(0, 8)}…` }]);
      expect({ hash: sha256(file), mtime: statSync(file).mtimeMs, files: readdirSync(join(file, '..')) }).toEqual(before);
    } finally {
      await backend.cleanup();
    }
  });

  it('tickcast start says where keys come from, serves them, and still writes nothing', async () => {
    const backend = await sqliteBackend();
    try {
      const key = backend.openalgo.newKey('alice');
      backend.openalgo.apply([{ op: 'auth', user: 'alice', ...zerodha() }]);
      const file = backend.url.slice('sqlite:///'.length);
      const before = sha256(file);
      const started = await startGatewayProcess({
        dataDir: dataDirFor(),
        env: { DATABASE_URL: backend.url, API_KEY_PEPPER: PEPPER, FERNET_SALT, TICKCAST_KITE_URL: kite.url },
      });
      expect(started.stdout()).toContain(`  Data       sqlite:///${file}  (OpenAlgo's database, read-only)`);
      expect(started.stdout()).toMatch(/^ {2}API keys {3}1 in OpenAlgo's database \(made on OpenAlgo's API key page/m);
      expect(started.devKey).toBeUndefined();
      expect(await (async () => {
        const client = await TestClient.connect(started.url);
        const reply = await client.request({ action: 'authenticate', api_key: key });
        await client.close();
        return reply;
      })()).toMatchObject({ status: 'success', user_id: 'alice' });
      expect(await started.stop()).toBe(0);
      expect(sha256(file)).toBe(before);
    } finally {
      await backend.cleanup();
    }
  });

  it('takes sqlite:/// paths relative to the working directory, as SQLAlchemy', async () => {
    const backend = await sqliteBackend();
    try {
      const key = backend.openalgo.newKey('alice');
      const file = backend.url.slice('sqlite:///'.length);
      const config = loadConfig({
        cwd: join(file, '..', '..'),
        env: { DATABASE_URL: 'sqlite:///db/openalgo.db', API_KEY_PEPPER: PEPPER, FERNET_SALT, WEBSOCKET_PORT: '0', ZMQ_PORT: '0', TICKCAST_REGISTRY: `sqlite:${join(file, '..', 'registry.db')}`, TICKCAST_LOG_LEVEL: 'silent', TICKCAST_KITE_URL: kite.url },
      });
      if (!config.ok) throw new Error(config.errors.join('\n'));
      expect(config.config.database).toMatchObject({ kind: 'sqlite', file });
      const gw = await startGatewayRole(config.config, { logger: silentLogger() });
      try {
        expect(await authReply(gw, key)).toMatchObject({ status: 'error', code: 'BROKER_ERROR' }); // a key, but no auth row yet
      } finally {
        await gw.stop();
      }
    } finally {
      await backend.cleanup();
    }
  });

  it("reads the database an OpenAlgo directory's .env names (--openalgo-dir), relative to that directory", async () => {
    const backend = await sqliteBackend();
    try {
      const key = backend.openalgo.newKey('alice');
      backend.openalgo.apply([{ op: 'auth', user: 'alice', ...zerodha() }]);
      const openalgoDir = join(backend.url.slice('sqlite:///'.length), '..', '..');
      writeFileSync(
        join(openalgoDir, '.env'),
        `DATABASE_URL = 'sqlite:///db/openalgo.db'  # as OpenAlgo's .sample.env\nAPI_KEY_PEPPER = '${PEPPER}'\nFERNET_SALT = '${FERNET_SALT}'\n`,
      );
      const elsewhere = dataDirFor();
      const loaded = loadConfig({
        cwd: elsewhere,
        env: { TICKCAST_OPENALGO_DIR: openalgoDir, WEBSOCKET_PORT: '0', ZMQ_PORT: '0', TICKCAST_REGISTRY: `sqlite:${join(elsewhere, 'registry.db')}`, TICKCAST_LOG_LEVEL: 'silent', TICKCAST_KITE_URL: kite.url },
      });
      if (!loaded.ok) throw new Error(loaded.errors.join('\n'));
      expect(loaded.config.database).toMatchObject({ kind: 'sqlite', file: join(openalgoDir, 'db', 'openalgo.db') });
      const gw = await startGatewayRole(loaded.config, { logger: silentLogger() });
      try {
        expect(await authReply(gw, key)).toMatchObject({ status: 'success', user_id: 'alice', broker: 'zerodha' });
      } finally {
        await gw.stop();
      }
    } finally {
      await backend.cleanup();
    }
  });

  it('names DATABASE_URL and the file when there is none, and exits 2', async () => {
    const dir = dataDirFor();
    const missing = join(dir, 'nowhere', 'openalgo.db');
    const error = await startFails(`sqlite:///${missing}`);
    expect(error).toMatchObject({ code: ErrorCode.CONFIG_INVALID });
    expect(error.message).toContain(`DATABASE_URL (sqlite:///${missing}): cannot open ${missing}`);
    expect(readdirSync(dir)).not.toContain('nowhere'); // nothing created
    const cli = await runCli(['start'], { dataDir: dir, env: { DATABASE_URL: `sqlite:///${missing}`, API_KEY_PEPPER: PEPPER, WEBSOCKET_PORT: '0', ZMQ_PORT: '0' } });
    expect(cli.code).toBe(2);
    expect(cli.stderr).toContain('DATABASE_URL');
  });
});

describe("OpenAlgo's database: start-up refusals", () => {
  for (const kind of ['sqlite', 'postgresql'] as const) {
    it(`refuses a database that is not OpenAlgo's on ${kind}, naming what is missing (exit 2)`, async () => {
      const backend = kind === 'sqlite' ? await sqliteBackend() : await postgresBackend();
      try {
        backend.openalgo.apply([{ op: 'sql', sql: 'DROP TABLE symtoken; ALTER TABLE api_keys DROP COLUMN api_key_encrypted' }]);
        const error = await startFails(backend.url);
        expect(error).toMatchObject({ code: ErrorCode.DATABASE_SCHEMA });
        expect(error.message).toMatch(/^DATABASE_URL \(.*\) is not OpenAlgo's database: it lacks api_keys\.api_key_encrypted; table symtoken\./);
        const cli = await runCli(['start'], { dataDir: dataDirFor(), env: { DATABASE_URL: backend.url, API_KEY_PEPPER: PEPPER, WEBSOCKET_PORT: '0', ZMQ_PORT: '0' } });
        expect(cli.code).toBe(2);
        expect(cli.stderr).toContain('table symtoken');
      } finally {
        await backend.cleanup();
      }
    });
  }

  it('names the GRANT a PostgreSQL role without SELECT needs, and a database that does not exist (exit 2)', async () => {
    const backend = await postgresBackend();
    try {
      backend.openalgo.apply([{ op: 'sql', sql: `REVOKE SELECT ON symtoken FROM ${backend.db.reader.user}` }]);
      const error = await startFails(backend.url);
      expect(error).toMatchObject({ code: ErrorCode.DATABASE_SCHEMA });
      expect(error.message).toMatch(/permission denied for table symtoken; tickcast needs SELECT on api_keys, auth and symtoken \(GRANT SELECT ON api_keys, auth, symtoken TO tickcast_ro_/);
      const nowhere = new URL(backend.url);
      nowhere.pathname = '/no_such_database';
      const missing = await startFails(nowhere.toString());
      expect(missing).toMatchObject({ code: ErrorCode.CONFIG_INVALID });
      expect(missing.message).toMatch(/has no database "no_such_database"/);
      expect(error.message + missing.message).not.toContain(backend.db.reader.password);
    } finally {
      await backend.cleanup();
    }
  });

  it('exits 1 naming DATABASE_URL and host:port when PostgreSQL cannot be reached, without its password', async () => {
    const port = await closedPort();
    const url = `postgresql://openalgo:hunter2-secret@127.0.0.1:${port}/openalgo`;
    const error = await startFails(url);
    expect(error).toMatchObject({ code: ErrorCode.DATABASE_UNREACHABLE });
    expect(error.message).toContain(`DATABASE_URL (postgresql://openalgo@127.0.0.1:${port}/openalgo): the PostgreSQL server at 127.0.0.1:${port} cannot be reached`);
    const cli = await runCli(['start'], { dataDir: dataDirFor(), env: { DATABASE_URL: url, API_KEY_PEPPER: PEPPER, WEBSOCKET_PORT: '0', ZMQ_PORT: '0', TICKCAST_LOG_LEVEL: 'debug' } });
    expect(cli.code).toBe(1);
    expect(cli.stderr).toContain(`127.0.0.1:${port}`);
    expect(cli.stderr + cli.stdout + error.message).not.toContain('hunter2');
  });

  it('refuses tickcast key and credential writes with DATABASE_URL, saying where to make them (exit 2)', async () => {
    const backend = await sqliteBackend();
    try {
      const env = { DATABASE_URL: backend.url, API_KEY_PEPPER: PEPPER, FERNET_SALT };
      const create = await runCli(['keys', 'create', '--user', 'alice', '--broker', 'zerodha'], { dataDir: dataDirFor(), env });
      expect(create.code).toBe(2);
      expect(create.stderr).toMatch(/create, replace or delete them on OpenAlgo's API key page/);
      const creds = await runCli(['credentials', 'set', '--user', 'alice', '--broker', 'zerodha', '--api-key', 'k', '--access-token', 't'], { dataDir: dataDirFor(), env });
      expect(creds.code).toBe(2);
      expect(creds.stderr).toMatch(/log in to \(or out of\) the broker in OpenAlgo/);
    } finally {
      await backend.cleanup();
    }
  });
});

describe("OpenAlgo's database on postgresql: the server going away while the gateway runs", () => {
  let backend: Backend & { db: PgTestDatabase };
  let proxy: TcpProxy;
  let gw: RunningInstance | undefined;

  beforeEach(async () => {
    backend = await postgresBackend();
    backend.openalgo.apply([{ op: 'auth', user: 'alice', ...zerodha() }, { op: 'auth', user: 'bob', ...zerodha() }]);
    const server = new URL(backend.url);
    proxy = await TcpProxy.start(server.hostname, Number(server.port || 5432));
  });
  afterEach(async () => {
    await gw?.stop();
    gw = undefined;
    await proxy.close();
    await backend.cleanup();
  });

  // Every PostgreSQL test above runs the gateway as this role: this shows it can write nothing.
  it('runs as a role that may only SELECT the three tables', async () => {
    const attempt = (sql: string) => withPgAdmin(async (client) => client.query(sql).then(() => 'done', (e: Error) => e.message), backend.url);
    expect(await attempt("INSERT INTO auth (name, auth, broker) VALUES ('x', '', 'zerodha')")).toMatch(/permission denied for table auth/);
    expect(await attempt('DELETE FROM api_keys')).toMatch(/permission denied for table api_keys/);
    expect(await attempt('CREATE TABLE tickcast_meta (key TEXT)')).toMatch(/permission denied for schema public/);
    expect(await attempt('SELECT count(*) FROM symtoken')).toBe('done');
  });

  it('tells clients to retry while it is unreachable, keeps serving cached keys, and recovers when it is back', async () => {
    const aliceKey = backend.openalgo.newKey('alice');
    const bobKey = backend.openalgo.newKey('bob');
    const viaProxy = new URL(backend.url);
    viaProxy.host = `127.0.0.1:${proxy.port}`;
    gw = await startGateway(viaProxy.toString());
    expect(await authReply(gw, aliceKey)).toMatchObject({ status: 'success' });

    proxy.pause();
    expect(await authReply(gw, bobKey)).toEqual({ status: 'error', code: 'AUTHENTICATION_ERROR', message: ProtocolMessage.KEY_STORE_UNAVAILABLE });
    expect(await authReply(gw, aliceKey)).toMatchObject({ status: 'success', user_id: 'alice' }); // verified before

    proxy.resume();
    await eventually(async () => (await authReply(gw!, bobKey)).status === 'success', 'bob authenticates once the server is back');
  });
});

// ---------------------------------------------------------------------------------------------

function sha256(file: string): string {
  return crypto.createHash('sha256').update(readFileSync(file)).digest('hex');
}

function dataDirFor(): string {
  const dir = mkdtempSync(join(tmpdir(), 'tickcast-test-'));
  dataDirs.push(dir);
  return dir;
}

/** A port nothing listens on (bound, then released). */
async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** A TCP relay to the PostgreSQL server that can be cut (connections reset, none accepted) and restored. */
class TcpProxy {
  private readonly sockets = new Set<net.Socket>();
  private paused = false;

  private constructor(
    private readonly server: net.Server,
    readonly port: number,
    private readonly target: { host: string; port: number },
  ) {
    server.on('connection', (client) => this.relay(client));
  }

  static async start(host: string, port: number): Promise<TcpProxy> {
    const server = net.createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return new TcpProxy(server, (server.address() as net.AddressInfo).port, { host, port });
  }

  private relay(client: net.Socket): void {
    if (this.paused) {
      client.destroy();
      return;
    }
    const upstream = net.connect(this.target.port, this.target.host);
    for (const socket of [client, upstream]) {
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
      socket.on('error', () => undefined);
    }
    client.pipe(upstream).pipe(client);
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  }

  /** The server "goes away": open connections are cut and new ones refused. */
  pause(): void {
    this.paused = true;
    for (const socket of this.sockets) socket.destroy();
  }

  resume(): void {
    this.paused = false;
  }

  async close(): Promise<void> {
    this.pause();
    await new Promise((resolve) => this.server.close(resolve));
  }
}
