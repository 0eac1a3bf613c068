/** The gateway's HTTP endpoints on its WebSocket port: health, readiness, status, Prometheus metrics. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestClient, waitFor } from '../helpers/client.js';
import { type TestInstance, startTestInstance } from '../helpers/instance.js';

let gw: TestInstance;
let http: string;

beforeAll(async () => {
  gw = await startTestInstance({ TICKCAST_SIM_RATE: '200' });
  http = gw.url.replace('ws://', 'http://');
});
afterAll(() => gw.stop());

describe('HTTP endpoints', () => {
  it('/healthz and /readyz', async () => {
    const health = await fetch(`${http}/healthz`);
    expect([health.status, await health.text()]).toEqual([200, 'ok\n']);
    const ready = await fetch(`${http}/readyz`);
    expect([ready.status, await ready.text()]).toEqual([200, 'ready\n']);
  });

  it('/api/status and /metrics reflect clients, streams, ticks and adapters', async () => {
    const client = await TestClient.authenticated(gw.url, await gw.createKey('watcher'));
    await client.request({ action: 'subscribe', symbols: [{ symbol: 'TCS', exchange: 'NSE' }, { symbol: 'INFY', exchange: 'NSE' }], mode: 2 });
    await waitFor(() => gw.gateway.busListener.counters.ticks > 40);

    const status = (await (await fetch(`${http}/api/status`)).json()) as Record<string, any>;
    expect(status).toMatchObject({ ready: true, connections: 1, authenticated: 1, subscriptions: 2, streams: 2, upstream_streams: 2 });
    expect(status.adapters).toEqual([{ feed: 'simulator', broker: 'simulator', status: 'live' }]);
    expect(status.bus.ticks_by_feed.simulator).toBeGreaterThan(40);
    expect(status.clients.sent).toBeGreaterThan(0);

    const response = await fetch(`${http}/metrics`);
    expect(response.headers.get('content-type')).toContain('text/plain');
    const text = await response.text();
    const value = (name: string): number => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1]);
    expect(value('tickcast_connections')).toBe(1);
    expect(value('tickcast_authenticated_clients')).toBe(1);
    expect(value('tickcast_streams')).toBe(2);
    expect(value('tickcast_deliveries_total')).toBeGreaterThan(0);
    expect(value('tickcast_conflated_total')).toBe(0);
    expect(text).toMatch(/^tickcast_ticks_in_total\{feed="simulator"\} \d+$/m);
    expect(text).toMatch(/^tickcast_adapter_up\{feed="simulator",broker="simulator",status="live"\} 1$/m);
    expect(text).toMatch(/^tickcast_publish_to_send_seconds_count \d+$/m);
    expect(value('tickcast_publish_to_send_seconds_count')).toBeGreaterThan(0);
    expect(text).toContain('tickcast_nodejs_eventloop_lag_seconds');
    await client.close();
    await waitFor(() => gw.gateway.listener.sessions.size === 0);
    // Totals survive the client.
    expect(Number(/^tickcast_deliveries_total (\S+)$/m.exec(await (await fetch(`${http}/metrics`)).text())?.[1])).toBeGreaterThanOrEqual(value('tickcast_deliveries_total'));
  });

  it('anything else still says to use a WebSocket', async () => {
    const response = await fetch(`${http}/nowhere`);
    expect(response.status).toBe(426);
  });
});
