/**
 * The whole instance's `/metrics` and `/api/status` under `--workers N`, from each worker's own
 * figures. Counts of a worker's own clients add up; what every worker sees whole (the bus, the
 * adapters) is taken once; the primary supplies what only it knows (adapters, upstream). Each
 * figure appears once: a worker's entry in `per_worker` holds only what is its own.
 */
import { AggregatorRegistry, type MetricObjectWithValues, type MetricValue } from 'prom-client';

/** Prometheus text for all workers (each metric combined by the aggregator it declares). */
export function combineMetrics(reports: unknown[]): Promise<string> {
  const lists = reports.filter(Array.isArray) as Array<Array<MetricObjectWithValues<MetricValue<string>>>>;
  return AggregatorRegistry.aggregate(lists).metrics();
}

type Status = Record<string, unknown>;

const number = (value: unknown): number => (typeof value === 'number' && Number.isFinite(value) ? value : 0);
const record = (value: unknown): Record<string, unknown> => (typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : {});

function sumFields(statuses: Status[], pick: (status: Status) => unknown): Record<string, number> {
  const total: Record<string, number> = {};
  for (const status of statuses) {
    for (const [key, value] of Object.entries(record(pick(status)))) if (typeof value === 'number') total[key] = (total[key] ?? 0) + value;
  }
  return total;
}

function maxFields(statuses: Status[], pick: (status: Status) => unknown): Record<string, number> {
  const most: Record<string, number> = {};
  for (const status of statuses) {
    for (const [key, value] of Object.entries(record(pick(status)))) if (typeof value === 'number') most[key] = Math.max(most[key] ?? 0, value);
  }
  return most;
}

export interface PrimaryFigures {
  uptime_s: number;
  workers: number;
  /** The instance's adapters, users' own broker feeds left out: those are only counted. */
  adapters: unknown[];
  /** Users' own broker feeds per broker and status (the primary runs them all). */
  user_feeds: Record<string, Record<string, number>>;
  upstream_streams: number;
  rss_mb: number;
  /** The recorder's figures (history/figures.ts), when the instance records. */
  history?: Record<string, unknown>;
}

/**
 * A worker's own figures: what its clients and its process account for. The rest (the bus, the
 * adapters, user feeds, upstream) every worker sees whole, so it is given once, at the top.
 */
const WORKER_OWN = ['worker', 'uptime_s', 'connections', 'authenticated', 'subscriptions', 'streams', 'clients', 'ticks_out_by_feed', 'event_loop_lag_ms', 'open_handles', 'rss_mb', 'heap_used_mb'];

function own(status: Status): Status {
  return Object.fromEntries(WORKER_OWN.filter((key) => key in status).map((key) => [key, status[key]]));
}

/**
 * `/api/status` of the instance, with the fields of a single gateway's (each figure once): the
 * primary's own, the workers' clients summed, what every worker sees whole taken once (as the
 * busiest worker sees it), and `per_worker`, each worker's own figures only.
 */
export function combineStatus(primary: PrimaryFigures, reports: unknown[]): Status {
  const workers = reports.map(record).sort((a, b) => number(a.worker) - number(b.worker));
  const sum = (key: string): number => workers.reduce((total, status) => total + number(status[key]), 0);
  const most = (key: string): number => workers.reduce((top, status) => Math.max(top, number(status[key])), 0);
  return {
    uptime_s: primary.uptime_s,
    ready: workers.some((status) => status.ready === true),
    workers: primary.workers,
    workers_reporting: workers.length,
    connections: sum('connections'),
    authenticated: sum('authenticated'),
    subscriptions: sum('subscriptions'),
    streams: most('streams'),
    upstream_streams: primary.upstream_streams,
    adapters: primary.adapters,
    user_feeds: primary.user_feeds,
    ...(primary.history ? { history: primary.history } : {}),
    bus: { ...maxFields(workers, (status) => status.bus), ticks_by_feed: maxFields(workers, (status) => record(status.bus).ticks_by_feed) },
    clients: sumFields(workers, (status) => status.clients),
    ticks_out_by_feed: sumFields(workers, (status) => status.ticks_out_by_feed),
    event_loop_lag_ms: maxFields(workers, (status) => status.event_loop_lag_ms),
    rss_mb: Math.round((primary.rss_mb + sum('rss_mb')) * 10) / 10,
    per_worker: workers.map(own),
  };
}
