/**
 * What every gateway node wants from one adapter, and the union the adapter must subscribe
 * upstream: per stream, the highest mode (and depth) any node holds. Interest is counted per node,
 * so a node that goes away (it said bye, or stopped heartbeating) releases exactly its own share.
 * Pure and synchronous: the adapter's end (adapter-control.ts) applies the changes upstream.
 *
 * Replacing a node's set without a gap: when a node registers anew (it lost track, or its
 * digest disagreed), `beginReplace` keeps its old entries as pending — still counted in the
 * union — while it replays; entries it replays become current again, and `endReplace` drops the
 * rest. Streams nobody replayed are released then, never in between.
 */
import { type StreamRef, streamKey } from '../feed.js';
import type { Mode } from '../protocol/modes.js';
import type { Digest } from './protocol.js';

export interface Want {
  mode: Mode;
  depth: number;
}

interface Entry extends Want {
  /** Held over from before the node's current registration, until its replay ends. */
  pending: boolean;
}

/** An entry as it was, to put back when the upstream subscribe it asked for failed. */
export type Previous = Readonly<Entry> | undefined;


/**
 * FNV-1a over the UTF-16 code units of `exchange\0symbol\0mode`, or of `feed\0exchange\0symbol\0mode`
 * for a feed host's entries.
 */
function entryHash(exchange: string, symbol: string, mode: Mode, feed: string | undefined): number {
  const text = `${feed === undefined ? '' : `${feed}\u0000`}${streamKey(exchange, symbol)}\u0000${mode}`;
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash;
}

/** The digest of a set of (stream, mode) entries (with their hosted feed, at a feed host), in any order. */
export function digestOf(entries: Iterable<{ exchange: string; symbol: string; mode: Mode; feed?: string | undefined }>): Digest {
  let count = 0;
  let sum = 0;
  for (const { exchange, symbol, mode, feed } of entries) {
    count++;
    sum = (sum + entryHash(exchange, symbol, mode, feed)) >>> 0;
  }
  return { count, sum };
}

export const streamKeyOf = (stream: StreamRef): string => streamKey(stream.exchange, stream.symbol);

interface StreamInterest {
  stream: StreamRef;
  nodes: Map<string, Entry>;
}

export class NodeInterest {
  private readonly byStream = new Map<string, StreamInterest>();
  /** node → stream key → entry (the same Entry objects as in byStream). */
  private readonly byNode = new Map<string, Map<string, Entry>>();

  hasNode(node: string): boolean {
    return this.byNode.has(node);
  }

  /** Registers a node with nothing wanted (no-op if known). */
  addNode(node: string): void {
    if (!this.byNode.has(node)) this.byNode.set(node, new Map());
  }

  nodes(): string[] {
    return [...this.byNode.keys()];
  }

  /** Streams some node wants. */
  get streamCount(): number {
    return this.byStream.size;
  }

  /** Entries of a node, pending ones included. */
  heldBy(node: string): number {
    return this.byNode.get(node)?.size ?? 0;
  }

  /** `node` wants `stream` at `want` (replacing what it wanted before). Returns the entry it replaced. */
  set(node: string, stream: StreamRef, want: Want): Previous {
    const key = streamKeyOf(stream);
    let mine = this.byNode.get(node);
    if (!mine) this.byNode.set(node, (mine = new Map()));
    const previous = mine.get(key);
    const entry: Entry = { mode: want.mode, depth: want.depth, pending: false };
    mine.set(key, entry);
    let interest = this.byStream.get(key);
    if (!interest) this.byStream.set(key, (interest = { stream: { exchange: stream.exchange, symbol: stream.symbol }, nodes: new Map() }));
    interest.nodes.set(node, entry);
    return previous && { ...previous };
  }

  /** Puts back what `set` replaced (undefined: the node did not want the stream). */
  restore(node: string, stream: StreamRef, previous: Previous): void {
    if (previous === undefined) {
      this.remove(node, stream);
      return;
    }
    this.set(node, stream, previous);
    if (previous.pending) this.byNode.get(node)!.get(streamKeyOf(stream))!.pending = true;
  }

  /** `node` no longer wants `stream`; false if it did not. */
  remove(node: string, stream: StreamRef): boolean {
    const key = streamKeyOf(stream);
    const mine = this.byNode.get(node);
    if (!mine?.delete(key)) return false;
    this.forget(key, node);
    return true;
  }

  /** What upstream must deliver for `stream`: the highest mode and depth any node wants, or undefined. */
  wanted(stream: StreamRef): Want | undefined {
    const interest = this.byStream.get(streamKeyOf(stream));
    if (!interest) return undefined;
    let mode: Mode | 0 = 0;
    let depth = 0;
    for (const entry of interest.nodes.values()) {
      if (entry.mode > mode) mode = entry.mode;
      if (entry.depth > depth) depth = entry.depth;
    }
    return mode === 0 ? undefined : { mode, depth };
  }

  /** What `node` wants of `stream` (current entries only). */
  get(node: string, stream: StreamRef): Want | undefined {
    const entry = this.byNode.get(node)?.get(streamKeyOf(stream));
    return entry && !entry.pending ? { mode: entry.mode, depth: entry.depth } : undefined;
  }

  /** The node registers anew: its entries stay counted, as pending, until `endReplace`. */
  beginReplace(node: string): void {
    const mine = this.byNode.get(node);
    if (!mine) {
      this.addNode(node);
      return;
    }
    for (const entry of mine.values()) entry.pending = true;
  }

  /** Whether the node has entries still pending from before its registration. */
  replacing(node: string): boolean {
    for (const entry of this.byNode.get(node)?.values() ?? []) if (entry.pending) return true;
    return false;
  }

  /** The node's replay is over: drops its entries it did not replay. Returns those streams. */
  endReplace(node: string): StreamRef[] {
    const mine = this.byNode.get(node);
    if (!mine) return [];
    const released: StreamRef[] = [];
    for (const [key, entry] of mine) {
      if (!entry.pending) continue;
      mine.delete(key);
      released.push(this.forget(key, node));
    }
    return released;
  }

  /** The node is gone: drops everything it wanted. Returns those streams. */
  dropNode(node: string): StreamRef[] {
    const mine = this.byNode.get(node);
    if (!mine) return [];
    this.byNode.delete(node);
    return [...mine.keys()].map((key) => this.forget(key, node));
  }

  /** The digest of the node's current (not pending) entries. */
  digest(node: string): Digest {
    const entries: Array<{ exchange: string; symbol: string; mode: Mode }> = [];
    for (const [key, entry] of this.byNode.get(node) ?? []) {
      if (entry.pending) continue;
      const { stream } = this.byStream.get(key)!;
      entries.push({ exchange: stream.exchange, symbol: stream.symbol, mode: entry.mode });
    }
    return digestOf(entries);
  }

  private forget(key: string, node: string): StreamRef {
    const interest = this.byStream.get(key)!;
    interest.nodes.delete(node);
    if (interest.nodes.size === 0) this.byStream.delete(key);
    return interest.stream;
  }
}
