/**
 * Gateway memory per connected client: RSS and V8 heap of the gateway process (simulator idle)
 * before and after N clients connect, authenticate and subscribe to S symbols each (clients in
 * a separate process). Needs --expose-gc for stable numbers: `npm run bench:memory -- 2000 20`.
 */
import { fork } from 'node:child_process';
import { mkdtempSync } from 'node:fs'; import { tmpdir } from 'node:os'; import { join } from 'node:path';
import { loadConfig } from '../src/config/load.js';
import { startInstance } from '../src/instance.js';
import { silentLogger } from '../src/observability/logger.js';
if (process.argv[2] === '--clients') {
  const { default: WebSocket } = await import('ws');
  const [, , , url, key, n, subs] = process.argv;
  const names = ['RELIANCE','INFY','TCS','SBIN','HDFCBANK','ITC','LT','WIPRO','AXISBANK','MARUTI','TITAN','ICICIBANK','KOTAKBANK','BHARTIARTL','HINDUNILVR','ASIANPAINT','BAJFINANCE','SUNPHARMA','ULTRACEMCO','NESTLEIND'];
  const keep: unknown[] = [];
  for (let i = 0; i < Number(n); i++) {
    const ws = new WebSocket(url!, { perMessageDeflate: false });
    await new Promise<void>((res) => { ws.on('open', () => ws.send(JSON.stringify({ action: 'authenticate', api_key: key }))); ws.once('message', () => { if (Number(subs)) { ws.send(JSON.stringify({ action: 'subscribe', symbols: names.slice(0, Number(subs)).map(s => ({symbol: s, exchange: 'NSE'})), mode: 2 })); ws.once('message', () => res()); } else res(); }); });
    keep.push(ws);
  }
  process.send!('ready');
  setInterval(() => {}, 1000);
} else {
  const n = Number(process.argv[2] ?? 2000); const subs = process.argv[3] ?? '0';
  const dataDir = mkdtempSync(join(tmpdir(), 'tc-'));
  const c = loadConfig({ cwd: dataDir, env: { TICKCAST_DATA_DIR: dataDir, TICKCAST_REGISTRY: `sqlite:${dataDir}/r.db`, WEBSOCKET_PORT: '0', ZMQ_PORT: '0', TICKCAST_DEV_KEY: 'false', TICKCAST_LOG_LEVEL: 'silent', TICKCAST_SIM_RATE: '0.001' } });
  if (!c.ok) throw new Error(c.errors.join());
  const inst = await startInstance(c.config, { logger: silentLogger() });
  const { apiKey } = await inst.keys.create('m', 'simulator');
  const gc = (): void => {
    const collect = (globalThis as { gc?: () => void }).gc;
    if (!collect) throw new Error('run with --expose-gc (npm run bench:memory does)');
    collect();
    collect();
  };
  await new Promise(r => setTimeout(r, 500)); gc();
  const before = process.memoryUsage();
  const child = fork(new URL(import.meta.url), ['--clients', inst.url, apiKey, String(n), subs], { execArgv: process.execArgv });
  await new Promise(r => child.once('message', r));
  await new Promise(r => setTimeout(r, 1000)); gc();
  const after = process.memoryUsage();
  const kb = (k: 'rss' | 'heapUsed' | 'external') => ((after[k] - before[k]) / n / 1024).toFixed(1);
  console.log(`server, ${n} clients, ${subs} subs each: rss ${kb('rss')} KB, heapUsed ${kb('heapUsed')} KB, external ${kb('external')} KB per client`);
  child.kill(); process.exit(0);
}
