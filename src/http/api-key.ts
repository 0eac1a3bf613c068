/**
 * The API key of the HTTP endpoints that want one (`/api/symbols`, `/api/instances`,
 * `/api/ticks`): a valid key in the `X-API-Key` header, checked by the same verifier as WebSocket
 * authentication, failed attempts counted against the caller's address as they are there (a valid
 * key is answered at once; a wrong one past the allowance waits, or gets 429). A key in the URL
 * is not read: URLs end up in logs and browser history.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { isStoreUnreachable } from '../auth/key-verifier.js';
import { ProtocolErrorCode, ProtocolMessage } from '../errors.js';
import { type FailedAuths, verifyLimited } from '../gateway/limits.js';
import type { Identity, KeyVerifier } from '../gateway/request-handler.js';
import { addressKey } from '../gateway/websocket-server.js';
import type { Logger } from '../observability/logger.js';
import { errorBody, sendJson } from './json-reply.js';

export interface ApiKeyCheck {
  verifier: KeyVerifier;
  /** One count per address for the WebSocket and every HTTP endpoint's X-API-Key alike. */
  failedAuths?: FailedAuths;
  logger: Logger;
}

/**
 * Runs `then` with the caller's identity, or answers 401/429 (503 if the key store cannot be
 * reached, 500 if `then` fails before answering). `what` names the endpoint in the log.
 */
export function withApiKey(
  request: IncomingMessage,
  response: ServerResponse,
  { verifier, failedAuths, logger }: ApiKeyCheck,
  what: string,
  then: (identity: Identity) => void | Promise<void>,
): void {
  // Counted as the WebSocket counts it, so both paths share one allowance per client.
  const address = addressKey(request.socket.remoteAddress);
  const key = request.headers['x-api-key'];
  if (typeof key !== 'string' || key === '') {
    sendJson(request, response, 401, errorBody(ProtocolErrorCode.AUTHENTICATION_ERROR, `${ProtocolMessage.API_KEY_REQUIRED} (send it in the X-API-Key header)`));
    return;
  }
  // As on the WebSocket: a valid key is answered at once; only wrong keys wait (limits.ts).
  verifyLimited(failedAuths, address, () => verifier.verify(key))
    .then(async (checked) => {
      if (checked.refusedForMs !== undefined) {
        const seconds = Math.ceil(checked.refusedForMs / 1000);
        response.setHeader('retry-after', String(seconds));
        sendJson(request, response, 429, errorBody(ProtocolErrorCode.LIMIT_EXCEEDED, `Too many failed authentications; retry in ${seconds} s`));
        return;
      }
      if (!checked.identity) {
        sendJson(request, response, 401, errorBody(ProtocolErrorCode.AUTHENTICATION_ERROR, ProtocolMessage.INVALID_API_KEY));
        return;
      }
      await then(checked.identity);
    })
    .catch((err: Error) => {
      logger.error({ err: err.message, path: request.url }, `${what} request failed`);
      if (response.headersSent) return;
      // The key store is down: a 503 the caller may retry, without naming the database.
      if (isStoreUnreachable(err)) sendJson(request, response, 503, errorBody(ProtocolErrorCode.AUTHENTICATION_ERROR, ProtocolMessage.KEY_STORE_UNAVAILABLE));
      else sendJson(request, response, 500, errorBody(ProtocolErrorCode.SERVER_ERROR, err.message));
    });
}
