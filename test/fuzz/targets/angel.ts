/**
 * Angel One SmartStream frames (src/adapters/angel/decoder.ts). Contract: no throw for any
 * input; a binary frame is one tick only when its length is exactly its mode's packet length,
 * its exchange type is known and its token printable, otherwise invalid with a reason; a text
 * frame is pong, text or invalid. No length is read from the frame, so work is fixed per frame.
 */
import { equal, ok } from 'node:assert/strict';
import fc from 'fast-check';
import { ANGEL_EXCHANGES, ANGEL_PACKET_LENGTH, type AngelDecoded, decodeAngelBinary, decodeAngelText } from '../../../src/adapters/angel/decoder.js';
import { type AngelPacketFields, encodeAngelPacket, loadAngelVectors } from '../../helpers/fake-angel.js';
import { HOSTILE_SHARE, assertReason, bounded, fuzzCase, type FuzzCase } from '../harness.js';
import { hostile, mutated, randomBytes } from '../mutate.js';

const VECTORS = loadAngelVectors();
const BINARY = VECTORS.filter((v) => v.frame === 'binary' && v.hex).map((v) => Buffer.from(v.hex!, 'hex'));
const TEXT = VECTORS.filter((v) => v.frame === 'text' && v.text !== undefined).map((v) => Buffer.from(v.text!));
const EXCHANGE_TYPES = [...ANGEL_EXCHANGES.keys()];
const LEVELS: Record<number, number> = { 3: 5, 4: 20 };

function assertDecoded(frame: Buffer, decoded: AngelDecoded): void {
  if (decoded.kind === 'invalid') {
    assertReason(decoded.reason);
    return;
  }
  ok(decoded.kind === 'tick', `binary frame decoded as ${decoded.kind}`);
  equal(frame.length, ANGEL_PACKET_LENGTH[frame[0]!], 'a tick from a frame of the wrong length');
  const { tick, packetMode, exchangeType } = decoded;
  equal(packetMode, frame[0]);
  equal(exchangeType, frame[1]);
  equal(tick.exchange, ANGEL_EXCHANGES.get(exchangeType)!.name);
  ok(/^[\x21-\x7e]{1,25}$/.test(tick.token), `token ${JSON.stringify(tick.token)}`);
  for (const [field, value] of Object.entries(tick)) {
    if (typeof value !== 'number') continue;
    // Depth-20 packets carry no LTP; it is NaN so nobody takes it for a price.
    if (field === 'ltp' && packetMode === 4) ok(Number.isNaN(value));
    else ok(Number.isFinite(value), `${field} = ${value}`);
  }
  if (tick.depth) {
    const max = LEVELS[packetMode] ?? 0;
    ok(tick.depth.buy.length <= max && tick.depth.sell.length <= max, `more than ${max} depth levels`);
    for (const level of [...tick.depth.buy, ...tick.depth.sell]) ok(Number.isFinite(level.price) && Number.isFinite(level.quantity) && Number.isFinite(level.orders));
  }
  if (decoded.anomaly !== undefined) assertReason(decoded.anomaly);
}

/** Packets of exactly a mode's length, valid mode and exchange bytes, random everything else. */
const packetShaped = fc
  .record({ mode: fc.constantFrom(1, 2, 3, 4), exchange: fc.oneof(fc.constantFrom(...EXCHANGE_TYPES), fc.nat({ max: 255 })), body: fc.uint8Array({ minLength: 443, maxLength: 443 }), token: fc.stringMatching(/^[0-9A-Z]{0,25}$/) })
  .map(({ mode, exchange, body, token }) => {
    const frame = Buffer.from(body.subarray(0, ANGEL_PACKET_LENGTH[mode]));
    frame[0] = mode;
    frame[1] = exchange;
    // Half the time a clean token, so the rest of the packet is reached.
    if (body[0]! & 1) frame.fill(0, 2, 27).write(token, 2, 'latin1');
    return frame;
  });

const int64 = fc.bigInt({ min: -(2n ** 40n), max: 2n ** 40n }).map(Number);
const fields: fc.Arbitrary<AngelPacketFields> = fc.record({
  mode: fc.constantFrom(1 as const, 2 as const, 3 as const),
  exchangeType: fc.constantFrom(...EXCHANGE_TYPES),
  token: fc.stringMatching(/^[\x21-\x7e]{1,25}$/),
  sequence: int64,
  exchangeTimestamp: int64,
  ltp: int64,
  volume: int64,
  open: int64,
});

/** Built in the property (failures print this, not 64 KiB). */
const hostileFrame = fc.record({ first: fc.nat({ max: 255 }), pattern: fc.constantFrom('', '\xff', '1234') });

export const angelCases: FuzzCase[] = [
  fuzzCase(
    'random bytes never throw; every frame is a tick or invalid with a reason',
    fc.property(fc.oneof(randomBytes(500, [1, 2, 3, 4]), packetShaped), (frame) => {
      assertDecoded(frame, decodeAngelBinary(frame));
      assertDecoded(frame, decodeAngelBinary(frame, { isIndex: () => true }));
    }),
  ),
  fuzzCase(
    'mutated vector packets (cut, extended, flipped, mode byte changed) never throw',
    fc.property(mutated(fc.oneof(fc.constantFrom(...BINARY), packetShaped), (b) => (b.length > 1 ? [{ offset: 0, size: 1 }, { offset: 1, size: 1 }] : [])), (frame) => {
      assertDecoded(frame, decodeAngelBinary(frame));
    }),
  ),
  fuzzCase(
    'encoded packets decode to the values encoded',
    fc.property(fields, (f) => {
      const decoded = decodeAngelBinary(encodeAngelPacket(f));
      if (decoded.kind !== 'tick') throw new Error(`expected a tick, got ${JSON.stringify(decoded)}`);
      const { tick } = decoded;
      const decimals = ANGEL_EXCHANGES.get(f.exchangeType)!.priceDecimals;
      equal(decoded.packetMode, f.mode);
      equal(tick.token, f.token);
      equal(tick.sequence, f.sequence);
      equal(Math.round(tick.ltp * 10 ** decimals), f.ltp);
      equal(tick.exchangeTimestamp, f.exchangeTimestamp! > 0 ? f.exchangeTimestamp : undefined);
      if (f.mode !== 1) equal(tick.open === undefined ? 0 : Math.round(tick.open * 10 ** decimals), f.open);
    }),
  ),
  fuzzCase(
    'random and mutated text frames never throw',
    fc.property(fc.oneof(fc.string({ unit: 'binary' }), fc.constantFrom('pong', ' pong\n', ''), mutated(fc.constantFrom(...TEXT)).map((b) => b.toString('utf8'))), (text) => {
      const decoded = decodeAngelText(text);
      ok(['pong', 'text', 'invalid'].includes(decoded.kind), decoded.kind);
      if (decoded.kind === 'invalid') assertReason(decoded.reason);
      if (decoded.kind === 'pong') equal(text.trim(), 'pong');
    }),
  ),
  fuzzCase(
    '64 KiB frames: refused at once, whatever the mode byte says',
    fc.property(hostileFrame, ({ first, pattern }) => {
      const frame = hostile(Buffer.from([first, 1]), Buffer.from(pattern, 'latin1'));
      const decoded = bounded('hostile Angel frame', () => decodeAngelBinary(frame));
      equal(decoded.kind, 'invalid');
      assertDecoded(frame, decoded);
    }),
    HOSTILE_SHARE,
  ),
];
