import { Gauge, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { combineMetrics, combineStatus } from '../../src/cluster/figures.js';

describe('figures of the whole instance under --workers', () => {
  it('adds up what workers count of their own clients and takes the rest once', () => {
    const primary = { uptime_s: 9, workers: 2, adapters: [{ feed: 'simulator', broker: 'simulator', status: 'live' }], upstream_streams: 4, rss_mb: 50 };
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
