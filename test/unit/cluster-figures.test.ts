import { Gauge, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { combineMetrics, combineStatus } from '../../src/cluster/figures.js';

describe('figures of the whole instance under --workers', () => {
  it('adds up what workers count of their own clients and takes the rest once', () => {
    const primary = { uptime_s: 9, workers: 2, adapters: [{ feed: 'simulator', broker: 'simulator', status: 'live' }], user_feeds: { zerodha: { live: 2 } }, upstream_streams: 4, rss_mb: 50 };
    const w1 = { worker: 1, ready: true, connections: 3, authenticated: 2, subscriptions: 5, bus: { ticks: 100, ticks_by_feed: { simulator: 100 } }, clients: { sent: 10, conflated: 1 }, ticks_out_by_feed: { simulator: 10 }, event_loop_lag_ms: { p99: 2 }, rss_mb: 40 };
    const w2 = { worker: 2, ready: false, connections: 4, authenticated: 4, subscriptions: 1, bus: { ticks: 98 }, clients: { sent: 5, conflated: 0 }, ticks_out_by_feed: { simulator: 5, 'zerodha.a': 1 }, event_loop_lag_ms: { p99: 7 }, rss_mb: 30 };
    const status = combineStatus(primary, [w2, w1, 'garbage']);
    expect(status).toMatchObject({
      uptime_s: 9,
      ready: true,
      workers: 2,
      workers_reporting: 3,
      connections: 7,
      authenticated: 6,
      subscriptions: 6,
      upstream_streams: 4,
      bus: { ticks: 100 },
      clients: { sent: 15, conflated: 1 },
      ticks_out_by_feed: { simulator: 15, 'zerodha.a': 1 },
      event_loop_lag_ms: { p99: 7 },
      rss_mb: 120,
    });
    expect((status.per_worker as Array<{ worker?: number }>).map((w) => w.worker)).toEqual([undefined, 1, 2]);
  });

  it("has a single gateway's fields, each figure once: per worker only what is the worker's own", () => {
    const primary = { uptime_s: 9, workers: 2, adapters: [{ feed: 'simulator', broker: 'simulator', status: 'live' }], user_feeds: { zerodha: { live: 2 } }, upstream_streams: 4, rss_mb: 50 };
    // A worker's whole status, as Gateway.status() gives it.
    const worker = (n: number, streams: number, ticks: number) => ({
      uptime_s: 8,
      worker: n,
      ready: true,
      connections: 2,
      authenticated: 2,
      subscriptions: 3,
      streams,
      upstream_streams: streams,
      adapters: [{ feed: 'simulator', broker: 'simulator', status: 'live' }],
      user_feeds: { zerodha: { live: n + 5 } },
      bus: { messages: ticks, ticks, orderUpdates: 0, cacheInvalidations: 0, ignored: 0, invalid: 0, ticks_by_feed: { simulator: ticks } },
      clients: { sent: 10, conflated: 0, dropped: 0, slow_consumers_closed: 0 },
      ticks_out_by_feed: { simulator: 10 },
      event_loop_lag_ms: { p50: 1, p99: 2, max: 3 },
      open_handles: 9,
      rss_mb: 40,
      heap_used_mb: 12,
    });
    const status = combineStatus(primary, [worker(1, 3, 100), worker(2, 2, 99)]);
    expect(Object.keys(status)).toEqual([
      'uptime_s', 'ready', 'workers', 'workers_reporting', 'connections', 'authenticated', 'subscriptions', 'streams', 'upstream_streams',
      'adapters', 'user_feeds', 'bus', 'clients', 'ticks_out_by_feed', 'event_loop_lag_ms', 'rss_mb', 'per_worker',
    ]);
    // Users' own feeds run in the primary: its count, whatever a worker thinks.
    expect(status).toMatchObject({ streams: 3, upstream_streams: 4, user_feeds: { zerodha: { live: 2 } }, rss_mb: 130 });
    expect(status.bus).toEqual({ messages: 100, ticks: 100, orderUpdates: 0, cacheInvalidations: 0, ignored: 0, invalid: 0, ticks_by_feed: { simulator: 100 } });
    expect(status.clients).toEqual({ sent: 20, conflated: 0, dropped: 0, slow_consumers_closed: 0 });
    for (const entry of status.per_worker as Array<Record<string, unknown>>) {
      expect(Object.keys(entry)).toEqual(['worker', 'uptime_s', 'connections', 'authenticated', 'subscriptions', 'streams', 'clients', 'ticks_out_by_feed', 'event_loop_lag_ms', 'open_handles', 'rss_mb', 'heap_used_mb']);
    }
  });

  it('combines Prometheus metrics by the aggregator each declares', async () => {
    const report = async (connections: number, streams: number): Promise<unknown> => {
      const registry = new Registry();
      new Gauge({ name: 'tickcast_connections', help: 'c', registers: [registry], aggregator: 'sum' }).set(connections);
      new Gauge({ name: 'tickcast_streams', help: 's', registers: [registry], aggregator: 'max' }).set(streams);
      return registry.getMetricsAsJSON();
    };
    const text = await combineMetrics([await report(3, 10), await report(4, 7), { not: 'a list' }]);
    expect(text).toMatch(/^tickcast_connections 7$/m);
    expect(text).toMatch(/^tickcast_streams 10$/m);
  });
});
