/**
 * The recent ticks of each stream, kept so a client that reconnects can be sent exactly the
 * messages it missed (recovery after reconnect, docs/protocol.md). One ring per (feed, stream),
 * hung on last-values.ts's StreamState, so a stream LastValues forgets (its `seq` restarts)
 * forgets its ring too.
 *
 * Each entry is one tick: its payload (the string the bus gave, not a copy), its mode, the mask
 * of modes it made messages for, the stream's `seq` per mode after it, and its arrival time. A
 * mode's `seq` column never decreases along the ring and grows by one exactly at the entries
 * that made a message of that mode, so the first message after a given `seq` is found by binary
 * search.
 *
 * Bounded per stream by count (`ticks`) and age (`maxAgeMs`: older entries are never resent,
 * and are dropped at the stream's next tick or under the byte budget), and over all streams by
 * payload characters (`bytes`): past it, the oldest entries of the least recently updated
 * streams go first. Pure and synchronous: no clock, no timers.
 */
import { type Mode, modeBit } from '../protocol/modes.js';

export interface RecoveryLimits {
  /** Ticks kept per stream (0: none, recovery is off). */
  ticks: number;
  /** Ticks older than this are not resent. */
  maxAgeMs: number;
  /** Payload characters kept over all streams. */
  bytes: number;
}

export const RECOVERY_DEFAULTS: Readonly<RecoveryLimits> = { ticks: 2000, maxAgeMs: 60_000, bytes: 64 * 1024 * 1024 };

/** What a ring hangs on: a stream with its current `seq` per mode (index mode − 1). */
export interface RingHolder {
  ring: TickRing | undefined;
  readonly seq: readonly number[];
}

/** One kept tick, as recovery resends it. */
export interface RecentTick {
  payload: string;
  source: Mode;
  /** Modes it made messages for (bit k−1 for mode k). */
  modes: number;
  /** The stream's `seq` per mode right after this tick (the tick's own for the modes in `modes`). */
  seqs: [number, number, number];
  at: number;
}

const INITIAL_CAPACITY = 8;

/**
 * A circular buffer of ticks in columns (no object per tick). Grows by doubling up to what the
 * count limit needs, so a quiet stream costs little.
 */
export class TickRing {
  private payloads: Array<string | undefined>;
  /** source mode | modes mask << 2 */
  private meta: Uint8Array;
  private seqs: Float64Array;
  private ats: Float64Array;
  private head = 0;
  length = 0;
  /** Payload characters held. */
  chars = 0;

  constructor(capacity = INITIAL_CAPACITY) {
    this.payloads = new Array<string | undefined>(capacity).fill(undefined);
    this.meta = new Uint8Array(capacity);
    this.seqs = new Float64Array(capacity * 3);
    this.ats = new Float64Array(capacity);
  }

  private get capacity(): number {
    return this.meta.length;
  }

  private slot(i: number): number {
    return (this.head + i) % this.capacity;
  }

  push(payload: string, source: Mode, modes: number, seq: readonly number[], at: number): void {
    if (this.length === this.capacity) this.grow();
    const s = this.slot(this.length);
    this.payloads[s] = payload;
    this.meta[s] = source | (modes << 2);
    this.seqs[s * 3] = seq[0]!;
    this.seqs[s * 3 + 1] = seq[1]!;
    this.seqs[s * 3 + 2] = seq[2]!;
    this.ats[s] = at;
    this.length++;
    this.chars += payload.length;
  }

  /** Drops the oldest entry; returns its payload characters. */
  shift(): number {
    const s = this.head;
    const chars = this.payloads[s]!.length;
    this.payloads[s] = undefined;
    this.head = (this.head + 1) % this.capacity;
    this.length--;
    this.chars -= chars;
    return chars;
  }

  private grow(): void {
    const old = { payloads: this.payloads, meta: this.meta, seqs: this.seqs, ats: this.ats, capacity: this.capacity };
    const capacity = old.capacity * 2;
    this.payloads = new Array<string | undefined>(capacity).fill(undefined);
    this.meta = new Uint8Array(capacity);
    this.seqs = new Float64Array(capacity * 3);
    this.ats = new Float64Array(capacity);
    for (let i = 0; i < this.length; i++) {
      const s = (this.head + i) % old.capacity;
      this.payloads[i] = old.payloads[s];
      this.meta[i] = old.meta[s]!;
      this.seqs.set(old.seqs.subarray(s * 3, s * 3 + 3), i * 3);
      this.ats[i] = old.ats[s]!;
    }
    this.head = 0;
  }

  /** Arrival time of the `i`-th oldest entry. */
  at(i: number): number {
    return this.ats[this.slot(i)]!;
  }

  /** `seq` of `mode` after the `i`-th oldest entry. */
  seqAt(i: number, mode: Mode): number {
    return this.seqs[this.slot(i) * 3 + mode - 1]!;
  }

  modesAt(i: number): number {
    return this.meta[this.slot(i)]! >> 2;
  }

  entry(i: number): RecentTick {
    const s = this.slot(i);
    const meta = this.meta[s]!;
    return {
      payload: this.payloads[s]!,
      source: (meta & 3) as Mode,
      modes: meta >> 2,
      seqs: [this.seqs[s * 3]!, this.seqs[s * 3 + 1]!, this.seqs[s * 3 + 2]!],
      at: this.ats[s]!,
    };
  }

  /** Index of the first entry whose `mode` seq is above `seq` (`length` if none). */
  firstAbove(mode: Mode, seq: number): number {
    let lo = 0;
    let hi = this.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.seqAt(mid, mode) > seq) hi = mid;
      else lo = mid + 1;
    }
    return lo;
  }
}

/** What a ring can do for a client that last saw `since` of a mode. */
export type RecoveryPlan =
  | { ok: true; from: number; to: number; ticks: RecentTick[] }
  | { ok: false; reason: 'history'; last: number; /** Oldest seq of the mode still held, if any. */ oldest: number | undefined }
  | { ok: false; reason: 'ahead'; last: number };

export class RecentTicks {
  readonly limits: Readonly<RecoveryLimits>;
  /** Payload characters held by all rings. */
  private held = 0;
  /** Streams with a non-empty ring, least recently updated first. */
  private readonly order = new Set<RingHolder>();

  constructor(limits: Partial<RecoveryLimits> = {}) {
    this.limits = { ...RECOVERY_DEFAULTS, ...limits };
  }

  get bytes(): number {
    return this.held;
  }

  get streams(): number {
    return this.order.size;
  }

  /** Keeps a tick of `stream` (whose `seq` already counts it) that made messages for `modes`. O(1) amortised. */
  push(stream: RingHolder, payload: string, source: Mode, modes: number, now: number): void {
    const ring = (stream.ring ??= new TickRing(Math.max(1, Math.min(INITIAL_CAPACITY, this.limits.ticks))));
    const oldest = now - this.limits.maxAgeMs;
    while (ring.length > 0 && (ring.length >= this.limits.ticks || ring.at(0) < oldest)) this.held -= ring.shift();
    ring.push(payload, source, modes, stream.seq, now);
    this.held += payload.length;
    this.order.delete(stream); // re-added: the set stays in update order
    this.order.add(stream);
    while (this.held > this.limits.bytes && this.order.size > 0) this.evictOne();
  }

  /** The oldest entry of the least recently updated stream goes. */
  private evictOne(): void {
    const stream = this.order.values().next().value!;
    const ring = stream.ring!;
    this.held -= ring.shift();
    if (ring.length === 0) this.forget(stream);
  }

  /** Drops a stream's ring (LastValues forgot the stream, so its `seq` restarts). */
  forget(stream: RingHolder): void {
    if (stream.ring) this.held -= stream.ring.chars;
    stream.ring = undefined;
    this.order.delete(stream);
  }

  /**
   * Every message of `mode` after `since`, if the ring holds them all (young enough), in `seq`
   * order; else why not. `stream` undefined: the gateway knows no tick of it (its seq is 0).
   */
  plan(stream: RingHolder | undefined, mode: Mode, since: number, now: number): RecoveryPlan {
    const last = stream?.seq[mode - 1] ?? 0;
    if (since > last) return { ok: false, reason: 'ahead', last };
    if (since === last) return { ok: true, from: since + 1, to: last, ticks: [] };
    const ring = stream?.ring;
    const first = ring ? this.firstYoung(ring, now) : 0;
    const start = ring ? Math.max(first, ring.firstAbove(mode, since)) : 0;
    if (!ring || start >= ring.length || ring.seqAt(start, mode) !== since + 1 || !(ring.modesAt(start) & modeBit(mode))) {
      return { ok: false, reason: 'history', last, oldest: ring ? this.oldestOf(ring, mode, first) : undefined };
    }
    const ticks = this.collect(ring, mode, start);
    return { ok: true, from: since + 1, to: ticks[ticks.length - 1]!.seqs[mode - 1]!, ticks };
  }

  /** Whatever young messages of `mode` after `since` the ring holds, holes or not. */
  after(stream: RingHolder | undefined, mode: Mode, since: number, now: number): RecentTick[] {
    const ring = stream?.ring;
    if (!ring) return [];
    return this.collect(ring, mode, Math.max(this.firstYoung(ring, now), ring.firstAbove(mode, since)));
  }

  private collect(ring: TickRing, mode: Mode, start: number): RecentTick[] {
    const ticks: RecentTick[] = [];
    for (let i = start; i < ring.length; i++) if (ring.modesAt(i) & modeBit(mode)) ticks.push(ring.entry(i));
    return ticks;
  }

  /** Index of the first entry young enough to be resent. */
  private firstYoung(ring: TickRing, now: number): number {
    const oldest = now - this.limits.maxAgeMs;
    let lo = 0;
    let hi = ring.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (ring.at(mid) >= oldest) hi = mid;
      else lo = mid + 1;
    }
    return lo;
  }

  private oldestOf(ring: TickRing, mode: Mode, first: number): number | undefined {
    for (let i = first; i < ring.length; i++) if (ring.modesAt(i) & modeBit(mode)) return ring.seqAt(i, mode);
    return undefined;
  }
}
