/**
 * The soak's judgement, from the gateway's `/api/status` samples, and its printed form (pure, no
 * I/O). The first part
 * of the run is warm-up (JIT, pools, buffers and caches reach their working size) and is ignored.
 * After it, memory must stay flat: the median RSS of the last tenth of the run is compared with
 * the median of the first tenth after warm-up. Medians of several samples, because RSS moves in a
 * sawtooth with garbage collection.
 */

/** One reading of `/api/status`. */
export interface SoakSample {
  /** Seconds since the client population was up. */
  t: number;
  connections: number;
  subscriptions: number;
  rssMb: number;
  heapMb: number;
  lagP99Ms: number;
  handles: number;
}

export interface VerdictOptions {
  /** The run's length in seconds; warm-up is `warmupFraction` of it. */
  durationS: number;
  /** Default 0.2: the first 20 % of the run. */
  warmupFraction?: number;
  /** RSS growth after warm-up above this (%) is a leak. Default 5. */
  limitPct?: number;
  /** Share of the run each median is taken over (default 0.1), at least one sample. */
  spanFraction?: number;
}

export interface Growth {
  from: number;
  to: number;
  pct: number;
}

export interface SoakVerdict {
  warmupS: number;
  /** Samples after warm-up, and how many each median was taken over. */
  samplesJudged: number;
  span: number;
  rss: Growth;
  /** Reported beside RSS; the verdict is RSS's alone. */
  heap: Growth;
  handles: Growth;
  limitPct: number;
  leak: boolean;
}

export class VerdictError extends Error {}

export function median(values: readonly number[]): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

function growth(first: readonly SoakSample[], last: readonly SoakSample[], pick: (s: SoakSample) => number): Growth {
  const from = median(first.map(pick));
  const to = median(last.map(pick));
  return { from, to, pct: from > 0 ? ((to - from) / from) * 100 : 0 };
}

export function soakVerdict(samples: readonly SoakSample[], options: VerdictOptions): SoakVerdict {
  const warmupS = options.durationS * (options.warmupFraction ?? 0.2);
  const limitPct = options.limitPct ?? 5;
  const judged = samples.filter((s) => s.t >= warmupS).sort((a, b) => a.t - b.t);
  if (judged.length < 2) {
    throw new VerdictError(`${judged.length} sample(s) after the ${warmupS.toFixed(0)} s warm-up: a verdict needs at least 2 (sample more often or run longer)`);
  }
  // Each median spans a tenth of the whole run's samples, and the two never overlap.
  const perRun = samples.length * (options.spanFraction ?? 0.1);
  const span = Math.max(1, Math.min(Math.round(perRun), Math.floor(judged.length / 2)));
  const first = judged.slice(0, span);
  const last = judged.slice(-span);
  const rss = growth(first, last, (s) => s.rssMb);
  return {
    warmupS,
    samplesJudged: judged.length,
    span,
    rss,
    heap: growth(first, last, (s) => s.heapMb),
    handles: growth(first, last, (s) => s.handles),
    limitPct,
    leak: rss.pct > limitPct,
  };
}

export function sampleTable(samples: readonly SoakSample[]): string {
  const rows = samples.map((s) => `| ${s.t.toFixed(0)} | ${s.connections} | ${s.subscriptions} | ${s.rssMb.toFixed(1)} | ${s.heapMb.toFixed(1)} | ${s.lagP99Ms.toFixed(1)} | ${s.handles} |`);
  return ['| t (s) | clients | subscriptions | RSS MiB | heap MiB | lag p99 ms | handles |', '|---|---|---|---|---|---|---|', ...rows].join('\n');
}

export function verdictText(verdict: SoakVerdict): string {
  const g = (label: string, x: { from: number; to: number; pct: number }, unit: string): string =>
    `${label} ${x.from.toFixed(1)} → ${x.to.toFixed(1)}${unit} (${x.pct >= 0 ? '+' : ''}${x.pct.toFixed(1)} %)`;
  return [
    `after the ${verdict.warmupS.toFixed(0)} s warm-up, medians of the first and last ${verdict.span} of ${verdict.samplesJudged} samples:`,
    `  ${g('RSS', verdict.rss, ' MiB')}, ${g('heap', verdict.heap, ' MiB')}, ${g('handles', verdict.handles, '')}`,
    verdict.leak
      ? `verdict: LEAK — RSS grew ${verdict.rss.pct.toFixed(1)} % after warm-up (limit ${verdict.limitPct} %)`
      : `verdict: no leak — RSS grew ${verdict.rss.pct.toFixed(1)} % after warm-up (limit ${verdict.limitPct} %)`,
  ].join('\n');
}
