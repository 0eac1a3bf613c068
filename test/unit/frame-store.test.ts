/** The raw broker frames: their batches, the day-file store, the writer and the recorder (with its real thread and with stand-ins). */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type BatchSlot, FRAME_BINARY, FRAME_OUT, FrameBatchBuilder, type FrameConnectionInfo, unpackFrames } from '../../src/history/frame-batch.js';
import { FrameRecorder } from '../../src/history/frame-recorder.js';
import { FrameStore } from '../../src/history/frame-store.js';
import { FrameWriter, type FrameWriterReply, type FrameWriterRequest } from '../../src/history/frame-writer.js';
import { createLogger, silentLogger } from '../../src/observability/logger.js';
import { until } from '../helpers/broker-kit.js';
import { inlineWriter } from '../helpers/inline-writer.js';

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tickcast-frames-'));
});
afterEach(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

const DAY1 = Date.parse('2026-12-03T04:00:00Z');
const DAY2 = Date.parse('2026-12-04T04:00:00Z');
const KITE: FrameConnectionInfo = { id: 'zerodha.alice#1', broker: 'zerodha', feed: 'zerodha.alice', socket: 'Zerodha ticker', openedAt: DAY1 - 1000 };
const DHAN: FrameConnectionInfo = { id: 'dhan.bob#1', broker: 'dhan', feed: 'dhan.bob', socket: 'Dhan market feed', openedAt: DAY1 - 500 };

/** Every byte value, and a heartbeat of one zero byte: what a text column would mangle. */
const BINARY = Buffer.from([...Array(256).keys()]);
const HEARTBEAT = Buffer.from([0]);

const slot = (info: FrameConnectionInfo): BatchSlot => ({ info, batch: -1, index: 0 });

describe('frame batches', () => {
  it('round-trip messages byte for byte, text and binary, in and out, naming each connection once', () => {
    const builder = new FrameBatchBuilder(10, 64);
    const kite = slot(KITE);
    const dhan = slot(DHAN);
    builder.add(kite, FRAME_BINARY, DAY1, BINARY); // larger than the slab: grows it
    builder.add(kite, FRAME_OUT, DAY1 + 1, '{"a":"subscribe","v":[738561]} ₹');
    builder.add(dhan, FRAME_BINARY, DAY1 + 2, HEARTBEAT);
    builder.add(kite, FRAME_BINARY, DAY1 + 3, Buffer.alloc(0));
    const batch = builder.take(7);
    expect(batch.connections).toEqual([KITE, DHAN]);
    const frames = unpackFrames(batch);
    expect(frames.map((f) => [f.connection.id, f.direction, f.binary, f.receivedAt])).toEqual([
      [KITE.id, 'in', true, DAY1],
      [KITE.id, 'out', false, DAY1 + 1],
      [DHAN.id, 'in', true, DAY1 + 2],
      [KITE.id, 'in', true, DAY1 + 3],
    ]);
    expect(frames[0]!.data.equals(BINARY)).toBe(true);
    expect(frames[1]!.data.toString('utf8')).toBe('{"a":"subscribe","v":[738561]} ₹');
    expect(frames[2]!.data.equals(HEARTBEAT)).toBe(true);
    expect(frames[3]!.data.length).toBe(0);
    // The next batch names its connections afresh.
    builder.add(dhan, 0, DAY1 + 4, HEARTBEAT);
    expect(builder.take(8).connections).toEqual([DHAN]);
  });

  it('copy the message: changing the caller\'s buffer afterwards changes nothing recorded', () => {
    const builder = new FrameBatchBuilder(10, 1024);
    const data = Buffer.from([1, 2, 3]);
    builder.add(slot(KITE), FRAME_BINARY, DAY1, data);
    data[0] = 9;
    expect([...unpackFrames(builder.take(1))[0]!.data]).toEqual([1, 2, 3]);
  });
});

function writeFrames(store: FrameStore, frames: Array<[FrameConnectionInfo, number, Buffer | string, number?]>): void {
  const builder = new FrameBatchBuilder(1000, 1 << 20);
  const slots = new Map<FrameConnectionInfo, BatchSlot>();
  for (const [info, at, data, flags] of frames) {
    if (!slots.has(info)) slots.set(info, slot(info));
    builder.add(slots.get(info)!, flags ?? (typeof data === 'string' ? 0 : FRAME_BINARY), at, data);
  }
  store.append(unpackFrames(builder.take(1)));
}

describe('FrameStore', () => {
  it('keeps each UTC day in its own file and reads ranges back in order, byte for byte', () => {
    const store = new FrameStore({ dir });
    writeFrames(store, [
      [KITE, DAY1, BINARY],
      [KITE, DAY1 + 1, '{"a":"mode","v":["full",[738561]]}', FRAME_OUT],
      [DHAN, DAY1 + 2, HEARTBEAT],
      [KITE, DAY2, '{"type":"order","data":{}}'],
    ]);
    store.close();
    expect(fs.readdirSync(dir).filter((f) => f.endsWith('.db')).sort()).toEqual(['frames-2026-12-03.db', 'frames-2026-12-04.db']);
    const reader = new FrameStore({ dir, readonly: true });
    const read = [...reader.read({ from: 0, to: DAY2 + 1 })];
    expect(read.map((f) => [f.connection, f.direction, f.binary, f.receivedAt])).toEqual([
      [KITE, 'in', true, DAY1],
      [KITE, 'out', false, DAY1 + 1],
      [DHAN, 'in', true, DAY1 + 2],
      [KITE, 'in', false, DAY2],
    ]);
    expect(read[0]!.data.equals(BINARY)).toBe(true);
    expect(read[2]!.data.equals(HEARTBEAT)).toBe(true);
    expect(read[3]!.data.toString()).toBe('{"type":"order","data":{}}');
    // Filters: one day, a connection, a broker, a direction.
    expect([...reader.read({ from: DAY2 - 1000, to: DAY2 + 1 })].map((f) => f.receivedAt)).toEqual([DAY2]);
    expect([...reader.read({ from: 0, to: DAY2 + 1, connections: [DHAN.id] })].map((f) => f.receivedAt)).toEqual([DAY1 + 2]);
    expect([...reader.read({ from: 0, to: DAY2 + 1, brokers: ['zerodha'], direction: 'in' })].map((f) => f.receivedAt)).toEqual([DAY1, DAY2]);
    // Connections summed over their days.
    expect(reader.connections({ from: 0, to: DAY2 + 1 })).toEqual([
      { ...KITE, framesIn: 2, framesOut: 1, bytes: 256 + Buffer.byteLength('{"a":"mode","v":["full",[738561]]}') + Buffer.byteLength('{"type":"order","data":{}}'), first: DAY1, last: DAY2 },
      { ...DHAN, framesIn: 1, framesOut: 0, bytes: 1, first: DAY1 + 2, last: DAY1 + 2 },
    ]);
  });

  it('tells apart two sockets of one name opened at different times (a restart numbers from 1 again)', () => {
    const store = new FrameStore({ dir });
    const again = { ...KITE, openedAt: DAY1 + 5000 };
    writeFrames(store, [[KITE, DAY1, HEARTBEAT], [again, DAY1 + 6000, HEARTBEAT], [again, DAY1 + 7000, HEARTBEAT]]);
    expect(store.connections({ from: 0, to: DAY2 }).map((c) => [c.id, c.openedAt, c.framesIn])).toEqual([
      [KITE.id, KITE.openedAt, 1],
      [KITE.id, again.openedAt, 2],
    ]);
    store.close();
  });

  it('reports a damaged day and reads the others', () => {
    const store = new FrameStore({ dir });
    writeFrames(store, [[KITE, DAY1, BINARY], [KITE, DAY2, HEARTBEAT]]);
    store.close();
    fs.writeFileSync(path.join(dir, 'frames-2026-12-03.db'), 'this is not a database at all, just some text that is long enough to look like a header');
    for (const suffix of ['-wal', '-shm']) fs.rmSync(path.join(dir, `frames-2026-12-03.db${suffix}`), { force: true });
    const reader = new FrameStore({ dir, readonly: true });
    const problems: string[] = [];
    expect([...reader.read({ from: 0, to: DAY2 + 1 }, (p) => problems.push(p.day))].map((f) => f.receivedAt)).toEqual([DAY2]);
    expect(reader.connections({ from: 0, to: DAY2 + 1 }, (p) => problems.push(p.day)).map((c) => c.framesIn)).toEqual([1]);
    expect(problems).toEqual(['2026-12-03', '2026-12-03']);
  });

  it('deletes whole days by age and by size, never today, and leaves the tick history alone', () => {
    const store = new FrameStore({ dir });
    const day = 86_400_000;
    writeFrames(store, [[KITE, DAY1, BINARY], [KITE, DAY1 + day, BINARY], [KITE, DAY1 + 2 * day, BINARY]]);
    fs.writeFileSync(path.join(dir, 'ticks-2026-12-03.db'), '');
    expect(store.prune({ now: DAY1 + 2 * day, maxAgeMs: day })).toEqual(['2026-12-03']);
    expect(store.days().map((d) => d.day)).toEqual(['2026-12-04', '2026-12-05']);
    expect(store.prune({ now: DAY1 + 2 * day, maxBytes: 1 })).toEqual(['2026-12-04']);
    expect(store.days().map((d) => d.day)).toEqual(['2026-12-05']);
    expect(fs.existsSync(path.join(dir, 'ticks-2026-12-03.db'))).toBe(true);
    store.close();
  });
});

describe('FrameWriter', () => {
  it('writes batches and reports the days on disk', () => {
    const writer = new FrameWriter(dir);
    const builder = new FrameBatchBuilder(10, 1024);
    builder.add(slot(KITE), FRAME_BINARY, DAY1, BINARY);
    expect(writer.handle({ type: 'batch', batch: builder.take(1) })).toEqual({ type: 'written', id: 1, frames: 1, bytes: 256 });
    expect(writer.handle({ type: 'size' })).toMatchObject({ type: 'size', days: 1 });
    expect(writer.handle({ type: 'close' })).toEqual({ type: 'closed' });
  });
});

const other = (request: FrameWriterRequest): FrameWriterReply =>
  request.type === 'close' ? { type: 'closed' } : request.type === 'prune' ? { type: 'pruned', days: [] } : { type: 'size', bytes: 0, days: 0 };

describe('FrameRecorder', () => {
  let now = DAY1;
  const clock = { now: () => now };

  it('records the brokers selected through its writer thread, in batches, and writes the rest on close', async () => {
    const recorder = new FrameRecorder({ brokers: ['zerodha'], dir, clock, logger: silentLogger(), maxAgeMs: 0, maxBytes: 0, batchFrames: 100, flushMs: 10_000 });
    expect(recorder.open('dhan', 'dhan.bob', 'Dhan market feed')).toBeUndefined();
    const first = recorder.open('zerodha', 'zerodha.alice', 'Zerodha ticker')!;
    const second = recorder.open('zerodha', 'zerodha.alice', 'Zerodha ticker')!;
    expect([first.id, second.id]).toEqual(['zerodha.alice#1', 'zerodha.alice#2']);
    for (let i = 0; i < 250; i++) {
      now = DAY1 + i;
      const data = Buffer.alloc(4);
      data.writeUInt32BE(i);
      (i % 2 ? first : second).frame(false, true, data);
      data.fill(0xff); // the session's buffer is its own again once frame() returns
    }
    first.frame(true, false, '{"a":"subscribe","v":[1]}');
    await until(() => recorder.snapshot().written === 200, 'two full batches written');
    expect(recorder.snapshot()).toMatchObject({ state: 'recording', recorded: 251, shed: 0, connections: 2, recordedBytes: 1000 + 25, queuedBytes: 200 + 25 });
    await recorder.close();
    const read = [...new FrameStore({ dir, readonly: true }).read({ from: 0, to: DAY2 })];
    expect(read.slice(0, 250).map((f) => f.data.readUInt32BE(0))).toEqual([...Array(250).keys()]);
    expect(read.slice(0, 2).map((f) => f.connection.id)).toEqual(['zerodha.alice#2', 'zerodha.alice#1']);
    expect(read[250]).toMatchObject({ direction: 'out', binary: false });
    expect(read[250]!.data.toString()).toBe('{"a":"subscribe","v":[1]}');
  });

  it('sheds past its queue of bytes instead of waiting, counts it and logs it at most every 10 s', async () => {
    const writer = inlineWriter<FrameWriterRequest, FrameWriterReply>((request) => (request.type === 'batch' ? { type: 'written', id: request.batch.id, frames: 0, bytes: 0 } : other(request)));
    const lines: string[] = [];
    const logger = createLogger('warn', { write: (line: string) => void lines.push(line) } as unknown as NodeJS.WritableStream);
    const recorder = new FrameRecorder({ brokers: 'all', dir, clock, logger, maxAgeMs: 0, maxBytes: 0, queueBytes: 1000, batchFrames: 10, startWriter: () => writer });
    const socket = recorder.open('angel', 'angel.carol', 'Angel SmartStream')!;
    now = DAY1;
    for (let i = 0; i < 150; i++) socket.frame(false, true, Buffer.alloc(10));
    expect(recorder.snapshot()).toMatchObject({ recorded: 100, shed: 50 });
    now = DAY1 + 11_000;
    socket.frame(false, true, Buffer.alloc(10));
    expect(lines.filter((line) => line.includes('frame writer is behind'))).toHaveLength(2);
    void recorder.close();
  });

  it('stops recording on a full disk, says why, and tries again later', async () => {
    let failing = true;
    const writer = inlineWriter<FrameWriterRequest, FrameWriterReply>((request) =>
      request.type === 'batch'
        ? failing
          ? { type: 'failed', id: request.batch.id, frames: request.batch.count, bytes: request.batch.bytes, full: true, message: 'SQLITE_FULL: database or disk is full' }
          : { type: 'written', id: request.batch.id, frames: request.batch.count, bytes: request.batch.bytes }
        : other(request),
    );
    const recorder = new FrameRecorder({ brokers: 'all', dir, clock, logger: silentLogger(), maxAgeMs: 0, maxBytes: 0, batchFrames: 10, retryMs: 50, startWriter: () => writer });
    const socket = recorder.open('dhan', 'dhan.bob', 'Dhan market feed')!;
    for (let i = 0; i < 10; i++) socket.frame(false, true, HEARTBEAT);
    await until(() => recorder.snapshot().state === 'stopped', 'recording to stop');
    expect(recorder.snapshot()).toMatchObject({ state: 'stopped', reason: 'the disk of the frame store is full (SQLITE_FULL: database or disk is full)', failed: 10, queuedBytes: 0 });
    const batches = writer.requests.filter((r) => r.type === 'batch').length;
    for (let i = 0; i < 20; i++) socket.frame(false, true, HEARTBEAT);
    expect(recorder.snapshot().shed).toBe(20);
    expect(writer.requests.filter((r) => r.type === 'batch').length).toBe(batches);
    // Retention is asked to free room at once.
    expect(writer.requests.filter((r) => r.type === 'prune').length).toBe(2);
    failing = false;
    await until(() => recorder.snapshot().state === 'recording', 'recording to resume');
    for (let i = 0; i < 10; i++) socket.frame(false, true, HEARTBEAT);
    await until(() => recorder.snapshot().written === 10, 'a batch written after the retry');
    await recorder.close();
  });
});
