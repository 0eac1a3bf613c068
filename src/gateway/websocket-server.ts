/**
 * The client listener: an HTTP server whose upgrades become WebSocket sessions. Owns what is
 * per connection but not protocol: frame-size limits, the auth grace timer, protocol-level
 * keepalive, and closing. Requests are handed on, one at a time per session, in order.
 *
 * Per-connection memory is what limits how many clients a gateway holds, so the listener makes
 * nothing per connection it can share: one set of event handlers for every socket (the socket
 * knows its session), one outbox configuration, one sweep timer instead of one timer each.
 */
import { type IncomingMessage, type Server, type ServerResponse, createServer } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { WebSocket, WebSocketServer, type RawData } from 'ws';
import type { Clock } from '../clock.js';
import { CloseCode, CloseReason, ErrorCode, ProtocolErrorCode, TickcastError } from '../errors.js';
import type { Logger } from '../observability/logger.js';
import type { Extensions, WireEncoder } from '../protocol/encoding.js';
import { errorReply } from '../protocol/replies.js';
import { type JsonObject, decodeFrame } from '../protocol/requests.js';
import { Corker } from './corker.js';
import type { OutboxOptions } from './outbox.js';
import { Session } from './session.js';

export interface ClientListenerOptions {
  host: string;
  /** 0 = any free port. */
  port: number;
  /** Larger frames get MESSAGE_TOO_LARGE; the connection stays open. */
  maxMessageBytes: number;
  /** Larger frames close the connection with 1009 (they are never buffered whole). */
  maxFrameBytes: number;
  /** Unsent bytes per client past which its market data is conflated (see outbox.ts). */
  maxBufferedBytes: number;
  /** A congested client that drains nothing for this long is closed with 4408. */
  slowConsumerMs: number;
  authGraceMs: number;
  /** 0 disables protocol pings. */
  pingIntervalMs: number;
  pingTimeoutMs: number;
  /** Browser origins allowed to connect (`https://app.example.com`); empty or absent: any. */
  allowedOrigins?: readonly string[];
  /** PEM certificate and key: serve wss:// (and https://) instead of ws://. */
  tls?: { cert: Buffer; key: Buffer };
  /** Connections at most, and not-yet-authenticated ones at most: more are refused with HTTP 503. */
  maxConnections?: number;
  maxPendingAuth?: number;
  /** Requests waiting behind a slow one before further requests are refused. */
  maxPendingRequests?: number;
  clock: Clock;
  logger: Logger;
  encoder: WireEncoder;
  /** Wire extensions of a session that negotiates none. */
  defaultExtensions: Extensions;
  onRequest(session: Session, request: JsonObject): Promise<void>;
  /** Plain HTTP requests on the same port (metrics, health); false = not found. */
  onHttp?(request: IncomingMessage, response: ServerResponse): boolean;
  onClose(session: Session): void;
}

/** The chain a session's first request (and the first after an idle spell) starts from. */
const IDLE: Promise<void> = Promise.resolve();

/** How long a closed slow consumer has to read up to its close frame before it is cut off. */
const SLOW_CONSUMER_CLOSE_MS = 5000;

/** ws's WebSocket with its session, so one set of event handlers serves every connection. */
class ClientSocket extends WebSocket {
  session: Session | undefined;
}

const sessionOf = (socket: WebSocket): Session => (socket as ClientSocket).session!;

/** The listener's handlers; ws calls them with the emitting socket as `this`. */
interface SocketHandlers {
  message(this: WebSocket, data: RawData): void;
  pong(this: WebSocket): void;
  error(this: WebSocket, error: Error): void;
  close(this: WebSocket, code: number): void;
}

export class ClientListener {
  readonly sessions = new Set<Session>();
  /** Totals of closed sessions, so metrics keep counting after clients leave. */
  readonly closedTotals = { sent: 0, conflated: 0, dropped: 0, slowConsumersClosed: 0 };
  private readonly http: Server;
  private readonly wss: WebSocketServer;
  private readonly corker = new Corker();
  private readonly outbox: OutboxOptions;
  private readonly handlers: SocketHandlers;
  private sweepTimer: NodeJS.Timeout | undefined;
  private nextId = 1;
  private boundPort = 0;

  constructor(private readonly options: ClientListenerOptions) {
    this.outbox = { budgetBytes: options.maxBufferedBytes, slowConsumerMs: options.slowConsumerMs, clock: options.clock };
    this.handlers = this.socketHandlers();
    const respond = (req: IncomingMessage, res: ServerResponse): void => {
      if (options.onHttp?.(req, res)) return;
      res.writeHead(426, { 'content-type': 'text/plain' }).end('tickcast: connect with a WebSocket client\n');
    };
    this.http = options.tls ? createHttpsServer({ cert: options.tls.cert, key: options.tls.key }, respond) : createServer(respond);
    this.wss = new WebSocketServer({
      server: this.http,
      maxPayload: options.maxFrameBytes,
      perMessageDeflate: false,
      clientTracking: false,
      WebSocket: ClientSocket,
      verifyClient: (info, done) => {
        const { allowedOrigins } = this.options;
        // Browsers always send Origin; other clients (SDKs, scripts) usually do not and are let in.
        if (allowedOrigins && allowedOrigins.length > 0 && info.origin && !allowedOrigins.includes(info.origin)) {
          this.refused++;
          done(false, 403, 'Origin not allowed');
          return;
        }
        const refusal = this.refusal();
        if (refusal) {
          this.refused++;
          done(false, 503, refusal);
        } else {
          done(true);
        }
      },
    });
    this.wss.on('connection', (socket, request) => this.accept(socket as ClientSocket, request));
    // ws re-emits the HTTP server's errors; listen() reports those (e.g. a port in use).
    this.wss.on('error', () => {});
  }

  /** Handshakes refused by the connection limits. */
  refused = 0;

  /** Why a new connection cannot be taken now, if it cannot. */
  private refusal(): string | undefined {
    const { maxConnections = Infinity, maxPendingAuth = Infinity } = this.options;
    if (this.sessions.size >= maxConnections) return `Too many connections (limit ${maxConnections})`;
    let pending = 0;
    for (const session of this.sessions) if (!session.authenticated) pending++;
    if (pending >= maxPendingAuth) return `Too many unauthenticated connections (limit ${maxPendingAuth})`;
    return undefined;
  }

  get port(): number {
    return this.boundPort;
  }

  listen(): Promise<number> {
    const { host, port } = this.options;
    return new Promise((resolve, reject) => {
      const onError = (error: NodeJS.ErrnoException): void => {
        const reason =
          error.code === 'EADDRINUSE'
            ? new TickcastError(ErrorCode.PORT_IN_USE, `WEBSOCKET_PORT ${port} on ${host} is already in use`)
            : new TickcastError(ErrorCode.CONFIG_INVALID, `cannot listen on ${host}:${port}: ${error.message}`);
        reject(reason);
      };
      this.http.once('error', onError);
      this.http.listen(port, host, () => {
        this.http.off('error', onError);
        this.boundPort = (this.http.address() as AddressInfo).port;
        this.startSweep();
        resolve(this.boundPort);
      });
    });
  }

  private accept(socket: ClientSocket, request: IncomingMessage): void {
    const { options } = this;
    const session = new Session(
      this.nextId++,
      socket,
      request.socket.remoteAddress ?? '',
      this.outbox,
      this.corker,
      options.encoder,
      options.defaultExtensions,
    );
    socket.session = session;
    this.sessions.add(session);
    session.authGrace = setTimeout(() => {
      if (!session.authenticated && !session.closed) socket.close(CloseCode.AUTH_TIMEOUT, CloseReason[CloseCode.AUTH_TIMEOUT]);
    }, options.authGraceMs);
    session.authGrace.unref();

    const { handlers } = this;
    socket.on('message', handlers.message);
    socket.on('pong', handlers.pong);
    socket.on('error', handlers.error);
    socket.on('close', handlers.close);
    options.logger.debug({ session: session.id, remote: session.remoteAddress }, 'client connected');
  }

  private socketHandlers(): SocketHandlers {
    const listener = this;
    const { clock, logger } = this.options;
    return {
      message(data) {
        listener.receive(sessionOf(this), data);
      },
      pong() {
        const session = sessionOf(this);
        // Only the answer to our ping shows the client is there: an unsolicited pong proves nothing.
        if (session.pingSentAt === 0) return;
        session.pingSentAt = 0;
        session.lastSeenAt = clock.now();
      },
      error(error) {
        logger.debug({ session: sessionOf(this).id, err: error.message }, 'client socket error');
      },
      close(code) {
        listener.closed(sessionOf(this), code);
      },
    };
  }

  private closed(session: Session, code: number): void {
    clearTimeout(session.authGrace);
    session.authGrace = undefined;
    session.closed = true;
    session.outbox.discard();
    this.closedTotals.sent += session.outbox.sent;
    this.closedTotals.conflated += session.outbox.conflated;
    this.closedTotals.dropped += session.outbox.dropped;
    this.sessions.delete(session);
    this.options.logger.debug({ session: session.id, code }, 'client disconnected');
    this.options.onClose(session);
  }

  private receive(session: Session, data: RawData): void {
    const frame = Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data as ArrayBuffer);
    if (frame.length > this.options.maxMessageBytes) {
      session.reply(errorReply({ code: ProtocolErrorCode.MESSAGE_TOO_LARGE, message: `Message of ${frame.length} bytes exceeds the limit of ${this.options.maxMessageBytes} bytes` }));
      return;
    }
    const decoded = decodeFrame(frame);
    if (!decoded.ok) {
      session.reply(errorReply(decoded.error));
      return;
    }
    const limit = this.options.maxPendingRequests ?? 256;
    if (session.pendingCount >= limit) {
      session.reply(errorReply({ code: ProtocolErrorCode.LIMIT_EXCEEDED, message: `Too many requests in flight (limit ${limit}); wait for replies before sending more` }));
      return;
    }
    session.pendingCount++;
    session.pending = (session.pending ?? IDLE)
      .then(() => (session.closed ? undefined : this.options.onRequest(session, decoded.value)))
      .catch((error: Error) => {
        this.options.logger.error({ session: session.id, err: error.message }, 'request handler failed');
        session.reply(errorReply({ code: ProtocolErrorCode.SERVER_ERROR, message: error.message }));
      })
      .finally(() => {
        // The last request in flight settled: nothing to wait for, so keep no chain.
        if (--session.pendingCount === 0) session.pending = undefined;
      });
  }

  /**
   * One sweep timer for all sessions: pings idle ones, drops those whose pong is overdue, and
   * closes slow consumers (4408).
   */
  private startSweep(): void {
    const { pingIntervalMs, pingTimeoutMs, slowConsumerMs, clock } = this.options;
    const candidates = [1000, slowConsumerMs / 4];
    if (pingIntervalMs > 0) candidates.push(pingIntervalMs / 4, pingTimeoutMs / 4);
    this.sweepTimer = setInterval(() => {
      const now = clock.now();
      for (const session of this.sessions) {
        if (session.socket.readyState === session.socket.OPEN && session.outbox.isSlowConsumer()) {
          this.options.logger.info({ session: session.id, backlog: session.outbox.backlog }, 'closing a slow consumer');
          this.closedTotals.slowConsumersClosed++;
          // The close frame queues behind what the client has not read; cut it off if it never does.
          session.socket.close(CloseCode.SLOW_CONSUMER, CloseReason[CloseCode.SLOW_CONSUMER]);
          setTimeout(() => session.socket.terminate(), SLOW_CONSUMER_CLOSE_MS).unref();
          continue;
        }
        if (pingIntervalMs <= 0) continue;
        if (session.pingSentAt !== 0) {
          if (now - session.pingSentAt >= pingTimeoutMs) {
            this.options.logger.info({ session: session.id }, 'closing a client that did not answer a ping');
            session.socket.terminate();
          }
        } else if (now - session.lastSeenAt >= pingIntervalMs) {
          session.pingSentAt = now;
          session.socket.ping();
        }
      }
    }, Math.max(10, Math.min(...candidates)));
    this.sweepTimer.unref();
  }

  /** Stops accepting, closes every client with `code`, and waits for the listener to close. */
  async close(code: number = CloseCode.GOING_AWAY): Promise<void> {
    clearInterval(this.sweepTimer);
    for (const session of this.sessions) session.socket.close(code, CloseReason[code]);
    const closing = new Promise<void>((resolve) => this.http.close(() => resolve()));
    // Clients that do not complete the closing handshake promptly are cut off.
    const cutoff = setTimeout(() => {
      for (const session of this.sessions) session.socket.terminate();
    }, 2000);
    cutoff.unref();
    this.wss.close();
    this.http.closeIdleConnections();
    await closing;
    clearTimeout(cutoff);
  }
}
