/**
 * Feed throughput: one gateway and a simulator adapter (both in this process, the adapter on the
 * far side of the bus) at a given rate per symbol, one client (in a separate process, so the
 * client's CPU is not the gateway's) subscribed to every simulator symbol in Depth mode. Reports ticks/s the gateway took off the bus, ticks/s the client
 * received, the client's publish-to-receive latency (p50/p99, from the tick's `timestamp`), and
 * the gateway process's CPU.
 *
 * `--bus nats` puts a NATS hop in the middle instead of ZeroMQ: a nats-server (its own process)
 * between the simulator, served by an adapter host in this process, and a gateway node in this
 * process. `--bus both` alternates ZeroMQ and NATS runs `--rounds` times and reports each one's
 * medians and NATS ÷ ZeroMQ.
 *
 *   npm run bench:feed -- [--rate 300] [--seconds 5] [--no-bus-batch] [--bus zeromq|nats|both] [--rounds 3]
 */
import { fork } from 'node:child_process';
import { startAdapter } from '../src/roles/adapter.js';
import { startNatsAdapter } from '../src/roles/nats-adapter.js';
import { DEFAULT_INSTRUMENTS } from '../src/adapters/simulator/instruments.js';
import { systemClock } from '../src/clock.js';
import { silentLogger } from '../src/observability/logger.js';
import { startTestInstance } from '../test/helpers/instance.js';
import { startNatsServer } from '../test/helpers/nats-server.js';
import { cpuSeconds } from './proc-stats.js';

const arg = (name: string, fallback: number): number => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : fallback;
};
const word = (name: string, fallback: string): string => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? String(process.argv[i + 1]) : fallback;
};

type Bus = 'zeromq' | 'nats';

interface Result {
  bus: Bus;
  offered: number;
  busTicks: number;
  clientTicks: number;
  p50: number;
  p99: number;
  /** This process: the gateway and the simulator (both buses), and for NATS the adapter host. */
  gatewayCpu: number;
  /** nats-server's own CPU, % of one core (NATS runs only). */
  natsCpu: number | null;
}

/** Starts the gateway (and for NATS the server and the adapter), measures one window, stops everything. */
async function runOnce(bus: Bus, rate: number, seconds: number, batch: boolean): Promise<Result> {
  const nats = bus === 'nats' ? await startNatsServer() : undefined;
  const instance = await startTestInstance({
    TICKCAST_SIM_RATE: String(rate),
    TICKCAST_BUS_BATCH: String(batch),
    // The simulator runs as an adapter (in this process) on the other side of the bus: a
    // gateway's own simulator would hand its ticks over in-process, with no bus to measure.
    TICKCAST_FEED: 'none',
    ...(nats ? { TICKCAST_BUS: nats.url, TICKCAST_NODE: 'bench' } : {}),
  });
  const logger = silentLogger();
  const common = { config: instance.config, feedId: 'simulator', clock: systemClock, logger };
  const adapter = nats
    ? await startNatsAdapter({ ...common, nats: [nats.url] })
    : await startAdapter({ ...common, bus: instance.busEndpoint, control: instance.controlEndpoint });
  try {
    // The gateway learns of the adapter from its hello (announcements on NATS): subscribe only once it has.
    const deadline = Date.now() + 10_000;
    while (instance.gateway.feeds.adapter('simulator')?.status() !== 'live') {
      if (Date.now() > deadline) throw new Error('the gateway did not find the adapter');
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    const apiKey = await instance.createKey('bench');
    const child = fork(new URL(import.meta.url), ['--client', instance.url, apiKey, String(seconds)], { execArgv: process.execArgv });
    await new Promise((resolve) => setTimeout(resolve, 1500));
    const ticks0 = instance.gateway.busListener.counters.ticks;
    const cpu0 = process.cpuUsage();
    const natsPid = nats?.pid();
    const natsCpu0 = natsPid === undefined ? null : cpuSeconds(natsPid);
    const t0 = performance.now();
    const result = await new Promise<{ received: number; p50: number; p99: number }>((resolve) => child.once('message', resolve as never));
    const elapsed = (performance.now() - t0) / 1000;
    const cpu = process.cpuUsage(cpu0);
    const natsCpu1 = natsPid === undefined ? null : cpuSeconds(natsPid);
    child.kill();
    return {
      bus,
      offered: rate * DEFAULT_INSTRUMENTS.length,
      busTicks: (instance.gateway.busListener.counters.ticks - ticks0) / elapsed,
      clientTicks: result.received,
      p50: result.p50,
      p99: result.p99,
      gatewayCpu: ((cpu.user + cpu.system) / 1e6 / elapsed) * 100,
      natsCpu: natsCpu0 === null || natsCpu1 === null ? null : ((natsCpu1 - natsCpu0) / elapsed) * 100,
    };
  } finally {
    await adapter.stop();
    await instance.stop();
    await nats?.stop();
  }
}

const median = (values: number[]): number => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
};

function row(label: string, r: Omit<Result, 'bus'>): string {
  const natsCpu = r.natsCpu === null ? '–' : r.natsCpu.toFixed(0);
  return `| ${label} | ${r.offered} | ${r.busTicks.toFixed(0)} | ${r.clientTicks.toFixed(0)} | ${r.p50} | ${r.p99} | ${r.gatewayCpu.toFixed(0)} | ${natsCpu} |`;
}

function medianOf(results: Result[]): Omit<Result, 'bus'> {
  const natsCpus = results.map((r) => r.natsCpu).filter((v): v is number => v !== null);
  return {
    offered: results[0]!.offered,
    busTicks: median(results.map((r) => r.busTicks)),
    clientTicks: median(results.map((r) => r.clientTicks)),
    p50: median(results.map((r) => r.p50)),
    p99: median(results.map((r) => r.p99)),
    gatewayCpu: median(results.map((r) => r.gatewayCpu)),
    natsCpu: natsCpus.length ? median(natsCpus) : null,
  };
}

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
  const batch = !process.argv.includes('--no-bus-batch');
  const which = word('bus', 'zeromq');
  if (which !== 'zeromq' && which !== 'nats' && which !== 'both') throw new Error(`--bus must be zeromq, nats or both, got "${which}"`);
  const buses: Bus[] = which === 'both' ? ['zeromq', 'nats'] : [which];
  const rounds = arg('rounds', which === 'both' ? 3 : 1);
  const results: Result[] = [];
  for (let round = 1; round <= rounds; round++) {
    for (const bus of buses) {
      process.stderr.write(`bench: ${bus}, round ${round} of ${rounds} …\n`);
      results.push(await runOnce(bus, rate, seconds, batch));
    }
  }
  console.log(`bus batching ${batch ? 'on' : 'off'}; ${rounds === 1 ? 'one run' : `median of ${rounds} runs`} per bus\n`);
  console.log('| bus | offered ticks/s | bus ticks/s | client ticks/s | p50 ms | p99 ms | gateway process CPU % | nats-server CPU % |');
  console.log('|---|---|---|---|---|---|---|---|');
  const medians = new Map(buses.map((bus) => [bus, medianOf(results.filter((r) => r.bus === bus))]));
  for (const [bus, m] of medians) console.log(row(bus === 'zeromq' ? 'ZeroMQ' : 'NATS', m));
  const z = medians.get('zeromq');
  const n = medians.get('nats');
  if (z && n) {
    const ratio = (a: number, b: number): string => (b === 0 ? '–' : (a / b).toFixed(2));
    console.log(
      `| NATS ÷ ZeroMQ | | ${ratio(n.busTicks, z.busTicks)} | ${ratio(n.clientTicks, z.clientTicks)} | ${ratio(n.p50, z.p50)} | ${ratio(n.p99, z.p99)} | ${ratio(n.gatewayCpu, z.gatewayCpu)} | |`,
    );
  }
}
