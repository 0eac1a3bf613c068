/**
 * The history features end to end with the PostgreSQL store (TICKCAST_HISTORY_URL, a fresh
 * database per test), on every path that delivers them: one gateway with its in-process
 * simulator (recording, `/api/status`, `GET /api/ticks`, `GET /api/history/streams`, and no
 * SQLite day file made), `--workers 2` (the primary records each tick once, a worker reads it
 * back), a NATS gateway node fed by an adapter process, a held stream recorded with no client,
 * `tickcast replay --history-url`, and a database that cannot be reached (the gateway serves
 * on, the failures are counted, its password is never shown). What the clients received is
 * compared with what PostgreSQL holds, read back through a store of its own.
 */
import type { ChildProcess } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { DEFAULT_INSTANCE } from '../../src/endpoints.js';
import { openHistoryStore } from '../../src/history/open-store.js';
import type { RecordedTick, TickQuery } from '../../src/history/store.js';
import { historyDir } from '../../src/wiring.js';
import { type Message, TestClient, sleep, waitUntil } from '../helpers/client.js';
import { type ReplayProcess, killSpawnedProcesses, makeTempDir, removeDir, runCli, startGatewayProcess, startReplayProcess } from '../helpers/cli.js';
import { startTestInstance } from '../helpers/instance.js';
import { createKeyWithCli, startSimAdapter, useNatsFleet } from '../helpers/nats-fleet.js';
import { freePort } from '../helpers/nats-server.js';
import { type PgTestDatabase, createPgTestDatabase, pgUrl } from '../helpers/openalgo-db.js';
import { type FreshReply, expectJsonl, freshRequest, ticksPath } from '../helpers/history.js';

const WAIT_MS = 15_000;
const PASSWORD = 'secretpw';

const databases: PgTestDatabase[] = [];
const dirs: string[] = [];
const children: ChildProcess[] = [];

/** A fresh database; its URL as the owner (trust auth), and the same with a password trust ignores. */
async function freshDatabase(): Promise<{ url: string; withPassword: string; name: string }> {
  const db = await createPgTestDatabase();
  databases.push(db);
  return { url: db.owner, withPassword: pgUrl(db.name, { user: 'postgres', password: PASSWORD }), name: db.name };
}

function tempDir(): string {
  const dir = makeTempDir('tickcast-pg-paths-');
  dirs.push(dir);
  return dir;
}

afterEach(async () => {
  for (const child of children.splice(0)) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  await killSpawnedProcesses();
  for (const dir of dirs.splice(0)) removeDir(dir);
  for (const db of databases.splice(0)) await db.drop();
});

const RELIANCE = { exchange: 'NSE', symbol: 'RELIANCE' };

/** What PostgreSQL holds for `query`, read through a read-only store of its own. */
async function stored(url: string, query: Partial<TickQuery> = {}): Promise<RecordedTick[]> {
  const store = await openHistoryStore({ kind: 'postgres', url }, { readonly: true });
  try {
    const out: RecordedTick[] = [];
    for await (const tick of store.read({ from: 0, to: Date.now() + 60_000, ...query })) out.push(tick);
    return out;
  } finally {
    await store.close();
  }
}

/** Stored payloads, parsed and re-serialised as the client's messages are. */
const payloads = (ticks: readonly RecordedTick[]): string[] => ticks.map((t) => JSON.stringify(JSON.parse(t.payload)));

/** Each received tick is in the store exactly once, in the order received. */
function expectRecordedOnce(received: readonly string[], store: readonly string[]): void {
  expect(received.length).toBeGreaterThan(0);
  let at = -1;
  for (const data of received) {
    const found = store.indexOf(data);
    expect(found, `a received tick missing from PostgreSQL: ${data}`).toBeGreaterThan(at);
    expect(store.lastIndexOf(data), 'a tick recorded twice').toBe(found);
    at = found;
  }
}

/** Subscribes to RELIANCE at Quote until `count` ticks arrived; `received()` is their `data`, serialised. */
async function receive(url: string, apiKey: string, count: number): Promise<{ client: TestClient; received: () => string[] }> {
  const client = await TestClient.authenticated(url, apiKey);
  expect((await client.request({ action: 'subscribe', symbols: [RELIANCE], mode: 2 })).status).toBe('success');
  const received = () => client.messages.filter((m) => m.type === 'market_data' && m.symbol === 'RELIANCE').map((m) => JSON.stringify(m.data));
  await waitUntil(() => received().length >= count, `${count} ticks`, WAIT_MS);
  return { client, received };
}

const httpOf = (wsUrl: string): string => wsUrl.replace('ws://', 'http://');

async function history(http: string): Promise<Record<string, any>> {
  const { status, body } = await get(http, '/api/status');
  expect(status).toBe(200);
  return (JSON.parse(body) as { history?: Record<string, any> }).history ?? {};
}

/**
 * Waits until every tick recorded so far is written: batches are written in order, so once
 * `written` reaches what `recorded` was, each tick recorded before is in the store. Returns
 * that instant (every tick received before it is in PostgreSQL).
 */
async function settle(http: string): Promise<number> {
  const settled = Date.now();
  const recorded = (await history(http)).ticks.recorded as number;
  const deadline = Date.now() + WAIT_MS;
  for (;;) {
    const { ticks } = await history(http);
    if (ticks.written >= recorded) break;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${recorded} ticks written: ${JSON.stringify(ticks)}`);
    await sleep(50);
  }
  return settled;
}

const get = (base: string, path: string, apiKey?: string): Promise<FreshReply> => freshRequest(base, path, apiKey === undefined ? {} : { apiKey });

/** The instance's SQLite history directory holds no day file (or is not there). */
function expectNoDayFiles(dir: string): void {
  const files = existsSync(dir) ? readdirSync(dir) : [];
  expect(files, `SQLite files in ${dir}`).toEqual([]);
}

describe('PostgreSQL history: one gateway', () => {
  it('records what its client receives, once and in order, and /api/status, /api/ticks and /api/history/streams answer from PostgreSQL', async () => {
    const { url } = await freshDatabase();
    // Another user's feed's day, already in the database (kept: no retention by age).
    const seed = await openHistoryStore({ kind: 'postgres', url });
    const seededAt = Date.parse('2024-05-01T04:00:00Z');
    await seed.append([
      { feed: 'zerodha.alice', exchange: 'NSE', symbol: 'ALICEONLY', mode: 3, receivedAt: seededAt, exchangeTs: null, payload: '{"ltp":1.5}' },
      { feed: 'zerodha.alice', exchange: 'NSE', symbol: 'ALICEONLY', mode: 3, receivedAt: seededAt + 3_600_000, exchangeTs: null, payload: '{"ltp":1.6}' },
    ]);
    const seededBytes = (await seed.days())[0]!.bytes;
    await seed.close();

    const started = Date.now() - 1000;
    const gw = await startTestInstance({ TICKCAST_RECORD: 'simulator', TICKCAST_HISTORY_URL: url, TICKCAST_HISTORY_MAX_AGE_DAYS: '0', TICKCAST_SIM_RATE: '50' });
    try {
      const http = httpOf(gw.url);
      const key = await gw.createKey('trader');
      const { client, received } = await receive(gw.url, key, 20);
      const got = received();
      const settled = await settle(http);

      // Every received tick is in PostgreSQL once, in order; nothing but the subscribed stream was recorded.
      const all = await stored(url, { streams: [{ feed: 'simulator', ...RELIANCE }] });
      expectRecordedOnce(got, payloads(all));
      expect(new Set((await stored(url, { from: started })).map((t) => `${t.feed}/${t.exchange}:${t.symbol}`))).toEqual(new Set(['simulator/NSE:RELIANCE']));
      expect(all.every((t) => t.mode === 2)).toBe(true);

      // /api/status: recording, written, and the disk figures of the database (taken at start: the seeded day).
      const status = await history(http);
      expect(status).toMatchObject({ state: 'recording', record: ['simulator'], ticks: { shed: 0, failed: 0 } });
      expect(status.ticks.written).toBeGreaterThanOrEqual(got.length);
      expect(status.disk.oldest).toBe('2024-05-01');
      expect(status.disk.days).toBeGreaterThanOrEqual(1);
      expect(status.disk.bytes).toBeGreaterThan(0);
      if (status.disk.days === 1) expect(status.disk.bytes).toBe(seededBytes);

      // GET /api/ticks: exactly PostgreSQL's ticks of the range.
      const expected = await stored(url, { from: started, to: settled, streams: [{ feed: 'simulator', ...RELIANCE }] });
      expect(expected.length).toBeGreaterThanOrEqual(got.length);
      const ticks = await get(http, ticksPath({ ...RELIANCE, from: started, to: settled }), key);
      expect(ticks.status, ticks.body).toBe(200);
      expectJsonl(ticks.body, expected);
      expect(ticks.body).not.toContain('ALICEONLY');

      // GET /api/history/streams: the caller's stream, with the database's days; not alice's.
      const streams = await get(http, '/api/history/streams', key);
      expect(streams.status, streams.body).toBe(200);
      const listed = JSON.parse(streams.body) as Record<string, any>;
      expect(listed).toMatchObject({ status: 'success', history: 'recorded', feed: 'simulator', recording: { state: 'recording' }, store: { days: 2, oldest: '2024-05-01' } });
      expect(listed.store.bytes).toBeGreaterThan(seededBytes);
      expect(listed.data.map((s: Record<string, unknown>) => `${s.feed}/${s.exchange}:${s.symbol}`)).toEqual(['simulator/NSE:RELIANCE']);
      expect(listed.data[0].ticks).toBeGreaterThan(0);
      expect(listed.data[0].ticks).toBeLessThanOrEqual(all.length + 1000);
      expect(streams.body).not.toContain('ALICEONLY');

      // The SQLite store was never used.
      expectNoDayFiles(historyDir(gw.config));
      await client.close();
    } finally {
      await gw.stop();
    }
  });

  it('holds a named stream with no client: simulator/NSE:TCS arrives in PostgreSQL', async () => {
    const { url } = await freshDatabase();
    const gw = await startTestInstance({ TICKCAST_RECORD: 'simulator/NSE:TCS', TICKCAST_HISTORY_URL: url, TICKCAST_SIM_RATE: '50' });
    try {
      const http = httpOf(gw.url);
      let status: Record<string, any> = {};
      const deadline = Date.now() + WAIT_MS;
      while (!(status.ticks?.written >= 5) && Date.now() < deadline) {
        status = await history(http);
        await sleep(50);
      }
      expect(status).toMatchObject({ state: 'recording', ticks: { failed: 0 }, holds: [{ stream: 'simulator/NSE:TCS', state: 'held' }] });
      expect(status.ticks.written).toBeGreaterThanOrEqual(5);
      expect(gw.gateway.status().subscriptions).toBe(0);
      const all = await stored(url);
      expect(all.length).toBeGreaterThanOrEqual(status.ticks.written);
      expect(new Set(all.map((t) => `${t.feed}/${t.exchange}:${t.symbol}@${t.mode}`))).toEqual(new Set(['simulator/NSE:TCS@3']));
      expectNoDayFiles(historyDir(gw.config));
    } finally {
      await gw.stop();
    }
  });
});

describe('PostgreSQL history: --workers 2', () => {
  it('the primary records each tick once, and a worker answers /api/ticks with them', async () => {
    const { url } = await freshDatabase();
    const data = tempDir();
    const started = Date.now() - 1000;
    const gw = await startGatewayProcess({ dataDir: data, args: ['--workers', '2', '--sim-rate', '50', '--record', 'all'], env: { TICKCAST_HISTORY_URL: url } });
    const http = httpOf(gw.url);
    const first = await receive(gw.url, gw.devKey!, 10);
    const second = await receive(gw.url, gw.devKey!, 10);
    const got = [first.received(), second.received()];
    const settled = await settle(http);
    expect(await history(http)).toMatchObject({ state: 'recording', record: ['all'], ticks: { shed: 0, failed: 0 } });

    const all = payloads(await stored(url, { streams: [{ feed: 'simulator', ...RELIANCE }] }));
    for (const ticks of got) expectRecordedOnce(ticks, all);
    // One tick arrives at both clients: recorded once, not once per worker.
    expect(new Set(all).size).toBe(all.length);

    const expected = await stored(url, { from: started, to: settled, streams: [{ feed: 'simulator', ...RELIANCE }] });
    expect(expected.length).toBeGreaterThanOrEqual(10);
    // Fresh connections, so both workers answer.
    for (let i = 0; i < 4; i++) {
      const reply = await get(http, ticksPath({ ...RELIANCE, from: started, to: settled }), gw.devKey!);
      expect(reply.status, reply.body).toBe(200);
      expectJsonl(reply.body, expected);
    }
    await first.client.close();
    await second.client.close();
    expect(await gw.stop('SIGTERM'), gw.stderr()).toBe(0);
    expectNoDayFiles(join(data, DEFAULT_INSTANCE, 'history'));
  });
});

describe('PostgreSQL history: on a NATS bus', () => {
  const fleet = useNatsFleet();

  it('a gateway node records what reaches it from an adapter process, and lists it', async () => {
    const { url } = await freshDatabase();
    const data = tempDir();
    const env = fleet().env('pgrecorded');
    const key = await createKeyWithCli(data, env);
    await startSimAdapter(data, env);
    const gw = await startGatewayProcess({ dataDir: data, env: { ...env, TICKCAST_RECORD: 'sim', TICKCAST_HISTORY_URL: url } });
    const http = httpOf(gw.url);
    const { client, received } = await receive(gw.url, key, 10);
    const got = received();
    await settle(http);
    const listed = JSON.parse((await get(http, '/api/history/streams', key)).body) as Record<string, any>;
    expect(listed).toMatchObject({ status: 'success', history: 'recorded', feed: 'sim', recording: { state: 'recording' } });
    expect(listed.data.map((s: Record<string, unknown>) => `${s.feed}/${s.symbol}`)).toEqual(['sim/RELIANCE']);
    expect(listed.data[0].ticks).toBeGreaterThan(0);
    await client.close();
    expect(await gw.stop('SIGTERM'), gw.stderr()).toBe(0);
    expectRecordedOnce(got, payloads(await stored(url, { streams: [{ feed: 'sim', ...RELIANCE }] })));
    expectNoDayFiles(join(data, 'pgrecorded', 'history'));
  });
});

describe('PostgreSQL history: tickcast replay --history-url', () => {
  const DAY = '2024-01-02';
  const T0 = Date.UTC(2024, 0, 2, 3, 45);

  /** 2 s of one day: RELIANCE at Depth, INFY at Quote, TCS at LTP, interleaved. */
  function recording(): RecordedTick[] {
    const ticks: RecordedTick[] = [];
    for (let n = 0; n < 90; n++) {
      const [symbol, mode] = ([['RELIANCE', 3], ['INFY', 2], ['TCS', 1]] as const)[n % 3]!;
      const depth = mode === 3 ? `,"depth":{"buy":[{"price":1399.95,"quantity":${n + 1},"orders":1}],"sell":[{"price":1400.05,"quantity":5,"orders":2}]}` : '';
      const payload = `{"symbol":"${symbol}","exchange":"NSE","ltp":${(1400 + n / 4).toFixed(2)},"ltt":${T0 + n},"timestamp":${T0 + n},"volume":${1000 + n}${depth}}`;
      ticks.push({ feed: 'simulator', exchange: 'NSE', symbol, mode, receivedAt: T0 + Math.round((n * 2000) / 89), exchangeTs: T0 + n, payload });
    }
    return ticks;
  }

  /** Spawns `tickcast replay <args>` (debug logs, to see that no password is in them); `ready` once it has registered. */
  function startReplay(dataDir: string, args: readonly string[]): ReplayProcess {
    const replay = startReplayProcess(dataDir, args, { env: { TICKCAST_LOG_LEVEL: 'debug' } });
    children.push(replay.child);
    return replay;
  }

  it("a client receives exactly the stream's ticks stored in PostgreSQL, in order; an empty range exits 1 naming the store without its password", async () => {
    const { url, withPassword, name } = await freshDatabase();
    const ticks = recording();
    const seed = await openHistoryStore({ kind: 'postgres', url });
    await seed.append(ticks.slice(0, 40));
    await seed.append(ticks.slice(40));
    await seed.close();

    const data = tempDir();
    const gw = await startGatewayProcess({ dataDir: data, args: ['--feed', 'none'] });
    const replay = startReplay(data, ['--history-url', withPassword, '--from', DAY, '--speed', 'max']);
    await replay.ready;
    const client = await TestClient.connect(gw.url);
    expect(await client.request({ action: 'authenticate', api_key: gw.devKey, snapshot: false })).toMatchObject({ status: 'success' });
    expect(await client.request({ action: 'subscribe', symbols: [RELIANCE], mode: 3 })).toMatchObject({ status: 'success' });
    const finished = await client.next((m: Message) => m.type === 'feed_status' && m.status === 'down' && /^replay finished/.test(m.message ?? ''), 20_000);
    const exit = await replay.exited;
    await client.close();
    expect(exit.code, exit.stderr).toBe(0);

    const expected = await stored(url, { from: Date.parse(DAY), to: Date.parse(DAY) + 86_400_000, streams: [RELIANCE] });
    expect(expected.length).toBe(30);
    const messages = client.messages.filter((m) => m.type === 'market_data');
    expect(messages.every((m) => m.symbol === 'RELIANCE' && m.mode === 3)).toBe(true);
    expect(messages.map((m) => m.data)).toEqual(expected.map((t) => JSON.parse(t.payload)));
    expect(finished.message).toMatch(/^replay finished: 30 ticks from 2024-01-02T03:45:00.000Z to 2024-01-02T03:45:02.000Z \(90 ticks read/);

    const empty = await runCli(['replay', '--history-url', withPassword, '--from', '2024-03-01'], { dataDir: data, env: { TICKCAST_LOG_LEVEL: 'debug' } });
    expect(empty.code, empty.stderr).toBe(1);
    const shown = withPassword.replace(`:${PASSWORD}@`, ':***@');
    expect(empty.stderr).toContain(`no ticks recorded from 2024-03-01T00:00:00.000Z to 2024-03-02T00:00:00.000Z in the history store ${shown}: it holds the day 2024-01-02`);

    // TICKCAST_HISTORY_URL is read the same way.
    const fromEnv = await runCli(['replay', '--from', '2024-03-01'], { dataDir: data, env: { TICKCAST_HISTORY_URL: withPassword } });
    expect(fromEnv.code, fromEnv.stderr).toBe(1);
    expect(fromEnv.stderr).toContain('it holds the day 2024-01-02');

    expect(await gw.stop('SIGTERM')).toBe(0);
    for (const text of [exit.stdout, exit.stderr, empty.stdout, empty.stderr, fromEnv.stdout, fromEnv.stderr, gw.stdout(), gw.stderr()]) expect(text).not.toContain(PASSWORD);
    expectNoDayFiles(join(data, DEFAULT_INSTANCE, 'history'));
  });
});

describe('PostgreSQL history: the database unreachable', () => {
  it('the gateway keeps serving its clients, stops recording saying why, answers readers 503, and never shows the password', async () => {
    const port = await freePort();
    const url = `postgres://postgres:${PASSWORD}@127.0.0.1:${port}/tickcast_nowhere`;
    const data = tempDir();
    const gw = await startGatewayProcess({ dataDir: data, args: ['--sim-rate', '50', '--record', 'simulator'], env: { TICKCAST_HISTORY_URL: url, TICKCAST_LOG_LEVEL: 'info' } });
    const http = httpOf(gw.url);
    const { client, received } = await receive(gw.url, gw.devKey!, 10);

    let status: Record<string, any> = {};
    const deadline = Date.now() + WAIT_MS;
    while (status.state !== 'stopped' && Date.now() < deadline) {
      status = await history(http);
      await sleep(50);
    }
    // Stopped at the first failed batch, rather than failing every batch into a server that is away.
    expect(status).toMatchObject({ state: 'stopped', ticks: { written: 0 } });
    expect(status.reason).toMatch(new RegExp(`^the history store cannot be reached \\(the history database at postgres://postgres:\\*\\*\\*@127\\.0\\.0\\.1:${port}/tickcast_nowhere cannot be reached: `));
    expect(status.ticks.failed).toBeGreaterThan(0);
    expect(JSON.stringify(status)).not.toContain(PASSWORD);
    expect(await (await fetch(`${http}/metrics`)).text()).toMatch(/^tickcast_history_recording 0$/m);

    // Delivery goes on.
    const before = received().length;
    await waitUntil(() => received().length >= before + 10, '10 more ticks', WAIT_MS);

    // The readers say the store is away (retry later), not a crash, and nothing of the password.
    const ticks = await get(http, ticksPath({ ...RELIANCE, from: Date.now() - 60_000, to: Date.now() }), gw.devKey!);
    expect(ticks.status).toBe(503);
    expect(JSON.parse(ticks.body)).toMatchObject({ status: 'error', code: 'HISTORY_UNAVAILABLE' });
    const streams = await get(http, '/api/history/streams', gw.devKey!);
    expect(streams.status).toBe(503);
    expect(JSON.parse(streams.body)).toMatchObject({ status: 'error', code: 'HISTORY_UNAVAILABLE' });
    for (const body of [ticks.body, streams.body, await (await fetch(`${http}/metrics`)).text()]) expect(body).not.toContain(PASSWORD);
    await waitUntil(() => received().length >= before + 20, 'ticks after the failed reads', WAIT_MS);

    await client.close();
    expect(await gw.stop('SIGTERM'), gw.stderr()).toBe(0);
    const logs = gw.stderr();
    expect(logs).toContain('recording stopped; the gateway keeps serving');
    expect(logs).toContain(`postgres://postgres:***@127.0.0.1:${port}/tickcast_nowhere`);
    expect(logs + gw.stdout()).not.toContain(PASSWORD);
  });
});
