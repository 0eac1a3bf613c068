/**
 * `client.history(...)`: one stream's recorded ticks from the gateway's `GET /api/ticks`
 * (docs/history.md, "Ticks over HTTP"), as an async iterable read incrementally from the jsonl
 * answer: the body is decoded chunk by chunk and split into lines, so only a line (and the chunk
 * it arrived in) is held at a time. Uses the global `fetch` (Node ≥ 18, browsers); nothing
 * Node-only.
 *
 * How the answer ended is checked, never guessed: a clean end (every line complete, the body
 * ended), a last line `{"truncated":…}` (cut by the limit or missing damaged days: reported on
 * `summary`), or a body cut off mid-way, which throws instead of passing for a short answer.
 */
import { ClientErrorCode } from '../errors.js';
import { TickcastClientError } from './client-error.js';
import { parseMode } from './instruments.js';
import type { HistoryOptions, HistoryStream, HistorySummary, HistoryTick, LtpTick, Mode, TimeInput } from './types.js';

/** What `history()` needs of the client: where, with which key, how long to wait for headers. */
export interface HistoryEndpoint {
  /** The gateway's HTTP base (`http://host:port`, or the `httpUrl` option), without a trailing slash. */
  baseUrl: string;
  apiKey: string;
  /** The response's headers must arrive within this long. */
  headersTimeoutMs: number;
}

function invalid(message: string): TickcastClientError {
  return new TickcastClientError(ClientErrorCode.INVALID_ARGUMENT, message);
}

/** `ws://host:port/…` → `http://host:port`, `wss://` → `https://`. */
export function httpBaseOf(wsUrl: string): string {
  const url = new URL(wsUrl);
  const protocol = url.protocol.toLowerCase() === 'wss:' ? 'https:' : 'http:';
  return `${protocol}//${url.host}`;
}

/** A `from`/`to` as the gateway's query parameter: epoch ms, or the ISO 8601 text as given. */
export function timeParam(name: string, value: TimeInput): string {
  if (value instanceof Date) {
    const ms = value.getTime();
    if (!Number.isFinite(ms)) throw invalid(`${name} is an invalid Date`);
    if (ms < 0) throw invalid(`${name} must not be before 1970`);
    return String(ms);
  }
  if (typeof value === 'number') {
    if (!Number.isSafeInteger(value) || value < 0) throw invalid(`${name} must be whole epoch milliseconds (≥ 0), got ${String(value)}`);
    return String(value);
  }
  if (typeof value === 'string' && value.trim() !== '') return value.trim();
  throw invalid(`${name} must be a Date, epoch milliseconds or an ISO 8601 string, got ${JSON.stringify(value)}`);
}

/** The `/api/ticks` URL of a query; bad arguments throw INVALID_ARGUMENT. */
export function historyUrl(baseUrl: string, options: HistoryOptions): string {
  if (options === null || typeof options !== 'object') throw invalid('history() takes { exchange, symbol, from, to, mode?, limit? }');
  const { exchange, symbol, limit } = options;
  if (typeof exchange !== 'string' || exchange === '') throw invalid('exchange must be a non-empty string');
  if (typeof symbol !== 'string' || symbol === '') throw invalid('symbol must be a non-empty string');
  const params = new URLSearchParams({ exchange, symbol, from: timeParam('from', options.from), to: timeParam('to', options.to) });
  if (options.mode !== undefined) params.set('mode', String(parseMode(options.mode)));
  params.set('format', 'jsonl');
  if (limit !== undefined) {
    if (!Number.isSafeInteger(limit) || limit < 1) throw invalid(`limit must be a whole number ≥ 1, got ${String(limit)}`);
    params.set('limit', String(limit));
  }
  return `${baseUrl}/api/ticks?${params}`;
}

/**
 * Splits text arriving in pieces into lines (without their `\n`). `push` returns the lines the
 * piece completed; `rest` is the unfinished line.
 */
export class LineSplitter {
  private pending = '';

  push(text: string): string[] {
    const lines: string[] = [];
    let start = 0;
    let end = text.indexOf('\n');
    if (end === -1) {
      this.pending += text;
      return lines;
    }
    lines.push(this.pending + text.slice(0, end));
    this.pending = '';
    start = end + 1;
    while ((end = text.indexOf('\n', start)) !== -1) {
      lines.push(text.slice(start, end));
      start = end + 1;
    }
    this.pending = text.slice(start);
    return lines;
  }

  get rest(): string {
    return this.pending;
  }
}

/** One jsonl line: a tick, or the last line saying how the answer ended. */
export type HistoryLine<T extends LtpTick = LtpTick> =
  | { kind: 'tick'; tick: HistoryTick<T> }
  | { kind: 'end'; truncated: boolean; limit: number | undefined; damagedDays: string[] };

const MODES: readonly number[] = [1, 2, 3];

/** A line of the answer, read; a line that is neither a tick nor an end line throws PROTOCOL_ERROR. */
export function readHistoryLine<T extends LtpTick = LtpTick>(line: string): HistoryLine<T> {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    throw malformed(line);
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw malformed(line);
  const record = value as Record<string, unknown>;
  if ('ts' in record) {
    const { ts, exchange_ts: exchangeTs, exchange, symbol, mode, data } = record;
    if (
      typeof ts !== 'number' ||
      !(exchangeTs === null || exchangeTs === undefined || typeof exchangeTs === 'number') ||
      typeof exchange !== 'string' ||
      typeof symbol !== 'string' ||
      !MODES.includes(mode as number) ||
      data === null ||
      typeof data !== 'object'
    ) {
      throw malformed(line);
    }
    return { kind: 'tick', tick: { exchange, symbol, mode: mode as Mode, data: data as T, receivedAt: ts, exchangeTs: exchangeTs ?? null } };
  }
  if (typeof record.truncated !== 'boolean') throw malformed(line);
  const damaged = record.damaged_days;
  if (damaged !== undefined && !(Array.isArray(damaged) && damaged.every((day) => typeof day === 'string'))) throw malformed(line);
  return { kind: 'end', truncated: record.truncated, limit: typeof record.limit === 'number' ? record.limit : undefined, damagedDays: (damaged as string[] | undefined) ?? [] };
}

function malformed(line: string): TickcastClientError {
  return new TickcastClientError(ClientErrorCode.PROTOCOL_ERROR, `a line of the history answer is not a tick nor its end: ${line.slice(0, 200)}`);
}

/** The HTTP error an answer with a 4xx/5xx status becomes: the gateway's code and message when it sent them. */
async function httpError(response: Response): Promise<TickcastClientError> {
  let text = '';
  try {
    text = await response.text();
  } catch {
    // The status alone then.
  }
  try {
    const body = JSON.parse(text) as { code?: unknown; message?: unknown };
    if (typeof body.code === 'string' && typeof body.message === 'string') return new TickcastClientError(body.code, body.message);
  } catch {
    // Not the gateway's JSON error (a proxy's page, say).
  }
  const detail = text.trim().slice(0, 200);
  return new TickcastClientError(ClientErrorCode.PROTOCOL_ERROR, `GET /api/ticks answered HTTP ${response.status}${detail ? `: ${detail}` : ''}`);
}

function cutOff(count: number, why: string): TickcastClientError {
  return new TickcastClientError(ClientErrorCode.CONNECTION_LOST, `the history answer was cut off after ${count} ticks (${why}); it is incomplete`);
}

/**
 * The iterable `client.history()` returns. The request goes out when iteration starts; it can
 * be iterated once. `summary` is set once the iteration reached the answer's end.
 */
export class HistoryAnswer<T extends LtpTick = LtpTick> implements HistoryStream<T> {
  private summaryValue: HistorySummary | undefined;
  private started = false;

  constructor(
    private readonly endpoint: HistoryEndpoint,
    private readonly url: string,
    /** Called with the read's AbortController when it starts (`close()` aborts it); returns the untracking. */
    private readonly track: (abort: AbortController) => () => void,
  ) {}

  get summary(): HistorySummary | undefined {
    return this.summaryValue;
  }

  [Symbol.asyncIterator](): AsyncIterator<HistoryTick<T>> {
    if (this.started) throw invalid('a history answer can be iterated once; call client.history() again for another read');
    this.started = true;
    return this.ticks();
  }

  private async *ticks(): AsyncGenerator<HistoryTick<T>> {
    const abort = new AbortController();
    const untrack = this.track(abort);
    let count = 0;
    try {
      const response = await this.request(abort);
      const history = response.headers.get('x-tickcast-history');
      const feed = response.headers.get('x-tickcast-feed') ?? undefined;
      const limitHeader = Number(response.headers.get('x-tickcast-limit'));
      const limit = Number.isSafeInteger(limitHeader) && limitHeader > 0 ? limitHeader : undefined;
      const contentType = response.headers.get('content-type') ?? '';
      if (!/ndjson/i.test(contentType)) {
        await response.body?.cancel().catch(() => {});
        throw new TickcastClientError(ClientErrorCode.PROTOCOL_ERROR, `GET /api/ticks answered ${contentType || 'no content type'}, not jsonl: is this a tickcast gateway?`);
      }
      const body = response.body;
      let end: Extract<HistoryLine, { kind: 'end' }> | undefined;
      if (body) {
        const reader = body.getReader();
        const decoder = new TextDecoder();
        const lines = new LineSplitter();
        try {
          for (;;) {
            const chunk = await reader.read().catch((error: unknown) => {
              throw abort.signal.aborted ? closed() : cutOff(count, describe(error));
            });
            const text = chunk.done ? decoder.decode() : decoder.decode(chunk.value, { stream: true });
            for (const line of lines.push(text)) {
              if (line === '') continue;
              if (end) throw new TickcastClientError(ClientErrorCode.PROTOCOL_ERROR, `the history answer went on after its last line: ${line.slice(0, 200)}`);
              const read = readHistoryLine<T>(line);
              if (read.kind === 'end') {
                end = read;
                continue;
              }
              count++;
              yield read.tick;
            }
            if (chunk.done) break;
          }
        } finally {
          // Stopped early (break, an error): the gateway stops its read when the connection goes.
          reader.cancel().catch(() => {});
          reader.releaseLock();
        }
        if (lines.rest !== '') throw cutOff(count, 'it ended in the middle of a line');
      }
      this.summaryValue = {
        count,
        truncated: end?.truncated ?? false,
        limit: end?.limit ?? limit,
        damagedDays: end?.damagedDays ?? [],
        ...(feed !== undefined ? { feed } : {}),
        ...(history === 'none' || history === 'no-feed' ? { history } : {}),
      };
    } finally {
      untrack();
      abort.abort();
    }
  }

  /** Sends the request; the headers must come within the timeout. 4xx/5xx throw the gateway's error. */
  private async request(abort: AbortController): Promise<Response> {
    const { baseUrl, apiKey, headersTimeoutMs } = this.endpoint;
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      abort.abort();
    }, headersTimeoutMs);
    let response: Response;
    try {
      response = await fetch(this.url, { headers: { 'X-API-Key': apiKey, accept: 'application/x-ndjson' }, signal: abort.signal });
    } catch (error) {
      if (timedOut) throw new TickcastClientError(ClientErrorCode.REQUEST_TIMEOUT, `no answer from ${baseUrl}/api/ticks within ${headersTimeoutMs} ms`);
      if (abort.signal.aborted) throw closed();
      throw new TickcastClientError(ClientErrorCode.CONNECT_FAILED, `GET ${baseUrl}/api/ticks failed: ${describe(error)}`);
    } finally {
      clearTimeout(timer);
    }
    if (!response.ok) throw await httpError(response);
    return response;
  }
}

function closed(): TickcastClientError {
  return new TickcastClientError(ClientErrorCode.CLIENT_CLOSED, 'the client was closed during the history read');
}

/** fetch's errors say "fetch failed" and keep the reason in `cause`. */
function describe(error: unknown): string {
  const { message, cause } = (error ?? {}) as { message?: unknown; cause?: { message?: unknown; code?: unknown } };
  const base = typeof message === 'string' ? message : String(error);
  const why = typeof cause?.message === 'string' ? cause.message : typeof cause?.code === 'string' ? cause.code : '';
  return why ? `${base} (${why})` : base;
}
