/**
 * Kite ticker frames (src/adapters/zerodha/decoder.ts). Contract: no throw for any input; a
 * frame is ticks (plus one reason per packet that could not be decoded), a heartbeat, a text
 * message or invalid with a reason; nothing is read or allocated from the packet count or a
 * packet length beyond what the frame holds.
 */
import { equal, ok } from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import type { BrokerTick } from '../../../src/adapters/broker.js';
import { type KiteDecoded, decodeKiteBinary, decodeKiteText } from '../../../src/adapters/zerodha/decoder.js';
import { type KiteFields, kiteFrame, kitePacket } from '../../helpers/fake-kite.js';
import { HOSTILE_SHARE, assertReason, assertSerialisable, bounded, fuzzCase, sizeOf, type FuzzCase } from '../harness.js';
import { type FieldLocator, hostile, mutated, randomBytes } from '../mutate.js';

interface Vector {
  name: string;
  frame: 'binary' | 'text';
  hex: string;
  text?: string;
}

// The broker vectors (test/fixtures/vectors/README.md says where they come from).
const VECTORS = JSON.parse(readFileSync(new URL('../../fixtures/vectors/zerodha.json', import.meta.url), 'utf8')) as Vector[];
const BINARY = VECTORS.filter((v) => v.frame === 'binary').map((v) => Buffer.from(v.hex, 'hex'));
const TEXT = VECTORS.filter((v) => v.frame === 'text' && v.text !== undefined).map((v) => Buffer.from(v.text!));

const KNOWN_LENGTHS = [8, 28, 32, 44, 184];
const MODES = new Set(['ltp', 'quote', 'full']);

function assertTick(tick: BrokerTick): void {
  equal(tick.broker, 'zerodha');
  ok(/^\d+$/.test(tick.token), `token ${tick.token}`);
  ok(tick.exchange.length > 0, 'no exchange');
  ok(MODES.has(tick.mode), `mode ${tick.mode}`);
  for (const [field, value] of Object.entries(tick)) {
    if (typeof value === 'number') ok(Number.isFinite(value) && value >= 0, `${field} = ${value}`);
  }
  if (tick.depth) {
    ok(tick.depth.buy.length <= 5 && tick.depth.sell.length <= 5, 'more than 5 depth levels');
    for (const level of [...tick.depth.buy, ...tick.depth.sell]) ok(Number.isFinite(level.price) && level.quantity >= 0 && level.orders !== null && level.orders >= 0);
  }
}

function assertDecoded(frame: Buffer, decoded: KiteDecoded): void {
  switch (decoded.kind) {
    case 'heartbeat':
      equal(frame.length, 1);
      return;
    case 'invalid':
      // The adapter logs the reason whole: it must stay short whatever the frame claims.
      assertReason(decoded.reason);
      return;
    case 'text':
      ok(typeof decoded.type === 'string');
      // The adapter logs `data` (JSON.stringify): it must serialise.
      assertSerialisable(decoded.data, 'a text frame\'s data');
      return;
    case 'ticks': {
      // Every packet costs its 2-byte length plus at least 8 bytes to make a tick, 0 to be rejected.
      ok(decoded.ticks.length * 10 + 2 <= frame.length, `${decoded.ticks.length} ticks from ${frame.length} bytes`);
      ok(decoded.rejected.length <= frame.length / 2 + 1, `${decoded.rejected.length} rejections from ${frame.length} bytes`);
      ok(decoded.ticks.length + decoded.rejected.length > 0, 'a frame of ticks with neither ticks nor rejections');
      decoded.ticks.forEach(assertTick);
      for (const reason of decoded.rejected) assertReason(reason);
      // Output bounded by input: a forged count cannot make more than the frame holds.
      ok(sizeOf(decoded) <= 64 * frame.length + 256, `output of ~${sizeOf(decoded)} bytes from ${frame.length}`);
    }
  }
}

/** The u16 packet count and each packet's u16 length. */
const kiteFields: FieldLocator = (buffer) => {
  if (buffer.length < 2) return [];
  const fields: ReturnType<FieldLocator> = [{ offset: 0, size: 2 }];
  let at = 2;
  while (at + 2 <= buffer.length) {
    fields.push({ offset: at, size: 2 });
    at += 2 + buffer.readUInt16BE(at);
  }
  return fields;
};

const u32 = fc.oneof(fc.nat({ max: 0xffffffff }), fc.constantFrom(0, 1, 0xffffffff));
const segmentToken = fc.tuple(fc.nat({ max: 0xffffff }), fc.nat({ max: 12 })).map(([high, segment]) => high * 256 + segment);
const packet = fc
  .record({
    length: fc.oneof({ arbitrary: fc.constantFrom(...KNOWN_LENGTHS), weight: 4 }, { arbitrary: fc.integer({ min: 4, max: 200 }), weight: 1 }),
    token: segmentToken,
    values: fc.array(u32, { minLength: 14, maxLength: 14 }),
    depth: fc.array(fc.record({ quantity: u32, price: u32, orders: fc.nat({ max: 0xffff }) }), { maxLength: 10 }),
  })
  .map(({ length, token, values, depth }) => {
    const names = ['last_price', 'high', 'low', 'open', 'close', 'last_traded_quantity', 'average_traded_price', 'volume_traded',
      'total_buy_quantity', 'total_sell_quantity', 'last_trade_time', 'oi', 'oi_day_high', 'exchange_timestamp'];
    const fields: KiteFields = { instrument_token: token, depth: { buy: depth.slice(0, 5), sell: depth.slice(5) } };
    names.forEach((name, i) => (fields[name] = values[i]));
    return { length, token, fields };
  });
const frames = fc.array(packet, { minLength: 1, maxLength: 8 });

/** Valid frames: the official vectors, and frames of random packets. */
const validBinary = fc.oneof(fc.constantFrom(...BINARY), frames.map((list) => kiteFrame(list.map((p) => kitePacket(p.length, p.fields)))));

/** A forged count, then a pattern repeated to 64 KiB in the property (failures print this, not 64 KiB). */
const hostileFrame = fc.record({
  count: fc.constantFrom(0xffff, 0x8000, 1),
  pattern: fc.constantFrom([], [0x00, 0x08, 0, 0, 0, 1, 0, 0, 0, 1], [0xff, 0xff], [0x00, 0xb8], [0x00, 0x01, 0xaa]),
});

export const zerodhaCases: FuzzCase[] = [
  fuzzCase(
    'random bytes never throw; every frame is ticks, heartbeat or invalid with a reason',
    fc.property(randomBytes(600, [0x00, 0xff]), (frame) => {
      assertDecoded(frame, decodeKiteBinary(frame));
    }),
  ),
  fuzzCase(
    'mutated vector frames (forged counts and lengths, cuts, flips) never throw',
    fc.property(mutated(validBinary, kiteFields), (frame) => {
      assertDecoded(frame, decodeKiteBinary(frame));
    }),
  ),
  fuzzCase(
    'frames of random packets decode packet by packet, values as encoded',
    fc.property(frames, (list) => {
      const frame = kiteFrame(list.map((p) => kitePacket(p.length, p.fields)));
      const decoded = decodeKiteBinary(frame);
      assertDecoded(frame, decoded);
      if (decoded.kind !== 'ticks') throw new Error(`expected ticks, got ${decoded.kind}`);
      const known = list.filter((p) => KNOWN_LENGTHS.includes(p.length));
      equal(decoded.ticks.length, known.length);
      equal(decoded.rejected.length, list.length - known.length);
      decoded.ticks.forEach((tick, i) => {
        const { token, fields } = known[i]!;
        equal(tick.token, String(token));
        const decimals = (token & 0xff) === 3 ? 7 : (token & 0xff) === 6 ? 4 : 2;
        // Prices are the wire integer scaled by the segment's decimals.
        equal(Math.round(tick.ltp * 10 ** decimals), fields.last_price);
        if (tick.volume !== undefined) equal(tick.volume, fields.volume_traded);
      });
    }),
  ),
  fuzzCase(
    'random and mutated text frames never throw; data serialises',
    fc.property(fc.oneof(fc.string({ unit: 'binary' }), mutated(fc.constantFrom(...TEXT)).map((b) => b.toString('utf8'))), (text) => {
      const frame = Buffer.from(text);
      assertDecoded(frame, decodeKiteText(text));
    }),
  ),
  fuzzCase(
    'deeply nested text frames are refused or serialise',
    fc.property(fc.integer({ min: 1, max: 30_000 }), fc.constantFrom('error', 'message', 'order'), (depth, type) => {
      const text = `{"type":"${type}","data":${'['.repeat(depth)}${']'.repeat(depth)}}`;
      assertDecoded(Buffer.from(text), bounded('deep text frame', () => decodeKiteText(text)));
    }),
    0.2,
  ),
  fuzzCase(
    '64 KiB frames with forged packet counts: bounded work, output bounded by input',
    fc.property(hostileFrame, ({ count, pattern }) => {
      const frame = hostile(Buffer.from([count >> 8, count & 0xff]), Buffer.from(pattern));
      assertDecoded(frame, bounded('hostile Kite frame', () => decodeKiteBinary(frame)));
    }),
    HOSTILE_SHARE,
  ),
];
