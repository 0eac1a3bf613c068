/**
 * The gateway's end of the control channel: a ZeroMQ ROUTER that out-of-process adapters
 * (client.ts, a DEALER each) connect to. It registers adapters by feed id, hands each to the
 * gateway as a RemoteAdapter, keeps heartbeats going both ways and notices when an adapter dies
 * or restarts. The message rules are in protocol.ts.
 */
import * as zmq from 'zeromq';
import type { Clock } from '../clock.js';
import { ErrorCode, TickcastError } from '../errors.js';
import type { Logger } from '../observability/logger.js';
import { decodeAdapterMessage, encodeMessage } from './codec.js';
import { BURST, bindSocket, yieldToEventLoop } from '../bus/zmq-socket.js';
import {
  CLOSE_FLUSH_MS, DEFAULT_HEARTBEAT_MS, DEFAULT_MISSED_HEARTBEATS, MALFORMED_LOG_INTERVAL_MS, MAX_FRAME_BYTES, PROTOCOL_VERSION, SEND_HIGH_WATER_MARK,
  type GatewayMessage,
  type Hello,
} from './protocol.js';
import { RemoteAdapter, formatDuration } from './remote-adapter.js';

/** The gateway's answer to the first hello of a feed id. */
export type AdapterDecision = { accept: true } | { accept: false; message: string };

/**
 * Called for the first hello of a feed id (restarts of a known feed take over its RemoteAdapter
 * without asking again). Accepting keeps `remote` for the life of the server; add listeners to it
 * here: its onReconnect fires right after this returns, and on every later registration.
 */
export type AdapterCallback = (remote: RemoteAdapter, hello: Hello) => AdapterDecision;

export interface ControlServerOptions {
  /**
   * `tcp://host:port` (port 0: any free port, see `.endpoint`) or `ipc://…` (`ipc://@name`: the
   * Linux abstract namespace, where a second bind fails instead of stealing the path).
   */
  endpoint: string;
  /** Registers new feeds. Until one is set (here or with `onAdapter`), hellos go unanswered and adapters keep repeating them. */
  onAdapter?: AdapterCallback;
  /** Instance this gateway serves; a hello naming another instance is refused. Unset: not checked. */
  instance?: string;
  /** Interval of the heartbeats the server sends and expects. Default 1000 ms. */
  heartbeatMs?: number;
  /**
   * An adapter that sends nothing for this many heartbeat intervals (its own interval, if
   * slower) is marked down. Default 3.
   */
  missedHeartbeats?: number;
  /** How long a subscribe or unsubscribe waits for the adapter's reply. Default 5000 ms. */
  commandTimeoutMs?: number;
  clock: Clock;
  logger: Logger;
}

export interface ControlServerCounters {
  /** Messages that were not valid control messages (bad frames, JSON or fields). */
  malformed: number;
  /** Hellos refused. */
  refused: number;
  /** Messages from senders the server does not know, answered with `reset`. */
  resets: number;
}

/** A connected adapter process. */
interface Peer {
  identity: Buffer;
  /** identity as hex, the map key. */
  key: string;
  remote: RemoteAdapter;
  /** Registration round of its accepted hello (see Hello.session). */
  session: number;
  /** When anything last arrived from it (epoch ms). */
  lastSeen: number;
  /** Silence longer than this marks it down. */
  silenceLimitMs: number;
}

type SendResult = 'sent' | 'unreachable' | 'full' | 'failed';

const DEFAULT_COMMAND_TIMEOUT_MS = 5000;

function errorCode(error: unknown): string | undefined {
  return (error as { code?: string } | null)?.code;
}

export class ControlServer {
  readonly counters: ControlServerCounters = { malformed: 0, refused: 0, resets: 0 };

  private callback: AdapterCallback | undefined;
  private readonly heartbeatMs: number;
  private readonly missedHeartbeats: number;
  private readonly commandTimeoutMs: number;
  private readonly clock: Clock;
  private readonly logger: Logger;
  /** Every feed ever accepted, connected or not. */
  private readonly feeds = new Map<string, RemoteAdapter>();
  /** Connected processes by identity key; at most one per feed. */
  private readonly peers = new Map<string, Peer>();
  /** The connected process of each feed. */
  private readonly active = new Map<string, Peer>();
  private readonly timer: NodeJS.Timeout;
  private lastMalformedLogAt = -Infinity;
  private closed = false;

  private constructor(
    private readonly socket: zmq.Router,
    /** The bound URL (with the real port when 0 was asked for). */
    readonly endpoint: string,
    private readonly options: ControlServerOptions,
  ) {
    this.callback = options.onAdapter;
    this.heartbeatMs = options.heartbeatMs ?? DEFAULT_HEARTBEAT_MS;
    this.missedHeartbeats = options.missedHeartbeats ?? DEFAULT_MISSED_HEARTBEATS;
    this.commandTimeoutMs = options.commandTimeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS;
    this.clock = options.clock;
    this.logger = options.logger;
    this.timer = setInterval(() => this.onTimer(), this.heartbeatMs);
    this.timer.unref();
    void this.receiveLoop();
  }

  /** Binds, or throws TickcastError PORT_IN_USE / BUS_BIND_FAILED naming the endpoint. */
  static async bind(options: ControlServerOptions): Promise<ControlServer> {
    for (const [key, value] of [
      ['heartbeatMs', options.heartbeatMs],
      ['missedHeartbeats', options.missedHeartbeats],
      ['commandTimeoutMs', options.commandTimeoutMs],
    ] as const) {
      if (value !== undefined && !(Number.isFinite(value) && value > 0)) {
        throw new TickcastError(ErrorCode.CONFIG_INVALID, `control ${key} must be a positive number, got ${value}`);
      }
    }
    const socket = new zmq.Router({
      // Sends to a vanished peer fail with EHOSTUNREACH instead of vanishing silently.
      mandatory: true,
      // Every send completes or fails at once: no send is ever left in flight, so sends need no queue.
      sendTimeout: 0,
      // A reconnecting adapter (same routing id) replaces its half-dead old connection.
      handover: true,
      linger: 0,
      sendHighWaterMark: SEND_HIGH_WATER_MARK,
      maxMessageSize: MAX_FRAME_BYTES,
    });
    return new ControlServer(socket, await bindSocket(socket, options.endpoint, 'control'), options);
  }

  /** Sets (or replaces) the registration callback; see AdapterCallback. */
  onAdapter(callback: AdapterCallback): void {
    this.callback = callback;
  }

  /** Every feed accepted so far, connected or not. */
  adapters(): RemoteAdapter[] {
    return [...this.feeds.values()];
  }

  /** Says bye to every connected adapter, marks them down and closes the socket. */
  async close(): Promise<void> {
    if (this.closed) return;
    clearInterval(this.timer);
    const peers = [...this.peers.values()];
    for (const peer of peers) void this.send(peer.identity, { type: 'bye' });
    this.closed = true;
    for (const peer of peers) this.drop(peer, 'the gateway is shutting down');
    if (peers.length > 0) await new Promise((resolve) => setTimeout(resolve, CLOSE_FLUSH_MS));
    this.socket.close();
  }

  private async receiveLoop(): Promise<void> {
    let burst = 0;
    while (!this.closed) {
      let frames: Buffer[];
      try {
        frames = await this.socket.receive();
      } catch (error) {
        if (!this.closed) this.logger.error({ err: error }, 'control channel receive failed; the channel is down');
        return;
      }
      try {
        await this.receive(frames);
      } catch (error) {
        // A bug in handling one message must not stop the channel.
        this.noteMalformed(`handler failed: ${(error as Error).message}`);
      }
      if (++burst === BURST) {
        burst = 0;
        await yieldToEventLoop();
      }
    }
  }

  private async receive(frames: Buffer[]): Promise<void> {
    const [identity, payload] = frames as [Buffer, Buffer | undefined];
    const peer = this.peers.get(identity.toString('hex'));
    // Anything at all from a peer shows it is alive.
    if (peer) peer.lastSeen = this.clock.now();
    if (frames.length !== 2 || payload === undefined) {
      this.noteMalformed(`expected 1 frame after the routing id, got ${frames.length - 1}`, peer);
      return;
    }
    const decoded = decodeAdapterMessage(payload);
    if (!decoded.ok) {
      this.noteMalformed(decoded.error, peer);
      return;
    }
    const message = decoded.message;
    if (message.type === 'hello') return this.onHello(identity, message);
    if (!peer) {
      // Typically an adapter still registered with this gateway's previous run: make it start over.
      if (message.type !== 'bye') {
        this.counters.resets += 1;
        void this.send(identity, { type: 'reset', message: 'this gateway does not know this adapter; say hello again' });
      }
      return;
    }
    switch (message.type) {
      case 'heartbeat':
        return;
      case 'bye':
        this.drop(peer, `Feed "${peer.remote.feed}" adapter (pid ${peer.remote.pid}) stopped`);
        return;
      case 'reply':
        if (!message.ok) peer.remote.receiveReply(message.id, { ok: false, message: message.message });
        else peer.remote.receiveReply(message.id, message.depth === undefined ? { ok: true } : { ok: true, depth: message.depth });
        return;
      case 'status':
        peer.remote.receiveStatus(message.status, message.message);
        return;
    }
  }

  private async onHello(identity: Buffer, hello: Hello): Promise<void> {
    const key = identity.toString('hex');
    const { feed } = hello;
    if (hello.protocol !== PROTOCOL_VERSION) {
      return this.refuse(identity, hello, `control protocol ${hello.protocol} is not supported (this gateway speaks ${PROTOCOL_VERSION})`);
    }
    const instance = this.options.instance;
    if (instance !== undefined && hello.instance !== undefined && hello.instance !== instance) {
      return this.refuse(identity, hello, `this gateway serves instance "${instance}", not "${hello.instance}"`);
    }
    const same = this.peers.get(key);
    if (same && same.remote.feed !== feed) {
      return this.refuse(identity, hello, `this connection already serves feed id "${same.remote.feed}"`);
    }

    const remote = this.feeds.get(feed);
    if (!remote) return this.register(identity, hello);

    const current = this.active.get(feed);
    if (current && current.key === key) {
      // The same process: repeating the hello we already welcomed, or registering anew after it
      // dropped everything (it thought this gateway was lost).
      if (current.session === hello.session) {
        void this.send(identity, { type: 'welcome', session: hello.session, heartbeatMs: this.heartbeatMs });
        return;
      }
      // It answers commands only within the registration they came in.
      remote.failPending(`Feed "${feed}" adapter (pid ${remote.pid}) re-registered before answering`);
      this.logger.info({ feed, adapterPid: hello.pid }, 'adapter registered anew (it had lost this gateway)');
      return this.admit(identity, hello, remote);
    }
    if (current && (await this.isAlive(current))) {
      return this.refuse(identity, hello, `feed id "${feed}" is already served by pid ${current.remote.pid}`);
    }
    if (this.closed) return;
    if (remote.broker !== hello.broker || !sameBrokers(remote.brokers, hello.brokers)) {
      return this.refuse(
        identity,
        hello,
        `feed id "${feed}" is registered for broker ${remote.broker} (${describeBrokers(remote.brokers)}), ` +
          `not ${hello.broker} (${describeBrokers(hello.brokers)}); restart the gateway to change it`,
      );
    }
    // A restart: the old process died (perhaps before we noticed). Its commands will never be answered.
    if (current && this.active.get(feed) === current) {
      this.forget(current);
      remote.failPending(`Feed "${feed}" adapter (pid ${current.remote.pid}) restarted before answering`);
    }
    this.logger.info({ feed, adapterPid: hello.pid, previousAdapterPid: remote.pid }, 'adapter back (restarted or reconnected)');
    this.admit(identity, hello, remote);
  }

  private register(identity: Buffer, hello: Hello): void {
    const callback = this.callback;
    // Not accepting adapters yet: stay silent, the adapter repeats its hello.
    if (!callback) return;
    const remote = new RemoteAdapter({ hello, commandTimeoutMs: this.commandTimeoutMs, logger: this.logger });
    let decision: AdapterDecision;
    try {
      decision = callback(remote, hello);
    } catch (err) {
      this.logger.error({ err, feed: hello.feed }, 'adapter registration failed');
      decision = { accept: false, message: `the gateway could not register feed id "${hello.feed}": ${(err as Error).message}` };
    }
    if (!decision.accept) return this.refuse(identity, hello, decision.message);
    this.feeds.set(hello.feed, remote);
    this.logger.debug({ feed: hello.feed, broker: hello.broker, adapterPid: hello.pid }, 'adapter registered');
    this.admit(identity, hello, remote);
  }

  /** Welcomes the process and attaches it; the welcome goes out before any replayed command. */
  private admit(identity: Buffer, hello: Hello, remote: RemoteAdapter): void {
    const key = identity.toString('hex');
    const peer: Peer = {
      identity,
      key,
      remote,
      session: hello.session,
      lastSeen: this.clock.now(),
      silenceLimitMs: this.missedHeartbeats * Math.max(this.heartbeatMs, hello.heartbeatMs),
    };
    this.peers.set(key, peer);
    this.active.set(hello.feed, peer);
    void this.send(identity, { type: 'welcome', session: hello.session, heartbeatMs: this.heartbeatMs });
    remote.attach(hello, async (message) => (await this.send(identity, message)) === 'sent');
  }

  private refuse(identity: Buffer, hello: Hello, message: string): void {
    this.counters.refused += 1;
    this.logger.warn({ feed: hello.feed, adapterPid: hello.pid, reason: message }, 'adapter refused');
    void this.send(identity, { type: 'refused', session: hello.session, message });
  }

  /**
   * Whether a process still serves its feed: heard from recently, and its connection still
   * exists (a send to a closed connection fails at once, which catches a quick restart).
   */
  private async isAlive(peer: Peer): Promise<boolean> {
    if (this.clock.now() - peer.lastSeen > peer.silenceLimitMs) return false;
    return (await this.send(peer.identity, { type: 'heartbeat' })) !== 'unreachable';
  }

  /** The process is gone: the feed goes down. */
  private drop(peer: Peer, reason: string): void {
    if (this.peers.get(peer.key) !== peer) return;
    this.forget(peer);
    this.logger.warn({ feed: peer.remote.feed, adapterPid: peer.remote.pid, reason }, 'adapter down');
    peer.remote.detach(reason);
  }

  private forget(peer: Peer): void {
    this.peers.delete(peer.key);
    if (this.active.get(peer.remote.feed) === peer) this.active.delete(peer.remote.feed);
  }

  private onTimer(): void {
    const now = this.clock.now();
    for (const peer of [...this.peers.values()]) {
      const silentMs = now - peer.lastSeen;
      if (silentMs > peer.silenceLimitMs) {
        this.drop(peer, `Feed "${peer.remote.feed}" adapter (pid ${peer.remote.pid}) sent nothing for ${formatDuration(silentMs)}`);
      } else {
        void this.send(peer.identity, { type: 'heartbeat' });
      }
    }
  }

  /**
   * Hands one message to ZeroMQ. The send happens synchronously in this call (sendTimeout 0),
   * so messages leave in call order; the promise only reports how it went.
   */
  private async send(identity: Buffer, message: GatewayMessage): Promise<SendResult> {
    if (this.closed) return 'failed';
    try {
      await this.socket.send([identity, encodeMessage(message)]);
      return 'sent';
    } catch (error) {
      const code = errorCode(error);
      if (code === 'EHOSTUNREACH') return 'unreachable';
      if (code === 'EAGAIN') return 'full';
      if (!this.closed) this.logger.debug({ err: error, type: message.type }, 'control send failed');
      return 'failed';
    }
  }

  private noteMalformed(reason: string, peer?: Peer): void {
    this.counters.malformed += 1;
    const now = this.clock.now();
    if (now - this.lastMalformedLogAt < MALFORMED_LOG_INTERVAL_MS) return;
    this.lastMalformedLogAt = now;
    this.logger.warn(
      { reason, feed: peer?.remote.feed, malformed: this.counters.malformed },
      'malformed control message (further ones are counted, and logged at most every 10 s)',
    );
  }
}

function sameBrokers(a: string[] | '*', b: string[] | '*'): boolean {
  if (a === '*' || b === '*') return a === b;
  return a.length === b.length && [...a].sort().join('\0') === [...b].sort().join('\0');
}

function describeBrokers(brokers: string[] | '*'): string {
  return brokers === '*' ? 'serving any broker' : `serving ${brokers.join(', ')}`;
}
