/** Small parts both ends of the control protocol use: option checks, throttled logging, per-stream queues. */
import type { Clock } from '../clock.js';
import { ErrorCode, TickcastError } from '../errors.js';
import type { Logger } from '../observability/logger.js';
import { MALFORMED_LOG_INTERVAL_MS } from './protocol.js';

/** `value`, or CONFIG_INVALID naming the option when it is not a positive number. */
export function checkPositive(key: string, value: number): number {
  if (!(Number.isFinite(value) && value > 0)) throw new TickcastError(ErrorCode.CONFIG_INVALID, `control ${key} must be a positive number, got ${value}`);
  return value;
}

/** Warnings a peer can provoke at will, logged at most once per period per kind (the rest are counted by the caller). */
export class ThrottledLog {
  private readonly lastAt = new Map<string, number>();

  constructor(
    private readonly logger: Logger,
    private readonly clock: Clock,
  ) {}

  warn(kind: string, message: string, fields: Record<string, unknown>): void {
    const now = this.clock.now();
    if (now - (this.lastAt.get(kind) ?? -Infinity) < MALFORMED_LOG_INTERVAL_MS) return;
    // Bounded: kinds are a handful of fixed words, or one per feed id the caller tracks.
    if (this.lastAt.size > 4096) this.lastAt.clear();
    this.lastAt.set(kind, now);
    this.logger.warn(fields, `${message} (repeats are logged at most every ${MALFORMED_LOG_INTERVAL_MS / 1000} s)`);
  }
}

/** Tasks run one after another per key (one stream's commands, in order) and concurrently across keys. */
export class KeyedQueue {
  private readonly tails = new Map<string, Promise<void>>();

  constructor(private readonly onError: (err: unknown, key: string) => void) {}

  run(key: string, task: () => Promise<unknown>): Promise<void> {
    const next = (this.tails.get(key) ?? Promise.resolve()).then(task).then(
      () => {},
      (err: unknown) => this.onError(err, key),
    );
    this.tails.set(key, next);
    void next.then(() => {
      if (this.tails.get(key) === next) this.tails.delete(key);
    });
    return next;
  }
}

/** Omit over each member of a union (plain Omit merges the members). */
export type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;
