/** JSON answers of the HTTP routes; errors in the protocol's envelope `{"status":"error","code","message"}`. */
import type { IncomingMessage, ServerResponse } from 'node:http';

export type Json = Record<string, unknown>;

export function errorBody(code: string, message: string): Json {
  return { status: 'error', code, message };
}

export function sendJson(request: IncomingMessage, response: ServerResponse, status: number, body: Json): void {
  const text = JSON.stringify(body);
  response.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
    'cache-control': 'no-store',
    'x-content-type-options': 'nosniff',
  });
  response.end(request.method === 'HEAD' ? undefined : text);
}
