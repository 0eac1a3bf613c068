/**
 * What the history endpoints (`/api/ticks`, `/api/history/streams`) answer when a read fails
 * before any of the answer went out: a store that cannot be reached is the client's to retry
 * (503 HISTORY_UNAVAILABLE with Retry-After); anything else is the gateway's (500, logged).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { ProtocolErrorCode } from '../errors.js';
import { HistoryStoreError } from '../history/store.js';
import { errorBody, sendJson } from './json-reply.js';

/** How long a client is asked to wait before asking again of a store that cannot be reached. */
const UNREACHABLE_RETRY_S = 10;

/** A history read that failed before any answer: 503 when the store is away (try later), else 500 (the log says why). */
export function sendReadFailure(request: IncomingMessage, response: ServerResponse, error: unknown): void {
  if (error instanceof HistoryStoreError && error.fault === 'unreachable') {
    response.setHeader('retry-after', String(UNREACHABLE_RETRY_S));
    sendJson(request, response, 503, errorBody(ProtocolErrorCode.HISTORY_UNAVAILABLE, `The history store cannot be reached; retry in ${UNREACHABLE_RETRY_S} s`));
    return;
  }
  sendJson(request, response, 500, errorBody(ProtocolErrorCode.SERVER_ERROR, 'The history could not be read; the gateway log says why'));
}
