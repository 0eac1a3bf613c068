/**
 * Recording end to end: what clients receive is what the store holds, on every path that
 * delivers ticks — one gateway with its in-process simulator, `--workers 2` (the primary
 * records, once), a NATS gateway node — and a gateway killed with -9 leaves a store that opens,
 * passes its integrity check and holds every tick it had reported written.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { TickStore } from '../../src/history/tick-store.js';
import { TestClient, waitUntil } from '../helpers/client.js';
import { killSpawnedProcesses, makeTempDir, removeDir, startGatewayProcess } from '../helpers/cli.js';
import { startTestInstance } from '../helpers/instance.js';
import { createKeyWithCli, startSimAdapter, useNatsFleet } from '../helpers/nats-fleet.js';

const dirs: string[] = [];
function historyDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'tickcast-history-'));
  dirs.push(dir);
  return dir;
}
afterEach(async () => {
  await killSpawnedProcesses();
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/** Subscribes to RELIANCE at Quote and returns the `data` of the first `count` ticks received. */
async function receive(url: string, apiKey: string, count: number): Promise<{ client: TestClient; received: () => string[] }> {
  const client = await TestClient.authenticated(url, apiKey);
  expect((await client.request({ action: 'subscribe', symbols: [{ symbol: 'RELIANCE', exchange: 'NSE' }], mode: 2 })).status).toBe('success');
  const received = () => client.messages.filter((m) => m.type === 'market_data' && m.symbol === 'RELIANCE').map((m) => JSON.stringify(m.data));
  await waitUntil(() => received().length >= count, `${count} ticks`, 15_000);
  return { client, received };
}

/** Every recorded RELIANCE payload, parsed and re-serialised as the client's messages are. */
function recorded(dir: string): string[] {
  return [...new TickStore({ dir, readonly: true }).read({ from: 0, to: Date.now() + 60_000, streams: [{ exchange: 'NSE', symbol: 'RELIANCE' }] })].map((t) => JSON.stringify(JSON.parse(t.payload)));
}

/** Each received tick is in the store exactly once, in the order received. */
function expectRecordedOnce(received: string[], store: string[]): void {
  let at = -1;
  for (const data of received) {
    const found = store.indexOf(data);
    expect(found, `a received tick missing from the store: ${data}`).toBeGreaterThan(at);
    expect(store.lastIndexOf(data), 'a tick recorded twice').toBe(found);
    at = found;
  }
}

describe('recording', () => {
  it('stores what an in-process feed delivers, and shows the figures', async () => {
    const dir = historyDir();
    const gw = await startTestInstance({ TICKCAST_RECORD: 'simulator', TICKCAST_HISTORY_DIR: dir, TICKCAST_SIM_RATE: '50' });
    try {
      const { client, received } = await receive(gw.url, await gw.createKey('trader'), 20);
      const http = gw.url.replace('ws://', 'http://');
      await waitUntil(() => (gw.gateway.status().history as { ticks: { written: number } }).ticks.written >= 20, 'ticks written', 10_000);
      const status = (await (await fetch(`${http}/api/status`)).json()) as Record<string, any>;
      expect(status.history).toMatchObject({ state: 'recording', record: ['simulator'], ticks: { shed: 0, failed: 0 } });
      const metrics = await (await fetch(`${http}/metrics`)).text();
      expect(metrics).toMatch(/^tickcast_history_recording 1$/m);
      expect(metrics).toMatch(/^tickcast_history_ticks_written_total [1-9]\d*$/m);
      const got = received();
      await client.close();
      await gw.stop();
      expectRecordedOnce(got, recorded(dir));
    } finally {
      await gw.stop().catch(() => undefined);
    }
  });

  it('records nothing when off, and only the selected streams', async () => {
    const dir = historyDir();
    const gw = await startTestInstance({ TICKCAST_RECORD: 'simulator/NSE:TCS', TICKCAST_HISTORY_DIR: dir, TICKCAST_SIM_RATE: '50' });
    const { client } = await receive(gw.url, await gw.createKey('trader'), 10);
    await client.request({ action: 'subscribe', symbols: [{ symbol: 'TCS', exchange: 'NSE' }], mode: 1 });
    await waitUntil(() => (gw.gateway.status().history as { ticks: { written: number } }).ticks.written >= 5, 'TCS ticks written', 10_000);
    await client.close();
    await gw.stop();
    expect(recorded(dir)).toEqual([]);
    const streams = new Set([...new TickStore({ dir, readonly: true }).read({ from: 0, to: Date.now() + 60_000 })].map((t) => `${t.feed}/${t.exchange}:${t.symbol}`));
    expect([...streams]).toEqual(['simulator/NSE:TCS']);

    const off = await startTestInstance({ TICKCAST_HISTORY_DIR: historyDir() });
    expect(off.gateway.status().history).toBeUndefined();
    await off.stop();
  });

  it('--workers 2: the primary records each tick once', async () => {
    const data = makeTempDir();
    const dir = historyDir();
    try {
      const gw = await startGatewayProcess({ dataDir: data, args: ['--workers', '2', '--sim-rate', '50', '--record', 'all'], env: { TICKCAST_HISTORY_DIR: dir } });
      const first = await receive(gw.url, gw.devKey!, 10);
      const second = await receive(gw.url, gw.devKey!, 10);
      const status = async () => (await (await fetch(`${gw.url.replace('ws://', 'http://')}/api/status`)).json()) as Record<string, any>;
      let history: Record<string, any> = {};
      const deadline = Date.now() + 10_000;
      while (!(history.ticks?.written > 20) && Date.now() < deadline) history = (await status()).history ?? {};
      expect(history).toMatchObject({ state: 'recording', record: ['all'] });
      const metrics = await (await fetch(`${gw.url.replace('ws://', 'http://')}/metrics`)).text();
      expect(metrics).toMatch(/^tickcast_history_recording 1$/m);
      const got = [first.received(), second.received()];
      await first.client.close();
      await second.client.close();
      expect(await gw.stop('SIGTERM')).toBe(0);
      const store = recorded(dir);
      for (const ticks of got) expectRecordedOnce(ticks, store);
    } finally {
      removeDir(data);
    }
  });

  it('kill -9 while recording: the store opens, passes its check and holds what was reported written', async () => {
    const data = makeTempDir();
    const dir = historyDir();
    try {
      const gw = await startGatewayProcess({ dataDir: data, args: ['--sim-rate', '200', '--record', 'all'], env: { TICKCAST_HISTORY_DIR: dir } });
      const { client } = await receive(gw.url, gw.devKey!, 5);
      let written = 0;
      const deadline = Date.now() + 15_000;
      while (written < 500 && Date.now() < deadline) {
        written = ((await (await fetch(`${gw.url.replace('ws://', 'http://')}/api/status`)).json()) as any).history.ticks.written;
      }
      expect(written).toBeGreaterThanOrEqual(500);
      gw.child.kill('SIGKILL');
      await gw.exited;
      await client.closed;
      const days = new TickStore({ dir, readonly: true }).days();
      for (const day of days) {
        const db = new BetterSqlite3(day.file);
        try {
          expect(db.pragma('integrity_check', { simple: true })).toBe('ok');
        } finally {
          db.close();
        }
      }
      const held = [...new TickStore({ dir, readonly: true }).read({ from: 0, to: Date.now() + 60_000 })].length;
      expect(held).toBeGreaterThanOrEqual(written);
    } finally {
      removeDir(data);
    }
  });

  describe('on a NATS bus', () => {
    const fleet = useNatsFleet();

    it('a gateway node records what reaches it from an adapter process', async () => {
      const data = makeTempDir();
      const dir = historyDir();
      const env = fleet().env('recorded');
      try {
        const apiKey = await createKeyWithCli(data, env);
        await startSimAdapter(data, env);
        const gw = await startGatewayProcess({ dataDir: data, env: { ...env, TICKCAST_RECORD: 'sim', TICKCAST_HISTORY_DIR: dir } });
        const { client, received } = await receive(gw.url, apiKey, 10);
        const got = received();
        await client.close();
        expect(await gw.stop('SIGTERM')).toBe(0);
        expectRecordedOnce(got, recorded(dir));
      } finally {
        removeDir(data);
      }
    });
  });
});
