/**
 * Recording holds: a stream TICKCAST_RECORD names is recorded with no client connected, at Depth,
 * whatever clients do with it meanwhile — on one gateway, under `--workers 2` (the primary holds
 * it) and on a NATS gateway node (it holds its own) — and a stream the feed refuses is shown in
 * /api/status without disturbing anything else.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { TickStore } from '../../src/history/tick-store.js';
import type { RecordedTick } from '../../src/history/store.js';
import { TestClient, waitUntil } from '../helpers/client.js';
import { killSpawnedProcesses, makeTempDir, removeDir, startGatewayProcess } from '../helpers/cli.js';
import { startTestInstance } from '../helpers/instance.js';
import { startSimAdapter, useNatsFleet } from '../helpers/nats-fleet.js';

const dirs: string[] = [];
function historyDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'tickcast-holds-'));
  dirs.push(dir);
  return dir;
}
afterEach(async () => {
  await killSpawnedProcesses();
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/** Every recorded tick of NSE:RELIANCE. */
function recorded(dir: string): RecordedTick[] {
  return [...new TickStore({ dir, readonly: true }).read({ from: 0, to: Date.now() + 60_000, streams: [{ exchange: 'NSE', symbol: 'RELIANCE' }] })];
}

/** Ticks recorded at Depth, each with the order book a Depth payload carries. */
function expectDepth(ticks: RecordedTick[], feed: string): void {
  for (const tick of ticks) {
    expect(tick.feed).toBe(feed);
    expect(tick.mode).toBe(3);
    expect(JSON.parse(tick.payload)).toHaveProperty('depth.buy');
  }
}

async function statusOf(url: string): Promise<Record<string, any>> {
  return (await (await fetch(`${url.replace('ws://', 'http://')}/api/status`)).json()) as Record<string, any>;
}

/** Polls /api/status until at least `ticks` are written; returns its `history`. */
async function writtenAtLeast(url: string, ticks: number, timeoutMs = 15_000): Promise<Record<string, any>> {
  let history: Record<string, any> = {};
  const deadline = Date.now() + timeoutMs;
  while (!(history.ticks?.written >= ticks)) {
    if (Date.now() > deadline) throw new Error(`fewer than ${ticks} ticks written within ${timeoutMs} ms: ${JSON.stringify(history)}`);
    history = (await statusOf(url)).history ?? {};
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return history;
}

describe('recording holds', () => {
  it('one gateway records a named stream with no client, through a client coming and going, and shows a refused one', async () => {
    const dir = historyDir();
    const gw = await startTestInstance({ TICKCAST_RECORD: 'simulator/NSE:RELIANCE,simulator/NSE:NOSUCH', TICKCAST_HISTORY_DIR: dir, TICKCAST_SIM_RATE: '50' });
    try {
      const before = await writtenAtLeast(gw.url, 20);
      expect(before.holds).toEqual([
        { stream: 'simulator/NSE:RELIANCE', state: 'held' },
        { stream: 'simulator/NSE:NOSUCH', state: 'refused', message: 'Token not found for NOSUCH on NSE' },
      ]);
      const status = await statusOf(gw.url);
      expect(status).toMatchObject({ connections: 0, subscriptions: 0, upstream_streams: 1 });

      // A client takes RELIANCE at LTP (and the refused symbol, which it is refused as ever) and leaves it.
      const client = await TestClient.authenticated(gw.url, await gw.createKey('trader'));
      const reply = await client.request({ action: 'subscribe', symbols: [{ symbol: 'RELIANCE', exchange: 'NSE' }, { symbol: 'NOSUCH', exchange: 'NSE' }, { symbol: 'TCS', exchange: 'NSE' }], mode: 1 });
      expect(reply.subscriptions.map((s: { status: string }) => s.status)).toEqual(['success', 'error', 'success']);
      const ticks = () => client.messages.filter((m) => m.type === 'market_data');
      await waitUntil(() => ticks().some((m) => m.symbol === 'RELIANCE') && ticks().some((m) => m.symbol === 'TCS'), 'RELIANCE and TCS ticks', 10_000);
      // The client gets what it asked for, never the hold's Depth.
      expect(new Set(ticks().map((m) => m.mode))).toEqual(new Set([1]));
      expect((await statusOf(gw.url)).subscriptions).toBe(2);
      expect((await client.request({ action: 'unsubscribe', symbols: [{ symbol: 'RELIANCE', exchange: 'NSE', mode: 1 }] })).status).toBe('success');
      await client.close();
      await waitUntil(() => gw.gateway.listener.sessions.size === 0 && gw.gateway.upstream.size === 1, 'the client gone, TCS released upstream', 5_000);

      // Recording goes on without it.
      const afterLeaving = recorded(dir).length;
      await waitUntil(() => recorded(dir).length >= afterLeaving + 20, 'RELIANCE still recorded after the client left', 10_000);
      const after = await statusOf(gw.url);
      expect(after.history.holds[0]).toEqual({ stream: 'simulator/NSE:RELIANCE', state: 'held' });
      expect(after).toMatchObject({ subscriptions: 0, upstream_streams: 1 });
      await gw.stop();
      const store = recorded(dir);
      expect(store.length).toBeGreaterThanOrEqual(afterLeaving + 20);
      expectDepth(store, 'simulator');
    } finally {
      await gw.stop().catch(() => undefined);
    }
  });

  it('--workers 2: the primary holds a stream named for every feed on its simulator, and records it with no client', async () => {
    const data = makeTempDir();
    const dir = historyDir();
    try {
      const gw = await startGatewayProcess({ dataDir: data, args: ['--workers', '2', '--sim-rate', '50', '--record', 'NSE:RELIANCE'], env: { TICKCAST_HISTORY_DIR: dir } });
      const history = await writtenAtLeast(gw.url, 20);
      expect(history).toMatchObject({ state: 'recording', record: ['NSE:RELIANCE'], holds: [{ stream: 'simulator/NSE:RELIANCE', state: 'held' }] });
      expect(await gw.stop('SIGTERM')).toBe(0);
      const store = recorded(dir);
      expect(store.length).toBeGreaterThanOrEqual(20);
      expectDepth(store, 'simulator');
    } finally {
      removeDir(data);
    }
  });

  describe('on a NATS bus', () => {
    const fleet = useNatsFleet();

    it('a gateway node holds its named stream on an adapter process’s feed once it joins, and records it with no client', async () => {
      const data = makeTempDir();
      const dir = historyDir();
      const env = fleet().env('held');
      try {
        // The node starts first: its hold waits for the feed.
        const gw = await startGatewayProcess({ dataDir: data, env: { ...env, TICKCAST_RECORD: 'sim/NSE:RELIANCE,NSE:TCS', TICKCAST_HISTORY_DIR: dir } });
        expect((await statusOf(gw.url)).history.holds).toEqual([{ stream: 'sim/NSE:RELIANCE', state: 'waiting', message: 'waiting for feed sim to be live here' }]);
        await startSimAdapter(data, env);
        const history = await writtenAtLeast(gw.url, 20);
        expect(history.holds).toEqual([{ stream: 'sim/NSE:RELIANCE', state: 'held' }]);
        expect(await gw.stop('SIGTERM')).toBe(0);
        const store = recorded(dir);
        expect(store.length).toBeGreaterThanOrEqual(20);
        expectDepth(store, 'sim');
      } finally {
        removeDir(data);
      }
    });
  });
});
