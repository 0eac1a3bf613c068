/**
 * Runs the OpenAlgo bridge (bridge/openalgo_bridge.py) as a child process and keeps it running:
 * a bridge that dies is started again with backoff (its feeds come back through the gateway's
 * replay when it registers); one that exits with a configuration error or a refusal is not, and
 * says why. Its log lines become tickcast's, under `part: bridge`.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import type { Clock } from '../clock.js';
import type { Logger } from '../observability/logger.js';

/** The bridge program shipped with tickcast. */
export const BRIDGE_SCRIPT = fileURLToPath(new URL('../../bridge/openalgo_bridge.py', import.meta.url));

/** The bridge's feed id: the name it registers with the gateway under (and in the registry). */
export const BRIDGE_FEED = 'openalgo';

/** Exit codes of the bridge that a restart cannot fix. */
const EXIT_CONFIG = 2;
const EXIT_REFUSED = 3;

/** Restart backoff: from 1 s, doubling to 30 s; a bridge that ran a minute starts from 1 s again. */
const BACKOFF_MIN_MS = 1000;
const BACKOFF_MAX_MS = 30_000;
const STABLE_MS = 60_000;
/** How long a stopping bridge gets to say bye and close its broker sessions before SIGKILL. */
const STOP_GRACE_MS = 5000;

/** The OpenAlgo directory's file that tells a bridge can run there. */
export const OPENALGO_FACTORY = join('websocket_proxy', 'broker_factory.py');

/** OpenAlgo's Python for `dir`: `--python`, else its .venv's, else python3 on the PATH. */
/** The bridge's timers as configured. */
export function bridgeTimings(config: { openalgo: { bridgeStaleMs: number; bridgeCallTimeoutMs: number; bridgeRetryMs: number } }): BridgeSupervisorOptions['timings'] {
  return { staleMs: config.openalgo.bridgeStaleMs, callTimeoutMs: config.openalgo.bridgeCallTimeoutMs, retryMs: config.openalgo.bridgeRetryMs };
}

export function bridgePython(dir: string, configured: string | undefined): string {
  if (configured !== undefined) return configured;
  const venv = join(dir, '.venv', 'bin', 'python');
  return existsSync(venv) ? venv : 'python3';
}

export interface BridgeEndpoints {
  /** The gateway's control endpoint (ZeroMQ). */
  control: string;
  /** The gateway's bus endpoint (ZeroMQ), where the bridge publishes ticks. */
  bus: string;
}

/** `tcp://0.0.0.0:5555` → `tcp://127.0.0.1:5555`: where a process on this host connects to a wildcard bind. */
export function connectable(endpoint: string): string {
  return endpoint.replace(/^tcp:\/\/(?:0\.0\.0\.0|\*):/, 'tcp://127.0.0.1:').replace(/^tcp:\/\/\[::\]:/, 'tcp://[::1]:');
}

export interface BridgeSupervisorOptions {
  /** The OpenAlgo installation whose adapters the bridge runs. */
  openalgoDir: string;
  python: string;
  /** The instance's control key file (the bridge proves it holds the key). */
  keyFile: string;
  instance: string;
  /** The bridge's timers (TICKCAST_BRIDGE_STALE, _CALL_TIMEOUT, _RETRY). */
  timings: { staleMs: number; callTimeoutMs: number; retryMs: number };
  /** Environment of the bridge; default this process's. */
  env?: NodeJS.ProcessEnv;
  clock: Clock;
  logger: Logger;
}

export type BridgeState =
  | { state: 'starting' | 'running'; pid: number; restarts: number }
  | { state: 'restarting'; restarts: number; at: number; lastExit: string }
  | { state: 'failed'; restarts: number; reason: string }
  | { state: 'stopped'; restarts: number };

export class BridgeSupervisor {
  private child: ChildProcess | undefined;
  private endpoints: BridgeEndpoints | undefined;
  private current: BridgeState = { state: 'stopped', restarts: 0 };
  private timer: NodeJS.Timeout | undefined;
  private backoffMs = BACKOFF_MIN_MS;
  private startedAt = 0;
  private stopping = false;
  /** The bridge's last error line (`openalgo-bridge: …`), for the reason it exited. */
  private lastError: string | undefined;
  private readonly failedListeners: Array<(reason: string) => void> = [];

  constructor(private readonly options: BridgeSupervisorOptions) {}

  get state(): BridgeState {
    return this.current;
  }

  /** The bridge's state as a sentence for users whose feeds wait on it. */
  describe(): string {
    const s = this.current;
    switch (s.state) {
      case 'starting':
        return `the OpenAlgo bridge (pid ${s.pid}) is starting`;
      case 'running':
        return `the OpenAlgo bridge (pid ${s.pid}) is connecting`;
      case 'restarting':
        return `the OpenAlgo bridge ${s.lastExit}; it restarts in ${Math.max(0, Math.ceil((s.at - this.options.clock.now()) / 1000))} s`;
      case 'failed':
        return `the OpenAlgo bridge cannot run: ${s.reason}`;
      case 'stopped':
        return 'the OpenAlgo bridge is stopped';
    }
  }

  /** Told once when the bridge has failed for good. */
  onFailed(listener: (reason: string) => void): void {
    this.failedListeners.push(listener);
  }

  /** Starts the bridge for the gateway at `endpoints` (known once the gateway has bound them). */
  start(endpoints: BridgeEndpoints): void {
    this.endpoints = { control: connectable(endpoints.control), bus: connectable(endpoints.bus) };
    this.stopping = false;
    this.spawnBridge();
  }

  async stop(): Promise<void> {
    this.stopping = true;
    clearTimeout(this.timer);
    const child = this.child;
    if (child && child.exitCode === null && child.signalCode === null) {
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      child.kill('SIGTERM');
      const killer = setTimeout(() => child.kill('SIGKILL'), STOP_GRACE_MS);
      await exited;
      clearTimeout(killer);
    }
    this.current = { state: 'stopped', restarts: this.current.restarts };
  }

  private spawnBridge(): void {
    const { options } = this;
    const endpoints = this.endpoints!;
    const args = [
      BRIDGE_SCRIPT,
      '--openalgo-dir', options.openalgoDir,
      '--control', endpoints.control,
      '--bus', endpoints.bus,
      '--key-file', options.keyFile,
      '--instance', options.instance,
      '--feed', BRIDGE_FEED,
      '--stale-after-ms', String(options.timings.staleMs),
      '--call-timeout-ms', String(options.timings.callTimeoutMs),
      '--retry-min-ms', String(options.timings.retryMs),
      // The bridge stops once this process is no longer its parent (killed outright, say).
      '--parent-pid', String(process.pid),
    ];
    this.lastError = undefined;
    const child = spawn(options.python, args, { cwd: options.openalgoDir, env: options.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    this.startedAt = options.clock.now();
    const restarts = this.current.restarts;
    child.once('error', (error) => {
      // The Python could not be run at all (no such file): a restart will not find it either.
      this.fail(`${options.python} could not be run (${error.message}); set TICKCAST_OPENALGO_PYTHON (--python) to OpenAlgo's Python`);
    });
    if (child.pid === undefined) return;
    this.current = { state: 'starting', pid: child.pid, restarts };
    options.logger.info({ pid: child.pid, python: options.python, openalgoDir: options.openalgoDir }, 'OpenAlgo bridge started');
    createInterface({ input: child.stdout! }).on('line', (line) => {
      if (line.trim() === 'ready' && this.child === child) this.current = { state: 'running', pid: child.pid!, restarts };
    });
    createInterface({ input: child.stderr! }).on('line', (line) => {
      const text = line.replace(/^openalgo-bridge: /, '');
      if (text !== line) this.lastError = text;
      options.logger.info({ part: 'bridge', pid: child.pid }, text);
    });
    child.once('exit', (code, signal) => this.exited(child, code, signal));
  }

  private exited(child: ChildProcess, code: number | null, signal: NodeJS.Signals | null): void {
    if (this.child !== child) return;
    this.child = undefined;
    if (this.stopping) return;
    const how = signal ? `was killed (${signal})` : `exited with code ${code}`;
    if (code === EXIT_CONFIG || code === EXIT_REFUSED) {
      this.fail(`it ${how}: ${this.lastError ?? 'no reason given'}`);
      return;
    }
    const now = this.options.clock.now();
    if (now - this.startedAt >= STABLE_MS) this.backoffMs = BACKOFF_MIN_MS;
    const delay = this.backoffMs;
    this.backoffMs = Math.min(this.backoffMs * 2, BACKOFF_MAX_MS);
    const restarts = this.current.restarts + 1;
    this.current = { state: 'restarting', restarts, at: now + delay, lastExit: how + (this.lastError ? ` (${this.lastError})` : '') };
    this.options.logger.warn({ restartInMs: delay, restarts, reason: this.lastError }, `OpenAlgo bridge ${how}; restarting`);
    this.timer = setTimeout(() => this.spawnBridge(), delay);
    this.timer.unref();
  }

  private fail(reason: string): void {
    if (this.current.state === 'failed') return;
    this.child = undefined;
    this.current = { state: 'failed', restarts: this.current.restarts, reason };
    this.options.logger.error({ reason }, 'the OpenAlgo bridge cannot run; bridged users get no ticks');
    for (const listener of this.failedListeners) listener(reason);
  }
}
