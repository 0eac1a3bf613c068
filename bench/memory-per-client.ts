/**
 * Gateway memory per connected client: the gateway's RSS and V8 heap (simulator idle) before and
 * after N clients connect, authenticate and subscribe to S symbols each (Quote mode), with the
 * clients in a separate process so only the gateway's memory is counted.
 *
 *   npm run bench:memory -- [CLIENTS] [SUBSCRIPTIONS] [--no-build]
 *
 *   CLIENTS         connections (default 2000)
 *   SUBSCRIPTIONS   symbols each client subscribes to, 0–20 (default 0: authenticated, idle)
 *   --no-build      measure the existing dist/ even if src/ is newer
 *
 * It measures the compiled gateway in dist/ (what `tickcast start` runs; rebuilt first when src/
 * is newer), not src/ through the TypeScript loader, whose helpers add memory to every closure.
 * Needs --expose-gc (the npm script passes it): both readings follow two full collections.
 *
 * Output, per client (the difference of the two readings ÷ CLIENTS):
 *
 *   server, 2000 clients, 20 subs each: rss 18.7 KB, heapUsed 7.3 KB, external 0.0 KB per client
 *     V8 heap spaces (resident): new 9.1 KB, old 6.8 KB, code 0.2 KB; outside the V8 heap 2.4 KB
 *
 * The young generation (new space) does not grow with clients: it is what the connections'
 * churn touched of its fixed maximum, so it weighs less per client the more clients there are.
 */
import { type ChildProcess, fork } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import v8 from 'node:v8';
import { ensureBuilt } from './build.js';

/** Symbols the simulator serves on NSE; a client subscribes to the first SUBSCRIPTIONS of them. */
const SYMBOLS = [
  'RELIANCE', 'INFY', 'TCS', 'SBIN', 'HDFCBANK', 'ITC', 'LT', 'WIPRO', 'AXISBANK', 'MARUTI',
  'TITAN', 'ICICIBANK', 'KOTAKBANK', 'BHARTIARTL', 'HINDUNILVR', 'ASIANPAINT', 'BAJFINANCE',
  'SUNPHARMA', 'ULTRACEMCO', 'NESTLEIND',
];
const CLIENTS_FLAG = '--clients';
/** Lets the gateway settle after starting, and after the last client, before a reading. */
const SETTLE_MS = { idle: 500, loaded: 1000 };

interface Reading {
  memory: NodeJS.MemoryUsage;
  /** Resident bytes per V8 heap space. */
  spaces: Map<string, number>;
}

/** The client process: opens the connections one after another, then holds them. */
async function runClients(url: string, apiKey: string, count: number, subscriptions: number): Promise<void> {
  const { default: WebSocket } = await import('ws');
  const symbols = SYMBOLS.slice(0, subscriptions).map((symbol) => ({ symbol, exchange: 'NSE' }));
  const open: InstanceType<typeof WebSocket>[] = [];
  for (let i = 0; i < count; i++) {
    const ws = new WebSocket(url, { perMessageDeflate: false });
    const next = (): Promise<{ type?: string; status?: string; message?: string }> =>
      new Promise((resolve, reject) => {
        ws.once('message', (data) => resolve(JSON.parse(data.toString())));
        ws.once('error', reject);
      });
    await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
    ws.send(JSON.stringify({ action: 'authenticate', api_key: apiKey }));
    const auth = await next();
    if (auth.status !== 'success') throw new Error(`client ${i}: authentication failed: ${JSON.stringify(auth)}`);
    if (symbols.length > 0) {
      ws.send(JSON.stringify({ action: 'subscribe', symbols, mode: 2 }));
      // The subscribe reply comes first; snapshots of the streams' last values may follow.
      const reply = await next();
      if (reply.status !== 'success') throw new Error(`client ${i}: subscribe failed: ${JSON.stringify(reply)}`);
    }
    open.push(ws);
  }
  process.send!('ready');
  // Hold the connections until the parent kills this process.
  setInterval(() => {}, 60_000);
}

function collectGarbage(): void {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) throw new Error('run with --expose-gc (npm run bench:memory does)');
  gc();
  gc();
}

function read(): Reading {
  collectGarbage();
  const spaces = new Map(v8.getHeapSpaceStatistics().map((space) => [space.space_name, space.physical_space_size]));
  return { memory: process.memoryUsage(), spaces };
}

async function runGateway(clients: number, subscriptions: number, build: boolean): Promise<void> {
  ensureBuilt(build);
  // The compiled gateway, typed by its source.
  const dist = (path: string): string => new URL(`../dist/${path}`, import.meta.url).href;
  const { loadConfig } = (await import(dist('config/load.js'))) as typeof import('../src/config/load.js');
  const { startInstance } = (await import(dist('instance.js'))) as typeof import('../src/instance.js');
  const { silentLogger } = (await import(dist('observability/logger.js'))) as typeof import('../src/observability/logger.js');

  const dataDir = mkdtempSync(join(tmpdir(), 'tickcast-bench-'));
  const loaded = loadConfig({
    cwd: dataDir,
    env: {
      TICKCAST_DATA_DIR: dataDir,
      TICKCAST_REGISTRY: `sqlite:${join(dataDir, 'registry.db')}`,
      WEBSOCKET_PORT: '0',
      ZMQ_PORT: '0',
      TICKCAST_DEV_KEY: 'false',
      TICKCAST_LOG_LEVEL: 'silent',
      // Quiet: a tick per subscribed symbol every ~17 minutes.
      TICKCAST_SIM_RATE: '0.001',
      // Every client uses one key; the default limits would refuse most of them.
      TICKCAST_MAX_CONNECTIONS: String(clients + 100),
      TICKCAST_MAX_CONNECTIONS_PER_KEY: String(clients + 100),
      TICKCAST_MAX_PENDING_AUTH: String(clients + 100),
    },
  });
  if (!loaded.ok) throw new Error(loaded.errors.join('\n'));
  const instance = await startInstance(loaded.config, { logger: silentLogger() });
  let child: ChildProcess | undefined;
  try {
    const { apiKey } = await instance.keys.create('bench', 'simulator');
    await sleep(SETTLE_MS.idle);
    const before = read();

    child = fork(new URL(import.meta.url), [CLIENTS_FLAG, instance.url, apiKey, String(clients), String(subscriptions)], {
      execArgv: process.execArgv,
    });
    const exited = new Promise<never>((_, reject) =>
      child!.once('exit', (code) => reject(new Error(`the client process exited (code ${code}) before all clients were connected`))),
    );
    await Promise.race([new Promise((resolve) => child!.once('message', resolve)), exited]);
    await sleep(SETTLE_MS.loaded);
    const after = read();

    const perClient = (bytes: number): string => `${(bytes / clients / 1024).toFixed(1)} KB`;
    const memory = (key: 'rss' | 'heapUsed' | 'external'): string => perClient(after.memory[key] - before.memory[key]);
    const space = (name: string): number => (after.spaces.get(name) ?? 0) - (before.spaces.get(name) ?? 0);
    const heapResident = [...after.spaces.keys()].reduce((sum, name) => sum + space(name), 0);
    console.log(
      `server, ${clients} clients, ${subscriptions} subs each: ` +
        `rss ${memory('rss')}, heapUsed ${memory('heapUsed')}, external ${memory('external')} per client`,
    );
    console.log(
      `  V8 heap spaces (resident): new ${perClient(space('new_space'))}, old ${perClient(space('old_space'))}, ` +
        `code ${perClient(space('code_space'))}; outside the V8 heap ${perClient(after.memory.rss - before.memory.rss - heapResident)}`,
    );
  } finally {
    child?.kill();
    await instance.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

const args = process.argv.slice(2);
if (args[0] === CLIENTS_FLAG) {
  const [, url, apiKey, count, subscriptions] = args;
  await runClients(url!, apiKey!, Number(count), Number(subscriptions));
} else {
  const [clients = 2000, subscriptions = 0] = args.filter((arg) => !arg.startsWith('--')).map(Number);
  if (!(clients > 0) || !(subscriptions >= 0 && subscriptions <= SYMBOLS.length)) {
    throw new Error(`usage: npm run bench:memory -- [CLIENTS > 0] [SUBSCRIPTIONS 0–${SYMBOLS.length}] [--no-build]`);
  }
  await runGateway(clients, subscriptions, !args.includes('--no-build'));
  process.exit(0);
}
