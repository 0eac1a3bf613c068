/** The dashboard's JSON endpoints on a real gateway: `/api/symbols` and `/api/instances`, behind an API key (what `/api/instances` leaves out: http-hardening.test.ts). */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type TestInstance, startTestInstance } from '../helpers/instance.js';

let gw: TestInstance;
let http: string;
let key: string;

beforeAll(async () => {
  gw = await startTestInstance({ TICKCAST_AUTH_FAILURES: '3' });
  http = gw.url.replace('ws://', 'http://');
  key = await gw.createKey('viewer');
});
afterAll(() => gw.stop());

const get = (path: string, apiKey?: string): Promise<Response> => fetch(`${http}${path}`, apiKey === undefined ? {} : { headers: { 'x-api-key': apiKey } });

describe('/api/symbols', () => {
  it("finds the simulator's instruments for a simulator user, best match first", async () => {
    const response = await get('/api/symbols?q=rel', key);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('application/json; charset=utf-8');
    expect(response.headers.get('cache-control')).toBe('no-store');
    const body = (await response.json()) as { status: string; data: Array<{ exchange: string; symbol: string; kind: string }> };
    expect(body.status).toBe('success');
    expect(body.data.map((h) => `${h.exchange}:${h.symbol}`)).toEqual(['NSE:RELIANCE', 'BSE:RELIANCE']);

    const nifty = (await (await get('/api/symbols?q=NSE_INDEX:NIFTY&limit=2', key)).json()) as { data: Array<{ symbol: string; kind: string }> };
    expect(nifty.data).toEqual([
      { exchange: 'NSE_INDEX', symbol: 'NIFTY', kind: 'index' },
      { exchange: 'NSE_INDEX', symbol: 'NIFTYNXT50', kind: 'index' },
    ]);
  });

  it('wants a valid key in X-API-Key', async () => {
    const missing = await get('/api/symbols?q=REL');
    expect(missing.status).toBe(401);
    expect(await missing.json()).toEqual({ status: 'error', code: 'AUTHENTICATION_ERROR', message: 'API key is required (send it in the X-API-Key header)' });
    const wrong = await get('/api/symbols?q=REL', 'not-a-key');
    expect(wrong.status).toBe(401);
    expect(await wrong.json()).toMatchObject({ code: 'AUTHENTICATION_ERROR', message: 'Invalid API key' });
  });

  it('refuses bad parameters with a reason', async () => {
    const response = await get('/api/symbols?q=%25%27&limit=5', key);
    expect(response.status).toBe(400);
    expect(await response.json()).toMatchObject({ status: 'error', code: 'INVALID_PARAMETERS' });
    const limit = await get('/api/symbols?q=A&limit=1000', key);
    expect(limit.status).toBe(400);
  });
});

describe('/api/instances', () => {
  it("lists this instance's gateway with its client URL, and wants a key", async () => {
    const response = await get('/api/instances', key);
    expect(response.status).toBe(200);
    const body = (await response.json()) as { data: Array<Record<string, unknown>> };
    const self = body.data.find((e) => e.role === 'gateway' && e.name === gw.config.instance);
    expect(self).toEqual({ instance: gw.config.instance, role: 'gateway', name: gw.config.instance, url: gw.url, alive: true });
    expect((await get('/api/instances')).status).toBe(401);
  });
});

describe('failed keys', () => {
  // Last: it puts this address over its allowance. Three failures (one made above) are answered at once, then 1 s, 2 s later.
  it('count against the address, as on the WebSocket, but never keep a valid key out', async () => {
    for (let i = 0; i < 4; i++) expect((await get('/api/instances', `wrong-${i}`)).status).toBe(401);
    const valid = await get('/api/instances', key);
    expect(valid.status).toBe(200);
    expect(await valid.json()).toMatchObject({ status: 'success' });
    // Nothing else is affected: the public endpoints still answer.
    expect((await get('/healthz')).status).toBe(200);
  });
});
