/**
 * The behaviour every registry implementation must have, run against each (SQLite, Redis) by its
 * own test file. Time and pid liveness are injected, so staleness is tested without waiting or
 * killing anything.
 */
import { randomUUID } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ErrorCode, TickcastError } from '../../src/errors.js';
import type { RegistryOptions } from '../../src/registry/liveness.js';
import type { ClaimResult, NewEntry, Registry } from '../../src/registry/registry.js';

/** One empty store per test; `open` may be called several times for separate handles on it. */
export interface ContractStore {
  open(options: RegistryOptions): Promise<Registry>;
  cleanup(): Promise<void>;
}

const HOST = 'contract-host';
const TTL = 10_000;

export function registryContract(name: string, makeStore: () => Promise<ContractStore>): void {
  describe(`${name} registry contract`, () => {
    let store: ContractStore;
    let opened: Registry[];
    let now: number;
    let dead: Set<number>;
    let nextPid: number;
    let registry: Registry;

    const options = (): RegistryOptions => ({
      ttlMs: TTL,
      clock: { now: () => now },
      localHost: HOST,
      isPidAlive: (pid) => !dead.has(pid),
    });
    const open = async (): Promise<Registry> => {
      const handle = await store.open(options());
      opened.push(handle);
      return handle;
    };
    const entry = (over: Partial<NewEntry> = {}): NewEntry => ({
      id: randomUUID(),
      instance: 'alpha',
      role: 'gateway',
      name: 'alpha',
      pid: nextPid++,
      host: HOST,
      endpoints: {},
      resources: [],
      startedAt: now,
      ...over,
    });
    const claimed = async (e: NewEntry, on: Registry = registry) => {
      const result = await on.claim(e);
      if (!result.ok) throw new Error(`expected ${e.name} to be claimed, held by ${result.holder.id}`);
      return result.entry;
    };

    beforeEach(async () => {
      store = await makeStore();
      opened = [];
      now = 1_700_000_000_000;
      dead = new Set();
      nextPid = 10_000;
      registry = await open();
    });
    afterEach(async () => {
      for (const handle of opened) await handle.close();
      await store.cleanup();
    });

    it('claims an entry and finds it by instance and role', async () => {
      const gateway = await claimed(entry({ endpoints: { ws: 'ws://127.0.0.1:8765' }, resources: ['tcp:127.0.0.1:8765'] }));
      expect(gateway.heartbeatAt).toBe(now);
      expect(gateway.resources).toEqual(['tcp:127.0.0.1:8765']);
      const adapter = await claimed(entry({ role: 'adapter', name: 'sim' }));
      await claimed(entry({ instance: 'beta', name: 'beta' }));

      expect((await registry.find('alpha')).map((e) => e.id).sort()).toEqual([gateway.id, adapter.id].sort());
      expect(await registry.find('alpha', 'gateway')).toEqual([gateway]);
      expect(await registry.find('alpha', 'adapter')).toEqual([adapter]);
      expect(await registry.find('nobody')).toEqual([]);
      const listed = await registry.list();
      expect(listed).toHaveLength(3);
      expect(listed.every((e) => e.alive)).toBe(true);
      expect(listed.find((e) => e.id === gateway.id)).toEqual({ ...gateway, alive: true });
    });

    it('lists oldest first', async () => {
      const late = await claimed(entry({ name: 'late', startedAt: now + 5 }));
      const early = await claimed(entry({ name: 'early', startedAt: now - 5 }));
      expect((await registry.list()).map((e) => e.id)).toEqual([early.id, late.id]);
    });

    it('refuses a second live holder of the same (instance, role, name), naming the holder', async () => {
      const first = await claimed(entry());
      const second = await registry.claim(entry());
      expect(second).toMatchObject({ ok: false, conflict: 'name', holder: { id: first.id, pid: first.pid } });
      // The same name under another role or instance is someone else.
      await claimed(entry({ role: 'adapter' }));
      await claimed(entry({ instance: 'beta' }));
    });

    it('refuses a resource held by a live entry, naming it, and registers nothing', async () => {
      const first = await claimed(entry({ resources: ['tcp:127.0.0.1:5555'] }));
      const rival = entry({ instance: 'beta', name: 'beta', resources: ['tcp:127.0.0.1:6000', 'tcp:127.0.0.1:5555'] });
      const result = await registry.claim(rival);
      expect(result).toMatchObject({ ok: false, conflict: 'resource', resource: 'tcp:127.0.0.1:5555', holder: { id: first.id } });
      expect(await registry.find('beta')).toEqual([]);
      expect(await registry.holderOf('tcp:127.0.0.1:6000')).toBeUndefined();
    });

    it('tells who holds a resource', async () => {
      const holder = await claimed(entry({ resources: ['tcp:127.0.0.1:5555', 'ipc:@tickcast-alpha-bus'] }));
      expect(await registry.holderOf('tcp:127.0.0.1:5555')).toEqual(holder);
      expect(await registry.holderOf('ipc:@tickcast-alpha-bus')).toEqual(holder);
      expect(await registry.holderOf('tcp:127.0.0.1:1')).toBeUndefined();
    });

    it('update merges endpoints and adds resources', async () => {
      const mine = await claimed(entry({ endpoints: { ws: 'ws://127.0.0.1:1' }, resources: ['tcp:127.0.0.1:1'] }));
      expect(await registry.update(mine.id, { endpoints: { bus: 'tcp://127.0.0.1:2' }, resources: ['tcp:127.0.0.1:1', 'tcp:127.0.0.1:2'] })).toBe(true);
      expect(await registry.update(mine.id, { endpoints: { ws: 'ws://127.0.0.1:3' } })).toBe(true);
      const [found] = await registry.find('alpha');
      expect(found?.endpoints).toEqual({ ws: 'ws://127.0.0.1:3', bus: 'tcp://127.0.0.1:2' });
      expect(found?.resources).toEqual(['tcp:127.0.0.1:1', 'tcp:127.0.0.1:2']);
      expect((await registry.holderOf('tcp:127.0.0.1:2'))?.id).toBe(mine.id);
    });

    it('update of a gone entry is false', async () => {
      expect(await registry.update('no-such-id', { endpoints: { ws: 'ws://x' } })).toBe(false);
      const mine = await claimed(entry());
      await registry.release(mine.id);
      expect(await registry.update(mine.id, { resources: ['tcp:127.0.0.1:9'] })).toBe(false);
      expect(await registry.holderOf('tcp:127.0.0.1:9')).toBeUndefined();
    });

    it('update taking a resource a live entry holds fails with PORT_IN_USE and changes nothing', async () => {
      const other = await claimed(entry({ instance: 'beta', name: 'beta', resources: ['tcp:127.0.0.1:7'] }));
      const mine = await claimed(entry({ endpoints: { ws: 'ws://127.0.0.1:1' } }));
      const failed = registry.update(mine.id, { endpoints: { ws: 'ws://127.0.0.1:9' }, resources: ['tcp:127.0.0.1:8', 'tcp:127.0.0.1:7'] });
      await expect(failed).rejects.toThrow(TickcastError);
      await expect(failed).rejects.toMatchObject({ code: ErrorCode.PORT_IN_USE, message: expect.stringContaining('tcp:127.0.0.1:7') });
      expect((await registry.holderOf('tcp:127.0.0.1:7'))?.id).toBe(other.id);
      expect(await registry.holderOf('tcp:127.0.0.1:8')).toBeUndefined();
      const [found] = await registry.find('alpha');
      expect(found?.endpoints).toEqual({ ws: 'ws://127.0.0.1:1' });
      expect(found?.resources).toEqual([]);
    });

    it('update takes a resource from a stale holder', async () => {
      const crashed = await claimed(entry({ instance: 'beta', name: 'beta', resources: ['tcp:127.0.0.1:7'] }));
      const mine = await claimed(entry());
      dead.add(crashed.pid);
      expect(await registry.update(mine.id, { resources: ['tcp:127.0.0.1:7'] })).toBe(true);
      expect((await registry.holderOf('tcp:127.0.0.1:7'))?.id).toBe(mine.id);
    });

    it('heartbeat refreshes an entry and keeps it alive past the TTL', async () => {
      const mine = await claimed(entry());
      now += TTL - 1;
      expect(await registry.heartbeat(mine.id)).toBe(true);
      now += TTL - 1;
      const [listed] = await registry.list();
      expect(listed).toMatchObject({ id: mine.id, alive: true, heartbeatAt: mine.heartbeatAt + TTL - 1 });
      expect(await registry.heartbeat('no-such-id')).toBe(false);
    });

    it('release frees the name and the resources', async () => {
      const mine = await claimed(entry({ resources: ['tcp:127.0.0.1:5555'] }));
      await registry.release(mine.id);
      await registry.release(mine.id); // twice is harmless
      expect(await registry.list()).toEqual([]);
      expect(await registry.heartbeat(mine.id)).toBe(false);
      await claimed(entry({ resources: ['tcp:127.0.0.1:5555'] }));
    });

    it('an entry whose pid died on this host is stale, and the next claim reaps it', async () => {
      const crashed = await claimed(entry({ resources: ['tcp:127.0.0.1:8765'] }));
      dead.add(crashed.pid);
      expect((await registry.list())[0]).toMatchObject({ id: crashed.id, alive: false });
      expect(await registry.find('alpha')).toEqual([]);
      expect(await registry.holderOf('tcp:127.0.0.1:8765')).toBeUndefined();

      const restarted = await claimed(entry({ resources: ['tcp:127.0.0.1:8765'] }));
      expect((await registry.list()).map((e) => e.id)).toEqual([restarted.id]);
      expect(await registry.heartbeat(crashed.id)).toBe(false); // reaped: it must claim again
    });

    it('a dead pid means nothing on another host: only the heartbeat counts there', async () => {
      const remote = await claimed(entry({ host: 'other-host' }));
      dead.add(remote.pid);
      expect((await registry.list())[0]?.alive).toBe(true);
      expect(await registry.claim(entry())).toMatchObject({ ok: false, conflict: 'name', holder: { id: remote.id } });
      now += TTL + 1;
      await claimed(entry());
    });

    it('an entry whose heartbeat is older than the TTL is stale, and the next claim reaps it', async () => {
      const silent = await claimed(entry({ resources: ['tcp:127.0.0.1:8765'] }));
      now += TTL;
      expect((await registry.list())[0]?.alive).toBe(true); // exactly the TTL is still alive
      now += 1;
      expect((await registry.list())[0]).toMatchObject({ id: silent.id, alive: false });
      expect(await registry.find('alpha')).toEqual([]);

      // A different name wanting the same resource also reaps the stale holder.
      const next = await claimed(entry({ name: 'other', resources: ['tcp:127.0.0.1:8765'] }));
      expect((await registry.holderOf('tcp:127.0.0.1:8765'))?.id).toBe(next.id);
      expect(await registry.heartbeat(silent.id)).toBe(false);
      await claimed(entry()); // and its name is free again
    });

    it('prune removes stale entries, returns them and keeps live ones', async () => {
      const live = await claimed(entry({ name: 'live' }));
      const crashed = await claimed(entry({ name: 'crashed', resources: ['tcp:127.0.0.1:1'] }));
      const silent = await claimed(entry({ name: 'silent', startedAt: now + 1 }));
      dead.add(crashed.pid);
      now += TTL / 2;
      await registry.heartbeat(live.id);
      await registry.heartbeat(crashed.id);
      now += TTL / 2 + 1;

      const reaped = await registry.prune();
      expect(reaped.map((e) => e.id).sort()).toEqual([crashed.id, silent.id].sort());
      expect((await registry.list()).map((e) => e.id)).toEqual([live.id]);
      expect(await registry.holderOf('tcp:127.0.0.1:1')).toBeUndefined();
      expect(await registry.prune()).toEqual([]);
    });

    it('a late heartbeat revives an entry nobody reaped yet', async () => {
      const mine = await claimed(entry());
      now += TTL + 1;
      expect(await registry.heartbeat(mine.id)).toBe(true);
      expect((await registry.list())[0]).toMatchObject({ id: mine.id, alive: true });
    });

    it('a re-claim with a whole old entry gets a fresh heartbeat', async () => {
      const mine = await claimed(entry());
      dead.add(mine.pid);
      now += 5;
      const again = await claimed({ ...mine, pid: nextPid++ } as NewEntry);
      expect(again.heartbeatAt).toBe(now);
      expect(again.id).toBe(mine.id);
    });

    it('separate handles on one store see each other', async () => {
      const other = await open();
      const mine = await claimed(entry({ resources: ['tcp:127.0.0.1:5555'] }));
      expect(await other.find('alpha')).toEqual([mine]);
      expect(await other.claim(entry())).toMatchObject({ ok: false, holder: { id: mine.id } });
      await other.release(mine.id);
      expect(await registry.find('alpha')).toEqual([]);
    });

    it('two handles racing for one name: exactly one wins, 50 rounds', async () => {
      const other = await open();
      for (let round = 0; round < 50; round++) {
        const rivals = [registry, other, registry, other].map((on) => ({ on, e: entry({ name: `race-${round}` }) }));
        const results: ClaimResult[] = await Promise.all(rivals.map(({ on, e }) => on.claim(e)));
        const winners = results.filter((r) => r.ok);
        expect(winners).toHaveLength(1);
        const winner = winners[0]!;
        if (!winner.ok) throw new Error('unreachable');
        for (const r of results) if (!r.ok) expect(r).toMatchObject({ conflict: 'name', holder: { id: winner.entry.id } });
      }
      expect(await registry.list()).toHaveLength(50);
    });

    it('two handles racing for one resource under different names: exactly one wins, 50 rounds', async () => {
      const other = await open();
      for (let round = 0; round < 50; round++) {
        const resource = `tcp:127.0.0.1:${20_000 + round}`;
        const results = await Promise.all(
          [registry, other, registry, other].map((on, i) => on.claim(entry({ name: `r${round}-${i}`, resources: [resource] }))),
        );
        expect(results.filter((r) => r.ok)).toHaveLength(1);
        for (const r of results) if (!r.ok) expect(r).toMatchObject({ conflict: 'resource', resource });
      }
    });

    it('two handles racing to replace a crashed holder: exactly one wins, 20 rounds', async () => {
      const other = await open();
      for (let round = 0; round < 20; round++) {
        const crashed = await claimed(entry({ name: `crash-${round}`, resources: [`tcp:127.0.0.1:${30_000 + round}`] }));
        dead.add(crashed.pid);
        const results = await Promise.all(
          [registry, other, registry, other].map((on) => on.claim(entry({ name: `crash-${round}`, resources: [`tcp:127.0.0.1:${30_000 + round}`] }))),
        );
        expect(results.filter((r) => r.ok)).toHaveLength(1);
      }
      expect((await registry.list()).every((e) => e.alive)).toBe(true);
    });
  });
}
