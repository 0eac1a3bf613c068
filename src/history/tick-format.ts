/**
 * The text forms of recorded ticks that `GET /api/ticks` streams (docs/history.md, "Ticks over
 * HTTP"). Pure: the reader thread builds its chunks with these.
 *
 * - `jsonl`: one object per line, `{"ts","exchange_ts","exchange","symbol","mode","data"}`, with
 *   `data` the payload exactly as recorded (the JSON text clients got, byte for byte); a last line
 *   without `ts` (`{"truncated":…}`) only when the answer is not the whole range (endLine).
 * - `csv` (RFC 4180, CRLF): `received_at,exchange_ts,exchange,symbol,mode,data`, `data` the JSON
 *   payload quoted; an empty `exchange_ts` when the broker sent none.
 */
import type { RecordedTick } from './tick-store.js';

export const TICK_FORMATS = ['jsonl', 'csv'] as const;
export type TickFormat = (typeof TICK_FORMATS)[number];

export const CONTENT_TYPE: Record<TickFormat, string> = {
  jsonl: 'application/x-ndjson; charset=utf-8',
  csv: 'text/csv; charset=utf-8; header=present',
};

export const CSV_HEADER = 'received_at,exchange_ts,exchange,symbol,mode,data\r\n';

/** What comes before the first tick. */
export function prologue(format: TickFormat): string {
  return format === 'csv' ? CSV_HEADER : '';
}

/** One tick as a line of `format`, its line end included. */
export function formatTick(tick: RecordedTick, format: TickFormat): string {
  if (format === 'csv') {
    return `${tick.receivedAt},${tick.exchangeTs ?? ''},${csvField(tick.exchange)},${csvField(tick.symbol)},${tick.mode},${csvQuoted(tick.payload)}\r\n`;
  }
  return `{"ts":${tick.receivedAt},"exchange_ts":${tick.exchangeTs ?? 'null'},"exchange":${JSON.stringify(tick.exchange)},"symbol":${JSON.stringify(tick.symbol)},"mode":${tick.mode},"data":${tick.payload}}\n`;
}

/** How a read ended, for the last line (jsonl) and the trailers. */
export interface ReadSummary {
  /** Ticks sent. */
  rows: number;
  /** The limit stopped the answer before the end of the range. */
  truncated: boolean;
  limit: number;
  /** Days that could not be read (or not wholly): the answer lacks their ticks. */
  damagedDays: readonly string[];
}

/**
 * The jsonl answer's last line, only when the answer is not all of the range: cut by the limit,
 * or missing damaged days. Empty otherwise, so a complete answer is ticks alone.
 */
export function endLine(summary: ReadSummary): string {
  if (!summary.truncated && summary.damagedDays.length === 0) return '';
  return `${JSON.stringify({ truncated: summary.truncated, limit: summary.limit, ...(summary.damagedDays.length > 0 ? { damaged_days: summary.damagedDays } : {}) })}\n`;
}

/** A CSV field, quoted only when it must be. */
export function csvField(text: string): string {
  return /[",\r\n]/.test(text) ? csvQuoted(text) : text;
}

export function csvQuoted(text: string): string {
  return `"${text.replaceAll('"', '""')}"`;
}
