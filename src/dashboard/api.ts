import type { RecordedAnswer } from './recorded.js';

/**
 * The gateway's HTTP endpoints, fetched relative to the page so the dashboard works at `/` and
 * behind a reverse proxy at any prefix.
 */

export interface GatewayStatus {
  uptime_s?: number;
  ready?: boolean;
  connections?: number;
  authenticated?: number;
  subscriptions?: number;
  streams?: number;
  adapters?: Array<{ feed: string; broker: string; status: string }>;
  bus?: { ticks?: number; ticks_by_feed?: Record<string, number> };
  clients?: { sent?: number; conflated?: number; dropped?: number };
  event_loop_lag_ms?: { p50?: number; p99?: number; max?: number };
  rss_mb?: number;
}

export interface SymbolHit {
  exchange: string;
  symbol: string;
  kind: string;
  name?: string;
}

/** One of this instance's gateways (with the URL clients connect to) or feed adapters. */
export interface InstanceEntry {
  instance: string;
  role: string;
  name: string;
  url?: string;
  alive: boolean;
}

/** An HTTP failure with the gateway's message when it sent one. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

async function getJson<T>(path: string, apiKey?: string, signal?: AbortSignal): Promise<T> {
  const headers: Record<string, string> = { accept: 'application/json' };
  if (apiKey) headers['x-api-key'] = apiKey;
  const response = await fetch(path, { headers, cache: 'no-store', ...(signal ? { signal } : {}) });
  const body = (await response.json().catch(() => ({}))) as { message?: unknown; data?: unknown };
  if (!response.ok) throw new ApiError(response.status, typeof body.message === 'string' ? body.message : `HTTP ${response.status}`);
  return body as T;
}

export function fetchStatus(): Promise<GatewayStatus> {
  return getJson<GatewayStatus>('api/status');
}

export async function fetchMetrics(): Promise<string> {
  const response = await fetch('metrics', { cache: 'no-store' });
  if (!response.ok) throw new ApiError(response.status, `HTTP ${response.status}`);
  return response.text();
}

export async function searchSymbols(apiKey: string, query: string, signal?: AbortSignal): Promise<SymbolHit[]> {
  const body = await getJson<{ data: SymbolHit[] }>(`api/symbols?q=${encodeURIComponent(query)}&limit=12`, apiKey, signal);
  return body.data;
}

export async function fetchInstances(apiKey: string): Promise<InstanceEntry[]> {
  const body = await getJson<{ data: InstanceEntry[] }>('api/instances', apiKey);
  return body.data;
}

/** The caller's recorded streams (`/api/history/streams`). */
export function fetchRecorded(apiKey: string): Promise<RecordedAnswer> {
  return getJson<RecordedAnswer>('api/history/streams', apiKey);
}
