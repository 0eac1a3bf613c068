/**
 * `tickcast start --workers 2` as a real process tree: clients spread over the workers, every
 * one receives ticks, a worker killed mid-stream is replaced without touching the other's
 * clients and its upstream interest is released, and SIGTERM closes everyone with 1001.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { type GatewayProcess, killSpawnedProcesses, makeTempDir, removeDir, startGatewayProcess, workerPids } from '../helpers/cli.js';
import { TestClient, waitFor } from '../helpers/client.js';

const dirs: string[] = [];
afterEach(async () => {
  await killSpawnedProcesses();
  for (const dir of dirs.splice(0)) removeDir(dir);
});

const SYMBOLS = ['INFY', 'TCS', 'HDFCBANK', 'ICICIBANK', 'SBIN', 'ITC'];

async function startWorkers(): Promise<GatewayProcess> {
  const dir = makeTempDir();
  dirs.push(dir);
  return startGatewayProcess({ dataDir: dir, args: ['--workers', '2', '--sim-rate', '20'], env: { TICKCAST_LOG_LEVEL: 'info' } });
}

/** Client i holds NSE:SYMBOLS[i] alone and NSE:RELIANCE with everyone. */
async function connectClients(gateway: GatewayProcess, count: number): Promise<TestClient[]> {
  const clients: TestClient[] = [];
  for (let i = 0; i < count; i++) {
    const client = await TestClient.authenticated(gateway.url, gateway.devKey!);
    const reply = await client.request({ action: 'subscribe', symbols: [{ exchange: 'NSE', symbol: 'RELIANCE' }, { exchange: 'NSE', symbol: SYMBOLS[i]! }], mode: 1 + (i % 3) });
    expect(reply).toMatchObject({ type: 'subscribe', status: 'success' });
    clients.push(client);
  }
  return clients;
}

describe('tickcast start --workers 2', () => {
  it('spreads clients over both workers, streams to every one, reports the whole instance, and closes them all with 1001 on SIGTERM', async () => {
    const gateway = await startWorkers();
    expect(gateway.stdout()).toMatch(/Workers\s+2 gateway processes share the port/);
    await waitFor(() => workerPids(gateway).size === 2, 10_000);
    const clients = await connectClients(gateway, 6);
    for (const [i, client] of clients.entries()) {
      expect(await client.marketData('RELIANCE')).toMatchObject({ exchange: 'NSE', mode: 1 + (i % 3), broker: 'simulator' });
      await client.marketData(SYMBOLS[i]);
    }
    // /api/status and /metrics describe the whole instance, whichever worker answers.
    const http = gateway.url.replace('ws', 'http');
    const status = (await (await fetch(`${http}/api/status`)).json()) as Record<string, any>;
    expect(status).toMatchObject({ workers: 2, workers_reporting: 2, connections: 6, authenticated: 6, subscriptions: 12, ready: true });
    expect(status.adapters).toEqual([{ feed: 'simulator', broker: 'simulator', status: 'live' }]);
    expect(status.upstream_streams).toBe(SYMBOLS.length + 1);
    expect(status.per_worker.map((w: { worker: number }) => w.worker)).toEqual([1, 2]);
    for (const worker of status.per_worker) expect(worker.connections).toBeGreaterThan(0);
    // Each figure once: what every worker sees whole is at the top only, as a single gateway has it.
    expect(status.streams).toBeGreaterThan(0);
    expect(status.bus.ticks_by_feed.simulator).toBeGreaterThan(0);
    for (const worker of status.per_worker) for (const whole of ['bus', 'adapters', 'user_feeds', 'upstream_streams']) expect(worker).not.toHaveProperty(whole);
    const metrics = await (await fetch(`${http}/metrics`)).text();
    expect(metrics).toMatch(/^tickcast_connections 6$/m);
    expect(metrics).toMatch(/^tickcast_subscriptions 12$/m);
    // The dashboard's endpoints work on every worker.
    for (let i = 0; i < 2; i++) {
      const symbols = (await (await fetch(`${http}/api/symbols?q=INFY`, { headers: { 'x-api-key': gateway.devKey! } })).json()) as { data: Array<{ symbol: string }> };
      expect(symbols.data.map((hit) => hit.symbol)).toContain('INFY');
      const instances = (await (await fetch(`${http}/api/instances`, { headers: { 'x-api-key': gateway.devKey! } })).json()) as { data: unknown[] };
      expect(instances.data.length).toBeGreaterThan(0);
    }
    const code = await gateway.stop('SIGTERM');
    expect(code).toBe(0);
    for (const client of clients) expect((await client.closed).code).toBe(1001);
  }, 60_000);

  it("replaces a killed worker, leaves the other's clients streaming, and releases the dead worker's interest", async () => {
    const gateway = await startWorkers();
    await waitFor(() => workerPids(gateway).size === 2, 10_000);
    const clients = await connectClients(gateway, 6);
    for (const client of clients) await client.marketData('RELIANCE');

    const victim = workerPids(gateway).get(1)!;
    process.kill(victim, 'SIGKILL');
    const closed: TestClient[] = [];
    for (const client of clients) void client.closed.then(() => closed.push(client));
    await waitFor(() => gateway.stderr().includes("released a gateway worker's upstream interest"), 10_000);
    await waitFor(() => closed.length > 0, 10_000);
    const survivors = clients.filter((client) => !closed.includes(client));
    expect(closed.length).toBeGreaterThan(0);
    expect(survivors.length).toBeGreaterThan(0);
    for (const client of survivors) {
      client.drain();
      await client.marketData('RELIANCE');
    }
    expect(gateway.stderr()).toContain('gateway worker exited; its clients reconnect to the others; starting a new one');
    // The slot gets a new process; clients reconnecting land anywhere and stream again.
    await waitFor(() => workerPids(gateway).get(1) !== undefined && workerPids(gateway).get(1) !== victim, 15_000);
    const again = await connectClients(gateway, 4);
    for (const client of again) await client.marketData('RELIANCE');
    expect(await gateway.stop('SIGTERM')).toBe(0);
  }, 60_000);
});
