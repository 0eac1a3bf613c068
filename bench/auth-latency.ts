/**
 * Authentication latency: time from sending `authenticate` to the success reply, on fresh
 * connections, for the first (uncached, Argon2) verification and for cached ones.
 *
 *   npm run bench:auth [-- --runs 50]
 *
 * It runs its own gateway as an instance of its own (`bench-auth-<pid>`, free ports, a registry
 * and data directory in a temporary folder), so it runs beside any other gateway on the host,
 * the default one on 8765/5555 included; the folder is removed at the end, on an error, and on
 * Ctrl-C.
 */
import { mkdtempSync } from 'node:fs';
import { devNull, tmpdir } from 'node:os';
import { join } from 'node:path';
import WebSocket from 'ws';
import { loadConfig } from '../src/config/load.js';
import { startGateway } from '../src/roles/gateway.js';
import { silentLogger } from '../src/observability/logger.js';
import { installCleanupHandlers, removeDirNow, runMain, trackDir } from './cleanup.js';

const runs = Number(process.argv[process.argv.indexOf('--runs') + 1]) || 50;

function authOnce(url: string, apiKey: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    let sentAt = 0;
    ws.on('open', () => {
      sentAt = performance.now();
      ws.send(JSON.stringify({ action: 'authenticate', api_key: apiKey }));
    });
    ws.on('message', (data) => {
      const reply = JSON.parse(data.toString());
      ws.close();
      if (reply.type === 'auth') resolve(performance.now() - sentAt);
      else reject(new Error(JSON.stringify(reply)));
    });
    ws.on('error', reject);
  });
}

const median = (values: number[]): number => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
};

async function main(): Promise<number> {
  installCleanupHandlers();
  const dataDir = mkdtempSync(join(tmpdir(), 'tickcast-bench-auth-'));
  trackDir(dataDir);
  try {
    // Only what is set here: nothing from the shell's environment or a .env file, so the
    // instance never reaches for the default's name, ports, registry or data directory.
    const loaded = loadConfig({
      cwd: dataDir,
      env: {
        TICKCAST_INSTANCE: `bench-auth-${process.pid}`,
        TICKCAST_DATA_DIR: dataDir,
        TICKCAST_REGISTRY: `sqlite:${join(dataDir, 'registry.db')}`,
        TICKCAST_ENV_FILE: devNull,
        WEBSOCKET_PORT: '0',
        ZMQ_PORT: '0',
        TICKCAST_DEV_KEY: 'false',
        TICKCAST_LOG_LEVEL: 'silent',
      },
    });
    if (!loaded.ok) throw new Error(loaded.errors.join('\n'));
    const instance = await startGateway(loaded.config, { logger: silentLogger() });
    try {
      const { apiKey } = await instance.keys.create('bench', 'simulator');
      const first = await authOnce(instance.url, apiKey);
      const cached: number[] = [];
      for (let i = 0; i < runs; i++) cached.push(await authOnce(instance.url, apiKey));
      console.log(`| auth reply | ms |\n|---|---|`);
      console.log(`| first (uncached: one Argon2id verify) | ${first.toFixed(1)} |`);
      console.log(`| cached, median of ${runs} | ${median(cached).toFixed(2)} |`);
      console.log(`| cached, max of ${runs} | ${Math.max(...cached).toFixed(2)} |`);
    } finally {
      await instance.stop();
    }
    return 0;
  } finally {
    removeDirNow(dataDir);
  }
}

runMain('bench:auth', main);
