/**
 * When a broker session tries again (pure: no timers, the random source injected). Two
 * schedules: after a loss, exponential backoff with jitter; after the broker refused the
 * credentials (or there were none), a slow fixed period with the same jitter, since retrying a
 * refused login quickly only hammers the broker until the user logs in again.
 */
import { ErrorCode, TickcastError } from '../../errors.js';
import { type Backoff, backoffDelay, jittered } from '../backoff.js';

export interface ScheduleOptions {
  backoff?: Partial<Backoff>;
  /** Retry period after a refusal or missing credentials. */
  authRetryMs?: number;
  /** Jitter source (defaults to Math.random). */
  random?: () => number;
}

export interface Schedule extends Backoff {
  authRetryMs: number;
  random: () => number;
}

export const DEFAULT_SCHEDULE = { initialMs: 1000, maxMs: 60_000, jitter: 0.2, authRetryMs: 60_000 } as const;

/** Validated settings; `label` names the broker in the error. */
export function resolveSchedule(label: string, options: ScheduleOptions): Schedule {
  const backoff = options.backoff ?? {};
  const jitter = backoff.jitter ?? DEFAULT_SCHEDULE.jitter;
  if (!(jitter >= 0 && jitter < 1)) invalid(label, 'backoff.jitter must be in [0, 1)', jitter);
  const initialMs = positive(label, 'backoff.initialMs', backoff.initialMs ?? DEFAULT_SCHEDULE.initialMs);
  return {
    initialMs,
    maxMs: Math.max(initialMs, positive(label, 'backoff.maxMs', backoff.maxMs ?? DEFAULT_SCHEDULE.maxMs)),
    jitter,
    authRetryMs: positive(label, 'authRetryMs', options.authRetryMs ?? DEFAULT_SCHEDULE.authRetryMs),
    random: options.random ?? Math.random,
  };
}

/** Delay before the next attempt after `failures` consecutive losses. */
export function lossDelay(schedule: Schedule, failures: number): number {
  return backoffDelay(failures, schedule);
}

/** Delay before the next attempt after a refusal. */
export function refusalDelay(schedule: Schedule): number {
  return jittered(schedule.authRetryMs, schedule.jitter, schedule.random);
}

export function positive(label: string, name: string, value: number): number {
  if (!(value > 0) || !Number.isFinite(value)) invalid(label, `${name} must be a positive number`, value);
  return value;
}

function invalid(label: string, what: string, value: number): never {
  throw new TickcastError(ErrorCode.CONFIG_INVALID, `${label} adapter ${what}, got ${value}`);
}
