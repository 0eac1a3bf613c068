/**
 * One WebSocket connection to the gateway: opening it, sending requests and matching replies,
 * and handing pushed messages (market data, feed status) on. The gateway answers a connection's
 * requests in order, one reply each, so replies are matched first-in first-out; only errors lack
 * a `request_id`, which is why ids are not used. A link ends once, reporting why; the client then
 * decides whether to reconnect with a new link.
 */
import { ClientErrorCode } from '../errors.js';
import { TickcastClientError } from './client-error.js';
import { type WireMessage, decodeFrame, isPush } from './messages.js';
import type { WebSocketConstructor, WebSocketLike } from './types.js';

export interface LinkHandlers {
  push(message: WireMessage): void;
  /** The link ended (the gateway closed it, the network dropped it, or `close()` was called). */
  ended(code: number, reason: string): void;
  problem(error: TickcastClientError): void;
}

interface PendingRequest {
  resolve(reply: WireMessage): void;
  reject(error: TickcastClientError): void;
  timer: ReturnType<typeof setTimeout>;
}

/** Close code for a connection dropped without a close frame (RFC 6455). */
const ABNORMAL_CLOSURE = 1006;
/** Application close code sent when the client gives up on an unresponsive connection. */
const UNRESPONSIVE = 4000;
const OPEN = 1;
const CLOSED = 3;

function describeEvent(event: unknown): string {
  if (event && typeof event === 'object') {
    const e = event as { message?: unknown; error?: { message?: unknown } };
    if (typeof e.message === 'string' && e.message) return e.message;
    if (e.error && typeof e.error.message === 'string') return e.error.message;
  }
  return '';
}

export class Link {
  private readonly pending: PendingRequest[] = [];
  private ended = false;
  private socketClosed!: () => void;
  /** Resolves once the socket itself has closed (after `ended`, which is reported at once). */
  readonly closed = new Promise<void>((resolve) => (this.socketClosed = resolve));

  private constructor(
    private readonly socket: WebSocketLike,
    private readonly handlers: LinkHandlers,
  ) {}

  /** Opens a WebSocket to `url`; rejects with CONNECT_FAILED if it does not open within `timeoutMs`. */
  static open(WebSocketImpl: WebSocketConstructor, url: string, timeoutMs: number, handlers: LinkHandlers): Promise<Link> {
    return new Promise((resolve, reject) => {
      let socket: WebSocketLike;
      try {
        socket = new WebSocketImpl(url);
      } catch (error) {
        reject(new TickcastClientError(ClientErrorCode.CONNECT_FAILED, `cannot connect to ${url}: ${(error as Error).message}`));
        return;
      }
      socket.binaryType = 'arraybuffer';
      let lastError = '';
      const fail = (why: string): void => {
        clearTimeout(timer);
        socket.onopen = socket.onclose = socket.onmessage = null;
        socket.onerror = () => {};
        try {
          socket.close();
        } catch {
          // Already closing.
        }
        reject(new TickcastClientError(ClientErrorCode.CONNECT_FAILED, `cannot connect to ${url}: ${why}`));
      };
      const timer = setTimeout(() => fail(`no connection within ${timeoutMs} ms`), timeoutMs);
      socket.onerror = (event: unknown) => (lastError = describeEvent(event) || lastError);
      socket.onclose = (event: { code?: number; reason?: string }) =>
        fail(lastError || `closed (code ${event?.code ?? ABNORMAL_CLOSURE}${event?.reason ? `, ${event.reason}` : ''})`);
      socket.onopen = () => {
        clearTimeout(timer);
        resolve(new Link(socket, handlers).attach());
      };
    });
  }

  private attach(): this {
    this.socket.onmessage = (event: { data: unknown }) => this.receive(event.data);
    this.socket.onclose = (event: { code?: number; reason?: string }) => this.end(event?.code ?? ABNORMAL_CLOSURE, event?.reason ?? '');
    // A listener must stay: `ws` throws on an 'error' event nobody listens to. The close follows.
    this.socket.onerror = () => {};
    return this;
  }

  get isOpen(): boolean {
    return !this.ended && this.socket.readyState === OPEN;
  }

  /** Requests still waiting for their reply. */
  get waiting(): number {
    return this.pending.length;
  }

  /** Sends a request and resolves with its reply. Rejects on timeout (and ends the link) or when the link ends. */
  request(message: WireMessage, timeoutMs: number): Promise<WireMessage> {
    return new Promise((resolve, reject) => {
      if (!this.isOpen) {
        reject(new TickcastClientError(ClientErrorCode.CONNECTION_LOST, 'not connected'));
        return;
      }
      const timer = setTimeout(() => {
        reject(new TickcastClientError(ClientErrorCode.REQUEST_TIMEOUT, `no reply to "${String(message.action)}" within ${timeoutMs} ms`));
        // Replies come in order: one that never came means the connection is unusable.
        this.close(UNRESPONSIVE, 'no reply', true);
      }, timeoutMs);
      this.pending.push({ resolve, reject, timer });
      try {
        this.socket.send(JSON.stringify(message));
      } catch (error) {
        this.close(UNRESPONSIVE, `send failed: ${(error as Error).message}`, true);
      }
    });
  }

  /**
   * Ends the link now. `abandon` drops the socket without waiting for a closing handshake (the
   * peer is presumed dead); either way `ended` is reported at once.
   */
  close(code = 1000, reason = '', abandon = false): void {
    if (this.ended) return;
    const socket = this.socket as WebSocketLike & { terminate?: () => void };
    try {
      if (abandon && typeof socket.terminate === 'function') socket.terminate();
      else socket.close(code, reason);
    } catch {
      // Already closed.
    }
    this.end(code, reason);
  }

  private receive(data: unknown): void {
    if (this.ended) return;
    const decoded = decodeFrame(data);
    if (!decoded.ok) {
      this.handlers.problem(new TickcastClientError(decoded.code, decoded.message));
      return;
    }
    for (const message of decoded.messages) {
      if (this.ended) return;
      if (isPush(message)) {
        this.handlers.push(message);
      } else {
        const request = this.pending.shift();
        if (!request) continue; // an answer nobody waits for (e.g. after a timeout): ignored
        clearTimeout(request.timer);
        request.resolve(message);
      }
    }
  }

  private end(code: number, reason: string): void {
    if (this.ended) return;
    this.ended = true;
    this.socket.onmessage = this.socket.onopen = null;
    this.socket.onerror = () => {};
    if (this.socket.readyState === CLOSED) this.socketClosed();
    else this.socket.onclose = () => this.socketClosed();
    for (const request of this.pending.splice(0)) {
      clearTimeout(request.timer);
      request.reject(new TickcastClientError(ClientErrorCode.CONNECTION_LOST, `connection closed (code ${code}${reason ? `, ${reason}` : ''})`));
    }
    this.handlers.ended(code, reason);
  }
}
