/**
 * `GET /api/history/streams` end to end: a recording gateway lists the caller's recorded streams
 * (range, ticks, a live rate) and never another user's feed; keys are checked as elsewhere; an
 * empty store is an honest empty answer; under `--workers 2` the workers answer from the
 * primary's store with its recording state; a NATS gateway node lists what it records.
 */
import fs from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { CredentialStore } from '../../src/auth/credentials.js';
import { TickStore } from '../../src/history/tick-store.js';
import { openKeys } from '../../src/wiring.js';
import { TestClient, waitUntil } from '../helpers/client.js';
import { killSpawnedProcesses, makeTempDir, removeDir, runCli, startGatewayProcess } from '../helpers/cli.js';
import { startTestInstance } from '../helpers/instance.js';
import { createKeyWithCli, startSimAdapter, useNatsFleet } from '../helpers/nats-fleet.js';
import { freshRequest } from '../helpers/history.js';

const dirs: string[] = [];
function tempDir(): string {
  const dir = fs.mkdtempSync(join(tmpdir(), 'tickcast-streams-'));
  dirs.push(dir);
  return dir;
}
afterEach(async () => {
  await killSpawnedProcesses();
  for (const dir of dirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
});

interface Listed {
  feed: string;
  exchange: string;
  symbol: string;
  first: string;
  last: string;
  ticks: number;
  rate: number;
  mode: string;
}
interface Answer {
  status: string;
  history?: string;
  feed?: string;
  code?: string;
  message?: string;
  recording?: { state: string; record?: unknown };
  store?: { days: number; bytes: number; oldest?: string; newest?: string };
  data?: Listed[];
}

/** A GET on a fresh connection (so `--workers` spreads them), its JSON answer parsed. */
async function get(base: string, path: string, apiKey?: string, headers: Record<string, string> = {}): Promise<{ status: number; body: Answer }> {
  const reply = await freshRequest(base, path, { headers, ...(apiKey === undefined ? {} : { apiKey }) });
  return { status: reply.status, body: JSON.parse(reply.body) as Answer };
}

const PATH = '/api/history/streams';

/** Subscribes to `symbols` at Quote until each has `count` ticks; waits until they are on disk. */
async function recordSome(url: string, apiKey: string, symbols: string[], count: number): Promise<TestClient> {
  const client = await TestClient.authenticated(url, apiKey);
  expect((await client.request({ action: 'subscribe', symbols: symbols.map((symbol) => ({ symbol, exchange: 'NSE' })), mode: 2 })).status).toBe('success');
  for (const symbol of symbols) {
    await waitUntil(() => client.messages.filter((m) => m.type === 'market_data' && m.symbol === symbol).length >= count, `${count} ticks of ${symbol}`, 15_000);
  }
  // The recorder writes a batch at most 200 ms after its first tick.
  await new Promise((resolve) => setTimeout(resolve, 1000));
  return client;
}

/** A listed stream is sane: its range in order, ticks, a live rate. */
function expectLive(stream: Listed | undefined, started: number): void {
  expect(stream).toBeDefined();
  const first = Date.parse(stream!.first);
  const last = Date.parse(stream!.last);
  expect(first).toBeGreaterThanOrEqual(started);
  expect(first).toBeLessThanOrEqual(last);
  expect(last).toBeLessThanOrEqual(Date.now());
  expect(stream!.ticks).toBeGreaterThan(0);
  expect(stream!.rate).toBeGreaterThan(0);
}

describe('GET /api/history/streams', () => {
  it("lists the caller's recorded streams with range, ticks and a live rate, and never another user's feed", async () => {
    const dir = tempDir();
    // Another user's feed's ticks, already in the store (kept: no retention by age).
    const seeded = new TickStore({ dir });
    seeded.append([
      { feed: 'zerodha.alice', exchange: 'NSE', symbol: 'ALICEONLY', mode: 3, receivedAt: Date.parse('2024-05-01T04:00:00Z'), exchangeTs: null, payload: '{"ltp":1.5}' },
      { feed: 'zerodha.alice', exchange: 'NSE', symbol: 'ALICEONLY', mode: 3, receivedAt: Date.parse('2024-05-01T05:00:00Z'), exchangeTs: null, payload: '{"ltp":1.6}' },
    ]);
    seeded.close();
    const started = Date.now() - 1000;
    const gw = await startTestInstance({ TICKCAST_RECORD: 'all', TICKCAST_HISTORY_DIR: dir, TICKCAST_HISTORY_MAX_AGE_DAYS: '0', TICKCAST_SIM_RATE: '50', TICKCAST_AUTH_FAILURES: '5' });
    try {
      const http = gw.url.replace('ws://', 'http://');
      const key = await gw.createKey('trader');
      const client = await recordSome(gw.url, key, ['RELIANCE', 'TCS'], 20);

      const { status, body } = await get(http, PATH, key);
      expect(status).toBe(200);
      expect(body).toMatchObject({ status: 'success', history: 'recorded', feed: 'simulator', recording: { state: 'recording', record: ['all'] } });
      expect(body.store!.days).toBe(2);
      expect(body.store!.oldest).toBe('2024-05-01');
      expect(body.data!.map((s) => `${s.feed}/${s.exchange}:${s.symbol}`)).toEqual(['simulator/NSE:RELIANCE', 'simulator/NSE:TCS']);
      for (const stream of body.data!) expectLive(stream, started);
      // What the store holds, near enough: the list is at most a second old, and ticks keep coming.
      const held = [...new TickStore({ dir, readonly: true }).read({ from: 0, to: Date.now() + 60_000, streams: [{ feed: 'simulator', exchange: 'NSE', symbol: 'RELIANCE' }] })].length;
      expect(body.data![0]!.ticks).toBeLessThanOrEqual(held);
      expect(body.data![0]!.mode).toBe('Quote');
      expect(JSON.stringify(body)).not.toContain('ALICEONLY');

      // Filters.
      const tcs = await get(http, `${PATH}?exchange=NSE&symbol=TCS`, key);
      expect(tcs.body.data!.map((s) => s.symbol)).toEqual(['TCS']);
      expect((await get(http, `${PATH}?symbol=`, key)).body).toMatchObject({ status: 'error', code: 'INVALID_PARAMETERS' });

      // The client leaves: the streams stay listed, and their rate falls to 0 once a minute has no ticks
      // (not waited for here); their last tick stops moving.
      await client.close();

      // alice, with Zerodha credentials stored, lists her own feed's streams (her feed is not running);
      // bob, another Zerodha user, and a Zerodha user without credentials list none of hers.
      const { db, fernetKey } = await openKeys(gw.config);
      const credentials = new CredentialStore({ db, fernetKey });
      credentials.set('alice', 'zerodha', { apiKey: 'kite-app', accessToken: 'alice-token' });
      credentials.set('bob', 'zerodha', { apiKey: 'kite-app', accessToken: 'bob-token' });
      db.close();
      const alice = await get(http, PATH, await gw.createKey('alice', 'zerodha'));
      expect(alice.body.feed).toBe('zerodha.alice');
      expect(alice.body.data).toEqual([
        { feed: 'zerodha.alice', exchange: 'NSE', symbol: 'ALICEONLY', first: '2024-05-01T04:00:00.000Z', last: '2024-05-01T05:00:00.000Z', ticks: 2, rate: 0, mode: 'Depth' },
      ]);
      const bob = await get(http, PATH, await gw.createKey('bob', 'zerodha'));
      expect(bob.body).toMatchObject({ status: 'success', feed: 'zerodha.bob', data: [] });
      const carol = await get(http, PATH, await gw.createKey('carol', 'zerodha'));
      expect(carol.body).toMatchObject({ status: 'success', history: 'no-feed', data: [] });
      expect(JSON.stringify([bob.body, carol.body])).not.toMatch(/ALICEONLY|RELIANCE/);
      expect(gw.gateway.status().user_feeds).toEqual({}); // listing started no broker feed

      // Keys and hosts as the other endpoints.
      const missing = await get(http, PATH);
      expect(missing.status).toBe(401);
      expect(missing.body).toEqual({ status: 'error', code: 'AUTHENTICATION_ERROR', message: 'API key is required (send it in the X-API-Key header)' });
      const wrong = await get(http, PATH, 'not-a-key');
      expect(wrong.status).toBe(401);
      expect(wrong.body).toEqual({ status: 'error', code: 'AUTHENTICATION_ERROR', message: 'Invalid API key' });
      expect((await get(http, PATH, key, { host: 'evil.example' })).status).toBe(421);
    } finally {
      await gw.stop();
    }
  });

  it('answers an empty store honestly: an empty list saying so, recording off', async () => {
    const gw = await startTestInstance({ TICKCAST_HISTORY_DIR: join(tempDir(), 'never-recorded') });
    try {
      const http = gw.url.replace('ws://', 'http://');
      const { status, body } = await get(http, PATH, await gw.createKey('trader'));
      expect(status).toBe(200);
      expect(body).toMatchObject({ status: 'success', history: 'none', feed: 'simulator', recording: { state: 'off' }, store: { days: 0, bytes: 0 }, data: [] });
      expect(body.message).toMatch(/holds nothing/);
    } finally {
      await gw.stop();
    }
  });
});

describe('--workers 2', () => {
  it("the workers list the primary's recorded streams with its recording state", async () => {
    const data = makeTempDir();
    const dir = tempDir();
    try {
      const created = await runCli(['keys', 'create', '--user', 'trader', '--json'], { dataDir: data, env: {} });
      expect(created.code, created.stderr).toBe(0);
      const key = JSON.parse(created.stdout).api_key as string;
      const started = Date.now() - 1000;
      const gw = await startGatewayProcess({ dataDir: data, args: ['--workers', '2', '--record', 'all', '--sim-rate', '50'], env: { TICKCAST_HISTORY_DIR: dir } });
      const http = gw.url.replace('ws://', 'http://');
      const client = await recordSome(gw.url, key, ['RELIANCE'], 20);
      // Fresh connections, so both workers answer.
      for (let i = 0; i < 4; i++) {
        const { status, body } = await get(http, PATH, key);
        expect(status).toBe(200);
        expect(body).toMatchObject({ history: 'recorded', feed: 'simulator', recording: { state: 'recording' } });
        expect(body.data!.map((s) => s.symbol)).toEqual(['RELIANCE']);
        expectLive(body.data![0], started);
      }
      await client.close();
      expect(await gw.stop('SIGTERM'), gw.stderr()).toBe(0);
    } finally {
      removeDir(data);
    }
  });
});

describe('on a NATS bus', () => {
  const fleet = useNatsFleet();

  it('a gateway node lists what it records from an adapter process', async () => {
    const data = makeTempDir();
    const dir = tempDir();
    const env = fleet().env('listed');
    try {
      const key = await createKeyWithCli(data, env);
      await startSimAdapter(data, env);
      const started = Date.now() - 1000;
      const gw = await startGatewayProcess({ dataDir: data, env: { ...env, TICKCAST_RECORD: 'sim', TICKCAST_HISTORY_DIR: dir } });
      const client = await recordSome(gw.url, key, ['RELIANCE'], 10);
      const { status, body } = await get(gw.url.replace('ws://', 'http://'), PATH, key);
      expect(status).toBe(200);
      expect(body).toMatchObject({ history: 'recorded', feed: 'sim', recording: { state: 'recording' } });
      expect(body.data!.map((s) => `${s.feed}/${s.symbol}`)).toEqual(['sim/RELIANCE']);
      expectLive(body.data![0], started);
      await client.close();
      expect(await gw.stop('SIGTERM'), gw.stderr()).toBe(0);
    } finally {
      removeDir(data);
    }
  });
});
