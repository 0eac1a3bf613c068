/**
 * Feed throughput: one gateway with its simulator at a given rate per symbol, one client (in a
 * separate process, so the client's CPU is not the gateway's) subscribed to every simulator
 * symbol in Depth mode. Reports ticks/s the gateway took off the bus, ticks/s the client
 * received, the client's publish-to-receive latency (p50/p99, from the tick's `timestamp`), and
 * the gateway process's CPU.
 *
 *   npm run bench:feed -- [--rate 300] [--seconds 5] [--no-bus-batch]
 */
import { fork } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_INSTRUMENTS } from '../src/adapters/simulator/instruments.js';
import { loadConfig } from '../src/config/load.js';
import { startInstance } from '../src/instance.js';
import { silentLogger } from '../src/observability/logger.js';

const arg = (name: string, fallback: number): number => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : fallback;
};

if (process.argv[2] === '--client') {
  // Child: count market data and latency; JSON.parse nothing but the replies.
  const { default: WebSocket } = await import('ws');
  const [, , , url, apiKey, seconds] = process.argv;
  const ws = new WebSocket(url!);
  let count = 0;
  let latencies: number[] = [];
  let measuring = false;
  ws.on('open', () => ws.send(JSON.stringify({ action: 'authenticate', api_key: apiKey })));
  ws.on('message', (data) => {
    const text = data.toString();
    if (text.startsWith('{"type":"market_data"')) {
      if (!measuring) return;
      count++;
      const at = text.indexOf('"timestamp":');
      latencies.push(Date.now() - Number(text.slice(at + 12, text.indexOf(',', at))));
      return;
    }
    if (JSON.parse(text).type === 'auth') {
      ws.send(JSON.stringify({ action: 'subscribe', symbols: DEFAULT_INSTRUMENTS.map(({ symbol, exchange }) => ({ symbol, exchange })), mode: 3 }));
      setTimeout(() => {
        measuring = true;
        const started = Date.now();
        setTimeout(() => {
          const elapsed = (Date.now() - started) / 1000;
          latencies.sort((a, b) => a - b);
          const at = (q: number): number => latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * q))] ?? NaN;
          process.send!({ received: count / elapsed, p50: at(0.5), p99: at(0.99) });
          latencies = [];
        }, Number(seconds) * 1000);
      }, 1500);
    }
  });
} else {
  const rate = arg('rate', 300);
  const seconds = arg('seconds', 5);
  const dataDir = mkdtempSync(join(tmpdir(), 'tickcast-bench-'));
  const loaded = loadConfig({
    cwd: dataDir,
    env: {
      TICKCAST_DATA_DIR: dataDir,
      TICKCAST_REGISTRY: `sqlite:${join(dataDir, 'registry.db')}`,
      WEBSOCKET_PORT: '0',
      ZMQ_PORT: '0',
      TICKCAST_DEV_KEY: 'false',
      TICKCAST_LOG_LEVEL: 'silent',
      TICKCAST_SIM_RATE: String(rate),
      TICKCAST_BUS_BATCH: String(!process.argv.includes('--no-bus-batch')),
    },
  });
  if (!loaded.ok) throw new Error(loaded.errors.join('\n'));
  const instance = await startInstance(loaded.config, { logger: silentLogger() });
  try {
    const { apiKey } = await instance.keys.create('bench', 'simulator');
    const child = fork(new URL(import.meta.url), ['--client', instance.url, apiKey, String(seconds)], { execArgv: process.execArgv });
    await new Promise((resolve) => setTimeout(resolve, 1500));
    const ticks0 = instance.gateway.busListener.counters.ticks;
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    const result = await new Promise<{ received: number; p50: number; p99: number }>((resolve) => child.once('message', resolve as never));
    const elapsed = (performance.now() - t0) / 1000;
    const cpu = process.cpuUsage(cpu0);
    child.kill();
    const offered = rate * DEFAULT_INSTRUMENTS.length;
    console.log('| offered ticks/s | bus ticks/s | client ticks/s | p50 ms | p99 ms | gateway CPU % |');
    console.log('|---|---|---|---|---|---|');
    console.log(
      `| ${offered} | ${((instance.gateway.busListener.counters.ticks - ticks0) / elapsed).toFixed(0)} | ${result.received.toFixed(0)} | ${result.p50} | ${result.p99} | ${(((cpu.user + cpu.system) / 1e6 / elapsed) * 100).toFixed(0)} |`,
    );
  } finally {
    await instance.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
}
