/**
 * The OpenAlgo bridge: how many ticks per second one bridge process carries from an OpenAlgo
 * broker adapter to a client, and how much latency the bridge adds over a native in-process feed.
 *
 * Every run starts the real gateway (`node bin/tickcast start`) as a process of its own, in a
 * temporary directory removed at the end (or on Ctrl-C):
 *
 * - **bridge**: `--openalgo-dir` pointing at a copy of test/python/openalgo_tree (OpenAlgo's
 *   websocket_proxy interface with fake broker adapters, helpers/openalgo-tree.ts), one bridged
 *   user on dhan, Debian's /usr/bin/python3 running bridge/openalgo_bridge.py. The fake adapter
 *   publishes one Quote tick per subscribed symbol every FAKE_TICK_MS ms through OpenAlgo's
 *   publish path (the bridge's tagged publisher: json.dumps, then a ZeroMQ send), stamping
 *   `timestamp` (epoch ms) as it builds the tick.
 * - **native**: the gateway's own simulator in-process (`TICKCAST_SIM_RATE` ticks/s per symbol),
 *   the client on the printed dev key, the same number of simulator symbols.
 *
 * One `ws` client in this process subscribes N symbols in Quote mode and, after a warm-up,
 * counts market data over a window and takes each tick's latency (receive time, sub-ms, minus
 * the payload's whole-ms `timestamp`). CPU is read from /proc: the gateway process, the bridge
 * (the gateway's child running openalgo_bridge.py), this process (the client) and the host.
 *
 * Part 1, throughput: per step N symbols at 1000/FAKE_TICK_MS ticks/s each through the bridge.
 * Part 2, added latency: bridge and native runs alternated `--rounds` times at the same load.
 * Part 3, per-tick cost of the fake adapter's own Python (building the tick dict, json.dumps),
 * timed in a plain python3 process, to say what the bridge's CPU goes on.
 *
 *   npm run bench:bridge -- [--rounds 3] [--seconds 5] [--warmup 2] [--tick-ms 10]
 *     [--steps 10,50,100,200,400,800] [--latency-symbols 50] [--latency-rate 20]
 *     [--only throughput|latency|cost]
 */
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import WebSocket from 'ws';
import { DEFAULT_INSTRUMENTS } from '../src/adapters/simulator/instruments.js';
import { type GatewayProcess, killSpawnedProcesses, makeTempDir, removeDir, startGatewayProcess } from '../test/helpers/cli.js';
import { FakeOpenAlgo, OPENALGO_TREE } from '../test/helpers/openalgo-tree.js';
import { PYTHON } from '../test/helpers/openalgo-db.js';
import { cpuSeconds, processTree } from './proc-stats.js';

const argv = process.argv.slice(2);
const flag = (name: string): string | undefined => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1] : undefined;
};
const num = (name: string, fallback: number): number => {
  const value = flag(name);
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`--${name} must be a positive number, got "${value}"`);
  return n;
};
if (argv.includes('--help')) {
  console.log(
    'npm run bench:bridge -- [--rounds 3] [--seconds 5] [--warmup 2] [--tick-ms 10] [--steps 10,50,100,200,400,800]\n' +
      '                        [--latency-symbols 50] [--latency-rate 20] [--only throughput|latency|cost]',
  );
  process.exit(0);
}
const ROUNDS = Math.round(num('rounds', 3));
const SECONDS = num('seconds', 5);
const WARMUP = num('warmup', 2);
const TICK_MS = Math.round(num('tick-ms', 10));
const STEPS = (flag('steps') ?? '10,50,100,200,400,800').split(',').map((s) => {
  const n = Number(s);
  if (!Number.isInteger(n) || n <= 0) throw new Error(`--steps takes symbol counts like 10,50,100, got "${s}"`);
  return n;
});
const LAT_SYMBOLS = Math.round(num('latency-symbols', 50));
const LAT_RATE = num('latency-rate', 20);
const ONLY = flag('only');
if (ONLY !== undefined && !['throughput', 'latency', 'cost'].includes(ONLY)) throw new Error(`--only must be throughput, latency or cost, got "${ONLY}"`);
if (LAT_SYMBOLS > DEFAULT_INSTRUMENTS.length) throw new Error(`--latency-symbols: the simulator has ${DEFAULT_INSTRUMENTS.length} instruments`);
if (!Number.isInteger(1000 / LAT_RATE)) throw new Error('--latency-rate must divide 1000 (the fake adapter ticks every whole number of ms)');

// ── cleanup: every gateway (and so its bridge) and the temporary directories ──

const dirs: string[] = [];
const gateways = new Set<GatewayProcess>();
const bridges = new Set<number>();
async function cleanup(): Promise<void> {
  for (const gw of gateways) await gw.stop('SIGTERM', 10_000).catch(() => undefined);
  await killSpawnedProcesses();
  // A bridge outlives its gateway only if the gateway died hard: end it by its own pid.
  for (const pid of bridges) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  for (const dir of dirs.splice(0)) removeDir(dir);
}
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    process.stderr.write(`\nbench: ${signal}, stopping everything …\n`);
    void cleanup().finally(() => process.exit(130));
  });
}

// ── measuring ──

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
const nowMs = (): number => performance.timeOrigin + performance.now();

function hostJiffies(): { busy: number; total: number } {
  const fields = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!.trim().split(/\s+/).slice(1, 9).map(Number);
  const total = fields.reduce((a, b) => a + b, 0);
  return { busy: total - fields[3]! - fields[4]!, total };
}

/** The gateway's child process running openalgo_bridge.py. */
async function bridgePid(gatewayPid: number): Promise<number> {
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline) {
    for (const pid of processTree(gatewayPid).slice(1)) {
      try {
        if (readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('openalgo_bridge.py')) return pid;
      } catch {
        // gone meanwhile
      }
    }
    await sleep(100);
  }
  throw new Error('no openalgo_bridge.py process under the gateway');
}

/** Ticks the gateway has taken off its bus (all feeds), from /api/status. */
async function busTicks(gw: GatewayProcess): Promise<number> {
  const response = await fetch(`${gw.url.replace(/^ws/, 'http')}/api/status`);
  const status = (await response.json()) as { bus?: { ticks?: number } };
  return status.bus?.ticks ?? NaN;
}

interface Client {
  /** Starts counting (and taking latencies) from now. */
  measure(): void;
  /** Stops counting: received ticks/s and latency percentiles over the window. */
  result(): { received: number; p50: number; p99: number; max: number; errors: string[] };
  close(): void;
}

/** A ws client that authenticates, subscribes `symbols` in Quote mode and waits for its first tick. */
async function subscribeClient(url: string, apiKey: string, symbols: Array<{ symbol: string; exchange: string }>): Promise<Client> {
  const ws = new WebSocket(url);
  let measuring = false;
  let count = 0;
  let started = 0;
  let latencies: number[] = [];
  const errors: string[] = [];
  let firstTick: () => void = () => {};
  const gotTick = new Promise<void>((resolve) => (firstTick = resolve));
  const subscribed = new Promise<void>((resolve, reject) => {
    ws.on('error', reject);
    ws.on('open', () => ws.send(JSON.stringify({ action: 'authenticate', api_key: apiKey })));
    ws.on('message', (raw) => {
      const text = raw.toString();
      if (text.startsWith('{"type":"market_data"')) {
        firstTick();
        if (!measuring) return;
        const received = nowMs();
        count++;
        // The payload's own `timestamp` (the fake adapter's json.dumps writes `"timestamp": 123`).
        const at = text.lastIndexOf('"timestamp":');
        if (at >= 0) latencies.push(received - parseInt(text.slice(at + 12).trimStart(), 10));
        return;
      }
      const message = JSON.parse(text) as { type?: string; status?: string; message?: string; subscriptions?: Array<{ status: string; message?: string }> };
      if (message.type === 'auth') {
        if (message.status !== 'success') return reject(new Error(`authenticate: ${text}`));
        ws.send(JSON.stringify({ action: 'subscribe', symbols, mode: 2 }));
      } else if (message.type === 'subscribe') {
        const failed = (message.subscriptions ?? []).filter((s) => s.status !== 'success');
        if (failed.length) return reject(new Error(`${failed.length} of ${symbols.length} symbols failed to subscribe: ${failed[0]!.message}`));
        resolve();
      } else if (message.type === 'feed_status' && measuring) {
        // A feed that is not live during the window (opening and the bridge's start come before it).
        errors.push(`${message.status}: ${message.message ?? ''}`);
      }
    });
  });
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`no tick within 20 s of subscribing ${symbols.length} symbols`)), 20_000)));
  try {
    await Promise.race([subscribed.then(() => gotTick), timeout]);
  } catch (err) {
    ws.terminate();
    throw err;
  } finally {
    clearTimeout(timer);
  }
  return {
    measure() {
      measuring = true;
      count = 0;
      latencies = [];
      started = nowMs();
    },
    result() {
      measuring = false;
      const elapsed = (nowMs() - started) / 1000;
      const sorted = Float64Array.from(latencies).sort();
      const q = (p: number): number => sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] ?? NaN;
      return { received: count / elapsed, p50: q(0.5), p99: q(0.99), max: sorted[sorted.length - 1] ?? NaN, errors };
    },
    close() {
      ws.terminate();
    },
  };
}

interface Run {
  symbols: number;
  offered: number;
  /** Ticks/s the gateway took off its bus: what the bridge actually published (bridge runs). */
  bus: number;
  received: number;
  p50: number;
  p99: number;
  max: number;
  gatewayCpu: number;
  bridgeCpu: number | null;
  clientCpu: number;
  hostBusy: number;
}

/** Everything a window measures, around `client`'s counting. */
async function measureWindow(gw: GatewayProcess, bridge: number | null, client: Client, offered: number, symbols: number): Promise<Run> {
  await sleep(WARMUP * 1000);
  const gwPid = gw.child.pid!;
  const gw0 = cpuSeconds(gwPid) ?? 0;
  const br0 = bridge === null ? 0 : cpuSeconds(bridge) ?? 0;
  const host0 = hostJiffies();
  const bus0 = await busTicks(gw);
  const me0 = process.cpuUsage();
  const t0 = performance.now();
  client.measure();
  await sleep(SECONDS * 1000);
  const r = client.result();
  const elapsed = (performance.now() - t0) / 1000;
  const me = process.cpuUsage(me0);
  const bus1 = await busTicks(gw);
  const host1 = hostJiffies();
  const gw1 = cpuSeconds(gwPid);
  const br1 = bridge === null ? null : cpuSeconds(bridge);
  if (gw1 === null) throw new Error(`the gateway exited during the window\n${gw.stderr()}`);
  if (bridge !== null && br1 === null) throw new BridgeGone(`the bridge (pid ${bridge}) exited during the window\n${gw.stderr()}`);
  if (r.errors.length) process.stderr.write(`bench: the client saw feed_status ${r.errors.join('; ')}\n`);
  return {
    symbols,
    offered,
    bus: (bus1 - bus0) / elapsed,
    received: r.received,
    p50: r.p50,
    p99: r.p99,
    max: r.max,
    gatewayCpu: ((gw1 - gw0) / elapsed) * 100,
    bridgeCpu: br1 === null ? null : ((br1 - br0) / elapsed) * 100,
    clientCpu: ((me.user + me.system) / 1e6 / elapsed) * 100,
    hostBusy: ((host1.busy - host0.busy) / Math.max(1, host1.total - host0.total)) * 100,
  };
}

/** A bridge run, taken again (up to twice) if something outside the bench killed the bridge meanwhile. */
async function bridgeRun(symbols: number, tickMs: number): Promise<Run> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await bridgeRunOnce(symbols, tickMs);
    } catch (err) {
      if (attempt >= 3 || !(err instanceof BridgeGone)) throw err;
      process.stderr.write(`bench: ${err.message.split('\n')[0]}; taking this run again\n`);
    }
  }
}

class BridgeGone extends Error {}

/** One gateway with the bridge and one dhan user whose client subscribes `symbols` symbols. */
async function bridgeRunOnce(symbols: number, tickMs: number): Promise<Run> {
  const root = makeTempDir('tickcast-bench-bridge-');
  dirs.push(root);
  const openalgo = new FakeOpenAlgo(root, [{ user: 'alice', broker: 'dhan', token: 'dhan-token-alice' }]);
  const gw = await startGatewayProcess({
    dataDir: join(root, 'data'),
    args: ['--openalgo-dir', openalgo.dir],
    // No behaviour file nor call log: the fake adapter's tick loop then reads no file.
    env: { ...openalgo.env(), FAKE_TICK_MS: String(tickMs), FAKE_OPENALGO_BEHAVIOUR: undefined, FAKE_OPENALGO_CALLS: undefined, TICKCAST_LOG_LEVEL: 'warn' },
  });
  gateways.add(gw);
  let client: Client | undefined;
  let bridge: number | undefined;
  try {
    bridge = await bridgePid(gw.child.pid!);
    bridges.add(bridge);
    const list = Array.from({ length: symbols }, (_, i) => ({ symbol: `SYM${String(i + 1).padStart(4, '0')}`, exchange: 'NSE' }));
    client = await subscribeClient(gw.url, openalgo.key('alice'), list);
    return await measureWindow(gw, bridge, client, symbols * (1000 / tickMs), symbols);
  } finally {
    client?.close();
    await gw.stop('SIGTERM', 10_000).catch((err: Error) => process.stderr.write(`bench: ${err.message.split('\n')[0]}\n`));
    gateways.delete(gw);
    if (bridge !== undefined) {
      const deadline = Date.now() + 5_000;
      while (cpuSeconds(bridge) !== null && Date.now() < deadline) await sleep(50);
      if (cpuSeconds(bridge) !== null) {
        process.stderr.write(`bench: the bridge (pid ${bridge}) outlived its gateway; killing it\n`);
        try {
          process.kill(bridge, 'SIGKILL');
        } catch {
          // gone meanwhile
        }
      }
      bridges.delete(bridge);
    }
    removeDir(root);
    dirs.splice(dirs.indexOf(root), 1);
  }
}

/** One gateway with its in-process simulator at `rate` ticks/s per symbol, the client on `symbols` of its instruments. */
async function nativeRun(symbols: number, rate: number): Promise<Run> {
  const root = makeTempDir('tickcast-bench-native-');
  dirs.push(root);
  const gw = await startGatewayProcess({ dataDir: join(root, 'data'), env: { TICKCAST_SIM_RATE: String(rate), TICKCAST_LOG_LEVEL: 'warn' } });
  gateways.add(gw);
  let client: Client | undefined;
  try {
    if (!gw.devKey) throw new Error(`the gateway printed no dev key\n${gw.stdout()}`);
    const list = DEFAULT_INSTRUMENTS.slice(0, symbols).map(({ symbol, exchange }) => ({ symbol, exchange }));
    client = await subscribeClient(gw.url, gw.devKey, list);
    return await measureWindow(gw, null, client, symbols * rate, symbols);
  } finally {
    client?.close();
    await gw.stop('SIGTERM', 10_000).catch((err: Error) => process.stderr.write(`bench: ${err.message.split('\n')[0]}\n`));
    gateways.delete(gw);
    removeDir(root);
    dirs.splice(dirs.indexOf(root), 1);
  }
}

// ── the fake adapter's own per-tick cost ──

const COST_SCRIPT = `
import json, os, sys, time
os.environ.setdefault("API_KEY_PEPPER", "x" * 64)
sys.path.insert(0, sys.argv[1])
from broker.dhan.streaming.dhan_adapter import DhanWebSocketAdapter
a = DhanWebSocketAdapter.__new__(DhanWebSocketAdapter)
a._seq = 0; a.user_id = "alice"; a.token = "dhan-token-alice"
n = 200000
best = {}
for _ in range(5):
    t = time.process_time()
    ticks = [a._tick("SYM%04d" % (i % 400), "NSE", 2, 5) for i in range(n)]
    build = (time.process_time() - t) / n
    t = time.process_time()
    payloads = [json.dumps(d).encode("utf-8") for d in ticks]
    dumps = (time.process_time() - t) / n
    best["build"] = min(best.get("build", 1), build)
    best["dumps"] = min(best.get("dumps", 1), dumps)
best["bytes"] = len(payloads[0])
print(json.dumps(best))
`;

function adapterCost(): { build: number; dumps: number; bytes: number } {
  const out = execFileSync(PYTHON, ['-c', COST_SCRIPT, OPENALGO_TREE], { encoding: 'utf8', env: { ...process.env, PYTHONDONTWRITEBYTECODE: '1' } });
  const parsed = JSON.parse(out) as { build: number; dumps: number; bytes: number };
  return { build: parsed.build * 1e6, dumps: parsed.dumps * 1e6, bytes: parsed.bytes };
}

// ── report ──

const median = (values: number[]): number => {
  const sorted = values.filter((v) => Number.isFinite(v)).sort((a, b) => a - b);
  if (!sorted.length) return NaN;
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
};
const fmt = (v: number | null, digits = 0): string => (v === null || !Number.isFinite(v) ? '–' : v.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits }));
const range = (values: number[], digits = 1): string => `${fmt(Math.min(...values), digits)}–${fmt(Math.max(...values), digits)}`;

async function main(): Promise<void> {
  const machine = `${process.version}, ${(await import('node:os')).cpus().length} cores, load average ${(await import('node:os')).loadavg().map((l) => l.toFixed(2)).join(' ')} at start`;
  console.log(`# OpenAlgo bridge (${machine})\n`);
  console.log(`command: npm run bench:bridge -- ${argv.join(' ')}`.trimEnd());
  console.log(`window ${SECONDS} s after ${WARMUP} s warm-up; ${ROUNDS} round(s); medians over rounds; latency = receive time − payload timestamp (whole ms)\n`);

  if (ONLY === undefined || ONLY === 'throughput') {
    const runs: Run[] = [];
    for (let round = 1; round <= ROUNDS; round++) {
      for (const n of STEPS) {
        process.stderr.write(`bench: throughput, round ${round} of ${ROUNDS}, ${n} symbols × ${1000 / TICK_MS} ticks/s …\n`);
        const run = await bridgeRun(n, TICK_MS);
        process.stderr.write(`  received ${fmt(run.received)} of ${fmt(run.offered)} ticks/s, p50 ${fmt(run.p50, 1)} ms, p99 ${fmt(run.p99, 1)} ms, bridge CPU ${fmt(run.bridgeCpu)} %\n`);
        runs.push(run);
      }
    }
    console.log(`## Throughput: one bridged dhan user, Quote mode, FAKE_TICK_MS=${TICK_MS} (${1000 / TICK_MS} ticks/s per symbol)\n`);
    console.log('| symbols | offered ticks/s | bridge published ticks/s (gateway bus) | client received ticks/s | received ÷ offered | received ÷ published | p50 ms | p99 ms | bridge CPU % | gateway CPU % | client CPU % | host busy % | bridge CPU µs/tick | adapter round ms |');
    console.log('|---|---|---|---|---|---|---|---|---|---|---|---|---|---|');
    for (const n of STEPS) {
      const of = runs.filter((r) => r.symbols === n);
      const m = (f: (r: Run) => number | null): number => median(of.map((r) => f(r) ?? NaN));
      const perTick = median(of.map((r) => ((r.bridgeCpu ?? NaN) / 100 / r.bus) * 1e6));
      console.log(
        `| ${n} | ${fmt(of[0]!.offered)} | ${fmt(m((r) => r.bus))} | ${fmt(m((r) => r.received))} | ${fmt(m((r) => r.received / r.offered) * 100)} % | ${fmt(m((r) => r.received / r.bus) * 100)} % | ${fmt(m((r) => r.p50), 1)} | ${fmt(m((r) => r.p99), 1)} | ${fmt(m((r) => r.bridgeCpu))} | ${fmt(m((r) => r.gatewayCpu))} | ${fmt(m((r) => r.clientCpu))} | ${fmt(m((r) => r.hostBusy))} | ${fmt(perTick, 1)} | ${fmt(m((r) => (1000 * r.symbols) / r.bus), 1)} |`,
      );
    }
    console.log('');
    if (ROUNDS > 1) {
      console.log('Spread over rounds (min–max): received ticks/s; p99 ms; bridge CPU %');
      for (const n of STEPS) {
        const of = runs.filter((r) => r.symbols === n);
        console.log(`- ${n} symbols: ${range(of.map((r) => r.received), 0)}; ${range(of.map((r) => r.p99))}; ${range(of.map((r) => r.bridgeCpu ?? NaN), 0)}`);
      }
      console.log('');
    }
  }

  if (ONLY === undefined || ONLY === 'latency') {
    const bridge: Run[] = [];
    const native: Run[] = [];
    for (let round = 1; round <= ROUNDS; round++) {
      process.stderr.write(`bench: latency, round ${round} of ${ROUNDS}: bridge …\n`);
      bridge.push(await bridgeRun(LAT_SYMBOLS, 1000 / LAT_RATE));
      process.stderr.write(`bench: latency, round ${round} of ${ROUNDS}: native …\n`);
      native.push(await nativeRun(LAT_SYMBOLS, LAT_RATE));
    }
    console.log(`## Added latency: ${LAT_SYMBOLS} symbols × ${LAT_RATE} ticks/s, Quote mode, bridge and native alternated, ${ROUNDS} rounds\n`);
    console.log('| feed | offered ticks/s | received ticks/s | p50 ms (median) | p50 range | p99 ms (median) | p99 range | max ms (median) | feed-side CPU % | gateway CPU % |');
    console.log('|---|---|---|---|---|---|---|---|---|---|');
    const line = (label: string, of: Run[]): void =>
      console.log(
        `| ${label} | ${fmt(of[0]!.offered)} | ${fmt(median(of.map((r) => r.received)))} | ${fmt(median(of.map((r) => r.p50)), 2)} | ${range(of.map((r) => r.p50), 2)} | ${fmt(median(of.map((r) => r.p99)), 2)} | ${range(of.map((r) => r.p99), 2)} | ${fmt(median(of.map((r) => r.max)), 1)} | ${of[0]!.bridgeCpu === null ? '(in the gateway)' : fmt(median(of.map((r) => r.bridgeCpu ?? NaN)))} | ${fmt(median(of.map((r) => r.gatewayCpu)))} |`,
      );
    line('bridge (fake dhan adapter → openalgo_bridge.py → bus)', bridge);
    line('native (in-process simulator)', native);
    const d50 = median(bridge.map((r) => r.p50)) - median(native.map((r) => r.p50));
    const d99 = median(bridge.map((r) => r.p99)) - median(native.map((r) => r.p99));
    console.log(`| **bridge − native** | | | **${fmt(d50, 2)}** | | **${fmt(d99, 2)}** | | | | |\n`);
    console.log('Per round (bridge p50/p99 | native p50/p99, ms):');
    for (let i = 0; i < ROUNDS; i++) console.log(`- ${i + 1}: ${fmt(bridge[i]!.p50, 2)}/${fmt(bridge[i]!.p99, 2)} | ${fmt(native[i]!.p50, 2)}/${fmt(native[i]!.p99, 2)}`);
    console.log('');
  }

  if (ONLY === undefined || ONLY === 'cost') {
    const cost = adapterCost();
    console.log('## The fake adapter\'s Python per Quote tick (plain python3, best of 5 × 200,000)\n');
    console.log(`- building the tick dict (fake_streaming._tick): ${fmt(cost.build, 2)} µs`);
    console.log(`- json.dumps + encode (the bridge's publisher): ${fmt(cost.dumps, 2)} µs (${cost.bytes} bytes)`);
    console.log('Compare with the bridge CPU µs/tick above; the rest is the ZeroMQ send, the publisher\'s bookkeeping and the tick loop.\n');
  }
}

try {
  await main();
} finally {
  await cleanup();
}
