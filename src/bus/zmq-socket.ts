/** What every ZeroMQ socket of tickcast shares: binding with clear errors, and fair receive loops. */
import type * as zmq from 'zeromq';
import { ErrorCode, TickcastError } from '../errors.js';

/**
 * zeromq.js resolves receive and send promises as microtasks while messages are ready, so a busy
 * loop would never let the event loop run timers or socket I/O. After this many messages in a
 * row, each loop yields a full event-loop turn.
 */
export const BURST = 256;
export const yieldToEventLoop = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/**
 * Binds `endpoint` (`tcp://host:0` = any free port, which ZeroMQ spells `*`), or closes the
 * socket and throws TickcastError PORT_IN_USE / BUS_BIND_FAILED naming what (`bus`, `control`)
 * could not be bound. Returns the endpoint actually bound.
 */
export async function bindSocket(socket: zmq.Socket, endpoint: string, what: string): Promise<string> {
  try {
    await socket.bind(endpoint.startsWith('tcp://') ? endpoint.replace(/:0$/, ':*') : endpoint);
  } catch (error) {
    socket.close();
    const cause = (error as Error).message;
    const code = /in use/i.test(cause) ? ErrorCode.PORT_IN_USE : ErrorCode.BUS_BIND_FAILED;
    throw new TickcastError(code, `cannot bind the ${what} endpoint ${endpoint}: ${cause}`);
  }
  return socket.lastEndpoint ?? endpoint;
}
