/**
 * Many instances on one host, with real processes and sockets: concurrent starts with no port
 * configuration, per-instance isolation (including a foreign ZeroMQ publisher), pinned-port and
 * name conflicts, kill -9 recovery, IPC endpoints, and out-of-process adapters (started before
 * their gateway, killed and restarted with subscription replay).
 */
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { ZmqPublisher } from '../../src/bus/zeromq.js';
import { formatTopic } from '../../src/protocol/topics.js';
import { type GatewayProcess, killSpawnedProcesses, makeTempDir, removeDir, runCli, startAdapterCliProcess, startGatewayProcess } from '../helpers/cli.js';
import { TestClient, sleep } from '../helpers/client.js';
import { type RedisServer, startRedisServer } from '../helpers/redis-server.js';

const dirs: string[] = [];
function tempDir(): string {
  const dir = makeTempDir('tickcast-multi-');
  dirs.push(dir);
  return dir;
}

afterEach(async () => {
  await killSpawnedProcesses();
  for (const dir of dirs.splice(0)) removeDir(dir);
});

interface Fleet {
  root: string;
  env: Record<string, string>;
}

function sqliteFleet(): Fleet {
  const root = tempDir();
  return { root, env: { TICKCAST_REGISTRY: `sqlite:${join(root, 'registry.db')}`, TICKCAST_REGISTRY_TTL_SECONDS: '2' } };
}

async function instancesJson(fleet: Fleet): Promise<Array<Record<string, any>>> {
  const result = await runCli(['instances', '--json'], { dataDir: fleet.root, env: fleet.env });
  expect(result.code, result.stderr).toBe(0);
  return JSON.parse(result.stdout);
}

/** Publishes until `done` holds (a PUB loses what it sends before its connection settles). */
async function publishUntil(publisher: ZmqPublisher, topic: string, payload: object, done: () => boolean): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!done()) {
    if (Date.now() > deadline) throw new Error(`nothing arrived for ${topic}`);
    publisher.publish(topic, JSON.stringify(payload));
    await sleep(50);
  }
}

let redis: RedisServer | undefined;
afterAll(async () => {
  await redis?.stop();
});

describe.each([
  ['SQLite', async (): Promise<Fleet> => sqliteFleet()],
  [
    'Redis',
    async (): Promise<Fleet> => {
      redis ??= await startRedisServer();
      const root = tempDir();
      return { root, env: { TICKCAST_REGISTRY: `${redis.url}/0`, TICKCAST_REGISTRY_TTL_SECONDS: '2' } };
    },
  ],
])('five instances started at once with a %s registry', (_name, makeFleet) => {
  it('each picks free ports, registers, and serves only its own ticks', async () => {
    const fleet = await makeFleet();
    const names = ['alpha', 'beta', 'gamma', 'delta', 'epsilon'];
    // No port configuration at all: every non-default instance picks free ports.
    const gateways = await Promise.all(
      names.map((name, i) =>
        startGatewayProcess({
          dataDir: fleet.root,
          args: ['--instance', name],
          env: { ...fleet.env, WEBSOCKET_PORT: undefined, ZMQ_PORT: undefined, TICKCAST_SIM_SYMBOLS: `NSE:RELIANCE,NSE:ONLY${i}`, TICKCAST_SIM_RATE: '20' },
        }),
      ),
    );
    expect(new Set(gateways.map((g) => g.wsPort)).size).toBe(5);
    expect(new Set(gateways.map((g) => g.busPort)).size).toBe(5);

    const listed = await instancesJson(fleet);
    for (const [i, name] of names.entries()) {
      const entry = listed.find((e) => e.instance === name && e.role === 'gateway');
      expect(entry, name).toMatchObject({ alive: true, pid: gateways[i]!.child.pid, endpoints: { ws: gateways[i]!.url, bus: gateways[i]!.busEndpoint } });
      expect(entry!.endpoints.control).toMatch(/^tcp:\/\/127\.0\.0\.1:\d+$/);
    }

    // Each instance's simulator knows only its own extra symbol.
    const clients = await Promise.all(gateways.map((g) => TestClient.authenticated(g.url, g.devKey!)));
    for (const [i, client] of clients.entries()) {
      const own = await client.request({ action: 'subscribe', symbols: [{ symbol: `ONLY${i}`, exchange: 'NSE' }, { symbol: `ONLY${(i + 1) % 5}`, exchange: 'NSE' }, { symbol: 'RELIANCE', exchange: 'NSE' }], mode: 1 });
      expect(own.subscriptions.map((s: { status: string }) => s.status)).toEqual(['success', 'error', 'success']);
      await client.marketData(`ONLY${i}`);
    }

    // A foreign publisher on each instance's bus (on the simulator's feed, which serves these
    // clients): a value per instance reaches that instance only.
    const publishers = gateways.map((g) => new ZmqPublisher({ endpoint: g.busEndpoint, batch: false }));
    try {
      const valueOf = (i: number): number => 1000 + i + 0.25;
      const seen = (client: TestClient, value: number): boolean => client.messages.some((m) => m.type === 'market_data' && m.data.ltp === value);
      await Promise.all(
        publishers.map((p, i) => publishUntil(p, formatTopic('simulator', 'NSE', 'RELIANCE', 1), { ltp: valueOf(i), timestamp: 1 }, () => seen(clients[i]!, valueOf(i)))),
      );
      for (const [i, client] of clients.entries()) {
        for (let j = 0; j < 5; j++) if (j !== i) expect(seen(client, valueOf(j)), `instance ${i} saw instance ${j}'s tick`).toBe(false);
      }
    } finally {
      await Promise.all(publishers.map((p) => p.close()));
      await Promise.all(clients.map((c) => c.close()));
    }

    await Promise.all(gateways.map((g) => g.stop()));
    expect(await instancesJson(fleet)).toEqual([]);
  });
});

describe('conflicts', () => {
  it('a pinned port held by another instance stops the start and names the holder; the holder keeps serving', async () => {
    const fleet = sqliteFleet();
    const first = await startGatewayProcess({ dataDir: fleet.root, args: ['--instance', 'holder'], env: fleet.env });
    const result = await runCli(['start', '--instance', 'intruder'], { dataDir: fleet.root, env: { ...fleet.env, WEBSOCKET_PORT: String(first.wsPort) } });
    expect(result.code, result.stderr).toBe(1);
    expect(result.stderr).toContain(`WEBSOCKET_PORT: tcp://127.0.0.1:${first.wsPort} is already in use by tickcast instance "holder" (gateway, pid ${first.child.pid}`);
    expect(result.stderr).toContain('To run beside it, pick another port with --port N (or WEBSOCKET_PORT=N; 0 picks a free one).');

    const bus = await runCli(['start', '--instance', 'intruder'], { dataDir: fleet.root, env: { ...fleet.env, ZMQ_PORT: String(first.busPort) } });
    expect(bus.code, bus.stderr).toBe(1);
    expect(bus.stderr).toContain(`ZMQ_PORT: tcp://127.0.0.1:${first.busPort} is already in use by tickcast instance "holder"`);
    expect(bus.stderr).toContain('To run beside it, pick another port with --zmq-port N (or ZMQ_PORT=N; 0 picks a free one).');

    const client = await TestClient.authenticated(first.url, first.devKey!);
    expect(await client.request({ action: 'ping' })).toMatchObject({ type: 'pong' });
    await client.close();
  });

  it('a second gateway for a running instance is refused, naming the first', async () => {
    const fleet = sqliteFleet();
    const first = await startGatewayProcess({ dataDir: fleet.root, args: ['--instance', 'solo'], env: fleet.env });
    const result = await runCli(['start', '--instance', 'solo'], { dataDir: fleet.root, env: fleet.env });
    expect(result.code, result.stderr).toBe(1);
    expect(result.stderr).toContain(`instance "solo" is already running: tickcast instance "solo" (gateway, pid ${first.child.pid}`);
    expect(result.stderr).toContain('To run another gateway beside it, give it its own instance name with --instance NAME. [INSTANCE_RUNNING]');
  });

  it('an ipc endpoint cannot be bound twice, even by a process the registry does not know', async () => {
    const a = sqliteFleet();
    const b = sqliteFleet(); // a separate registry: only the kernel can catch this one
    const first = await startGatewayProcess({ dataDir: a.root, args: ['--instance', 'ipcdemo', '--transport', 'ipc'], env: a.env });
    expect(first.busEndpoint).toBe('ipc://@tickcast-ipcdemo-bus');
    const result = await runCli(['start', '--instance', 'ipcdemo', '--transport', 'ipc'], { dataDir: b.root, env: b.env });
    expect(result.code, result.stderr).toBe(1);
    expect(result.stderr).toContain(
      'ipc://@tickcast-ipcdemo-bus is already in use by a process outside tickcast. Its name comes from the instance name: run this one as another instance with --instance NAME, or use --transport tcp.',
    );
    const client = await TestClient.authenticated(first.url, first.devKey!);
    await client.request({ action: 'subscribe', symbols: [{ symbol: 'TCS', exchange: 'NSE' }], mode: 1 });
    await client.marketData('TCS');
    await client.close();
  });
});

describe('crash recovery', () => {
  it('kill -9 of a gateway leaves nothing that blocks a restart under the same name and ports', async () => {
    const fleet = sqliteFleet();
    const first = await startGatewayProcess({ dataDir: fleet.root, args: ['--instance', 'phoenix'], env: fleet.env });
    const pinned = { ...fleet.env, WEBSOCKET_PORT: String(first.wsPort), ZMQ_PORT: String(first.busPort) };
    first.child.kill('SIGKILL');
    await first.exited;
    const stale = await instancesJson(fleet);
    expect(stale).toEqual([expect.objectContaining({ instance: 'phoenix', pid: first.child.pid, alive: false })]);

    const again = await startGatewayProcess({ dataDir: fleet.root, args: ['--instance', 'phoenix'], env: pinned });
    expect([again.wsPort, again.busPort]).toEqual([first.wsPort, first.busPort]);
    const listed = await instancesJson(fleet);
    expect(listed).toEqual([expect.objectContaining({ instance: 'phoenix', pid: again.child.pid, alive: true })]);
    const client = await TestClient.connect(again.url);
    expect(await client.request({ action: 'ping' })).toMatchObject({ type: 'pong' });
    await client.close();
  });

  it('instances prune removes stale entries', async () => {
    const fleet = sqliteFleet();
    const gw = await startGatewayProcess({ dataDir: fleet.root, args: ['--instance', 'doomed'], env: fleet.env });
    gw.child.kill('SIGKILL');
    await gw.exited;
    const result = await runCli(['instances', 'prune'], { dataDir: fleet.root, env: fleet.env });
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toContain('removed 1 stale entry');
    expect(await instancesJson(fleet)).toEqual([]);
  });
});

describe('out-of-process adapters', () => {
  function subscribeAll(client: TestClient, symbols: string[], mode: number): Promise<Record<string, any>> {
    return client.request({ action: 'subscribe', symbols: symbols.map((symbol) => ({ symbol, exchange: 'NSE' })), mode });
  }

  it('an adapter started before its gateway waits, then serves it; killed, clients hear; restarted, streams resume', async () => {
    const fleet = sqliteFleet();
    const adapter = startAdapterCliProcess({ dataDir: fleet.root, args: ['--instance', 'split', '--sim-rate', '20'], env: fleet.env });
    await sleep(1000);
    expect(adapter.stdout()).not.toContain('is running'); // still waiting for its gateway

    const gw = await startGatewayProcess({ dataDir: fleet.root, args: ['--instance', 'split', '--feed', 'none'], env: fleet.env });
    await adapter.ready;
    const client = await TestClient.authenticated(gw.url, gw.devKey!);
    // The dev user's broker is "simulator", now served by the adapter process.
    let reply = await subscribeAll(client, ['RELIANCE', 'INFY', 'NOSUCH'], 2);
    for (let i = 0; reply.subscriptions[0].status !== 'success' && i < 50; i++) {
      await sleep(100); // the adapter's hello may still be on its way
      reply = await subscribeAll(client, ['RELIANCE', 'INFY', 'NOSUCH'], 2);
    }
    expect(reply.subscriptions.map((s: { status: string }) => s.status)).toEqual(['success', 'success', 'error']);
    expect(reply.subscriptions[2].message).toBe('Token not found for NOSUCH on NSE');
    await client.marketData('RELIANCE');
    await client.marketData('INFY');

    const listed = await instancesJson(fleet);
    expect(listed.find((e) => e.role === 'adapter')).toMatchObject({ instance: 'split', name: 'simulator', alive: true, pid: adapter.child.pid });

    // kill -9: the gateway notices the silence and tells the feed's clients.
    adapter.child.kill('SIGKILL');
    const down = await client.next((m) => m.type === 'feed_status', 15_000);
    expect(down).toMatchObject({ type: 'feed_status', feed: 'simulator', status: 'down' });

    // A restarted adapter gets the whole subscription set replayed: both streams flow again.
    const restarted = startAdapterCliProcess({ dataDir: fleet.root, args: ['--instance', 'split', '--sim-rate', '20'], env: fleet.env });
    await restarted.ready;
    expect(await client.next((m) => m.type === 'feed_status', 15_000)).toMatchObject({ status: 'live' });
    client.drain();
    await client.marketData('RELIANCE');
    await client.marketData('INFY');
    await client.close();
  });

  it('two adapters with different feed ids serve their own brokers; a duplicate feed id is refused', async () => {
    const fleet = sqliteFleet();
    const gw = await startGatewayProcess({ dataDir: fleet.root, args: ['--instance', 'duo', '--feed', 'none'], env: fleet.env });
    const one = startAdapterCliProcess({ dataDir: fleet.root, args: ['--instance', 'duo', '--feed-id', 'sim-a', '--sim-brokers', 'simulator', '--sim-symbols', 'NSE:AAA'], env: fleet.env });
    const two = startAdapterCliProcess({ dataDir: fleet.root, args: ['--instance', 'duo', '--feed-id', 'sim-b', '--sim-brokers', 'paper', '--sim-symbols', 'NSE:BBB'], env: fleet.env });
    await Promise.all([one.ready, two.ready]);

    // A simulated broker of its own (never a real one: a zerodha user never gets simulated prices).
    const keys = await runCli(['keys', 'create', '--user', 'kite', '--broker', 'paper', '--json', '--instance', 'duo'], { dataDir: fleet.root, env: { ...fleet.env, TICKCAST_SIM_BROKERS: 'paper' } });
    const kiteKey = JSON.parse(keys.stdout).api_key as string;
    const simClient = await TestClient.authenticated(gw.url, gw.devKey!);
    const kiteClient = await TestClient.authenticated(gw.url, kiteKey);
    const subscribeWhenReady = async (client: TestClient, symbol: string): Promise<Record<string, any>> => {
      for (let i = 0; ; i++) {
        const reply = await subscribeAll(client, [symbol], 1);
        if (reply.subscriptions[0].status === 'success' || i === 50) return reply;
        await sleep(100);
      }
    };
    expect((await subscribeWhenReady(simClient, 'AAA')).subscriptions[0].status).toBe('success');
    expect((await subscribeWhenReady(kiteClient, 'BBB')).subscriptions[0].status).toBe('success');
    expect((await subscribeAll(simClient, ['BBB'], 1)).subscriptions[0].status).toBe('error');
    await simClient.marketData('AAA');
    await kiteClient.marketData('BBB');

    const duplicate = startAdapterCliProcess({ dataDir: fleet.root, args: ['--instance', 'duo', '--feed-id', 'sim-a'], env: fleet.env });
    const exit = await duplicate.exited;
    expect(exit.code).toBe(1);
    expect(duplicate.stderr()).toContain('adapter "sim-a" of instance "duo" is already running');
    await simClient.close();
    await kiteClient.close();
  });
});

describe('registry hygiene', () => {
  it("a running gateway reaps a dead adapter's entry by itself", async () => {
    const fleet = sqliteFleet(); // TTL 2 s: the gateway prunes about every 2 s
    const gw = await startGatewayProcess({ dataDir: fleet.root, args: ['--instance', 'tidy', '--feed', 'none'], env: fleet.env });
    const adapter = startAdapterCliProcess({ dataDir: fleet.root, args: ['--instance', 'tidy'], env: fleet.env });
    await adapter.ready;
    expect((await instancesJson(fleet)).map((e) => e.role).sort()).toEqual(['adapter', 'gateway']);
    adapter.child.kill('SIGKILL');
    await adapter.exited;
    const deadline = Date.now() + 15_000;
    let roles: string[] = [];
    while (Date.now() < deadline) {
      roles = (await instancesJson(fleet)).map((e) => e.role);
      if (roles.length === 1) break;
      await sleep(250);
    }
    expect(roles).toEqual(['gateway']);
    expect(gw.child.exitCode).toBeNull();
  });
});
