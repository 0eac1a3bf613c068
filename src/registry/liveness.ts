/**
 * When a registry entry is stale: shared by every registry implementation so SQLite and Redis
 * judge entries the same way.
 */
import os from 'node:os';
import type { Clock } from '../clock.js';
import type { NewEntry, RegistryEntry } from './registry.js';

export interface RegistryOptions {
  /** An entry whose heartbeat is older than this is stale. Default 15 000 ms. */
  ttlMs?: number;
  clock: Clock;
  /** This host's name, compared with an entry's `host` to decide whether its pid can be checked. Default `os.hostname()`. */
  localHost?: string;
  /** Whether a pid on this host is running. Default: `process.kill(pid, 0)`. */
  isPidAlive?: (pid: number) => boolean;
}

export const DEFAULT_TTL_MS = 15_000;

/** True when `pid` names a running process on this host (one we may not signal counts as running). */
export function isPidAlive(pid: number): boolean {
  // pid 0 and negatives address process groups; anything else is not a pid a process could have.
  if (!Number.isSafeInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export interface Liveness {
  readonly ttlMs: number;
  readonly clock: Clock;
  /** False when stale: its pid is dead on this host, or its heartbeat is older than the TTL. */
  isAlive(entry: Pick<RegistryEntry, 'host' | 'pid' | 'heartbeatAt'>): boolean;
}

export function liveness(options: RegistryOptions): Liveness {
  const ttlMs = options.ttlMs ?? DEFAULT_TTL_MS;
  if (!(ttlMs > 0)) throw new RangeError(`registry ttlMs must be positive (got ${ttlMs})`);
  const localHost = options.localHost ?? os.hostname();
  const pidAlive = options.isPidAlive ?? isPidAlive;
  const clock = options.clock;
  return {
    ttlMs,
    clock,
    isAlive(entry) {
      if (!(clock.now() - entry.heartbeatAt <= ttlMs)) return false; // NaN heartbeat counts as expired
      // A pid means something only on its own host; elsewhere the heartbeat is all we can go by.
      return entry.host !== localHost || pidAlive(entry.pid);
    },
  };
}

/** How an entry is named in messages: `gateway default (pid 123 on host-a)`. */
export function describeEntry(entry: Pick<RegistryEntry, 'role' | 'instance' | 'name' | 'pid' | 'host'>): string {
  const who =
    entry.role === 'gateway' && entry.name === entry.instance ? `gateway ${entry.instance}` : `${entry.role === 'gateway' ? 'gateway node' : entry.role} ${entry.name} of instance ${entry.instance}`;
  return `${who} (pid ${entry.pid} on ${entry.host})`;
}

/**
 * The entry a claim stores, built field by field (callers may pass a whole RegistryEntry when
 * they claim again), with the heartbeat set to now.
 */
export function storedEntry(entry: NewEntry, resources: string[], now: number): RegistryEntry {
  return {
    id: entry.id,
    instance: entry.instance,
    role: entry.role,
    name: entry.name,
    pid: entry.pid,
    host: entry.host,
    endpoints: { ...entry.endpoints },
    resources,
    startedAt: entry.startedAt,
    heartbeatAt: now,
  };
}
