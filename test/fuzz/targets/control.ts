/**
 * The control-protocol codec (src/control/codec.ts, version 2). Contract: decoding never throws;
 * any input becomes either a frame (a message rebuilt from its type's known fields only, with the
 * MAC and the JSON text it covers) or `{ok: false, error}` saying why; JSON over
 * MAX_MESSAGE_BYTES is refused before it is parsed; every message the protocol allows
 * round-trips through encodeFrame, and its MAC verifies with the key it was encoded with.
 */
import { deepEqual, equal, match, ok } from 'node:assert/strict';
import fc from 'fast-check';
import {
  type DecodedFrame,
  MAX_BROKERS,
  MAX_MESSAGE_BYTES,
  decodeToAdapter,
  decodeToGateway,
  encodeFrame,
} from '../../../src/control/codec.js';
import { authentic, mac } from '../../../src/control/keys.js';
import type { ControlMessage, ToAdapter, ToGateway } from '../../../src/control/protocol.js';
import { HOSTILE_SHARE, assertReason, bounded, fuzzCase, type FuzzCase } from '../harness.js';
import { hostile, mutated, randomBytes } from '../mutate.js';

type Side = 'adapter' | 'gateway';

const INFO = ['protocol', 'feed', 'broker', 'brokers', 'instance', 'pid', 'host', 'epoch', 'heartbeatMs'];
/** A feed host's announce and registered carry `hosts` too. */
const HOST_INFO = [...INFO, 'hosts'];
const SESSION = ['gateway', 'session', 'seq'];
const REFUSED = ['type', 'epoch', 'gateway', 'session', 'message'];

/** The fields each message type may carry, per receiving side (decoded messages hold nothing else). */
const FIELDS: Record<Side, Record<string, readonly string[]>> = {
  gateway: {
    announce: ['type', ...HOST_INFO],
    registered: ['type', ...HOST_INFO, 'gateway', 'session', 'gatewayNonce', 'nonce', 'status', 'message'],
    refused: REFUSED,
    reset: ['type', 'gateway', 'session', 'message'],
    heartbeat: ['type', ...SESSION, 'resync', 'status', 'message'],
    reply: ['type', ...SESSION, 'id', 'ok', 'depth', 'message'],
    status: ['type', ...SESSION, 'status', 'message', 'feed'],
    bye: ['type', ...SESSION],
  },
  adapter: {
    register: ['type', 'protocol', 'gateway', 'session', 'nonce', 'heartbeatMs', 'pid', 'host'],
    refused: REFUSED,
    heartbeat: ['type', ...SESSION, 'digest'],
    subscribe: ['type', ...SESSION, 'id', 'exchange', 'symbol', 'mode', 'depth', 'feed'],
    unsubscribe: ['type', ...SESSION, 'id', 'exchange', 'symbol', 'feed'],
    open: ['type', ...SESSION, 'id', 'feed', 'broker', 'user'],
    relogin: ['type', ...SESSION, 'id', 'feed'],
    bye: ['type', ...SESSION],
  },
};

const decoders: Record<Side, (data: Uint8Array | string) => DecodedFrame<ControlMessage>> = {
  adapter: decodeToAdapter,
  gateway: decodeToGateway,
};

/** Any fixed key will do for frames whose MAC the property does not care about. */
const KEY = Buffer.alloc(32, 7);
const HEX64 = /^[0-9a-f]{64}$/;

/** The frame of an arbitrary JSON text, with a correct MAC. */
const framed = (json: string): string => `${mac(KEY, json)} ${json}`;

function assertDecoded(side: Side, decoded: DecodedFrame<ControlMessage>): void {
  if (!decoded.ok) {
    assertReason(decoded.error, 300);
    if (decoded.legacy !== undefined) {
      deepEqual(Object.keys(decoded.legacy).sort(), ['protocol', 'session']);
      ok(Number.isSafeInteger(decoded.legacy.protocol) && decoded.legacy.protocol >= 1, 'legacy protocol');
      ok(Number.isSafeInteger(decoded.legacy.session) && decoded.legacy.session >= 0, 'legacy session');
    }
    return;
  }
  match(decoded.mac, HEX64);
  ok(Buffer.byteLength(decoded.json) <= MAX_MESSAGE_BYTES, `accepted ${Buffer.byteLength(decoded.json)} bytes of JSON`);
  const message = decoded.message as unknown as Record<string, unknown>;
  const allowed = FIELDS[side][String(message.type)];
  ok(allowed, `a ${side} received unknown type ${String(message.type)}`);
  equal(Object.getPrototypeOf(message), Object.prototype);
  for (const key of Object.keys(message)) ok(allowed.includes(key), `${message.type} carries ${key}`);
  if (message.type === 'reply') ok(message.ok === true ? !('message' in message) : !('depth' in message), 'a reply mixes success and failure fields');
  if (message.digest !== undefined) deepEqual(Object.keys(message.digest as object).sort(), ['count', 'sum']);
  // A decoded message is valid: it survives another trip unchanged (compared as JSON: -0 is 0).
  const frame = encodeFrame(decoded.message, KEY);
  const again = decoders[side](frame);
  ok(again.ok, `a decoded message is refused when sent again: ${again.ok ? '' : again.error}`);
  equal(again.json, JSON.stringify(decoded.message));
  equal(encodeFrame(again.message, KEY), frame);
  ok(authentic(KEY, again.json, again.mac), 'the MAC of a re-encoded frame does not verify');
}

// ---- Valid messages ---------------------------------------------------------------------------

const int = (min = 0) => fc.oneof(fc.integer({ min, max: 1000 }), fc.maxSafeNat().map((n) => Math.max(n, min)));
/** UTF-16 length ≤ 2 × maxCodePoints: 64 code points stay within the 128-character name limit. */
const name = (maxCodePoints = 64) => fc.oneof(fc.string({ unit: 'binary', minLength: 1, maxLength: maxCodePoints }), fc.constant('n'.repeat(2 * maxCodePoints)));
const freeText = fc.oneof(fc.string({ unit: 'binary', maxLength: 1000 }), fc.constant('t'.repeat(2000)));
const status = fc.constantFrom('live' as const, 'reconnecting' as const, 'stale' as const, 'down' as const);
const modeArb = fc.constantFrom(1 as const, 2 as const, 3 as const);
const nonce = fc.uint8Array({ minLength: 32, maxLength: 32 }).map((bytes) => Buffer.from(bytes).toString('hex'));
const brokers = fc.oneof(fc.constant('*' as const), fc.array(name(), { maxLength: 8 }), fc.constant(Array<string>(MAX_BROKERS).fill('b'.repeat(128))));
const inSession = { gateway: name(), session: int(1), seq: int(1) };

const info = {
  protocol: int(1),
  feed: name(),
  broker: name(),
  brokers,
  instance: name(),
  pid: int(1),
  host: name(127),
  epoch: int(),
  heartbeatMs: int(1),
  hosts: fc.array(name(), { maxLength: 8 }),
};

const refused = fc.record(
  { type: fc.constant('refused' as const), epoch: int(), gateway: name(), session: int(), message: freeText },
  { requiredKeys: ['type', 'message'] },
);

const gatewayMessage: fc.Arbitrary<ToGateway> = fc.oneof(
  fc.record({ type: fc.constant('announce' as const), ...info }, { requiredKeys: ['type', ...(INFO as Array<keyof typeof info>)] }),
  fc.record(
    { type: fc.constant('registered' as const), ...info, gateway: name(), session: int(1), gatewayNonce: nonce, nonce, status, message: freeText },
    { requiredKeys: ['type', ...(INFO as Array<keyof typeof info>), 'gateway', 'session', 'gatewayNonce', 'nonce', 'status'] },
  ),
  refused,
  fc.record({ type: fc.constant('reset' as const), gateway: name(), session: int(1), message: freeText }),
  fc.record(
    { type: fc.constant('heartbeat' as const), ...inSession, resync: fc.boolean(), status, message: freeText },
    { requiredKeys: ['type', 'gateway', 'session', 'seq', 'resync', 'status'] },
  ),
  fc.record({ type: fc.constant('reply' as const), ...inSession, id: int(), ok: fc.constant(true as const), depth: int() }, { requiredKeys: ['type', 'gateway', 'session', 'seq', 'id', 'ok'] }),
  fc.record({ type: fc.constant('reply' as const), ...inSession, id: int(), ok: fc.constant(false as const), message: freeText }),
  fc.record({ type: fc.constant('status' as const), ...inSession, status, message: freeText, feed: name() }, { requiredKeys: ['type', 'gateway', 'session', 'seq', 'status'] }),
  fc.record({ type: fc.constant('bye' as const), ...inSession }),
);

const digest = fc.record({ count: int(), sum: fc.oneof(fc.constantFrom(0, 0xffffffff), fc.nat({ max: 0xffffffff })) }).map((d) => ({ ...d }));

const adapterMessage: fc.Arbitrary<ToAdapter> = fc.oneof(
  fc.record({ type: fc.constant('register' as const), protocol: int(1), gateway: name(), session: int(1), nonce, heartbeatMs: int(1), pid: int(1), host: name(127) }),
  refused,
  fc.record({ type: fc.constant('heartbeat' as const), ...inSession, digest }, { requiredKeys: ['type', 'gateway', 'session', 'seq'] }),
  fc.record(
    { type: fc.constant('subscribe' as const), ...inSession, id: int(), exchange: name(128), symbol: name(128), mode: modeArb, depth: int(), feed: name() },
    { requiredKeys: ['type', 'gateway', 'session', 'seq', 'id', 'exchange', 'symbol', 'mode', 'depth'] },
  ),
  fc.record({ type: fc.constant('unsubscribe' as const), ...inSession, id: int(), exchange: name(128), symbol: name(128), feed: name() }, { requiredKeys: ['type', 'gateway', 'session', 'seq', 'id', 'exchange', 'symbol'] }),
  fc.record({ type: fc.constant('open' as const), ...inSession, id: int(), feed: name(), broker: name(), user: name(128) }),
  fc.record({ type: fc.constant('relogin' as const), ...inSession, id: int(), feed: name() }),
  fc.record({ type: fc.constant('bye' as const), ...inSession }),
);

// fc.record builds objects without a prototype; decoded messages are plain objects.
const sided = fc.oneof(
  adapterMessage.map((message) => ({ side: 'adapter' as Side, message: { ...message } as ControlMessage })),
  gatewayMessage.map((message) => ({ side: 'gateway' as Side, message: { ...message } as ControlMessage })),
);
const sideArb = fc.constantFrom<Side>('adapter', 'gateway');
const keyArb = fc.uint8Array({ minLength: 1, maxLength: 64 }).map((bytes) => Buffer.from(bytes));

// ---- Arbitrary objects shaped like messages ---------------------------------------------------

const anyValue: fc.Arbitrary<unknown> = fc.oneof(
  fc.constantFrom<unknown>(null, true, false, 0, -1, 1, 2, 3, 4, 0.5, -0, 2 ** 32, 2 ** 53, 1e308, '', '*', 'live', 'x', [], {}, ['b'], [1]),
  fc.integer(),
  fc.string({ maxLength: 20 }),
  fc.jsonValue({ maxDepth: 2 }),
  fc.constantFrom('a'.repeat(129), 'a'.repeat(256), 'a'.repeat(257), 'a'.repeat(2001), 'a'.repeat(64), '0'.repeat(64), 'A'.repeat(64)),
  nonce,
  fc.record({ count: fc.oneof(int(), anyNumber()), sum: fc.oneof(int(), anyNumber()) }, { requiredKeys: [] }),
  fc.constant(Array<string>(MAX_BROKERS + 1).fill('b')),
);
function anyNumber(): fc.Arbitrary<number> {
  return fc.oneof(fc.double(), fc.constantFrom(-1, 2 ** 32, 2 ** 53, -0, 0.5));
}
const ALL_TYPES = [...new Set([...Object.keys(FIELDS.gateway), ...Object.keys(FIELDS.adapter), 'hello', 'welcome', 'toString', '__proto__'])];
const ALL_FIELDS = [...new Set([...Object.values(FIELDS.gateway).flat(), ...Object.values(FIELDS.adapter).flat()])];
const shaped = fc
  .tuple(
    fc.oneof(fc.constantFrom(...ALL_TYPES), anyValue),
    fc.dictionary(fc.constantFrom(...ALL_FIELDS, 'extra', '__proto__', 'constructor'), anyValue, { maxKeys: 16 }),
    sideArb,
  )
  .map(([type, fields, side]) => ({ side, json: JSON.stringify({ ...fields, type }) }));

/** Almost-valid messages: a valid one with one field replaced, removed, or one added. */
const nearlyValid = fc
  .tuple(sided, fc.constantFrom(...ALL_FIELDS, 'extra', 'type'), fc.option(anyValue, { nil: undefined }), sideArb)
  .map(([{ side, message }, key, value, other]) => ({ side, other, json: JSON.stringify({ ...message, [key]: value }) }));

/** Built in the property (a failure prints this description, not 64 KiB). */
const hostileMessage = fc.record({
  pattern: fc.constantFrom('[', '{"a":', ' ', '"', '\\u0000', '{"type":"bye"},', '0'),
  head: fc.constantFrom('', `${'0'.repeat(64)} `, `${'0'.repeat(64)} {"type":"refused","message":`, `${'0'.repeat(64)} {"type":"reset","message":"`, '{"type":"hello","protocol":1,"session":'),
  size: fc.constantFrom(MAX_MESSAGE_BYTES, MAX_MESSAGE_BYTES + 65, MAX_MESSAGE_BYTES + 66, 4 * MAX_MESSAGE_BYTES),
  side: sideArb,
});

const HEX_LEAD = [...'0123456789abcdef{ '].map((c) => c.charCodeAt(0));

export const controlCases: FuzzCase[] = [
  fuzzCase(
    'random text and bytes never throw; a refusal says why',
    fc.property(
      fc.oneof(
        fc.string({ unit: 'binary' }),
        randomBytes(512, HEX_LEAD),
        // A well-formed prefix with random text after it: the JSON parser sees it.
        fc.tuple(fc.constantFrom(`${'0'.repeat(64)} `, `${'a'.repeat(64)} `), fc.string({ unit: 'binary' })).map(([prefix, rest]) => prefix + rest),
      ),
      sideArb,
      (data, side) => {
        assertDecoded(side, decoders[side](data));
      },
    ),
  ),
  fuzzCase(
    'every valid message round-trips (as text and as bytes) and its MAC verifies',
    fc.property(sided, keyArb, ({ side, message }, key) => {
      const frame = encodeFrame(message, key);
      const json = JSON.stringify(message);
      const expected = { ok: true, message, mac: frame.slice(0, 64), json };
      deepEqual(decoders[side](frame), expected);
      deepEqual(decoders[side](Buffer.from(frame)), expected);
      ok(authentic(key, json, frame.slice(0, 64)), 'the MAC does not verify');
      const other = Buffer.from(key);
      other[0] = other[0]! ^ 1;
      ok(!authentic(other, json, frame.slice(0, 64)), 'the MAC verifies under another key');
    }),
  ),
  fuzzCase(
    'objects shaped like messages (wrong types, out-of-range values, extra keys) are rebuilt from known fields or refused',
    fc.property(shaped, ({ side, json }) => {
      assertDecoded(side, decoders[side](framed(json)));
    }),
  ),
  fuzzCase(
    'a valid message with one field changed, removed or added is rebuilt from known fields or refused, on either side',
    fc.property(nearlyValid, ({ side, json, other }) => {
      assertDecoded(side, decoders[side](framed(json)));
      assertDecoded(other, decoders[other](framed(json)));
    }),
  ),
  fuzzCase(
    'mutated valid frames never throw',
    fc.property(mutated(sided.map(({ message }) => Buffer.from(encodeFrame(message, KEY)))), sideArb, (data, side) => {
      assertDecoded(side, decoders[side](data));
    }),
  ),
  fuzzCase(
    `JSON is accepted up to ${MAX_MESSAGE_BYTES} bytes and refused above before it is parsed, whatever it holds`,
    fc.property(sided, fc.boolean(), ({ side, message }, over) => {
      const json = JSON.stringify(message);
      const fill = MAX_MESSAGE_BYTES - Buffer.byteLength(json);
      if (!over) {
        const padded = json + ' '.repeat(fill);
        deepEqual(decoders[side](framed(padded)), { ok: true, message, mac: mac(KEY, padded), json: padded });
        return;
      }
      // One byte over, and not JSON at all: refused for its size, so never parsed.
      const padded = `${json}${' '.repeat(fill)}!`;
      const decoded = decoders[side](framed(padded));
      equal(decoded.ok, false);
      if (!decoded.ok) equal(decoded.error, `message of ${MAX_MESSAGE_BYTES + 1} bytes exceeds the ${MAX_MESSAGE_BYTES}-byte limit`);
    }),
    0.2,
  ),
  fuzzCase(
    '64 KiB hostile frames: bounded work, refused with a short reason',
    fc.property(hostileMessage, ({ pattern, head, size, side }) => {
      const data = hostile(Buffer.from(head), Buffer.from(pattern), size);
      assertDecoded(side, bounded('hostile control frame', () => decoders[side](data)));
    }),
    HOSTILE_SHARE,
  ),
];
