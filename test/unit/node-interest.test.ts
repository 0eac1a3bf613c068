import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { StreamRef } from '../../src/feed.js';
import { NodeInterest, digestOf } from '../../src/control/node-interest.js';
import type { Mode } from '../../src/protocol/modes.js';

const TCS: StreamRef = { exchange: 'NSE', symbol: 'TCS' };
const INFY: StreamRef = { exchange: 'NSE', symbol: 'INFY' };
const NIFTY: StreamRef = { exchange: 'NSE_INDEX', symbol: 'NIFTY 50' };
const want = (mode: Mode, depth = 5) => ({ mode, depth });

describe('per-node interest', () => {
  it('wants the highest mode and depth any node holds', () => {
    const interest = new NodeInterest();
    interest.set('a', TCS, want(1));
    interest.set('b', TCS, want(3, 20));
    interest.set('c', TCS, want(2));
    expect(interest.wanted(TCS)).toEqual({ mode: 3, depth: 20 });
    expect(interest.wanted(INFY)).toBeUndefined();
    interest.remove('b', TCS);
    expect(interest.wanted(TCS)).toEqual({ mode: 2, depth: 5 });
    expect(interest.streamCount).toBe(1);
  });

  it('a node replacing its own mode does not add to the count', () => {
    const interest = new NodeInterest();
    expect(interest.set('a', TCS, want(3))).toBeUndefined();
    expect(interest.set('a', TCS, want(1))).toEqual({ mode: 3, depth: 5, pending: false });
    expect(interest.wanted(TCS)).toEqual({ mode: 1, depth: 5 });
    expect(interest.heldBy('a')).toBe(1);
    expect(interest.remove('a', TCS)).toBe(true);
    expect(interest.remove('a', TCS)).toBe(false);
    expect(interest.wanted(TCS)).toBeUndefined();
    expect(interest.streamCount).toBe(0);
  });

  it('a node going away releases exactly its own share', () => {
    const interest = new NodeInterest();
    interest.set('a', TCS, want(3));
    interest.set('a', INFY, want(1));
    interest.set('b', TCS, want(1));
    interest.set('b', NIFTY, want(2));
    const released = interest.dropNode('a');
    expect(released).toEqual([TCS, INFY]);
    // TCS is still wanted by b (at b's mode), INFY by nobody, NIFTY untouched.
    expect(interest.wanted(TCS)).toEqual({ mode: 1, depth: 5 });
    expect(interest.wanted(INFY)).toBeUndefined();
    expect(interest.wanted(NIFTY)).toEqual({ mode: 2, depth: 5 });
    expect(interest.hasNode('a')).toBe(false);
    expect(interest.dropNode('a')).toEqual([]);
    expect(interest.nodes()).toEqual(['b']);
  });

  it('restore puts back what a failed subscribe replaced', () => {
    const interest = new NodeInterest();
    interest.set('a', TCS, want(1));
    const previous = interest.set('a', TCS, want(3));
    interest.restore('a', TCS, previous);
    expect(interest.get('a', TCS)).toEqual(want(1));
    const none = interest.set('a', INFY, want(2));
    interest.restore('a', INFY, none);
    expect(interest.get('a', INFY)).toBeUndefined();
    expect(interest.wanted(INFY)).toBeUndefined();
  });

  it('replacing a node set keeps its old entries counted until the replay ends, then drops the ones not replayed', () => {
    const interest = new NodeInterest();
    interest.set('a', TCS, want(3));
    interest.set('a', INFY, want(2));
    interest.beginReplace('a');
    expect(interest.replacing('a')).toBe(true);
    // While replaying, upstream still wants both: no gap for streams about to be replayed.
    expect(interest.wanted(TCS)).toEqual(want(3));
    expect(interest.wanted(INFY)).toEqual(want(2));
    expect(interest.get('a', TCS)).toBeUndefined(); // pending entries are not the node's current set
    expect(interest.digest('a')).toEqual({ count: 0, sum: 0 });

    interest.set('a', TCS, want(1)); // replayed, at a lower mode now
    expect(interest.wanted(TCS)).toEqual(want(1));
    expect(interest.endReplace('a')).toEqual([INFY]);
    expect(interest.wanted(INFY)).toBeUndefined();
    expect(interest.replacing('a')).toBe(false);
    expect(interest.endReplace('a')).toEqual([]);
  });

  it('beginReplace on an unknown node registers it', () => {
    const interest = new NodeInterest();
    interest.beginReplace('new');
    expect(interest.hasNode('new')).toBe(true);
    expect(interest.digest('new')).toEqual({ count: 0, sum: 0 });
  });

  it("digests agree with the node's own record, whatever the order, and differ when the sets differ", () => {
    const interest = new NodeInterest();
    interest.set('a', TCS, want(3));
    interest.set('a', NIFTY, want(1));
    const nodeSide = digestOf([
      { ...NIFTY, mode: 1 },
      { ...TCS, mode: 3 },
    ]);
    expect(interest.digest('a')).toEqual(nodeSide);
    expect(interest.digest('a')).not.toEqual(digestOf([{ ...TCS, mode: 3 }]));
    expect(interest.digest('a')).not.toEqual(digestOf([{ ...TCS, mode: 2 }, { ...NIFTY, mode: 1 }]));
    expect(interest.digest('nobody')).toEqual({ count: 0, sum: 0 });
  });

  it("digests a feed host's entries over feed, exchange, symbol and mode, as docs/control-protocol.md writes the hash", () => {
    // The document's formula, written out again: FNV-1a over UTF-16 code units, summed mod 2^32.
    const fnv = (text: string): number => {
      let h = 0x811c9dc5;
      for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193) >>> 0;
      return h;
    };
    const entries = [
      { feed: 'dhan.alice', exchange: 'NSE', symbol: 'SBIN', mode: 2 as const },
      { feed: 'fyers.bob', exchange: 'NSE', symbol: 'SBIN', mode: 2 as const },
    ];
    const expected = (fnv('dhan.alice\u0000NSE\u0000SBIN\u00002') + fnv('fyers.bob\u0000NSE\u0000SBIN\u00002')) % 2 ** 32;
    expect(digestOf(entries)).toEqual({ count: 2, sum: expected });
    // The same stream of another user's feed, or without a feed, is another entry.
    expect(digestOf([entries[0]!])).not.toEqual(digestOf([entries[1]!]));
    expect(digestOf([entries[0]!])).not.toEqual(digestOf([{ exchange: 'NSE', symbol: 'SBIN', mode: 2 }]));
  });

  it('always wants exactly the maximum over what live nodes hold (random operations against a model)', () => {
    const nodes = ['a', 'b', 'c'];
    const streams = [TCS, INFY, NIFTY];
    const op = fc.oneof(
      fc.record({ kind: fc.constant('set' as const), node: fc.constantFrom(...nodes), stream: fc.nat(2), mode: fc.constantFrom<Mode>(1, 2, 3) }),
      fc.record({ kind: fc.constant('remove' as const), node: fc.constantFrom(...nodes), stream: fc.nat(2) }),
      fc.record({ kind: fc.constant('drop' as const), node: fc.constantFrom(...nodes) }),
      fc.record({ kind: fc.constant('replace' as const), node: fc.constantFrom(...nodes) }),
      fc.record({ kind: fc.constant('end' as const), node: fc.constantFrom(...nodes) }),
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 60 }), (ops) => {
        const interest = new NodeInterest();
        // The model: node → stream index → [mode, pending]
        const model = new Map<string, Map<number, [Mode, boolean]>>();
        const of = (node: string) => model.get(node) ?? model.set(node, new Map()).get(node)!;
        for (const o of ops) {
          if (o.kind === 'set') {
            interest.set(o.node, streams[o.stream]!, want(o.mode));
            of(o.node).set(o.stream, [o.mode, false]);
          } else if (o.kind === 'remove') {
            interest.remove(o.node, streams[o.stream]!);
            of(o.node).delete(o.stream);
          } else if (o.kind === 'drop') {
            interest.dropNode(o.node);
            model.delete(o.node);
          } else if (o.kind === 'replace') {
            interest.beginReplace(o.node);
            for (const entry of of(o.node).values()) entry[1] = true;
          } else {
            interest.endReplace(o.node);
            for (const [i, entry] of of(o.node)) if (entry[1]) of(o.node).delete(i);
          }
          streams.forEach((stream, i) => {
            let max = 0;
            for (const held of model.values()) max = Math.max(max, held.get(i)?.[0] ?? 0);
            expect(interest.wanted(stream)?.mode ?? 0).toBe(max);
          });
        }
      }),
      { numRuns: 500 },
    );
  });
});
