/**
 * Per-client and per-address limits (pure, clock injected): a token bucket for request rates, and
 * failed-authentication tracking with exponential backoff per address.
 */
import type { Clock } from '../clock.js';

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
  /** Failures from one address allowed within `windowMs` before it is made to wait. */
  allowed: number;
  windowMs: number;
  /** The wait doubles with each further failure, from 1 s up to this. */
  maxBlockMs: number;
  clock: Clock;
  /** Addresses tracked at most (the oldest are forgotten): memory stays bounded under a flood. */
  maxAddresses?: number;
}

interface Failures {
  count: number;
  firstAt: number;
  blockedUntil: number;
}

export class FailedAuths {
  private readonly byAddress = new Map<string, Failures>();

  constructor(private readonly options: FailedAuthOptions) {}

  /** How long `address` must still wait before its key is even checked (0 = not blocked). */
  blockedFor(address: string): number {
    const entry = this.byAddress.get(address);
    if (!entry) return 0;
    return Math.max(0, entry.blockedUntil - this.options.clock.now());
  }

  fail(address: string): void {
    const now = this.options.clock.now();
    let entry = this.byAddress.get(address);
    if (!entry || now - entry.firstAt > this.options.windowMs) {
      entry = { count: 0, firstAt: now, blockedUntil: 0 };
      this.byAddress.delete(address);
      if (this.byAddress.size >= (this.options.maxAddresses ?? 100_000)) this.byAddress.delete(this.byAddress.keys().next().value!);
      this.byAddress.set(address, entry);
    }
    entry.count++;
    const excess = entry.count - this.options.allowed;
    if (excess > 0) entry.blockedUntil = now + Math.min(this.options.maxBlockMs, 1000 * 2 ** (excess - 1));
  }

  succeed(address: string): void {
    this.byAddress.delete(address);
  }
}
