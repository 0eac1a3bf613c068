/**
 * `GET /api/ticks?exchange=NSE&symbol=RELIANCE&from=…&to=…[&mode=…][&format=jsonl|csv][&limit=N]`:
 * one stream's recorded ticks from the history store (docs/history.md, "Ticks over HTTP"), of the
 * caller's own feed only — the one the gateway serves their clients live; no parameter names a
 * feed. Behind an API key in `X-API-Key` (api-key.ts), as the dashboard's endpoints.
 *
 * The read runs on a reader thread (history/reader.ts) and is streamed in chunks, each asked for
 * once the response has taken the last, so neither a large range nor a slow client holds much in
 * memory; a client that goes away stops its read. At most MAX_READS reads run per gateway process;
 * one more gets 503 with Retry-After.
 *
 * Headers go out with the first chunk (or the end), so days found damaged before it are named in
 * `X-Tickcast-Damaged-Days`; how the answer ended (cut by the limit, days damaged later) is in the
 * trailers and, for jsonl, in a last line without `ts` (tick-format.ts `endLine`).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { ProtocolErrorCode } from '../errors.js';
import type { Identity } from '../gateway/request-handler.js';
import { CONTENT_TYPE, endLine, prologue } from '../history/tick-format.js';
import { type ReadEnd, TickReader } from '../history/reader.js';
import type { DayProblem, HistoryLocation } from '../history/store.js';
import type { Logger } from '../observability/logger.js';
import { type ApiKeyCheck, withApiKey } from './api-key.js';
import { sendReadFailure } from './history-failure.js';
import { errorBody, sendJson } from './json-reply.js';
import { type TickQueryLimits, type TickRequest, parseTickQuery } from './tick-query.js';

/** The instance's history store as `/api/ticks` reads it. */
export interface TickHistory extends TickQueryLimits {
  /** Where the history is (the store the recorder of this node or instance writes). */
  location: HistoryLocation;
}

/** Reads one gateway process runs at once; more are refused with 503 and Retry-After. */
export const MAX_READS = 2;
const RETRY_AFTER_S = 1;

export interface TickRoutesOptions {
  /** Absent: no store is configured here; every answer is empty with `X-Tickcast-History: none`. */
  history: TickHistory | undefined;
  /**
   * The recorded name of the feed that serves this user's clients live (`simulator`,
   * `zerodha.alice`, `shared`), or undefined when none does.
   */
  feedOf(identity: Identity): Promise<string | undefined>;
  apiKey: ApiKeyCheck;
  reader?: TickReader;
  now?: () => number;
  logger: Logger;
}

export class TickRoutes {
  private readonly reader: TickReader;

  constructor(private readonly options: TickRoutesOptions) {
    this.reader = options.reader ?? new TickReader({ maxReads: MAX_READS });
  }

  handle(request: IncomingMessage, response: ServerResponse): void {
    const params = new URL(request.url ?? '/', 'http://gateway').searchParams;
    withApiKey(request, response, this.options.apiKey, 'ticks', async (identity) => {
      const { history } = this.options;
      const parsed = parseTickQuery(params, history ?? { maxRangeHours: 24, maxRows: 1_000_000 });
      if (!parsed.ok) {
        sendJson(request, response, 400, errorBody(parsed.code, parsed.message));
        return;
      }
      const query = parsed.value;
      const feed = await this.options.feedOf(identity);
      if (response.destroyed) return;
      const headers: Record<string, string> = {
        'content-type': CONTENT_TYPE[query.format],
        'cache-control': 'no-store',
        'x-content-type-options': 'nosniff',
        'x-tickcast-limit': String(query.limit),
      };
      if (!history) return this.empty(request, response, query, { ...headers, 'x-tickcast-history': 'none' });
      if (feed === undefined) return this.empty(request, response, query, { ...headers, 'x-tickcast-history': 'no-feed' });
      headers['x-tickcast-feed'] = feed;
      // Nothing is recorded ahead of now: an honest empty answer, without a read.
      if (query.from > (this.options.now ?? Date.now)() || request.method === 'HEAD') return this.empty(request, response, query, headers);
      this.stream(request, response, query, feed, history, headers);
    });
  }

  private empty(request: IncomingMessage, response: ServerResponse, query: TickRequest, headers: Record<string, string>): void {
    const body = prologue(query.format);
    response.writeHead(200, { ...headers, 'content-length': String(Buffer.byteLength(body)) });
    response.end(request.method === 'HEAD' ? undefined : body);
  }

  private stream(request: IncomingMessage, response: ServerResponse, query: TickRequest, feed: string, history: TickHistory, headers: Record<string, string>): void {
    const { logger } = this.options;
    const damaged: string[] = [];
    let started = false;
    let finished = false;
    const noteDamage = (problems: DayProblem[]): void => {
      for (const { day, message } of problems) {
        if (damaged.includes(day)) continue;
        damaged.push(day);
        logger.warn({ day, problem: message, feed, exchange: query.exchange, symbol: query.symbol }, 'a day of the history could not be read (wholly); the other days are served');
      }
    };
    const start = (end?: ReadEnd): void => {
      if (started) return;
      started = true;
      response.writeHead(200, {
        ...headers,
        ...(end && !end.stored ? { 'x-tickcast-history': 'none' } : {}),
        ...(damaged.length > 0 ? { 'x-tickcast-damaged-days': damaged.join(',') } : {}),
        trailer: 'X-Tickcast-Rows, X-Tickcast-Truncated, X-Tickcast-Damaged-Days',
      });
      const first = prologue(query.format);
      if (first) response.write(first);
    };
    const read = this.reader.read(
      {
        location: history.location,
        query: { from: query.from, to: query.to, streams: [{ feed, exchange: query.exchange, symbol: query.symbol }], ...(query.mode ? { modes: [query.mode] } : {}) },
        format: query.format,
        limit: query.limit,
      },
      {
        chunk: (text, problems) => {
          noteDamage(problems);
          start();
          if (response.write(text)) read!.more();
          else response.once('drain', () => read!.more());
        },
        end: (end) => {
          finished = true;
          noteDamage(end.damaged);
          start(end);
          if (query.format === 'jsonl') response.write(endLine({ rows: end.rows, truncated: end.truncated, limit: query.limit, damagedDays: damaged }));
          response.addTrailers({
            'x-tickcast-rows': String(end.rows),
            'x-tickcast-truncated': String(end.truncated),
            ...(damaged.length > 0 ? { 'x-tickcast-damaged-days': damaged.join(',') } : {}),
          });
          response.end();
        },
        fail: (error) => {
          finished = true;
          logger.error({ err: error.message, feed, exchange: query.exchange, symbol: query.symbol }, 'a history read failed');
          // Once ticks have gone out, the answer is cut off unfinished, so the client cannot take it for whole.
          if (started) response.destroy(error);
          else sendReadFailure(request, response, error);
        },
      },
    );
    if (!read) {
      response.setHeader('retry-after', String(RETRY_AFTER_S));
      sendJson(request, response, 503, errorBody(ProtocolErrorCode.HISTORY_BUSY, `This gateway is already running its ${MAX_READS} history reads; retry in ${RETRY_AFTER_S} s`));
      return;
    }
    // The client went away (or the gateway is stopping): the read stops too.
    response.once('close', () => {
      if (!finished) read.cancel();
    });
  }
}

