/**
 * The parameters of `GET /api/ticks` (docs/history.md, "Ticks over HTTP"), checked. Pure.
 *
 * `exchange`, `symbol`, `from`, `to` are required; `mode` (1|2|3|LTP|Quote|Depth), `format`
 * (jsonl|csv) and `limit` are optional. Times are epoch milliseconds or ISO 8601: a date
 * (`2024-05-02`, that UTC day's start) or a date and time with `Z` or an offset
 * (`2024-05-02T09:15:00+05:30`); a time without one is refused rather than guessed.
 */
import { ProtocolErrorCode } from '../errors.js';
import { type TickFormat, TICK_FORMATS } from '../history/tick-format.js';
import { type Mode, normalizeMode } from '../protocol/modes.js';
import { checkItem } from '../protocol/requests.js';

export interface TickQueryLimits {
  /** Longest range one request may ask for (TICKCAST_TICKS_MAX_RANGE_HOURS). */
  maxRangeHours: number;
  /** Most ticks one answer holds (TICKCAST_TICKS_MAX_ROWS); also the default limit. */
  maxRows: number;
}

export interface TickRequest {
  exchange: string;
  symbol: string;
  /** Receive time, epoch ms: from inclusive, to exclusive. */
  from: number;
  to: number;
  mode?: Mode;
  format: TickFormat;
  limit: number;
}

export type TickQueryResult = { ok: true; value: TickRequest } | { ok: false; code: string; message: string };

const EPOCH_MS = /^\d{1,15}$/;
const ISO_DATE = /^\d{4}-\d{2}-\d{2}$/;
const ISO_DATE_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:Z|[+-]\d{2}:?\d{2})$/i;
const ISO_WITHOUT_ZONE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?$/i;
const LIMIT = /^\d{1,10}$/;

/** An instant of `from`/`to`, or why it is not one. */
export function parseInstant(name: string, raw: string | null): { ok: true; ms: number } | { ok: false; message: string } {
  if (raw === null || raw === '') return { ok: false, message: `${name} is required (epoch milliseconds or ISO 8601, e.g. 2024-05-02T09:15:00+05:30)` };
  const text = raw.trim();
  let ms = Number.NaN;
  if (EPOCH_MS.test(text)) ms = Number(text);
  else if (ISO_DATE.test(text)) ms = Date.parse(`${text}T00:00:00Z`);
  else if (ISO_DATE_TIME.test(text)) ms = Date.parse(normaliseOffset(text));
  else if (ISO_WITHOUT_ZONE.test(text)) return { ok: false, message: `${name} ${JSON.stringify(raw)} has no time zone: add Z (UTC) or an offset such as +05:30` };
  if (!EPOCH_MS.test(text) && !realDate(text.slice(0, 10))) ms = Number.NaN;
  if (!Number.isFinite(ms)) return { ok: false, message: `${name} ${JSON.stringify(raw)} is not epoch milliseconds or an ISO 8601 date or date and time` };
  return { ok: true, ms };
}

/** Whether `YYYY-MM-DD` is a day of the calendar (Date.parse takes 2024-02-30 as 1 March). */
function realDate(date: string): boolean {
  const [year, month, day] = date.split('-').map(Number) as [number, number, number];
  const back = new Date(Date.UTC(year, month - 1, day));
  return back.getUTCFullYear() === year && back.getUTCMonth() === month - 1 && back.getUTCDate() === day;
}

/** `+0530` as `+05:30`, which every Date.parse reads. */
function normaliseOffset(text: string): string {
  return text.replace(/([+-]\d{2})(\d{2})$/, '$1:$2');
}

export function parseTickQuery(params: URLSearchParams, limits: TickQueryLimits): TickQueryResult {
  const invalid = (message: string): TickQueryResult => ({ ok: false, code: ProtocolErrorCode.INVALID_PARAMETERS, message });
  const exchange = params.get('exchange');
  const symbol = params.get('symbol');
  if (!exchange || !symbol) return invalid('exchange and symbol are required (e.g. exchange=NSE&symbol=RELIANCE)');
  const checked = checkItem({ exchange, symbol });
  if ('message' in checked) return invalid(checked.message);

  const from = parseInstant('from', params.get('from'));
  if (!from.ok) return invalid(from.message);
  const to = parseInstant('to', params.get('to'));
  if (!to.ok) return invalid(to.message);
  if (!(to.ms > from.ms)) return invalid('to must be later than from');
  const maxMs = limits.maxRangeHours * 3_600_000;
  if (to.ms - from.ms > maxMs) {
    return {
      ok: false,
      code: ProtocolErrorCode.RANGE_TOO_LARGE,
      message: `The range from ${new Date(from.ms).toISOString()} to ${new Date(to.ms).toISOString()} is longer than ${limits.maxRangeHours} h (TICKCAST_TICKS_MAX_RANGE_HOURS); ask for it in parts`,
    };
  }

  let mode: Mode | undefined;
  const rawMode = params.get('mode');
  if (rawMode !== null) {
    const normalised = normalizeMode(/^\s*[0-9]+\s*$/.test(rawMode) ? Number(rawMode) : rawMode);
    if (!normalised.ok) return { ok: false, code: ProtocolErrorCode.INVALID_MODE, message: normalised.message };
    mode = normalised.mode;
  }

  const rawFormat = (params.get('format') ?? 'jsonl').toLowerCase();
  if (!(TICK_FORMATS as readonly string[]).includes(rawFormat)) return invalid(`format must be ${TICK_FORMATS.join(' or ')}`);

  let limit = limits.maxRows;
  const rawLimit = params.get('limit');
  if (rawLimit !== null) {
    if (!LIMIT.test(rawLimit) || Number(rawLimit) < 1 || Number(rawLimit) > limits.maxRows) {
      return invalid(`limit must be a whole number from 1 to ${limits.maxRows} (TICKCAST_TICKS_MAX_ROWS)`);
    }
    limit = Number(rawLimit);
  }

  return { ok: true, value: { exchange: checked.exchange, symbol: checked.symbol, from: from.ms, to: to.ms, ...(mode !== undefined ? { mode } : {}), format: rawFormat as TickFormat, limit } };
}
