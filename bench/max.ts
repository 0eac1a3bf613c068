/**
 * The `max` scenario: the load at rising tick rates, each server until its first step that is not
 * sustained; reports each server's highest sustained deliveries/s.
 */
import type { Measurement } from './measure.js';
import { type RunResult, baseJson, measureLogged, ratios, workloadAt } from './compare.js';
import type { BenchOptions } from './options.js';
import { P99_LIMIT_MS, SEEN_LIMIT_PCT, notes, scenarioHeader, serverJson, stepsTable, sustained, table, warnings } from './report.js';
import type { ServerKind } from './servers.js';

/** The simulator's ceiling per symbol (TICKCAST_SIM_RATE ≤ 100000). */
const MAX_RATE_PER_SYMBOL = 100_000;

/** Raises the rate step by step; each server stops at its first unsustained step. */
export async function runMax(options: BenchOptions): Promise<RunResult> {
  const { scenario } = options;
  const { factor, maxSteps } = scenario.steps!;
  const steps: Array<{ rate: number; offered: number; results: Partial<Record<ServerKind, Measurement>> }> = [];
  const best: Partial<Record<ServerKind, { rate: number; m: Measurement }>> = {};
  const stillRising = new Set<ServerKind>(options.servers);
  let rate = scenario.rate;
  let workload = workloadAt(options, rate);
  for (let step = 0; step < maxSteps && stillRising.size > 0; step++) {
    workload = workloadAt(options, rate);
    if (workload.ratePerStream > MAX_RATE_PER_SYMBOL) break;
    const results: Partial<Record<ServerKind, Measurement>> = {};
    for (const kind of [...stillRising]) {
      const m = await measureLogged(kind, workload, options, rate);
      results[kind] = m;
      if (sustained(m)) best[kind] = { rate, m };
      else stillRising.delete(kind);
    }
    steps.push({ rate, offered: workload.nominalDeliveriesPerS, results });
    rate = Math.round(rate * factor);
  }

  const line = (kind: ServerKind): string => {
    if (!options.servers.includes(kind)) return '';
    const found = best[kind];
    if (!found) return `- ${kind}: not sustained even at the first step (${scenario.rate} ticks/s in); try a lower --rate`;
    const tail = stillRising.has(kind) ? ' — still sustained at the last step: the ceiling is higher (raise --rate)' : '';
    return `- ${kind}: highest sustained ${Math.round(found.m.deliveriesPerS).toLocaleString('en-US')} deliveries/s at ${found.rate.toLocaleString('en-US')} ticks/s in${tail}`;
  };
  const t = best.tickcast ? { ...serverJson(best.tickcast.m), ticks_in_per_s: best.tickcast.rate } : null;
  const b = best.baseline ? { ...serverJson(best.baseline.m), ticks_in_per_s: best.baseline.rate } : null;
  const all = steps.flatMap((s) => [s.results.tickcast, s.results.baseline]);
  const warned = warnings(all);
  const text = [
    scenarioHeader(scenario, workload, `ticks/s in from ${scenario.rate.toLocaleString('en-US')}, ×${factor} per step`),
    `Sustained = fast clients' p99 ≤ ${P99_LIMIT_MS} ms, no tick lost, ≥ ${SEEN_LIMIT_PCT} % of the source's ticks seen, no client failed or dropped.`,
    '',
    stepsTable(steps),
    '',
    line('tickcast'),
    line('baseline'),
    '',
    'Each server at its highest sustained step:',
    '',
    table(best.tickcast?.m, best.baseline?.m),
    '',
    ...warned.map((w) => `> ⚠ ${w}`),
    ...(warned.length ? [''] : []),
    ...notes(all, scenario.slowFraction > 0).map((n) => `- ${n}`),
  ]
    .filter((l, i, all) => l !== '' || all[i - 1] !== '')
    .join('\n');
  const json = {
    ...baseJson(scenario, workload, options),
    first_ticks_in_per_s: scenario.rate,
    step_factor: factor,
    p99_limit_ms: P99_LIMIT_MS,
    tickcast: t,
    baseline: b,
    ratio: ratios(t, b),
    steps: steps.map((s) => ({
      ticks_in_per_s: s.rate,
      offered_deliveries_per_s: Math.round(s.offered),
      tickcast: s.results.tickcast ? serverJson(s.results.tickcast) : null,
      baseline: s.results.baseline ? serverJson(s.results.baseline) : null,
    })),
    warnings: warned,
    notes: notes(all, scenario.slowFraction > 0),
  };
  return { text, json };
}
