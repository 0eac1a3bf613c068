/**
 * The replay's pure parts: times, range, speed and stream lists as the command reads them, and
 * pacing with an injected clock (the recorded spacing divided by the speed, `max`, stopping).
 */
import { describe, expect, it } from 'vitest';
import { streamKey } from '../../src/feed.js';
import type { RecordedTick } from '../../src/history/tick-store.js';
import { type Scheduler, pace, parseMaxGap, parseRange, parseSpeed, parseStreams, parseTime, survey } from '../../src/adapters/replay/replay-source.js';

/** A clock that only moves when something sleeps: every sleep returns at once, `ms` later. */
class VirtualScheduler implements Scheduler {
  time = 0;
  readonly sleeps: number[] = [];
  now(): number {
    return this.time;
  }
  async sleep(ms: number): Promise<void> {
    this.sleeps.push(ms);
    this.time += Math.max(0, ms);
  }
}

const DAY = Date.UTC(2024, 0, 2);

function tick(n: number, receivedAt: number, symbol = 'RELIANCE', mode: 1 | 2 | 3 = 1): RecordedTick {
  return { feed: 'simulator', exchange: 'NSE', symbol, mode, receivedAt, exchangeTs: null, payload: `{"n":${n}}` };
}

describe('parseTime', () => {
  it('reads a date as that whole UTC day', () => {
    expect(parseTime('2024-01-02')).toEqual({ ok: true, value: { start: DAY, end: DAY + 86_400_000, isDate: true } });
  });

  it('reads dates and times with a zone, and epoch ms', () => {
    expect(parseTime('2024-01-02T09:15:00Z')).toMatchObject({ ok: true, value: { start: DAY + 9.25 * 3_600_000, isDate: false } });
    expect(parseTime('2024-01-02T09:15:00.250+05:30')).toMatchObject({ ok: true, value: { start: DAY + 3.75 * 3_600_000 + 250 } });
    expect(parseTime('2024-01-02T09:15+0530')).toMatchObject({ ok: true, value: { start: DAY + 3.75 * 3_600_000 } });
    expect(parseTime('1704153600000')).toEqual({ ok: true, value: { start: DAY, end: DAY, isDate: false } });
  });

  it('refuses a time without a zone, a day not on the calendar and anything else, saying why', () => {
    const noZone = parseTime('2024-01-02T09:15:00');
    expect(noZone.ok).toBe(false);
    expect(!noZone.ok && noZone.message).toMatch(/no time zone: add Z for UTC or an offset such as \+05:30/);
    expect(parseTime('2024-02-30')).toEqual({ ok: false, message: '"2024-02-30" is not a calendar date' });
    expect(parseTime('2024-02-30T10:00Z').ok).toBe(false);
    expect(parseTime('2024-01-02T25:00Z').ok).toBe(false);
    const junk = parseTime('yesterday');
    expect(!junk.ok && junk.message).toMatch(/not a time: expected an ISO 8601 date/);
  });
});

describe('parseRange', () => {
  it('takes a --from date alone as that day, and a --to date as including its day', () => {
    expect(parseRange('2024-01-02', undefined)).toEqual({ ok: true, value: { from: DAY, to: DAY + 86_400_000 } });
    expect(parseRange('2024-01-02', '2024-01-03')).toEqual({ ok: true, value: { from: DAY, to: DAY + 2 * 86_400_000 } });
    expect(parseRange('2024-01-02T10:00:00Z', '2024-01-02T11:00:00Z')).toEqual({ ok: true, value: { from: DAY + 36_000_000, to: DAY + 39_600_000 } });
  });

  it('refuses --from after --to, a time without --to, and bad times, naming the flag', () => {
    const reversed = parseRange('2024-01-03', '2024-01-02T00:00:00Z');
    expect(!reversed.ok && reversed.message).toBe('--from 2024-01-03 (2024-01-03T00:00:00.000Z) is not before --to 2024-01-02T00:00:00Z (2024-01-02T00:00:00.000Z)');
    expect(parseRange('2024-01-02T10:00Z', '2024-01-02T10:00Z').ok).toBe(false);
    const noTo = parseRange('2024-01-02T10:00Z', undefined);
    expect(!noTo.ok && noTo.message).toMatch(/^--to is required/);
    const bad = parseRange('2024-01-02', 'soon');
    expect(!bad.ok && bad.message).toMatch(/^--to "soon" is not a time/);
  });
});

describe('parseMaxGap', () => {
  it('reads seconds of recorded time, or none, and refuses the rest with the reason', () => {
    expect(parseMaxGap('300')).toEqual({ ok: true, value: 300_000 });
    expect(parseMaxGap('0.5s')).toEqual({ ok: true, value: 500 });
    expect(parseMaxGap('0')).toEqual({ ok: true, value: 0 });
    expect(parseMaxGap('none')).toEqual({ ok: true, value: Infinity });
    for (const bad of ['-1', '', 'soon', 'Infinity']) {
      const parsed = parseMaxGap(bad);
      expect(parsed.ok, bad).toBe(false);
      if (!parsed.ok) expect(parsed.message).toContain('expected seconds of recorded time');
    }
  });
});

describe('parseSpeed and parseStreams', () => {
  it('reads a positive multiplier or max', () => {
    expect(parseSpeed('1')).toEqual({ ok: true, value: 1 });
    expect(parseSpeed('0.5')).toEqual({ ok: true, value: 0.5 });
    expect(parseSpeed('100x')).toEqual({ ok: true, value: 100 });
    expect(parseSpeed('MAX')).toEqual({ ok: true, value: 'max' });
    for (const bad of ['0', '-2', 'fast', '', 'Infinity', 'NaN']) {
      const parsed = parseSpeed(bad);
      expect(!parsed.ok && parsed.message, bad).toMatch(/expected a number greater than 0 .* or max/);
    }
  });

  it('reads EXCHANGE:SYMBOL lists, splitting at the first colon', () => {
    expect(parseStreams('NSE:RELIANCE, NSE_INDEX:NIFTY,MCX:X:Y')).toEqual({
      ok: true,
      value: [{ exchange: 'NSE', symbol: 'RELIANCE' }, { exchange: 'NSE_INDEX', symbol: 'NIFTY' }, { exchange: 'MCX', symbol: 'X:Y' }],
    });
    const bad = parseStreams('NSE:RELIANCE,INFY,:X');
    expect(!bad.ok && bad.message).toBe('--streams "INFY", ":X" are not EXCHANGE:SYMBOL (e.g. NSE:RELIANCE)');
    expect(parseStreams(' , ').ok).toBe(false);
  });
});

describe('pace', () => {
  const ticks = [tick(0, 1000), tick(1, 1000), tick(2, 1500), tick(3, 3000)];

  it('keeps the recorded spacing divided by the speed', async () => {
    const scheduler = new VirtualScheduler();
    scheduler.time = 50_000;
    const sentAt: Array<[number, number]> = [];
    const result = await pace({ ticks, speed: 100, scheduler, emit: (t) => (sentAt.push([JSON.parse(t.payload).n, scheduler.now() - 50_000]), true) });
    // 2 s recorded at 100x: 20 ms; ticks of one instant together.
    expect(sentAt).toEqual([[0, 0], [1, 0], [2, 5], [3, 20]]);
    expect(result).toEqual({ read: 4, sent: 4, first: 1000, last: 3000, stopped: false });
  });

  it('plays real time at speed 1 and slower below it', async () => {
    const scheduler = new VirtualScheduler();
    await pace({ ticks, speed: 0.5, scheduler, emit: () => true });
    expect(scheduler.now()).toBe(4000);
  });

  it('at max sends everything without waiting, yielding to the event loop after every chunk', async () => {
    const scheduler = new VirtualScheduler();
    const many = Array.from({ length: 10 }, (_, i) => tick(i, 1000 + i * 1000));
    const sent: number[] = [];
    const result = await pace({ ticks: many, speed: 'max', scheduler, chunk: 4, emit: (t) => (sent.push(JSON.parse(t.payload).n), true) });
    expect(sent).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(scheduler.sleeps).toEqual([0, 0]);
    expect(scheduler.now()).toBe(0);
    expect(result.sent).toBe(10);
  });

  it('counts ticks not sent, and stops when told', async () => {
    const scheduler = new VirtualScheduler();
    const skipped = await pace({ ticks, speed: 'max', scheduler, emit: (t) => JSON.parse(t.payload).n % 2 === 0 });
    expect(skipped).toMatchObject({ read: 4, sent: 2 });
    let n = 0;
    const stopped = await pace({ ticks, speed: 'max', scheduler, emit: () => true, stopped: () => ++n > 2 });
    expect(stopped).toMatchObject({ read: 2, sent: 2, stopped: true });
  });

  it('replays a quiet spell longer than maxGapMs (a night, a clock that jumped ahead) as maxGapMs', async () => {
    const scheduler = new VirtualScheduler();
    const night = [tick(0, 1000), tick(1, 2000), tick(2, 2000 + 18 * 3_600_000), tick(3, 2000 + 18 * 3_600_000 + 500)];
    const sentAt: number[] = [];
    await pace({ ticks: night, speed: 10, maxGapMs: 60_000, scheduler, emit: () => (sentAt.push(scheduler.now()), true) });
    // 1 s, then 18 h counted as 60 s, then 0.5 s: all at 10x.
    expect(sentAt).toEqual([0, 100, 6100, 6150]);
    const kept = new VirtualScheduler();
    await pace({ ticks: night, speed: 10, scheduler: kept, emit: () => true });
    expect(kept.now()).toBe((18 * 3_600_000 + 1500) / 10);
  });

  it('sends a tick recorded after the clock jumped back at once, and keeps the spacing after it', async () => {
    const scheduler = new VirtualScheduler();
    const jumped = [tick(0, 10_000), tick(1, 11_000), tick(2, 5_000), tick(3, 5_400), tick(4, 6_000)];
    const sentAt: number[] = [];
    await pace({ ticks: jumped, speed: 1, scheduler, emit: () => (sentAt.push(scheduler.now()), true) });
    // Without the clamp, ticks 2–4 would all be "late" and go out in a burst at 1000.
    expect(sentAt).toEqual([0, 1000, 1000, 1400, 2000]);
  });

  it('sends the same ticks in the same order on every run', async () => {
    const run = async (): Promise<string[]> => {
      const out: string[] = [];
      await pace({ ticks, speed: 1000, scheduler: new VirtualScheduler(), emit: (t) => (out.push(t.payload), true) });
      return out;
    };
    expect(await run()).toEqual(await run());
  });
});

describe('survey', () => {
  it('sums each stream over its feeds, with the highest mode recorded and the whole span', () => {
    const result = survey(
      [
        { feed: 'simulator', exchange: 'NSE', symbol: 'A', ticks: 4, first: 10, last: 40, maxMode: 1 },
        { feed: 'simulator', exchange: 'NSE', symbol: 'B', ticks: 1, first: 20, last: 20, maxMode: 3 },
        { feed: 'zerodha.alice', exchange: 'NSE', symbol: 'A', ticks: 2, first: 5, last: 30, maxMode: 2 },
      ],
      streamKey,
    );
    expect(result).toMatchObject({ ticks: 7, first: 5, last: 40 });
    expect(result.streams.get(streamKey('NSE', 'A'))).toEqual({ exchange: 'NSE', symbol: 'A', feeds: new Set(['simulator', 'zerodha.alice']), maxMode: 2, ticks: 6 });
    expect(result.streams.get(streamKey('NSE', 'B'))?.maxMode).toBe(3);
  });
});
