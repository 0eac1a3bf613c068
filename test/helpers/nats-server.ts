/**
 * A throwaway nats-server for tests: a free port on 127.0.0.1, no persistence, stopped with
 * `stop()`; `restart()` stops it and starts a new one on the same port, as an operator's restart
 * would. Missing nats-server is an error, not a skip (Debian package `nats-server`).
 * `startNatsServer({ config })` runs it with a configuration file of that text (authorization,
 * TLS…); the address and port given on its command line win over the file's.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { answers, findServer, freePort, stopProcess } from './server-process.js';

export interface NatsServer {
  port: number;
  url: string;
  /** Stops the server and starts a new one on the same port; resolves once it accepts clients. */
  restart(options?: { downMs?: number }): Promise<void>;
  /** Stops the server (a later `restart()` brings it back). */
  kill(): Promise<void>;
  /** The running server's pid (benchmarks read its CPU time), undefined while it is down. */
  pid(): number | undefined;
  stop(): Promise<void>;
}

/** True once the server greets a TCP client with its INFO line. */
const greets = (port: number): Promise<boolean> => answers(port, 'INFO ');

export { freePort };

/** Runs nats-server on `port`; resolves with the child once it accepts clients, or undefined if it exited. */
async function launch(binary: string, port: number, configFile?: string): Promise<{ child: ChildProcess; output: () => string } | undefined> {
  const args = [...(configFile ? ['-c', configFile] : []), '-a', '127.0.0.1', '-p', String(port), '-n', `tickcast-test-${port}`];
  const child = spawn(binary, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout?.on('data', (chunk) => (output += chunk.toString()));
  child.stderr?.on('data', (chunk) => (output += chunk.toString()));
  const deadline = Date.now() + 10_000;
  while (child.exitCode === null && child.signalCode === null && Date.now() < deadline) {
    if (await greets(port)) return { child, output: () => output };
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  await stopProcess(child);
  lastOutput = output;
  return undefined;
}

let lastOutput = '';

export interface NatsServerOptions {
  /** Text of a nats-server configuration file (e.g. an `authorization { … }` block). */
  config?: string;
}

/** Starts nats-server on a free port and resolves once it accepts clients. */
export async function startNatsServer(options: NatsServerOptions = {}): Promise<NatsServer> {
  const binary = findServer('nats-server', ['/usr/sbin', '/usr/bin'], 'the NATS bus tests need it');
  let configFile: string | undefined;
  if (options.config !== undefined) {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tickcast-nats-'));
    configFile = path.join(dir, 'nats-server.conf');
    fs.writeFileSync(configFile, options.config, { mode: 0o600 });
  }
  const removeConfig = (): void => {
    if (configFile) fs.rmSync(path.dirname(configFile), { recursive: true, force: true });
  };
  for (let attempt = 0; attempt < 5; attempt++) {
    const port = await freePort();
    let running = await launch(binary, port, configFile);
    if (!running) continue; // most likely the port was taken meanwhile
    let stopped = false;
    const kill = async (): Promise<void> => {
      if (running) await stopProcess(running.child);
      running = undefined;
    };
    return {
      port,
      url: `nats://127.0.0.1:${port}`,
      kill,
      pid: () => running?.child.pid,
      restart: async ({ downMs = 0 } = {}) => {
        await kill();
        if (downMs > 0) await new Promise((resolve) => setTimeout(resolve, downMs));
        // The port was just released; another process could take it, but in a test run that is rare.
        for (let i = 0; i < 20 && !running && !stopped; i++) {
          running = await launch(binary, port, configFile);
          if (!running) await new Promise((resolve) => setTimeout(resolve, 100));
        }
        if (!running) throw new Error(`nats-server did not restart on port ${port}: ${lastOutput.trim()}`);
      },
      stop: async () => {
        stopped = true;
        await kill();
        removeConfig();
      },
    };
  }
  removeConfig();
  throw new Error(`nats-server did not start: ${lastOutput.trim()}`);
}
