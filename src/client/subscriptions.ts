/**
 * What the application holds: subscription handles, each a set of instruments at one mode with
 * an optional callback, indexed by stream so a tick finds its callbacks in one lookup. Several
 * handles may hold the same stream and mode; the gateway hears about a (stream, mode) when the
 * first handle takes it and the last one lets go. Pure: no sockets, no timers.
 */
import { streamKey } from './instruments.js';
import type { Instrument, MarketData, Mode, SubscribeResult } from './types.js';
import type { ItemOutcome } from './messages.js';

export type TickCallback = (message: MarketData) => void;

/** A (stream, mode) pair. */
export interface Held {
  key: string;
  instrument: Instrument;
  mode: Mode;
}

interface HandleState {
  readonly id: number;
  readonly mode: Mode;
  readonly instruments: Map<string, Instrument>;
  readonly callback: TickCallback | undefined;
  /** Streams the gateway has not answered for yet, and the answers so far. */
  readonly pending: Set<string>;
  readonly results: SubscribeResult[];
  resolve: ((results: SubscribeResult[]) => void) | undefined;
}

interface StreamState {
  instrument: Instrument;
  /** Handle ids per mode (index mode-1). */
  byMode: [Set<number>, Set<number>, Set<number>];
}

export interface Removal {
  /** (stream, mode) pairs no handle holds any more. */
  released: Held[];
  /** Streams no handle holds at any mode. */
  dropped: string[];
}

export class Subscriptions {
  private readonly handles = new Map<number, HandleState>();
  private readonly streams = new Map<string, StreamState>();
  private nextId = 1;

  /**
   * Adds a handle. `acknowledged(key, mode)` says whether the gateway already confirmed that
   * pair on the current connection (then the handle is settled for it at once). Returns the
   * handle's id, its `ready` promise and the pairs that are newly held.
   */
  add(instruments: readonly Instrument[], mode: Mode, callback: TickCallback | undefined, acknowledged: (key: string, mode: Mode) => boolean): { id: number; ready: Promise<SubscribeResult[]>; added: Held[] } {
    const id = this.nextId++;
    const state: HandleState = { id, mode, instruments: new Map(), callback, pending: new Set(), results: [], resolve: undefined };
    const ready = new Promise<SubscribeResult[]>((resolve) => (state.resolve = resolve));
    this.handles.set(id, state);
    const added: Held[] = [];
    for (const instrument of instruments) {
      const key = streamKey(instrument);
      state.instruments.set(key, instrument);
      let stream = this.streams.get(key);
      if (!stream) {
        stream = { instrument, byMode: [new Set(), new Set(), new Set()] };
        this.streams.set(key, stream);
      }
      const holders = stream.byMode[mode - 1]!;
      if (holders.size === 0) added.push({ key, instrument, mode });
      holders.add(id);
      if (acknowledged(key, mode)) state.results.push({ instrument, ok: true });
      else state.pending.add(key);
    }
    this.settleIfDone(state);
    return { id, ready, added };
  }

  /** The instruments a handle still holds. */
  instrumentsOf(id: number): Instrument[] {
    return [...(this.handles.get(id)?.instruments.values() ?? [])];
  }

  removeHandle(id: number, unanswered = 'unsubscribed before the gateway answered'): Removal {
    const state = this.handles.get(id);
    if (!state) return { released: [], dropped: [] };
    this.handles.delete(id);
    this.failPending(state, unanswered);
    const removal: Removal = { released: [], dropped: [] };
    for (const key of [...state.instruments.keys()]) this.detach(state, key, removal);
    return removal;
  }

  /** Removes `instruments` at `mode` from every handle (the application's `unsubscribe(instruments, mode)`). */
  removeInstruments(instruments: readonly Instrument[], mode: Mode): Removal {
    const removal: Removal = { released: [], dropped: [] };
    for (const instrument of instruments) {
      const key = streamKey(instrument);
      for (const id of [...(this.streams.get(key)?.byMode[mode - 1] ?? [])]) {
        const state = this.handles.get(id)!;
        if (state.pending.delete(key)) state.results.push({ instrument, ok: false, message: 'unsubscribed before the gateway answered' });
        this.detach(state, key, removal);
        this.settleIfDone(state);
      }
    }
    return removal;
  }

  /**
   * The gateway answered for (stream, mode). Handles waiting on it are settled; on failure the
   * pair is removed from every handle (the gateway does not hold it, so neither do we).
   */
  settle(key: string, mode: Mode, outcome: ItemOutcome): Removal {
    const removal: Removal = { released: [], dropped: [] };
    const stream = this.streams.get(key);
    if (!stream) return removal;
    for (const id of [...stream.byMode[mode - 1]!]) {
      const state = this.handles.get(id)!;
      if (state.pending.delete(key)) {
        state.results.push(outcome.ok ? { instrument: stream.instrument, ok: true, ...(outcome.depth === undefined ? {} : { depth: outcome.depth }) } : { instrument: stream.instrument, ok: false, message: outcome.message });
      }
      if (!outcome.ok) this.detach(state, key, removal);
      this.settleIfDone(state);
    }
    return removal;
  }

  /** Settles every waiting handle with a failure (the client was closed). */
  failAllPending(message: string): void {
    for (const state of this.handles.values()) this.failPending(state, message);
  }

  holds(key: string, mode: Mode): boolean {
    return (this.streams.get(key)?.byMode[mode - 1]?.size ?? 0) > 0;
  }

  holdsStream(key: string): boolean {
    return this.streams.has(key);
  }

  /** Every held (stream, mode), for resubscribing after a reconnection. */
  held(): Held[] {
    const result: Held[] = [];
    for (const [key, stream] of this.streams) {
      for (const mode of [1, 2, 3] as const) if (stream.byMode[mode - 1]!.size > 0) result.push({ key, instrument: stream.instrument, mode });
    }
    return result;
  }

  /** Callbacks for a tick of `key` tagged `tag`: those of handles holding the stream at any mode ≤ tag. */
  callbacks(key: string, tag: Mode): TickCallback[] {
    const stream = this.streams.get(key);
    if (!stream) return [];
    const result: TickCallback[] = [];
    for (let mode = 1; mode <= tag; mode++) {
      for (const id of stream.byMode[mode - 1]!) {
        const callback = this.handles.get(id)?.callback;
        if (callback) result.push(callback);
      }
    }
    return result;
  }

  get handleCount(): number {
    return this.handles.size;
  }

  private detach(state: HandleState, key: string, removal: Removal): void {
    if (!state.instruments.delete(key)) return;
    const stream = this.streams.get(key);
    if (!stream) return;
    const holders = stream.byMode[state.mode - 1]!;
    holders.delete(state.id);
    if (holders.size === 0) removal.released.push({ key, instrument: stream.instrument, mode: state.mode });
    if (stream.byMode.every((set) => set.size === 0)) {
      this.streams.delete(key);
      removal.dropped.push(key);
    }
  }

  private failPending(state: HandleState, message: string): void {
    for (const key of state.pending) {
      const instrument = state.instruments.get(key) ?? this.streams.get(key)?.instrument;
      if (instrument) state.results.push({ instrument, ok: false, message });
    }
    state.pending.clear();
    this.settleIfDone(state);
  }

  private settleIfDone(state: HandleState): void {
    if (state.pending.size > 0 || !state.resolve) return;
    const resolve = state.resolve;
    state.resolve = undefined;
    resolve(state.results);
  }
}
