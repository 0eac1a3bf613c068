/** The gateway's HTTP endpoints on its WebSocket port: health, readiness, status, Prometheus metrics. */
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestClient, sleep, waitFor } from '../helpers/client.js';
import { type TestInstance, startTestInstance } from '../helpers/instance.js';

let gw: TestInstance;
let http: string;

beforeAll(async () => {
  gw = await startTestInstance({ TICKCAST_SIM_RATE: '200' });
  http = gw.url.replace('ws://', 'http://');
});
afterAll(() => gw.stop());

/** Every metric the gateway must export (names as in `# TYPE` lines). */
const EXPECTED_METRICS = [
  'tickcast_connections',
  'tickcast_authenticated_clients',
  'tickcast_subscriptions',
  'tickcast_streams',
  'tickcast_upstream_streams',
  'tickcast_ticks_in_total',
  'tickcast_ticks_out_total',
  'tickcast_deliveries_total',
  'tickcast_conflated_total',
  'tickcast_dropped_total',
  'tickcast_slow_consumers_closed_total',
  'tickcast_bus_messages_total',
  'tickcast_bus_invalid_total',
  'tickcast_adapter_up',
  'tickcast_publish_to_send_seconds',
  'tickcast_event_loop_lag_p50_seconds',
  'tickcast_event_loop_lag_p99_seconds',
  'tickcast_event_loop_lag_max_seconds',
  // Process metrics, prefixed.
  'tickcast_process_cpu_seconds_total',
  'tickcast_process_resident_memory_bytes',
  'tickcast_process_open_fds',
  'tickcast_nodejs_heap_size_used_bytes',
  'tickcast_nodejs_active_handles_total',
  'tickcast_nodejs_eventloop_lag_seconds',
  'tickcast_nodejs_gc_duration_seconds',
];

/** Objects of /api/status whose keys are fields of their own (documented as `group.key`); the other objects are maps or tuples of one figure. */
const STATUS_GROUPS = new Set(['bus', 'clients']);

/** The fields of a status, `bus.ticks` style. */
function statusFields(status: Record<string, unknown>, prefix = ''): string[] {
  return Object.entries(status).flatMap(([key, value]) =>
    STATUS_GROUPS.has(key) && prefix === '' ? statusFields(value as Record<string, unknown>, `${key}.`) : [`${prefix}${key}`],
  );
}

/** The fields docs/metrics.md's /api/status table lists, in order. */
function documentedStatusFields(): string[] {
  const doc = readFileSync(new URL('../../docs/metrics.md', import.meta.url), 'utf8');
  const section = doc.slice(doc.indexOf('## `/api/status`'), doc.indexOf('## Under `--workers N`'));
  return [...section.matchAll(/^\|[^|]*\| `([a-zA-Z_.]+)` \|/gm)].map((m) => m[1]!);
}

async function metricsText(): Promise<string> {
  return (await fetch(`${http}/metrics`)).text();
}

/** Sample lines, `name{labels} value` → value. */
function parseMetrics(text: string): Map<string, number> {
  const samples = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const at = line.lastIndexOf(' ');
    samples.set(line.slice(0, at), Number(line.slice(at + 1)));
  }
  return samples;
}

function metricNames(text: string): string[] {
  return [...text.matchAll(/^# TYPE (\S+) /gm)].map((m) => m[1]!);
}

describe('HTTP endpoints', () => {
  it('/healthz and /readyz', async () => {
    const health = await fetch(`${http}/healthz`);
    expect([health.status, await health.text()]).toEqual([200, 'ok\n']);
    const ready = await fetch(`${http}/readyz`);
    expect([ready.status, await ready.text()]).toEqual([200, 'ready\n']);
  });

  it('/api/status and /metrics reflect clients, streams, ticks and adapters', async () => {
    const before = parseMetrics(await metricsText());
    expect(before.get('tickcast_subscriptions')).toBe(0);
    const client = await TestClient.authenticated(gw.url, await gw.createKey('watcher'));
    await client.request({ action: 'subscribe', symbols: [{ symbol: 'TCS', exchange: 'NSE' }, { symbol: 'INFY', exchange: 'NSE' }], mode: 2 });
    await waitFor(() => gw.gateway.busListener.counters.ticks > 40);

    const status = (await (await fetch(`${http}/api/status`)).json()) as Record<string, any>;
    expect(status).toMatchObject({ ready: true, connections: 1, authenticated: 1, subscriptions: 2, streams: 2, upstream_streams: 2 });
    expect(status.adapters).toEqual([{ feed: 'simulator', broker: 'simulator', status: 'live' }]);
    expect(status.bus.ticks_by_feed.simulator).toBeGreaterThan(40);
    // The total and its breakdown by feed, read at the same moment.
    expect(status.bus.ticks).toBe(Object.values(status.bus.ticks_by_feed as Record<string, number>).reduce((a, b) => a + b, 0));
    expect(status.ticks_out_by_feed.simulator).toBeGreaterThan(0);
    expect(status.clients.sent).toBeGreaterThan(0);
    expect(Object.keys(status.event_loop_lag_ms).sort()).toEqual(['max', 'p50', 'p99']);
    for (const ms of Object.values(status.event_loop_lag_ms)) expect(ms).toBeGreaterThanOrEqual(0);
    expect(status.event_loop_lag_ms.max).toBeGreaterThanOrEqual(status.event_loop_lag_ms.p99);
    // The client's socket at least, and the listening sockets.
    expect(status.open_handles).toBeGreaterThan(2);
    expect(status.rss_mb).toBeGreaterThan(10);
    expect(status.heap_used_mb).toBeGreaterThan(1);

    const response = await fetch(`${http}/metrics`);
    expect(response.headers.get('content-type')).toContain('text/plain');
    const text = await response.text();
    const during = parseMetrics(text);
    expect(during.get('tickcast_connections')).toBe(1);
    expect(during.get('tickcast_authenticated_clients')).toBe(1);
    expect(during.get('tickcast_subscriptions')).toBe(2);
    expect(during.get('tickcast_streams')).toBe(2);
    expect(during.get('tickcast_upstream_streams')).toBe(2);
    expect(during.get('tickcast_deliveries_total')).toBeGreaterThan(0);
    expect(during.get('tickcast_conflated_total')).toBe(0);
    expect(during.get('tickcast_bus_messages_total')).toBeGreaterThan(40);
    expect(during.get('tickcast_bus_invalid_total')).toBe(0);
    expect(during.get('tickcast_ticks_in_total{feed="simulator"}')).toBeGreaterThan(40);
    expect(during.get('tickcast_ticks_out_total{feed="simulator"}')).toBeGreaterThan(0);
    expect(during.get('tickcast_adapter_up{feed="simulator",broker="simulator",status="live"}')).toBe(1);
    expect(during.get('tickcast_adapter_up{feed="simulator",broker="simulator",status="down"}')).toBe(0);
    expect(during.get('tickcast_publish_to_send_seconds_count')).toBeGreaterThan(0);
    expect(during.get('tickcast_event_loop_lag_max_seconds')).toBeGreaterThanOrEqual(0);

    // Out of the feed = what its one client received, once the stream is quiet again.
    await client.request({ action: 'unsubscribe', symbols: [{ symbol: 'TCS', exchange: 'NSE' }, { symbol: 'INFY', exchange: 'NSE' }], mode: 2 });
    await sleep(300);
    const received = client.raw.filter((m) => JSON.parse(m).type === 'market_data').length;
    const after = parseMetrics(await metricsText());
    const out = (after.get('tickcast_ticks_out_total{feed="simulator"}') ?? 0) - (before.get('tickcast_ticks_out_total{feed="simulator"}') ?? 0);
    const ticksIn = (after.get('tickcast_ticks_in_total{feed="simulator"}') ?? 0) - (before.get('tickcast_ticks_in_total{feed="simulator"}') ?? 0);
    expect(received).toBeGreaterThan(0);
    expect(out).toBe(received);
    expect(ticksIn).toBeGreaterThanOrEqual(out);
    expect(after.get('tickcast_subscriptions')).toBe(0);
    expect(after.get('tickcast_streams')).toBe(0);

    await client.close();
    await waitFor(() => gw.gateway.listener.sessions.size === 0);
    // Totals survive the client.
    const closed = parseMetrics(await metricsText());
    expect(closed.get('tickcast_connections')).toBe(0);
    expect(closed.get('tickcast_deliveries_total')).toBeGreaterThanOrEqual(during.get('tickcast_deliveries_total')!);
  });

  it('/metrics has every documented metric, and docs/metrics.md documents every tickcast metric', async () => {
    const names = metricNames(await metricsText());
    for (const name of EXPECTED_METRICS) expect(names, name).toContain(name);
    const doc = readFileSync(new URL('../../docs/metrics.md', import.meta.url), 'utf8');
    // Node's process metrics (prom-client's defaults) are documented as a group.
    const own = names.filter((n) => !n.startsWith('tickcast_process_') && !n.startsWith('tickcast_nodejs_'));
    for (const name of own) expect(doc, name).toContain(`\`${name}\``);
  });

  it('/api/status names each figure once, and docs/metrics.md documents exactly its fields', async () => {
    const status = (await (await fetch(`${http}/api/status`)).json()) as Record<string, unknown>;
    const fields = statusFields(status);
    const documented = documentedStatusFields();
    expect(new Set(documented).size).toBe(documented.length);
    expect([...fields].sort()).toEqual([...documented].sort());
    // A figure under two names would show as two fields; these were once both there.
    expect(fields).not.toContain('clients.slowConsumersClosed');
  });

  it('anything else still says to use a WebSocket', async () => {
    const response = await fetch(`${http}/nowhere`);
    expect(response.status).toBe(426);
  });
});
