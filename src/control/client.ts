/**
 * The adapter process's end of the control channel: a ZeroMQ DEALER that registers the local
 * adapter with the gateway, runs the gateway's subscribe/unsubscribe commands on it and keeps
 * heartbeats going both ways.
 *
 * When the gateway is lost (silent for too long, `bye`, `reset`, or a move to a new endpoint)
 * the client drops every upstream subscription it made, so a dead gateway's interest does not
 * keep streaming, and says hello until a gateway welcomes it; that gateway then replays what it
 * wants. Started before its gateway, it simply keeps saying hello until one appears.
 */
import { randomBytes } from 'node:crypto';
import * as zmq from 'zeromq';
import { type Adapter, type FeedStatusEvent, type StreamRef, type SubscribeResult, streamKey } from '../feed.js';
import type { Clock } from '../clock.js';
import type { Logger } from '../observability/logger.js';
import { clipText, decodeGatewayMessage, encodeMessage } from './codec.js';
import { BURST, yieldToEventLoop } from '../bus/zmq-socket.js';
import {
  CLOSE_FLUSH_MS, DEFAULT_HEARTBEAT_MS, DEFAULT_MISSED_HEARTBEATS, MALFORMED_LOG_INTERVAL_MS, MAX_FRAME_BYTES, PROTOCOL_VERSION, SEND_HIGH_WATER_MARK,
  type AdapterMessage,
  type GatewayMessage,
  type Hello,
} from './protocol.js';
import { formatDuration } from './remote-adapter.js';

/** What the caller says about the adapter in its hello; the client fills in the rest. */
export type HelloInfo = Omit<Hello, 'type' | 'protocol' | 'session' | 'heartbeatMs' | 'status'>;

export interface ControlClientOptions {
  /** The gateway's control endpoint (`tcp://…` or `ipc://…`); see also `setEndpoint`. */
  endpoint: string;
  hello: HelloInfo;
  /** The local adapter the gateway's commands drive; its status changes are forwarded. */
  adapter: Adapter;
  /** Interval of heartbeats (and of repeated hellos while unregistered). Default 1000 ms. */
  heartbeatMs?: number;
  /**
   * A registered client that hears nothing from its gateway for this many heartbeat intervals
   * (the gateway's, if slower) considers it lost. Default 3.
   */
  missedHeartbeats?: number;
  clock: Clock;
  logger: Logger;
  /** The gateway refused the hello (the feed id is taken, wrong instance…): the process should exit with this message. */
  onRefused?(message: string): void;
  /** The gateway was lost; the local adapter's subscriptions are being dropped. */
  onGatewayLost?(reason: string): void;
  /** A gateway welcomed the adapter (the first time, and after every loss). */
  onGatewayFound?(): void;
}

export interface ControlClientCounters {
  /** Messages from the gateway that were not valid control messages. */
  malformed: number;
}

/**
 * `idle` before start; `registering`: saying hello until welcomed; `registered`: serving a
 * gateway; `refused`: told to go away (quiet until `setEndpoint`); `stopped`.
 */
export type ControlClientState = 'idle' | 'registering' | 'registered' | 'refused' | 'stopped';

type Command = Extract<GatewayMessage, { type: 'subscribe' | 'unsubscribe' }>;



export class ControlClient {
  readonly counters: ControlClientCounters = { malformed: 0 };

  private readonly socket: zmq.Dealer;
  private endpoint: string;
  private readonly adapter: Adapter;
  private readonly heartbeatMs: number;
  private readonly missedHeartbeats: number;
  private readonly clock: Clock;
  private readonly logger: Logger;
  private currentState: ControlClientState = 'idle';
  /** Registration round (see Hello.session); bumped whenever the client starts over. */
  private session = 1;
  private gatewayHeartbeatMs = 0;
  /** When anything last arrived from the gateway (epoch ms). */
  private lastHeard = 0;
  /** Streams the gateway asked for since the last registration: what a loss must undo. */
  private readonly held = new Map<string, StreamRef>();
  /**
   * Tail of the work queued per stream. Commands for one stream run in order (a subscribe, then
   * the unsubscribe a loss queues after it); different streams run concurrently.
   */
  private readonly chains = new Map<string, Promise<void>>();
  private timer: NodeJS.Timeout | undefined;
  private lastMalformedLogAt = -Infinity;

  constructor(private readonly options: ControlClientOptions) {
    this.endpoint = options.endpoint;
    this.adapter = options.adapter;
    this.heartbeatMs = options.heartbeatMs ?? DEFAULT_HEARTBEAT_MS;
    this.missedHeartbeats = options.missedHeartbeats ?? DEFAULT_MISSED_HEARTBEATS;
    for (const [key, value] of [['heartbeatMs', this.heartbeatMs], ['missedHeartbeats', this.missedHeartbeats]] as const) {
      if (!(Number.isFinite(value) && value > 0)) throw new Error(`control ${key} must be a positive number, got ${value}`);
    }
    this.clock = options.clock;
    this.logger = options.logger;
    this.socket = new zmq.Dealer({
      // A stable id across reconnections, so a network blip does not look like a new process.
      routingId: `tickcast-${randomBytes(8).toString('hex')}`,
      // Queue only to completed connections and never wait: while no gateway is connected every
      // send fails at once, so no stale hello or heartbeat piles up to be delivered later.
      immediate: true,
      sendTimeout: 0,
      sendHighWaterMark: SEND_HIGH_WATER_MARK,
      maxMessageSize: MAX_FRAME_BYTES,
      linger: 0,
    });
    this.adapter.onStatus((event) => this.forwardStatus(event));
  }

  get state(): ControlClientState {
    return this.currentState;
  }

  /**
   * Connects and starts saying hello (ZeroMQ keeps reconnecting until a gateway listens).
   * Synchronous: it throws only for an endpoint ZeroMQ cannot parse.
   */
  start(): void {
    if (this.currentState !== 'idle') return;
    this.socket.connect(this.endpoint);
    this.currentState = 'registering';
    this.timer = setInterval(() => this.onTimer(), this.heartbeatMs);
    this.timer.unref();
    void this.receiveLoop();
    this.sendHello();
  }

  /**
   * Says bye to the gateway (if registered) and closes. The local adapter is left as it is:
   * stopping it is the caller's job. `bye: false` closes silently, as a crash would (the gateway
   * then notices only by the missing heartbeats); tests use it.
   */
  async stop(options: { bye?: boolean } = {}): Promise<void> {
    if (this.currentState === 'stopped') return;
    const wasRegistered = this.currentState === 'registered' && options.bye !== false;
    if (wasRegistered) this.send({ type: 'bye' });
    this.currentState = 'stopped';
    if (this.timer) clearInterval(this.timer);
    if (wasRegistered) await new Promise((resolve) => setTimeout(resolve, CLOSE_FLUSH_MS));
    this.socket.close();
  }

  /**
   * Moves to a gateway at another endpoint (it restarted elsewhere): disconnects, connects there
   * and registers anew. A registered client treats this as losing its gateway.
   */
  setEndpoint(endpoint: string): void {
    if (endpoint === this.endpoint || this.currentState === 'stopped') return;
    const previous = this.endpoint;
    this.endpoint = endpoint;
    if (this.currentState === 'idle') return;
    try {
      this.socket.disconnect(previous);
    } catch (err) {
      this.logger.debug({ err, endpoint: previous }, 'control disconnect failed');
    }
    this.socket.connect(endpoint);
    if (this.currentState === 'registered') {
      this.lose(`moving to the gateway at ${endpoint}`);
      return;
    }
    // Answers to hellos sent to the old endpoint must not count.
    this.session += 1;
    this.currentState = 'registering';
    this.sendHello();
  }

  private onTimer(): void {
    if (this.currentState === 'registering') {
      this.sendHello();
    } else if (this.currentState === 'registered') {
      const silentMs = this.clock.now() - this.lastHeard;
      const limitMs = this.missedHeartbeats * Math.max(this.heartbeatMs, this.gatewayHeartbeatMs);
      if (silentMs > limitMs) this.lose(`nothing from the gateway for ${formatDuration(silentMs)}`);
      else this.send({ type: 'heartbeat' });
    }
  }

  private async receiveLoop(): Promise<void> {
    let burst = 0;
    while (this.currentState !== 'stopped') {
      let frames: Buffer[];
      try {
        frames = await this.socket.receive();
      } catch (error) {
        // The loop's own check narrowed the type; the state may have changed while awaiting.
        if (this.state !== 'stopped') this.logger.error({ err: error }, 'control channel receive failed; the channel is down');
        return;
      }
      try {
        this.receive(frames);
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

  private receive(frames: Buffer[]): void {
    if (frames.length !== 1) {
      this.noteMalformed(`expected 1 frame, got ${frames.length}`);
      return;
    }
    const decoded = decodeGatewayMessage(frames[0]!);
    if (!decoded.ok) {
      this.noteMalformed(decoded.error);
      return;
    }
    const message = decoded.message;
    this.lastHeard = this.clock.now();
    switch (message.type) {
      case 'welcome':
        if (this.currentState !== 'registering' || message.session !== this.session) return;
        this.currentState = 'registered';
        this.gatewayHeartbeatMs = message.heartbeatMs;
        this.logger.info({ feed: this.options.hello.feed, endpoint: this.endpoint }, 'registered with the gateway');
        this.callSafely('onGatewayFound', () => this.options.onGatewayFound?.());
        return;
      case 'refused':
        if (this.currentState !== 'registering' || message.session !== this.session) return;
        this.currentState = 'refused';
        this.logger.error({ feed: this.options.hello.feed, reason: message.message }, 'the gateway refused this adapter');
        this.callSafely('onRefused', () => this.options.onRefused?.(message.message));
        return;
      case 'heartbeat':
        return;
      case 'bye':
        if (this.currentState === 'registered') this.lose('the gateway closed the control channel');
        return;
      case 'reset':
        if (this.currentState === 'registered') this.lose(`the gateway reset the channel: ${message.message}`);
        return;
      case 'subscribe':
      case 'unsubscribe':
        this.execute(message);
        return;
    }
  }

  private execute(command: Command): void {
    const stream: StreamRef = { exchange: command.exchange, symbol: command.symbol };
    if (this.currentState !== 'registered') {
      // Sent before this client dropped everything; the gateway replays after the next welcome.
      const message = `Feed "${this.options.hello.feed}" is re-registering with the gateway`;
      this.send({ type: 'reply', id: command.id, ok: false, message });
      return;
    }
    // One line per command at debug level: what the gateway asked this adapter for, in order.
    this.logger.debug(
      command.type === 'subscribe' ? { command: command.type, ...stream, mode: command.mode, depth: command.depth } : { command: command.type, ...stream },
      'command from the gateway',
    );
    const key = streamKey(stream.exchange, stream.symbol);
    const session = this.session;
    if (command.type === 'subscribe') {
      this.held.set(key, stream);
      this.enqueue(key, async () => {
        const result = await this.attempt(() => this.adapter.subscribe(stream, command.mode, command.depth));
        this.reply(session, command.id, result);
      });
    } else {
      this.held.delete(key);
      this.enqueue(key, async () => {
        const result = await this.attempt(async () => {
          await this.adapter.unsubscribe(stream);
          return { ok: true };
        });
        this.reply(session, command.id, result);
      });
    }
  }

  /** Runs an adapter call, turning a throw or rejection into a failed result. */
  private async attempt(call: () => Promise<SubscribeResult>): Promise<SubscribeResult> {
    try {
      return await call();
    } catch (error) {
      return { ok: false, message: clipText((error as Error)?.message ?? String(error)) };
    }
  }

  /** Replies only within the registration the command came in (a later gateway never asked). */
  private reply(session: number, id: number, result: SubscribeResult): void {
    if (session !== this.session || this.currentState !== 'registered') return;
    if (!result.ok) this.send({ type: 'reply', id, ok: false, message: clipText(result.message) });
    else if (result.depth === undefined) this.send({ type: 'reply', id, ok: true });
    else this.send({ type: 'reply', id, ok: true, depth: result.depth });
  }

  private enqueue(key: string, task: () => Promise<void>): void {
    const next = (this.chains.get(key) ?? Promise.resolve()).then(task).catch((err: unknown) => {
      this.logger.error({ err, feed: this.options.hello.feed }, 'control command failed');
    });
    this.chains.set(key, next);
    void next.then(() => {
      if (this.chains.get(key) === next) this.chains.delete(key);
    });
  }

  /** The gateway is gone: drop what it asked for and register anew. */
  private lose(reason: string): void {
    this.logger.warn({ feed: this.options.hello.feed, reason }, 'gateway lost; dropping its subscriptions');
    this.currentState = 'registering';
    this.session += 1;
    this.callSafely('onGatewayLost', () => this.options.onGatewayLost?.(reason));
    for (const [key, stream] of this.held) {
      this.enqueue(key, async () => {
        try {
          await this.adapter.unsubscribe(stream);
        } catch (err) {
          this.logger.warn({ err, feed: this.options.hello.feed, ...stream }, 'unsubscribe after gateway loss failed');
        }
      });
    }
    this.held.clear();
    this.sendHello();
  }

  private sendHello(): void {
    this.send({
      type: 'hello',
      ...this.options.hello,
      protocol: PROTOCOL_VERSION,
      session: this.session,
      heartbeatMs: this.heartbeatMs,
      status: this.adapter.status(),
    });
  }

  private forwardStatus(event: FeedStatusEvent): void {
    if (this.currentState !== 'registered') return; // the next hello carries it
    if (event.message === undefined) this.send({ type: 'status', status: event.status });
    else this.send({ type: 'status', status: event.status, message: clipText(event.message) });
  }

  /**
   * Hands one message to ZeroMQ, synchronously (sendTimeout 0), so messages leave in call
   * order. With no gateway connected it fails at once and the message is dropped on purpose.
   */
  private send(message: AdapterMessage): void {
    if (this.currentState === 'stopped' && message.type !== 'bye') return;
    try {
      this.socket.send(encodeMessage(message)).catch((err: unknown) => this.sendFailed(message, err));
    } catch (err) {
      this.sendFailed(message, err);
    }
  }

  private sendFailed(message: AdapterMessage, err: unknown): void {
    this.logger.trace({ err, type: message.type }, 'control message not sent (no gateway connected)');
  }

  private callSafely(name: string, call: () => void): void {
    try {
      call();
    } catch (err) {
      this.logger.error({ err, callback: name }, 'control client callback failed');
    }
  }

  private noteMalformed(reason: string): void {
    this.counters.malformed += 1;
    const now = this.clock.now();
    if (now - this.lastMalformedLogAt < MALFORMED_LOG_INTERVAL_MS) return;
    this.lastMalformedLogAt = now;
    this.logger.warn(
      { reason, malformed: this.counters.malformed },
      'malformed control message (further ones are counted, and logged at most every 10 s)',
    );
  }
}
