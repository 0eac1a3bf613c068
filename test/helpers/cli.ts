/**
 * Runs the real `tickcast` command (`node bin/tickcast …`, from the repository root) and other
 * programs as child processes, for end-to-end tests of the CLI.
 *
 * Children get the parent's environment minus every tickcast setting (so a developer's shell
 * cannot change a test), with TICKCAST_DATA_DIR, the registry and XDG_DATA_HOME/XDG_STATE_HOME
 * inside the test's own directory (nothing is ever written under the real home) and the env file
 * pointed at the null device (so a `.env` in the checkout is never read). Everything spawned
 * here is tracked: call `killSpawnedProcesses()` in afterEach/afterAll, and anything still alive
 * when the worker exits is killed then.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { devNull, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { OPTIONS } from '../../src/config/options.js';

/** The checkout's root (the directory holding package.json and bin/). */
export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const TICKCAST_BIN = join(REPO_ROOT, 'bin', 'tickcast');

/** Hang catchers only: a healthy run finishes far sooner. */
const RUN_TIMEOUT_MS = 20_000;
const START_TIMEOUT_MS = 20_000;
const STOP_TIMEOUT_MS = 15_000;

export type Env = Record<string, string | undefined>;

export interface RunResult {
  /** Exit code, or null if the process died of a signal. */
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

const live = new Set<ChildProcess>();
let exitHookInstalled = false;

function track(child: ChildProcess): void {
  live.add(child);
  child.once('exit', () => live.delete(child));
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    // Last resort: never leave a gateway running after the test worker is gone.
    process.once('exit', () => {
      for (const c of live) c.kill('SIGKILL');
    });
  }
}

/** Kills (SIGKILL) every process this module spawned that is still running, and waits for them. */
export async function killSpawnedProcesses(): Promise<void> {
  await Promise.all(
    [...live].map(
      (child) =>
        new Promise<void>((resolve) => {
          if (child.exitCode !== null || child.signalCode !== null) return resolve();
          child.once('exit', () => resolve());
          child.kill('SIGKILL');
        }),
    ),
  );
}

/** A fresh temporary directory; remove it with `removeDir`. */
export function makeTempDir(prefix = 'tickcast-cli-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

export function removeDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}

/**
 * The environment of a tickcast child: the parent's without any tickcast setting (nor
 * API_KEY_PEPPER, WEBSOCKET_PORT, …), then the defaults below, then `env` (an undefined value
 * removes the variable).
 */
export function tickcastEnv(dataDir: string, env: Env = {}): NodeJS.ProcessEnv {
  const result: NodeJS.ProcessEnv = { ...process.env };
  for (const option of OPTIONS) delete result[option.env];
  for (const name of Object.keys(result)) if (name.startsWith('TICKCAST_')) delete result[name];
  result.TICKCAST_DATA_DIR = dataDir;
  // Hermetic: never the per-user registry of whoever runs the tests.
  result.TICKCAST_REGISTRY = `sqlite:${join(dataDir, 'registry.db')}`;
  // Nor their per-user data or state directories, should a test unset the two above.
  result.XDG_DATA_HOME = join(dataDir, 'xdg-data');
  result.XDG_STATE_HOME = join(dataDir, 'xdg-state');
  result.TICKCAST_ENV_FILE = devNull;
  result.TICKCAST_LOG_LEVEL = 'warn';
  return applyEnv(result, env);
}

function applyEnv(base: NodeJS.ProcessEnv, env: Env): NodeJS.ProcessEnv {
  for (const [name, value] of Object.entries(env)) {
    if (value === undefined) delete base[name];
    else base[name] = value;
  }
  return base;
}

export interface RunOptions {
  env: NodeJS.ProcessEnv;
  cwd?: string;
  /** Written to stdin, which is then closed. */
  input?: string;
  timeoutMs?: number;
}

/** Runs a program to completion; rejects (after killing it) if it does not exit in time. */
export function runProcess(command: string, args: readonly string[], options: RunOptions): Promise<RunResult> {
  const timeoutMs = options.timeoutMs ?? RUN_TIMEOUT_MS;
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      cwd: options.cwd ?? REPO_ROOT,
      env: options.env,
      stdio: [options.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
    });
    track(child);
    let stdout = '';
    let stderr = '';
    child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    if (options.input !== undefined) child.stdin!.end(options.input);
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(
        new Error(
          `${command} ${args.join(' ')} did not exit within ${timeoutMs} ms\n--- stdout\n${stdout}\n--- stderr\n${stderr}`,
        ),
      );
    }, timeoutMs);
    child.once('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

export interface CliOptions {
  /** TICKCAST_DATA_DIR of the run. */
  dataDir: string;
  env?: Env;
  timeoutMs?: number;
}

/** Runs `tickcast <args>` to completion. */
export function runCli(args: readonly string[], { dataDir, env, timeoutMs }: CliOptions): Promise<RunResult> {
  return runProcess(process.execPath, [TICKCAST_BIN, ...args], {
    env: tickcastEnv(dataDir, env),
    ...(timeoutMs === undefined ? {} : { timeoutMs }),
  });
}

export interface GatewayProcess {
  readonly child: ChildProcess;
  /** `ws://host:port` as printed. */
  readonly url: string;
  readonly wsPort: number;
  /** `tcp://host:port` (or `ipc://@name`) as printed. */
  readonly busEndpoint: string;
  /** 0 for an ipc bus. */
  readonly busPort: number;
  /** The development key, when this start printed one. */
  readonly devKey: string | undefined;
  /** Everything written so far. */
  stdout(): string;
  stderr(): string;
  /** Resolves when the process has exited. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /**
   * Sends `signal` and resolves with the exit code (null if killed by a signal). Rejects, after
   * SIGKILL, if the process has not exited within the timeout.
   */
  stop(signal?: NodeJS.Signals, timeoutMs?: number): Promise<number | null>;
}

export interface GatewayProcessOptions {
  dataDir: string;
  /** Applied over WEBSOCKET_PORT=0 and ZMQ_PORT=0. */
  env?: Env;
  /** Extra arguments after `start`. */
  args?: readonly string[];
}

const WS_LINE = /^\s*WebSocket\s+(ws:\/\/\S+)\s*$/m;
const BUS_LINE = /^\s*Bus\s+((?:tcp|ipc|nats|tls):\/\/\S+)/m;
const DEV_KEY_LINE = /^\s*Dev key\s+([0-9a-f]{64})\s*$/m;
/** The summary's last line is the dev key's note or the key count. */
const SUMMARY_END = /^\s*(?:\(user "[^"]*", broker|API keys\s)/m;

/** Spawns `tickcast start` and resolves once it has printed its summary. */
export function startGatewayProcess({ dataDir, env = {}, args = [] }: GatewayProcessOptions): Promise<GatewayProcess> {
  const child = spawn(process.execPath, [TICKCAST_BIN, 'start', ...args], {
    cwd: REPO_ROOT,
    env: tickcastEnv(dataDir, { WEBSOCKET_PORT: '0', ZMQ_PORT: '0', ...env }),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  track(child);
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8');
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('close', (code, signal) => resolve({ code, signal })),
  );

  const stop = async (signal: NodeJS.Signals = 'SIGTERM', timeoutMs = STOP_TIMEOUT_MS): Promise<number | null> => {
    if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), timeoutMs)));
    const result = await Promise.race([exited, timedOut]);
    clearTimeout(timer);
    if (result === 'timeout') {
      child.kill('SIGKILL');
      await exited;
      throw new Error(`tickcast start did not exit within ${timeoutMs} ms of ${signal}\n--- stderr\n${stderr}`);
    }
    return result.code;
  };

  return new Promise((resolve, reject) => {
    let settled = false;
    const fail = (why: string): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      child.kill('SIGKILL');
      reject(new Error(`tickcast start ${why}\n--- stdout\n${stdout}\n--- stderr\n${stderr}`));
    };
    const timer = setTimeout(() => fail(`printed no summary within ${START_TIMEOUT_MS} ms`), START_TIMEOUT_MS);
    child.once('error', (error) => fail(`could not be spawned: ${error.message}`));
    void exited.then(({ code, signal }) => fail(`exited early (code ${code}, signal ${signal})`));
    child.stdout.on('data', (chunk: string) => {
      stdout += chunk;
      if (settled || !SUMMARY_END.test(stdout)) return;
      const url = WS_LINE.exec(stdout)?.[1];
      const busEndpoint = BUS_LINE.exec(stdout)?.[1];
      if (url === undefined || busEndpoint === undefined) return fail('printed a summary without WebSocket and Bus lines');
      settled = true;
      clearTimeout(timer);
      resolve({
        child,
        url,
        wsPort: portOf(url),
        busEndpoint,
        busPort: busEndpoint.startsWith('tcp://') ? portOf(busEndpoint) : 0,
        devKey: DEV_KEY_LINE.exec(stdout)?.[1],
        stdout: () => stdout,
        stderr: () => stderr,
        exited,
        stop,
      });
    });
  });
}

function portOf(url: string): number {
  const port = Number(/:(\d+)\/?$/.exec(url)?.[1]);
  if (!Number.isInteger(port) || port <= 0) throw new Error(`no port in ${url}`);
  return port;
}

export interface AdapterProcess {
  readonly child: ChildProcess;
  stdout(): string;
  stderr(): string;
  /** Resolves once the adapter has found its gateway and printed that it is running. */
  readonly ready: Promise<void>;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

export interface ReplayProcess {
  child: ChildProcess;
  /** Once the replay has registered with its gateway (rejects if it exits first, with its output). */
  ready: Promise<void>;
  exited: Promise<{ code: number | null; stdout: string; stderr: string }>;
}

/** Spawns `tickcast replay <args>`, killed after `killAfterMs` if it has not exited by then. */
export function startReplayProcess(dataDir: string, args: readonly string[], options: { env?: Env; killAfterMs?: number } = {}): ReplayProcess {
  const child = spawn(process.execPath, [TICKCAST_BIN, 'replay', ...args], { cwd: REPO_ROOT, env: tickcastEnv(dataDir, options.env), stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const exited = new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => child.once('close', (code) => resolve({ code, stdout, stderr })));
  const ready = new Promise<void>((resolve, reject) => {
    child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      stdout += chunk;
      if (/replay "replay" is running/.test(stdout)) resolve();
    });
    void exited.then(({ code }) => reject(new Error(`tickcast replay exited (code ${code})\n--- stdout\n${stdout}\n--- stderr\n${stderr}`)));
  });
  ready.catch(() => {});
  if (options.killAfterMs !== undefined) {
    const timer = setTimeout(() => child.kill('SIGKILL'), options.killAfterMs);
    void exited.then(() => clearTimeout(timer));
  }
  return { child, ready, exited };
}

/** Spawns `tickcast adapter <args>`; it may wait for its gateway before `ready` resolves. */
export function startAdapterCliProcess(options: GatewayProcessOptions): AdapterProcess {
  return startServingCliProcess('adapter', /adapter "[^"]+" is running/, options);
}

/** Spawns `tickcast openalgo-bridge <args>`; `ready` once it has found its gateway and started the bridge. */
export function startBridgeCliProcess(options: GatewayProcessOptions): AdapterProcess {
  return startServingCliProcess('openalgo-bridge', /OpenAlgo bridge is running/, options);
}

/** A long-running `tickcast <command>`, ready once its stdout matches `running`. */
function startServingCliProcess(command: string, running: RegExp, { dataDir, env = {}, args = [] }: GatewayProcessOptions): AdapterProcess {
  const child = spawn(process.execPath, [TICKCAST_BIN, command, ...args], {
    cwd: REPO_ROOT,
    env: tickcastEnv(dataDir, env),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  track(child);
  let stdout = '';
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('close', (code, signal) => resolve({ code, signal })),
  );
  const ready = new Promise<void>((resolve, reject) => {
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      stdout += chunk;
      if (running.test(stdout)) resolve();
    });
    void exited.then(({ code, signal }) =>
      reject(new Error(`tickcast ${command} exited (code ${code}, signal ${signal})\n--- stdout\n${stdout}\n--- stderr\n${stderr}`)),
    );
  });
  ready.catch(() => {}); // observed by the test when it awaits `ready`
  const stop = async (signal: NodeJS.Signals = 'SIGTERM'): Promise<number | null> => {
    if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), STOP_TIMEOUT_MS)));
    const result = await Promise.race([exited, timedOut]);
    clearTimeout(timer);
    if (result === 'timeout') {
      child.kill('SIGKILL');
      await exited;
      throw new Error(`tickcast ${command} did not exit within ${STOP_TIMEOUT_MS} ms of ${signal}\n--- stderr\n${stderr}`);
    }
    return result.code;
  };
  return { child, stdout: () => stdout, stderr: () => stderr, ready, exited, stop };
}

/** Worker number → pid of a `--workers N` gateway, from the primary's "gateway worker listening" log lines. */
export function workerPids(gateway: GatewayProcess): Map<number, number> {
  const pids = new Map<number, number>();
  for (const line of gateway.stderr().split('\n')) {
    if (!line.includes('gateway worker listening')) continue;
    const entry = JSON.parse(line) as { worker: number; workerPid: number };
    pids.set(entry.worker, entry.workerPid);
  }
  return pids;
}
