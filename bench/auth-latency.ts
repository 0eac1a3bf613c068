/**
 * Authentication latency: time from sending `authenticate` to the success reply, on fresh
 * connections, for the first (uncached, Argon2) verification and for cached ones.
 *
 *   npm run bench:auth [-- --runs 50]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import WebSocket from 'ws';
import { loadConfig } from '../src/config/load.js';
import { startInstance } from '../src/instance.js';
import { silentLogger } from '../src/observability/logger.js';

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

const dataDir = mkdtempSync(join(tmpdir(), 'tickcast-bench-'));
const loaded = loadConfig({
  cwd: dataDir,
  env: { TICKCAST_DATA_DIR: dataDir, WEBSOCKET_PORT: '0', ZMQ_PORT: '0', TICKCAST_DEV_KEY: 'false', TICKCAST_LOG_LEVEL: 'silent' },
});
if (!loaded.ok) throw new Error(loaded.errors.join('\n'));
const instance = await startInstance(loaded.config, { logger: silentLogger() });
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
  rmSync(dataDir, { recursive: true, force: true });
}
