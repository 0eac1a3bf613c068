import { describe, expect, it } from 'vitest';
import { type MessageSpec, decodeMessage, int64, readVarint, uint64 } from '../../src/adapters/upstox/protobuf.js';

const bytes = (...values: number[]) => Uint8Array.from(values);

describe('protobuf varints', () => {
  it('reads one to ten bytes, bounds-checked', () => {
    expect(readVarint(bytes(0x00), 0, 1)).toEqual({ lo: 0, hi: 0, next: 1 });
    expect(readVarint(bytes(0xac, 0x02), 0, 2)).toEqual({ lo: 300, hi: 0, next: 2 });
    expect(readVarint(bytes(0xac, 0x02), 0, 1)).toBeUndefined();
    expect(readVarint(bytes(0xff, 0xff, 0xff, 0xff, 0x0f), 0, 5)).toEqual({ lo: 0xffffffff, hi: 0, next: 5 });
    expect(readVarint(bytes(0x80, 0x80, 0x80, 0x80, 0x10), 0, 5)).toEqual({ lo: 0, hi: 1, next: 5 });
    const minusOne = bytes(0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01);
    const v = readVarint(minusOne, 0, 10)!;
    expect(int64(v.lo, v.hi)).toBe(-1);
    expect(uint64(v.lo, v.hi)).toBe(2 ** 64);
    expect(readVarint(Uint8Array.from({ length: 11 }, () => 0xff), 0, 11)).toBeUndefined();
  });

  it('int64 is exact within 2^53', () => {
    expect(int64(0x8f9e21a3, 0x18f)).toBe(0x18f * 2 ** 32 + 0x8f9e21a3);
    expect(int64(0xffffffff, 0x1fffff)).toBe(Number.MAX_SAFE_INTEGER);
    expect(int64(0, 0x80000000)).toBe(-(2 ** 63));
  });
});

const INNER: MessageSpec = { name: 'Inner', fields: { 1: { name: 'n', type: 'int64' }, 2: { name: 's', type: 'string' } } };
const OUTER: MessageSpec = {
  name: 'Outer',
  fields: {
    1: { name: 'd', type: 'double' },
    2: { name: 'inner', type: INNER },
    3: { name: 'list', type: INNER, repeated: true },
    4: { name: 'a', type: INNER, oneof: 'u' },
    5: { name: 'b', type: 'int32', oneof: 'u' },
    6: { name: 'm', type: 'enum', map: true },
    7: { name: 'f', type: 'float' },
    8: { name: 'flag', type: 'bool' },
  },
};
const NODE: MessageSpec = { name: 'Node', fields: { 1: { name: 'child', type: () => NODE } } };

describe('protobuf messages', () => {
  it('decodes scalars, nested, repeated and map fields', () => {
    const d = new Uint8Array(new Float64Array([2950.55]).buffer);
    const f = new Uint8Array(new Float32Array([1.5]).buffer);
    const result = decodeMessage(
      bytes(0x09, ...d, 0x12, 0x05, 0x08, 0x07, 0x12, 0x01, 0x78, 0x1a, 0x02, 0x08, 0x01, 0x1a, 0x00, 0x32, 0x07, 0x0a, 0x03, 0x4e, 0x53, 0x45, 0x10, 0x02, 0x32, 0x02, 0x0a, 0x00, 0x3d, ...f, 0x40, 0x01),
      OUTER,
    );
    expect(result).toEqual({
      ok: true,
      message: { d: 2950.55, inner: { n: 7, s: 'x' }, list: [{ n: 1 }, {}], m: new Map([['NSE', 2], ['', 0]]), f: 1.5, flag: true },
    });
  });

  it('merges a repeated singular message, last scalar wins, oneof clears the other member', () => {
    const result = decodeMessage(bytes(0x12, 0x02, 0x08, 0x01, 0x12, 0x03, 0x12, 0x01, 0x79, 0x12, 0x02, 0x08, 0x05, 0x22, 0x00, 0x28, 0x03), OUTER);
    expect(result).toEqual({ ok: true, message: { inner: { n: 5, s: 'y' }, b: 3 } });
    expect(decodeMessage(bytes(0x28, 0x03, 0x22, 0x02, 0x08, 0x01), OUTER)).toEqual({ ok: true, message: { a: { n: 1 } } });
  });

  it('skips unknown fields of every proto3 wire type', () => {
    const result = decodeMessage(bytes(0x48, 0x01, 0x51, 1, 2, 3, 4, 5, 6, 7, 8, 0x5a, 0x01, 0xff, 0x65, 1, 2, 3, 4, 0x40, 0x00), OUTER);
    expect(result).toEqual({ ok: true, message: { flag: false } });
  });

  it('refuses damage with a reason, never throws', () => {
    const cases: [number[], string][] = [
      [[0x09, 1, 2, 3], 'Outer: field 1 runs past the end'],
      [[0x12, 0x05, 0x08], 'Outer: field 2 is longer than its message'],
      [[0x08], 'Outer: truncated varint in field 1'],
      [[0x0b], 'Outer: wire type 3 (field 1) is not proto3'],
      [[0x0e], 'Outer: wire type 6 (field 1) is not proto3'],
      [[0x00, 0x00], 'Outer: field number out of range at byte 0'],
      [[0x10, 0x01], 'Outer.inner: wire type 0, expected 2'],
      [[0x12, 0x02, 0x12, 0x80], 'Inner: truncated length in field 2'],
      [[0x12, 0x03, 0x12, 0x01, 0xff], 'Inner.s: not UTF-8'],
      [[0x80], 'Outer: truncated field key at byte 0'],
    ];
    for (const [input, reason] of cases) {
      const result = decodeMessage(Uint8Array.from(input), OUTER);
      expect(result).toEqual({ ok: false, reason });
    }
  });

  it('limits nesting depth', () => {
    let chain: number[] = [];
    for (let i = 0; i < 40; i++) chain = [0x0a, ...varint(chain.length), ...chain];
    expect(decodeMessage(Uint8Array.from(chain), NODE)).toEqual({ ok: false, reason: 'Node nested deeper than 32 messages' });
    expect(decodeMessage(Uint8Array.from(chain), NODE, { maxDepth: 64 }).ok).toBe(true);
    let bomb: number[] = [];
    for (let i = 0; i < 5000; i++) bomb = [0x0a, ...varint(bomb.length), ...bomb];
    expect(decodeMessage(Uint8Array.from(bomb), NODE)).toEqual({ ok: false, reason: 'Node nested deeper than 32 messages' });
  });

  it('reads inside a larger buffer at an offset', () => {
    const backing = bytes(0xee, 0xee, 0x08, 0x2a);
    expect(decodeMessage(backing.subarray(2), INNER)).toEqual({ ok: true, message: { n: 42 } });
  });
});

function varint(n: number): number[] {
  const out: number[] = [];
  while (n > 0x7f) {
    out.push((n & 0x7f) | 0x80);
    n = Math.floor(n / 128);
  }
  out.push(n);
  return out;
}
