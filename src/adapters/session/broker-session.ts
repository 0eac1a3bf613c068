/**
 * One broker WebSocket and its reconnect loop, whatever the broker: credentials read afresh
 * before every attempt, exponential backoff after a loss, the slow schedule after a refusal, a
 * watchdog that drops a socket silent for `silenceMs`, and a generation count so that an attempt
 * still reading credentials when the session was restarted or closed gives up. What differs
 * between brokers (URL, auth, wording, pings) is the dialect's.
 */
import WebSocket from 'ws';
import type { Clock } from '../../clock.js';
import type { Logger } from '../../observability/logger.js';
import type { BrokerCredentials, CredentialSource } from '../broker.js';
import type { SessionView } from './feed-status.js';
import { type Schedule, lossDelay, refusalDelay } from './schedule.js';
import { type SubscriptionDiff, SubscriptionBook } from './subscriptions.js';

export interface SessionDialect {
  /** The broker as users know it, in messages: `Zerodha`, `Angel`. */
  readonly label: string;
  /** The socket in log lines: `Zerodha ticker`. */
  readonly socketName: string;
  readonly maxFrameBytes: number;
  /** A text keepalive the broker expects (Angel's `ping`). */
  readonly ping?: { everyMs: number; text: string };
  /** WebSocket ping frames to send (a broker that sends no heartbeat of its own, like Upstox). */
  readonly wsPing?: { everyMs: number };
  /** HTTP statuses of the upgrade that mean the credentials are refused; default 401 and 403. */
  readonly refusedStatuses?: readonly number[];
  /** The upgrade request for these credentials, or why they cannot be used. */
  dial(credentials: BrokerCredentials | undefined): { url: string; headers: Record<string, string> } | { missing: string };
  /** The status message for an upgrade answered with a refusal (`refusedStatuses`). */
  refusedUpgrade(status: number, credentials: BrokerCredentials): string;
  /** A close reason (or other broker text) meaning the credentials are refused. */
  isAuthError(text: string): boolean;
  silent(silentForMs: number, silenceMs: number): string;
  lost(reason: string, delayMs: number): string;
}

export interface SessionSettings {
  silenceMs: number;
  connectTimeoutMs: number;
  schedule: Schedule;
}

export interface SessionHost<K, V> {
  frame(session: BrokerSession<K, V>, data: Buffer, isBinary: boolean): void;
  /** The socket opened (before the full resubscription goes out). */
  opened(session: BrokerSession<K, V>): void;
  /** State or message changed. */
  changed(): void;
  /** The broker's messages for a subscription diff: text frames, or binary ones as Buffers. */
  encode(diff: SubscriptionDiff<K, V>): Array<string | Buffer>;
}

type State = SessionView['state'];

/** Upgrade answers that refuse the credentials, unless a dialect says otherwise. */
const DEFAULT_REFUSED_STATUSES: readonly number[] = [401, 403];

/** A graceful close that gets no answer within this long is cut. */
const CLOSE_GRACE_MS = 1000;

export class BrokerSession<K, V> implements SessionView {
  readonly book: SubscriptionBook<K, V>;
  state: State = 'idle';
  /** Why it is not open (for status events). */
  message: string | undefined;
  everOpened = false;
  /** Consecutive failed attempts; drives the backoff. */
  failures = 0;
  /** Subscription messages sent, over every socket. */
  sent = 0;

  private socket: WebSocket | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private readonly liveTimers: NodeJS.Timeout[] = [];
  private lastFrameAt = 0;
  private heard = false;
  /** Set on the current socket when it ends for a reason its close event cannot tell. */
  private ending: { refused: boolean; message: string } | undefined;
  private lastError: string | undefined;
  /** Bumped by start(), restart() and close(): an attempt from an older generation is stale. */
  private generation = 0;
  private readonly logger: Logger;

  constructor(
    readonly id: number,
    private readonly dialect: SessionDialect,
    private readonly settings: SessionSettings,
    private readonly credentials: CredentialSource,
    private readonly clock: Clock,
    logger: Logger,
    private readonly host: SessionHost<K, V>,
    same?: (a: V, b: V) => boolean,
  ) {
    this.book = new SubscriptionBook(same);
    this.logger = logger.child({ connection: id });
  }

  start(): void {
    if (this.state !== 'idle' && this.state !== 'closed') return;
    this.generation += 1;
    this.state = 'connecting';
    void this.connect();
  }

  async close(): Promise<void> {
    this.generation += 1;
    this.state = 'closed';
    this.message = 'stopped';
    this.clearTimers();
    const socket = this.socket;
    this.socket = undefined;
    if (!socket || socket.readyState === WebSocket.CLOSED) return;
    await new Promise<void>((resolve) => {
      const cut = setTimeout(() => socket.terminate(), CLOSE_GRACE_MS);
      socket.once('close', () => {
        clearTimeout(cut);
        resolve();
      });
      if (socket.readyState === WebSocket.OPEN) socket.close(1000, 'closing');
      else socket.terminate();
    });
  }

  /** Sends the broker the difference between what is wanted and what this socket was told. */
  sync(): void {
    const socket = this.socket;
    if (this.state !== 'open' || socket?.readyState !== WebSocket.OPEN) return;
    const diff = this.book.take();
    if (!diff) return;
    const messages = this.host.encode(diff);
    for (const message of messages) {
      socket.send(message, (err) => {
        // The socket is going; its close starts a reconnect, which resubscribes everything.
        if (err) this.logger.debug({ err }, `${this.dialect.socketName} subscription message not sent`);
      });
    }
    this.sent += messages.length;
  }

  /**
   * Connects again now, whatever the state: the current socket is dropped first (so its close
   * schedules nothing, even when the broker is refusing it) and a pending retry cancelled.
   */
  restart(message: string): void {
    if (this.state === 'idle' || this.state === 'closed') return;
    this.generation += 1;
    this.failures = 0;
    this.clearTimers();
    const socket = this.socket;
    this.socket = undefined;
    socket?.terminate();
    // While refused, stay 'down' until the new credentials work (no flapping, as in connect()).
    if (this.state !== 'down') this.setState('connecting', message);
    void this.connect();
  }

  /** The broker refused the credentials on an open socket: end it and wait for new ones. */
  refuse(message: string): void {
    if (!this.socket) return;
    this.ending = { refused: true, message };
    this.socket.terminate();
  }

  private async connect(): Promise<void> {
    this.retryTimer = undefined;
    if (this.state === 'closed') return;
    const generation = this.generation;
    // While refused, an attempt stays 'down': flapping to 'reconnecting' and back on every slow
    // retry would only spam clients with status events.
    if (this.state !== 'down') this.setState('connecting', this.message);
    const { label, socketName } = this.dialect;
    let credentials: BrokerCredentials | undefined;
    try {
      credentials = await this.credentials.load();
    } catch (err) {
      if (generation !== this.generation) return;
      this.logger.warn({ err }, `reading ${label} credentials failed`);
      this.retry(`could not read the credentials: ${(err as Error).message}`);
      return;
    }
    if (generation !== this.generation) return; // closed or restarted meanwhile
    const request = this.dialect.dial(credentials);
    if ('missing' in request) {
      this.wait(request.missing);
      return;
    }
    let socket: WebSocket;
    try {
      socket = new WebSocket(request.url, {
        headers: request.headers,
        // TLS certificates are verified (OpenAlgo turns that off, spec §8 #24).
        rejectUnauthorized: true,
        handshakeTimeout: this.settings.connectTimeoutMs,
        perMessageDeflate: false,
        maxPayload: this.dialect.maxFrameBytes,
      });
    } catch (err) {
      // A bad URL or the like: not going to fix itself quickly, so the slow schedule.
      this.logger.error({ err }, `cannot open the ${socketName} socket`);
      // The query may carry credentials (Kite's): only the address before it is shown.
      this.wait(`Cannot connect to the ${socketName} at ${request.url.split('?')[0]}: ${(err as Error).message}`);
      return;
    }
    this.socket = socket;
    this.ending = undefined;
    this.lastError = undefined;
    this.heard = false;
    const creds = credentials!;
    socket.on('unexpected-response', (_request, response) => {
      if (socket !== this.socket) return;
      const code = response.statusCode ?? 0;
      this.ending =
        (this.dialect.refusedStatuses ?? DEFAULT_REFUSED_STATUSES).includes(code)
          ? { refused: true, message: this.dialect.refusedUpgrade(code, creds) }
          : { refused: false, message: `${label} answered the upgrade with HTTP ${code}` };
      response.resume();
      socket.terminate();
    });
    socket.on('open', () => this.onOpen(socket));
    socket.on('message', (data, isBinary) => this.onMessage(socket, data, isBinary));
    socket.on('ping', () => this.alive(socket));
    socket.on('pong', () => this.alive(socket));
    socket.on('error', (err) => {
      if (socket !== this.socket) return;
      this.lastError ??= err.message;
      this.logger.warn({ error: err.message }, `${socketName} socket error`);
    });
    socket.on('close', (code, reason) => this.onClose(socket, code, reason.toString()));
  }

  private onOpen(socket: WebSocket): void {
    if (socket !== this.socket) return;
    this.lastFrameAt = this.clock.now();
    this.everOpened = true;
    this.book.forget();
    this.logger.info({ instruments: this.book.size }, `connected to the ${this.dialect.socketName}`);
    this.setState('open', undefined);
    this.host.opened(this);
    this.sync();
    const { silenceMs } = this.settings;
    this.liveTimers.push(setInterval(() => this.checkSilence(socket), Math.max(10, Math.min(1000, Math.floor(silenceMs / 4)))));
    const ping = this.dialect.ping;
    if (ping) this.liveTimers.push(setInterval(() => socket.readyState === WebSocket.OPEN && socket.send(ping.text), ping.everyMs));
    const wsPing = this.dialect.wsPing;
    if (wsPing) this.liveTimers.push(setInterval(() => socket.readyState === WebSocket.OPEN && socket.ping(), wsPing.everyMs));
    for (const timer of this.liveTimers) timer.unref();
  }

  private alive(socket: WebSocket): void {
    if (socket !== this.socket) return;
    this.lastFrameAt = this.clock.now();
    // The broker talks to us: the session works, so the next loss starts the backoff afresh.
    if (!this.heard) {
      this.heard = true;
      this.failures = 0;
    }
  }

  private onMessage(socket: WebSocket, data: WebSocket.RawData, isBinary: boolean): void {
    if (socket !== this.socket) return;
    this.alive(socket);
    try {
      const buffer = Buffer.isBuffer(data) ? data : Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data);
      this.host.frame(this, buffer, isBinary);
    } catch (err) {
      // Never let one frame take the socket down.
      this.logger.error({ err }, `handling a ${this.dialect.label} frame failed`);
    }
  }

  private onClose(socket: WebSocket, code: number, reason: string): void {
    if (socket !== this.socket) return;
    this.socket = undefined;
    this.clearTimers();
    if (this.state === 'closed') return;
    const { label } = this.dialect;
    if (this.ending?.refused) {
      this.failures += 1;
      this.wait(this.ending.message);
    } else if (reason && this.dialect.isAuthError(reason)) {
      this.failures += 1;
      this.wait(`${label} closed the session: ${reason}`);
    } else {
      this.retry(this.ending?.message ?? this.lastError ?? `${label} closed the connection (code ${code}${reason ? `: ${reason}` : ''})`);
    }
  }

  private checkSilence(socket: WebSocket): void {
    if (socket !== this.socket || this.state !== 'open') return;
    const silentFor = this.clock.now() - this.lastFrameAt;
    const { silenceMs } = this.settings;
    if (silentFor <= silenceMs) return;
    this.ending = { refused: false, message: this.dialect.silent(silentFor, silenceMs) };
    this.logger.warn({ silenceMs, silentFor }, `${this.dialect.socketName} silent; reconnecting`);
    socket.terminate();
  }

  /** Lost (or never made) the connection: try again after a backoff delay. */
  private retry(reason: string): void {
    const delay = lossDelay(this.settings.schedule, this.failures);
    this.failures += 1;
    this.logger.warn({ reason, delayMs: delay, attempt: this.failures }, `${this.dialect.socketName} reconnecting`);
    this.schedule(delay, 'retrying', this.dialect.lost(reason, delay));
  }

  /** Refused or no credentials: down, and try again on the slow schedule. */
  private wait(message: string): void {
    const delay = refusalDelay(this.settings.schedule);
    this.logger.error({ delayMs: delay }, message);
    this.schedule(delay, 'down', message);
  }

  private schedule(delay: number, state: State, message: string): void {
    this.clearTimers();
    this.setState(state, message);
    this.retryTimer = setTimeout(() => void this.connect(), delay);
    this.retryTimer.unref();
  }

  private setState(state: State, message: string | undefined): void {
    if (this.state === 'closed') return;
    this.state = state;
    this.message = message;
    this.host.changed();
  }

  private clearTimers(): void {
    for (const timer of this.liveTimers.splice(0)) clearInterval(timer);
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
  }
}
