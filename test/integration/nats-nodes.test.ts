/**
 * Several gateway nodes of one instance on a NATS bus, as real processes: a nats-server and a
 * redis-server the test starts itself, one `tickcast adapter --bus nats://…` and two
 * `tickcast start --bus nats://… --feed none` nodes. Clients on either node get the same ticks;
 * a killed node takes nothing from the other's clients and its upstream interest is released;
 * a nats-server restart heals by itself.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { NatsLink } from '../../src/bus/nats.js';
import { Subjects } from '../../src/bus/subjects.js';
import { silentLogger } from '../../src/observability/logger.js';
import {
  type AdapterProcess,
  type GatewayProcess,
  killSpawnedProcesses,
  makeTempDir,
  removeDir,
  runCli,
  startAdapterCliProcess,
  startGatewayProcess,
} from '../helpers/cli.js';
import { type Message, TestClient, sleep } from '../helpers/client.js';
import { createKeyWithCli, useNatsFleet } from '../helpers/nats-fleet.js';

/** Symbols with dots (NATS's token separator) and & ride along, to cross the bus escaped and come back whole. */
const SYMBOLS = 'NSE:TCS,NSE:INFY,NSE:RELIANCE,NSE:M&M,NSE:BRK.B,NSE:A.B.C';

const bus = useNatsFleet();
let dataDir: string;
let env: Record<string, string>;
let apiKey: string;
let prefix = 0;
const clients: TestClient[] = [];
const links: NatsLink[] = [];

beforeAll(() => {
  dataDir = makeTempDir('tickcast-nats-');
});
afterAll(() => removeDir(dataDir));

afterEach(async () => {
  for (const client of clients.splice(0)) client.socket.terminate();
  for (const link of links.splice(0)) await link.close();
  await killSpawnedProcesses();
});

/** Each test its own instance name and Redis prefix-free namespace: nothing leaks between tests. */
async function fleet(): Promise<{ instance: string }> {
  const instance = `scale${++prefix}`;
  env = bus().env(instance, { TICKCAST_REGISTRY_TTL_SECONDS: '3', TICKCAST_SIM_SYMBOLS: SYMBOLS, TICKCAST_SIM_RATE: '10', TICKCAST_SIM_SEED: '7' });
  apiKey = await createKeyWithCli(dataDir, env);
  return { instance };
}

function adapter(): AdapterProcess {
  return startAdapterCliProcess({ dataDir, env, args: ['--feed-id', 'sim'] });
}

function node(name: string): Promise<GatewayProcess> {
  return startGatewayProcess({ dataDir, env, args: ['--node', name] });
}

async function client(gateway: GatewayProcess): Promise<TestClient> {
  const c = await TestClient.authenticated(gateway.url, apiKey);
  clients.push(c);
  return c;
}

/** Subscribes, retrying while the node has not found the adapter yet (a per-symbol error until then). */
async function subscribe(c: TestClient, symbol: string, mode = 1): Promise<void> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const reply = await c.request({ action: 'subscribe', symbols: [{ exchange: 'NSE', symbol }], mode });
    if (reply.status === 'success') return;
    if (Date.now() > deadline) throw new Error(`subscribe ${symbol} kept failing: ${JSON.stringify(reply)}`);
    if (reply.status === 'partial' || reply.status === 'error') {
      // Not subscribed: try again once the node has registered with the adapter.
      await sleep(200);
      continue;
    }
    throw new Error(`unexpected reply ${JSON.stringify(reply)}`);
  }
}

/** Every market_data message a client gets from now on. */
function record(c: TestClient): Message[] {
  const seen: Message[] = [];
  c.socket.on('message', (data) => {
    const message = JSON.parse(data.toString()) as Message;
    if (message.type === 'market_data') seen.push(message);
  });
  return seen;
}

async function waitUntil(condition: () => boolean, what: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

/** A raw NATS subscriber counting the instance's ticks per symbol, as they cross the bus. */
async function busWatcher(instance: string): Promise<{ counts: Map<string, number>; last: Map<string, number> }> {
  const link = await NatsLink.connect({ servers: [bus().nats.url], name: 'test watcher', logger: silentLogger() });
  links.push(link);
  const subjects = new Subjects(instance);
  const counts = new Map<string, number>();
  const last = new Map<string, number>();
  link.connection.subscribe(subjects.allTicks, {
    callback: (_err, msg) => {
      const stream = subjects.parseTick(msg.subject);
      if (!stream) return;
      counts.set(stream.symbol, (counts.get(stream.symbol) ?? 0) + 1);
      last.set(stream.symbol, Date.now());
    },
  });
  await link.connection.flush();
  return { counts, last };
}

const tickKey = (m: Message): string => `${m.symbol}@${m.data.timestamp}:${m.data.ltp}`;

describe('gateway nodes on a NATS bus', () => {
  it('clients on both nodes receive the same ticks, awkward symbols included; tickcast instances lists the nodes', async () => {
    const { instance } = await fleet();
    const sim = adapter();
    const [a, b] = await Promise.all([node('node-a'), node('node-b'), sim.ready]);
    const ca = await client(a);
    const cb = await client(b);
    const seenA = record(ca);
    const seenB = record(cb);
    for (const symbol of ['TCS', 'BRK.B', 'A.B.C']) {
      await subscribe(ca, symbol);
      await subscribe(cb, symbol);
    }
    await waitUntil(() => ['TCS', 'BRK.B', 'A.B.C'].every((s) => seenA.filter((m) => m.symbol === s).length >= 8 && seenB.filter((m) => m.symbol === s).length >= 8), 'ticks on both nodes');
    // Once both are subscribed, every tick one client gets, the other gets too.
    const startB = Math.max(...['TCS', 'BRK.B', 'A.B.C'].map((s) => seenB.find((m) => m.symbol === s)!.data.timestamp as number));
    const startA = Math.max(...['TCS', 'BRK.B', 'A.B.C'].map((s) => seenA.find((m) => m.symbol === s)!.data.timestamp as number));
    const from = Math.max(startA, startB);
    const to = Math.min(seenA.at(-1)!.data.timestamp, seenB.at(-1)!.data.timestamp) - 1;
    const inWindow = (list: Message[]): string[] => list.filter((m) => m.data.timestamp > from && m.data.timestamp < to).map(tickKey).sort();
    expect(inWindow(seenA).length).toBeGreaterThan(0);
    expect(inWindow(seenA)).toEqual(inWindow(seenB));
    expect(new Set(seenA.map((m) => m.symbol))).toEqual(new Set(['TCS', 'BRK.B', 'A.B.C']));

    const listed = await runCli(['instances', '--json'], { dataDir, env });
    expect(listed.code, listed.stderr).toBe(0);
    const entries = (JSON.parse(listed.stdout) as Array<Record<string, any>>).filter((e) => e.instance === instance && e.alive);
    expect(entries.map((e) => `${e.role} ${e.name}`).sort()).toEqual(['adapter sim', 'gateway node-a', 'gateway node-b']);
    expect(entries.find((e) => e.name === 'node-a')!.endpoints).toMatchObject({ ws: a.url, bus: bus().nats.url, control: null });
    const table = await runCli(['instances'], { dataDir, env });
    expect(table.stdout).toMatch(new RegExp(`${instance}: 2 gateway nodes on 1 host`));
  });

  it("killing a node leaves the other node's clients untouched and releases the dead node's upstream interest", async () => {
    const { instance } = await fleet();
    const sim = adapter();
    const [a, b] = await Promise.all([node('node-a'), node('node-b'), sim.ready]);
    const bus = await busWatcher(instance);
    const ca = await client(a);
    const cb = await client(b);
    await subscribe(ca, 'INFY'); // only node a wants INFY
    await subscribe(ca, 'TCS');
    await subscribe(cb, 'TCS');
    const seenB = record(cb);
    await waitUntil(() => (bus.counts.get('INFY') ?? 0) > 5 && seenB.length > 5, 'ticks flowing');

    a.child.kill('SIGKILL');
    const killedAt = Date.now();
    await a.exited;
    // The adapter drops node a after its heartbeats stop: INFY stops crossing the bus.
    await waitUntil(() => Date.now() - (bus.last.get('INFY') ?? 0) > 1500, "INFY released after node a's death");
    expect(bus.last.get('INFY')!).toBeGreaterThan(killedAt); // it was not released before the timeout
    // Node b's client never noticed: still connected, TCS still arriving, and the bus still carries it.
    const before = seenB.length;
    await waitUntil(() => seenB.length >= before + 10, 'more TCS ticks on node b');
    expect(ca.socket.readyState).not.toBe(ca.socket.OPEN);
    expect(cb.socket.readyState).toBe(cb.socket.OPEN);
    expect(Date.now() - bus.last.get('TCS')!).toBeLessThan(1000);
  });

  it('a node stopped gracefully releases its interest at once', async () => {
    const { instance } = await fleet();
    const sim = adapter();
    const [a, b] = await Promise.all([node('node-a'), node('node-b'), sim.ready]);
    const bus = await busWatcher(instance);
    const ca = await client(a);
    await subscribe(ca, 'RELIANCE');
    await subscribe(await client(b), 'TCS');
    await waitUntil(() => (bus.counts.get('RELIANCE') ?? 0) > 3, 'RELIANCE flowing');
    expect(await a.stop('SIGTERM')).toBe(0);
    await waitUntil(() => Date.now() - (bus.last.get('RELIANCE') ?? 0) > 1000, 'RELIANCE released');
    expect(Date.now() - bus.last.get('TCS')!).toBeLessThan(1000);
  });

  it('a nats-server restart: adapter and nodes reconnect and resubscribe by themselves', async () => {
    await fleet();
    const sim = adapter();
    const [a, b] = await Promise.all([node('node-a'), node('node-b'), sim.ready]);
    const ca = await client(a);
    const cb = await client(b);
    await subscribe(ca, 'TCS');
    await subscribe(cb, 'M&M');
    const seenA = record(ca);
    const seenB = record(cb);
    await waitUntil(() => seenA.length > 3 && seenB.length > 3, 'ticks before the restart');

    await bus().nats.restart({ downMs: 500 });
    const restartedAt = Date.now();
    await waitUntil(() => seenA.some((m) => m.data.timestamp > restartedAt) && seenB.some((m) => m.data.timestamp > restartedAt), 'ticks after the restart');
    expect(seenB.every((m) => m.symbol === 'M&M')).toBe(true);
    // The control plane works again too: a new stream on node b.
    await subscribe(cb, 'RELIANCE');
    await waitUntil(() => seenB.some((m) => m.symbol === 'RELIANCE'), 'a stream subscribed after the restart');
    expect(ca.socket.readyState).toBe(ca.socket.OPEN);
    expect(cb.socket.readyState).toBe(cb.socket.OPEN);
  });

  it('a second node under a name already running is refused, naming the holder', async () => {
    await fleet();
    await node('twin');
    const second = await runCli(['start', '--node', 'twin', '--port', '0'], { dataDir, env });
    expect(second.code).toBe(1);
    expect(second.stderr).toMatch(/node "twin" of instance "scale\d+" is already running: tickcast instance "scale\d+" \(gateway node "twin", pid \d+ on /);
  });

  it('refuses a NATS bus with the in-process simulator, saying what to do instead', async () => {
    await fleet();
    const result = await runCli(['start', '--feed', 'simulator'], { dataDir, env });
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('TICKCAST_FEED (--feed)="simulator" is not valid: expected none when TICKCAST_BUS is a NATS URL');
  });
});
