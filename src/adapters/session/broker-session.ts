/**
 * One broker WebSocket and its reconnect loop, whatever the broker: credentials read afresh
 * before every attempt, exponential backoff after a loss, the slow schedule after a refusal, a
 * watchdog that drops a socket silent for `silenceMs`, and a generation count so that an attempt
 * still reading credentials when the session was restarted or closed gives up. What differs
 * between brokers (URL, auth, wording, pings, a login message, a last message) is the dialect's.
 *
 * A socket is live ('open') once it opened or, for a dialect with a `login`, once the adapter
 * says the broker accepted it (`loggedIn()`); only a live socket is sent subscriptions.
 */
import WebSocket from 'ws';
import type { Clock } from '../../clock.js';
import type { Logger } from '../../observability/logger.js';
import type { BrokerCredentials, CredentialSource } from '../broker.js';
import type { SessionView } from './feed-status.js';
import type { FrameConnection } from './frame-sink.js';
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
  /**
   * The message that logs a new socket in (Noren's connect message), sent first on each socket.
   * Until the adapter calls `loggedIn()` on the broker's OK, no subscription goes out and the
   * socket is not live; an answer that refuses is the adapter's `refuse()`, and no answer within
   * `loginTimeoutMs` replaces the socket.
   */
  login?(credentials: BrokerCredentials): string | Buffer;
  /**
   * Sent just before the session closes a socket on purpose (stop, a restart, an extra socket
   * retired), never after a loss: Dhan's `{"RequestCode":12}`.
   */
  readonly farewell?: string | Buffer;
  /** HTTP statuses of the upgrade that mean the credentials are refused; default 401 and 403. */
  readonly refusedStatuses?: readonly number[];
  /**
   * At most this many HTTP redirects of the upgrade are followed (Upstox's feed URL redirects to a
   * single-use URL); absent or 0: none, and a 3xx is an ordinary failed attempt. Only ws: and wss:
   * targets are followed (http: and https: count as those), never from wss: down to ws:. The
   * Authorization header is dropped when a redirect leaves the host (the target URL carries its
   * own credential), and a target's query is never shown in a message or log.
   */
  readonly followRedirects?: number;
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
  /** A dialect's login unanswered for this long replaces the socket; default `connectTimeoutMs`. */
  loginTimeoutMs?: number;
  schedule: Schedule;
  /**
   * Asked at each socket's open: where its data messages are recorded, or undefined (frame
   * recording off, or not for this broker). Control frames (pings, pongs, close) are never recorded.
   */
  recordFrames?: () => FrameConnection | undefined;
}

export interface SessionHost<K, V> {
  frame(session: BrokerSession<K, V>, data: Buffer, isBinary: boolean): void;
  /** The socket opened (before its login, if any, and before the full resubscription goes out). */
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
  private loginTimer: NodeJS.Timeout | undefined;
  /** The current socket sent the dialect's login and has no OK yet. */
  private loggingIn = false;
  private readonly liveTimers: NodeJS.Timeout[] = [];
  private lastFrameAt = 0;
  /** The current socket's recording, if its frames are recorded (the one branch the frame path pays when off). */
  private recording: FrameConnection | undefined;
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
    this.loggingIn = false;
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
      if (socket.readyState === WebSocket.OPEN) {
        this.sendFarewell(socket);
        socket.close(1000, 'closing');
      } else socket.terminate();
    });
  }

  /** Sends the broker the difference between what is wanted and what this socket was told. */
  sync(): void {
    const socket = this.socket;
    if (this.state !== 'open' || socket?.readyState !== WebSocket.OPEN) return;
    const diff = this.book.take();
    if (!diff) return;
    const messages = this.host.encode(diff);
    const recording = this.recording;
    for (const message of messages) {
      if (recording !== undefined) recording.frame(true, typeof message !== 'string', message);
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
    this.loggingIn = false;
    this.clearTimers();
    const socket = this.socket;
    this.socket = undefined;
    if (socket) this.release(socket);
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

  /**
   * The broker accepted the current socket's login: it goes live and is sent the whole wanted
   * set. Nothing if no login is pending (a repeated OK, or a dialect without one).
   */
  loggedIn(): void {
    const socket = this.socket;
    if (!this.loggingIn || !socket || socket.readyState !== WebSocket.OPEN) return;
    this.loggingIn = false;
    if (this.loginTimer) clearTimeout(this.loginTimer);
    this.loginTimer = undefined;
    this.logger.info({ instruments: this.book.size }, `logged in to the ${this.dialect.socketName}`);
    // The OK is the broker talking: the next loss starts the backoff afresh.
    this.heard = true;
    this.failures = 0;
    this.live();
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
    const maxRedirects = this.dialect.followRedirects ?? 0;
    /** Requests this attempt has made: the first, then one per redirect followed. */
    let hops = 0;
    const options: WebSocket.ClientOptions = {
      headers: request.headers,
      // TLS certificates are verified (OpenAlgo turns that off, spec §8 #24).
      rejectUnauthorized: true,
      handshakeTimeout: this.settings.connectTimeoutMs,
      perMessageDeflate: false,
      maxPayload: this.dialect.maxFrameBytes,
    };
    if (maxRedirects > 0) {
      // No 'redirect' listener on purpose: with one, `ws` would keep the Authorization header on
      // a redirect to another host.
      options.followRedirects = true;
      options.maxRedirects = maxRedirects;
      // Runs for every request of the handshake before anything is sent: a redirect's target is
      // checked here.
      options.finishRequest = (req, ws) => {
        hops += 1;
        const bad = hops > 1 ? badRedirect(label, request.url, ws.url) : undefined;
        if (bad) req.destroy(new Error(bad));
        else req.end();
      };
    }
    let socket: WebSocket;
    try {
      socket = new WebSocket(request.url, options);
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
    this.loggingIn = false;
    const creds = credentials!;
    const firstUrl = socket.url;
    /** Where the handshake is now, if a redirect took it elsewhere (raw: never show it unfiltered). */
    const redirectedTo = (): string | undefined => (hops > 1 || socket.url !== firstUrl ? socket.url : undefined);
    socket.on('unexpected-response', (_request, response) => {
      if (socket !== this.socket) return;
      const code = response.statusCode ?? 0;
      const redirected = redirectedTo();
      const at = redirected === undefined ? '' : ` at ${shownUrl(redirected)}`;
      this.ending =
        (this.dialect.refusedStatuses ?? DEFAULT_REFUSED_STATUSES).includes(code)
          ? { refused: true, message: this.dialect.refusedUpgrade(code, creds) }
          : { refused: false, message: `${label} answered the upgrade with HTTP ${code}${at}` };
      response.resume();
      socket.terminate();
    });
    socket.on('open', () => this.onOpen(socket, creds));
    socket.on('message', (data, isBinary) => this.onMessage(socket, data, isBinary));
    socket.on('ping', () => this.alive(socket));
    socket.on('pong', () => this.alive(socket));
    socket.on('error', (err) => {
      if (socket !== this.socket) return;
      const message = maxRedirects > 0 ? redirectError(label, err, maxRedirects, redirectedTo()) : err.message;
      this.lastError ??= message;
      this.logger.warn({ error: message }, `${socketName} socket error`);
    });
    socket.on('close', (code, reason) => this.onClose(socket, code, reason.toString()));
  }

  private onOpen(socket: WebSocket, credentials: BrokerCredentials): void {
    if (socket !== this.socket) return;
    this.lastFrameAt = this.clock.now();
    this.book.forget();
    this.recording = this.settings.recordFrames?.();
    const { socketName, label } = this.dialect;
    this.logger.info({ instruments: this.book.size }, `connected to the ${socketName}`);
    this.host.opened(this);
    const { silenceMs } = this.settings;
    this.liveTimers.push(setInterval(() => this.checkSilence(socket), Math.max(10, Math.min(1000, Math.floor(silenceMs / 4)))));
    const ping = this.dialect.ping;
    if (ping) this.liveTimers.push(setInterval(() => socket.readyState === WebSocket.OPEN && this.sendPing(socket, ping.text), ping.everyMs));
    const wsPing = this.dialect.wsPing;
    if (wsPing) this.liveTimers.push(setInterval(() => socket.readyState === WebSocket.OPEN && socket.ping(), wsPing.everyMs));
    for (const timer of this.liveTimers) timer.unref();
    if (!this.dialect.login) {
      this.live();
      return;
    }
    let login: string | Buffer;
    try {
      login = this.dialect.login(credentials);
    } catch (err) {
      this.logger.error({ err }, `building the ${label} login failed`);
      this.ending = { refused: false, message: `could not build the ${label} login: ${(err as Error).message}` };
      socket.terminate();
      return;
    }
    this.loggingIn = true;
    // The login is never recorded: it carries the user's session token (Noren's susertoken).
    socket.send(login, (err) => {
      if (err) this.logger.debug({ err }, `${socketName} login not sent`);
    });
    // While refused, stay 'down' until the login is accepted (no flapping, as in connect()).
    if (this.state !== 'down') this.setState('connecting', `logging in to ${label}`);
    const timeoutMs = this.settings.loginTimeoutMs ?? this.settings.connectTimeoutMs;
    this.loginTimer = setTimeout(() => {
      this.loginTimer = undefined;
      if (socket !== this.socket || !this.loggingIn) return;
      this.logger.warn({ loginTimeoutMs: timeoutMs }, `${socketName} did not answer the login; reconnecting`);
      this.ending = { refused: false, message: `${label} did not answer the login within ${timeoutMs} ms` };
      socket.terminate();
    }, timeoutMs);
    this.loginTimer.unref();
  }

  /** The socket is usable: live, and told everything wanted. */
  private live(): void {
    this.everOpened = true;
    this.setState('open', undefined);
    this.sync();
  }

  private alive(socket: WebSocket): void {
    if (socket !== this.socket) return;
    this.lastFrameAt = this.clock.now();
    // The broker talks to us: the session works, so the next loss starts the backoff afresh
    // (not before a login's OK: a broker answering pings but no login does not work).
    if (!this.heard && this.state === 'open') {
      this.heard = true;
      this.failures = 0;
    }
  }

  private onMessage(socket: WebSocket, data: WebSocket.RawData, isBinary: boolean): void {
    if (socket !== this.socket) return;
    this.alive(socket);
    try {
      const buffer = Buffer.isBuffer(data) ? data : Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data);
      const recording = this.recording;
      if (recording !== undefined) recording.frame(false, isBinary, buffer);
      this.host.frame(this, buffer, isBinary);
    } catch (err) {
      // Never let one frame take the socket down.
      this.logger.error({ err }, `handling a ${this.dialect.label} frame failed`);
    }
  }

  private onClose(socket: WebSocket, code: number, reason: string): void {
    if (socket !== this.socket) return;
    this.socket = undefined;
    this.loggingIn = false;
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
    if (this.loginTimer) clearTimeout(this.loginTimer);
    this.loginTimer = undefined;
  }

  /**
   * Lets go of a socket replaced on purpose (its events are no longer this session's): with a
   * farewell, sent before a graceful close (cut if unanswered); without, cut at once, as before.
   */
  private release(socket: WebSocket): void {
    if (!this.dialect.farewell || socket.readyState !== WebSocket.OPEN) {
      socket.terminate();
      return;
    }
    this.sendFarewell(socket);
    const cut = setTimeout(() => socket.terminate(), CLOSE_GRACE_MS);
    cut.unref();
    socket.once('close', () => clearTimeout(cut));
    socket.close(1000, 'closing');
  }

  /** A dialect's text keepalive: recorded like any message sent, so a recording shows the broker's pongs answer something. */
  private sendPing(socket: WebSocket, text: string): void {
    if (socket === this.socket) this.recording?.frame(true, false, text);
    socket.send(text);
  }

  private sendFarewell(socket: WebSocket): void {
    const farewell = this.dialect.farewell;
    if (farewell === undefined) return;
    // Sent on the socket being let go: still the recorded one (the next is recorded from its open).
    this.recording?.frame(true, typeof farewell !== 'string', farewell);
    socket.send(farewell, (err) => {
      if (err) this.logger.debug({ err }, `${this.dialect.socketName} last message not sent`);
    });
  }
}

/** A URL as messages and logs may show it: no user info, query or fragment (they may hold credentials). */
function shownUrl(url: string): string {
  try {
    const parsed = new URL(url);
    parsed.username = '';
    parsed.password = '';
    parsed.search = '';
    parsed.hash = '';
    return parsed.href;
  } catch {
    return url.split(/[?#]/)[0]!;
  }
}

/** Why the handshake must not go on to `target`, where a redirect of the upgrade to `first` points; undefined if it may. */
export function badRedirect(label: string, first: string, target: string): string | undefined {
  const protocol = protocolOf(target);
  if (protocol !== 'ws:' && protocol !== 'wss:') return `${label} redirected the upgrade to ${shownUrl(target)}, not a ws: or wss: URL`;
  if (protocol === 'ws:' && protocolOf(first) === 'wss:') return `${label} redirected the upgrade from wss: to ${shownUrl(target)}, an unencrypted URL`;
  return undefined;
}

function protocolOf(url: string): string | undefined {
  try {
    return new URL(url).protocol;
  } catch {
    return undefined;
  }
}

/**
 * A handshake error told for a dialect that follows redirects (`current`: where a redirect took
 * the handshake, if one did), never with a redirect's query: `ws`'s own messages name the limit
 * but not the URL, or quote an unparsable Location whole.
 */
function redirectError(label: string, err: Error, maxRedirects: number, current: string | undefined): string {
  const at = current === undefined ? undefined : shownUrl(current);
  if (err.message === 'Maximum redirects exceeded') {
    return `${label} redirected the upgrade more than ${maxRedirects} times${at ? ` (last to ${at})` : ''}`;
  }
  if (err.message.startsWith('Invalid URL')) return `${label} redirected the upgrade to an invalid URL`;
  if (current === undefined || at === undefined) return err.message;
  // ws refuses some targets itself (other schemes, a fragment) with a SyntaxError.
  if (err instanceof SyntaxError) return badRedirect(label, current, current) ?? `${label} redirected the upgrade to ${at}: ${err.message}`;
  // A refusal from finishRequest already names the target.
  if (err.message.startsWith(`${label} redirected the upgrade`)) return err.message;
  return `${err.message} (after a redirect to ${at})`;
}
