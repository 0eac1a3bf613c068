/**
 * `GET /api/history/streams[?exchange=NSE][&symbol=RELIANCE]`: the recorded streams of the
 * caller's own feed (docs/history.md, "On the dashboard") — the same one feed `/api/ticks` reads
 * for them, so another user's streams, even their names, are never listed — each with its first
 * and last receive time and tick count over the whole store and the ticks per second recorded
 * over the last minute; with the recording state and the days the store holds. Behind an API key
 * in `X-API-Key` (api-key.ts).
 *
 * The store is summed on a thread (history/summaries.ts), one summary at a time per process; a
 * request waits up to `waitMs` for it, then gets 503 HISTORY_BUSY with Retry-After (the summary
 * goes on, and is there for the next request).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { ProtocolErrorCode } from '../errors.js';
import type { Identity } from '../gateway/request-handler.js';
import type { HistoryLocation } from '../history/store.js';
import { HistorySummaries } from '../history/summaries.js';
import type { RecordedStream, StoreSummary } from '../history/summary.js';
import type { Logger } from '../observability/logger.js';
import { MODE_LABEL } from '../protocol/modes.js';
import { type ApiKeyCheck, withApiKey } from './api-key.js';
import { sendReadFailure } from './history-failure.js';
import { type Json, errorBody, sendJson } from './json-reply.js';

const RETRY_AFTER_S = 2;
const MAX_NAME = 64;

/** What the stream list reads: the store `/api/ticks` reads (the one this node or instance records into). */
export interface StreamHistory {
  location: HistoryLocation;
}

/** Makes a summary of the store (a HistorySummaries; tests may give a stand-in). */
export type Summarise = () => Promise<StoreSummary>;

export interface HistoryStreamsOptions {
  /** Absent: no store is configured here; the answer is an empty list saying so. */
  history: StreamHistory | undefined;
  /** The recorded name of the feed that serves this user's clients live, as for `/api/ticks`. */
  feedOf(identity: Identity): Promise<string | undefined>;
  /**
   * The recorder's figures as `/api/status` shows them under `history` (under `--workers`, the
   * primary's), or undefined when this instance or node does not record.
   */
  recording(): Promise<Record<string, unknown> | undefined>;
  apiKey: ApiKeyCheck;
  summarise?: Summarise;
  /** How long a request waits for the summary before HISTORY_BUSY (5 s). */
  waitMs?: number;
  logger: Logger;
}

export type StreamFilter = { exchange?: string; symbol?: string };

/** The optional filters, or why they are wrong. */
export function parseStreamFilter(params: URLSearchParams): { ok: true; value: StreamFilter } | { ok: false; message: string } {
  const value: StreamFilter = {};
  for (const name of ['exchange', 'symbol'] as const) {
    const raw = params.get(name);
    if (raw === null) continue;
    const text = raw.trim();
    if (text === '' || text.length > MAX_NAME) return { ok: false, message: `${name} must be 1 to ${MAX_NAME} characters when given` };
    value[name] = text;
  }
  return { ok: true, value };
}

/** One listed stream as the endpoint answers it. */
export function streamRow(s: RecordedStream): Json {
  return {
    feed: s.feed,
    exchange: s.exchange,
    symbol: s.symbol,
    first: new Date(s.first).toISOString(),
    last: new Date(s.last).toISOString(),
    ticks: s.ticks,
    rate: Math.round(s.rate * 1000) / 1000,
    mode: MODE_LABEL[s.maxMode],
  };
}

/**
 * The answer for one caller: only `feed`'s streams, filtered. Pure: the summary covers every
 * feed, and this is the one place a caller's share is cut from it.
 */
export function streamsAnswer(summary: StoreSummary, feed: string, filter: StreamFilter, recording: Json): Json {
  const same = (a: string, b: string | undefined): boolean => b === undefined || a.toUpperCase() === b.toUpperCase();
  const streams = summary.streams.filter((s) => s.feed === feed && same(s.exchange, filter.exchange) && same(s.symbol, filter.symbol));
  const stored = summary.days.length > 0;
  return {
    status: 'success',
    history: stored ? 'recorded' : 'none',
    ...(stored ? {} : { message: recording.state === 'recording' ? 'Nothing is recorded yet: the selected streams appear once their feeds deliver ticks' : 'The history store holds nothing: recording was never on here, or every day was deleted' }),
    feed,
    recording,
    store: storeFigures(summary),
    as_of: new Date(summary.at).toISOString(),
    rate_window_s: summary.rateWindowMs / 1000,
    ...(summary.damaged.length > 0 ? { damaged_days: summary.damaged.map((d) => d.day) } : {}),
    data: streams.map(streamRow),
  };
}

function storeFigures(summary: StoreSummary): Json {
  const { days } = summary;
  return {
    days: days.length,
    bytes: days.reduce((sum, d) => sum + d.bytes, 0),
    ...(days.length > 0 ? { oldest: days[0]!.day, newest: days.at(-1)!.day } : {}),
  };
}

/** The recording state for the answer: the recorder's state, reason and selection, or off. */
function recordingOf(history: Record<string, unknown> | undefined): Json {
  if (!history) return { state: 'off' };
  const { state, reason, record } = history;
  return { state, ...(reason !== undefined ? { reason } : {}), ...(record !== undefined ? { record } : {}) };
}

export class HistoryStreamsRoute {
  private readonly summarise: Summarise | undefined;

  constructor(private readonly options: HistoryStreamsOptions) {
    const { history } = options;
    if (options.summarise) this.summarise = options.summarise;
    else if (history) {
      const summaries = new HistorySummaries({ location: history.location });
      this.summarise = () => summaries.summarise();
    }
  }

  handle(request: IncomingMessage, response: ServerResponse): void {
    const params = new URL(request.url ?? '/', 'http://gateway').searchParams;
    withApiKey(request, response, this.options.apiKey, 'history streams', async (identity) => {
      const filter = parseStreamFilter(params);
      if (!filter.ok) {
        sendJson(request, response, 400, errorBody(ProtocolErrorCode.INVALID_PARAMETERS, filter.message));
        return;
      }
      const [feed, recording] = await Promise.all([this.options.feedOf(identity), this.recording()]);
      if (response.destroyed) return;
      const empty = (history: string, message: string): void =>
        sendJson(request, response, 200, { status: 'success', history, message, ...(feed !== undefined ? { feed } : {}), recording, data: [] });
      if (!this.summarise) return empty('none', 'No history store is configured here');
      if (feed === undefined) return empty('no-feed', 'No feed serves your broker here, so nothing of yours is recorded');
      let summary: StoreSummary | undefined;
      try {
        summary = await this.withinWait(this.summarise());
      } catch (error) {
        this.options.logger.error({ err: (error as Error).message }, 'the recorded streams could not be summed');
        sendReadFailure(request, response, error);
        return;
      }
      if (response.destroyed) return;
      if (summary === undefined) {
        response.setHeader('retry-after', String(RETRY_AFTER_S));
        sendJson(request, response, 503, errorBody(ProtocolErrorCode.HISTORY_BUSY, `The recorded streams are still being summed; retry in ${RETRY_AFTER_S} s`));
        return;
      }
      sendJson(request, response, 200, streamsAnswer(summary, feed, filter.value, recording));
    });
  }

  private async recording(): Promise<Json> {
    try {
      return recordingOf(await this.options.recording());
    } catch (error) {
      // The figures are a courtesy here: the list is answered without them.
      this.options.logger.debug({ err: (error as Error).message }, 'the recording state is unavailable for the stream list');
      return { state: 'unknown' };
    }
  }

  /** The summary, or undefined if it takes longer than the wait. */
  private withinWait(summary: Promise<StoreSummary>): Promise<StoreSummary | undefined> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => resolve(undefined), this.options.waitMs ?? 5000);
      summary.then(
        (value) => {
          clearTimeout(timer);
          resolve(value);
        },
        (error: Error) => {
          clearTimeout(timer);
          reject(error);
        },
      );
    });
  }
}
