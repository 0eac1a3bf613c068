/**
 * One process's registry entry for its lifetime: claimed at start, heartbeated every third of
 * the TTL, claimed again if it was reaped meanwhile (a suspended machine, a lost Redis), and
 * released on stop.
 */
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { Clock } from '../clock.js';
import type { Logger } from '../observability/logger.js';
import type { ClaimResult, Endpoints, Registry, RegistryEntry, Role } from './registry.js';

export interface RegistrationOptions {
  registry: Registry;
  instance: string;
  role: Role;
  name: string;
  resources: string[];
  ttlMs: number;
  clock: Clock;
  logger: Logger;
  /**
   * Also remove stale entries (of any process) about once per TTL, so a crashed part's entry
   * disappears even when nothing else claims what it held. Gateways do this.
   */
  prune?: boolean;
}

export class Registration {
  private entry: RegistryEntry | undefined;
  private timer: NodeJS.Timeout | undefined;

  private constructor(private readonly options: RegistrationOptions) {}

  /** Claims the entry; the result names the holder when another live process has it. */
  static async claim(options: RegistrationOptions): Promise<{ ok: true; registration: Registration } | Extract<ClaimResult, { ok: false }>> {
    const registration = new Registration(options);
    const result = await options.registry.claim({
      id: randomUUID(),
      instance: options.instance,
      role: options.role,
      name: options.name,
      pid: process.pid,
      host: hostname(),
      endpoints: {},
      resources: options.resources,
      startedAt: options.clock.now(),
    });
    if (!result.ok) return result;
    registration.entry = result.entry;
    registration.timer = setInterval(() => void registration.beat(), Math.max(50, options.ttlMs / 3));
    registration.timer.unref();
    return { ok: true, registration };
  }

  get id(): string {
    return this.entry!.id;
  }

  /** Records the endpoints actually bound, and the resources they occupy. */
  async publish(endpoints: Endpoints, resources: string[]): Promise<void> {
    const entry = this.entry!;
    entry.endpoints = endpoints;
    entry.resources = [...new Set([...entry.resources, ...resources])];
    await this.options.registry.update(entry.id, { endpoints, resources: entry.resources });
  }

  private beats = 0;
  /** Beats in a row that failed (a locked, damaged or unreachable registry). */
  private failedBeats = 0;

  /**
   * One heartbeat, then (gateways, every third beat) a prune. A failure is logged and retried at
   * the next beat; the process keeps serving whatever the registry does. The heartbeat comes
   * first so that a registry that cannot be written costs one short wait, not two.
   */
  private async beat(): Promise<void> {
    const entry = this.entry;
    if (!entry) return;
    const { registry, logger } = this.options;
    try {
      // The whole entry, endpoints included: an edit of the stored entry lasts one beat at most.
      const present = await registry.heartbeat(entry.id, entry);
      if (this.failedBeats > 0) {
        logger.info({ registry: registry.url, failed: this.failedBeats }, 'registry heartbeat works again');
        this.failedBeats = 0;
      }
      if (this.options.prune && ++this.beats % 3 === 0) {
        for (const gone of await registry.prune()) {
          logger.info({ instance: gone.instance, role: gone.role, name: gone.name, entryPid: gone.pid, entryHost: gone.host }, 'reaped a stale registry entry');
        }
      }
      if (present) return;
      const again = await registry.claim({ ...entry, startedAt: entry.startedAt });
      if (again.ok) logger.warn({ registry: registry.url }, 'registry entry had been reaped; registered again');
      else logger.error({ holder: again.holder }, 'registry entry was reaped and taken by another process');
    } catch (error) {
      this.failedBeats++;
      logger.warn({ err: (error as Error).message, failed: this.failedBeats }, 'registry heartbeat failed; still serving, retrying at the next beat');
    }
  }

  async release(): Promise<void> {
    clearInterval(this.timer);
    const entry = this.entry;
    this.entry = undefined;
    if (entry) await this.options.registry.release(entry.id);
  }
}
