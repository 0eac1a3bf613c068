/**
 * Turns measurements into the markdown table printed on stdout and the JSON object of `--json`
 * (the issue's shape, plus extra fields).
 */
import type { Histogram } from './histogram.js';
import { DRAIN_MAX_MS, type Measurement, SLOW_PAUSE_MS, SLOW_READ_BYTES, windowMs } from './measure.js';
import type { Scenario } from './scenarios.js';
import type { Workload } from './workload.js';

export interface ServerJson {
  deliveries_per_s: number;
  latency_ms: { p50: number | null; p90: number | null; p99: number | null; p999: number | null; max: number | null };
  lost: number;
  conflated: number | null;
  gateway_cpu_pct: number;
  gateway_rss_mb: number;
  [extra: string]: unknown;
}

/** What a server must report for a step of `max` to count as sustained. */
export const P99_LIMIT_MS = 50;
/** The window's ticks (see notes) as % of rate × window, below which a step is not sustained. */
export const SEEN_LIMIT_PCT = 97;

const round = (value: number | null, digits = 2): number | null => (value === null || !Number.isFinite(value) ? null : Number(value.toFixed(digits)));
const mb = (bytes: number): number => bytes / (1024 * 1024);

function latencyMs(histogram: Histogram): ServerJson['latency_ms'] {
  const q = (p: number): number | null => round(histogram.count === 0 ? null : histogram.quantileUs(p)! / 1000);
  return { p50: q(0.5), p90: q(0.9), p99: q(0.99), p999: q(0.999), max: round(histogram.count === 0 ? null : histogram.maxUs / 1000) };
}

/** Whether a measurement sustained its load: p99 within the limit, nothing lost, source intact. */
export function sustained(m: Measurement): boolean {
  const p99 = m.fastLatency.quantileUs(0.99);
  return p99 !== null && p99 / 1000 <= P99_LIMIT_MS && m.lost === 0 && m.seenPct >= SEEN_LIMIT_PCT && m.clientsFailed === 0 && m.disconnected === 0;
}

export function serverJson(m: Measurement): ServerJson {
  return {
    deliveries_per_s: Math.round(m.deliveriesPerS),
    latency_ms: latencyMs(m.fastLatency),
    lost: m.lost,
    lost_method: m.lostMethod,
    // From tickcast's /metrics over the window; the baseline does not conflate (it skips).
    conflated: m.conflated,
    gateway_cpu_pct: round(m.stats.serverCpuPct, 1)!,
    gateway_rss_mb: round(mb(m.stats.serverRssMeanBytes), 1)!,
    cpu_us_per_delivery: round(m.cpuUsPerDelivery, 3),
    gateway_rss_max_mb: round(mb(m.stats.serverRssMaxBytes), 1),
    gateway_rss_idle_mb: round(mb(m.rssIdleBytes), 1),
    memory_per_client_kb: round(m.memoryPerClientBytes === null ? null : m.memoryPerClientBytes / 1024, 1),
    source_ticks_seen_pct: round(m.seenPct, 1),
    deliveries: m.deliveries,
    window_s: m.windowS,
    drain_s: round(m.drainS, 1),
    clients_connected: m.clientsConnected,
    clients_failed: m.clientsFailed,
    clients_disconnected: m.disconnected,
    slow_clients:
      m.slowClients > 0
        ? { count: m.slowClients, age_of_ticks_read_ms: latencyMs(m.slowLatency), read_pct_of_stream_ticks: round(m.slowReceivedPct, 1) }
        : null,
    loadgen_cpu_pct: round(m.stats.loadCpuPct, 1),
    host_cpu_busy_pct: round(m.stats.hostBusyPct, 1),
    server_counted: m.serverCounted,
    sustained: sustained(m),
  };
}

/**
 * How each figure is computed, printed under the table: the loss notes for the methods used,
 * the slow-reader note only when there are some.
 */
export function notes(measurements: Array<Measurement | undefined>, withSlowClients: boolean): string[] {
  const methods = new Set(measurements.filter((m) => m !== undefined).map((m) => m.lostMethod));
  return [
    'latency: receive time − data.timestamp (stamped by the tick source at publish), fast clients only; timestamps are whole ms, so each value carries 0–1 ms of rounding.',
    ...(methods.has('seq')
      ? [
          'lost (by seq): for each fast client and subscribed stream, the window\'s ticks it did not receive, counted from per-stream sequence numbers (tickcast\'s `seq` extension; the baseline numbers its ticks the same way): exact, including ticks every client missed, except at the window\'s two edges.',
          'source ticks seen (by seq): the window\'s ticks per stream, from the sequence numbers, ÷ (rate × window): under 100 % the source itself published less than asked (the simulator runs on the server\'s event loop and falls behind when that is saturated).',
        ]
      : []),
    ...(methods.has('relative')
      ? [
          'lost (by comparison, no seq): for each fast client and subscribed stream, ticks stamped in the window that reached another subscriber but not this client (exact when at least one subscriber got every tick, a lower bound otherwise).',
          'source ticks seen (by comparison): Σ over streams of the most any client received ÷ (rate × window); well under 100 % means ticks were lost before any client (source, bus, or every subscriber).',
        ]
      : []),
    ...(withSlowClients
      ? [
          `slow clients read ${SLOW_READ_BYTES} bytes per ${SLOW_PAUSE_MS} ms; they are judged by the ticks they read during the window (how many, and how old), and excluded from the latency and loss rows.`,
        ]
      : []),
    'conflated: tickcast_conflated_total from the gateway\'s /metrics over the window (messages replaced by a newer tick of their stream while a client was congested); the baseline skips instead of conflating (see its skipped count).',
    'CPU: user+system time of the server process from /proc over the window; µs/delivery = that ÷ messages received. Memory per client: (mean RSS in the window − idle RSS) ÷ clients.',
  ];
}

/** One line saying what was run; `load` replaces the rate part (for `max`). */
export function scenarioHeader(scenario: Scenario, workload: Workload, load?: string): string {
  const [l, q, d] = scenario.modes;
  const seconds = windowMs(scenario.durationS, workload.ratePerStream) / 1000;
  const window = load || seconds === scenario.durationS ? `${scenario.durationS} s` : `${seconds} s (whole tick periods)`;
  const rate = load ?? `${fmt(scenario.rate, 0)} ticks/s in (${fmt(workload.ratePerStream, 2)}/s per symbol) → ${fmt(workload.nominalDeliveriesPerS, 0)} deliveries/s offered`;
  return (
    `**${scenario.name}**: ${workload.clients.length} clients × ${Math.min(scenario.symbolsPerClient, workload.streams.length)} of ` +
    `${workload.streams.length} symbols (LTP/Quote/Depth ${l}/${q}/${d})` +
    `${scenario.slowFraction > 0 ? `, ${Math.round(scenario.slowFraction * 100)} % slow readers` : ''}, ` +
    `${rate}; ${window} window after ${scenario.warmupS} s warm-up`
  );
}

function fmt(value: number | null | undefined, digits = 2): string {
  if (value === null || value === undefined || !Number.isFinite(value)) return 'n/a';
  return value.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

function ratio(a: number | null | undefined, b: number | null | undefined): string {
  if (a === null || a === undefined || b === null || b === undefined || b === 0) return '';
  return `${(a / b).toFixed(2)}×`;
}

/** The comparison table of one measurement per server. */
export function table(t: Measurement | undefined, b: Measurement | undefined): string {
  const tj = t ? serverJson(t) : undefined;
  const bj = b ? serverJson(b) : undefined;
  const rows: string[] = ['| | tickcast | baseline | tickcast ÷ baseline |', '|---|---:|---:|---:|'];
  const row = (label: string, get: (j: ServerJson, m: Measurement) => number | null | undefined, digits = 2, withRatio = true): void => {
    const a = t && tj ? get(tj, t) : undefined;
    const c = b && bj ? get(bj, b) : undefined;
    rows.push(`| ${label} | ${t ? fmt(a, digits) : '—'} | ${b ? fmt(c, digits) : '—'} | ${withRatio ? ratio(a, c) : ''} |`);
  };
  row('deliveries/s', (j) => j.deliveries_per_s, 0);
  row('latency p50 ms', (j) => j.latency_ms.p50);
  row('latency p90 ms', (j) => j.latency_ms.p90);
  row('latency p99 ms', (j) => j.latency_ms.p99);
  row('latency p99.9 ms', (j) => j.latency_ms.p999);
  row('latency max ms', (j) => j.latency_ms.max);
  row('ticks lost (fast clients)', (j) => j.lost, 0, false);
  rows.push(`| lost counted by | ${t ? t.lostMethod : '—'} | ${b ? b.lostMethod : '—'} | |`);
  row('source ticks seen %', (j) => j.source_ticks_seen_pct as number, 1, false);
  rows.push(`| conflated | ${t ? (t.conflated === null ? 'n/a' : fmt(t.conflated, 0)) : '—'} | ${b ? 'n/a' : '—'} | |`);
  row('server CPU % of a core', (j) => j.gateway_cpu_pct, 1);
  row('server CPU µs / delivery', (j) => j.cpu_us_per_delivery as number | null, 2);
  row('server RSS MB (window mean)', (j) => j.gateway_rss_mb, 1);
  row('memory per client KB', (j) => j.memory_per_client_kb as number | null, 1);
  if ((t?.slowClients ?? 0) > 0 || (b?.slowClients ?? 0) > 0) {
    row('slow clients: age of ticks read, p50 ms', (_j, m) => (m.slowLatency.count ? m.slowLatency.quantileUs(0.5)! / 1000 : null));
    row('slow clients: age of ticks read, p99 ms', (_j, m) => (m.slowLatency.count ? m.slowLatency.quantileUs(0.99)! / 1000 : null));
    row('slow clients: ticks read, % of their streams\' ticks', (_j, m) => m.slowReceivedPct, 1, false);
  }
  row('clients connected', (_j, m) => m.clientsConnected, 0, false);
  row('clients disconnected during run', (_j, m) => m.disconnected, 0, false);
  row('load generator CPU % (all workers)', (j) => j.loadgen_cpu_pct as number, 1, false);
  row('host CPU busy % (all cores)', (j) => j.host_cpu_busy_pct as number, 1, false);
  return rows.join('\n');
}

/** Warnings a reader of the table needs: saturation, failures, server complaints. */
export function warnings(measurements: Array<Measurement | undefined>): string[] {
  const out: string[] = [];
  for (const m of measurements) {
    if (!m) continue;
    if (m.stats.hostBusyPct >= 90) {
      out.push(
        `${m.server}: the machine was saturated (host CPU ${m.stats.hostBusyPct.toFixed(0)} % busy, counting everything running on it): ` +
          'latency and deliveries/s may show the machine\'s limit rather than the server\'s; CPU µs/delivery is the fairer comparison.',
      );
    }
    if (m.seenPct < SEEN_LIMIT_PCT) {
      out.push(
        m.lostMethod === 'seq'
          ? `${m.server}: the source published only ${m.seenPct.toFixed(1)} % of rate × window: the simulator, on the server's event loop, fell behind, so the load offered was lower than asked.`
          : `${m.server}: only ${m.seenPct.toFixed(1)} % of the source's ticks (rate × window) reached any client in time, so "lost" (which compares ` +
              'clients with each other) cannot count what every client missed: the server conflated or dropped for everyone, its source fell behind, or delivery took longer than the drain.',
      );
    }
    if (m.drainS * 1000 >= DRAIN_MAX_MS) {
      out.push(`${m.server}: clients had not caught up ${DRAIN_MAX_MS / 1000} s after the window; the window's ticks still queued then count as lost.`);
    }
    if (m.clientsFailed > 0) out.push(`${m.server}: ${m.clientsFailed} clients failed to connect/subscribe: ${m.connectErrors.join('; ')}`);
    if (m.disconnected > 0) out.push(`${m.server}: ${m.disconnected} clients were disconnected during the run: ${m.disconnectReasons.join('; ')}`);
    if (m.unexpectedFrames > 0) out.push(`${m.server}: ${m.unexpectedFrames} market_data frames did not match a subscribed stream or had no timestamp`);
    if (m.serverCounted && m.serverCounted.dropped > 0) out.push(`${m.server}: skipped ${m.serverCounted.dropped} market-data frames for clients over budget`);
    for (const line of m.warnings.slice(0, 5)) out.push(`${m.server} logged: ${line.slice(0, 300)}`);
  }
  return out;
}

/** `max`: one row per step and server. */
export function stepsTable(steps: Array<{ rate: number; offered: number; results: Partial<Record<'tickcast' | 'baseline', Measurement>> }>): string {
  const rows = [
    '| ticks/s in | offered deliveries/s | server | deliveries/s | p50 ms | p99 ms | lost | seen % | CPU % | µs/delivery | host busy % | sustained |',
    '|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---|',
  ];
  for (const step of steps) {
    for (const m of [step.results.tickcast, step.results.baseline]) {
      if (!m) continue;
      const j = serverJson(m);
      rows.push(
        `| ${fmt(step.rate, 0)} | ${fmt(step.offered, 0)} | ${m.server} | ${fmt(j.deliveries_per_s, 0)} | ${fmt(j.latency_ms.p50)} | ${fmt(j.latency_ms.p99)} | ` +
          `${j.lost} | ${fmt(m.seenPct, 1)} | ${fmt(j.gateway_cpu_pct, 1)} | ${fmt(m.cpuUsPerDelivery)} | ${fmt(m.stats.hostBusyPct, 1)} | ${sustained(m) ? 'yes' : 'no'} |`,
      );
    }
  }
  return rows.join('\n');
}

/**
 * The baseline counts what it publishes, so its run checks the rate × window estimate that
 * "source ticks seen" relies on for tickcast.
 */
export function sourceCheck(m: Measurement | undefined, workload: Workload): string | null {
  if (!m?.serverCounted) return null;
  const nominal = workload.ratePerStream * m.windowS * workload.streams.length;
  return (
    `Check of the rate × window estimate: the baseline published ${m.serverCounted.published.toLocaleString('en-US')} ticks in the window, ` +
    `rate × window = ${Math.round(nominal).toLocaleString('en-US')} (${((m.serverCounted.published / nominal) * 100).toFixed(1)} %).`
  );
}
