/**
 * A throwaway redis-server for tests: a free port, no persistence, stopped with `stop()`. Never
 * the machine's own Redis. Missing redis-server is an error, not a skip: the Redis registry must
 * be tested wherever the suite runs (Debian package `redis-server`).
 *
 * Options turn on what a production Redis has: a password for the default user (`requirepass`),
 * ACL users (`aclUsers`, lines of an ACL file, e.g. `user tickcast on >pw ~tickcast:* +get`),
 * and TLS (`tls`: certificate and key files; the server then listens only with TLS).
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { answers, findServer, freePort, stopProcess } from './server-process.js';

export interface RedisServer {
  port: number;
  /** `redis://127.0.0.1:PORT` (`rediss://` with TLS), without credentials. */
  url: string;
  stop(): Promise<void>;
}

export interface RedisServerOptions {
  /** Password of the default user. */
  requirepass?: string;
  /** ACL file lines (`user NAME on >PASSWORD ~PATTERN +COMMAND …`); the default user is off unless a line says otherwise. */
  aclUsers?: string[];
  /** Serve TLS only, with this certificate and key (PEM files). */
  tls?: { certFile: string; keyFile: string; caFile: string };
}

/** Any reply to PING (PONG, or NOAUTH from a server that wants a password) means it is up. */
const pings = (port: number): Promise<boolean> => answers(port, '', 'PING\r\n');

/** The same over TLS: a completed handshake and any reply. */
function pingsTls(port: number, caFile: string): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = tls.connect({ port, host: '127.0.0.1', ca: fs.readFileSync(caFile), servername: 'localhost' });
    const done = (ok: boolean): void => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(500, () => done(false));
    socket.once('error', () => done(false));
    socket.once('secureConnect', () => socket.write('PING\r\n'));
    socket.once('data', () => done(true));
  });
}

/** Starts redis-server and resolves once it answers; fails after a few port collisions. */
export async function startRedisServer(options: RedisServerOptions = {}): Promise<RedisServer> {
  const binary = findServer('redis-server', ['/usr/bin'], 'the Redis registry tests need it');
  const dir = options.aclUsers ? fs.mkdtempSync(path.join(os.tmpdir(), 'tickcast-redis-')) : undefined;
  const extra: string[] = [];
  if (options.requirepass !== undefined) extra.push('--requirepass', options.requirepass);
  if (dir && options.aclUsers) {
    const aclFile = path.join(dir, 'users.acl');
    const lines = options.aclUsers.some((line) => /^user default /.test(line)) ? options.aclUsers : ['user default off', ...options.aclUsers];
    fs.writeFileSync(aclFile, `${lines.join('\n')}\n`, { mode: 0o600 });
    extra.push('--aclfile', aclFile);
  }
  const cleanup = (): void => {
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  };
  let lastOutput = '';
  for (let attempt = 0; attempt < 5; attempt++) {
    const port = await freePort();
    const listen = options.tls
      ? ['--port', '0', '--tls-port', String(port), '--tls-cert-file', options.tls.certFile, '--tls-key-file', options.tls.keyFile, '--tls-ca-cert-file', options.tls.caFile, '--tls-auth-clients', 'no']
      : ['--port', String(port)];
    const child = spawn(
      binary,
      [...listen, '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--daemonize', 'no', '--loglevel', 'warning', ...extra],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let output = '';
    child.stdout?.on('data', (chunk) => (output += chunk.toString()));
    child.stderr?.on('data', (chunk) => (output += chunk.toString()));
    const deadline = Date.now() + 10_000;
    while (child.exitCode === null && child.signalCode === null && Date.now() < deadline) {
      if (await (options.tls ? pingsTls(port, options.tls.caFile) : pings(port))) {
        return {
          port,
          url: `${options.tls ? 'rediss' : 'redis'}://127.0.0.1:${port}`,
          stop: async () => {
            await stopProcess(child);
            cleanup();
          },
        };
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    // It exited (most likely the port was taken meanwhile) or never answered: try another port.
    await stopProcess(child);
    lastOutput = output;
  }
  cleanup();
  throw new Error(`redis-server did not start: ${lastOutput.trim()}`);
}
