/**
 * The control protocol over ZeroMQ: the gateway binds a ROUTER, each adapter connects a DEALER
 * to it. A peer's address is its routing id (hex); the adapter's only peer is its gateway.
 */
import { randomBytes } from 'node:crypto';
import * as zmq from 'zeromq';
import { BURST, bindSocket, yieldToEventLoop } from '../bus/zmq-socket.js';
import type { Logger } from '../observability/logger.js';
import type { AdapterTransport, ControlTransport } from './transport.js';

/** Frames larger than this are dropped by the transport (the codec refuses more than 64 KiB of JSON anyway). */
const MAX_FRAME_BYTES = 1024 * 1024;
/** Frames queued per peer before sends fail (a peer that far behind is as good as dead). */
const SEND_HIGH_WATER_MARK = 10_000;
/**
 * How long a closing transport waits for frames just sent (a bye): ZeroMQ's linger alone does
 * not reliably deliver a message sent just before close (measured: a few in a hundred were lost).
 */
const CLOSE_FLUSH_MS = 50;

/** The adapter's name for the one gateway its DEALER talks to. */
export const ZMQ_GATEWAY_ADDRESS = 'gateway';

/** Runs `handle` for every message of `socket` until it closes, yielding to the event loop between bursts. */
async function receiveLoop(socket: zmq.Socket & zmq.Readable, handle: (frames: Buffer[]) => void, logger: Logger): Promise<void> {
  let burst = 0;
  while (!socket.closed) {
    let frames: Buffer[];
    try {
      frames = await socket.receive();
    } catch (error) {
      if (!socket.closed) logger.error({ err: error }, 'control channel receive failed; the channel is down');
      return;
    }
    try {
      handle(frames);
    } catch (err) {
      // A bug in handling one frame must not stop the channel.
      logger.error({ err }, 'control frame handler failed');
    }
    if (++burst === BURST) {
      burst = 0;
      await yieldToEventLoop();
    }
  }
}

async function closeAfterFlush(socket: zmq.Socket, sent: boolean): Promise<void> {
  if (socket.closed) return;
  if (sent) await new Promise((resolve) => setTimeout(resolve, CLOSE_FLUSH_MS));
  socket.close();
}

/** The gateway's end: a ROUTER. */
export class ZmqGatewayTransport implements ControlTransport {
  private handler: (from: string, data: Uint8Array) => void = () => {};
  private sentSince = false;

  private constructor(
    private readonly socket: zmq.Router,
    /** The bound URL (with the real port when 0 was asked for). */
    readonly endpoint: string,
    logger: Logger,
  ) {
    void receiveLoop(socket, (frames) => {
      // [routing id, frame]; anything else is not ours, and has no sender to blame.
      if (frames.length === 2) this.handler(frames[0]!.toString('hex'), frames[1]!);
    }, logger);
  }

  /**
   * Binds `endpoint`: `tcp://host:port` (0: any free port, see `.endpoint`) or `ipc://…`. Throws
   * TickcastError PORT_IN_USE / BUS_BIND_FAILED naming it.
   */
  static async bind(endpoint: string, logger: Logger): Promise<ZmqGatewayTransport> {
    const socket = new zmq.Router({
      // Sends to a vanished peer fail with EHOSTUNREACH instead of vanishing silently.
      mandatory: true,
      // Every send completes or fails at once: nothing is left in flight.
      sendTimeout: 0,
      // A reconnecting adapter (same routing id) replaces its half-dead old connection.
      handover: true,
      linger: 0,
      sendHighWaterMark: SEND_HIGH_WATER_MARK,
      maxMessageSize: MAX_FRAME_BYTES,
    });
    return new ZmqGatewayTransport(socket, await bindSocket(socket, endpoint, 'control'), logger);
  }

  /** A ROUTER has no link of its own to lose. */
  readonly connected = true;

  onFrame(handler: (from: string, data: Uint8Array) => void): void {
    this.handler = handler;
  }

  /** A ROUTER has no link of its own to lose. */
  onReconnect(): void {}

  async send(to: string, frame: string): Promise<boolean> {
    if (this.socket.closed) return false;
    this.sentSince = true;
    try {
      await this.socket.send([Buffer.from(to, 'hex'), frame]);
      return true;
    } catch {
      return false;
    }
  }

  close(): Promise<void> {
    return closeAfterFlush(this.socket, this.sentSince);
  }
}

/** An adapter's end: a DEALER connected to its gateway's ROUTER. */
export class ZmqAdapterTransport implements AdapterTransport {
  private readonly socket: zmq.Dealer;
  private handler: (from: string, data: Uint8Array) => void = () => {};
  private sentSince = false;

  /** Connects to `endpoint` (ZeroMQ keeps reconnecting until a gateway listens). Throws only for an endpoint ZeroMQ cannot parse. */
  constructor(
    private current: string,
    logger: Logger,
  ) {
    this.socket = new zmq.Dealer({
      // A stable id across reconnections, so a network blip does not look like a new process.
      routingId: `tickcast-${randomBytes(8).toString('hex')}`,
      // Queue only to completed connections and never wait: while no gateway is connected every
      // send fails at once, so no stale frame piles up to be delivered later.
      immediate: true,
      sendTimeout: 0,
      sendHighWaterMark: SEND_HIGH_WATER_MARK,
      maxMessageSize: MAX_FRAME_BYTES,
      linger: 0,
    });
    this.socket.connect(current);
    void receiveLoop(this.socket, (frames) => {
      if (frames.length === 1) this.handler(ZMQ_GATEWAY_ADDRESS, frames[0]!);
    }, logger);
  }

  get endpoint(): string {
    return this.current;
  }

  /** The gateway's silence is the only sign of a lost connection here. */
  readonly connected = true;

  /** Moves to a gateway at another endpoint (it restarted elsewhere). */
  reconnect(endpoint: string): void {
    if (endpoint === this.current || this.socket.closed) return;
    try {
      this.socket.disconnect(this.current);
    } catch {
      // already gone
    }
    this.current = endpoint;
    this.socket.connect(endpoint);
  }

  onFrame(handler: (from: string, data: Uint8Array) => void): void {
    this.handler = handler;
  }

  onReconnect(): void {}

  async send(_to: string, frame: string): Promise<boolean> {
    if (this.socket.closed) return false;
    this.sentSince = true;
    try {
      await this.socket.send(frame);
      return true;
    } catch {
      // No gateway connected: dropped on purpose (see `immediate`).
      return false;
    }
  }

  announce(frame: string): void {
    void this.send(ZMQ_GATEWAY_ADDRESS, frame);
  }

  close(): Promise<void> {
    return closeAfterFlush(this.socket, this.sentSince);
  }
}
