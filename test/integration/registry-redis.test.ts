import { randomUUID } from 'node:crypto';
import net from 'node:net';
import os from 'node:os';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemClock } from '../../src/clock.js';
import { ErrorCode, TickcastError } from '../../src/errors.js';
import { openRegistry } from '../../src/registry/open.js';
import { RedisRegistry } from '../../src/registry/redis.js';
import { startRedisServer, type RedisServer } from '../helpers/redis-server.js';
import { raceClaim } from '../helpers/registry-race.js';
import { registryContract } from '../unit/registry-contract.js';

// One server for the file; every test gets its own key prefix, so tests never see each other.
let server: RedisServer;
beforeAll(async () => {
  server = await startRedisServer();
});
afterAll(async () => {
  await server?.stop();
});

const freshPrefix = (): string => `test-${randomUUID()}:`;

registryContract('Redis', async () => {
  const prefix = freshPrefix();
  return {
    open: (options) => RedisRegistry.open(server.url, { ...options, prefix }),
    cleanup: async () => undefined,
  };
});

describe('Redis registry', () => {
  const clock = { now: () => 1_700_000_000_000 };
  const entry = (id: string) => ({
    id,
    instance: 'a',
    role: 'gateway' as const,
    name: 'a',
    pid: process.pid,
    host: os.hostname(),
    endpoints: {},
    resources: ['tcp:127.0.0.1:1'],
    startedAt: 1,
  });

  it('opens through openRegistry, naming the server without credentials', async () => {
    const registry = await openRegistry(`redis://user:secret@127.0.0.1:${server.port}/3`, { clock, redisPrefix: freshPrefix() }).catch(
      (err: unknown) => err,
    );
    // redis-server without ACL users refuses the login: the error names the URL but not the password.
    expect(registry).toBeInstanceOf(TickcastError);
    expect((registry as Error).message).toContain(`redis://127.0.0.1:${server.port}/3`);
    expect((registry as Error).message).not.toContain('secret');

    const plain = await openRegistry(`redis://127.0.0.1:${server.port}/3`, { clock, redisPrefix: freshPrefix() });
    expect(plain.url).toBe(`redis://127.0.0.1:${server.port}/3`);
    await plain.close();
  });

  it('an unreachable server is STORE_FAILED naming the URL, quickly', async () => {
    // A port that was free a moment ago: nothing answers there.
    const port = await new Promise<number>((resolve) => {
      const s = net.createServer().listen(0, '127.0.0.1', () => {
        const { port: p } = s.address() as net.AddressInfo;
        s.close(() => resolve(p));
      });
    });
    const started = Date.now();
    const err = await openRegistry(`redis://127.0.0.1:${port}`, { clock, connectTimeoutMs: 1000 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TickcastError);
    expect(err).toMatchObject({ code: ErrorCode.STORE_FAILED });
    expect((err as Error).message).toContain(`redis://127.0.0.1:${port}/0`);
    expect((err as Error).message).toMatch(/ECONNREFUSED/);
    expect(Date.now() - started).toBeLessThan(3000);
  });

  it('a server that accepts but never answers fails after the connect timeout', async () => {
    const silent = net.createServer(() => undefined);
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const { port } = silent.address() as net.AddressInfo;
    try {
      const started = Date.now();
      const err = await openRegistry(`redis://127.0.0.1:${port}`, { clock, connectTimeoutMs: 300 }).catch((e: unknown) => e);
      expect(err).toMatchObject({ code: ErrorCode.STORE_FAILED });
      expect(Date.now() - started).toBeLessThan(3000);
    } finally {
      silent.close();
    }
  });

  it('a database number the server does not have is STORE_FAILED, not a silent database 0', async () => {
    const err = await openRegistry(`redis://127.0.0.1:${server.port}/99`, { clock }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: ErrorCode.STORE_FAILED });
    expect((err as Error).message).toContain(`redis://127.0.0.1:${server.port}/99`);
    expect((err as Error).message).toMatch(/DB index is out of range/);
  });

  it('a server that goes away makes operations fail with STORE_FAILED, quickly', async () => {
    const own = await startRedisServer();
    const registry = await RedisRegistry.open(own.url, { clock, prefix: freshPrefix() });
    try {
      expect((await registry.claim(entry('e1'))).ok).toBe(true);
      await own.stop();
      const started = Date.now();
      const err = await registry.heartbeat('e1').catch((e: unknown) => e);
      expect(err).toMatchObject({ code: ErrorCode.STORE_FAILED });
      expect((err as Error).message).toContain(`127.0.0.1:${own.port}`);
      expect(Date.now() - started).toBeLessThan(5000);
    } finally {
      await registry.close();
    }
  });

  it('operations after close are STORE_FAILED naming the server', async () => {
    const registry = await RedisRegistry.open(server.url, { clock, prefix: freshPrefix() });
    await registry.close();
    await registry.close();
    const err = await registry.list().catch((e: unknown) => e);
    expect(err).toMatchObject({ code: ErrorCode.STORE_FAILED });
    expect((err as Error).message).toContain(`127.0.0.1:${server.port}`);
  });

  it('a port is a port of one host: nodes on two hosts may pin the same one, and each host sees its own holder', async () => {
    const prefix = freshPrefix();
    const now = { now: () => Date.now() };
    const onA = await RedisRegistry.open(server.url, { clock: now, prefix, localHost: 'host-a' });
    const onB = await RedisRegistry.open(server.url, { clock: now, prefix, localHost: 'host-b' });
    try {
      const node = (id: string, host: string, name: string) => ({ ...entry(id), host, name, startedAt: Date.now(), resources: ['tcp:0.0.0.0:8765'] });
      const a = await onA.claim(node('na', 'host-a', 'node-a'));
      const b = await onB.claim(node('nb', 'host-b', 'node-b'));
      expect(a.ok && b.ok).toBe(true);
      expect((await onA.holderOf('tcp:0.0.0.0:8765'))?.id).toBe('na');
      expect((await onB.holderOf('tcp:0.0.0.0:8765'))?.id).toBe('nb');
      // On one host the port is still exclusive.
      expect(await onA.claim(node('na2', 'host-a', 'node-c'))).toMatchObject({ ok: false, conflict: 'resource', holder: { id: 'na' } });
      // update() adds resources on the entry's own host.
      expect(await onB.update('nb', { resources: ['tcp:0.0.0.0:9000'] })).toBe(true);
      expect((await onB.holderOf('tcp:0.0.0.0:9000'))?.id).toBe('nb');
      expect(await onA.holderOf('tcp:0.0.0.0:9000')).toBeUndefined();
      // Releasing one host's node frees only that host's port.
      await onA.release('na');
      expect(await onA.holderOf('tcp:0.0.0.0:8765')).toBeUndefined();
      expect((await onB.holderOf('tcp:0.0.0.0:8765'))?.id).toBe('nb');
      expect((await onB.list()).map((e) => `${e.host} ${e.name}`)).toEqual(['host-b node-b']);
    } finally {
      await onA.close();
      await onB.close();
    }
  });

  it('keys expire after twice the TTL unless heartbeated, and heartbeats refresh every key', async () => {
    const prefix = freshPrefix();
    const registry = await RedisRegistry.open(server.url, { clock, prefix, ttlMs: 10_000 });
    const raw = new Redis(server.url);
    try {
      expect((await registry.claim(entry('e1'))).ok).toBe(true);
      const keys = [`${prefix}entry:e1`, `${prefix}name:["a","gateway","a"]`, `${prefix}res:${os.hostname()}/tcp:127.0.0.1:1`];
      for (const key of keys) expect(await raw.pttl(key)).toBeGreaterThan(15_000);
      for (const key of keys) await raw.pexpire(key, 5_000);
      expect(await registry.heartbeat('e1')).toBe(true);
      for (const key of keys) expect(await raw.pttl(key)).toBeGreaterThan(15_000);
    } finally {
      raw.disconnect();
      await registry.close();
    }
  });

  it('an entry expired by Redis frees its name and resources (dangling pointers never block)', async () => {
    const prefix = freshPrefix();
    const registry = await RedisRegistry.open(server.url, { clock, prefix });
    const raw = new Redis(server.url);
    try {
      expect((await registry.claim(entry('e1'))).ok).toBe(true);
      await raw.del(`${prefix}entry:e1`); // as if it had expired; name and resource keys remain
      expect(await registry.holderOf('tcp:127.0.0.1:1')).toBeUndefined();
      expect(await registry.heartbeat('e1')).toBe(false);
      expect((await registry.claim(entry('e2'))).ok).toBe(true);
    } finally {
      raw.disconnect();
      await registry.close();
    }
  });

  it('an unreadable entry is listed as stale, not thrown, and reaped', async () => {
    const prefix = freshPrefix();
    const registry = await RedisRegistry.open(server.url, { clock, prefix });
    const raw = new Redis(server.url);
    try {
      expect((await registry.claim(entry('bad'))).ok).toBe(true);
      await raw.hset(`${prefix}entry:bad`, 'resources', '[not json');
      await raw.set(`${prefix}entry:junk`, 'not a hash'); // a stray key of the wrong type is skipped
      expect(await registry.list()).toMatchObject([{ id: 'bad', alive: false }]);
      expect(await registry.find('a')).toEqual([]);
      expect((await registry.claim(entry('good'))).ok).toBe(true);
      expect((await registry.list()).map((e) => e.id)).toEqual(['good']);
    } finally {
      raw.disconnect();
      await registry.close();
    }
  });

  it('a key prefix with glob characters lists only its own entries', async () => {
    const base = freshPrefix();
    const starred = await RedisRegistry.open(server.url, { clock, prefix: `${base}*:` });
    const other = await RedisRegistry.open(server.url, { clock, prefix: `${base}x:` });
    try {
      expect((await other.claim(entry('other'))).ok).toBe(true);
      expect(await starred.list()).toEqual([]);
    } finally {
      await starred.close();
      await other.close();
    }
  });

  it('4 processes claiming one name at the same moment: exactly one wins; kill -9 frees it', async () => {
    const redisPrefix = freshPrefix();
    const racers = await raceClaim(4, { url: server.url, redisPrefix, name: 'race', resources: ['ipc:@race'] });
    try {
      const winners = racers.results.filter((r) => r.ok);
      expect(racers.results.filter((r) => r.error)).toEqual([]);
      expect(winners).toHaveLength(1);
      for (const loser of racers.results.filter((r) => !r.ok)) expect(loser).toMatchObject({ conflict: 'name', holderPid: winners[0]!.pid });
    } finally {
      await racers.kill();
    }
    const registry = await openRegistry(server.url, { clock: systemClock, redisPrefix });
    try {
      expect(await registry.list()).toMatchObject([{ name: 'race', alive: false }]);
      const again = await registry.claim({ ...entry('restart'), instance: 'race', name: 'race', resources: ['ipc:@race'], startedAt: Date.now() });
      expect(again.ok).toBe(true);
    } finally {
      await registry.close();
    }
  });
});
