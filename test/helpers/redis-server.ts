/**
 * A throwaway redis-server for tests: a free port, no persistence, stopped with `stop()`. Never
 * the machine's own Redis. Missing redis-server is an error, not a skip: the Redis registry must
 * be tested wherever the suite runs (Debian package `redis-server`).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';

export interface RedisServer {
  port: number;
  url: string;
  stop(): Promise<void>;
}

function findRedisServer(): string {
  const candidates = [
    '/usr/bin/redis-server',
    ...(process.env.PATH ?? '').split(path.delimiter).filter(Boolean).map((dir) => path.join(dir, 'redis-server')),
  ];
  const found = candidates.find((file) => {
    try {
      fs.accessSync(file, fs.constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
  if (!found) throw new Error('redis-server not found (install the Debian package redis-server): the Redis registry tests need it');
  return found;
}

/** A port nobody listens on right now (another process may still take it: callers retry). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** True once the server answers PING with PONG. */
function pings(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    let reply = '';
    const done = (ok: boolean): void => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(500, () => done(false));
    socket.once('error', () => done(false));
    socket.on('data', (chunk) => {
      reply += chunk.toString();
      if (reply.includes('\r\n')) done(reply.startsWith('+PONG'));
    });
    socket.once('connect', () => socket.write('PING\r\n'));
  });
}

function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

async function stopProcess(child: ChildProcess): Promise<void> {
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
  await exited(child);
  clearTimeout(timer);
}

/** Starts redis-server and resolves once it answers; fails after a few port collisions. */
export async function startRedisServer(): Promise<RedisServer> {
  const binary = findRedisServer();
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
