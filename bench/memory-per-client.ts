/**
 * Gateway memory per connected client: the gateway's RSS and V8 heap before and after N clients
 * connect, authenticate and subscribe to S symbols each (Quote mode), with the clients in a
 * separate process so only the gateway's memory is counted.
 *
 *   npm run bench:memory -- [CLIENTS] [SUBSCRIPTIONS] [--rate R] [--seconds T] [--no-build]
 *
 *   CLIENTS         connections (default 2000)
 *   SUBSCRIPTIONS   symbols each client subscribes to, 0–20 (default 0: authenticated, idle)
 *   --rate R        ticks per second per subscribed symbol. Without it the simulator is idle and
 *                   the second reading follows two full collections (what is live). With it, the
 *                   reading is the mean over T seconds of delivery (default 10), garbage included,
 *                   as a loaded gateway holds it; then the gateway's CPU per delivery is shown too.
 *   --no-build      measure the existing dist/ even if src/ is newer
 *
 * It measures the compiled gateway in dist/ (what `tickcast start` runs; rebuilt first when src/
 * is newer), not src/ through the TypeScript loader, whose helpers add memory to every closure.
 * Needs --expose-gc (the npm script passes it); the idle reading follows two full collections.
 *
 * Output, per client (the difference of the two readings ÷ CLIENTS):
 *
 *   server, 2000 clients, 20 subs each: rss 13.9 KB, heapUsed 4.9 KB, external 0.0 KB per client
 *     V8 heap spaces (committed): new 7.3 KB, old 5.2 KB, code 0.2 KB; rest of RSS 1.1 KB
 *
 * and with --rate, a third line: deliveries per second, CPU µs per delivery, and how much of the
 * old space in use was garbage (what a full collection after the window frees).
 *
 * The rest of RSS is native memory (sockets in Node and libuv, malloc); it is approximate, since V8
 * counts committed pages and RSS resident ones (small negative values are that difference). The
 * young generation (new space) does not grow with clients: it is what the connections' churn
 * touched of its fixed maximum (32 MB), so it weighs less per client the more there are.
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
/** Idle: a tick per subscribed symbol every ~17 minutes. */
const IDLE_RATE = 0.001;
/** Lets the gateway settle after starting, and after the last client, before a reading. */
const SETTLE_MS = { idle: 500, loaded: 1000 };
const SAMPLE_EVERY_MS = 200;

interface Settings {
  clients: number;
  subscriptions: number;
  /** Ticks per second per subscribed symbol; undefined: idle. */
  rate: number | undefined;
  seconds: number;
  build: boolean;
}

interface Reading {
  rss: number;
  heapUsed: number;
  external: number;
  /** Committed bytes per V8 heap space. */
  spaces: Map<string, number>;
}

/** The client process: opens the connections one after another, then holds them. */
async function runClients(url: string, apiKey: string, count: number, subscriptions: number): Promise<void> {
  const { default: WebSocket } = await import('ws');
  const symbols = SYMBOLS.slice(0, subscriptions).map((symbol) => ({ symbol, exchange: 'NSE' }));
  const open: InstanceType<typeof WebSocket>[] = [];
  for (let i = 0; i < count; i++) {
    const ws = new WebSocket(url, { perMessageDeflate: false });
    const next = (): Promise<{ status?: string }> =>
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
      // The subscribe reply comes first; snapshots and ticks follow (read and dropped).
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
  const { rss, heapUsed, external } = process.memoryUsage();
  const spaces = new Map(v8.getHeapSpaceStatistics().map((space) => [space.space_name, space.physical_space_size]));
  return { rss, heapUsed, external, spaces };
}

function mean(readings: Reading[]): Reading {
  const average = (value: (reading: Reading) => number): number => readings.reduce((sum, r) => sum + value(r), 0) / readings.length;
  const names = [...readings[0]!.spaces.keys()];
  return {
    rss: average((r) => r.rss),
    heapUsed: average((r) => r.heapUsed),
    external: average((r) => r.external),
    spaces: new Map(names.map((name) => [name, average((r) => r.spaces.get(name) ?? 0)])),
  };
}

const oldSpaceUsed = (): number => v8.getHeapSpaceStatistics().find((space) => space.space_name === 'old_space')!.space_used_size;

async function runGateway({ clients, subscriptions, rate, seconds, build }: Settings): Promise<void> {
  ensureBuilt(build);
  // The compiled gateway, typed by its source.
  const dist = (path: string): string => new URL(`../dist/${path}`, import.meta.url).href;
  const { loadConfig } = (await import(dist('config/load.js'))) as typeof import('../src/config/load.js');
  const { startGateway } = (await import(dist('roles/gateway.js'))) as typeof import('../src/roles/gateway.js');
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
      TICKCAST_SIM_RATE: String(rate ?? IDLE_RATE),
      // Every client uses one key; the default limits would refuse most of them.
      TICKCAST_MAX_CONNECTIONS: String(clients + 100),
      TICKCAST_MAX_CONNECTIONS_PER_KEY: String(clients + 100),
      TICKCAST_MAX_PENDING_AUTH: String(clients + 100),
    },
  });
  if (!loaded.ok) throw new Error(loaded.errors.join('\n'));
  const instance = await startGateway(loaded.config, { logger: silentLogger() });
  let child: ChildProcess | undefined;
  try {
    const { apiKey } = await instance.keys.create('bench', 'simulator');
    await sleep(SETTLE_MS.idle);
    collectGarbage();
    const before = read();

    child = fork(new URL(import.meta.url), [CLIENTS_FLAG, instance.url, apiKey, String(clients), String(subscriptions)], {
      execArgv: process.execArgv,
    });
    const exited = new Promise<never>((_, reject) =>
      child!.once('exit', (code) => reject(new Error(`the client process exited (code ${code}) before all clients were connected`))),
    );
    await Promise.race([new Promise((resolve) => child!.once('message', resolve)), exited]);
    await sleep(SETTLE_MS.loaded);

    let after: Reading;
    let load = '';
    if (rate === undefined) {
      collectGarbage();
      after = read();
    } else {
      const { fanOut } = instance.gateway;
      const deliveredBefore = fanOut.deliveries;
      const cpu = process.cpuUsage();
      const samples: Reading[] = [];
      for (let t = 0; t < (seconds * 1000) / SAMPLE_EVERY_MS; t++) {
        await sleep(SAMPLE_EVERY_MS);
        samples.push(read());
      }
      const { user, system } = process.cpuUsage(cpu);
      const delivered = fanOut.deliveries - deliveredBefore;
      after = mean(samples);
      const inUse = oldSpaceUsed();
      collectGarbage();
      const garbage = inUse - oldSpaceUsed();
      load =
        `  under load: ${Math.round(delivered / seconds)} deliveries/s, ${((user + system) / delivered).toFixed(2)} µs CPU per delivery ` +
        `(this process, clients excluded); old space in use ${(inUse / 1048576).toFixed(1)} MB, of which garbage ${(garbage / 1048576).toFixed(1)} MB`;
    }

    const perClient = (bytes: number): string => `${(bytes / clients / 1024).toFixed(1)} KB`;
    const space = (name: string): number => (after.spaces.get(name) ?? 0) - (before.spaces.get(name) ?? 0);
    const heapCommitted = [...after.spaces.keys()].reduce((sum, name) => sum + space(name), 0);
    const ticks = rate === undefined ? '' : `, ${rate} ticks/s per symbol (window mean)`;
    console.log(
      `server, ${clients} clients, ${subscriptions} subs each${ticks}: rss ${perClient(after.rss - before.rss)}, ` +
        `heapUsed ${perClient(after.heapUsed - before.heapUsed)}, external ${perClient(after.external - before.external)} per client`,
    );
    console.log(
      `  V8 heap spaces (committed): new ${perClient(space('new_space'))}, old ${perClient(space('old_space'))}, ` +
        `code ${perClient(space('code_space'))}; rest of RSS ${perClient(after.rss - before.rss - heapCommitted)}`,
    );
    if (load) console.log(load);
  } finally {
    child?.kill();
    await instance.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

/** `[CLIENTS] [SUBSCRIPTIONS] [--rate R] [--seconds T] [--no-build]` */
function parseArgs(args: string[]): Settings {
  const positional: number[] = [];
  const settings: Settings = { clients: 2000, subscriptions: 0, rate: undefined, seconds: 10, build: true };
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === '--no-build') settings.build = false;
    else if (arg === '--rate') settings.rate = Number(args[++i]);
    else if (arg === '--seconds') settings.seconds = Number(args[++i]);
    else positional.push(Number(arg));
  }
  [settings.clients = 2000, settings.subscriptions = 0] = positional;
  const { clients, subscriptions, rate, seconds } = settings;
  const valid =
    clients > 0 && subscriptions >= 0 && subscriptions <= SYMBOLS.length && (rate === undefined || rate > 0) && seconds > 0;
  if (!valid) {
    throw new Error(`usage: npm run bench:memory -- [CLIENTS > 0] [SUBSCRIPTIONS 0–${SYMBOLS.length}] [--rate R > 0] [--seconds T > 0] [--no-build]`);
  }
  return settings;
}

const args = process.argv.slice(2);
if (args[0] === CLIENTS_FLAG) {
  const [, url, apiKey, count, subscriptions] = args;
  await runClients(url!, apiKey!, Number(count), Number(subscriptions));
} else {
  await runGateway(parseArgs(args));
  process.exit(0);
}
