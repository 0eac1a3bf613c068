/**
 * Bus frames: the `@batch` codec (src/bus/batch.ts) and the path a received ZeroMQ message takes
 * (ZmqSubscriber's receive, then BusListener.handle). Contract: decodeBatch never throws, delivers
 * the well-formed entries before a fault and names the fault; nothing is allocated from a length
 * field; BatchEncoder round-trips, and refuses (RangeError, batch unchanged) a topic it cannot
 * encode; the receive path counts every message exactly once.
 */
import { deepEqual, equal, ok } from 'node:assert/strict';
import fc from 'fast-check';
import { BATCH_TOPIC_BYTES, BatchEncoder, decodeBatch } from '../../../src/bus/batch.js';
import { ZmqSubscriber } from '../../../src/bus/zeromq.js';
import { BusListener } from '../../../src/gateway/bus-listener.js';
import type { FanOut, TickRoute } from '../../../src/gateway/fan-out.js';
import { silentLogger } from '../../../src/observability/logger.js';
import { HOSTILE_SHARE, assertReason, bounded, fuzzCase, type FuzzCase } from '../harness.js';
import { type FieldLocator, hostile, mutated, randomBytes } from '../mutate.js';

const FAULTS = new Set(['truncated topic length', 'truncated topic', 'truncated payload']);

type Entry = [topic: string, payload: string];

function decodeAll(batch: Buffer): { entries: Entry[]; fault: string | null } {
  const entries: Entry[] = [];
  const fault = decodeBatch(batch, (topic, payload) => entries.push([topic, payload]));
  return { entries, fault };
}

function assertDecoded(batch: Buffer, { entries, fault }: { entries: Entry[]; fault: string | null }): void {
  ok(fault === null || FAULTS.has(fault), `fault ${fault}`);
  // Each entry takes 6 header bytes plus its text: entries and their text are bounded by the input.
  ok(entries.length * 6 <= batch.length, `${entries.length} entries from ${batch.length} bytes`);
  const text = entries.reduce((sum, [topic, payload]) => sum + topic.length + payload.length, 0);
  ok(text <= batch.length, `${text} chars of entries from ${batch.length} bytes`);
}

/** The length fields of a batch: u16 topic length and u32 payload length of each entry. */
const batchFields: FieldLocator = (buffer) => {
  const fields: ReturnType<FieldLocator> = [];
  let at = 0;
  while (at + 2 <= buffer.length) {
    fields.push({ offset: at, size: 2 });
    const topicEnd = at + 2 + buffer.readUInt16BE(at);
    if (topicEnd + 4 > buffer.length) break;
    fields.push({ offset: topicEnd, size: 4 });
    at = topicEnd + 4 + buffer.readUInt32BE(topicEnd);
  }
  return fields;
};

/** Well-formed text (no lone surrogates: those cannot survive UTF-8 by definition). */
const text = (maxLength: number) => fc.oneof(fc.string({ unit: 'binary', maxLength }), fc.string({ maxLength }));
const entries = fc.array(fc.tuple(text(40), text(200)), { maxLength: 20 });

function encode(list: readonly Entry[]): Buffer {
  const encoder = new BatchEncoder();
  for (const [topic, payload] of list) encoder.add(topic, payload);
  return encoder.take();
}

// ---- The receive path -----------------------------------------------------------------------

interface ReceivePath {
  receive(frames: Buffer[]): void;
  listener: BusListener;
  delivered: number;
  malformed: string[];
}

/**
 * ZmqSubscriber's own `receive` (frames → batch decode → handler), run against a BusListener
 * with a counting fan-out, without a socket.
 */
function receivePath(): ReceivePath {
  const path = { delivered: 0, malformed: [] as string[] } as ReceivePath;
  path.listener = new BusListener({
    fanOut: { deliver: (_route: TickRoute, _payload: string) => void path.delivered++ } as unknown as FanOut,
    logger: silentLogger(),
    onOrderUpdate: () => {},
    onCacheInvalidate: () => {},
  });
  const handler = path.listener.handle;
  const subscriber = {
    handler,
    batchEntry: (topic: string, payload: string) => handler(topic, payload, true),
    malformed: (reason: string) => void path.malformed.push(reason),
  };
  const receive = (ZmqSubscriber.prototype as unknown as { receive(this: typeof subscriber, frames: Buffer[]): void }).receive;
  path.receive = (frames) => receive.call(subscriber, frames);
  return path;
}

const topicBytes = fc.oneof(
  fc.constant(BATCH_TOPIC_BYTES),
  fc.constantFrom('NSE_RELIANCE_LTP', 'sim|NSE_INDEX_NIFTY_QUOTE', 'ZERODHA_alice_orders', 'CACHE_INVALIDATE_AUTH_alice', 'x_positions', 'bad').map((t) => Buffer.from(t)),
  randomBytes(40),
);
const payloadBytes = fc.oneof(
  fc.constantFrom('{"ltp":1}', '{"user_id":"alice"}', '{}', '[]', 'null', '', '{"timestamp":1700000000000}').map((p) => Buffer.from(p)),
  entries.map(encode),
  mutated(entries.map(encode), batchFields),
  randomBytes(200),
);
const message = fc.oneof(
  { arbitrary: fc.tuple(topicBytes, payloadBytes).map((frames) => [...frames]), weight: 5 },
  { arbitrary: fc.array(randomBytes(20), { maxLength: 4 }), weight: 1 },
);

// ---- Hostile 64 KiB batches ---------------------------------------------------------------

/** Repeated to 64 KiB in the property (a failure prints the pattern, not 64 KiB). */
const hostilePattern = fc.constantFrom(
  // 10k+ empty entries, each a zero topic length and zero payload length.
  [],
  // Length fields claiming far more than the batch holds.
  [0xff, 0xff],
  [0x00, 0x00, 0xff, 0xff, 0xff, 0xff],
  [0x00, 0x01, 0x41, 0x00, 0x00, 0x00, 0x01, 0x7b],
  [0x00, 0x01, 0x41, 0x7f, 0xff, 0xff, 0xff],
);

export const batchCases: FuzzCase[] = [
  fuzzCase(
    'random bytes never throw; the fault is named; entries are bounded by the input',
    fc.property(randomBytes(512, [0x00, 0xff]), (batch) => {
      assertDecoded(batch, decodeAll(batch));
    }),
  ),
  fuzzCase(
    'BatchEncoder then decodeBatch gives the entries back',
    fc.property(entries, (list) => {
      const batch = encode(list);
      deepEqual(decodeAll(batch), { entries: list, fault: null });
    }),
  ),
  fuzzCase(
    'BatchEncoder refuses a topic over 65535 bytes with RangeError and keeps the rest of the batch',
    fc.property(entries, fc.nat(), fc.constantFrom('x', 'é', '€', '😀'), fc.integer({ min: -2, max: 2 }), (list, pick, unit, off) => {
      // A topic of about 65535 bytes made of 1-, 2-, 3- or 4-byte characters.
      const topic = unit.repeat(Math.floor(0xffff / Buffer.byteLength(unit)) + off);
      const encoder = new BatchEncoder();
      const at = list.length === 0 ? 0 : pick % (list.length + 1);
      list.slice(0, at).forEach(([t, p]) => encoder.add(t, p));
      let refused = false;
      try {
        encoder.add(topic, '{}');
      } catch (error) {
        ok(error instanceof RangeError, `threw ${String(error)}`);
        refused = true;
      }
      equal(refused, Buffer.byteLength(topic) > 0xffff);
      list.slice(at).forEach(([t, p]) => encoder.add(t, p));
      const expected: Entry[] = refused ? list : [...list.slice(0, at), [topic, '{}'], ...list.slice(at)];
      deepEqual(decodeAll(encoder.take()), { entries: expected, fault: null });
    }),
    0.2,
  ),
  fuzzCase(
    'mutated valid batches (huge length fields, cuts, flips) never throw',
    fc.property(mutated(entries.map(encode), batchFields), (batch) => {
      assertDecoded(batch, decodeAll(batch));
    }),
  ),
  fuzzCase(
    'a cut batch delivers exactly the whole entries before the cut',
    fc.property(entries, fc.nat(), (list, cutAt) => {
      const batch = encode(list);
      const cut = batch.length === 0 ? 0 : cutAt % batch.length;
      const { entries: got, fault } = decodeAll(batch.subarray(0, cut));
      deepEqual(got, list.slice(0, got.length));
      const boundary = encode(got).length === cut;
      equal(fault === null, boundary, `cut at ${cut}, fault ${fault}`);
    }),
  ),
  fuzzCase(
    'a huge length field stops decoding at its entry, with the entries before it intact',
    fc.property(entries.filter((list) => list.length > 0), fc.nat(), fc.boolean(), (list, pick, topicField) => {
      const index = pick % list.length;
      const batch = encode(list);
      const at = encode(list.slice(0, index)).length;
      if (topicField) batch.writeUInt16BE(0xffff, at);
      else batch.writeUInt32BE(0xffffffff, at + 2 + Buffer.byteLength(list[index]![0]));
      const { entries: got, fault } = decodeAll(batch);
      deepEqual(got, list.slice(0, index));
      ok(fault !== null && FAULTS.has(fault), `fault ${fault}`);
    }),
  ),
  fuzzCase(
    'the receive path (ZmqSubscriber → BusListener) never throws and counts every message once',
    fc.property(message, (frames) => {
      const path = receivePath();
      path.receive(frames);
      const c = path.listener.counters;
      equal(c.messages, c.ticks + c.orderUpdates + c.cacheInvalidations + c.ignored + c.invalid);
      equal(path.delivered, c.ticks);
      for (const reason of path.malformed) assertReason(reason);
      const isBatch = frames.length === 2 && frames[0]!.equals(BATCH_TOPIC_BYTES);
      if (frames.length !== 2) deepEqual([c.messages, path.malformed.length], [0, 1]);
      else if (!isBatch) equal(c.messages, 1);
      else equal(c.messages, decodeAll(frames[1]!).entries.length);
    }),
  ),
  fuzzCase(
    '64 KiB hostile batches: bounded work, entries bounded by input',
    fc.property(hostilePattern, (pattern) => {
      const batch = hostile(Buffer.alloc(0), Buffer.from(pattern));
      assertDecoded(batch, bounded('hostile batch', () => decodeAll(batch)));
      const path = receivePath();
      bounded('hostile batch received', () => path.receive([BATCH_TOPIC_BYTES, batch]));
    }),
    HOSTILE_SHARE,
  ),
];

