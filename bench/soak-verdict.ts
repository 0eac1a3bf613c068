/**
 * The soak's judgement, from the gateway's `/api/status` samples, and its printed form (pure, no
 * I/O). The first part of the run is warm-up (JIT, pools, buffers and caches reach their working
 * size) and is ignored. After it, memory must stay flat: the RSS floor (the lowest sample) of the
 * last fifth of the run is compared with the floor of the first fifth after warm-up. Floors,
 * because under load RSS moves in a sawtooth with garbage collection (±30 % over ~30 s at the seed
 * load): a window's median depends on where in the tooth it starts, while the floor is what
 * survives collection, which is what a leak raises.
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
  /** Running totals: ticks off the bus, and market-data messages handed to clients. */
  ticksIn: number;
  ticksOut: number;
}

export interface VerdictOptions {
  /** The run's length in seconds; warm-up is `warmupFraction` of it. */
  durationS: number;
  /** Default 0.2: the first 20 % of the run. */
  warmupFraction?: number;
  /** RSS growth after warm-up above this (%) is a leak. Default 5. */
  limitPct?: number;
  /** Share of the run each floor is taken over (default 0.2), at least one sample. */
  spanFraction?: number;
}

export interface Growth {
  from: number;
  to: number;
  pct: number;
}

export interface SoakVerdict {
  warmupS: number;
  /** Samples after warm-up, and how many each floor was taken over. */
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

function growth(first: readonly SoakSample[], last: readonly SoakSample[], pick: (s: SoakSample) => number): Growth {
  const from = Math.min(...first.map(pick));
  const to = Math.min(...last.map(pick));
  return { from, to, pct: from > 0 ? ((to - from) / from) * 100 : 0 };
}

export function soakVerdict(samples: readonly SoakSample[], options: VerdictOptions): SoakVerdict {
  const warmupS = options.durationS * (options.warmupFraction ?? 0.2);
  const limitPct = options.limitPct ?? 5;
  const judged = samples.filter((s) => s.t >= warmupS).sort((a, b) => a.t - b.t);
  if (judged.length < 2) {
    throw new VerdictError(`${judged.length} sample(s) after the ${warmupS.toFixed(0)} s warm-up: a verdict needs at least 2 (sample more often or run longer)`);
  }
  // Each floor spans a fifth of the whole run's samples, and the two never overlap.
  const perRun = samples.length * (options.spanFraction ?? 0.2);
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

/** One row per sample; the rates are over the time since the previous sample. */
export function sampleTable(samples: readonly SoakSample[]): string {
  const rows = samples.map((s, i) => {
    const previous = samples[i - 1];
    const rate = (pick: (x: SoakSample) => number): string =>
      previous && s.t > previous.t ? Math.round((pick(s) - pick(previous)) / (s.t - previous.t)).toLocaleString('en-US') : '–';
    return (
      `| ${s.t.toFixed(0)} | ${s.connections} | ${s.subscriptions} | ${rate((x) => x.ticksIn)} | ${rate((x) => x.ticksOut)} | ` +
      `${s.rssMb.toFixed(1)} | ${s.heapMb.toFixed(1)} | ${s.lagP99Ms.toFixed(1)} | ${s.handles} |`
    );
  });
  return [
    '| t (s) | clients | subscriptions | ticks in/s | out/s | RSS MiB | heap MiB | lag p99 ms | handles |',
    '|---|---|---|---|---|---|---|---|---|',
    ...rows,
  ].join('\n');
}

export function verdictText(verdict: SoakVerdict): string {
  const g = (label: string, x: { from: number; to: number; pct: number }, unit: string): string =>
    `${label} ${x.from.toFixed(1)} → ${x.to.toFixed(1)}${unit} (${x.pct >= 0 ? '+' : ''}${x.pct.toFixed(1)} %)`;
  return [
    `after the ${verdict.warmupS.toFixed(0)} s warm-up, floors (lowest values) of the first and last ${verdict.span} of ${verdict.samplesJudged} samples:`,
    `  ${g('RSS', verdict.rss, ' MiB')}, ${g('heap', verdict.heap, ' MiB')}, ${g('handles', verdict.handles, '')}`,
    verdict.leak
      ? `verdict: LEAK — RSS grew ${verdict.rss.pct.toFixed(1)} % after warm-up (limit ${verdict.limitPct} %)`
      : `verdict: no leak — RSS grew ${verdict.rss.pct.toFixed(1)} % after warm-up (limit ${verdict.limitPct} %)`,
  ].join('\n');
}
