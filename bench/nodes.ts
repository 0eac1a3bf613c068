/**
 * Scale-out benchmark: one scenario's load (the seed by default) against tickcast as
 *   - one gateway on ZeroMQ (the simulator in its process),
 *   - one gateway node on NATS (a nats-server and an adapter process between simulator and node),
 *   - two gateway nodes on NATS (the clients split between them),
 * `--rounds` times in turn, each measured by the same harness as `npm run bench`
 * (bench/measure.ts), with the medians and two ratios: the NATS hop (1 NATS node ÷ ZeroMQ) and
 * the second node (2 nodes ÷ 1 node). Server CPU is every process of the server side. Loss is
 * judged by comparing clients (the harness's `--no-seq` method) in every setup: `seq` numbers
 * are counted per gateway node, so clients of two nodes number the same tick differently.
 *
 *   npm run bench:nodes -- [--scenario seed] [--rounds 3] [--clients N] [--rate R] [--duration S] [--json FILE]
 */
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { ensureBuilt } from './build.js';
import { installCleanupHandlers, runMain } from './cleanup.js';
import { type Measurement, measure } from './measure.js';
import { SCENARIOS } from './scenarios.js';
import { buildWorkload } from './workload.js';

interface Setup {
  key: 'zeromq' | 'nats1' | 'nats2';
  label: string;
  natsNodes: number | undefined;
}

const SETUPS: Setup[] = [
  { key: 'zeromq', label: 'ZeroMQ, 1 gateway', natsNodes: undefined },
  { key: 'nats1', label: 'NATS, 1 node', natsNodes: 1 },
  { key: 'nats2', label: 'NATS, 2 nodes', natsNodes: 2 },
];

interface Figures {
  deliveriesPerS: number;
  p50Ms: number | null;
  p99Ms: number | null;
  lost: number;
  serverCpuPct: number;
  cpuUsPerDelivery: number | null;
  hostBusyPct: number;
}

function figures(m: Measurement): Figures {
  const q = (p: number): number | null => (m.fastLatency.count === 0 ? null : m.fastLatency.quantileUs(p)! / 1000);
  return {
    deliveriesPerS: m.deliveriesPerS,
    p50Ms: q(0.5),
    p99Ms: q(0.99),
    lost: m.lost,
    serverCpuPct: m.stats.serverCpuPct,
    cpuUsPerDelivery: m.cpuUsPerDelivery,
    hostBusyPct: m.stats.hostBusyPct,
  };
}

function median(values: Array<number | null>): number | null {
  const present = values.filter((v): v is number => v !== null).sort((a, b) => a - b);
  if (present.length === 0) return null;
  const mid = present.length >> 1;
  return present.length % 2 ? present[mid]! : (present[mid - 1]! + present[mid]!) / 2;
}

function medians(runs: Figures[]): Record<keyof Figures, number | null> {
  const keys = Object.keys(runs[0]!) as Array<keyof Figures>;
  return Object.fromEntries(keys.map((k) => [k, median(runs.map((r) => r[k]))])) as Record<keyof Figures, number | null>;
}

const fixed = (v: number | null, digits: number): string => (v === null ? '–' : v.toFixed(digits));
const ratio = (a: number | null, b: number | null): string => (a === null || b === null || b === 0 ? '–' : (a / b).toFixed(2));

async function main(): Promise<number> {
  const { values } = parseArgs({
    args: process.argv.slice(2),
    options: {
      scenario: { type: 'string', default: 'seed' },
      rounds: { type: 'string', default: '3' },
      clients: { type: 'string' },
      rate: { type: 'string' },
      duration: { type: 'string' },
      workers: { type: 'string', default: '2' },
      seed: { type: 'string', default: '1' },
      json: { type: 'string' },
      'no-build': { type: 'boolean' },
    },
  });
  const base = SCENARIOS[values.scenario!];
  if (!base || base.steps) throw new Error(`--scenario must be one of ${Object.keys(SCENARIOS).filter((k) => !SCENARIOS[k]!.steps).join(', ')}`);
  const scenario = {
    ...base,
    clients: values.clients ? Number(values.clients) : base.clients,
    rate: values.rate ? Number(values.rate) : base.rate,
    durationS: values.duration ? Number(values.duration) : base.durationS,
  };
  const rounds = Number(values.rounds);
  const seed = Number(values.seed);
  installCleanupHandlers();
  ensureBuilt(!values['no-build']);
  const workload = buildWorkload({
    clients: scenario.clients,
    symbolsPerClient: scenario.symbolsPerClient,
    universe: scenario.universe,
    modes: scenario.modes,
    totalRate: scenario.rate,
    slowFraction: scenario.slowFraction,
    seed,
  });
  const runs = new Map<Setup['key'], Figures[]>(SETUPS.map((s) => [s.key, []]));
  for (let round = 1; round <= rounds; round++) {
    for (const setup of SETUPS) {
      process.stderr.write(`bench: ${setup.label}, round ${round} of ${rounds} …\n`);
      const m = await measure('tickcast', workload, {
        workers: Number(values.workers),
        warmupS: scenario.warmupS,
        durationS: scenario.durationS,
        seed,
        maxBufferedBytes: scenario.maxBufferedBytes,
        seq: false,
        gatewayWorkers: 1,
        ...(setup.natsNodes ? { natsNodes: setup.natsNodes } : {}),
      });
      const f = figures(m);
      process.stderr.write(`bench: ${Math.round(f.deliveriesPerS)} deliveries/s, p99 ${fixed(f.p99Ms, 2)} ms, lost ${f.lost}, server CPU ${f.serverCpuPct.toFixed(0)} %\n`);
      runs.get(setup.key)!.push(f);
    }
  }
  const med = new Map(SETUPS.map((s) => [s.key, medians(runs.get(s.key)!)]));
  const lines = [
    `${scenario.name}: ${scenario.clients} clients, ${scenario.rate} ticks/s in (${Math.round(workload.nominalDeliveriesPerS)} deliveries/s offered), ` +
      `${scenario.durationS} s window, median of ${rounds} round${rounds === 1 ? '' : 's'}`,
    '',
    '| setup | deliveries/s | p50 ms | p99 ms | lost | server CPU % | CPU µs/delivery | host busy % |',
    '|---|---|---|---|---|---|---|---|',
    ...SETUPS.map((s) => {
      const m = med.get(s.key)!;
      return `| ${s.label} | ${fixed(m.deliveriesPerS, 0)} | ${fixed(m.p50Ms, 2)} | ${fixed(m.p99Ms, 2)} | ${fixed(m.lost, 0)} | ${fixed(m.serverCpuPct, 0)} | ${fixed(m.cpuUsPerDelivery, 2)} | ${fixed(m.hostBusyPct, 0)} |`;
    }),
  ];
  const z = med.get('zeromq')!;
  const n1 = med.get('nats1')!;
  const n2 = med.get('nats2')!;
  lines.push(
    `| NATS hop (1 node ÷ ZeroMQ) | ${ratio(n1.deliveriesPerS, z.deliveriesPerS)} | ${ratio(n1.p50Ms, z.p50Ms)} | ${ratio(n1.p99Ms, z.p99Ms)} | | ${ratio(n1.serverCpuPct, z.serverCpuPct)} | ${ratio(n1.cpuUsPerDelivery, z.cpuUsPerDelivery)} | |`,
    `| second node (2 nodes ÷ 1 node) | ${ratio(n2.deliveriesPerS, n1.deliveriesPerS)} | ${ratio(n2.p50Ms, n1.p50Ms)} | ${ratio(n2.p99Ms, n1.p99Ms)} | | ${ratio(n2.serverCpuPct, n1.serverCpuPct)} | ${ratio(n2.cpuUsPerDelivery, n1.cpuUsPerDelivery)} | |`,
  );
  process.stdout.write(lines.join('\n') + '\n');
  if (values.json) {
    writeFileSync(values.json, JSON.stringify({ scenario: scenario.name, clients: scenario.clients, rate: scenario.rate, rounds, runs: Object.fromEntries(runs), medians: Object.fromEntries(med) }, null, 2) + '\n');
  }
  return 0;
}

runMain('bench', main);
