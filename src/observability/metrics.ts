/**
 * Prometheus metrics of one gateway, read from its parts at scrape time (nothing on the hot path
 * but plain counters the parts already keep). Names are prefixed `tickcast_`. Each gateway owns
 * its own registry: no global state. Every metric is listed, with its meaning, in docs/metrics.md.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { RecorderFigures } from '../history/recorder.js';
import { EventLoopLag, type LagFigures } from './event-loop-lag.js';

export interface MetricsSource {
  connections(): number;
  authenticated(): number;
  /** (session, stream) pairs held, and distinct streams with subscribers. */
  subscriptions(): number;
  streams(): number;
  upstreamStreams(): number;
  /** Ticks taken off the bus, per feed ('' = the shared feed). */
  ticksIn(): ReadonlyMap<string, number>;
  /** Market-data messages fan-out handed to clients, per feed of the tick. */
  ticksOut(): ReadonlyMap<string, number>;
  /** Market-data messages written to clients, conflated, and thrown away with closed clients. */
  deliveries(): number;
  conflated(): number;
  dropped(): number;
  slowConsumersClosed(): number;
  busMessages(): number;
  busInvalid(): number;
  adapters(): Array<{ feed: string; broker: string; status: string }>;
  /** Users' own broker feeds, counted per broker and status (never named: they carry user names). */
  userFeeds(): Record<string, Record<string, number>>;
  /** The recorder's figures, when ticks are recorded. */
  history?(): RecorderFigures | undefined;
  /** Recoveries after reconnect answered, messages they resent, and those answered with a gap. */
  recovery?(): { recoveries: number; messages: number; gaps: number };
}

/**
 * How `--workers N` combines a metric across workers (prom-client's AggregatorRegistry): `sum`
 * for what each worker counts of its own clients, `max` for what every worker sees whole (each
 * receives the entire bus and knows every adapter) or where the worst worker is the figure.
 */
type Aggregator = 'sum' | 'max';

/**
 * The recorder's metrics (history/recorder.ts), read at scrape time; a gateway's registry holds
 * them, or under `--workers N` the primary's, which runs the recorder.
 */
export function registerHistoryMetrics(registry: Registry, read: () => RecorderFigures | undefined): void {
  const figure = (pick: (figures: RecorderFigures) => number) => () => {
    const figures = read();
    return figures ? pick(figures) : 0;
  };
  const gauge = (name: string, help: string, value: () => number): void => {
    new Gauge({
      name,
      help,
      aggregator: 'max',
      registers: [registry],
      collect() {
        this.set(value());
      },
    });
  };
  gauge('tickcast_history_recording', 'Whether ticks are being recorded: 1, or 0 once recording stopped (a full disk).', figure((f) => (f.state === 'recording' ? 1 : 0)));
  totalCounter(registry, 'tickcast_history_ticks_recorded_total', 'Ticks taken for recording.', figure((f) => f.recorded), 'max');
  totalCounter(registry, 'tickcast_history_ticks_written_total', 'Recorded ticks written to the history store.', figure((f) => f.written), 'max');
  totalCounter(registry, 'tickcast_history_ticks_shed_total', 'Ticks not recorded because the writer was behind or recording had stopped (delivery is unaffected).', figure((f) => f.shed), 'max');
  totalCounter(registry, 'tickcast_history_ticks_failed_total', 'Recorded ticks lost in batches the store could not write.', figure((f) => f.failed), 'max');
  gauge('tickcast_history_queued_ticks', 'Recorded ticks waiting for the writer.', figure((f) => f.queued));
  gauge('tickcast_history_bytes', 'Bytes of the history store on disk.', figure((f) => f.bytes));
  gauge('tickcast_history_days', 'Days held in the history store.', figure((f) => f.days));
}

/** A counter whose value is read from a running total at scrape time. */
function totalCounter(registry: Registry, name: string, help: string, read: () => number, aggregator: Aggregator = 'sum'): void {
  let last = 0;
  new Counter({
    name,
    help,
    aggregator,
    registers: [registry],
    collect() {
      const now = read();
      if (now > last) this.inc(now - last);
      last = now;
    },
  });
}

/** A counter per feed whose values are read from running totals at scrape time. */
function feedCounter(registry: Registry, name: string, help: string, read: () => ReadonlyMap<string, number>, aggregator: Aggregator = 'sum'): void {
  const last = new Map<string, number>();
  new Counter({
    name,
    help,
    aggregator,
    labelNames: ['feed'],
    registers: [registry],
    collect() {
      for (const [feed, total] of read()) {
        const delta = total - (last.get(feed) ?? 0);
        if (delta > 0) this.inc({ feed }, delta);
        last.set(feed, total);
      }
    },
  });
}

export class GatewayMetrics {
  readonly registry = new Registry();
  /** Publish-to-fan-out latency of sampled ticks (from the payload's `timestamp`). */
  readonly latency: Histogram;
  /** Event-loop lag over a window (event-loop-lag.ts), shared with /api/status. */
  readonly lag = new EventLoopLag();

  constructor(source: MetricsSource) {
    const registry = this.registry;
    collectDefaultMetrics({ register: registry, prefix: 'tickcast_' });
    const gauge = (name: string, help: string, read: () => number, aggregator: Aggregator = 'sum'): void => {
      new Gauge({
        name,
        help,
        aggregator,
        registers: [registry],
        collect() {
          this.set(read());
        },
      });
    };
    gauge('tickcast_connections', 'Open client WebSocket connections.', source.connections);
    gauge('tickcast_authenticated_clients', 'Connections that have authenticated.', source.authenticated);
    gauge('tickcast_subscriptions', 'Streams held by clients, counting each client once per stream.', source.subscriptions);
    gauge('tickcast_streams', 'Distinct streams with at least one subscriber (with --workers: of the busiest worker).', source.streams, 'max');
    gauge('tickcast_upstream_streams', 'Streams the adapters are subscribed to upstream (with --workers: as asked by the busiest worker).', source.upstreamStreams, 'max');
    totalCounter(registry, 'tickcast_deliveries_total', 'Market-data messages written to clients.', source.deliveries);
    totalCounter(registry, 'tickcast_conflated_total', 'Market-data messages replaced by a newer tick of the same stream while a client was congested.', source.conflated);
    totalCounter(registry, 'tickcast_dropped_total', 'Market-data messages thrown away because their client closed before reading them.', source.dropped);
    totalCounter(registry, 'tickcast_slow_consumers_closed_total', 'Clients closed with 4408 (slow consumer).', source.slowConsumersClosed);
    totalCounter(registry, 'tickcast_bus_messages_total', 'Bus messages received (each entry of a batch, and each tick an in-process adapter hands over, counts once).', source.busMessages, 'max');
    totalCounter(registry, 'tickcast_bus_invalid_total', 'Bus messages skipped as malformed (the bus errors: bad topic, payload or frames).', source.busInvalid, 'max');
    feedCounter(registry, 'tickcast_ticks_in_total', 'Ticks taken off the bus, per feed (feed="" is the shared feed of OpenAlgo topics).', source.ticksIn, 'max');
    feedCounter(
      registry,
      'tickcast_ticks_out_total',
      'Market-data messages handed to clients, per feed of the tick (one per subscribed client per tick; snapshots not counted).',
      source.ticksOut,
    );
    const lag = this.lag;
    const lagGauge = (name: string, help: string, pick: (figures: LagFigures) => number): void =>
      gauge(name, `${help} (seconds, over the last window of at least 5 s; docs/metrics.md).`, () => pick(lag.read()) / 1000, 'max');
    lagGauge('tickcast_event_loop_lag_p50_seconds', 'Event-loop lag, median', (f) => f.p50);
    lagGauge('tickcast_event_loop_lag_p99_seconds', 'Event-loop lag, 99th percentile', (f) => f.p99);
    lagGauge('tickcast_event_loop_lag_max_seconds', 'Event-loop lag, worst', (f) => f.max);
    new Gauge({
      name: 'tickcast_adapter_up',
      help: 'Adapter status: 1 for the status it is in (live, reconnecting, stale, down), per feed.',
      labelNames: ['feed', 'broker', 'status'],
      aggregator: 'max',
      registers: [registry],
      collect() {
        this.reset();
        for (const { feed, broker, status } of source.adapters()) {
          for (const s of ['live', 'reconnecting', 'stale', 'down']) this.set({ feed, broker, status: s }, s === status ? 1 : 0);
        }
      },
    });
    new Gauge({
      name: 'tickcast_user_feeds',
      help: "Users' own broker feeds, per broker and status.",
      labelNames: ['broker', 'status'],
      aggregator: 'max',
      registers: [registry],
      collect() {
        this.reset();
        for (const [broker, byStatus] of Object.entries(source.userFeeds())) {
          for (const s of ['live', 'reconnecting', 'stale', 'down']) this.set({ broker, status: s }, byStatus[s] ?? 0);
        }
      },
    });
    if (source.history) registerHistoryMetrics(registry, source.history);
    if (source.recovery) {
      const recovery = source.recovery;
      totalCounter(registry, 'tickcast_recoveries_total', 'Subscriptions with `since` answered (recovery after reconnect: docs/protocol.md), filled or not.', () => recovery().recoveries);
      totalCounter(registry, 'tickcast_recovered_messages_total', 'Market-data messages resent by recoveries after reconnect.', () => recovery().messages);
      totalCounter(registry, 'tickcast_recovery_gaps_total', 'Recoveries answered with a gap (another gateway process, history too short, or ahead).', () => recovery().gaps);
    }
    this.latency = new Histogram({
      name: 'tickcast_publish_to_send_seconds',
      help: "Time from a tick's publish timestamp to its fan-out (1 in 16 ticks sampled; ms resolution).",
      buckets: [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers: [registry],
    });
  }

  /** Stops the event-loop monitor. */
  close(): void {
    this.lag.close();
  }

  text(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}
