/**
 * The control-channel codec (src/control/codec.ts). Contract: decoding never throws; anything
 * becomes either a message rebuilt from its known fields only, or `{ok: false, error}` saying
 * why; a message over MAX_MESSAGE_BYTES is refused before it is parsed; every message the
 * protocol allows round-trips through encodeMessage.
 */
import { deepEqual, equal, ok } from 'node:assert/strict';
import fc from 'fast-check';
import {
  type Decoded,
  MAX_BROKERS,
  MAX_MESSAGE_BYTES,
  decodeAdapterMessage,
  decodeGatewayMessage,
  encodeMessage,
} from '../../../src/control/codec.js';
import type { AdapterMessage, ControlMessage, GatewayMessage } from '../../../src/control/protocol.js';
import { HOSTILE_SHARE, assertReason, bounded, fuzzCase, type FuzzCase } from '../harness.js';
import { hostile, mutated, randomBytes } from '../mutate.js';

/** The fields each message type may carry (decoded messages hold nothing else). */
const FIELDS: Record<string, readonly string[]> = {
  hello: ['type', 'protocol', 'feed', 'broker', 'brokers', 'pid', 'instance', 'entryId', 'session', 'heartbeatMs', 'status'],
  heartbeat: ['type'],
  bye: ['type'],
  reply: ['type', 'id', 'ok', 'depth', 'message'],
  status: ['type', 'status', 'message'],
  welcome: ['type', 'session', 'heartbeatMs'],
  refused: ['type', 'session', 'message'],
  reset: ['type', 'message'],
  subscribe: ['type', 'id', 'exchange', 'symbol', 'mode', 'depth'],
  unsubscribe: ['type', 'id', 'exchange', 'symbol'],
};

type Side = 'adapter' | 'gateway';
const decoders: Record<Side, (data: Buffer | string) => Decoded<ControlMessage>> = {
  adapter: decodeAdapterMessage,
  gateway: decodeGatewayMessage,
};

function assertDecoded(side: Side, decoded: Decoded<ControlMessage>): void {
  if (!decoded.ok) {
    assertReason(decoded.error, 300);
    return;
  }
  const allowed = FIELDS[decoded.message.type];
  ok(allowed, `unknown type ${decoded.message.type}`);
  for (const key of Object.keys(decoded.message)) ok(allowed.includes(key), `${decoded.message.type} carries ${key}`);
  // A decoded message is valid: it survives another trip unchanged (compared as JSON: -0 is 0).
  const again = decoders[side](encodeMessage(decoded.message));
  ok(again.ok, `a decoded message is refused when sent again: ${again.ok ? '' : again.error}`);
  equal(encodeMessage(again.message), encodeMessage(decoded.message));
}

// ---- Valid messages ---------------------------------------------------------------------------

const int = (min = 0) => fc.oneof(fc.integer({ min, max: 1000 }), fc.integer({ min, max: Number.MAX_SAFE_INTEGER }));
/** UTF-16 length ≤ 2 × maxCodePoints: 64 code points stay within the 128-character name limit. */
const name = (maxCodePoints = 64) => fc.oneof(fc.string({ unit: 'binary', minLength: 1, maxLength: maxCodePoints }), fc.constant('n'.repeat(2 * maxCodePoints)));
const freeText = fc.oneof(fc.string({ unit: 'binary', maxLength: 1000 }), fc.constant('t'.repeat(2000)));
const status = fc.constantFrom('live' as const, 'reconnecting' as const, 'stale' as const, 'down' as const);
const modeArb = fc.constantFrom(1 as const, 2 as const, 3 as const);

const adapterMessage: fc.Arbitrary<AdapterMessage> = fc.oneof(
  fc.record(
    {
      type: fc.constant('hello' as const),
      protocol: int(1),
      feed: name(),
      broker: name(),
      brokers: fc.oneof(fc.constant('*' as const), fc.array(name(), { maxLength: 8 }), fc.constant(Array<string>(MAX_BROKERS).fill('b'))),
      pid: int(1),
      instance: name(),
      entryId: name(),
      session: int(),
      heartbeatMs: int(1),
      status,
    },
    { requiredKeys: ['type', 'protocol', 'feed', 'broker', 'brokers', 'pid', 'session', 'heartbeatMs', 'status'] },
  ),
  fc.constant({ type: 'heartbeat' as const }),
  fc.constant({ type: 'bye' as const }),
  fc.record({ type: fc.constant('reply' as const), id: int(), ok: fc.constant(true as const), depth: int() }, { requiredKeys: ['type', 'id', 'ok'] }),
  fc.record({ type: fc.constant('reply' as const), id: int(), ok: fc.constant(false as const), message: freeText }),
  fc.record({ type: fc.constant('status' as const), status, message: freeText }, { requiredKeys: ['type', 'status'] }),
);

const gatewayMessage: fc.Arbitrary<GatewayMessage> = fc.oneof(
  fc.record({ type: fc.constant('welcome' as const), session: int(), heartbeatMs: int(1) }),
  fc.record({ type: fc.constant('refused' as const), session: int(), message: freeText }),
  fc.constant({ type: 'heartbeat' as const }),
  fc.constant({ type: 'bye' as const }),
  fc.record({ type: fc.constant('reset' as const), message: freeText }),
  fc.record({ type: fc.constant('subscribe' as const), id: int(), exchange: name(128), symbol: name(128), mode: modeArb, depth: int() }),
  fc.record({ type: fc.constant('unsubscribe' as const), id: int(), exchange: name(128), symbol: name(128) }),
);

// fc.record builds objects without a prototype; decoded messages are plain objects.
const sided = fc.oneof(
  adapterMessage.map((message) => ({ side: 'adapter' as Side, message: { ...message } as ControlMessage })),
  gatewayMessage.map((message) => ({ side: 'gateway' as Side, message: { ...message } as ControlMessage })),
);

// ---- Arbitrary objects shaped like messages ---------------------------------------------------

const anyValue: fc.Arbitrary<unknown> = fc.oneof(
  fc.constantFrom<unknown>(null, true, false, 0, -1, 1, 2, 3, 4, 0.5, -0, 2 ** 53, 1e308, '', '*', 'live', 'x', [], {}, ['b'], [1]),
  fc.integer(),
  fc.string({ maxLength: 20 }),
  fc.jsonValue({ maxDepth: 2 }),
  fc.constantFrom('a'.repeat(129), 'a'.repeat(257), 'a'.repeat(2001)),
  fc.constant(Array<string>(MAX_BROKERS + 1).fill('b')),
);
const shaped = fc
  .tuple(
    fc.oneof(fc.constantFrom(...Object.keys(FIELDS)), anyValue),
    fc.dictionary(fc.constantFrom(...new Set(Object.values(FIELDS).flat()), 'extra', '__proto__'), anyValue, { maxKeys: 12 }),
    fc.constantFrom<Side>('adapter', 'gateway'),
  )
  .map(([type, fields, side]) => ({ side, text: JSON.stringify({ ...fields, type }) }));

/** Built in the property (a failure prints this description, not 64 KiB). */
const hostileMessage = fc.record({
  pattern: fc.constantFrom('[', '{"a":', ' ', '"', '\\u0000', '{"type":"hello"},'),
  head: fc.constantFrom('', '{"type":"hello","feed":', '{"type":"reset","message":"'),
  size: fc.constantFrom(MAX_MESSAGE_BYTES, MAX_MESSAGE_BYTES + 1, 4 * MAX_MESSAGE_BYTES),
  side: fc.constantFrom<Side>('adapter', 'gateway'),
});

export const controlCases: FuzzCase[] = [
  fuzzCase(
    'random text and bytes never throw; a refusal says why',
    fc.property(fc.oneof(fc.string({ unit: 'binary' }), randomBytes(512, [0x7b])), fc.constantFrom<Side>('adapter', 'gateway'), (data, side) => {
      assertDecoded(side, decoders[side](data));
    }),
  ),
  fuzzCase(
    'every valid message round-trips (as text and as bytes)',
    fc.property(sided, ({ side, message }) => {
      const text = encodeMessage(message);
      deepEqual(decoders[side](text), { ok: true, message });
      deepEqual(decoders[side](Buffer.from(text)), { ok: true, message });
    }),
  ),
  fuzzCase(
    'objects shaped like messages (wrong types, out-of-range values, extra keys) are rebuilt or refused',
    fc.property(shaped, ({ side, text }) => {
      assertDecoded(side, decoders[side](text));
    }),
  ),
  fuzzCase(
    'mutated valid messages never throw',
    fc.property(mutated(sided.map(({ message }) => Buffer.from(encodeMessage(message)))), fc.constantFrom<Side>('adapter', 'gateway'), (data, side) => {
      assertDecoded(side, decoders[side](data));
    }),
  ),
  fuzzCase(
    `a message is accepted up to ${MAX_MESSAGE_BYTES} bytes and refused above, whatever it holds`,
    fc.property(sided, fc.boolean(), ({ side, message }, over) => {
      const text = encodeMessage(message);
      const padded = text + ' '.repeat(MAX_MESSAGE_BYTES - Buffer.byteLength(text) + (over ? 1 : 0));
      const decoded = decoders[side](padded);
      if (over) equal(decoded.ok, false);
      else deepEqual(decoded, { ok: true, message });
    }),
    0.2,
  ),
  fuzzCase(
    '64 KiB hostile messages: bounded work, refused with a short reason',
    fc.property(hostileMessage, ({ pattern, head, size, side }) => {
      const data = hostile(Buffer.from(head), Buffer.from(pattern), size);
      assertDecoded(side, bounded('hostile control message', () => decoders[side](data)));
    }),
    HOSTILE_SHARE,
  ),
];
