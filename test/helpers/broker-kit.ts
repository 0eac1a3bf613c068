/**
 * What the broker adapter tests share: a bus publisher that keeps what it is given, a poll that
 * waits for a condition (its bound only catches hangs), and the slow retry schedule.
 */
import type { SessionOptions } from '../../src/adapters/session/broker-feed.js';
import type { BusPublisher } from '../../src/bus/bus.js';

/** The default hang bound of `until`, in ms. */
const WAIT_MS = 5000;

/** Every retry a minute away: reconnecting within a wait's hang bound proves it came at once. */
export const SLOW = { authRetryMs: 60_000, backoff: { initialMs: 60_000, maxMs: 60_000, jitter: 0 } } satisfies SessionOptions;

/** Polls `probe` every 5 ms until it holds; throws naming `what` after `timeoutMs`. */
export async function until(probe: () => boolean, what: string, timeoutMs = WAIT_MS): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!probe()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** A bus publisher that records every message in order, payloads as text. */
export class MemoryPublisher implements BusPublisher {
  /** Everything published, oldest first. */
  readonly messages: Array<{ topic: string; payload: string }> = [];

  /** Records the message; a Buffer payload is kept as its text. */
  publish(topic: string, payload: string | Buffer): void {
    this.messages.push({ topic, payload: payload.toString() });
  }

  async close(): Promise<void> {}

  /** The payloads published on `topic`, parsed, oldest first (untyped: a test reads what it checks). */
  on(topic: string): any[] {
    return this.messages.filter((m) => m.topic === topic).map((m) => JSON.parse(m.payload));
  }

  /** The last payload published on `topic`, parsed, or undefined if there was none. */
  last(topic: string): Record<string, any> | undefined {
    const found = this.messages.filter((m) => m.topic === topic).at(-1);
    return found && JSON.parse(found.payload);
  }

  /** The `ltp` of each payload published on `topic`, oldest first. */
  ltps(topic: string): number[] {
    return this.messages.filter((m) => m.topic === topic).map((m) => (JSON.parse(m.payload) as { ltp: number }).ltp);
  }

  /** How many messages were published on `topic`. */
  count(topic: string): number {
    return this.messages.filter((m) => m.topic === topic).length;
  }
}
