/**
 * The stream list's summary (history/summary.ts): what it answers equals what the store holds,
 * sealed days are summed once (again only when their bytes change), today is read only past its
 * sealed minutes; the thread side (summaries.ts) runs one summary at a time and shares it; the
 * HTTP answer (history-streams.ts) lists only the caller's feed.
 */
import fs from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { SqliteHistoryStore } from '../../src/history/sqlite-store.js';
import type { HistoryStore } from '../../src/history/store.js';
import { HistorySummaries, type SummaryPort } from '../../src/history/summaries.js';
import { type StoreSummary, SummaryCache, type SummaryMessage, type SummaryRequest } from '../../src/history/summary.js';
import { type RecordedTick, TickStore } from '../../src/history/tick-store.js';
import { parseStreamFilter, streamsAnswer } from '../../src/http/history-streams.js';
import { waitUntil } from '../helpers/client.js';

const dirs: string[] = [];
function tempDir(): string {
  const dir = fs.mkdtempSync(join(tmpdir(), 'tickcast-summary-'));
  dirs.push(dir);
  return dir;
}
afterEach(() => {
  for (const dir of dirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
});

const tick = (feed: string, symbol: string, receivedAt: number, mode: 1 | 2 | 3 = 2): RecordedTick => ({ feed, exchange: 'NSE', symbol, mode, receivedAt, exchangeTs: null, payload: '{"ltp":1.5}' });
const at = (iso: string): number => Date.parse(iso);

/** The truth: the store's own summary of everything, with the rate over the minute before `now`. */
async function truth(store: HistoryStore, now: number): Promise<Array<Record<string, unknown>>> {
  const all = await store.streams({ from: 0, to: now + 86_400_000 });
  const recent = await store.streams({ from: now - 60_000, to: now + 86_400_000 });
  return all.map((s) => ({ ...s, rate: (recent.find((r) => r.feed === s.feed && r.symbol === s.symbol)?.ticks ?? 0) / (Math.min(60_000, Math.max(1000, now - s.first)) / 1000) }));
}

/** A store whose reads are counted (the ranges asked for). */
function counted(store: HistoryStore): { store: HistoryStore; ranges: Array<[number, number]> } {
  const ranges: Array<[number, number]> = [];
  return {
    ranges,
    store: Object.assign(Object.create(store) as HistoryStore, {
      streams: (query: { from: number; to: number }, onProblem?: never) => {
        ranges.push([query.from, query.to]);
        return store.streams(query, onProblem);
      },
      days: () => store.days(),
    }),
  };
}

describe('SummaryCache', () => {
  it('answers what the store holds: every day summed, the rate over the last minute', async () => {
    const dir = tempDir();
    const writer = new TickStore({ dir });
    const now = at('2024-05-03T10:00:00Z');
    writer.append([
      tick('simulator', 'RELIANCE', at('2024-05-01T04:00:00Z'), 3),
      tick('zerodha.alice', 'RELIANCE', at('2024-05-01T04:00:01Z')),
      tick('simulator', 'RELIANCE', at('2024-05-02T05:00:00Z'), 1),
      tick('simulator', 'TCS', at('2024-05-02T23:59:59Z')),
      ...Array.from({ length: 30 }, (_, i) => tick('simulator', 'RELIANCE', now - 200_000 + i * 5000)),
    ]);
    writer.close();
    const store = new SqliteHistoryStore(dir, { readonly: true });
    const summary = await new SummaryCache(store).summarise(now);
    expect(summary.streams).toEqual(await truth(store, now));
    expect(summary.streams.map((s) => `${s.feed}/${s.symbol}`)).toEqual(['simulator/RELIANCE', 'simulator/TCS', 'zerodha.alice/RELIANCE']);
    const reliance = summary.streams[0]!;
    expect(reliance).toMatchObject({ ticks: 32, first: at('2024-05-01T04:00:00Z'), last: now - 200_000 + 29 * 5000, maxMode: 3 });
    // 2 of the 30 recent ticks (one every 5 s, the last 55 s ago) fall in the last 60 s.
    expect(reliance.rate).toBeCloseTo(2 / 60, 6);
    expect(summary.streams[1]!.rate).toBe(0);
    expect(summary.days.map((d) => d.day)).toEqual(['2024-05-01', '2024-05-02', '2024-05-03']);
    expect(summary.damaged).toEqual([]);
  });

  it('sums a sealed day once, again only when its bytes change, and reads only the unsealed part of today', async () => {
    const dir = tempDir();
    const writer = new TickStore({ dir });
    let now = at('2024-05-03T10:00:00Z');
    writer.append([tick('simulator', 'RELIANCE', at('2024-05-01T04:00:00Z')), tick('simulator', 'RELIANCE', at('2024-05-02T04:00:00Z'))]);
    writer.append(Array.from({ length: 100 }, (_, i) => tick('simulator', 'RELIANCE', at('2024-05-03T03:45:00Z') + i * 60_000)));
    const store = new SqliteHistoryStore(dir, { readonly: true });
    const { store: watched, ranges } = counted(store);
    const cache = new SummaryCache(watched);

    await cache.summarise(now);
    const dayStart = (day: string): number => at(`${day}T00:00:00Z`);
    expect(ranges.filter(([from]) => from < dayStart('2024-05-03'))).toEqual([
      [dayStart('2024-05-01'), dayStart('2024-05-02')],
      [dayStart('2024-05-02'), dayStart('2024-05-03')],
    ]);
    // Today: up to the sealed minute (2 min back, whole minutes), then the recent part split at the rate window.
    const sealed = at('2024-05-03T09:58:00Z');
    expect(ranges.filter(([from]) => from >= dayStart('2024-05-03'))).toEqual([
      [dayStart('2024-05-03'), sealed],
      [sealed, now - 60_000],
      [now - 60_000, dayStart('2024-05-04')],
    ]);

    // Five seconds later: no sealed day is read, nor today's sealed part.
    ranges.length = 0;
    now += 5000;
    writer.append([tick('simulator', 'RELIANCE', now - 1000)]);
    expect((await cache.summarise(now)).streams).toEqual(await truth(store, now));
    expect(ranges).toEqual([
      [sealed, now - 60_000],
      [now - 60_000, dayStart('2024-05-04')],
    ]);

    // Two minutes on: the sealed part grows by the minutes passed, read once.
    ranges.length = 0;
    now += 120_000;
    writer.append([tick('simulator', 'TCS', now - 30_000)]);
    expect((await cache.summarise(now)).streams).toEqual(await truth(store, now));
    expect(ranges[0]).toEqual([sealed, at('2024-05-03T10:00:00Z')]);

    // A late tick into a sealed day changes its bytes: that day is summed again.
    writer.append([tick('simulator', 'INFY', at('2024-05-02T12:00:00Z'))]);
    ranges.length = 0;
    const after = await cache.summarise(now + 1);
    expect(after.streams.map((s) => s.symbol)).toContain('INFY');
    expect(ranges).toContainEqual([dayStart('2024-05-02'), dayStart('2024-05-03')]);
    expect(ranges).not.toContainEqual([dayStart('2024-05-01'), dayStart('2024-05-02')]);

    // A day deleted (retention) is gone from the answer.
    writer.close();
    for (const suffix of ['', '-wal', '-shm']) fs.rmSync(join(dir, `ticks-2024-05-01.db${suffix}`), { force: true });
    const pruned = await cache.summarise(now + 2);
    expect(pruned.days.map((d) => d.day)).toEqual(['2024-05-02', '2024-05-03']);
    expect(pruned.streams).toEqual(await truth(store, now + 2));
  });

  it('reports a damaged day, keeps summing the others, and tries it again next time', async () => {
    const dir = tempDir();
    const writer = new TickStore({ dir });
    writer.append([tick('simulator', 'RELIANCE', at('2024-05-01T04:00:00Z')), tick('simulator', 'TCS', at('2024-05-02T04:00:00Z'))]);
    writer.close();
    const day2 = join(dir, 'ticks-2024-05-02.db');
    fs.writeFileSync(day2, Buffer.alloc(8192, 0x5a));
    for (const suffix of ['-wal', '-shm']) fs.rmSync(day2 + suffix, { force: true });
    const { store, ranges } = counted(new SqliteHistoryStore(dir, { readonly: true }));
    const cache = new SummaryCache(store);
    const summary = await cache.summarise(at('2024-05-05T00:00:00Z'));
    expect(summary.streams.map((s) => s.symbol)).toEqual(['RELIANCE']);
    expect(summary.damaged.map((d) => d.day)).toEqual(['2024-05-02']);
    ranges.length = 0;
    expect((await cache.summarise(at('2024-05-05T00:00:05Z'))).damaged.map((d) => d.day)).toEqual(['2024-05-02']);
    expect(ranges.length).toBe(1); // the damaged day again; the good one from the cache
  });

  it('measures a stream younger than the rate window over the time it has been recorded', async () => {
    const dir = tempDir();
    const writer = new TickStore({ dir });
    const now = at('2024-05-03T10:00:00Z');
    writer.append(Array.from({ length: 20 }, (_, i) => tick('simulator', 'RELIANCE', now - 10_000 + i * 500)));
    writer.close();
    const [stream] = (await new SummaryCache(new SqliteHistoryStore(dir, { readonly: true })).summarise(now)).streams;
    expect(stream!.rate).toBeCloseTo(2, 6); // 20 ticks in its 10 s
  });

  it('answers an empty store with no days and no streams', async () => {
    const summary = await new SummaryCache(new SqliteHistoryStore(join(tempDir(), 'never-created'), { readonly: true })).summarise(Date.now());
    expect(summary).toMatchObject({ days: [], streams: [], damaged: [] });
  });
});

describe('HistorySummaries', () => {
  class FakeThread {
    readonly requests: SummaryRequest[] = [];
    private readonly listeners: Record<string, Array<(value: never) => void>> = { message: [], error: [], exit: [] };
    on(event: string, listener: (value: never) => void): this {
      this.listeners[event]!.push(listener);
      return this;
    }
    postMessage(request: SummaryRequest): void {
      this.requests.push(request);
    }
    emit(event: 'message' | 'exit', value: SummaryMessage | number): void {
      for (const listener of this.listeners[event]!) (listener as (v: unknown) => void)(value);
    }
    terminate(): Promise<number> {
      this.emit('exit', 1);
      return Promise.resolve(1);
    }
  }
  const summaryAt = (ms: number): StoreSummary => ({ at: ms, days: [], streams: [], damaged: [], rateWindowMs: 60_000 });

  it('runs one summary at a time: a request meanwhile shares it, a fresh answer is given again, a dead thread is replaced', async () => {
    const threads: FakeThread[] = [];
    let now = 1_000_000;
    const summaries = new HistorySummaries({
      location: { kind: 'sqlite', dir: '/nonexistent' },
      startThread: () => (threads.push(new FakeThread()), threads.at(-1)! as unknown as SummaryPort),
      now: () => now,
    });
    const first = summaries.summarise();
    const second = summaries.summarise();
    expect(second).toBe(first);
    expect(summaries.busy).toBe(true);
    expect(threads.length).toBe(1);
    expect(threads[0]!.requests).toEqual([{ type: 'summarise', now }]);
    threads[0]!.emit('message', { type: 'summary', summary: summaryAt(now) });
    expect(await first).toEqual(summaryAt(now));

    now += 500;
    expect(await summaries.summarise()).toEqual(summaryAt(1_000_000));
    expect(threads[0]!.requests.length).toBe(1);

    now += 1000;
    const third = summaries.summarise();
    expect(threads[0]!.requests.length).toBe(2);
    threads[0]!.emit('exit', 1);
    await expect(third).rejects.toThrow(/stopped before answering/);
    const fourth = summaries.summarise();
    expect(threads.length).toBe(2);
    threads[1]!.emit('message', { type: 'error', message: 'disk I/O error' });
    await expect(fourth).rejects.toThrow('disk I/O error');
    summaries.close();
    expect(threads[1]!.requests.at(-1)).toEqual({ type: 'close' });
  });

  it('sums a real store on the summary thread', async () => {
    const dir = tempDir();
    const writer = new TickStore({ dir });
    const now = Date.now();
    writer.append([tick('simulator', 'RELIANCE', now - 86_400_000 * 2), tick('simulator', 'RELIANCE', now - 10_000)]);
    writer.close();
    const summaries = new HistorySummaries({ location: { kind: 'sqlite', dir } });
    try {
      const summary = await summaries.summarise();
      expect(summary.streams).toEqual([expect.objectContaining({ feed: 'simulator', symbol: 'RELIANCE', ticks: 2, first: now - 86_400_000 * 2, last: now - 10_000, rate: 1 / 60 })]);
    } finally {
      summaries.close();
    }
    await waitUntil(() => !summaries.busy, 'closed');
  });
});

describe('the stream list for one caller', () => {
  const summary: StoreSummary = {
    at: at('2024-05-03T10:00:00Z'),
    days: [
      { day: '2024-05-02', bytes: 100 },
      { day: '2024-05-03', bytes: 200 },
    ],
    streams: [
      { feed: 'simulator', exchange: 'NSE', symbol: 'RELIANCE', ticks: 10, first: at('2024-05-02T04:00:00Z'), last: at('2024-05-03T09:59:59Z'), maxMode: 2, rate: 0.5 },
      { feed: 'simulator', exchange: 'NSE', symbol: 'TCS', ticks: 3, first: at('2024-05-02T04:00:00Z'), last: at('2024-05-02T05:00:00Z'), maxMode: 1, rate: 0 },
      { feed: 'zerodha.alice', exchange: 'NSE', symbol: 'SECRET', ticks: 7, first: 1, last: 2, maxMode: 3, rate: 1 },
    ],
    damaged: [],
    rateWindowMs: 60_000,
  };

  it("lists the caller's feed only, with ISO times, filtered by exchange and symbol", () => {
    const answer = streamsAnswer(summary, 'simulator', {}, { state: 'recording' });
    expect(answer).toMatchObject({ status: 'success', history: 'recorded', feed: 'simulator', store: { days: 2, bytes: 300, oldest: '2024-05-02', newest: '2024-05-03' }, rate_window_s: 60 });
    expect(answer.data).toEqual([
      { feed: 'simulator', exchange: 'NSE', symbol: 'RELIANCE', first: '2024-05-02T04:00:00.000Z', last: '2024-05-03T09:59:59.000Z', ticks: 10, rate: 0.5, mode: 'Quote' },
      { feed: 'simulator', exchange: 'NSE', symbol: 'TCS', first: '2024-05-02T04:00:00.000Z', last: '2024-05-02T05:00:00.000Z', ticks: 3, rate: 0, mode: 'LTP' },
    ]);
    expect(JSON.stringify(answer)).not.toContain('SECRET');
    expect((streamsAnswer(summary, 'simulator', { symbol: 'tcs' }, {}).data as unknown[]).length).toBe(1);
    expect((streamsAnswer(summary, 'simulator', { exchange: 'BSE' }, {}).data as unknown[]).length).toBe(0);
    expect(streamsAnswer(summary, 'zerodha.bob', {}, {}).data).toEqual([]);
  });

  it('says so when the store holds nothing', () => {
    const answer = streamsAnswer({ ...summary, days: [], streams: [] }, 'simulator', {}, { state: 'off' });
    expect(answer).toMatchObject({ history: 'none', data: [], store: { days: 0, bytes: 0 } });
    expect(answer.message).toMatch(/holds nothing/);
  });

  it('checks the filters', () => {
    expect(parseStreamFilter(new URLSearchParams('exchange=NSE&symbol=RELIANCE'))).toEqual({ ok: true, value: { exchange: 'NSE', symbol: 'RELIANCE' } });
    expect(parseStreamFilter(new URLSearchParams(''))).toEqual({ ok: true, value: {} });
    expect(parseStreamFilter(new URLSearchParams('symbol='))).toMatchObject({ ok: false });
    expect(parseStreamFilter(new URLSearchParams(`symbol=${'X'.repeat(65)}`))).toMatchObject({ ok: false });
  });
});
