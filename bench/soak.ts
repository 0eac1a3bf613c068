/**
 * Soak: the real gateway (`node bin/tickcast start`, its simulator as the feed) under the seed
 * load for a long run with client churn — clients continuously unsubscribe and disconnect, or
 * just drop, and new ones connect and subscribe in their places — while the gateway's
 * `/api/status` is sampled: RSS, heap, event-loop lag, open handles, ticks in and out. It prints
 * the samples and a verdict: RSS growth after warm-up (the first 20 % of the run) of at most 5 %
 * is no leak; more exits with code 1 (how growth is measured: soak-verdict.ts). The gateway and the load-generator workers are bench/servers.ts and
 * bench/load-client.ts, as in `npm run bench`.
 *
 *   npm run soak -- [--minutes M] [--clients N] [--rate TICKS_PER_S] [--churn PER_S] [--json FILE]
 */
import type { ChildProcess } from 'node:child_process';
import { cpus } from 'node:os';
import { writeFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { ensureBuilt } from './build.js';
import { installCleanupHandlers, runMain } from './cleanup.js';
import { forkWorker, request, send, setUpClients } from './measure.js';
import { WindowSampler, type WindowStats } from './proc-stats.js';
import { SCENARIOS } from './scenarios.js';
import { type ServerUnderTest, startTickcast } from './servers.js';
import { type SoakSample, VerdictError, sampleTable, soakVerdict, verdictText } from './soak-verdict.js';
import { buildWorkload, symbolList } from './workload.js';

const USAGE = `usage: npm run soak -- [options]

Runs the seed load (${SCENARIOS.seed!.summary}) against the gateway with client churn,
samples its /api/status, and judges memory growth after warm-up (exit 1 on a leak).

options:
  --minutes M        length of the run after the clients are up (default 10; fractions allowed)
  --clients N        clients connected at any time (default 1000)
  --rate R           ticks per second into the gateway (default 2000)
  --churn C          clients replaced per second (default 10): half unsubscribe then disconnect,
                     half drop the connection; each is replaced by a new connection that
                     authenticates and subscribes to the same symbols
  --every S          seconds between samples of /api/status (default 5)
  --json FILE        also write the samples and the verdict as JSON
  --workers K        load-generator processes (default 2)
  --seed N           seed of the client plan and of the simulated market (default 1)
  --no-build         do not rebuild dist/ when it is older than src/
`;

interface SoakOptions {
  minutes: number;
  clients: number;
  rate: number;
  churn: number;
  everyS: number;
  jsonFile: string | undefined;
  workers: number;
  seed: number;
  build: boolean;
}

class UsageError extends Error {}

function parseSoakOptions(argv: string[]): SoakOptions {
  const { values } = parseArgs({
    args: argv,
    options: {
      minutes: { type: 'string' },
      clients: { type: 'string' },
      rate: { type: 'string' },
      churn: { type: 'string' },
      every: { type: 'string' },
      json: { type: 'string' },
      workers: { type: 'string' },
      seed: { type: 'string' },
      'no-build': { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) throw new UsageError('');
  const num = (name: string, text: string | undefined, fallback: number, min: number, integer: boolean): number => {
    if (text === undefined) return fallback;
    const value = Number(text);
    if (!Number.isFinite(value) || value < min || (integer && !Number.isInteger(value))) {
      throw new UsageError(`--${name} must be ${integer ? 'an integer' : 'a number'} ≥ ${min}, got "${text}"`);
    }
    return value;
  };
  const options = {
    minutes: num('minutes', values.minutes, 10, 0.05, false),
    clients: num('clients', values.clients, SCENARIOS.seed!.clients, 1, true),
    rate: num('rate', values.rate, SCENARIOS.seed!.rate, 0.001, false),
    churn: num('churn', values.churn, 10, 0, false),
    everyS: num('every', values.every, 5, 0.5, false),
    jsonFile: values.json,
    workers: num('workers', values.workers, 2, 1, true),
    seed: num('seed', values.seed, 1, 0, true),
    build: !values['no-build'],
  };
  if (options.everyS * 3 > options.minutes * 60) throw new UsageError(`--every ${options.everyS} leaves fewer than 3 samples in ${options.minutes} min`);
  return options;
}

interface Status {
  connections: number;
  subscriptions: number;
  rss_mb: number;
  heap_used_mb: number;
  event_loop_lag_ms: { p50: number; p99: number; max: number };
  open_handles: number;
  bus: { ticks: number };
  ticks_out_by_feed: Record<string, number>;
}

async function readStatus(url: string): Promise<Status> {
  const response = await fetch(`${url.replace(/^ws/, 'http')}/api/status`, { signal: AbortSignal.timeout(10_000) });
  if (!response.ok) throw new Error(`/api/status answered HTTP ${response.status}`);
  return (await response.json()) as Status;
}

function toSample(t: number, status: Status): SoakSample {
  return {
    t: Math.round(t * 10) / 10,
    connections: status.connections,
    subscriptions: status.subscriptions,
    rssMb: status.rss_mb,
    heapMb: status.heap_used_mb,
    lagP99Ms: status.event_loop_lag_ms.p99,
    handles: status.open_handles,
    ticksIn: status.bus.ticks,
    ticksOut: Object.values(status.ticks_out_by_feed).reduce((a, b) => a + b, 0),
  };
}

const progress = (line: string): void => void process.stderr.write(`soak: ${line}\n`);

async function soak(options: SoakOptions): Promise<number> {
  const seed = SCENARIOS.seed!;
  const workload = buildWorkload({
    clients: options.clients,
    symbolsPerClient: seed.symbolsPerClient,
    universe: seed.universe,
    modes: seed.modes,
    totalRate: options.rate,
    slowFraction: 0,
    seed: options.seed,
  });
  const durationS = options.minutes * 60;
  progress(`${options.clients} clients × ${seed.symbolsPerClient} of ${workload.streams.length} symbols, ${options.rate} ticks/s, churn ${options.churn}/s, ${options.minutes} min`);
  const server: ServerUnderTest = await startTickcast({
    symbols: symbolList(workload.streams),
    ratePerStream: workload.ratePerStream,
    seed: options.seed,
    maxBufferedBytes: undefined,
  });
  const workers: ChildProcess[] = [];
  let churnTimer: NodeJS.Timeout | undefined;
  try {
    const k = Math.max(1, Math.min(options.workers, workload.clients.length));
    for (let w = 0; w < k; w++) workers.push(forkWorker());
    await Promise.all(workers.map((worker) => request(worker, null, 'hello', 20_000)));
    const setup = await setUpClients(workers, workload, server, { seq: false });
    if (setup.connected === 0) throw new Error(`no client could connect and subscribe: ${setup.errors.join('; ')}`);
    progress(`${setup.connected} clients up${setup.failed > 0 ? `, ${setup.failed} failed (${setup.errors.join('; ')})` : ''}`);

    // Churn in quarter-second steps, spread over the workers; fractions carry over.
    let owed = 0;
    let turn = 0;
    churnTimer = setInterval(() => {
      owed += options.churn / 4;
      const count = Math.floor(owed);
      owed -= count;
      for (let i = 0; i < count; i++) send(workers[turn++ % workers.length]!, { type: 'churn', count: 1 });
    }, 250);

    const sampler = new WindowSampler(server.pid, workers.map((w) => w.pid!), 1000);
    const samples: SoakSample[] = [];
    const started = performance.now();
    sampler.start();
    for (let next = 0; next <= durationS + 1e-9; next += options.everyS) {
      await sleep(Math.max(0, started + next * 1000 - performance.now()));
      const sample = toSample((performance.now() - started) / 1000, await readStatus(server.url));
      samples.push(sample);
      progress(`t=${sample.t.toFixed(0)} s clients ${sample.connections} RSS ${sample.rssMb} MiB heap ${sample.heapMb} MiB lag p99 ${sample.lagP99Ms} ms handles ${sample.handles}`);
    }
    clearInterval(churnTimer);
    const load: WindowStats = sampler.stop();
    const reports = await Promise.all(workers.map((worker) => request(worker, { type: 'report' }, 'report', 15_000)));
    const churn = {
      left: reports.reduce((n, r) => n + r.churned, 0),
      rejoined: reports.reduce((n, r) => n + r.rejoined, 0),
      rejoinFailed: reports.reduce((n, r) => n + r.rejoinFailed, 0),
      errors: [...new Set(reports.flatMap((r) => r.rejoinErrors))].slice(0, 5),
      disconnected: reports.reduce((n, r) => n + r.closed, 0),
      disconnectReasons: [...new Set(reports.flatMap((r) => r.closeReasons))].slice(0, 5),
    };
    const verdict = soakVerdict(samples, { durationS });

    const machine = `${cpus().length} cores, Node ${process.versions.node}`;
    const loadLine =
      `load over the run: gateway ${load.serverCpuPct.toFixed(0)} % of a core, load generator ${load.loadCpuPct.toFixed(0)} %, ` +
      `whole machine ${load.hostBusyPct.toFixed(0)} % busy (${machine}, everything on the same cores)`;
    const churnLine =
      `churn: ${churn.left} clients left, ${churn.rejoined} replacements set up, ${churn.rejoinFailed} failed` +
      `${churn.errors.length > 0 ? ` (${churn.errors.join('; ')})` : ''}; ${churn.disconnected} set-up clients closed by the gateway` +
      `${churn.disconnectReasons.length > 0 ? ` (${churn.disconnectReasons.join('; ')})` : ''}`;
    const warnings = server.warnings().slice(0, 10);
    process.stdout.write(
      `${sampleTable(samples)}\n\n${churnLine}\n${loadLine}\n${warnings.length > 0 ? `gateway warnings:\n  ${warnings.join('\n  ')}\n` : ''}${verdictText(verdict)}\n`,
    );
    if (options.jsonFile) {
      const json = { options: { ...options, jsonFile: undefined }, machine, setup, samples, churn, load, warnings, verdict };
      writeFileSync(options.jsonFile, JSON.stringify(json, null, 2) + '\n');
      progress(`wrote ${options.jsonFile}`);
    }
    return verdict.leak ? 1 : 0;
  } finally {
    clearInterval(churnTimer);
    for (const worker of workers) worker.kill('SIGKILL');
    await server.stop();
  }
}

async function main(): Promise<number> {
  let options: SoakOptions;
  try {
    options = parseSoakOptions(process.argv.slice(2));
  } catch (error) {
    if (error instanceof UsageError || (error as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      if ((error as Error).message) process.stderr.write(`soak: ${(error as Error).message}\n\n`);
      process.stderr.write(USAGE);
      return (error as Error).message ? 2 : 0;
    }
    throw error;
  }
  installCleanupHandlers();
  ensureBuilt(options.build);
  try {
    return await soak(options);
  } catch (error) {
    if (error instanceof VerdictError) {
      process.stderr.write(`soak: no verdict: ${error.message}\n`);
      return 1;
    }
    throw error;
  }
}

runMain('soak', main);
