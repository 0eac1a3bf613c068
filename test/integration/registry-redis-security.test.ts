/**
 * The Redis registry on a Redis that is not open: a password (requirepass), an ACL user limited
 * to the registry's key prefix, and TLS. A live registration rewrites its whole entry on every
 * heartbeat, so an entry edited behind its back (an `HSET` of a fake endpoint) is put right
 * within one heartbeat, which is what readers (tickcast watch, adapters looking up their
 * gateway) go by.
 */
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemClock } from '../../src/clock.js';
import { ErrorCode, TickcastError } from '../../src/errors.js';
import { silentLogger } from '../../src/observability/logger.js';
import { openRegistry } from '../../src/registry/open.js';
import { Registration } from '../../src/registry/registration.js';
import { RedisRegistry } from '../../src/registry/redis.js';
import type { Registry } from '../../src/registry/registry.js';
import { makeTempDir, removeDir, runCli } from '../helpers/cli.js';
import { startRedisServer, type RedisServer } from '../helpers/redis-server.js';
import { makeCertificate } from '../helpers/tls-cert.js';
import { registryContract } from '../unit/registry-contract.js';

const PASSWORD = 'pw-' + randomUUID();
const ACL_PASSWORD = 'acl-' + randomUUID();
const ADMIN_PASSWORD = 'admin-' + randomUUID();
const ACL_PREFIX = 'tickcast-acl:';

/**
 * What the registry needs, and nothing else: its own keys, the commands it runs (its scripts
 * run HGET, HSET, GET, SET, DEL, EXISTS, PEXPIRE, PTTL), no pub/sub channels.
 */
const ACL_USER = `user tickcast on >${ACL_PASSWORD} ~${ACL_PREFIX}* resetchannels -@all +@connection +select +info +scan +eval +get +mget +set +del +exists +hget +hgetall +hset +pexpire +pttl`;

let withPassword: RedisServer;
let withAcl: RedisServer;
beforeAll(async () => {
  [withPassword, withAcl] = await Promise.all([
    startRedisServer({ requirepass: PASSWORD }),
    startRedisServer({ aclUsers: [`user admin on >${ADMIN_PASSWORD} ~* &* +@all`, ACL_USER] }),
  ]);
});
afterAll(async () => {
  await Promise.all([withPassword?.stop(), withAcl?.stop()]);
});

const passwordUrl = (): string => `redis://:${encodeURIComponent(PASSWORD)}@127.0.0.1:${withPassword.port}/0`;
const aclUrl = (): string => `redis://tickcast:${encodeURIComponent(ACL_PASSWORD)}@127.0.0.1:${withAcl.port}/0`;

registryContract('Redis with a password', async () => {
  const prefix = `test-${randomUUID()}:`;
  return { open: (options) => RedisRegistry.open(passwordUrl(), { ...options, prefix }), cleanup: async () => undefined };
});

registryContract('Redis with an ACL user limited to the key prefix', async () => {
  const prefix = `${ACL_PREFIX}${randomUUID()}:`;
  return { open: (options) => RedisRegistry.open(aclUrl(), { ...options, prefix }), cleanup: async () => undefined };
});

describe('Redis registry credentials', () => {
  const clock = { now: () => 1_700_000_000_000 };

  it('a password in the URL opens the registry; its url names the server without the password', async () => {
    const registry = await openRegistry(passwordUrl(), { clock, redisPrefix: `test-${randomUUID()}:` });
    try {
      expect(registry.url).toBe(`redis://127.0.0.1:${withPassword.port}/0`);
      expect(await registry.list()).toEqual([]);
    } finally {
      await registry.close();
    }
  });

  it('a wrong password is STORE_FAILED naming the registry and the refusal, never the password', async () => {
    const wrong = `wrong-${randomUUID()}`;
    for (const url of [`redis://:${wrong}@127.0.0.1:${withPassword.port}/0`, `redis://tickcast:${wrong}@127.0.0.1:${withAcl.port}/0`]) {
      const err = await openRegistry(url, { clock, connectTimeoutMs: 3000 }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(TickcastError);
      expect(err).toMatchObject({ code: ErrorCode.STORE_FAILED });
      const message = (err as Error).message;
      expect(message).toContain(`registry redis://127.0.0.1:`);
      expect(message).toMatch(/WRONGPASS|NOAUTH/);
      expect(message).toMatch(/user name and password/);
      expect(message).not.toContain(wrong);
    }
  });

  it('no password at all, where one is required, is STORE_FAILED saying so', async () => {
    const err = await openRegistry(`redis://127.0.0.1:${withPassword.port}/0`, { clock, connectTimeoutMs: 3000 }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: ErrorCode.STORE_FAILED });
    expect((err as Error).message).toMatch(/NOAUTH/);
    expect((err as Error).message).toMatch(/user name and password/);
  });

  it('an ACL user limited to the prefix cannot read or write other keys; a registry on another prefix fails with NOPERM', async () => {
    const admin = new Redis(`redis://admin:${ADMIN_PASSWORD}@127.0.0.1:${withAcl.port}`);
    const limited = new Redis(aclUrl());
    try {
      await admin.set('other:secret', 'x');
      await expect(limited.get('other:secret')).rejects.toThrow(/NOPERM/);
      await expect(limited.set('other:mine', 'x')).rejects.toThrow(/NOPERM/);
      await expect(limited.flushall()).rejects.toThrow(/NOPERM/);
    } finally {
      admin.disconnect();
      limited.disconnect();
    }
    const registry = await RedisRegistry.open(aclUrl(), { clock, prefix: 'elsewhere:' });
    try {
      const err = await registry
        .claim({ id: 'e1', instance: 'a', role: 'gateway', name: 'a', pid: 1, host: 'h', endpoints: {}, resources: [], startedAt: 1 })
        .catch((e: unknown) => e);
      expect(err).toMatchObject({ code: ErrorCode.STORE_FAILED });
      expect((err as Error).message).toMatch(/NOPERM/);
      expect((err as Error).message).not.toContain(ACL_PASSWORD);
    } finally {
      await registry.close();
    }
  });
});

describe('heartbeats re-assert the entry', () => {
  /** A gateway's registration with a short TTL (heartbeats every 100 ms), on the ACL server. */
  async function register(registry: Registry, instance: string) {
    const claim = await Registration.claim({ registry, instance, role: 'gateway', name: instance, resources: [], ttlMs: 300, clock: systemClock, logger: silentLogger() });
    if (!claim.ok) throw new Error('claim failed');
    await claim.registration.publish({ ws: 'ws://127.0.0.1:8765', bus: 'tcp://127.0.0.1:5555', control: 'tcp://127.0.0.1:5556' }, []);
    return claim.registration;
  }

  it("an HSET that points a live gateway's endpoints elsewhere is undone by its next heartbeat", async () => {
    const prefix = `${ACL_PREFIX}${randomUUID()}:`;
    const registry = await RedisRegistry.open(aclUrl(), { clock: systemClock, ttlMs: 300, prefix });
    const reader = await RedisRegistry.open(aclUrl(), { clock: systemClock, ttlMs: 300, prefix });
    const attacker = new Redis(`redis://admin:${ADMIN_PASSWORD}@127.0.0.1:${withAcl.port}`);
    const registration = await register(registry, 'live');
    try {
      const key = `${prefix}entry:${registration.id}`;
      expect(await attacker.hget(key, 'endpoint:ws')).toBe('ws://127.0.0.1:8765');
      // The attack: fake endpoints, an extra field, a fake pid and host.
      await attacker.hset(key, 'endpoint:ws', 'ws://evil.example:1', 'endpoint:control', 'tcp://evil.example:2', 'endpoint:bus', 'tcp://evil.example:3', 'pid', '1', 'junk', 'x');
      expect(await attacker.hget(key, 'endpoint:ws')).toBe('ws://evil.example:1');
      let seen: Record<string, string> = {};
      await waitUntilAsync(async () => {
        seen = await attacker.hgetall(key);
        return seen['endpoint:ws'] === 'ws://127.0.0.1:8765';
      }, 'the heartbeat to rewrite the entry');
      expect(seen['endpoint:control']).toBe('tcp://127.0.0.1:5556');
      expect(seen['endpoint:bus']).toBe('tcp://127.0.0.1:5555');
      expect(seen.pid).toBe(String(process.pid));
      expect(seen.junk).toBeUndefined();
      // What readers (tickcast watch, an adapter's gateway lookup) go by.
      const [gateway] = await reader.find('live', 'gateway');
      expect(gateway?.endpoints).toEqual({ ws: 'ws://127.0.0.1:8765', bus: 'tcp://127.0.0.1:5555', control: 'tcp://127.0.0.1:5556' });
      // The entry keeps expiring as before: heartbeats still set its TTL.
      expect(await attacker.pttl(key)).toBeGreaterThan(0);
    } finally {
      attacker.disconnect();
      await registration.release();
      await Promise.all([registry.close(), reader.close()]);
    }
  });

  it('the SQLite registry rewrites the endpoints on a heartbeat too', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tickcast-reg-'));
    const url = `sqlite:${path.join(dir, 'registry.db')}`;
    const registry = await openRegistry(url, { clock: systemClock, ttlMs: 300 });
    const registration = await register(registry, 'local');
    try {
      const Database = (await import('better-sqlite3')).default;
      const db = new Database(path.join(dir, 'registry.db'));
      db.prepare('UPDATE registry_entries SET endpoints = ? WHERE id = ?').run(JSON.stringify({ ws: 'ws://evil.example:1' }), registration.id);
      db.close();
      await waitUntilAsync(async () => (await registry.find('local', 'gateway'))[0]?.endpoints.ws === 'ws://127.0.0.1:8765', 'the heartbeat to rewrite the endpoints');
    } finally {
      await registration.release();
      await registry.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('Redis over TLS', () => {
  let dir: string;
  let server: RedisServer;
  beforeAll(async () => {
    dir = makeTempDir('tickcast-redis-tls-');
    makeCertificate(dir);
    server = await startRedisServer({
      requirepass: PASSWORD,
      tls: { certFile: path.join(dir, 'server.pem'), keyFile: path.join(dir, 'server.key'), caFile: path.join(dir, 'ca.pem') },
    });
  });
  afterAll(async () => {
    await server?.stop();
    if (dir) removeDir(dir);
  });

  it('rediss:// with a password works when the CA is trusted (NODE_EXTRA_CA_CERTS), and fails verification when it is not', async () => {
    const url = `rediss://:${encodeURIComponent(PASSWORD)}@127.0.0.1:${server.port}/0`;
    const data = makeTempDir('tickcast-data-');
    try {
      const trusted = await runCli(['instances'], { dataDir: data, env: { TICKCAST_REGISTRY: url, NODE_EXTRA_CA_CERTS: path.join(dir, 'ca.pem') } });
      expect(trusted.stderr).not.toContain(PASSWORD);
      expect(trusted.code).toBe(0);
      const untrusted = await runCli(['instances'], { dataDir: data, env: { TICKCAST_REGISTRY: url } });
      expect(untrusted.code).not.toBe(0);
      expect(untrusted.stderr).toContain(`rediss://127.0.0.1:${server.port}/0`);
      expect(untrusted.stderr).toMatch(/certificate/i);
      expect(untrusted.stderr + untrusted.stdout).not.toContain(PASSWORD);
    } finally {
      removeDir(data);
    }
  });
});

async function waitUntilAsync(condition: () => Promise<boolean>, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}
