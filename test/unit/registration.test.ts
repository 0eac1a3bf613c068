/** Registration: a process's registry entry claimed, published, heartbeated, re-claimed if reaped, pruned and released. */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { Logger } from '../../src/observability/logger.js';
import { Registration } from '../../src/registry/registration.js';
import type { ClaimResult, ListedEntry, NewEntry, Registry, RegistryEntry } from '../../src/registry/registry.js';

const TTL = 300;
const BEAT = TTL / 3;

/** An in-memory registry that records every call and can be told to fail or to forget an entry. */
class FakeRegistry implements Registry {
  readonly url = 'memory:';
  readonly calls: string[] = [];
  readonly entries = new Map<string, RegistryEntry>();
  claims: NewEntry[] = [];
  failing = false;
  holder: RegistryEntry | undefined;
  stale: RegistryEntry[] = [];

  async claim(entry: NewEntry): Promise<ClaimResult> {
    this.calls.push('claim');
    this.claims.push(entry);
    if (this.holder) return { ok: false, holder: this.holder, conflict: 'name' };
    const stored = { ...entry, heartbeatAt: 0 };
    this.entries.set(entry.id, stored);
    return { ok: true, entry: stored };
  }
  async update(id: string, change: { endpoints?: RegistryEntry['endpoints']; resources?: string[] }): Promise<boolean> {
    this.calls.push(`update ${JSON.stringify(change)}`);
    return this.entries.has(id);
  }
  async heartbeat(id: string): Promise<boolean> {
    this.calls.push('heartbeat');
    if (this.failing) throw new Error('database is locked');
    return this.entries.has(id);
  }
  async release(id: string): Promise<void> {
    this.calls.push('release');
    this.entries.delete(id);
  }
  async list(): Promise<ListedEntry[]> {
    return [];
  }
  async find(): Promise<RegistryEntry[]> {
    return [];
  }
  async holderOf(): Promise<RegistryEntry | undefined> {
    return undefined;
  }
  async prune(): Promise<RegistryEntry[]> {
    this.calls.push('prune');
    const gone = this.stale;
    this.stale = [];
    return gone;
  }
  async close(): Promise<void> {}
}

function recordingLogger(): Logger & { lines: Array<[string, string]> } {
  const lines: Array<[string, string]> = [];
  const at = (level: string) => (_fields: unknown, message: string) => void lines.push([level, message]);
  return { lines, info: at('info'), warn: at('warn'), error: at('error'), debug: at('debug') } as unknown as Logger & { lines: Array<[string, string]> };
}

const clock = { now: () => 1_700_000_000_000 };

async function claimed(registry: FakeRegistry, logger: Logger, prune = false): Promise<Registration> {
  const result = await Registration.claim({ registry, instance: 'default', role: 'gateway', name: 'default', resources: ['tcp:127.0.0.1:8765'], ttlMs: TTL, clock, logger, prune });
  if (!result.ok) throw new Error('claim refused');
  return result.registration;
}

describe('Registration', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it('claims an entry naming this process, or returns who holds the name', async () => {
    const registry = new FakeRegistry();
    const registration = await claimed(registry, recordingLogger());
    const [entry] = registry.claims;
    expect(entry).toMatchObject({ instance: 'default', role: 'gateway', name: 'default', pid: process.pid, resources: ['tcp:127.0.0.1:8765'], startedAt: clock.now(), endpoints: {} });
    expect(registration.id).toBe(entry!.id);
    await registration.release();

    const taken = new FakeRegistry();
    taken.holder = { ...entry!, pid: 4242, heartbeatAt: 0 };
    const refused = await Registration.claim({ registry: taken, instance: 'default', role: 'gateway', name: 'default', resources: [], ttlMs: TTL, clock, logger: recordingLogger() });
    expect(refused).toMatchObject({ ok: false, conflict: 'name', holder: { pid: 4242 } });
  });

  it('publishes endpoints with the resources they occupy, each resource once', async () => {
    const registry = new FakeRegistry();
    const registration = await claimed(registry, recordingLogger());
    await registration.publish({ ws: 'ws://127.0.0.1:8765', bus: 'tcp://127.0.0.1:5555' }, ['tcp:127.0.0.1:8765', 'tcp:127.0.0.1:5555']);
    expect(registry.calls).toContain(
      `update ${JSON.stringify({ endpoints: { ws: 'ws://127.0.0.1:8765', bus: 'tcp://127.0.0.1:5555' }, resources: ['tcp:127.0.0.1:8765', 'tcp:127.0.0.1:5555'] })}`,
    );
    await registration.release();
  });

  it('heartbeats every third of the TTL and claims the same entry again if it was reaped', async () => {
    const registry = new FakeRegistry();
    const logger = recordingLogger();
    const registration = await claimed(registry, logger);
    await vi.advanceTimersByTimeAsync(BEAT * 2);
    expect(registry.calls.filter((c) => c === 'heartbeat')).toHaveLength(2);

    registry.entries.clear(); // reaped while the machine slept
    await vi.advanceTimersByTimeAsync(BEAT);
    expect(registry.claims).toHaveLength(2);
    // The same entry: its id and start time survive the reaping.
    expect(registry.claims[1]).toMatchObject(registry.claims[0]!);
    expect(logger.lines).toContainEqual(['warn', 'registry entry had been reaped; registered again']);
    await registration.release();
  });

  it('keeps serving through failed heartbeats and says when they work again', async () => {
    const registry = new FakeRegistry();
    const logger = recordingLogger();
    const registration = await claimed(registry, logger);
    registry.failing = true;
    await vi.advanceTimersByTimeAsync(BEAT * 2);
    expect(logger.lines.filter(([level]) => level === 'warn')).toHaveLength(2);
    registry.failing = false;
    await vi.advanceTimersByTimeAsync(BEAT);
    expect(logger.lines.at(-1)).toEqual(['info', 'registry heartbeat works again']);
    await registration.release();
  });

  it('prunes stale entries every third beat when asked to, and only then', async () => {
    const registry = new FakeRegistry();
    const logger = recordingLogger();
    const pruning = await claimed(registry, logger, true);
    registry.stale = [{ ...registry.claims[0]!, name: 'crashed', heartbeatAt: 0 }];
    await vi.advanceTimersByTimeAsync(BEAT * 2);
    expect(registry.calls).not.toContain('prune');
    await vi.advanceTimersByTimeAsync(BEAT);
    expect(registry.calls.filter((c) => c === 'prune')).toHaveLength(1);
    expect(logger.lines).toContainEqual(['info', 'reaped a stale registry entry']);
    await pruning.release();

    const quiet = new FakeRegistry();
    const other = await claimed(quiet, recordingLogger(), false);
    await vi.advanceTimersByTimeAsync(BEAT * 6);
    expect(quiet.calls).not.toContain('prune');
    await other.release();
  });

  it('releases its entry once and stops heartbeating', async () => {
    const registry = new FakeRegistry();
    const registration = await claimed(registry, recordingLogger());
    await registration.release();
    await registration.release();
    expect(registry.calls.filter((c) => c === 'release')).toHaveLength(1);
    expect(registry.entries.size).toBe(0);
    const before = registry.calls.length;
    await vi.advanceTimersByTimeAsync(BEAT * 5);
    expect(registry.calls).toHaveLength(before);
  });
});
