/**
 * What the gateway knows of each stream of each feed: which modes a tick produces messages for,
 * the `seq` of each mode's messages, and each mode's last message for snapshots. Bounded by
 * streams and by bytes, whatever publishers send: past `limits.streams` streams, or
 * `limits.bytes` of kept payloads, the least recently updated streams are forgotten (a forgotten
 * stream's `seq` restarts, which a client sees as a restart, not a gap), and a payload over
 * `limits.valueBytes` is delivered but not kept for snapshots.
 *
 * Which modes a tick serves. A tick of mode m gives one message per mode k ≤ m that has no
 * ticks of its own: publishers differ. tickcast's adapters publish each stream once, at the
 * highest mode wanted, so a Depth tick also makes the LTP and Quote messages. OpenAlgo's
 * adapters publish a topic per subscribed mode (`…_LTP` and `…_DEPTH` for one trade), so there
 * the LTP message comes from the LTP tick and the Depth tick makes only the Depth one; making an
 * LTP message from both would send every LTP twice. A mode counts as published on its own when
 * a tick of it arrived since the previous tick of mode m (or, before there was one, within the
 * last second): one trade's per-mode ticks arrive together, whatever their order.
 */
import { type Mode, modeBit } from '../protocol/modes.js';
import type { TickRing } from './recent-ticks.js';

/** A stream with no earlier tick of a mode: lower modes seen this recently count as published. */
const FIRST_TICK_WINDOW_MS = 1000;

export interface LastValuesLimits {
  /** Streams kept (default 100,000). */
  streams?: number;
  /** Bytes of payload text kept for snapshots, all streams together (default 64 MiB). */
  bytes?: number;
  /** A payload longer than this is not kept (default 64 KiB: a 50-level book is a few KB). */
  valueBytes?: number;
}

const DEFAULTS: Required<LastValuesLimits> = { streams: 100_000, bytes: 64 * 1024 * 1024, valueBytes: 64 * 1024 };

/** One stream of one feed. Arrays are indexed by mode − 1. */
export class StreamState {
  /** Arrival of the latest tick per topic mode. */
  readonly tickAt = [-Infinity, -Infinity, -Infinity];
  /** Messages made so far per delivered mode: the `seq` of the latest. */
  readonly seq = [0, 0, 0];
  /** The latest message per delivered mode: the tick it came from, that tick's mode and arrival. */
  readonly payload: [string | undefined, string | undefined, string | undefined] = [undefined, undefined, undefined];
  readonly source: Mode[] = [1, 2, 3];
  readonly at = [0, 0, 0];
  /** Characters of the distinct payloads held (what this stream costs the byte budget). */
  bytes = 0;
  /** The stream's recent ticks, for recovery after reconnect (recent-ticks.ts), if kept. */
  ring: TickRing | undefined = undefined;
}

/** A mode's last message, for a snapshot. */
export interface LastMessage {
  /** The tick's payload and mode (project it to the message's mode to send it). */
  payload: string;
  source: Mode;
  seq: number;
  /** When the tick arrived (clock ms). */
  at: number;
}

export class LastValues {
  private readonly streams = new Map<string, StreamState>();
  private readonly limits: Required<LastValuesLimits>;
  /** Payload characters held by all streams. */
  private held = 0;

  /** `forgotten` is told of each stream dropped (what hangs on it, its ring, goes with it). */
  constructor(
    limits: LastValuesLimits = {},
    private readonly forgotten?: (stream: StreamState) => void,
  ) {
    this.limits = { ...DEFAULTS, ...limits };
  }

  /**
   * Records a tick that arrived at `now` and returns the modes it makes messages for (a bit
   * mask, bit k−1 for mode k) with the stream, whose `seq` now numbers each of them.
   */
  record(feed: string, key: string, mode: Mode, payload: string, now: number): { stream: StreamState; modes: number } {
    const id = feed + '\u0000' + key;
    let stream = this.streams.get(id);
    if (stream) {
      this.streams.delete(id); // re-inserted below: the map stays in update order
    } else {
      stream = new StreamState();
      if (this.streams.size >= this.limits.streams) this.forgetOldest();
    }
    this.streams.set(id, stream);

    const previous = stream.tickAt[mode - 1]!;
    stream.tickAt[mode - 1] = now;
    let modes = modeBit(mode);
    // Walk down from m: the first mode published on its own serves itself and every mode below.
    for (let k = mode - 1; k >= 1; k--) {
      const seen = stream.tickAt[k - 1]!;
      const published = previous === -Infinity ? now - seen <= FIRST_TICK_WINDOW_MS : seen >= previous;
      if (published) break;
      modes |= modeBit(k as Mode);
    }
    const kept = payload.length <= this.limits.valueBytes ? payload : undefined;
    for (let k = 1; k <= mode; k++) {
      if (!(modes & modeBit(k as Mode))) continue;
      stream.seq[k - 1]!++;
      stream.payload[k - 1] = kept;
      stream.source[k - 1] = mode;
      stream.at[k - 1] = now;
    }
    const [a, b, c] = stream.payload;
    const bytes = (a?.length ?? 0) + (b !== a ? (b?.length ?? 0) : 0) + (c !== a && c !== b ? (c?.length ?? 0) : 0);
    this.held += bytes - stream.bytes;
    stream.bytes = bytes;
    // The stream just updated is last in the map: the oldest go first, never it.
    while (this.held > this.limits.bytes && this.streams.size > 1) this.forgetOldest();
    return { stream, modes };
  }

  private forgetOldest(): void {
    const [id, oldest] = this.streams.entries().next().value!;
    this.streams.delete(id);
    this.held -= oldest.bytes;
    this.forgotten?.(oldest);
  }

  /** Payload characters kept for snapshots. */
  get bytes(): number {
    return this.held;
  }

  /** A stream's state, if the stream is known (its `seq` and ring: recovery). */
  stream(feed: string, key: string): StreamState | undefined {
    return this.streams.get(feed + '\u0000' + key);
  }

  /** The last message of a stream at `mode`, if any. */
  last(feed: string, key: string, mode: Mode): LastMessage | undefined {
    const stream = this.streams.get(feed + '\u0000' + key);
    const payload = stream?.payload[mode - 1];
    if (!stream || payload === undefined) return undefined;
    return { payload, source: stream.source[mode - 1]!, seq: stream.seq[mode - 1]!, at: stream.at[mode - 1]! };
  }

  get size(): number {
    return this.streams.size;
  }
}
