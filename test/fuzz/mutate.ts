/**
 * Mutated valid inputs: a well-formed frame with bytes flipped or overwritten, cut short,
 * extended, spliced, or with one of its length/count fields set to a huge value. Each mutation
 * is a small record (positions are taken modulo the current length), so fast-check can shrink a
 * failure down to the one mutation that matters.
 */
import fc from 'fast-check';

/** A length or count field of a format, found by walking a buffer as it is now. */
export interface LengthField {
  offset: number;
  size: 1 | 2 | 4;
}

/** Lists a format's length/count fields in a (possibly already mutated) buffer. */
export type FieldLocator = (buffer: Buffer) => LengthField[];

type Mutation =
  | { op: 'flip'; at: number; mask: number }
  | { op: 'set'; at: number; value: number }
  | { op: 'truncate'; at: number }
  | { op: 'extend'; bytes: Uint8Array }
  | { op: 'insert'; at: number; bytes: Uint8Array }
  | { op: 'remove'; at: number; count: number }
  | { op: 'repeat'; at: number; count: number; times: number }
  | { op: 'field'; index: number; value: 'max' | 'zero' | 'random'; random: number };

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ op: fc.constant('flip' as const), at: fc.nat(), mask: fc.integer({ min: 1, max: 255 }) }),
  fc.record({ op: fc.constant('set' as const), at: fc.nat(), value: fc.oneof(fc.constantFrom(0, 0xff, 0x7f, 0x80), fc.integer({ min: 0, max: 255 })) }),
  fc.record({ op: fc.constant('truncate' as const), at: fc.nat() }),
  fc.record({ op: fc.constant('extend' as const), bytes: fc.uint8Array({ minLength: 1, maxLength: 64 }) }),
  fc.record({ op: fc.constant('insert' as const), at: fc.nat(), bytes: fc.uint8Array({ minLength: 1, maxLength: 16 }) }),
  fc.record({ op: fc.constant('remove' as const), at: fc.nat(), count: fc.integer({ min: 1, max: 16 }) }),
  fc.record({ op: fc.constant('repeat' as const), at: fc.nat(), count: fc.integer({ min: 1, max: 64 }), times: fc.integer({ min: 1, max: 8 }) }),
  // Weighted up: length fields are where decoders go wrong.
  {
    arbitrary: fc.record({
      op: fc.constant('field' as const),
      index: fc.nat(),
      value: fc.constantFrom('max' as const, 'zero' as const, 'random' as const),
      random: fc.nat({ max: 0xffffffff }),
    }),
    weight: 3,
  },
);

function apply(buffer: Buffer, m: Mutation, fields: FieldLocator | undefined): Buffer {
  const n = buffer.length;
  switch (m.op) {
    case 'flip':
    case 'set': {
      if (n === 0) return buffer;
      const out = Buffer.from(buffer);
      const at = m.at % n;
      out[at] = m.op === 'flip' ? out[at]! ^ m.mask : m.value;
      return out;
    }
    case 'truncate':
      return n === 0 ? buffer : buffer.subarray(0, m.at % n);
    case 'extend':
      return Buffer.concat([buffer, m.bytes]);
    case 'insert': {
      const at = m.at % (n + 1);
      return Buffer.concat([buffer.subarray(0, at), m.bytes, buffer.subarray(at)]);
    }
    case 'remove': {
      if (n === 0) return buffer;
      const at = m.at % n;
      return Buffer.concat([buffer.subarray(0, at), buffer.subarray(at + m.count)]);
    }
    case 'repeat': {
      if (n === 0) return buffer;
      const at = m.at % n;
      const slice = buffer.subarray(at, at + m.count);
      return Buffer.concat([buffer.subarray(0, at), ...Array<Buffer>(m.times + 1).fill(slice), buffer.subarray(at + slice.length)]);
    }
    case 'field': {
      const found = fields?.(buffer) ?? [];
      if (found.length === 0) return buffer;
      const field = found[m.index % found.length]!;
      const out = Buffer.from(buffer);
      const max = field.size === 1 ? 0xff : field.size === 2 ? 0xffff : 0xffffffff;
      const value = m.value === 'max' ? max : m.value === 'zero' ? 0 : m.random % (max + 1);
      out.writeUIntBE(value, field.offset, field.size);
      return out;
    }
  }
}

/**
 * Buffers made from `valid` ones by one to four mutations. `fields` locates the format's
 * length/count fields (big-endian) so some mutations can set them to zero, huge or random values.
 */
export function mutated(valid: fc.Arbitrary<Buffer>, fields?: FieldLocator): fc.Arbitrary<Buffer> {
  return fc
    .tuple(valid, fc.array(mutation, { minLength: 1, maxLength: 4 }))
    .map(([buffer, mutations]) => mutations.reduce((out, m) => apply(out, m, fields), buffer));
}

/** Random bytes of any length up to `maxLength`, often with a few leading bytes picked from `lead`. */
export function randomBytes(maxLength = 512, lead: readonly number[] = []): fc.Arbitrary<Buffer> {
  const bytes = fc.uint8Array({ maxLength }).map((array) => Buffer.from(array));
  if (lead.length === 0) return bytes;
  return fc.oneof(
    bytes,
    fc.tuple(fc.constantFrom(...lead), fc.uint8Array({ maxLength })).map(([first, rest]) => Buffer.concat([Buffer.from([first]), rest])),
  );
}

/** 64 KiB: the size of the largest client message processed by default, and of hostile inputs here. */
export const HOSTILE_BYTES = 64 * 1024;

/** A `HOSTILE_BYTES` buffer: `head` then `pattern` repeated (cheap to build for any run count). */
export function hostile(head: Buffer, pattern: Buffer, size = HOSTILE_BYTES): Buffer {
  const out = Buffer.alloc(Math.max(size, head.length), pattern.length > 0 ? pattern : Buffer.from([0]));
  head.copy(out, 0);
  return out;
}
