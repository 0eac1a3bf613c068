/**
 * Gap detection from tickcast's `seq` extension. The gateway numbers each stream's messages per
 * mode (LTP, Quote and Depth messages of one stream count apart); a client that sees a number
 * jump knows how many it missed (conflation under load, or ticks published while it was
 * reconnecting). Pure.
 *
 * A number at or below the last one seen is not a gap: a snapshot repeats the last tick's
 * number, and a restarted gateway (or one that forgot an idle stream) counts from 1 again, so
 * tracking restarts there.
 */
import type { GapEvent, Mode } from './types.js';

export class GapTracker {
  private readonly last = new Map<string, number>();

  /** Records `seq` of a `mode` message of the stream; returns the gap it reveals, if any. */
  observe(key: string, mode: Mode, exchange: string, symbol: string, seq: number): GapEvent | undefined {
    const id = `${key}|${mode}`;
    const previous = this.last.get(id);
    this.last.set(id, seq);
    if (previous === undefined || seq <= previous + 1) return undefined;
    const expected = previous + 1;
    return { stream: key, exchange, symbol, mode, reason: 'seq', expected, received: seq, missed: seq - expected };
  }

  /** The last number seen of a stream's `mode`, if any. */
  lastSeen(key: string, mode: Mode): number | undefined {
    return this.last.get(`${key}|${mode}`);
  }

  /** The next message of the mode will be numbered `next` (a recovery gap: the numbering may have changed). */
  expect(key: string, mode: Mode, next: number): void {
    this.last.set(`${key}|${mode}`, next - 1);
  }

  forget(key: string): void {
    for (const mode of [1, 2, 3]) this.last.delete(`${key}|${mode}`);
  }

  clear(): void {
    this.last.clear();
  }
}
