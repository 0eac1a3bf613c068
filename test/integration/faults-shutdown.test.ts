/**
 * Graceful shutdown of the real `tickcast start` on SIGTERM and SIGINT: it stops accepting, closes
 * clients with 1001, removes its registry entry and exits 0 within a bounded time, even with a
 * client that never answers the close; a second signal exits at once; a signal that arrives while
 * the gateway is still starting stops it as soon as it is up. (cli.test.ts checks the 1001 close
 * of authenticated and unauthenticated clients.)
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readdirSync, readlinkSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import WebSocket from 'ws';
import { afterEach, describe, expect, it } from 'vitest';
import { REPO_ROOT, TICKCAST_BIN, type GatewayProcess, killSpawnedProcesses, makeTempDir, removeDir, runCli, startGatewayProcess, tickcastEnv } from '../helpers/cli.js';
import { TestClient, sleep, waitFor } from '../helpers/client.js';
import { LEVEL, waitForMessage } from '../helpers/logs.js';

const dirs: string[] = [];
const sockets: net.Socket[] = [];
afterEach(async () => {
  for (const socket of sockets.splice(0)) socket.destroy();
  await killSpawnedProcesses();
  for (const dir of dirs.splice(0)) removeDir(dir);
});

/** The force-exit bound of `tickcast start`; a graceful stop comes well within it. */
const SHUTDOWN_BOUND_MS = 10_000;

function fleet(): { root: string; env: Record<string, string> } {
  const root = makeTempDir('tickcast-faults-');
  dirs.push(root);
  return { root, env: { TICKCAST_REGISTRY: `sqlite:${join(root, 'registry.db')}`, TICKCAST_LOG_LEVEL: 'info' } };
}

async function registryEntries(root: string, env: Record<string, string>): Promise<Array<Record<string, any>>> {
  const result = await runCli(['instances', '--json'], { dataDir: root, env });
  expect(result.code, result.stderr).toBe(0);
  return JSON.parse(result.stdout);
}

/** A WebSocket client that completes the handshake, then never reads or answers anything again. */
async function unresponsiveClient(port: number): Promise<net.Socket> {
  const socket = net.connect(port, '127.0.0.1');
  sockets.push(socket);
  await new Promise((resolve, reject) => socket.once('connect', resolve).once('error', reject));
  socket.write(
    `GET / HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
      `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
  );
  const head = await new Promise<string>((resolve) => socket.once('data', (data: Buffer) => resolve(data.toString())));
  expect(head).toMatch(/^HTTP\/1\.1 101 /);
  socket.pause();
  return socket;
}

/** Whether a new connection is accepted now. */
function accepts(url: string): Promise<boolean> {
  return new Promise((resolve) => {
    const ws = new WebSocket(url);
    ws.once('open', () => {
      ws.terminate();
      resolve(true);
    });
    ws.once('error', () => resolve(false));
  });
}

describe.each(['SIGTERM', 'SIGINT'] as const)('%s', (signal) => {
  it('closes clients with 1001, removes the registry entry and exits 0 within the bound', async () => {
    const { root, env } = fleet();
    const gw = await startGatewayProcess({ dataDir: root, args: ['--instance', 'calm'], env });
    const subscribed = await TestClient.authenticated(gw.url, gw.devKey!);
    await subscribed.request({ action: 'subscribe', symbols: [{ symbol: 'TCS', exchange: 'NSE' }], mode: 2 });
    await subscribed.marketData('TCS');
    const anonymous = await TestClient.connect(gw.url);
    expect(await registryEntries(root, env)).toEqual([expect.objectContaining({ instance: 'calm', pid: gw.child.pid, alive: true })]);

    const sentAt = Date.now();
    const code = gw.stop(signal);
    for (const client of [subscribed, anonymous]) expect(await client.closed).toEqual({ code: 1001, reason: 'server shutting down' });
    expect(await code).toBe(0);
    expect(Date.now() - sentAt).toBeLessThan(SHUTDOWN_BOUND_MS);
    expect(await registryEntries(root, env)).toEqual([]);
    expect(await waitForMessage(gw.stderr, 'shutting down', LEVEL.info)).toMatchObject({ signal });
    await waitForMessage(gw.stderr, 'stopped', LEVEL.info);
  });
});

describe('a client that never answers the close', () => {
  async function holdingGateway(): Promise<{ gw: GatewayProcess; root: string; env: Record<string, string> }> {
    const { root, env } = fleet();
    const gw = await startGatewayProcess({ dataDir: root, args: ['--instance', 'held'], env });
    await unresponsiveClient(gw.wsPort);
    return { gw, root, env };
  }

  it('does not keep the gateway from stopping: no new connections meanwhile, cut off, exit 0 within the bound', async () => {
    const { gw, root, env } = await holdingGateway();
    const sentAt = Date.now();
    const code = gw.stop('SIGTERM');
    await waitForMessage(gw.stderr, 'shutting down');
    expect(gw.child.exitCode).toBeNull(); // still closing, waiting for the silent client
    expect(await accepts(gw.url)).toBe(false);
    expect(await code).toBe(0);
    expect(Date.now() - sentAt).toBeLessThan(SHUTDOWN_BOUND_MS);
    expect(await registryEntries(root, env)).toEqual([]);
  });

  it('a second signal while it waits exits at once, with code 1 and a log line', async () => {
    const { gw, root, env } = await holdingGateway();
    gw.child.kill('SIGTERM');
    await waitForMessage(gw.stderr, 'shutting down');
    expect(gw.child.exitCode).toBeNull();
    expect(await gw.stop('SIGINT')).toBe(1);
    expect(await waitForMessage(gw.stderr, 'second signal: exiting now', LEVEL.warn)).toMatchObject({ signal: 'SIGINT' });
    expect(gw.stderr()).not.toContain('"msg":"stopped"');
    // Its entry stays behind, stale (the pid is gone), for the next start or prune to reap.
    expect(await registryEntries(root, env)).toEqual([expect.objectContaining({ instance: 'held', pid: gw.child.pid, alive: false })]);
  });
});

/** Whether process `pid` has `file` open (Linux: /proc/PID/fd). */
function hasOpen(pid: number, file: string): boolean {
  try {
    return readdirSync(`/proc/${pid}/fd`).some((fd) => {
      try {
        return readlinkSync(`/proc/${pid}/fd/${fd}`) === file;
      } catch {
        return false; // closed meanwhile
      }
    });
  } catch {
    return false;
  }
}

describe('a signal while the gateway is still starting', () => {
  it('stops it gracefully as soon as it is up (exit 0), instead of killing it half-started', async () => {
    const { root, env } = fleet();
    expect((await runCli(['instances'], { dataDir: root, env })).code).toBe(0); // creates the registry
    // Hold the start inside its registry claim with another process's write lock.
    const file = join(root, 'registry.db');
    const holder = new BetterSqlite3(file);
    holder.exec('BEGIN EXCLUSIVE');
    try {
      const child = spawn(process.execPath, [TICKCAST_BIN, 'start', '--instance', 'early'], {
        cwd: REPO_ROOT,
        env: tickcastEnv(root, { ...env, WEBSOCKET_PORT: '0', ZMQ_PORT: '0' }),
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stdout = '';
      let stderr = '';
      child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
      child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
      const exited = new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)));
      try {
        // The registry is opened after the signal handlers are in, and the claim then waits for the lock.
        await waitFor(() => hasOpen(child.pid!, file), 10_000);
        child.kill('SIGTERM');
        await sleep(300);
        holder.exec('COMMIT');
        expect(await exited, stderr).toBe(0);
      } finally {
        child.kill('SIGKILL');
      }
      expect(stdout).toContain('tickcast: instance "early" is running');
      expect(stderr).toMatch(/"signal":"SIGTERM","msg":"shutting down"/);
      expect(stderr).toContain('"msg":"stopped"');
      expect(await registryEntries(root, env)).toEqual([]);
    } finally {
      holder.close();
    }
  });
});
