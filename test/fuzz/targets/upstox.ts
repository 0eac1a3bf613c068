/**
 * Upstox Market Data Feed v3 frames (src/adapters/upstox/decoder.ts, protobuf.ts). Contract: no
 * throw for any input; a frame is a feed (ticks, skipped feeds with reasons, market status) or
 * invalid with a reason; nothing is read past a length, nesting is bounded, and the output is
 * bounded by the input however lengths and repetitions are forged.
 */
import { equal, ok } from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import type { BrokerTick } from '../../../src/adapters/broker.js';
import { type UpstoxDecoded, UPSTOX_MAX_DEPTH, decodeUpstoxFeed } from '../../../src/adapters/upstox/decoder.js';
import { HOSTILE_SHARE, assertReason, bounded, fuzzCase, sizeOf, type FuzzCase } from '../harness.js';
import { type FieldLocator, hostile, mutated, randomBytes } from '../mutate.js';

interface Vector {
  direction: string;
  hex?: string;
}

// The broker vectors (test/fixtures/vectors/README.md says where they come from).
const VECTORS = JSON.parse(readFileSync(new URL('../../fixtures/vectors/upstox.json', import.meta.url), 'utf8')) as Vector[];
const BINARY = VECTORS.filter((v) => v.direction === 'server->client' && v.hex).map((v) => Buffer.from(v.hex!, 'hex'));
const MODES = new Set(['ltp', 'quote', 'full']);

function assertTick(tick: BrokerTick): void {
  equal(tick.broker, 'upstox');
  ok(tick.token.includes('|'), `token ${tick.token}`);
  ok(tick.exchange.length > 0 && tick.token.startsWith(tick.exchange + '|'), `exchange ${tick.exchange}`);
  ok(MODES.has(tick.mode), `mode ${tick.mode}`);
  ok(Number.isNaN(tick.ltp) || (Number.isFinite(tick.ltp) && tick.ltp !== 0), `ltp ${tick.ltp}`);
  for (const field of ['lastQuantity', 'volume', 'oi', 'totalBuyQuantity', 'totalSellQuantity', 'lastTradeTime', 'exchangeTimestamp'] as const) {
    const value = tick[field];
    if (value !== undefined) ok(Number.isFinite(value) && value > 0, `${field} = ${value}`);
  }
  if (tick.depth) {
    ok(tick.depth.buy.length <= UPSTOX_MAX_DEPTH && tick.depth.sell.length <= UPSTOX_MAX_DEPTH, 'too many depth levels');
    for (const level of [...tick.depth.buy, ...tick.depth.sell]) ok(Number.isFinite(level.price) && level.quantity >= 0 && level.orders === null);
  }
}

function assertDecoded(frame: Buffer, decoded: UpstoxDecoded): void {
  if (decoded.kind === 'invalid') {
    assertReason(decoded.reason);
    return;
  }
  equal(decoded.kind, 'feed');
  // Every feed costs at least its entry's tag and length, the key's, and the value's.
  ok((decoded.ticks.length + decoded.skipped.length) * 2 <= frame.length, `${decoded.ticks.length} ticks from ${frame.length} bytes`);
  decoded.ticks.forEach((t) => {
    equal(t.key, t.tick.token);
    assertTick(t.tick);
  });
  for (const reason of decoded.skipped) assertReason(reason, 200);
  ok(sizeOf(decoded) <= 64 * frame.length + 256, `output of ~${sizeOf(decoded)} bytes from ${frame.length}`);
}

/** Every length prefix of the top-level message (field keys are one byte in these frames). */
const lengths: FieldLocator = (buffer) => {
  const fields: ReturnType<FieldLocator> = [];
  let at = 0;
  while (at + 1 < buffer.length) {
    const wire = buffer[at]! & 7;
    if (wire === 2) {
      fields.push({ offset: at + 1, size: 1 });
      let length = 0;
      let shift = 0;
      let p = at + 1;
      while (p < buffer.length && shift < 28) {
        const b = buffer[p++]!;
        length |= (b & 0x7f) << shift;
        shift += 7;
        if ((b & 0x80) === 0) break;
      }
      at = p + length;
    } else if (wire === 0) {
      at += 2;
      while (at < buffer.length && (buffer[at - 1]! & 0x80) !== 0) at++;
    } else if (wire === 1) at += 9;
    else if (wire === 5) at += 5;
    else break;
  }
  return fields;
};

function varint(n: number): number[] {
  const out: number[] = [];
  while (n > 0x7f) {
    out.push((n & 0x7f) | 0x80);
    n = Math.floor(n / 128);
  }
  out.push(n);
  return out;
}
const field = (no: number, body: number[]): number[] => [(no << 3) | 2, ...varint(body.length), ...body];
const double = (no: number, value: number): number[] => [(no << 3) | 1, ...new Uint8Array(new Float64Array([value]).buffer)];
const int = (no: number, value: number): number[] => [(no << 3) | 0, ...varint(value)];

/** Well-formed FeedResponses of random LTPC feeds, built here from the field numbers. */
const ltpcFeeds = fc.array(
  fc.record({
    token: fc.stringMatching(/^[A-Z0-9]{1,12}$/),
    segment: fc.constantFrom('NSE_EQ', 'NSE_FO', 'NSE_INDEX', 'BSE_EQ', 'MCX_FO'),
    ltp: fc.double({ min: -1e6, max: 1e6, noNaN: true }).filter((v) => v !== 0),
    ltq: fc.integer({ min: 1, max: 2 ** 31 }),
  }),
  { minLength: 1, maxLength: 6 },
);

export const upstoxCases: FuzzCase[] = [
  fuzzCase(
    'random bytes never throw; every frame is a feed or invalid with a reason',
    fc.property(randomBytes(600, [0x08, 0x12, 0x18, 0x22]), (frame) => {
      assertDecoded(frame, decodeUpstoxFeed(frame));
    }),
  ),
  fuzzCase(
    'mutated vector frames (forged lengths, cuts, flips) never throw',
    fc.property(mutated(fc.constantFrom(...BINARY), lengths), (frame) => {
      assertDecoded(frame, decodeUpstoxFeed(frame));
    }),
  ),
  fuzzCase(
    'random LTPC feeds decode as encoded',
    fc.property(ltpcFeeds, (feeds) => {
      const unique = new Map(feeds.map((f) => [`${f.segment}|${f.token}`, f]));
      const body: number[] = [...int(1, 1)];
      for (const [key, f] of unique) {
        const ltpc = [...double(1, f.ltp), ...int(3, f.ltq)];
        body.push(...field(2, [...field(1, [...Buffer.from(key)]), ...field(2, field(1, ltpc))]));
      }
      const frame = Buffer.from(body);
      const decoded = decodeUpstoxFeed(frame);
      assertDecoded(frame, decoded);
      if (decoded.kind !== 'feed') throw new Error(`expected a feed, got ${decoded.reason}`);
      equal(decoded.ticks.length, unique.size);
      for (const t of decoded.ticks) {
        const f = unique.get(t.key)!;
        equal(t.tick.ltp, f.ltp);
        equal(t.tick.lastQuantity, f.ltq);
      }
    }),
  ),
  fuzzCase(
    '64 KiB frames of forged lengths, repetitions and nesting: bounded work, output bounded by input',
    fc.property(
      fc.constantFrom(
        [0x12, 0x00], // empty feeds entries
        [0x12, 0x02, 0x12, 0x00], // feeds with an empty Feed
        [0x12, 0xff, 0xff, 0x03], // a length beyond the frame
        [0x12], // nesting: each byte opens another field 2
        [0x0a, 0x80], // wrong wire type with a truncated length
        [0x22, 0x02, 0x0a, 0x00], // marketInfo with empty segment entries
      ),
      (pattern) => {
        const frame = hostile(Buffer.alloc(0), Buffer.from(pattern));
        assertDecoded(frame, bounded('hostile Upstox frame', () => decodeUpstoxFeed(frame)));
      },
    ),
    HOSTILE_SHARE,
  ),
];
