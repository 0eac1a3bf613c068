/**
 * An adapter in another language, written from docs/control-protocol.md alone:
 * test/python/control_adapter.py (standard library + pyzmq) against a real `tickcast start
 * --feed none` gateway over tcp. A client of the dev key's broker is served by the Python feed:
 * its ticks arrive with the exact price the Python program publishes, an unsubscribe reaches it,
 * and its SIGTERM (`bye`) reports the feed down. With another instance key it is never
 * registered: the control key is what lets an adapter in.
 *
 * pyzmq is required (Debian: python3-zmq); without it the adapter exits and the test fails.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { type GatewayProcess, REPO_ROOT, killSpawnedProcesses, makeTempDir, removeDir, startGatewayProcess } from '../helpers/cli.js';
import { type Message, TestClient, sleep, waitUntil } from '../helpers/client.js';
import { LEVEL, waitForLog } from '../helpers/logs.js';

const PYTHON = '/usr/bin/python3';
const ADAPTER = join(REPO_ROOT, 'test', 'python', 'control_adapter.py');
/** The LTP of every tick the Python adapter publishes (its PRICE). */
const PRICE = 4321.25;
const INSTANCE = 'pyctl';
const FEED = 'pysim';
/** Hang catchers only. */
const HANG_MS = 20_000;

interface PythonAdapter {
  readonly child: ChildProcess;
  stdout(): string;
  stderr(): string;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

const dirs: string[] = [];
const pythons: ChildProcess[] = [];
const clients: TestClient[] = [];

afterEach(async () => {
  for (const client of clients.splice(0)) client.socket.terminate();
  await Promise.all(
    pythons.splice(0).map(
      (child) =>
        new Promise<void>((resolve) => {
          if (child.exitCode !== null || child.signalCode !== null) return resolve();
          child.once('close', () => resolve());
          child.kill('SIGKILL');
        }),
    ),
  );
  await killSpawnedProcesses();
  for (const dir of dirs.splice(0)) removeDir(dir);
});

function controlEndpointOf(gw: GatewayProcess): string {
  const found = /^\s*Control\s+(tcp:\/\/\S+)/m.exec(gw.stdout())?.[1];
  if (!found) throw new Error(`no Control line in\n${gw.stdout()}`);
  return found;
}

/** A gateway with no in-process feed, on tcp, for instance INSTANCE, in a directory of its own. */
async function startGateway(): Promise<{ root: string; gw: GatewayProcess }> {
  const root = makeTempDir('tickcast-pyctl-');
  dirs.push(root);
  const gw = await startGatewayProcess({ dataDir: root, args: ['--instance', INSTANCE, '--feed', 'none', '--transport', 'tcp'], env: { TICKCAST_LOG_LEVEL: 'info' } });
  return { root, gw };
}

function startPythonAdapter(gw: GatewayProcess, keyFile: string): PythonAdapter {
  const args = [ADAPTER, '--control', controlEndpointOf(gw), '--bus', gw.busEndpoint, '--key-file', keyFile, '--instance', INSTANCE, '--feed', FEED, '--broker', 'simulator', '--brokers', 'simulator', '--heartbeat-ms', '500'];
  const child = spawn(PYTHON, args, { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  pythons.push(child);
  let stdout = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('close', (code, signal) => resolve({ code, signal })));
  return { child, stdout: () => stdout, stderr: () => stderr, exited };
}

function stdoutLines(adapter: PythonAdapter): string[] {
  return adapter.stdout().split('\n').filter((line) => line !== '');
}

/** Waits for a stdout line (or one starting with `line` + a space, with `prefix`); fails at once (with its output) if the adapter exits first. */
async function waitForLine(adapter: PythonAdapter, line: string, prefix = false): Promise<void> {
  let exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  void adapter.exited.then((e) => (exit = e));
  const deadline = Date.now() + HANG_MS;
  while (!stdoutLines(adapter).some((l) => l === line || (prefix && l.startsWith(`${line} `)))) {
    if (exit !== undefined) throw new Error(`the Python adapter exited (code ${exit.code}, signal ${exit.signal}) before printing "${line}"\n--- stdout\n${adapter.stdout()}\n--- stderr\n${adapter.stderr()}`);
    if (Date.now() > deadline) throw new Error(`the Python adapter printed no "${line}"\n--- stdout\n${adapter.stdout()}\n--- stderr\n${adapter.stderr()}`);
    await sleep(20);
  }
}

async function devClient(gw: GatewayProcess): Promise<{ client: TestClient; auth: Message }> {
  const client = await TestClient.connect(gw.url);
  clients.push(client);
  const auth = await client.request({ action: 'authenticate', api_key: gw.devKey! });
  expect(auth).toMatchObject({ type: 'auth', status: 'success' });
  return { client, auth };
}

describe('an adapter written in Python from docs/control-protocol.md', () => {
  it('registers, is sent a client subscription, publishes its ticks, hears the unsubscribe, and says bye on SIGTERM', async () => {
    const { root, gw } = await startGateway();
    expect(gw.devKey).toBeDefined();
    expect(gw.stdout()).toMatch(/user "dev", broker "simulator"/); // the broker the Python feed serves
    const adapter = startPythonAdapter(gw, join(root, INSTANCE, 'control.key'));
    await waitForLine(adapter, 'ready');

    const { client } = await devClient(gw);
    // Nothing asked for yet: nothing published.
    expect(stdoutLines(adapter).filter((l) => l.startsWith('subscribe '))).toEqual([]);

    const reply = await client.request({ action: 'subscribe', symbols: [{ symbol: 'RELIANCE', exchange: 'NSE' }], mode: 1 });
    expect(reply).toMatchObject({ type: 'subscribe', status: 'success' });
    // "subscribe EXCHANGE SYMBOL MODE DEPTH": LTP; the depth asked is the gateway's business.
  await waitForLine(adapter, 'subscribe NSE RELIANCE 1', true);

    const tick = await client.next((m) => m.type === 'market_data' && m.symbol === 'RELIANCE', HANG_MS);
    expect(tick).toMatchObject({ type: 'market_data', symbol: 'RELIANCE', exchange: 'NSE', mode: 1, broker: 'simulator' });
    expect(tick.data.ltp).toBe(PRICE);
    // The payload is passed on as the Python program wrote it (its json.dumps spacing included).
    const rawTick = client.raw.find((text) => text.includes('"market_data"') && text.includes('RELIANCE'));
    expect(rawTick).toMatch(/"ltp": 4321\.25,/);
    // More than one: it keeps publishing while the stream is wanted.
    await client.next((m) => m.type === 'market_data' && m.symbol === 'RELIANCE', HANG_MS);

    const unsub = await client.request({ action: 'unsubscribe', symbols: [{ symbol: 'RELIANCE', exchange: 'NSE' }], mode: 1 });
    expect(unsub).toMatchObject({ type: 'unsubscribe', status: 'success' });
    await waitForLine(adapter, 'unsubscribe NSE RELIANCE');
    const commands = stdoutLines(adapter).filter((l) => l.startsWith('subscribe ') || l.startsWith('unsubscribe '));
    expect(commands.map((l) => l.split(' ').slice(0, 4).join(' '))).toEqual(['subscribe NSE RELIANCE 1', 'unsubscribe NSE RELIANCE']);

    // SIGTERM: the adapter sends bye and exits 0; the client hears the feed is down.
    const down = client.next((m) => m.type === 'feed_status' && m.status === 'down', HANG_MS);
    adapter.child.kill('SIGTERM');
    expect(await adapter.exited).toEqual({ code: 0, signal: null });
    expect(stdoutLines(adapter).at(-1)).toBe('stopped');
    const status = await down;
    expect(status).toMatchObject({ type: 'feed_status', feed: FEED, broker: 'simulator', status: 'down' });
    // Reported on the bye ("stopped"), not after the silence limit ("sent nothing for … s").
    expect(status.message).toMatch(new RegExp(`Feed "${FEED}" adapter \\(pid ${adapter.child.pid}\\) stopped`));
    expect(gw.child.exitCode).toBeNull();
  });

  it('holding another instance key, it is never registered and its feed never serves the client', async () => {
    const { root, gw } = await startGateway();
    const realKey = readFileSync(join(root, INSTANCE, 'control.key'), 'utf8').trim();
    let otherKey = randomBytes(32).toString('hex');
    while (otherKey === realKey) otherKey = randomBytes(32).toString('hex');
    const keyFile = join(root, 'other-control.key');
    writeFileSync(keyFile, `${otherKey}\n`, { mode: 0o600 });

    const adapter = startPythonAdapter(gw, keyFile);
    // Announcing every 500 ms against a gateway that registers within a heartbeat: several seconds
    // of announces, none taken.
    await waitUntil(() => adapter.stderr().includes('announcing to'), 'the adapter to start', HANG_MS);
    await sleep(4000);
    expect(adapter.child.exitCode).toBeNull(); // still running and announcing
    expect(stdoutLines(adapter)).toEqual([]); // no "registered", no "ready"
    // The gateway saw the announces and turned them away for their key.
    await waitForLog(gw.stderr, (l) => l.level === LEVEL.warn && /control key/.test(`${l.msg} ${l.reason}`) && /announce/.test(String(l.reason)), 'the unauthenticated announce logged', HANG_MS);

    const { client, auth } = await devClient(gw);
    expect(JSON.stringify(auth)).not.toContain(FEED);
    await client.request({ action: 'subscribe', symbols: [{ symbol: 'RELIANCE', exchange: 'NSE' }], mode: 1 });
    await sleep(2000);
    expect(client.messages.filter((m) => m.type === 'market_data')).toEqual([]);
    expect(client.messages.filter((m) => m.type === 'feed_status' && m.feed === FEED)).toEqual([]);
    expect(stdoutLines(adapter)).toEqual([]); // never asked for anything

    adapter.child.kill('SIGTERM');
    expect(await adapter.exited).toEqual({ code: 0, signal: null });
  });
});
