/**
 * Dhan live-feed and 20-level depth frames (src/adapters/dhan/decoder.ts). Contract: no throw
 * for any input; a frame is a non-empty list of packets (ticks, OI, previous close, market
 * status, disconnects, depth sides, heartbeats, or invalid with a reason); each costs at least a
 * header of the frame, so a forged length cannot make more than the frame holds.
 */
import { equal, ok } from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import type { BrokerTick } from '../../../src/adapters/broker.js';
import {
  DHAN_SEGMENTS,
  type DhanPacket,
  decodeDhanDepth20,
  decodeDhanFeed,
  decodeDhanText,
  depth20Tick,
} from '../../../src/adapters/dhan/decoder.js';
import { HOSTILE_SHARE, assertReason, assertSerialisable, bounded, fuzzCase, sizeOf, type FuzzCase } from '../harness.js';
import { type FieldLocator, hostile, mutated, randomBytes } from '../mutate.js';

interface Vector {
  name: string;
  feed: 'marketfeed' | 'depth20';
  frame: 'binary' | 'text';
  direction: string;
  hex: string;
}

// The broker vectors (test/fixtures/vectors/README.md says where they come from).
const VECTORS = JSON.parse(readFileSync(new URL('../../fixtures/vectors/dhan.json', import.meta.url), 'utf8')) as Vector[];
const fromDhan = VECTORS.filter((v) => v.direction === 'server->client');
const FEED = fromDhan.filter((v) => v.feed === 'marketfeed').map((v) => Buffer.from(v.hex, 'hex'));
const DEPTH = fromDhan.filter((v) => v.feed === 'depth20').map((v) => Buffer.from(v.hex, 'hex'));
const SEGMENT_NAMES = new Set([...DHAN_SEGMENTS.values()].map((s) => s.name));
const MODES = new Set(['ltp', 'quote', 'full', 'depth20']);

function assertTick(tick: BrokerTick): void {
  equal(tick.broker, 'dhan');
  ok(/^\d+$/.test(tick.token), `token ${tick.token}`);
  ok(SEGMENT_NAMES.has(tick.exchange), `exchange ${tick.exchange}`);
  ok(MODES.has(tick.mode), `mode ${tick.mode}`);
  for (const [field, value] of Object.entries(tick)) {
    if (typeof value === 'number' && !(field === 'ltp' && tick.mode === 'depth20')) ok(Number.isFinite(value), `${field} = ${value}`);
  }
  if (tick.depth) {
    const most = tick.mode === 'depth20' ? 20 : 5;
    ok(tick.depth.buy.length <= most && tick.depth.sell.length <= most, `more than ${most} depth levels`);
    for (const level of [...tick.depth.buy, ...tick.depth.sell]) ok(Number.isFinite(level.price) && level.quantity >= 0 && level.orders !== null && level.orders >= 0);
  }
}

function assertPacket(packet: DhanPacket): void {
  switch (packet.kind) {
    case 'tick':
      assertTick(packet.tick);
      return;
    case 'invalid':
      // The adapter logs the reason whole: it must stay short whatever the frame claims.
      assertReason(packet.reason);
      return;
    case 'disconnect':
      ok(Number.isInteger(packet.code) && packet.code >= 0);
      assertReason(packet.reason);
      return;
    case 'depth20':
      ok(packet.levels.length <= 20, `${packet.levels.length} levels`);
      for (const level of packet.levels) ok(Number.isFinite(level.price) && level.quantity >= 0);
      return;
    case 'oi':
    case 'prevClose':
      ok(/^\d+$/.test(packet.token) && SEGMENT_NAMES.has(packet.exchange));
      return;
    case 'marketStatus':
    case 'heartbeat':
      return;
  }
}

function assertPackets(frame: Buffer, packets: DhanPacket[], header: number): void {
  ok(packets.length > 0, 'no packets and no reason');
  // Every packet but a trailing invalid one consumed at least a header.
  ok(packets.length <= Math.floor(frame.length / header) + 1, `${packets.length} packets from ${frame.length} bytes`);
  packets.forEach(assertPacket);
  assertSerialisable(packets, 'decoded packets');
  ok(sizeOf(packets) <= 64 * frame.length + 256, `output of ~${sizeOf(packets)} bytes from ${frame.length}`);
}

function feed(frame: Buffer): void {
  assertPackets(frame, decodeDhanFeed(frame), 8);
}

function depth(frame: Buffer): void {
  const packets = decodeDhanDepth20(frame);
  assertPackets(frame, packets, 12);
  // Any two sides pair into a valid tick or into nothing.
  const sides = packets.filter((p): p is Extract<DhanPacket, { kind: 'depth20' }> => p.kind === 'depth20');
  for (let i = 0; i + 1 < sides.length; i++) {
    const tick = depth20Tick(sides[i]!, sides[i + 1]!);
    if (tick) assertTick(tick);
  }
}

/** Each packet's u16 length: live feed at byte 1 of its header. */
const feedFields: FieldLocator = (buffer) => {
  const fields: ReturnType<FieldLocator> = [];
  let at = 0;
  while (at + 8 <= buffer.length) {
    fields.push({ offset: at + 1, size: 2 });
    const length = buffer.readUInt16LE(at + 1);
    if (length < 8) break;
    at += length;
  }
  return fields;
};

/** Depth feed: at byte 0 of its header. */
const depthFields: FieldLocator = (buffer) => {
  const fields: ReturnType<FieldLocator> = [];
  let at = 0;
  while (at + 12 <= buffer.length) {
    fields.push({ offset: at, size: 2 });
    const length = buffer.readUInt16LE(at);
    if (length < 12) break;
    at += length;
  }
  return fields;
};

const LENGTHS: Record<number, number> = { 2: 16, 4: 50, 5: 12, 6: 16, 7: 8, 8: 162, 50: 10 };
const SEGMENT_CODES = [...DHAN_SEGMENTS.keys()];

/** A live-feed packet of a known code with random body bytes (floats may be NaN: those are invalid). */
const feedPacket = fc
  .record({
    code: fc.constantFrom(2, 4, 5, 6, 7, 8, 50),
    segment: fc.constantFrom(...SEGMENT_CODES),
    securityId: fc.nat({ max: 0xffffffff }),
    ltp: fc.float({ noNaN: true, noDefaultInfinity: true, min: 0, max: 1e6 }),
    body: fc.uint8Array({ minLength: 154, maxLength: 154 }),
  })
  .map(({ code, segment, securityId, ltp, body }) => {
    const length = LENGTHS[code]!;
    const packet = Buffer.alloc(length);
    packet.writeUInt8(code, 0);
    packet.writeUInt16LE(length, 1);
    packet.writeUInt8(segment, 3);
    packet.writeUInt32LE(securityId, 4);
    Buffer.from(body).copy(packet, 8, 0, length - 8);
    if (length >= 12 && code !== 5 && code !== 50) packet.writeFloatLE(ltp, 8);
    return { code, segment, securityId, ltp, packet };
  });

/** Valid frames: the official vectors, and frames of random packets. */
const validFeed = fc.oneof(fc.constantFrom(...FEED), fc.array(feedPacket, { minLength: 1, maxLength: 6 }).map((list) => Buffer.concat(list.map((p) => p.packet))));
const validDepth = fc.constantFrom(...DEPTH);

export const dhanCases: FuzzCase[] = [
  fuzzCase(
    'live feed: random bytes never throw; every frame is packets or invalid with a reason',
    fc.property(randomBytes(400, [2, 4, 5, 6, 7, 8, 50, 0]), (frame) => feed(frame)),
  ),
  fuzzCase(
    'depth feed: random bytes never throw',
    fc.property(randomBytes(800, [0x4c, 0x0c, 0x00]), (frame) => depth(frame)),
  ),
  fuzzCase(
    'live feed: mutated vector frames (forged lengths, cuts, flips) never throw',
    fc.property(mutated(validFeed, feedFields), (frame) => feed(frame)),
  ),
  fuzzCase(
    'depth feed: mutated vector frames never throw',
    fc.property(mutated(validDepth, depthFields), (frame) => depth(frame)),
  ),
  fuzzCase(
    'live feed: frames of random packets decode packet by packet, LTP as encoded',
    fc.property(fc.array(feedPacket, { minLength: 1, maxLength: 6 }), (list) => {
      const frame = Buffer.concat(list.map((p) => p.packet));
      const packets = decodeDhanFeed(frame);
      assertPackets(frame, packets, 8);
      equal(packets.length, list.length);
      packets.forEach((packet, i) => {
        const sent = list[i]!;
        if (packet.kind === 'tick') {
          equal(packet.tick.token, String(sent.securityId));
          const decimals = DHAN_SEGMENTS.get(sent.segment)!.priceDecimals;
          ok(Math.abs(packet.tick.ltp - sent.ltp) <= 0.5 * 10 ** -decimals + 1e-9, `ltp ${packet.tick.ltp} from ${sent.ltp}`);
        } else if (packet.kind === 'invalid') {
          // Only a tick-bearing packet can be refused, for a price that is not a number.
          ok([2, 4, 8].includes(sent.code), `code ${sent.code} refused: ${packet.reason}`);
        }
      });
    }),
  ),
  fuzzCase(
    'text frames never throw and stay short',
    fc.property(fc.string({ unit: 'binary', maxLength: 5000 }), (text) => {
      const decoded = decodeDhanText(text);
      if (decoded.kind === 'invalid') assertReason(decoded.reason);
      else ok(decoded.text.length <= 501);
    }),
  ),
  fuzzCase(
    '64 KiB frames of repeated headers with forged lengths: bounded work, output bounded by input',
    fc.property(
      fc.constantFrom([0x02, 0x10, 0x00, 0x01, 0, 0, 0, 1], [0x08, 0xff, 0xff, 0x01], [0x00, 0x08, 0x00, 0x00, 0, 0, 0, 0], [0x32, 0x0a, 0x00], [0x02, 0x00, 0x00]),
      fc.boolean(),
      (pattern, isDepth) => {
        const frame = hostile(Buffer.alloc(0), Buffer.from(pattern));
        if (isDepth) bounded('hostile Dhan depth frame', () => depth(frame));
        else bounded('hostile Dhan feed frame', () => feed(frame));
      },
    ),
    HOSTILE_SHARE,
  ),
];
