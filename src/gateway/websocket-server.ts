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
import { type AddressInfo, type Socket, isIPv6 } from 'node:net';
import type { TLSSocket } from 'node:tls';
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

/**
 * Each address may hold this share of the pending-authentication budget (at least the floor, at
 * most the whole budget), so one address filling its share leaves the rest to everyone else.
 */
const PENDING_AUTH_SHARE = 1 / 10;
const PENDING_AUTH_FLOOR = 16;

/**
 * TCP connections that have not sent a complete request (a WebSocket upgrade or plain HTTP) yet:
 * at most this many per address and in all, each closed after UNUPGRADED_IDLE_MS. Without these,
 * sockets that send nothing cost a file descriptor each until Node's own header timeout (60 s+).
 */
const MAX_UNUPGRADED_PER_ADDRESS = 64;
const MAX_UNUPGRADED = 1024;
const UNUPGRADED_IDLE_MS = 10_000;

/** The per-address share of a pending-authentication budget. */
function pendingAuthShare(maxPendingAuth: number): number {
  return Math.min(maxPendingAuth, Math.max(PENDING_AUTH_FLOOR, Math.ceil(maxPendingAuth * PENDING_AUTH_SHARE)));
}

/**
 * One key per client, for every per-address count: an IPv4 client seen through a dual-stack
 * socket counts as itself, and an IPv6 client as its /64, the smallest block a host is usually
 * given (one host can pick any address in it). Anything that is not an IP address is its own key.
 */
export function addressKey(address: string | undefined): string {
  if (!address) return '';
  // IPv4 (the common case) needs no parsing.
  if (!address.includes(':')) return address;
  if (!isIPv6(address)) return address;
  const zone = address.indexOf('%');
  const groups = ipv6Groups(zone === -1 ? address : address.slice(0, zone));
  if (groups.slice(0, 5).every((group) => group === 0) && groups[5] === 0xffff) {
    return [groups[6]! >> 8, groups[6]! & 0xff, groups[7]! >> 8, groups[7]! & 0xff].join('.');
  }
  // A link-local prefix is the same on every link: the zone says which link it is.
  return `${formatIPv6([...groups.slice(0, 4), 0, 0, 0, 0])}/64${zone === -1 ? '' : address.slice(zone)}`;
}

/** The eight 16-bit groups of an address isIPv6 accepted (no zone). */
function ipv6Groups(address: string): number[] {
  const parse = (part: string): number[] => {
    if (part === '') return [];
    return part.split(':').flatMap((group) => {
      if (!group.includes('.')) return [parseInt(group, 16)];
      const [a, b, c, d] = group.split('.').map(Number) as [number, number, number, number];
      return [(a << 8) | b, (c << 8) | d];
    });
  };
  const gap = address.indexOf('::');
  if (gap === -1) return parse(address);
  const head = parse(address.slice(0, gap));
  const tail = parse(address.slice(gap + 2));
  return [...head, ...new Array<number>(8 - head.length - tail.length).fill(0), ...tail];
}

/** RFC 5952 text: lowercase, no leading zeros, the longest run of two or more zero groups as `::`. */
function formatIPv6(groups: readonly number[]): string {
  let runStart = -1;
  let runLength = 0;
  for (let i = 0; i < groups.length; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let end = i;
    while (end < groups.length && groups[end] === 0) end++;
    if (end - i > runLength) [runStart, runLength] = [i, end - i];
    i = end;
  }
  const text = (part: readonly number[]): string => part.map((group) => group.toString(16)).join(':');
  if (runLength < 2) return text(groups);
  return `${text(groups.slice(0, runStart))}::${text(groups.slice(runStart + runLength))}`;
}

/** A TCP connection's addresses and ports: the same for a raw socket and the TLS socket over it. */
function connectionOf(socket: Socket): string | undefined {
  const { remoteAddress, remotePort, localAddress, localPort } = socket;
  return remoteAddress === undefined ? undefined : `${remoteAddress}|${remotePort}|${localAddress}|${localPort}`;
}

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
  /** Connections with no complete request yet: their address and when they were accepted. */
  private readonly unupgraded = new Map<Socket, { address: string; at: number }>();
  private readonly unupgradedByAddress = new Map<string, number>();
  /**
   * Over TLS, raw connections still in their handshake, by connectionOf: how the TLS socket a
   * handshake yields finds its entry, Node offering no public link from one to the other.
   */
  private readonly handshaking = new Map<string, Socket>();

  constructor(private readonly options: ClientListenerOptions) {
    this.outbox = { budgetBytes: options.maxBufferedBytes, slowConsumerMs: options.slowConsumerMs, clock: options.clock };
    this.handlers = this.socketHandlers();
    const respond = (req: IncomingMessage, res: ServerResponse): void => {
      if (options.onHttp?.(req, res)) return;
      res.writeHead(426, { 'content-type': 'text/plain' }).end('tickcast: connect with a WebSocket client\n');
    };
    // A TLS handshake that never finishes is dropped as soon as an idle plain connection would be.
    this.http = options.tls
      ? createHttpsServer({ cert: options.tls.cert, key: options.tls.key, handshakeTimeout: UNUPGRADED_IDLE_MS }, respond)
      : createServer(respond);
    // Over TLS a connection is counted from its first TCP packet, not from its finished handshake,
    // or sockets that never start one would escape the caps; the entry then moves to the TLS
    // socket, the one requests arrive on.
    this.http.on('connection', (socket: Socket) => this.admitSocket(socket, options.tls !== undefined));
    if (options.tls) this.http.on('secureConnection', (socket: TLSSocket) => this.secured(socket));
    const served = (request: IncomingMessage): void => this.forgetSocket(request.socket);
    this.http.on('request', served);
    this.http.on('upgrade', served);
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
        const refusal = this.refusal(addressKey(info.req.socket.remoteAddress));
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

  /** Connections closed before their first complete request, for being over the caps or idle. */
  unupgradedClosed = 0;

  /**
   * Why a new connection from `address` cannot be taken now, if it cannot. A session that is
   * closing is no longer pending: it may take up to ws's 30 s closing handshake to go, and must
   * not hold anyone else's place meanwhile.
   */
  private refusal(address: string): string | undefined {
    const { maxConnections = Infinity, maxPendingAuth = Infinity } = this.options;
    if (this.sessions.size >= maxConnections) return `Too many connections (limit ${maxConnections})`;
    const share = pendingAuthShare(maxPendingAuth);
    let pending = 0;
    let fromAddress = 0;
    for (const session of this.sessions) {
      if (session.authenticated || session.socket.readyState !== session.socket.OPEN) continue;
      pending++;
      if (addressKey(session.remoteAddress) === address) fromAddress++;
    }
    if (pending >= maxPendingAuth) return `Too many unauthenticated connections (limit ${maxPendingAuth})`;
    if (fromAddress >= share) return `Too many unauthenticated connections from this address (limit ${share})`;
    return undefined;
  }

  /** A new TCP connection: tracked until its first request, closed at once over the caps. */
  private admitSocket(socket: Socket, tls: boolean): void {
    const address = addressKey(socket.remoteAddress);
    const fromAddress = this.unupgradedByAddress.get(address) ?? 0;
    if (fromAddress >= MAX_UNUPGRADED_PER_ADDRESS || this.unupgraded.size >= MAX_UNUPGRADED) {
      this.unupgradedClosed++;
      this.options.logger.debug({ remote: address }, 'connection closed: too many connections without a request');
      socket.destroy();
      return;
    }
    this.unupgraded.set(socket, { address, at: this.options.clock.now() });
    this.unupgradedByAddress.set(address, fromAddress + 1);
    const connection = tls ? connectionOf(socket) : undefined;
    if (connection !== undefined) this.handshaking.set(connection, socket);
    socket.once('close', () => {
      if (connection !== undefined && this.handshaking.get(connection) === socket) this.handshaking.delete(connection);
      this.forgetSocket(socket);
    });
  }

  /** A TLS handshake finished: the raw connection's entry becomes the TLS socket's, its clock kept. */
  private secured(socket: TLSSocket): void {
    const connection = connectionOf(socket);
    const raw = connection === undefined ? undefined : this.handshaking.get(connection);
    if (!raw) return;
    this.handshaking.delete(connection!);
    const entry = this.unupgraded.get(raw);
    if (!entry) return;
    this.unupgraded.delete(raw);
    this.unupgraded.set(socket, entry);
    socket.once('close', () => this.forgetSocket(socket));
  }

  /** The connection sent a request (or closed): no longer counted as one without a request. */
  private forgetSocket(socket: Socket): void {
    const entry = this.unupgraded.get(socket);
    if (!entry) return;
    this.unupgraded.delete(socket);
    const left = (this.unupgradedByAddress.get(entry.address) ?? 1) - 1;
    if (left > 0) this.unupgradedByAddress.set(entry.address, left);
    else this.unupgradedByAddress.delete(entry.address);
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
    this.startAuthGrace(session);

    const { handlers } = this;
    socket.on('message', handlers.message);
    socket.on('pong', handlers.pong);
    socket.on('error', handlers.error);
    socket.on('close', handlers.close);
    options.logger.debug({ session: session.id, remote: session.remoteAddress }, 'client connected');
  }

  /** Closes the session with 4401 unless it authenticates within the grace period from now. */
  startAuthGrace(session: Session): void {
    clearTimeout(session.authGrace);
    session.authGrace = setTimeout(() => {
      if (!session.authenticated && !session.closed) session.close(CloseCode.AUTH_TIMEOUT);
    }, this.options.authGraceMs);
    session.authGrace.unref();
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
        // Signed out (its key was revoked): it must authenticate again within the grace period.
        if (!session.authenticated && session.authGrace === undefined && !session.closed) this.startAuthGrace(session);
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
      for (const [socket, { at }] of this.unupgraded) {
        if (now - at < UNUPGRADED_IDLE_MS) continue;
        this.unupgradedClosed++;
        socket.destroy();
      }
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
    // Connections that never sent a request are not idle to Node, and would hold close() up.
    for (const socket of this.unupgraded.keys()) socket.destroy();
    await closing;
    clearTimeout(cutoff);
  }
}
