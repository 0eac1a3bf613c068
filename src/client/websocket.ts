/**
 * Finds a WebSocket implementation without importing a Node-only module at load time: the one
 * the application passed, else the global `WebSocket` (browsers, Node ≥ 22), else the `ws`
 * package through a dynamic import (Node 20 has no global WebSocket).
 */
import { ClientErrorCode } from '../errors.js';
import { TickcastClientError } from './client-error.js';
import type { WebSocketConstructor } from './types.js';

// Kept in a variable so bundlers for the browser leave the import alone.
const WS_PACKAGE = 'ws';

export async function resolveWebSocket(given: WebSocketConstructor | undefined): Promise<WebSocketConstructor> {
  if (given) return given;
  const global = (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
  if (typeof global === 'function') return global;
  try {
    const module = (await import(WS_PACKAGE)) as { WebSocket?: WebSocketConstructor; default?: WebSocketConstructor };
    const constructor = module.WebSocket ?? module.default;
    if (typeof constructor === 'function') return constructor;
  } catch {
    // Reported below.
  }
  throw new TickcastClientError(
    ClientErrorCode.NO_WEBSOCKET,
    'no WebSocket implementation: this runtime has no global WebSocket and the "ws" package could not be loaded; install ws or pass options.WebSocket',
  );
}
