/**
 * Gap detection from tickcast's `seq` extension. The gateway numbers each stream's ticks; a
 * client that sees a number jump knows how many it missed (conflation under load, or ticks
 * published while it was reconnecting). Pure.
 *
 * A number at or below the last one seen is not a gap: a snapshot repeats the last tick's
 * number, and a restarted gateway (or one that forgot an idle stream) counts from 1 again, so
 * tracking restarts there.
 */
import type { GapEvent } from './types.js';

export class GapTracker {
  private readonly last = new Map<string, number>();

  /** Records `seq` for the stream; returns the gap it reveals, if any. */
  observe(key: string, exchange: string, symbol: string, seq: number): GapEvent | undefined {
    const previous = this.last.get(key);
    this.last.set(key, seq);
    if (previous === undefined || seq <= previous + 1) return undefined;
    const expected = previous + 1;
    return { stream: key, exchange, symbol, expected, received: seq, missed: seq - expected };
  }

  forget(key: string): void {
    this.last.delete(key);
  }

  clear(): void {
    this.last.clear();
  }
}
