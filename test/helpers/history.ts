/**
 * What the history endpoints' tests share: a request on a fresh connection (so `--workers`
 * spreads them over the workers), the `/api/ticks` path of a query, and the check that a jsonl
 * answer is exactly the stored ticks.
 */
import { request } from 'node:http';
import { expect } from 'vitest';
import type { RecordedTick } from '../../src/history/store.js';

export interface FreshReply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  trailers: Record<string, string | undefined>;
  body: string;
}

/** A request (GET unless `method` says) on a connection of its own, with its trailers. */
export function freshRequest(base: string, path: string, options: { apiKey?: string; method?: string; headers?: Record<string, string> } = {}): Promise<FreshReply> {
  const headers = { ...options.headers, ...(options.apiKey === undefined ? {} : { 'x-api-key': options.apiKey }) };
  return new Promise((resolve, reject) => {
    const req = request(`${base}${path}`, { method: options.method ?? 'GET', agent: false, headers }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, trailers: res.trailers, body }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

/** `/api/ticks?…` for these parameters. */
export const ticksPath = (params: Record<string, string | number>): string => `/api/ticks?${new URLSearchParams(Object.entries(params).map(([k, v]): [string, string] => [k, String(v)]))}`;

/** Every jsonl line is one stored tick, in the store's order, its payload byte for byte. */
export function expectJsonl(body: string, ticks: readonly RecordedTick[]): void {
  const lines = body === '' ? [] : body.replace(/\n$/, '').split('\n');
  expect(lines.length).toBe(ticks.length);
  lines.forEach((line, i) => {
    const tick = ticks[i]!;
    expect(JSON.parse(line)).toEqual({ ts: tick.receivedAt, exchange_ts: tick.exchangeTs, exchange: tick.exchange, symbol: tick.symbol, mode: tick.mode, data: JSON.parse(tick.payload) });
    expect(line.endsWith(`"data":${tick.payload}}`)).toBe(true);
  });
}
