/**
 * Reconnect delays for broker feeds: exponential from `initialMs`, capped at `maxMs`, each spread
 * uniformly over ±`jitter` of itself so that many feeds dropped at once do not return in step.
 */
export interface Backoff {
  /** First retry delay after a loss. */
  initialMs: number;
  /** Cap on the doubling delay. */
  maxMs: number;
  /** Spread as a fraction of the delay: 0.2 gives ±20 %. */
  jitter: number;
}

/** `base` spread over ±`jitter` of itself (never negative). */
export function jittered(base: number, jitter: number, random: () => number): number {
  return Math.max(0, Math.round(base * (1 - jitter + 2 * jitter * random())));
}

/** The delay before retry number `failures + 1`. */
export function backoffDelay(failures: number, settings: Backoff & { random: () => number }): number {
  const base = Math.min(settings.maxMs, settings.initialMs * 2 ** Math.min(failures, 30));
  return Math.min(settings.maxMs, jittered(base, settings.jitter, settings.random));
}
