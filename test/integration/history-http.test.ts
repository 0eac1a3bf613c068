/**
 * `GET /api/ticks` end to end: a recording gateway answers a user with exactly what its store
 * holds for that user's feed and stream, in order, as jsonl and csv; nobody reads another feed;
 * keys, ranges and limits are refused or cut as documented; a multi-day range is served around a
 * damaged day; reads are bounded, and a client that leaves stops its read; `--workers 2` answers
 * the same from the primary's store.
 */
import fs from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type { ReaderMessage, ReaderRequest } from '../../src/history/read-job.js';
import { type ReaderPort, TickReader } from '../../src/history/reader.js';
import { type RecordedTick, TickStore } from '../../src/history/tick-store.js';
import { CredentialStore } from '../../src/auth/credentials.js';
import { openKeys } from '../../src/wiring.js';
import { TickRoutes } from '../../src/http/ticks.js';
import { silentLogger } from '../../src/observability/logger.js';
import { TestClient, waitUntil } from '../helpers/client.js';
import { killSpawnedProcesses, makeTempDir, removeDir, runCli, startGatewayProcess } from '../helpers/cli.js';
import { startTestInstance } from '../helpers/instance.js';
import { type FreshReply, expectJsonl, freshRequest, ticksPath } from '../helpers/history.js';

const dirs: string[] = [];
function tempDir(): string {
  const dir = fs.mkdtempSync(join(tmpdir(), 'tickcast-ticks-'));
  dirs.push(dir);
  return dir;
}
afterEach(async () => {
  await killSpawnedProcesses();
  for (const dir of dirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
});

const get = (base: string, path: string, apiKey?: string, method?: string): Promise<FreshReply> => freshRequest(base, path, { ...(apiKey === undefined ? {} : { apiKey }), ...(method ? { method } : {}) });
const q = ticksPath;

/** The store's ticks of one feed's stream, as the endpoint should give them. */
function stored(dir: string, feed: string, from: number, to: number, symbol = 'RELIANCE'): RecordedTick[] {
  return [...new TickStore({ dir, readonly: true }).read({ from, to, streams: [{ feed, exchange: 'NSE', symbol }] })];
}

/** The same for csv (header, then one RFC 4180 row per tick). */
function expectCsv(body: string, ticks: readonly RecordedTick[]): void {
  const rows = body.split('\r\n');
  expect(rows[0]).toBe('received_at,exchange_ts,exchange,symbol,mode,data');
  expect(rows.at(-1)).toBe('');
  const data = rows.slice(1, -1);
  expect(data.length).toBe(ticks.length);
  data.forEach((row, i) => {
    const tick = ticks[i]!;
    const match = /^(\d+),(\d*),([^,]+),([^,]+),([123]),"((?:[^"]|"")*)"$/.exec(row);
    expect(match, row).not.toBeNull();
    expect(match!.slice(1, 6)).toEqual([String(tick.receivedAt), tick.exchangeTs === null ? '' : String(tick.exchangeTs), tick.exchange, tick.symbol, String(tick.mode)]);
    expect(match![6]!.replaceAll('""', '"')).toBe(tick.payload);
  });
}

/** Subscribes to NSE:RELIANCE at Quote until `count` ticks arrived; returns the instant before which all are on disk. */
async function recordSome(url: string, apiKey: string, count: number): Promise<{ client: TestClient; settled: number }> {
  const client = await TestClient.authenticated(url, apiKey);
  expect((await client.request({ action: 'subscribe', symbols: [{ symbol: 'RELIANCE', exchange: 'NSE' }], mode: 2 })).status).toBe('success');
  await waitUntil(() => client.messages.filter((m) => m.type === 'market_data' && m.symbol === 'RELIANCE').length >= count, `${count} ticks`, 15_000);
  const settled = Date.now();
  // The recorder writes a batch at most 200 ms after its first tick: everything before `settled` is on disk after this.
  await new Promise((resolve) => setTimeout(resolve, 1500));
  return { client, settled };
}

describe('GET /api/ticks on a recording gateway', () => {
  it("answers exactly the store's ticks of the user's feed and stream, as jsonl and csv, and nothing of another feed", async () => {
    const dir = tempDir();
    const gw = await startTestInstance({ TICKCAST_RECORD: 'all', TICKCAST_HISTORY_DIR: dir, TICKCAST_SIM_RATE: '50', TICKCAST_AUTH_FAILURES: '5' });
    try {
      const http = gw.url.replace('ws://', 'http://');
      const key = await gw.createKey('trader');
      const started = Date.now() - 1000;
      const { client, settled } = await recordSome(gw.url, key, 20);
      const range = { exchange: 'NSE', symbol: 'RELIANCE', from: started, to: settled };
      const expected = stored(dir, 'simulator', started, settled);
      expect(expected.length).toBeGreaterThanOrEqual(20);

      const jsonl = await get(http, q(range), key);
      expect(jsonl.status).toBe(200);
      expect(jsonl.headers['content-type']).toBe('application/x-ndjson; charset=utf-8');
      expect(jsonl.headers['x-tickcast-feed']).toBe('simulator');
      expect(jsonl.headers['x-tickcast-history']).toBeUndefined();
      expect(jsonl.trailers).toMatchObject({ 'x-tickcast-rows': String(expected.length), 'x-tickcast-truncated': 'false' });
      expectJsonl(jsonl.body, expected);

      // ISO 8601 with an offset reads the same range.
      const iso = await get(http, q({ ...range, from: new Date(started).toISOString().replace('Z', '+00:00'), to: new Date(settled).toISOString() }), key);
      expect(iso.body).toBe(jsonl.body);

      const csv = await get(http, q({ ...range, format: 'csv' }), key);
      expect(csv.status).toBe(200);
      expect(csv.headers['content-type']).toBe('text/csv; charset=utf-8; header=present');
      expectCsv(csv.body, expected);

      // The mode filter: the stream was recorded at Quote only.
      expectJsonl((await get(http, q({ ...range, mode: 'Quote' }), key)).body, expected);
      expect((await get(http, q({ ...range, mode: 1 }), key)).body).toBe('');

      // Cut by the limit: said in a last line, the trailers and (for csv) the limit header.
      const cut = await get(http, q({ ...range, limit: 5 }), key);
      const lines = cut.body.trim().split('\n');
      expect(lines.length).toBe(6);
      expectJsonl(`${lines.slice(0, 5).join('\n')}\n`, expected.slice(0, 5));
      expect(JSON.parse(lines[5]!)).toEqual({ truncated: true, limit: 5 });
      expect(cut.trailers).toMatchObject({ 'x-tickcast-rows': '5', 'x-tickcast-truncated': 'true' });
      const cutCsv = await get(http, q({ ...range, limit: 5, format: 'csv' }), key);
      expect(cutCsv.headers['x-tickcast-limit']).toBe('5');
      expectCsv(cutCsv.body, expected.slice(0, 5));
      expect(cutCsv.trailers['x-tickcast-truncated']).toBe('true');

      // Another user, on a broker no feed serves here (a zerodha user without credentials), reads nothing of the simulator's.
      const other = await gw.createKey('other', 'zerodha');
      const theirs = await get(http, q(range), other);
      expect(theirs.status).toBe(200);
      expect(theirs.body).toBe('');
      expect(theirs.headers['x-tickcast-history']).toBe('no-feed');
      expect(theirs.headers['x-tickcast-feed']).toBeUndefined();
      // No parameter names a feed: one given is ignored.
      expect((await get(http, `${q(range)}&feed=simulator`, other)).body).toBe('');

      // An empty range, a range before recording began, and one in the future: 200, nothing.
      for (const empty of [
        { ...range, symbol: 'NOSUCH' },
        { ...range, from: started - 7_200_000, to: started - 3_600_000 },
        { ...range, from: Date.now() + 3_600_000, to: Date.now() + 7_200_000 },
      ]) {
        const reply = await get(http, q(empty), key);
        expect(reply.status).toBe(200);
        expect(reply.body).toBe('');
      }
      expect((await get(http, q({ ...range, from: Date.now() + 3_600_000, to: Date.now() + 7_200_000, format: 'csv' }), key)).body).toBe('received_at,exchange_ts,exchange,symbol,mode,data\r\n');

      // HEAD: the headers alone.
      const head = await get(http, q(range), key, 'HEAD');
      expect(head.status).toBe(200);
      expect(head.body).toBe('');
      expect(head.headers['content-type']).toBe('application/x-ndjson; charset=utf-8');

      await client.close();
    } finally {
      await gw.stop();
    }
  });

  it('wants a valid key as the other endpoints, and refuses bad ranges with a reason', async () => {
    const dir = tempDir();
    const gw = await startTestInstance({ TICKCAST_HISTORY_DIR: dir, TICKCAST_AUTH_FAILURES: '5', TICKCAST_TICKS_MAX_RANGE_HOURS: '2' });
    try {
      const http = gw.url.replace('ws://', 'http://');
      const key = await gw.createKey('trader');
      const range = { exchange: 'NSE', symbol: 'RELIANCE', from: Date.now() - 3_600_000, to: Date.now() };

      const missing = await get(http, q(range));
      expect(missing.status).toBe(401);
      expect(JSON.parse(missing.body)).toEqual({ status: 'error', code: 'AUTHENTICATION_ERROR', message: 'API key is required (send it in the X-API-Key header)' });
      const viaQuery = await get(http, `${q(range)}&apikey=${key}`);
      expect(viaQuery.status).toBe(401);
      const wrong = await get(http, q(range), 'not-a-key');
      expect(wrong.status).toBe(401);
      expect(JSON.parse(wrong.body)).toEqual({ status: 'error', code: 'AUTHENTICATION_ERROR', message: 'Invalid API key' });

      const bad = async (params: Record<string, string | number>, code: string, message: RegExp): Promise<void> => {
        const reply = await get(http, q(params), key);
        expect(reply.status, JSON.stringify(params)).toBe(400);
        const body = JSON.parse(reply.body);
        expect(body).toMatchObject({ status: 'error', code });
        expect(body.message).toMatch(message);
      };
      await bad({ ...range, to: range.from }, 'INVALID_PARAMETERS', /to must be later than from/);
      await bad({ ...range, to: range.from - 1 }, 'INVALID_PARAMETERS', /to must be later than from/);
      await bad({ ...range, from: range.to - 3 * 3_600_000 }, 'RANGE_TOO_LARGE', /longer than 2 h/);
      await bad({ exchange: 'NSE', symbol: 'RELIANCE', to: range.to }, 'INVALID_PARAMETERS', /from is required/);
      await bad({ ...range, from: 'yesterday' }, 'INVALID_PARAMETERS', /not epoch milliseconds or an ISO 8601/);
      await bad({ ...range, limit: 0 }, 'INVALID_PARAMETERS', /limit must be/);

      // Recording never on here: 200, empty, and said in a header.
      const none = await get(http, q(range), key);
      expect(none.status).toBe(200);
      expect(none.body).toBe('');
      expect(none.headers['x-tickcast-history']).toBe('none');

      // Wrong keys count against the address, in the one count the WebSocket and the other endpoints use.
      const before = gw.gateway.failedAuths!.failures('127.0.0.1');
      expect(before).toBeGreaterThan(0);
      expect((await get(http, q(range), 'another-wrong-key')).status).toBe(401);
      expect(gw.gateway.failedAuths!.failures('127.0.0.1')).toBe(before + 1);
    } finally {
      await gw.stop();
    }
  });

  it('serves a multi-day range around a damaged day, and never another feed of the store', async () => {
    const dir = tempDir();
    const writer = new TickStore({ dir });
    const day = (d: number): number => Date.parse(`2024-05-0${d}T03:45:00Z`);
    const ticks: RecordedTick[] = [];
    for (const d of [1, 2, 3, 4]) {
      // Day 1 holds more than a chunk, so day 3's damage is found after ticks have gone out.
      const count = d === 1 ? 1500 : 40;
      for (let i = 0; i < count; i++) {
        const at = day(d) + i * 10;
        ticks.push({ feed: 'simulator', exchange: 'NSE', symbol: 'RELIANCE', mode: 2, receivedAt: at, exchangeTs: i % 2 ? at - 3 : null, payload: `{"ltp":${1400 + i / 100},"day":${d},"i":${i}}` });
        ticks.push({ feed: 'zerodha.alice', exchange: 'NSE', symbol: 'RELIANCE', mode: 2, receivedAt: at + 1, exchangeTs: null, payload: `{"ltp":1,"alice":${i}}` });
        ticks.push({ feed: 'simulator', exchange: 'NSE', symbol: 'TCS', mode: 1, receivedAt: at + 2, exchangeTs: null, payload: `{"ltp":3500}` });
      }
    }
    writer.append(ticks);
    writer.close();
    const all = stored(dir, 'simulator', 0, Date.parse('2024-06-01T00:00:00Z'));
    const day3 = join(dir, 'ticks-2024-05-03.db');
    fs.writeFileSync(day3, Buffer.alloc(8192, 0x5a));
    for (const suffix of ['-wal', '-shm']) fs.rmSync(day3 + suffix, { force: true });
    const expected = all.filter((t) => new Date(t.receivedAt).toISOString().slice(0, 10) !== '2024-05-03');
    expect(expected.length).toBe(1500 + 40 + 40);

    const gw = await startTestInstance({ TICKCAST_HISTORY_DIR: dir, TICKCAST_TICKS_MAX_RANGE_HOURS: '120' });
    try {
      const http = gw.url.replace('ws://', 'http://');
      const key = await gw.createKey('trader');
      const range = { exchange: 'NSE', symbol: 'RELIANCE', from: '2024-05-01', to: '2024-05-05' };

      const whole = await get(http, q(range), key);
      expect(whole.status).toBe(200);
      const lines = whole.body.trim().split('\n');
      expect(JSON.parse(lines.at(-1)!)).toEqual({ truncated: false, limit: 1_000_000, damaged_days: ['2024-05-03'] });
      expectJsonl(`${lines.slice(0, -1).join('\n')}\n`, expected);
      expect(whole.trailers['x-tickcast-damaged-days']).toBe('2024-05-03');

      // Found before the first byte: named in a header too.
      const late = await get(http, q({ ...range, from: '2024-05-03', format: 'csv' }), key);
      expect(late.headers['x-tickcast-damaged-days']).toBe('2024-05-03');
      expectCsv(late.body, expected.filter((t) => t.receivedAt >= Date.parse('2024-05-03')));

      // alice's feed is in the store; a user of the simulator never reads it, and alice (no credentials, so no feed here) reads nothing.
      expect(whole.body).not.toContain('alice');
      const alice = await gw.createKey('alice', 'zerodha');
      expect((await get(http, q(range), alice)).body).toBe('');

      // With Zerodha credentials stored, alice's own feed is hers to read, though it is not
      // running (she has not connected): exactly her ticks. Bob, another Zerodha user, reads none of them.
      const { db, fernetKey } = await openKeys(gw.config);
      const credentials = new CredentialStore({ db, fernetKey });
      credentials.set('alice', 'zerodha', { apiKey: 'kite-app', accessToken: 'alice-token' });
      credentials.set('bob', 'zerodha', { apiKey: 'kite-app', accessToken: 'bob-token' });
      db.close();
      const own = await get(http, q(range), alice);
      expect(own.headers['x-tickcast-feed']).toBe('zerodha.alice');
      expectJsonl(own.body.replace(/\{"truncated".*\n$/, ''), stored(dir, 'zerodha.alice', 0, Date.parse('2024-06-01T00:00:00Z')).filter((t) => !new Date(t.receivedAt).toISOString().startsWith('2024-05-03')));
      expect(gw.gateway.status().user_feeds).toEqual({}); // reading started no broker feed
      const bob = await gw.createKey('bob', 'zerodha');
      const bobs = await get(http, q(range), bob);
      expect(bobs.headers['x-tickcast-feed']).toBe('zerodha.bob');
      expect(bobs.body).not.toContain('alice');
    } finally {
      await gw.stop();
    }
  });
});

describe('reads on their threads', () => {
  /** A reader thread that answers only when told, so reads stay open as long as the test wants. */
  class HeldThread {
    private readonly listeners: { message: Array<(m: ReaderMessage) => void>; exit: Array<(code: number) => void>; error: Array<(e: Error) => void> } = { message: [], exit: [], error: [] };
    readonly requests: ReaderRequest[] = [];
    exited = false;
    on(event: 'message' | 'exit' | 'error', listener: (value: never) => void): this {
      (this.listeners[event] as Array<(value: never) => void>).push(listener);
      return this;
    }
    postMessage(request: ReaderRequest): void {
      this.requests.push(request);
      if (request.type === 'cancel') this.exit();
    }
    send(message: ReaderMessage): void {
      for (const listener of this.listeners.message) listener(message);
      if (message.type !== 'chunk') this.exit();
    }
    exit(): void {
      if (this.exited) return;
      this.exited = true;
      for (const listener of this.listeners.exit) listener(0);
    }
    terminate(): Promise<number> {
      this.exit();
      return Promise.resolve(0);
    }
  }

  it("frees a read's slot at the end of the read, before its thread has exited", () => {
    const threads: HeldThread[] = [];
    const reader = new TickReader({ maxReads: 1, startThread: () => (threads.push(new HeldThread()), threads.at(-1) as unknown as ReaderPort) });
    const ends: number[] = [];
    const handlers = { chunk: () => undefined, end: (end: { rows: number }) => void ends.push(end.rows), fail: (error: Error) => { throw error; } };
    const request = { dir: '/nonexistent', query: { from: 0, to: 1 }, format: 'jsonl', limit: 10 } as never;
    expect(reader.read(request, handlers)).toBeDefined();
    expect(reader.read(request, handlers)).toBeUndefined(); // the one slot is taken
    // The end arrives; the thread has not exited yet.
    for (const listener of (threads[0] as unknown as { listeners: { message: Array<(m: ReaderMessage) => void> } }).listeners.message) {
      listener({ type: 'end', rows: 3, truncated: false, damaged: [], stored: true } as ReaderMessage);
    }
    expect(threads[0]!.exited).toBe(false);
    expect(ends).toEqual([3]);
    expect(reader.running).toBe(0);
    expect(reader.read(request, handlers)).toBeDefined();
    threads[0]!.exit(); // its exit later frees nothing twice
    expect(reader.running).toBe(1);
  });

  it('runs at most 2 at once (503 with Retry-After past that), streams with backpressure, and a client that leaves stops its read', async () => {
    const threads: HeldThread[] = [];
    const reader = new TickReader({
      maxReads: 2,
      startThread: () => {
        const thread = new HeldThread();
        threads.push(thread);
        return thread as unknown as ReaderPort;
      },
    });
    const routes = new TickRoutes({
      history: { location: { kind: 'sqlite', dir: tempDir() }, maxRangeHours: 24, maxRows: 1000 },
      feedOf: async () => 'simulator',
      apiKey: { verifier: { verify: async (key) => (key === 'good' ? { user: 'trader', broker: 'simulator' } : null) }, logger: silentLogger() },
      reader,
      logger: silentLogger(),
    });
    const server: Server = createServer((req, res) => routes.handle(req, res));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const path = q({ exchange: 'NSE', symbol: 'RELIANCE', from: Date.now() - 60_000, to: Date.now() });
    try {
      // Two reads held open.
      const first = get(base, path, 'good');
      const aborted = new AbortController();
      const second = fetch(`${base}${path}`, { headers: { 'x-api-key': 'good' }, signal: aborted.signal }).catch(() => undefined);
      await waitUntil(() => threads.length === 2, 'two reads started');

      const third = await get(base, path, 'good');
      expect(third.status).toBe(503);
      expect(third.headers['retry-after']).toBe('1');
      expect(JSON.parse(third.body)).toMatchObject({ status: 'error', code: 'HISTORY_BUSY' });

      // The first streams: each chunk is asked for after the last was taken.
      threads[0]!.send({ type: 'chunk', text: '{"ts":1}\n', rows: 1, damaged: [] });
      await waitUntil(() => threads[0]!.requests.length === 1, 'the next chunk asked for');
      expect(threads[0]!.requests).toEqual([{ type: 'more' }]);
      threads[0]!.send({ type: 'end', rows: 1, truncated: false, damaged: [], stored: true });
      expect((await first).body).toBe('{"ts":1}\n');

      // The second's client leaves: its read is cancelled and its slot freed.
      threads[1]!.send({ type: 'chunk', text: '{"ts":2}\n', rows: 1, damaged: [] });
      await waitUntil(() => threads[1]!.requests.length === 1, 'the second read going');
      aborted.abort();
      await second;
      await waitUntil(() => threads[1]!.requests.some((r) => r.type === 'cancel'), 'the read cancelled');
      expect(reader.running).toBe(0);

      // A thread that fails before the first byte: a 500 in the envelope.
      const failing = get(base, path, 'good');
      await waitUntil(() => threads.length === 3, 'a third read');
      threads[2]!.send({ type: 'error', message: 'disk I/O error' });
      const failed = await failing;
      expect(failed.status).toBe(500);
      expect(JSON.parse(failed.body)).toMatchObject({ status: 'error', code: 'SERVER_ERROR' });
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });

  it('a read on a real reader thread, in chunks, off the event loop', async () => {
    const dir = tempDir();
    const writer = new TickStore({ dir });
    const at = Date.parse('2024-05-02T04:00:00Z');
    writer.append(Array.from({ length: 2500 }, (_, i) => ({ feed: 'simulator', exchange: 'NSE', symbol: 'RELIANCE', mode: 1 as const, receivedAt: at + i, exchangeTs: null, payload: `{"ltp":${i}}` })));
    writer.close();
    const reader = new TickReader({ maxReads: 1 });
    const chunks: string[] = [];
    const end = await new Promise<unknown>((resolve, reject) => {
      const read = reader.read({ location: { kind: 'sqlite', dir }, query: { from: at, to: at + 10_000 }, format: 'jsonl', limit: 2000 }, {
        chunk: (text) => {
          chunks.push(text);
          setImmediate(() => read!.more());
        },
        end: resolve,
        fail: reject,
      });
    });
    expect(end).toEqual({ rows: 2000, truncated: true, damaged: [], stored: true });
    expect(chunks.length).toBe(2);
    expect(chunks.join('').trim().split('\n').map((l) => JSON.parse(l).data.ltp)).toEqual(Array.from({ length: 2000 }, (_, i) => i));
    await waitUntil(() => reader.running === 0, 'the thread gone');
  });
});

describe('--workers 2', () => {
  it("the workers answer from the primary's store, the same as it holds", async () => {
    const data = makeTempDir();
    const dir = tempDir();
    try {
      const keyOf = async (user: string, broker: string): Promise<string> => {
        const created = await runCli(['keys', 'create', '--user', user, '--broker', broker, '--json'], { dataDir: data, env: {} });
        expect(created.code, created.stderr).toBe(0);
        return JSON.parse(created.stdout).api_key as string;
      };
      const key = await keyOf('trader', 'simulator');
      const other = await keyOf('other', 'zerodha');
      const gw = await startGatewayProcess({ dataDir: data, args: ['--workers', '2', '--record', 'all', '--sim-rate', '50'], env: { TICKCAST_HISTORY_DIR: dir } });
      const http = gw.url.replace('ws://', 'http://');
      const started = Date.now() - 1000;
      const { client, settled } = await recordSome(gw.url, key, 20);
      const range = { exchange: 'NSE', symbol: 'RELIANCE', from: started, to: settled };
      const expected = stored(dir, 'simulator', started, settled);
      expect(expected.length).toBeGreaterThanOrEqual(20);
      // Fresh connections, so both workers answer some.
      for (let i = 0; i < 4; i++) {
        const reply = await get(http, q({ ...range, ...(i % 2 ? { format: 'csv' } : {}) }), key);
        expect(reply.status).toBe(200);
        if (i % 2) expectCsv(reply.body, expected);
        else expectJsonl(reply.body, expected);
      }
      expect((await get(http, q(range), other)).body).toBe('');
      await client.close();
      expect(await gw.stop('SIGTERM')).toBe(0);
    } finally {
      removeDir(data);
    }
  });
});
