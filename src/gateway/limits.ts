/**
 * Per-client and per-address limits (pure, clock injected): a token bucket for request rates, and
 * failed-authentication tracking per address, where only failures pay (verifyLimited applies it).
 */
import type { Clock } from '../clock.js';

/** The failed-key limit's window, and the longest hold-back of a failure's answer. */
const FAILED_AUTH_WINDOW_MS = 60_000;
const FAILED_AUTH_MAX_BLOCK_MS = 60_000;

/** Allows `ratePerSecond` on average, and bursts up to `burst`. */
export class TokenBucket {
  private tokens: number;
  private refilledAt: number;

  constructor(
    private readonly ratePerSecond: number,
    private readonly burst: number,
    private readonly clock: Clock,
  ) {
    this.tokens = burst;
    this.refilledAt = clock.now();
  }

  take(): boolean {
    const now = this.clock.now();
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.refilledAt) / 1000) * this.ratePerSecond);
    this.refilledAt = now;
    if (this.tokens < 1) return false;
    this.tokens--;
    return true;
  }
}

export interface FailedAuthOptions {
  /** Failures from one address answered at once within `windowMs`; later ones are made to wait. */
  allowed: number;
  windowMs: number;
  /** The wait doubles with each further failure, from 1 s up to this. */
  maxBlockMs: number;
  clock: Clock;
  /** Addresses tracked at most (the oldest are forgotten): memory stays bounded under a flood. */
  maxAddresses?: number;
  /**
   * Counts kept by another process for several (the primary of `--workers N`): admissions are
   * asked of it, so the allowance is the instance's, not each process's.
   */
  shared?: SharedFailedAuths;
}

/** An admission decided elsewhere: its verdict and its settling are asynchronous. */
export type SharedAdmission = { admitted: true; settle(outcome: AuthOutcome): Promise<number> | number } | { admitted: false; retryInMs: number };

/** Failed authentications counted by another process (see FailedAuthOptions.shared). */
export interface SharedFailedAuths {
  admit(address: string): Promise<SharedAdmission>;
}

/** Connections per key counted by another process for several (the primary of `--workers N`). */
export interface ConnectionLedger {
  /**
   * Takes one of `user`'s connections if the instance holds fewer than its limit; resolves with
   * how many it held before (the connection was counted only when that is below the limit).
   */
  reserve(user: string): Promise<number>;
  /** Gives back one of `user`'s connections that `reserve` counted. */
  release(user: string): void;
}

interface Failures {
  count: number;
  firstAt: number;
  /** When the answer to the address's latest failure is due: the retry hint for refused attempts. */
  penaltyUntil: number;
  /** A key from this address, over its allowance, is being checked now. */
  checking: boolean;
}

/** What a check's verdict was: a valid key, a wrong one, or none (the check itself failed). */
export type AuthOutcome = 'valid' | 'invalid' | 'error';

/** Whether a key may be checked now; when it may, `settle` must be called once with the outcome. */
export type AuthAdmission =
  | { admitted: true; settle(outcome: AuthOutcome): number }
  | { admitted: false; retryInMs: number };

/**
 * Failed authentications per address. Behind a proxy every client shares one address, so a
 * guesser must not lock out valid keys: a key is always checked and a valid one always answered
 * at once; only failures pay. Past `allowed` failures in the window, each further failure's
 * answer is held back 1 s, then twice as long per failure (up to `maxBlockMs`), and the address
 * may have only one check in flight, so its wrong keys cost at most one verification at a time
 * (never a pile of parallel Argon2 runs); attempts meanwhile are refused with a retry hint.
 */
export class FailedAuths {
  private readonly byAddress = new Map<string, Failures>();

  constructor(private readonly options: FailedAuthOptions) {}

  admit(address: string): AuthAdmission {
    const now = this.options.clock.now();
    const entry = this.current(address, now);
    if (!entry || entry.count < this.options.allowed) {
      return { admitted: true, settle: (outcome) => this.settle(address, outcome) };
    }
    if (entry.checking) return { admitted: false, retryInMs: Math.max(1000, entry.penaltyUntil - now) };
    entry.checking = true;
    let settled = false;
    return {
      admitted: true,
      settle: (outcome) => {
        if (settled) return 0;
        settled = true;
        entry.checking = false;
        return this.settle(address, outcome);
      },
    };
  }

  /** What verifyLimited waits for: this process's own verdict, or the shared counts'. */
  check(address: string): Promise<SharedAdmission> {
    return this.options.shared ? this.options.shared.admit(address) : Promise.resolve(this.admit(address));
  }

  /** Failures counted for `address` in its current window. */
  failures(address: string): number {
    return this.current(address, this.options.clock.now())?.count ?? 0;
  }

  /** How long the answer waits. A valid key never clears the count: a guesser holding one valid
   * key could otherwise interleave it to start every round of guesses afresh. */
  private settle(address: string, outcome: AuthOutcome): number {
    return outcome === 'invalid' ? this.fail(address) : 0;
  }

  /** Counts a failure; returns how long its answer waits (0 within the allowance). */
  private fail(address: string): number {
    const now = this.options.clock.now();
    let entry = this.current(address, now);
    if (!entry) {
      entry = { count: 0, firstAt: now, penaltyUntil: 0, checking: false };
      this.byAddress.delete(address);
      if (this.byAddress.size >= (this.options.maxAddresses ?? 100_000)) this.byAddress.delete(this.byAddress.keys().next().value!);
      this.byAddress.set(address, entry);
    }
    entry.count++;
    const excess = entry.count - this.options.allowed;
    if (excess <= 0) return 0;
    const wait = Math.min(this.options.maxBlockMs, 1000 * 2 ** Math.min(excess - 1, 30));
    entry.penaltyUntil = Math.max(entry.penaltyUntil, now + wait);
    return wait;
  }

  /** The address's entry, unless its window is over. */
  private current(address: string, now: number): Failures | undefined {
    const entry = this.byAddress.get(address);
    return entry && now - entry.firstAt <= this.options.windowMs ? entry : undefined;
  }
}

/**
 * The failed-key limit of limits.authFailures (`allowed` per address), the same for a single
 * gateway, a `--workers` primary, and a worker that asks the primary (`shared`).
 */
export function failedAuthsFor(allowed: number, clock: Clock, shared?: SharedFailedAuths): FailedAuths {
  return new FailedAuths({ allowed, windowMs: FAILED_AUTH_WINDOW_MS, maxBlockMs: FAILED_AUTH_MAX_BLOCK_MS, clock, ...(shared ? { shared } : {}) });
}

/** What verifyLimited needs of a failed-key limit: its verdict on an address (FailedAuths gives it). */
export interface AuthLimiter {
  check(address: string): Promise<SharedAdmission>;
}

/** What a limited key check came to: refused unchecked (retry later), or the verifier's answer. */
export type LimitedVerdict<T> = { refusedForMs: number; identity?: undefined } | { refusedForMs?: undefined; identity: T | null };

const holdBack = (ms: number): Promise<void> =>
  new Promise((resolve) => {
    // Unref'd: a held-back answer must not keep a stopping process alive.
    setTimeout(resolve, ms).unref();
  });

/**
 * Checks a key under the failed-auth limit of `address`: refused when the address already has a
 * check in flight past its allowance; otherwise verified, a valid key answered at once, a wrong
 * one after its penalty (`sleep`, injectable for tests).
 */
export async function verifyLimited<T>(
  limits: AuthLimiter | undefined,
  address: string,
  verify: () => Promise<T | null>,
  sleep: (ms: number) => Promise<void> = holdBack,
): Promise<LimitedVerdict<T>> {
  if (!limits) return { identity: await verify() };
  const admission = await limits.check(address);
  if (!admission.admitted) return { refusedForMs: admission.retryInMs };
  let identity: T | null;
  try {
    identity = await verify();
  } catch (error) {
    await admission.settle('error');
    throw error;
  }
  const wait = await admission.settle(identity === null ? 'invalid' : 'valid');
  if (wait > 0) await sleep(wait);
  return { identity };
}
