/** The history store, its batches and the recorder with its real writer thread. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { BatchBuilder, exchangeTimeOf, streamRecordKey, unpackBatch } from '../../src/history/batch.js';
import { Recorder } from '../../src/history/recorder.js';
import { parseRecordSelection } from '../../src/history/selection.js';
import { dayOf } from '../../src/history/day-files.js';
import { type RecordedTick, TickStore } from '../../src/history/tick-store.js';
import { HistoryWriter, type WriterReply, type WriterRequest } from '../../src/history/writer.js';
import { silentLogger } from '../../src/observability/logger.js';
import { until } from '../helpers/broker-kit.js';
import { inlineWriter } from '../helpers/inline-writer.js';

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tickcast-history-'));
});
afterEach(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

const DAY1 = Date.parse('2026-12-03T04:00:00Z');
const DAY2 = Date.parse('2026-12-04T04:00:00Z');

function tick(feed: string, symbol: string, receivedAt: number, ltp: number, mode: 1 | 2 | 3 = 1): RecordedTick {
  const payload = JSON.stringify({ symbol, exchange: 'NSE', mode: 'ltp', ltp, ltt: receivedAt - 5 });
  return { feed, exchange: 'NSE', symbol, mode, receivedAt, exchangeTs: receivedAt - 5, payload };
}

function all(store: TickStore, query: Parameters<TickStore['read']>[0]): RecordedTick[] {
  return [...store.read(query)];
}

describe('TickStore', () => {
  it('keeps each UTC day in its own file and reads ranges back in receive order, byte for byte', () => {
    const store = new TickStore({ dir });
    const ticks = [tick('simulator', 'RELIANCE', DAY1, 2950.5), tick('zerodha.alice', 'RELIANCE', DAY1 + 1, 2950.55, 3), tick('simulator', 'TCS', DAY1 + 2, 3500), tick('simulator', 'RELIANCE', DAY2, 2960)];
    store.append(ticks.slice(0, 2));
    store.append(ticks.slice(2));
    expect(store.days().map((d) => d.day)).toEqual(['2026-12-03', '2026-12-04']);
    expect(all(store, { from: 0, to: DAY2 + 1 })).toEqual(ticks);
    expect(all(store, { from: DAY1 + 1, to: DAY2 })).toEqual(ticks.slice(1, 3)); // end excluded
    expect(all(store, { from: 0, to: DAY2 + 1, streams: [{ exchange: 'NSE', symbol: 'RELIANCE' }] })).toEqual([ticks[0], ticks[1], ticks[3]]);
    expect(all(store, { from: 0, to: DAY2 + 1, streams: [{ feed: 'simulator', exchange: 'NSE', symbol: 'RELIANCE' }] })).toEqual([ticks[0], ticks[3]]);
    expect(all(store, { from: 0, to: DAY2 + 1, feeds: ['zerodha.alice'] })).toEqual([ticks[1]]);
    expect(all(store, { from: 0, to: DAY2 + 1, modes: [3] })).toEqual([ticks[1]]);
    expect(all(store, { from: DAY2, to: DAY1 })).toEqual([]); // an empty range is empty, not an error
    store.close();
    // A second reader (another process) sees the same, in the same order.
    expect(all(new TickStore({ dir, readonly: true }), { from: 0, to: DAY2 + 1 })).toEqual(ticks);
  });

  it('keeps ticks recorded while the clock jumped back, in the order received, on every read', () => {
    const store = new TickStore({ dir });
    const hour = 3_600_000;
    // 05:00, 05:00:01, then the clock is set back an hour (04:00:02), and then across midnight back (the day before).
    const at = [DAY1 + hour, DAY1 + hour + 1000, DAY1 + 2000, DAY1 + 3000, DAY1 - 5 * hour];
    store.append(at.map((t, i) => tick('simulator', 'RELIANCE', t, 100 + i)));
    store.close();
    const reader = new TickStore({ dir, readonly: true });
    const prices = (from: number, to: number) => [...reader.read({ from, to })].map((t) => JSON.parse(t.payload).ltp as number);
    // Within a day, the order received; the tick that fell into the day before is that day's.
    expect(prices(DAY1 - 6 * hour, DAY1 + 2 * hour)).toEqual([104, 100, 101, 102, 103]);
    expect(prices(DAY1 - 6 * hour, DAY1 + 2 * hour)).toEqual(prices(DAY1 - 6 * hour, DAY1 + 2 * hour));
    // A range is by receive time, whatever the order: the hour before the jump holds only the jumped ticks.
    expect(prices(DAY1, DAY1 + hour)).toEqual([102, 103]);
    expect(reader.days().map((d) => d.day)).toEqual(['2026-12-02', '2026-12-03']);
  });

  it('reports a damaged day and reads the others', () => {
    const store = new TickStore({ dir });
    store.append([tick('simulator', 'A', DAY1, 1), tick('simulator', 'A', DAY2, 2)]);
    store.close();
    const day1 = store.days()[0]!.file;
    fs.writeFileSync(day1, 'this is not a database at all, just some text that is long enough to look like a header');
    const problems: string[] = [];
    const read = [...new TickStore({ dir, readonly: true }).read({ from: 0, to: DAY2 + 1 }, (p) => problems.push(`${p.day}: ${p.message}`))];
    expect(read.map((t) => t.receivedAt)).toEqual([DAY2]);
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(/^2026-12-03: the history of 2026-12-03 cannot be (opened|read): file is not a database/);
  });

  it('deletes whole days by age and by size, never today', () => {
    const store = new TickStore({ dir });
    const day0 = DAY1 - 86_400_000;
    store.append([tick('s', 'A', day0, 1), tick('s', 'A', DAY1, 2), tick('s', 'A', DAY2, 3)]);
    expect(store.prune({ now: DAY2, maxAgeMs: 2 * 86_400_000 })).toEqual([]);
    expect(store.prune({ now: DAY2, maxAgeMs: 86_400_000 })).toEqual([dayOf(day0)]);
    expect(store.prune({ now: DAY2, maxBytes: 1 })).toEqual(['2026-12-03']);
    expect(store.days().map((d) => d.day)).toEqual(['2026-12-04']);
    expect(fs.readdirSync(dir).filter((f) => f.startsWith('ticks-2026-12-03'))).toEqual([]);
    expect(all(store, { from: 0, to: DAY2 + 1 }).map((t) => t.receivedAt)).toEqual([DAY2]);
    store.close();
  });
});

describe('batches', () => {
  it('round-trips ticks as columns and reads exchange times from payloads', () => {
    const builder = new BatchBuilder(3);
    builder.add(streamRecordKey('simulator', 'NSE', 'RELIANCE'), 1, DAY1, '{"ltp":1,"ltt":1764734400123}');
    builder.add(streamRecordKey('shared', 'NSE_INDEX', 'NIFTY'), 2, DAY1 + 1, '{"ltp":2,"exchange_timestamp":1764734400}');
    builder.add(streamRecordKey('simulator', 'NSE', 'RELIANCE'), 3, DAY1 + 2, '{"ltp":3}');
    expect(builder.full).toBe(true);
    const batch = builder.take(7);
    expect(builder.count).toBe(0);
    expect(batch.streams).toHaveLength(2);
    expect(unpackBatch(batch)).toEqual([
      { feed: 'simulator', exchange: 'NSE', symbol: 'RELIANCE', mode: 1, receivedAt: DAY1, exchangeTs: 1764734400123, payload: '{"ltp":1,"ltt":1764734400123}' },
      { feed: 'shared', exchange: 'NSE_INDEX', symbol: 'NIFTY', mode: 2, receivedAt: DAY1 + 1, exchangeTs: 1764734400000, payload: '{"ltp":2,"exchange_timestamp":1764734400}' },
      { feed: 'simulator', exchange: 'NSE', symbol: 'RELIANCE', mode: 3, receivedAt: DAY1 + 2, exchangeTs: null, payload: '{"ltp":3}' },
    ]);
  });

  it('takes no exchange time from what is not one', () => {
    for (const payload of ['not json', '[1]', 'null', '{"ltt":"10:15:00"}', '{"ltt":-1}', '{"timestamp":1764734400123}']) expect(exchangeTimeOf(payload)).toBeNull();
    expect(exchangeTimeOf('{"last_trade_time":"1764734400"}')).toBe(1764734400000);
    // As Python's json.dumps writes it (OpenAlgo's publishers), and after a field that is not a time.
    expect(exchangeTimeOf('{"symbol": "RELIANCE", "ltt": 1764734400123, "ltp": 1402.7}')).toBe(1764734400123);
    expect(exchangeTimeOf(' {"exchange_timestamp": "2026-12-03 10:15:00", "last_trade_time": 1764734400}')).toBe(1764734400000);
    expect(exchangeTimeOf('{"ltp":1,"exchange_time":1.7647344e12}')).toBe(1764734400000);
  });
});

describe('HistoryWriter', () => {
  it('writes batches and tells a full disk from other failures', async () => {
    const writer = new HistoryWriter({ kind: 'sqlite', dir });
    const builder = new BatchBuilder(10);
    builder.add(streamRecordKey('s', 'NSE', 'A'), 1, DAY1, '{"ltp":1}');
    expect(await writer.handle({ type: 'batch', batch: builder.take(1) })).toEqual({ type: 'written', id: 1, ticks: 1 });
    expect(await writer.handle({ type: 'size' })).toMatchObject({ type: 'size', days: 1, oldest: '2026-12-03', newest: '2026-12-03' });
    expect(await writer.handle({ type: 'close' })).toEqual({ type: 'closed' });
  });
});

describe('Recorder', () => {
  const selection = (raw: string) => {
    const parsed = parseRecordSelection(raw);
    if (!parsed.ok) throw new Error(parsed.error);
    return parsed.selection;
  };
  let now = DAY1;
  const clock = { now: () => now };

  it('records through its writer thread what the selection wants, in order, and writes the rest on close', async () => {
    const recorder = new Recorder({ selection: selection('simulator'), location: { kind: 'sqlite', dir }, clock, logger: silentLogger(), queueTicks: 100_000, maxAgeMs: 0, maxBytes: 0, batchTicks: 100, flushMs: 10_000 });
    expect(recorder.wants('simulator', 'NSE', 'A')).toBe(true);
    expect(recorder.wants('zerodha.alice', 'NSE', 'A')).toBe(false);
    for (let i = 0; i < 250; i++) {
      now = DAY1 + i;
      recorder.record('simulator', 'NSE', i % 2 ? 'A' : 'B', 2, JSON.stringify({ ltp: i }));
    }
    await until(() => recorder.snapshot().written === 200, 'two full batches written');
    expect(recorder.snapshot()).toMatchObject({ state: 'recording', recorded: 250, shed: 0, queued: 50 });
    await recorder.close();
    const read = [...new TickStore({ dir, readonly: true }).read({ from: 0, to: DAY2 })];
    expect(read.map((t) => JSON.parse(t.payload).ltp)).toEqual([...Array(250).keys()]);
    expect(read[1]).toMatchObject({ feed: 'simulator', exchange: 'NSE', symbol: 'A', mode: 2, receivedAt: DAY1 + 1 });
  });

  it('sheds past its queue instead of waiting, and counts it', async () => {
    let hold = true;
    const held: WriterRequest[] = [];
    const writer = inlineWriter<WriterRequest, WriterReply>((request) => {
      if (request.type === 'batch' && hold) held.push(request);
      return request.type === 'batch' ? { type: 'written', id: request.batch.id, ticks: hold ? 0 : request.batch.count } : { type: 'size', bytes: 0, days: 0 };
    });
    const recorder = new Recorder({ selection: selection('all'), location: { kind: 'sqlite', dir }, clock, logger: silentLogger(), queueTicks: 1000, maxAgeMs: 0, maxBytes: 0, batchTicks: 100, startWriter: () => writer });
    for (let i = 0; i < 1500; i++) recorder.record('simulator', 'NSE', 'A', 1, '{"ltp":1}');
    expect(recorder.snapshot()).toMatchObject({ recorded: 1000, shed: 500 });
    hold = false;
    void recorder.close();
  });

  const faults = [
    { fault: 'full' as const, message: 'SQLITE_FULL: database or disk is full', reason: 'the disk of the history store is full (SQLITE_FULL: database or disk is full)' },
    {
      fault: 'unreachable' as const,
      message: 'the history database at postgres://rec:***@db:5432/h cannot be reached: connect ECONNREFUSED',
      reason: 'the history store cannot be reached (the history database at postgres://rec:***@db:5432/h cannot be reached: connect ECONNREFUSED)',
    },
  ];
  for (const { fault, message, reason } of faults) {
    it(`stops recording on a fault (${fault}), says why, and tries again later`, async () => {
      let failing = true;
      const writer = inlineWriter<WriterRequest, WriterReply>((request) =>
        request.type === 'batch'
          ? failing
            ? { type: 'failed', id: request.batch.id, ticks: request.batch.count, fault, message }
            : { type: 'written', id: request.batch.id, ticks: request.batch.count }
          : request.type === 'close'
            ? { type: 'closed' }
            : { type: 'size', bytes: 0, days: 0 },
      );
      const recorder = new Recorder({ selection: selection('all'), location: { kind: 'sqlite', dir }, clock, logger: silentLogger(), queueTicks: 1000, maxAgeMs: 0, maxBytes: 0, batchTicks: 10, retryMs: 50, startWriter: () => writer });
      for (let i = 0; i < 10; i++) recorder.record('simulator', 'NSE', 'A', 1, '{"ltp":1}');
      await until(() => recorder.snapshot().state === 'stopped', 'recording to stop');
      expect(recorder.snapshot()).toMatchObject({ state: 'stopped', reason, failed: 10 });
      // Stopped: nothing more is sent to the writer until the retry.
      const batches = writer.requests.filter((r) => r.type === 'batch').length;
      for (let i = 0; i < 20; i++) recorder.record('simulator', 'NSE', 'A', 1, '{"ltp":1}');
      expect(recorder.snapshot().shed).toBe(20);
      expect(writer.requests.filter((r) => r.type === 'batch').length).toBe(batches);
      failing = false;
      await until(() => recorder.snapshot().state === 'recording', 'recording to resume');
      for (let i = 0; i < 10; i++) recorder.record('simulator', 'NSE', 'A', 1, '{"ltp":1}');
      await until(() => recorder.snapshot().written === 10, 'a batch written after the retry');
      await recorder.close();
    });
  }

  it('a failure that is no fault is counted and logged, and recording goes on', async () => {
    const writer = inlineWriter<WriterRequest, WriterReply>((request) =>
      request.type === 'batch'
        ? { type: 'failed', id: request.batch.id, ticks: request.batch.count, message: 'a constraint failed' }
        : request.type === 'close'
          ? { type: 'closed' }
          : { type: 'size', bytes: 0, days: 0 },
    );
    const recorder = new Recorder({ selection: selection('all'), location: { kind: 'sqlite', dir }, clock, logger: silentLogger(), queueTicks: 1000, maxAgeMs: 0, maxBytes: 0, batchTicks: 10, retryMs: 50, startWriter: () => writer });
    for (let i = 0; i < 20; i++) recorder.record('simulator', 'NSE', 'A', 1, '{"ltp":1}');
    await until(() => recorder.snapshot().failed === 20, 'two batches failed');
    expect(recorder.snapshot()).toMatchObject({ state: 'recording', shed: 0 });
    await recorder.close();
  });
});
