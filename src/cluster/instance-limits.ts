/**
 * The per-key connection limit and the failed-key limit of `--workers N`, counted once for the
 * whole instance: the primary keeps the counts here and workers ask (messages.ts), so N workers
 * do not each allow the full budget. Pure: the clock is injected.
 */
import type { Clock } from '../clock.js';
import { type AuthOutcome, type FailedAuths, failedAuthsFor } from '../gateway/limits.js';
import type { AuthVerdict } from './messages.js';

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
  /**
   * worker → reservation id → user, for every connection counted and not yet released: a release
   * names its reservation, so one that comes after the worker gave up waiting undoes exactly it.
   */
  private readonly reservations = new Map<number, Map<number, string>>();
  private readonly failedAuths: FailedAuths | undefined;
  private nextTicket = 1;
  /** Admissions whose check is under way: settled by their worker, or as errors if it dies. */
  private readonly tickets = new Map<number, { worker: number; settle: (outcome: AuthOutcome) => number }>();

  constructor(private readonly options: InstanceLimitsOptions) {
    this.failedAuths = options.authFailures ? failedAuthsFor(options.authFailures, options.clock) : undefined;
  }

  /** `user`'s connections across workers. */
  held(user: string): number {
    let total = 0;
    for (const users of this.connections.values()) total += users.get(user) ?? 0;
    return total;
  }

  /**
   * Counts reservation `id` of `user` on `worker` if below the limit; returns how many were held
   * before and whether it was counted. A reused id of the worker's is refused, never counted twice.
   */
  reserve(worker: number, id: number, user: string): { held: number; counted: boolean } {
    const held = this.held(user);
    let reserved = this.reservations.get(worker);
    if (held >= (this.options.maxConnectionsPerKey ?? Infinity) || reserved?.has(id)) return { held, counted: false };
    if (!reserved) this.reservations.set(worker, (reserved = new Map()));
    reserved.set(id, user);
    let users = this.connections.get(worker);
    if (!users) this.connections.set(worker, (users = new Map()));
    users.set(user, (users.get(user) ?? 0) + 1);
    return { held, counted: true };
  }

  /** Gives back reservation `id` of `worker`: nothing if it was not counted (refused at the limit) or is given back already. */
  release(worker: number, id: number): void {
    const reserved = this.reservations.get(worker);
    const user = reserved?.get(id);
    if (!reserved || user === undefined) return;
    reserved.delete(id);
    const users = this.connections.get(worker)!;
    const count = users.get(user)!;
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
    this.reservations.delete(worker);
    for (const [ticket, admission] of this.tickets) {
      if (admission.worker !== worker) continue;
      this.tickets.delete(ticket);
      admission.settle('error');
    }
  }
}
