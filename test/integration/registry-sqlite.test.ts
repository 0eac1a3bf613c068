import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { systemClock } from '../../src/clock.js';
import { ErrorCode, TickcastError } from '../../src/errors.js';
import { defaultRegistryUrl, openRegistry, parseRegistryUrl } from '../../src/registry/open.js';
import { SqliteRegistry } from '../../src/registry/sqlite.js';
import { raceClaim } from '../helpers/registry-race.js';
import { registryContract } from '../unit/registry-contract.js';

const tempDir = (): string => fs.mkdtempSync(path.join(os.tmpdir(), 'tickcast-registry-'));

registryContract('SQLite', async () => {
  const dir = tempDir();
  const file = path.join(dir, 'registry.db');
  return {
    open: async (options) => SqliteRegistry.open(file, options),
    cleanup: async () => fs.rmSync(dir, { recursive: true, force: true }),
  };
});

async function expectStoreFailed(promise: Promise<unknown>, text: string): Promise<TickcastError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(TickcastError);
  expect(err).toMatchObject({ code: ErrorCode.STORE_FAILED });
  expect((err as Error).message).toContain(text);
  return err as TickcastError;
}

describe('SQLite registry file', () => {
  let dir: string;
  const clock = { now: () => 1_700_000_000_000 };
  beforeEach(() => {
    dir = tempDir();
  });
  afterEach(() => {
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('creates its directory and file private to the user, in WAL mode', async () => {
    const file = path.join(dir, 'state', 'tickcast', 'registry.db');
    const registry = await openRegistry(`sqlite:${file}`, { clock });
    expect(registry.url).toBe(`sqlite:${file}`);
    await registry.close();
    expect(fs.statSync(path.dirname(file)).mode & 0o777).toBe(0o700);
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
    const db = new BetterSqlite3(file, { readonly: true });
    expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
    db.close();
  });

  it('a corrupt file is STORE_FAILED naming the file, not a crash', async () => {
    const file = path.join(dir, 'registry.db');
    fs.writeFileSync(file, Buffer.from('this is not a sqlite database, just garbage bytes '.repeat(100)));
    const err = await expectStoreFailed(openRegistry(file, { clock }), file);
    expect(err.message).toMatch(/not a database/i);
  });

  it('a file locked by another process is STORE_FAILED after the busy timeout', async () => {
    const file = path.join(dir, 'registry.db');
    const registry = SqliteRegistry.open(file, { clock, busyTimeoutMs: 200 });
    const locker = new BetterSqlite3(file);
    locker.exec('BEGIN EXCLUSIVE');
    try {
      const started = Date.now();
      await expectStoreFailed(
        registry.claim({ id: 'x', instance: 'a', role: 'gateway', name: 'a', pid: process.pid, host: os.hostname(), endpoints: {}, resources: [], startedAt: 1 }),
        file,
      );
      expect(Date.now() - started).toBeLessThan(3000);
    } finally {
      locker.exec('ROLLBACK');
      locker.close();
      await registry.close();
    }
  });

  it('a row with unreadable endpoints is listed as stale, not thrown, and reaped', async () => {
    const file = path.join(dir, 'registry.db');
    const registry = SqliteRegistry.open(file, { clock });
    const entry = { id: 'bad', instance: 'a', role: 'gateway' as const, name: 'a', pid: process.pid, host: os.hostname(), endpoints: {}, resources: ['tcp:127.0.0.1:1'], startedAt: 1 };
    expect((await registry.claim(entry)).ok).toBe(true);
    const db = new BetterSqlite3(file);
    db.prepare("UPDATE registry_entries SET endpoints = '{not json' WHERE id = 'bad'").run();
    db.close();

    expect(await registry.list()).toMatchObject([{ id: 'bad', alive: false, endpoints: {} }]);
    expect(await registry.find('a')).toEqual([]);
    expect(await registry.holderOf('tcp:127.0.0.1:1')).toBeUndefined();
    expect((await registry.claim({ ...entry, id: 'good' })).ok).toBe(true);
    expect((await registry.list()).map((e) => e.id)).toEqual(['good']);
    await registry.close();
  });

  it('operations after close are STORE_FAILED', async () => {
    const file = path.join(dir, 'registry.db');
    const registry = SqliteRegistry.open(file, { clock });
    await registry.close();
    await registry.close();
    await expectStoreFailed(registry.list(), file);
  });
});

describe('SQLite registry across real processes', () => {
  let dir: string;
  beforeEach(() => {
    dir = tempDir();
  });
  afterEach(() => {
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('4 processes claiming one name on a new file at the same moment: exactly one wins; kill -9 frees it', async () => {
    const url = `sqlite:${path.join(dir, 'registry.db')}`;
    for (const name of ['first', 'second']) {
      const racers = await raceClaim(4, { url, name, resources: [`ipc:@race-${name}`] });
      try {
        const winners = racers.results.filter((r) => r.ok);
        expect(racers.results.filter((r) => r.error)).toEqual([]);
        expect(winners).toHaveLength(1);
        for (const loser of racers.results.filter((r) => !r.ok)) {
          expect(loser).toMatchObject({ conflict: 'name', holderPid: winners[0]!.pid });
        }
      } finally {
        await racers.kill();
      }
    }
    // Every holder was killed with SIGKILL: nothing they left blocks a restart under the same names.
    const registry = await openRegistry(url, { clock: systemClock });
    try {
      // The second round's claims already reaped the first round's winner; the second is left.
      expect(await registry.list()).toMatchObject([{ name: 'second', alive: false }]);
      for (const name of ['first', 'second']) {
        const again = await registry.claim({
          id: `restart-${name}`,
          instance: 'race',
          role: 'gateway',
          name,
          pid: process.pid,
          host: os.hostname(),
          endpoints: {},
          resources: [`ipc:@race-${name}`],
          startedAt: Date.now(),
        });
        expect(again.ok).toBe(true);
      }
      expect((await registry.list()).map((e) => e.id)).toEqual(['restart-first', 'restart-second']);
    } finally {
      await registry.close();
    }
  });
});

describe('openRegistry and registry URLs', () => {
  it('accepts sqlite: URLs and plain paths, resolved against cwd', () => {
    expect(parseRegistryUrl('sqlite:/var/x/r.db', '/srv/app')).toEqual({ kind: 'sqlite', file: '/var/x/r.db' });
    expect(parseRegistryUrl('sqlite:///var/x/r.db', '/srv/app')).toEqual({ kind: 'sqlite', file: '/var/x/r.db' });
    expect(parseRegistryUrl('sqlite:rel/r.db', '/srv/app')).toEqual({ kind: 'sqlite', file: '/srv/app/rel/r.db' });
    expect(parseRegistryUrl('/abs/r.db', '/srv/app')).toEqual({ kind: 'sqlite', file: '/abs/r.db' });
    expect(parseRegistryUrl('./r.db', '/srv/app')).toEqual({ kind: 'sqlite', file: '/srv/app/r.db' });
  });

  it('accepts redis:// and rediss:// URLs with an optional numeric database', () => {
    expect(parseRegistryUrl('redis://127.0.0.1:6380/2')).toEqual({ kind: 'redis', url: 'redis://127.0.0.1:6380/2' });
    expect(parseRegistryUrl('rediss://user:pw@cache.example:6380')).toMatchObject({ kind: 'redis' });
  });

  it.each([
    ['', 'is empty'],
    ['sqlite:', 'has no file path'],
    ['sqlite://host/r.db', 'names a host'],
    ['redis://', 'has no host'],
    ['redis://h:6379/abc', 'not a number'],
    ['http://example.com/r.db', 'unknown scheme "http:"'],
    ['postgres://db/x', 'unknown scheme'],
  ])('rejects %j with CONFIG_INVALID listing the accepted forms', (url, why) => {
    try {
      parseRegistryUrl(url);
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(TickcastError);
      expect(err).toMatchObject({ code: ErrorCode.CONFIG_INVALID });
      expect((err as Error).message).toContain(why);
      expect((err as Error).message).toContain('redis://');
      expect((err as Error).message).toContain('sqlite:');
    }
  });

  it('openRegistry rejects a bad URL before touching anything', async () => {
    await expect(openRegistry('ftp://x', { clock: systemClock })).rejects.toMatchObject({ code: ErrorCode.CONFIG_INVALID });
  });

  it('opens a relative sqlite path against the given cwd', async () => {
    const dir = tempDir();
    try {
      const registry = await openRegistry('sqlite:sub/registry.db', { clock: systemClock, cwd: dir });
      expect(registry.url).toBe(`sqlite:${path.join(dir, 'sub', 'registry.db')}`);
      await registry.close();
      expect(fs.existsSync(path.join(dir, 'sub', 'registry.db'))).toBe(true);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('defaults to a per-user file under XDG_STATE_HOME, else ~/.local/state', () => {
    const home = () => '/home/someone';
    expect(defaultRegistryUrl({ XDG_STATE_HOME: '/xdg/state' }, home)).toBe('sqlite:/xdg/state/tickcast/registry.db');
    expect(defaultRegistryUrl({}, home)).toBe('sqlite:/home/someone/.local/state/tickcast/registry.db');
    // The XDG spec says a relative value is to be ignored.
    expect(defaultRegistryUrl({ XDG_STATE_HOME: 'relative' }, home)).toBe('sqlite:/home/someone/.local/state/tickcast/registry.db');
    expect(defaultRegistryUrl({ XDG_STATE_HOME: '' }, home)).toBe('sqlite:/home/someone/.local/state/tickcast/registry.db');
  });
});
