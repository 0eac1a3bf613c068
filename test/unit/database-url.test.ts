/** DATABASE_URL read as SQLAlchemy (and so OpenAlgo) reads it, and kept out of messages. */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type DatabaseUrl, parseDatabaseUrl, redactDatabaseUrl, serverAddress } from '../../src/config/database-url.js';
import { loadConfig } from '../../src/config/load.js';

const PEPPER = 'p'.repeat(40);

function parsed(raw: string, cwd = '/srv/openalgo'): DatabaseUrl {
  const result = parseDatabaseUrl(raw, cwd);
  if (!result.ok) throw new Error(`expected ${raw} to parse: ${result.detail}`);
  return result.value;
}

function refusal(raw: string): string {
  const result = parseDatabaseUrl(raw, '/srv/openalgo');
  if (result.ok) throw new Error(`expected ${raw} to be refused`);
  return `${result.expected} | ${result.detail}`;
}

describe('parseDatabaseUrl: SQLite as SQLAlchemy reads it', () => {
  it('three slashes: a path relative to the working directory given; four: an absolute one', () => {
    expect(parsed('sqlite:///db/openalgo.db')).toEqual({ kind: 'sqlite', file: '/srv/openalgo/db/openalgo.db', display: 'sqlite:////srv/openalgo/db/openalgo.db' });
    expect(parsed('sqlite:///db/openalgo.db', '/home/me')).toMatchObject({ file: '/home/me/db/openalgo.db' });
    expect(parsed('sqlite:////var/lib/openalgo/openalgo.db')).toMatchObject({ file: '/var/lib/openalgo/openalgo.db' });
    expect(parsed('sqlite:///../data/openalgo.db')).toMatchObject({ file: '/srv/data/openalgo.db' });
  });

  it('a driver suffix and driver options do not change the file', () => {
    expect(parsed('sqlite+pysqlite:///db/openalgo.db?check_same_thread=false')).toMatchObject({ kind: 'sqlite', file: '/srv/openalgo/db/openalgo.db' });
    expect(parsed('  sqlite:///db/openalgo.db \n')).toMatchObject({ file: '/srv/openalgo/db/openalgo.db' });
  });

  it('refuses URLs that name no file or a host', () => {
    expect(refusal('sqlite://')).toMatch(/must name a database file/);
    expect(refusal('sqlite:///:memory:')).toMatch(/must name a database file/);
    expect(refusal('sqlite://localhost/openalgo.db')).toMatch(/names no host/);
    expect(refusal('openalgo.db')).toMatch(/not a URL/);
  });
});

describe('parseDatabaseUrl: PostgreSQL', () => {
  it('reads user, password, host, port and database; the password never shows', () => {
    const url = parsed('postgresql://openalgo:s3cr%40t:x@db.example.com:6543/openalgo');
    expect(url).toMatchObject({ kind: 'postgresql', host: 'db.example.com', port: 6543, user: 'openalgo', password: 's3cr@t:x', database: 'openalgo' });
    expect(url.display).toBe('postgresql://openalgo@db.example.com:6543/openalgo');
    expect(url.kind === 'postgresql' && serverAddress(url)).toBe('db.example.com:6543');
  });

  it('takes OpenAlgo .env forms: a driver suffix, the default port, IPv6, a socket directory', () => {
    expect(parsed('postgresql+psycopg2://u:pw@127.0.0.1/openalgo')).toMatchObject({ kind: 'postgresql', host: '127.0.0.1', port: 5432, database: 'openalgo' });
    expect(parsed('postgresql://u@[::1]:5433/oa')).toMatchObject({ host: '::1', port: 5433, password: undefined, display: 'postgresql://u@[::1]:5433/oa' });
    expect(parsed('postgresql:///openalgo')).toMatchObject({ host: '/var/run/postgresql', user: undefined });
    expect(parsed('postgresql://u@/openalgo?host=/tmp/pg')).toMatchObject({ host: '/tmp/pg' });
    expect(parsed('postgresql://u:pw@h/oa?sslmode=require&connect_timeout=3')).toMatchObject({ sslmode: 'require', connectTimeoutSeconds: 3 });
  });

  it('refuses what SQLAlchemy refuses or tickcast cannot honour, without echoing the password', () => {
    expect(refusal('postgres://u:hunter2@h/oa')).toMatch(/postgresql:\/\/, not postgres:\/\//);
    expect(refusal('postgresql://u:hunter2@h:99999/oa')).toMatch(/port "99999"/);
    expect(refusal('postgresql://u:hunter2@h:5432')).toMatch(/names no database/);
    expect(refusal('postgresql://u:hunter2@h/oa?sslmode=maybe')).toMatch(/sslmode must be one of/);
    expect(refusal('postgresql://u:hunter2@h/oa?target_session_attrs=any')).toMatch(/"target_session_attrs" is not one tickcast understands/);
    expect(refusal('oracle://u:hunter2@h/oa')).toMatch(/"oracle" is not one tickcast reads/);
    for (const raw of ['postgres://u:hunter2@h/oa', 'postgresql://u:hunter2@h:99999/oa', 'oracle://u:hunter2@h/oa', 'not a url u:hunter2@']) {
      expect(refusal(raw)).not.toContain('hunter2');
    }
  });

  it('refuses MySQL/MariaDB, saying why', () => {
    for (const raw of ['mysql+pymysql://oa:hunter2@localhost:3307/openalgo?charset=utf8mb4', 'mariadb+pymysql://oa@db/openalgo']) {
      expect(refusal(raw)).toMatch(/MySQL\/MariaDB is not supported: OpenAlgo's models declare VARCHAR columns without a length/);
    }
  });

  it('redacts a password from a raw URL', () => {
    expect(redactDatabaseUrl('postgresql://u:pa:ss@h/db')).toBe('postgresql://u:***@h/db');
    expect(redactDatabaseUrl('sqlite:///x.db')).toBe('sqlite:///x.db');
  });
});

describe('DATABASE_URL in the configuration', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'tickcast-dburl-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('is unset by default, so the instance keeps its own store', () => {
    const result = loadConfig({ env: {}, cwd: dir });
    expect(result.ok && result.config.database).toBeUndefined();
  });

  it('resolves a relative sqlite path against the parse context, also from a .env file', () => {
    writeFileSync(join(dir, '.env'), `DATABASE_URL=sqlite:///db/openalgo.db\nAPI_KEY_PEPPER=${PEPPER}\n`);
    const result = loadConfig({ env: {}, cwd: dir });
    if (!result.ok) throw new Error(result.errors.join('\n'));
    expect(result.config.database).toMatchObject({ kind: 'sqlite', file: join(dir, 'db', 'openalgo.db') });
  });

  it('needs API_KEY_PEPPER, and never shows the URL in its messages', () => {
    const result = loadConfig({ env: { DATABASE_URL: 'postgresql://oa:hunter2@127.0.0.1/openalgo' }, cwd: dir });
    expect(result.ok).toBe(false);
    const errors = result.ok ? [] : result.errors;
    expect(errors.join('\n')).toMatch(/DATABASE_URL .*API_KEY_PEPPER/);
    const bad = loadConfig({ env: { DATABASE_URL: 'postgresql://oa:hunter2@127.0.0.1:0/openalgo', API_KEY_PEPPER: PEPPER }, cwd: dir });
    expect(bad.ok).toBe(false);
    const text = bad.ok ? '' : bad.errors.join('\n');
    expect(text).toMatch(/^DATABASE_URL \(value hidden, \d+ characters\) is not valid: expected sqlite:\/\/\/.*the port "0"/);
    expect(text + errors.join('\n')).not.toContain('hunter2');
  });
});
