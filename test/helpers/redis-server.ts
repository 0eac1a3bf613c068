/**
 * A throwaway redis-server for tests: a free port, no persistence, stopped with `stop()`. Never
 * the machine's own Redis. Missing redis-server is an error, not a skip: the Redis registry must
 * be tested wherever the suite runs (Debian package `redis-server`).
 */
import { spawn } from 'node:child_process';
import { answers, findServer, freePort, stopProcess } from './server-process.js';

export interface RedisServer {
  port: number;
  url: string;
  stop(): Promise<void>;
}

const pings = (port: number): Promise<boolean> => answers(port, '+PONG', 'PING\r\n');

/** Starts redis-server and resolves once it answers; fails after a few port collisions. */
export async function startRedisServer(): Promise<RedisServer> {
  const binary = findServer('redis-server', ['/usr/bin'], 'the Redis registry tests need it');
  let lastOutput = '';
  for (let attempt = 0; attempt < 5; attempt++) {
    const port = await freePort();
    const child = spawn(
      binary,
      ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--daemonize', 'no', '--loglevel', 'warning'],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let output = '';
    child.stdout?.on('data', (chunk) => (output += chunk.toString()));
    child.stderr?.on('data', (chunk) => (output += chunk.toString()));
    const deadline = Date.now() + 10_000;
    while (child.exitCode === null && child.signalCode === null && Date.now() < deadline) {
      if (await pings(port)) {
        return { port, url: `redis://127.0.0.1:${port}`, stop: () => stopProcess(child) };
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    // It exited (most likely the port was taken meanwhile) or never answered: try another port.
    await stopProcess(child);
    lastOutput = output;
  }
  throw new Error(`redis-server did not start: ${lastOutput.trim()}`);
}
