/**
 * tickcast as a fleet for the benchmarks: a nats-server, one `tickcast adapter --bus nats://…`
 * (the simulator, with the run's tick source) and N `tickcast start --bus nats://… --feed none`
 * gateway nodes, all children of one launcher process. The launcher is the "server" the harness
 * measures, so the whole tree's CPU and memory count — gateway nodes, adapter and nats-server —
 * as the single gateway process (simulator included) counts on ZeroMQ.
 *
 * Run by startNatsFleet (servers.ts); not meant to be started by hand.
 */
import { fork } from 'node:child_process';
import { OPTIONS } from '../src/config/options.js';
import { killSpawnedProcesses, makeTempDir, removeDir, runCli, startAdapterCliProcess, startGatewayProcess } from '../test/helpers/cli.js';
import { startNatsServer } from '../test/helpers/nats-server.js';
import { trackChild } from './cleanup.js';
import type { ServerUnderTest, TickSource } from './servers.js';

type FromFleet = { type: 'ready'; urls: string[]; apiKey: string } | { type: 'failed'; message: string };

const START_TIMEOUT_MS = 60_000;
const STOP_TIMEOUT_MS = 15_000;

/** Starts the launcher and resolves once every node serves clients. */
export async function startNatsFleet(source: TickSource, nodes: number): Promise<ServerUnderTest> {
  // Its own process group, so everything it started goes with it even if it is killed outright.
  const child = fork(new URL(import.meta.url), ['--fleet', JSON.stringify({ source, nodes })], {
    execArgv: process.execArgv,
    stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
    detached: true,
  });
  trackChild(child);
  const killGroup = (): void => {
    try {
      process.kill(-child.pid!, 'SIGKILL');
    } catch {
      // already gone
    }
  };
  process.once('exit', killGroup);
  let stderr = '';
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const ready = await new Promise<Extract<FromFleet, { type: 'ready' }>>((resolve, reject) => {
    const timer = setTimeout(() => fail(`not ready within ${START_TIMEOUT_MS} ms`), START_TIMEOUT_MS);
    const onExit = (code: number | null, signal: string | null): void => fail(`exited early (code ${code}, signal ${signal})`);
    const onMessage = (message: FromFleet): void => {
      if (message.type === 'failed') return fail(message.message);
      clearTimeout(timer);
      child.off('exit', onExit).off('message', onMessage);
      resolve(message);
    };
    function fail(why: string): void {
      clearTimeout(timer);
      killGroup();
      reject(new Error(`NATS fleet ${why}\n${stderr}`));
    }
    child.on('message', onMessage).once('exit', onExit);
  });
  return {
    kind: 'tickcast',
    url: ready.urls[0]!,
    urls: ready.urls,
    apiKey: ready.apiKey,
    pid: child.pid!,
    window: () => {},
    report: async () => null,
    warnings: () => stderr.split('\n').filter((line) => line.trim() !== ''),
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      const timer = setTimeout(killGroup, STOP_TIMEOUT_MS);
      await exited;
      clearTimeout(timer);
      killGroup(); // anything it left behind
      process.off('exit', killGroup);
    },
  };
}

/** The launcher itself. */
async function runFleet(source: TickSource, nodes: number): Promise<void> {
  const dataDir = makeTempDir('tickcast-bench-fleet-');
  const nats = await startNatsServer();
  let stopping = false;
  const stopAll = async (): Promise<void> => {
    if (stopping) return;
    stopping = true;
    await killSpawnedProcesses();
    await nats.stop();
    removeDir(dataDir);
    process.exit(0);
  };
  process.once('SIGTERM', () => void stopAll());
  process.once('disconnect', () => void stopAll());
  try {
    const budget = Number(OPTIONS.find((o) => o.env === 'TICKCAST_MAX_BUFFERED_BYTES')?.default);
    const env: Record<string, string> = {
      TICKCAST_BUS: nats.url,
      TICKCAST_FEED: 'none',
      TICKCAST_DEV_KEY: 'false',
      TICKCAST_SIM_SYMBOLS: source.symbols,
      TICKCAST_SIM_RATE: String(source.ratePerStream),
      TICKCAST_SIM_SEED: String(source.seed),
      TICKCAST_LOG_LEVEL: 'warn',
      TICKCAST_MAX_CONNECTIONS_PER_KEY: '100000',
      TICKCAST_MAX_CONNECTIONS: '100000',
      TICKCAST_MAX_PENDING_AUTH: '100000',
      TICKCAST_MAX_BUFFERED_BYTES: String(source.maxBufferedBytes ?? budget),
    };
    const created = await runCli(['keys', 'create', '--user', 'bench', '--json'], { dataDir, env });
    if (created.code !== 0) throw new Error(`keys create failed: ${created.stderr}`);
    const apiKey = JSON.parse(created.stdout).api_key as string;
    const adapter = startAdapterCliProcess({ dataDir, env, args: ['--feed-id', 'simulator'] });
    const gateways = await Promise.all(Array.from({ length: nodes }, (_, i) => startGatewayProcess({ dataDir, env, args: ['--node', `node-${i + 1}`] })));
    await adapter.ready;
    // Every node must have found the adapter before clients subscribe.
    const deadline = Date.now() + 20_000;
    for (const gateway of gateways) {
      for (;;) {
        const status = (await (await fetch(`${gateway.url.replace(/^ws/, 'http')}/api/status`)).json()) as { adapters: Array<{ status: string }> };
        if (status.adapters.some((a) => a.status === 'live')) break;
        if (Date.now() > deadline) throw new Error(`${gateway.url} did not find the adapter`);
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    }
    process.send!({ type: 'ready', urls: gateways.map((g) => g.url), apiKey } satisfies FromFleet);
  } catch (error) {
    process.send!({ type: 'failed', message: (error as Error).stack ?? String(error) } satisfies FromFleet);
    await stopAll();
  }
}

if (process.argv[2] === '--fleet') {
  const { source, nodes } = JSON.parse(process.argv[3]!) as { source: TickSource; nodes: number };
  void runFleet(source, nodes);
}
