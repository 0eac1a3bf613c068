/** `GET /api/ticks`'s parameters and its two output forms (pure), and one read in chunks off a real store. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ReadJob } from '../../src/history/read-job.js';
import { CSV_HEADER, csvField, endLine, formatTick, prologue } from '../../src/history/tick-format.js';
import { type RecordedTick, TickStore } from '../../src/history/tick-store.js';
import { parseInstant, parseTickQuery } from '../../src/http/tick-query.js';

const LIMITS = { maxRangeHours: 24, maxRows: 1000 };
const parse = (query: string) => parseTickQuery(new URLSearchParams(query), LIMITS);
const BASE = 'exchange=NSE&symbol=RELIANCE&from=2024-05-02T09:15:00%2B05:30&to=2024-05-02T15:30:00%2B05:30';

describe('parseTickQuery', () => {
  it('reads a full request, with defaults', () => {
    expect(parse(BASE)).toEqual({
      ok: true,
      value: { exchange: 'NSE', symbol: 'RELIANCE', from: Date.parse('2024-05-02T03:45:00Z'), to: Date.parse('2024-05-02T10:00:00Z'), format: 'jsonl', limit: 1000 },
    });
    const full = parse(`${BASE}&mode=Quote&format=CSV&limit=10`);
    expect(full.ok && full.value).toMatchObject({ mode: 2, format: 'csv', limit: 10 });
    for (const [raw, mode] of [['1', 1], ['2', 2], ['3', 3], ['ltp', 1], ['DEPTH', 3]] as const) {
      const parsed = parse(`${BASE}&mode=${raw}`);
      expect(parsed.ok && parsed.value.mode).toBe(mode);
    }
  });

  it('takes epoch milliseconds, dates (UTC) and date-times with a zone; refuses the rest', () => {
    expect(parseInstant('from', '1714621500000')).toEqual({ ok: true, ms: 1714621500000 });
    expect(parseInstant('from', '2024-05-02')).toEqual({ ok: true, ms: Date.parse('2024-05-02T00:00:00Z') });
    expect(parseInstant('from', '2024-05-02T09:15Z')).toEqual({ ok: true, ms: Date.parse('2024-05-02T09:15:00Z') });
    expect(parseInstant('from', '2024-05-02T09:15:00.250+0530')).toEqual({ ok: true, ms: Date.parse('2024-05-02T03:45:00.250Z') });
    const noZone = parseInstant('from', '2024-05-02T09:15:00');
    expect(noZone.ok === false && noZone.message).toMatch(/no time zone: add Z \(UTC\) or an offset/);
    for (const bad of ['yesterday', '2024-02-30', '2024-13-01T00:00Z', '-5', '1e12', '2024-05-02 09:15Z']) {
      expect(parseInstant('to', bad).ok, bad).toBe(false);
    }
    const missing = parseInstant('to', null);
    expect(missing.ok === false && missing.message).toMatch(/^to is required/);
  });

  it('refuses a bad request with the error table codes', () => {
    const cases: Array<[string, string, RegExp]> = [
      ['symbol=RELIANCE&from=1&to=2', 'INVALID_PARAMETERS', /exchange and symbol are required/],
      ['exchange=NSE&symbol=RELIANCE&to=2', 'INVALID_PARAMETERS', /from is required/],
      ['exchange=NSE&symbol=RELIANCE&from=5&to=5', 'INVALID_PARAMETERS', /to must be later than from/],
      ['exchange=NSE&symbol=RELIANCE&from=9&to=5', 'INVALID_PARAMETERS', /to must be later than from/],
      [`exchange=NSE&symbol=RELIANCE&from=0&to=${24 * 3_600_000 + 1}`, 'RANGE_TOO_LARGE', /longer than 24 h \(TICKCAST_TICKS_MAX_RANGE_HOURS\)/],
      [`${BASE}&mode=4`, 'INVALID_MODE', /Invalid mode 4/],
      [`${BASE}&mode=full`, 'INVALID_MODE', /Invalid mode 'full'/],
      [`${BASE}&format=parquet`, 'INVALID_PARAMETERS', /format must be jsonl or csv/],
      [`${BASE}&limit=0`, 'INVALID_PARAMETERS', /limit must be a whole number from 1 to 1000/],
      [`${BASE}&limit=1001`, 'INVALID_PARAMETERS', /limit must be/],
      [`${BASE}&limit=2.5`, 'INVALID_PARAMETERS', /limit must be/],
      ['exchange=NSE&symbol=A%00B&from=1&to=2', 'INVALID_PARAMETERS', /control characters/],
    ];
    for (const [query, code, message] of cases) {
      const parsed = parse(query);
      expect(parsed.ok, query).toBe(false);
      if (!parsed.ok) {
        expect(parsed.code, query).toBe(code);
        expect(parsed.message, query).toMatch(message);
      }
    }
    // Exactly the longest range is allowed.
    expect(parse(`exchange=NSE&symbol=RELIANCE&from=0&to=${24 * 3_600_000}`).ok).toBe(true);
  });
});

const TICK: RecordedTick = {
  feed: 'simulator',
  exchange: 'NSE',
  symbol: 'M&M',
  mode: 2,
  receivedAt: 1714621500123,
  exchangeTs: 1714621500000,
  payload: '{"ltp":1402.70,"symbol":"M&M","note":"a \\"quoted\\", comma"}',
};

describe('formats', () => {
  it('jsonl: one object per line, the payload as recorded, byte for byte', () => {
    const line = formatTick(TICK, 'jsonl');
    expect(line.endsWith('\n')).toBe(true);
    expect(line).toContain('"data":{"ltp":1402.70,');
    expect(JSON.parse(line)).toEqual({ ts: 1714621500123, exchange_ts: 1714621500000, exchange: 'NSE', symbol: 'M&M', mode: 2, data: JSON.parse(TICK.payload) });
    expect(JSON.parse(formatTick({ ...TICK, exchangeTs: null }, 'jsonl')).exchange_ts).toBeNull();
    expect(prologue('jsonl')).toBe('');
  });

  it('csv: RFC 4180, the payload quoted, an empty exchange_ts when there is none', () => {
    expect(prologue('csv')).toBe(CSV_HEADER);
    expect(CSV_HEADER).toBe('received_at,exchange_ts,exchange,symbol,mode,data\r\n');
    const line = formatTick(TICK, 'csv');
    expect(line).toBe(`1714621500123,1714621500000,NSE,M&M,2,"${TICK.payload.replaceAll('"', '""')}"\r\n`);
    expect(formatTick({ ...TICK, exchangeTs: null }, 'csv').startsWith('1714621500123,,NSE,')).toBe(true);
    expect(csvField('A,B')).toBe('"A,B"');
    expect(csvField('A"B')).toBe('"A""B"');
    expect(csvField('PLAIN')).toBe('PLAIN');
    // Reading the line back gives the payload.
    const data = /,"((?:[^"]|"")*)"\r\n$/.exec(line)![1]!.replaceAll('""', '"');
    expect(data).toBe(TICK.payload);
  });

  it('the jsonl end line: only when the answer is not the whole range', () => {
    expect(endLine({ rows: 5, truncated: false, limit: 10, damagedDays: [] })).toBe('');
    expect(JSON.parse(endLine({ rows: 10, truncated: true, limit: 10, damagedDays: [] }))).toEqual({ truncated: true, limit: 10 });
    expect(JSON.parse(endLine({ rows: 3, truncated: false, limit: 10, damagedDays: ['2024-05-03'] }))).toEqual({ truncated: false, limit: 10, damaged_days: ['2024-05-03'] });
  });
});

describe('ReadJob', () => {
  const dirs: string[] = [];
  afterEach(() => {
    for (const dir of dirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
  });
  const store = (): string => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tickcast-read-'));
    dirs.push(dir);
    return dir;
  };
  const tick = (i: number, at: number, symbol = 'RELIANCE'): RecordedTick => ({ feed: 'simulator', exchange: 'NSE', symbol, mode: 1, receivedAt: at, exchangeTs: null, payload: `{"ltp":${i}}` });

  it('reads in chunks of at most chunkRows, stops at the limit and says so', async () => {
    const dir = store();
    const writer = new TickStore({ dir });
    const day = Date.parse('2024-05-02T04:00:00Z');
    writer.append(Array.from({ length: 25 }, (_, i) => [tick(i, day + i), tick(100 + i, day + i, 'TCS')]).flat());
    writer.close();
    const query = { from: day, to: day + 1000, streams: [{ feed: 'simulator', exchange: 'NSE', symbol: 'RELIANCE' }] };

    const whole = await ReadJob.start({ location: { kind: 'sqlite', dir }, query, format: 'jsonl', limit: 1000, chunkRows: 10 });
    const sizes: number[] = [];
    let text = '';
    for (let m = await whole.next(); m.type === 'chunk'; m = await whole.next()) {
      sizes.push(m.rows);
      text += m.text;
    }
    expect(sizes).toEqual([10, 10, 5]);
    expect(text.trim().split('\n').map((l) => JSON.parse(l).data.ltp)).toEqual(Array.from({ length: 25 }, (_, i) => i));
    expect(await whole.next()).toEqual({ type: 'end', rows: 25, truncated: false, damaged: [], stored: true });

    const cut = await ReadJob.start({ location: { kind: 'sqlite', dir }, query, format: 'csv', limit: 20, chunkRows: 10 });
    expect(await cut.next()).toMatchObject({ type: 'chunk', rows: 10 });
    expect(await cut.next()).toMatchObject({ type: 'chunk', rows: 10 });
    expect(await cut.next()).toEqual({ type: 'end', rows: 20, truncated: true, damaged: [], stored: true });

    // Exactly the limit in the range: not cut.
    const exact = await ReadJob.start({ location: { kind: 'sqlite', dir }, query, format: 'csv', limit: 25 });
    expect(await exact.next()).toMatchObject({ type: 'chunk', rows: 25 });
    expect(await exact.next()).toMatchObject({ type: 'end', rows: 25, truncated: false });

    const none = await ReadJob.start({ location: { kind: 'sqlite', dir }, query: { ...query, from: day + 5000, to: day + 6000 }, format: 'jsonl', limit: 10 });
    expect(await none.next()).toEqual({ type: 'end', rows: 0, truncated: false, damaged: [], stored: true });
  });

  it('a store with no day says so', async () => {
    const job = await ReadJob.start({ location: { kind: 'sqlite', dir: path.join(store(), 'never-recorded') }, query: { from: 0, to: 1 }, format: 'jsonl', limit: 10 });
    expect(await job.next()).toEqual({ type: 'end', rows: 0, truncated: false, damaged: [], stored: false });
  });

  it('cancel closes the day and ends the read', async () => {
    const dir = store();
    const writer = new TickStore({ dir });
    const day = Date.parse('2024-05-02T04:00:00Z');
    writer.append(Array.from({ length: 30 }, (_, i) => tick(i, day + i)));
    writer.close();
    const job = await ReadJob.start({ location: { kind: 'sqlite', dir }, query: { from: day, to: day + 1000 }, format: 'jsonl', limit: 100, chunkRows: 10 });
    expect(await job.next()).toMatchObject({ type: 'chunk', rows: 10 });
    await job.cancel();
    expect(await job.next()).toMatchObject({ type: 'end', rows: 10 });
  });
});
