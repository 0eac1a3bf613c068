/**
 * Faults between a gateway and its out-of-process adapter, with real processes (`tickcast start`
 * and `tickcast adapter`): the adapter killed mid-stream and restarted, and the gateway restarted
 * under a running adapter (gracefully on new ports, and killed then restarted on the same ports).
 * Each ends with the gateway serving, clients getting ticks again, and the operator told in the log.
 * (multi-instance.test.ts covers an adapter that starts before its gateway.)
 */
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { type GatewayProcess, killSpawnedProcesses, makeTempDir, removeDir, runCli, startAdapterCliProcess, startGatewayProcess } from '../helpers/cli.js';
import { type Message, TestClient, sleep } from '../helpers/client.js';
import { LEVEL, linesWith, waitForLog, waitForMessage } from '../helpers/logs.js';

const dirs: string[] = [];
afterEach(async () => {
  await killSpawnedProcesses();
  for (const dir of dirs.splice(0)) removeDir(dir);
});

/** A data directory and registry of its own; a 2 s TTL keeps heartbeats (and these tests) quick. */
function fleet(): { root: string; env: Record<string, string> } {
  const root = makeTempDir('tickcast-faults-');
  dirs.push(root);
  return { root, env: { TICKCAST_REGISTRY: `sqlite:${join(root, 'registry.db')}`, TICKCAST_REGISTRY_TTL_SECONDS: '2' } };
}

/** Authenticates with per-stream sequence numbers and no snapshots, so a repeated tick would show. */
async function seqClient(url: string, key: string): Promise<TestClient> {
  const client = await TestClient.connect(url);
  const reply = await client.request({ action: 'authenticate', api_key: key, seq: true, snapshot: false });
  expect(reply).toMatchObject({ type: 'auth', status: 'success', seq: true });
  return client;
}

/** Subscribes, retrying while the adapter's hello may still be on its way to a new gateway. */
async function subscribeWhenServed(client: TestClient, symbols: string[], mode: number): Promise<Message> {
  const request = { action: 'subscribe', symbols: symbols.map((symbol) => ({ symbol, exchange: 'NSE' })), mode };
  for (let attempt = 0; ; attempt++) {
    const reply = await client.request(request);
    if (reply.subscriptions.every((s: { status: string }) => s.status === 'success') || attempt === 100) return reply;
    await sleep(100);
  }
}

/** The subscribe/unsubscribe commands an adapter process logged (at debug level), in order. */
function commandsOf(stderr: string): Array<Record<string, unknown>> {
  return linesWith(stderr, 'command from the gateway').map(({ command, exchange, symbol, mode }) => ({ command, exchange, symbol, ...(mode === undefined ? {} : { mode }) }));
}

/** Every market_data message received for `symbol` since `from`. */
function ticksOf(client: TestClient, symbol: string, from = 0): Message[] {
  return client.messages.slice(from).filter((m) => m.type === 'market_data' && m.symbol === symbol);
}

/** Waits until `client` has queued `count` ticks of each symbol (the queue keeps them for inspection). */
async function collect(client: TestClient, symbols: string[], count: number, from = 0): Promise<void> {
  const deadline = Date.now() + 15_000;
  while (symbols.some((s) => ticksOf(client, s, from).length < count)) {
    if (Date.now() > deadline) throw new Error(`ticks did not resume for ${symbols.filter((s) => ticksOf(client, s, from).length < count).join(', ')}`);
    await sleep(50);
  }
}

/** Each stream's seq only ever grows: a tick delivered twice would repeat one. */
function expectNoRepeats(ticks: Message[]): void {
  const seqs = ticks.map((t) => t.seq as number);
  for (let i = 1; i < seqs.length; i++) expect(seqs[i], `seq after ${seqs[i - 1]}`).toBeGreaterThan(seqs[i - 1]!);
}

function controlEndpointOf(gw: GatewayProcess): string {
  const found = /^\s*Control\s+(tcp:\/\/\S+)/m.exec(gw.stdout())?.[1];
  if (!found) throw new Error(`no Control line in\n${gw.stdout()}`);
  return found;
}

describe('an out-of-process adapter killed (SIGKILL) mid-stream', () => {
  it('clients hear "down"; the restarted adapter is asked for exactly the wanted set, once; ticks resume without repeats', async () => {
    const { root, env } = fleet();
    const gw = await startGatewayProcess({ dataDir: root, args: ['--instance', 'crashy', '--feed', 'none'], env: { ...env, TICKCAST_LOG_LEVEL: 'info' } });
    const first = startAdapterCliProcess({ dataDir: root, args: ['--instance', 'crashy', '--sim-rate', '20'], env: { ...env, TICKCAST_LOG_LEVEL: 'debug' } });
    await first.ready;

    const a = await seqClient(gw.url, gw.devKey!);
    const b = await seqClient(gw.url, gw.devKey!);
    // Upstream wants RELIANCE at Quote (b's mode beats a's LTP) and INFY at Depth; TCS was dropped.
    expect((await subscribeWhenServed(a, ['RELIANCE'], 1)).status).toBe('success');
    expect((await subscribeWhenServed(a, ['INFY'], 3)).status).toBe('success');
    expect((await subscribeWhenServed(b, ['RELIANCE', 'TCS'], 2)).status).toBe('success');
    expect((await b.request({ action: 'unsubscribe', symbols: [{ symbol: 'TCS', exchange: 'NSE' }], mode: 2 })).status).toBe('success');
    await collect(a, ['RELIANCE', 'INFY'], 3);
    await collect(b, ['RELIANCE'], 3);

    first.child.kill('SIGKILL');
    await first.exited;
    // The gateway notices the silence (3 missed heartbeats) and tells the feed's clients.
    for (const client of [a, b]) {
      const down = await client.next((m) => m.type === 'feed_status', 15_000);
      expect(down).toMatchObject({ type: 'feed_status', feed: 'simulator', broker: 'simulator', status: 'down' });
      expect(down.message).toMatch(new RegExp(`Feed "simulator" adapter \\(pid ${first.child.pid}\\) sent nothing for [\\d.]+ s`));
    }
    const logged = await waitForMessage(gw.stderr, 'adapter down', LEVEL.warn);
    expect(logged).toMatchObject({ feed: 'simulator', adapterPid: first.child.pid });
    expect(gw.child.exitCode).toBeNull();
    expect(await a.request({ action: 'ping' })).toMatchObject({ type: 'pong' }); // still serving

    const marks = { a: a.messages.length, b: b.messages.length };
    const second = startAdapterCliProcess({ dataDir: root, args: ['--instance', 'crashy', '--sim-rate', '20'], env: { ...env, TICKCAST_LOG_LEVEL: 'debug' } });
    await second.ready;
    for (const client of [a, b]) expect(await client.next((m) => m.type === 'feed_status', 15_000)).toMatchObject({ feed: 'simulator', status: 'live' });
    await waitForLog(gw.stderr, (l) => l.msg === 'replayed subscriptions to adapter' && l.streams === 2, 'replay of 2 streams');
    await collect(a, ['RELIANCE', 'INFY'], 5, marks.a);
    await collect(b, ['RELIANCE'], 5, marks.b);
    await sleep(500); // room for a stray duplicate command to show up

    // Exactly the wanted set, at the wanted modes, each once; nothing that was released.
    const asked = commandsOf(second.stderr()).sort((x, y) => String(x.symbol).localeCompare(String(y.symbol)));
    expect(asked).toEqual([
      { command: 'subscribe', exchange: 'NSE', symbol: 'INFY', mode: 3 },
      { command: 'subscribe', exchange: 'NSE', symbol: 'RELIANCE', mode: 2 },
    ]);
    expect(ticksOf(b, 'TCS', marks.b)).toEqual([]);
    for (const [client, symbol] of [[a, 'RELIANCE'], [a, 'INFY'], [b, 'RELIANCE']] as const) expectNoRepeats(ticksOf(client, symbol));
    // Each client gets the mode it holds.
    expect(new Set(ticksOf(a, 'RELIANCE', marks.a).map((t) => t.mode))).toEqual(new Set([1]));
    expect(new Set(ticksOf(b, 'RELIANCE', marks.b).map((t) => t.mode))).toEqual(new Set([2]));
    await a.close();
    await b.close();
  });
});

describe('a gateway restart under a running adapter process', () => {
  it('graceful, on new ports: the adapter follows it through the registry; clients reconnect, resubscribe and get ticks', async () => {
    const { root, env } = fleet();
    const adapterEnv = { ...env, TICKCAST_LOG_LEVEL: 'info' };
    const first = await startGatewayProcess({ dataDir: root, args: ['--instance', 'mover', '--feed', 'none'], env: { ...env, WEBSOCKET_PORT: undefined, ZMQ_PORT: undefined } });
    const adapter = startAdapterCliProcess({ dataDir: root, args: ['--instance', 'mover', '--sim-rate', '20'], env: adapterEnv });
    await adapter.ready;
    const client = await TestClient.authenticated(first.url, first.devKey!);
    expect((await subscribeWhenServed(client, ['RELIANCE'], 2)).status).toBe('success');
    await client.marketData('RELIANCE');

    const stopping = first.stop('SIGTERM');
    expect((await client.closed).code).toBe(1001);
    expect(await stopping).toBe(0);
    await waitForLog(adapter.stderr, (l) => l.msg.startsWith('gateway lost') && /closed the control channel/.test(l.reason), 'gateway lost (bye)');

    const second = await startGatewayProcess({ dataDir: root, args: ['--instance', 'mover', '--feed', 'none'], env: { ...env, WEBSOCKET_PORT: undefined, ZMQ_PORT: undefined } });
    expect(second.busEndpoint).not.toBe(first.busEndpoint);
    const moved = await waitForMessage(adapter.stderr, 'gateway moved; reconnecting');
    expect(moved).toMatchObject({ bus: second.busEndpoint, control: controlEndpointOf(second) });
    await waitForLog(adapter.stderr, (l) => l.msg === 'registered with the gateway' && l.endpoint === controlEndpointOf(second), 'registration with the new gateway');

    // What a client does after 1001: connect again (to the registry's new address) and resubscribe.
    const again = await TestClient.authenticated(second.url, second.devKey ?? first.devKey!);
    expect((await subscribeWhenServed(again, ['RELIANCE'], 2)).status).toBe('success');
    expect(await again.marketData('RELIANCE')).toMatchObject({ exchange: 'NSE', mode: 2, broker: 'simulator' });
    expect(adapter.child.exitCode).toBeNull(); // the same adapter process throughout

    const listed = JSON.parse((await runCli(['instances', '--json'], { dataDir: root, env })).stdout) as Array<Record<string, any>>;
    expect(listed.find((e) => e.role === 'adapter')).toMatchObject({ pid: adapter.child.pid, alive: true, endpoints: { bus: second.busEndpoint, control: controlEndpointOf(second) } });
    await again.close();
  });

  it('killed (SIGKILL), then restarted on the same ports: the adapter notices the silence and registers again', async () => {
    const { root, env } = fleet();
    const first = await startGatewayProcess({ dataDir: root, args: ['--instance', 'phoenix', '--feed', 'none'], env });
    const adapter = startAdapterCliProcess({ dataDir: root, args: ['--instance', 'phoenix', '--sim-rate', '20'], env: { ...env, TICKCAST_LOG_LEVEL: 'info' } });
    await adapter.ready;
    const client = await TestClient.authenticated(first.url, first.devKey!);
    expect((await subscribeWhenServed(client, ['INFY'], 1)).status).toBe('success');
    await client.marketData('INFY');

    first.child.kill('SIGKILL');
    await first.exited;
    expect((await client.closed).code).toBe(1006); // no close frame from a killed process
    const lost = await waitForMessage(adapter.stderr, 'gateway lost', LEVEL.warn);
    expect(lost.reason).toMatch(/nothing from the gateway for [\d.]+ s/);
    const registrations = linesWith(adapter.stderr(), 'registered with the gateway').length;

    const pinned = { ...env, WEBSOCKET_PORT: String(first.wsPort), ZMQ_PORT: String(first.busPort), TICKCAST_CONTROL_PORT: controlEndpointOf(first).split(':').at(-1)! };
    const second = await startGatewayProcess({ dataDir: root, args: ['--instance', 'phoenix', '--feed', 'none'], env: pinned });
    expect([second.url, second.busEndpoint, controlEndpointOf(second)]).toEqual([first.url, first.busEndpoint, controlEndpointOf(first)]);
    await waitForLog(adapter.stderr, () => linesWith(adapter.stderr(), 'registered with the gateway').length > registrations, 'a registration with the new gateway');

    const again = await TestClient.authenticated(second.url, first.devKey!);
    expect((await subscribeWhenServed(again, ['INFY'], 1)).status).toBe('success');
    await again.marketData('INFY');
    expect(adapter.child.exitCode).toBeNull();
    await again.close();
  });
});
