/**
 * Lower-mode payloads (src/protocol/mode-payload.ts). Contract: projectPayload never throws,
 * whatever the publisher sent; what it returns for a real JSON object is a JSON object holding
 * exactly the kept members with their values unchanged, and nothing longer than the input;
 * topLevelMembers agrees with JSON.parse on every object.
 */
import { deepEqual, equal, ok } from 'node:assert/strict';
import fc from 'fast-check';
import type { Mode } from '../../../src/protocol/modes.js';
import { projectPayload, topLevelMembers } from '../../../src/protocol/mode-payload.js';
import { HOSTILE_SHARE, bounded, fuzzCase, type FuzzCase } from '../harness.js';
import { HOSTILE_BYTES, mutated } from '../mutate.js';

const LTP_KEYS = new Set(['symbol', 'exchange', 'token', 'mode', 'ltp', 'ltt', 'timestamp']);
const lower = fc.constantFrom<[Mode, Mode]>([3, 1], [3, 2], [2, 1]);
const broker = fc.constantFrom('zerodha', 'angel', 'simulator', 'fyers', '');
/** Objects shaped like tick payloads, with the keys projections look at. */
const payload = fc.dictionary(
  fc.oneof(fc.constantFrom('ltp', 'mode', 'depth', 'oi', 'volume', 'symbol', 'timestamp', 'upper_circuit'), fc.string()),
  fc.jsonValue(),
);

export const modePayloadCases: FuzzCase[] = [
  fuzzCase(
    'random and mutated text never throws; any projection is no longer than the input',
    fc.property(fc.oneof(fc.string({ unit: 'binary', maxLength: 300 }), mutated(payload.map((o) => Buffer.from(JSON.stringify(o)))).map((b) => b.toString('utf8'))), lower, broker, (text, [from, to], name) => {
      const projected = projectPayload(text, from, to, name);
      if (projected !== undefined) ok(projected.length <= text.length + 2, 'projection longer than its input');
    }),
  ),
  fuzzCase(
    'a JSON object projects to an object of its kept members, values unchanged',
    fc.property(payload, fc.constantFrom(0, 2), lower, broker, (object, indent, [from, to], name) => {
      const text = JSON.stringify(object, null, indent);
      const projected = projectPayload(text, from, to, name);
      const sent = JSON.parse(text) as Record<string, unknown>; // the object as it travels (-0 is 0)
      const kept = Object.entries(sent).filter(([key]) => (to === 1 ? LTP_KEYS.has(key) : key !== 'depth' && !(name === 'angel' && ['oi', 'upper_circuit', 'lower_circuit'].includes(key))));
      if (to === 1 && !Object.hasOwn(sent, 'ltp')) return equal(projected, undefined);
      const result = JSON.parse(projected!) as Record<string, unknown>;
      deepEqual(Object.keys(result), kept.map(([key]) => key));
      for (const [key, value] of kept) if (key !== 'mode') deepEqual(result[key], value);
    }),
  ),
  fuzzCase(
    'topLevelMembers agrees with JSON.parse',
    fc.property(fc.dictionary(fc.string(), fc.jsonValue()), (object) => {
      const text = JSON.stringify(object);
      const members = topLevelMembers(text)!;
      deepEqual(Object.fromEntries(members.map((m) => [m.key, JSON.parse(m.value)])), JSON.parse(text));
    }),
  ),
  fuzzCase(
    '64 KiB hostile payloads: bounded work',
    fc.property(fc.constantFrom('{"a":', '[', '"\\\\', '{"ltp":{"x":[', ' '), (pattern) => {
      const text = '{"ltp":1,"depth":' + pattern.repeat(Math.ceil(HOSTILE_BYTES / pattern.length));
      bounded('hostile payload', () => projectPayload(text, 3, 1, 'zerodha'));
    }),
    HOSTILE_SHARE,
  ),
];
