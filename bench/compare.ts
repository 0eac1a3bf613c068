/**
 * One load against each server in turn, and the comparison of the two: the parts of a run
 * shared by every scenario (`max` repeats them at rising rates, see max.ts).
 */
import { type Measurement, type MeasureSettings, measure } from './measure.js';
import type { BenchOptions } from './options.js';
import { type ServerJson, notes, scenarioHeader, serverJson, sourceCheck, table, warnings } from './report.js';
import type { Scenario } from './scenarios.js';
import type { ServerKind } from './servers.js';
import { type Workload, buildWorkload } from './workload.js';

export interface RunResult {
  /** Markdown for stdout. */
  text: string;
  /** The --json object. */
  json: object;
}

export const progress = (text: string): void => {
  process.stderr.write(`bench: ${text}\n`);
};

export function workloadAt(options: BenchOptions, rate: number): Workload {
  const { scenario } = options;
  return buildWorkload({
    clients: scenario.clients,
    symbolsPerClient: scenario.symbolsPerClient,
    universe: scenario.universe,
    modes: scenario.modes,
    totalRate: rate,
    slowFraction: scenario.slowFraction,
    seed: options.seed,
  });
}

function settingsOf(options: BenchOptions): MeasureSettings {
  const { scenario } = options;
  return {
    workers: options.workers,
    warmupS: scenario.warmupS,
    durationS: scenario.durationS,
    seed: options.seed,
    maxBufferedBytes: scenario.maxBufferedBytes,
    seq: options.seq,
    gatewayWorkers: options.gatewayWorkers,
  };
}

export async function measureLogged(kind: ServerKind, workload: Workload, options: BenchOptions, rate: number): Promise<Measurement> {
  progress(`${kind}: ${workload.clients.length} clients, ${rate} ticks/s in …`);
  const m = await measure(kind, workload, settingsOf(options));
  const p99 = m.fastLatency.quantileUs(0.99);
  progress(
    `${kind}: ${Math.round(m.deliveriesPerS)} deliveries/s, p99 ${p99 === null ? 'n/a' : (p99 / 1000).toFixed(2)} ms, lost ${m.lost}, ` +
      `server CPU ${m.stats.serverCpuPct.toFixed(0)} %`,
  );
  return m;
}

/** tickcast ÷ baseline for the headline figures. */
export function ratios(t: ServerJson | null, b: ServerJson | null): Record<string, number | null> | null {
  if (!t || !b) return null;
  const r = (x: number | null | undefined, y: number | null | undefined): number | null =>
    x === null || x === undefined || y === null || y === undefined || y === 0 ? null : Number((x / y).toFixed(3));
  return {
    deliveries_per_s: r(t.deliveries_per_s, b.deliveries_per_s),
    latency_p50: r(t.latency_ms.p50, b.latency_ms.p50),
    latency_p99: r(t.latency_ms.p99, b.latency_ms.p99),
    cpu_us_per_delivery: r(t.cpu_us_per_delivery as number | null, b.cpu_us_per_delivery as number | null),
    gateway_cpu_pct: r(t.gateway_cpu_pct, b.gateway_cpu_pct),
    gateway_rss_mb: r(t.gateway_rss_mb, b.gateway_rss_mb),
  };
}

/** The JSON fields that describe the load. */
export function baseJson(scenario: Scenario, workload: Workload, options: BenchOptions) {
  return {
    scenario: scenario.name,
    clients: scenario.clients,
    duration_s: scenario.durationS,
    symbols: workload.streams.length,
    symbols_per_client: Math.min(scenario.symbolsPerClient, workload.streams.length),
    modes_ltp_quote_depth: scenario.modes,
    slow_fraction: scenario.slowFraction,
    max_buffered_bytes: scenario.maxBufferedBytes ?? null,
    warmup_s: scenario.warmupS,
    gateway_workers: options.gatewayWorkers,
  };
}

/** Every scenario but `max`: the same load against each server, compared. */
export async function runOnce(options: BenchOptions): Promise<RunResult> {
  const { scenario } = options;
  const workload = workloadAt(options, scenario.rate);
  const results: Partial<Record<ServerKind, Measurement>> = {};
  for (const kind of options.servers) results[kind] = await measureLogged(kind, workload, options, scenario.rate);
  const t = results.tickcast ? serverJson(results.tickcast) : null;
  const b = results.baseline ? serverJson(results.baseline) : null;
  const warned = warnings([results.tickcast, results.baseline]);
  const text = [
    scenarioHeader(scenario, workload),
    '',
    table(results.tickcast, results.baseline),
    '',
    ...warned.map((w) => `> ⚠ ${w}`),
    ...(warned.length ? [''] : []),
    ...notes([results.tickcast, results.baseline], scenario.slowFraction > 0).map((n) => `- ${n}`),
    ...[sourceCheck(results.baseline, workload)].filter((l) => l !== null).map((l) => `- ${l}`),
  ].join('\n');
  const json = {
    ...baseJson(scenario, workload, options),
    ticks_in_per_s: scenario.rate,
    rate_per_symbol: workload.ratePerStream,
    offered_deliveries_per_s: Math.round(workload.nominalDeliveriesPerS),
    tickcast: t,
    baseline: b,
    ratio: ratios(t, b),
    warnings: warned,
    notes: notes([results.tickcast, results.baseline], scenario.slowFraction > 0),
  };
  return { text, json };
}
