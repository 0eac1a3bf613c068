/**
 * The last value of every stream, per tick mode, for snapshots on subscribe, and each stream's
 * tick count, for `seq`. Bounded: past `limit` streams the least recently updated are forgotten
 * (a forgotten stream's `seq` restarts, which a client sees as a gap).
 */
import type { Mode } from '../protocol/modes.js';

export interface LastValue {
  mode: Mode;
  payload: string;
  seq: number;
  /** Arrival order across all streams and feeds. */
  stamp: number;
}

interface StreamValues {
  seq: number;
  /** Latest payload per tick mode (index mode-1), with the seq it had. */
  byMode: Array<LastValue | undefined>;
}

const DEFAULT_LIMIT = 100_000;

export class LastValues {
  private readonly streams = new Map<string, StreamValues>();
  private stamp = 0;

  constructor(private readonly limit = DEFAULT_LIMIT) {}

  /** Records a tick and returns its sequence number within the stream. */
  record(feed: string, key: string, mode: Mode, payload: string): number {
    const id = `${feed}\u0000${key}`;
    let values = this.streams.get(id);
    if (values) {
      this.streams.delete(id); // re-inserted below: the map stays in update order
    } else {
      values = { seq: 0, byMode: [undefined, undefined, undefined] };
      if (this.streams.size >= this.limit) this.streams.delete(this.streams.keys().next().value!);
    }
    this.streams.set(id, values);
    values.seq++;
    values.byMode[mode - 1] = { mode, payload, seq: values.seq, stamp: ++this.stamp };
    return values.seq;
  }

  /** The newest value of a stream at `mode` or above, from any of `feeds`. */
  latest(feeds: readonly string[], key: string, mode: Mode): LastValue | undefined {
    let best: LastValue | undefined;
    for (const feed of feeds) {
      const values = this.streams.get(`${feed}\u0000${key}`);
      if (!values) continue;
      for (let m = mode; m <= 3; m++) {
        const value = values.byMode[m - 1];
        if (value && (!best || value.stamp > best.stamp)) best = value;
      }
    }
    return best;
  }

  get size(): number {
    return this.streams.size;
  }
}
