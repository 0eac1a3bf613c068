/**
 * The per-key connection limit and the failed-key limit of `--workers N`, counted once for the
 * whole instance: the primary keeps the counts here and workers ask (messages.ts), so N workers
 * do not each allow the full budget. Pure: the clock is injected.
 */
import type { Clock } from '../clock.js';
import { type AuthOutcome, FailedAuths } from '../gateway/limits.js';
import type { AuthVerdict } from './messages.js';

/** As a single gateway's (gateway.ts): the window and the longest hold-back of failed keys. */
const FAILED_AUTH_WINDOW_MS = 60_000;
const FAILED_AUTH_MAX_BLOCK_MS = 60_000;

export interface InstanceLimitsOptions {
  /** limits.maxConnectionsPerKey; absent: unlimited. */
  maxConnectionsPerKey?: number | undefined;
  /** limits.authFailures; absent or 0: not tracked. */
  authFailures?: number | undefined;
  clock: Clock;
}

export class InstanceLimits {
  /** worker → user → connections counted for it. */
  private readonly connections = new Map<number, Map<string, number>>();
  private readonly failedAuths: FailedAuths | undefined;
  private nextTicket = 1;
  /** Admissions whose check is under way: settled by their worker, or as errors if it dies. */
  private readonly tickets = new Map<number, { worker: number; settle: (outcome: AuthOutcome) => number }>();

  constructor(private readonly options: InstanceLimitsOptions) {
    this.failedAuths = options.authFailures
      ? new FailedAuths({ allowed: options.authFailures, windowMs: FAILED_AUTH_WINDOW_MS, maxBlockMs: FAILED_AUTH_MAX_BLOCK_MS, clock: options.clock })
      : undefined;
  }

  /** `user`'s connections across workers. */
  held(user: string): number {
    let total = 0;
    for (const users of this.connections.values()) total += users.get(user) ?? 0;
    return total;
  }

  /** Counts a connection of `user` on `worker` if below the limit; returns how many were held before. */
  reserve(worker: number, user: string): number {
    const held = this.held(user);
    if (held >= (this.options.maxConnectionsPerKey ?? Infinity)) return held;
    let users = this.connections.get(worker);
    if (!users) this.connections.set(worker, (users = new Map()));
    users.set(user, (users.get(user) ?? 0) + 1);
    return held;
  }

  release(worker: number, user: string): void {
    const users = this.connections.get(worker);
    const count = users?.get(user) ?? 0;
    if (!users || count === 0) return;
    if (count === 1) users.delete(user);
    else users.set(user, count - 1);
  }

  admit(worker: number, address: string): AuthVerdict {
    if (!this.failedAuths) return { admitted: true, ticket: 0 };
    const admission = this.failedAuths.admit(address);
    if (!admission.admitted) return admission;
    const ticket = this.nextTicket++;
    this.tickets.set(ticket, { worker, settle: admission.settle });
    return { admitted: true, ticket };
  }

  /** Settles `ticket` (once, by the worker it was given to); returns how long its answer waits. */
  settle(worker: number, ticket: number, outcome: AuthOutcome): number {
    const admission = this.tickets.get(ticket);
    if (!admission || admission.worker !== worker) return 0;
    this.tickets.delete(ticket);
    return admission.settle(outcome);
  }

  /** A worker died: its connections are gone and its checks never finish. */
  dropWorker(worker: number): void {
    this.connections.delete(worker);
    for (const [ticket, admission] of this.tickets) {
      if (admission.worker !== worker) continue;
      this.tickets.delete(ticket);
      admission.settle('error');
    }
  }
}
