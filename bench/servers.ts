/**
 * The two servers under test, each in its own child process with the same tick source settings:
 * the real gateway (`node bin/tickcast start`, its simulator as the feed) and the baseline
 * (bench/baseline-server.ts).
 */
import { fork } from 'node:child_process';
import { OPTIONS } from '../src/config/options.js';
import { type GatewayProcess, makeTempDir, startGatewayProcess } from '../test/helpers/cli.js';
import { removeDirNow, trackChild, trackDir } from './cleanup.js';
import { startNatsFleet } from './fleet.js';
import type { FromBaseline, ToBaseline } from './messages.js';

export type ServerKind = 'tickcast' | 'baseline';

export interface TickSource {
  /** TICKCAST_SIM_SYMBOLS form: `NSE:TCS,NSE:INFY,…` */
  symbols: string;
  ratePerStream: number;
  seed: number;
  /** Unsent bytes per client past which market data is conflated (tickcast) or skipped (baseline). */
  maxBufferedBytes: number | undefined;
  /** tickcast's `--workers` (default 1; the baseline is always one process). */
  gatewayWorkers?: number;
  /** tickcast as this many gateway nodes on a NATS bus, with an adapter process (bench/fleet.ts). */
  natsNodes?: number;
}

export interface ServerUnderTest {
  kind: ServerKind;
  url: string;
  /** Every gateway node's URL when there are several (clients are spread over them). */
  urls?: string[];
  apiKey: string;
  /** The process (tree) whose CPU and memory count as the server's. */
  pid: number;
  /** Tells the server the measurement window, where it counts anything itself (the baseline). */
  window(t0: number, t1: number): void;
  /** What the server counted itself in the window, where it can (the baseline; null for tickcast). */
  report(): Promise<{ published: number; dropped: number } | null>;
  /** Warnings and errors the server logged (tickcast's stderr at warn level). */
  warnings(): string[];
  stop(): Promise<void>;
}

/** The gateway's default budget, which the baseline then applies too. */
const DEFAULT_BUDGET_BYTES = Number(OPTIONS.find((o) => o.env === 'TICKCAST_MAX_BUFFERED_BYTES')?.default ?? 1024 * 1024);
const START_TIMEOUT_MS = 20_000;
const STOP_TIMEOUT_MS = 10_000;

export async function startTickcast(source: TickSource): Promise<ServerUnderTest> {
  if (source.natsNodes) return startNatsFleet(source, source.natsNodes);
  return (await startTickcastGateway(source)).server;
}

/** A tickcast gateway process started for a bench: the process, its data directory, and the server the load clients use. */
export interface TickcastGateway {
  gateway: GatewayProcess;
  dataDir: string;
  server: ServerUnderTest;
}

/**
 * `tickcast start` (its `--workers`) with the simulator as the feed and `source`'s settings, `env`
 * added. Its data directory is removed when the server stops, unless `keepDataDir` (the caller
 * reads what the gateway left there, then removes it); a stop waits `stopTimeoutMs` for it.
 */
export async function startTickcastGateway(
  source: TickSource,
  { env = {}, keepDataDir = false, stopTimeoutMs = STOP_TIMEOUT_MS }: { env?: Record<string, string>; keepDataDir?: boolean; stopTimeoutMs?: number } = {},
): Promise<TickcastGateway> {
  const dataDir = makeTempDir('tickcast-bench-');
  trackDir(dataDir);
  const settings: Record<string, string> = {
    TICKCAST_SIM_SYMBOLS: source.symbols,
    TICKCAST_SIM_RATE: String(source.ratePerStream),
    TICKCAST_SIM_SEED: String(source.seed),
    TICKCAST_LOG_LEVEL: 'warn',
    // Every bench client uses the one development key.
    TICKCAST_MAX_CONNECTIONS_PER_KEY: '100000',
    TICKCAST_MAX_CONNECTIONS: '100000',
    TICKCAST_MAX_PENDING_AUTH: '100000',
    TICKCAST_WORKERS: String(source.gatewayWorkers ?? 1),
    ...env,
  };
  if (source.maxBufferedBytes !== undefined) settings.TICKCAST_MAX_BUFFERED_BYTES = String(source.maxBufferedBytes);
  let gateway: GatewayProcess;
  try {
    gateway = await startGatewayProcess({ dataDir, env: settings });
  } catch (error) {
    removeDirNow(dataDir);
    throw error;
  }
  trackChild(gateway.child);
  if (!gateway.devKey) throw new Error('tickcast start printed no dev key');
  const server: ServerUnderTest = {
    kind: 'tickcast',
    url: gateway.url,
    apiKey: gateway.devKey,
    pid: gateway.child.pid!,
    window: () => {},
    report: async () => null,
    warnings: () => gateway.stderr().split('\n').filter((line) => line.trim() !== ''),
    stop: async () => {
      try {
        await gateway.stop('SIGTERM', stopTimeoutMs);
      } finally {
        if (!keepDataDir) removeDirNow(dataDir);
      }
    },
  };
  return { gateway, dataDir, server };
}

export async function startBaseline(source: TickSource): Promise<ServerUnderTest> {
  const options = {
    symbols: source.symbols,
    ratePerStream: source.ratePerStream,
    seed: source.seed,
    maxBufferedBytes: source.maxBufferedBytes ?? DEFAULT_BUDGET_BYTES,
  };
  // execArgv carries tsx's loader, so the child runs TypeScript like this process does.
  const child = fork(new URL('./baseline-server.ts', import.meta.url), [JSON.stringify(options)], {
    execArgv: process.execArgv,
    stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
  });
  trackChild(child);
  let stderr = '';
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));

  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => fail(`did not listen within ${START_TIMEOUT_MS} ms`), START_TIMEOUT_MS);
    const onExit = (code: number | null, signal: string | null): void => fail(`exited early (code ${code}, signal ${signal})`);
    const onMessage = (message: FromBaseline): void => {
      if (message.type !== 'listening') return;
      clearTimeout(timer);
      child.off('exit', onExit).off('message', onMessage);
      resolve(message.port);
    };
    function fail(why: string): void {
      clearTimeout(timer);
      child.kill('SIGKILL');
      reject(new Error(`baseline server ${why}\n${stderr}`));
    }
    child.on('message', onMessage).once('exit', onExit);
  });

  const send = (message: ToBaseline): void => {
    if (child.connected) child.send(message);
  };
  return {
    kind: 'baseline',
    url: `ws://127.0.0.1:${port}`,
    apiKey: 'any',
    pid: child.pid!,
    window: (t0, t1) => send({ type: 'window', t0, t1 }),
    report: () =>
      new Promise((resolve) => {
        const timer = setTimeout(() => resolve(null), 5000);
        const onMessage = (message: FromBaseline): void => {
          if (message.type !== 'report') return;
          clearTimeout(timer);
          child.off('message', onMessage);
          resolve({ published: message.published, dropped: message.dropped });
        };
        child.on('message', onMessage);
        send({ type: 'report' });
      }),
    warnings: () => stderr.split('\n').filter((line) => line.trim() !== ''),
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS);
      await exited;
      clearTimeout(timer);
    },
  };
}

export function startServer(kind: ServerKind, source: TickSource): Promise<ServerUnderTest> {
  return kind === 'tickcast' ? startTickcast(source) : startBaseline(source);
}
