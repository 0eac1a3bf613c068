/**
 * The bus over ZeroMQ: the gateway's SUB binds the instance endpoint and every publisher PUB
 * connects to it (OpenAlgo's fan-in topology), so any number of adapters — tickcast's own or
 * OpenAlgo's Python processes — can feed one gateway.
 */
import * as zmq from 'zeromq';
import { ErrorCode, TickcastError } from '../errors.js';
import type { BusMessage, BusPublisher, BusSubscriber } from './bus.js';

/**
 * ZeroMQ's default high-water mark (1000) silently drops a large share of a fast feed; 100k
 * messages absorbs bursts while still bounding memory.
 */
const HIGH_WATER_MARK = 100_000;

export interface ZmqSubscriberOptions {
  /** `tcp://host:port` (port 0 picks a free one) or `ipc://…`. */
  endpoint: string;
  /** Called once per message that does not have exactly two frames (it is skipped). */
  onMalformed?: (frames: number) => void;
  /** Called if the receive loop itself fails (the socket is then unusable). */
  onError?: (error: Error) => void;
}

function bindEndpoint(endpoint: string): string {
  // ZeroMQ spells "any free port" as `*`.
  return endpoint.startsWith('tcp://') ? endpoint.replace(/:0$/, ':*') : endpoint;
}

export class ZmqSubscriber implements BusSubscriber {
  private handler: (message: BusMessage) => void = () => {};
  private closed = false;

  private constructor(
    private readonly socket: zmq.Subscriber,
    readonly endpoint: string,
    private readonly options: ZmqSubscriberOptions,
  ) {}

  static async bind(options: ZmqSubscriberOptions): Promise<ZmqSubscriber> {
    const socket = new zmq.Subscriber({ receiveHighWaterMark: HIGH_WATER_MARK, linger: 0 });
    try {
      await socket.bind(bindEndpoint(options.endpoint));
    } catch (error) {
      socket.close();
      const cause = (error as Error).message;
      const code = /in use/i.test(cause) ? ErrorCode.PORT_IN_USE : ErrorCode.BUS_BIND_FAILED;
      throw new TickcastError(code, `cannot bind the bus endpoint ${options.endpoint}: ${cause}`);
    }
    socket.subscribe();
    const subscriber = new ZmqSubscriber(socket, socket.lastEndpoint ?? options.endpoint, options);
    void subscriber.receiveLoop();
    return subscriber;
  }

  onMessage(handler: (message: BusMessage) => void): void {
    this.handler = handler;
  }

  private async receiveLoop(): Promise<void> {
    try {
      for await (const frames of this.socket) {
        if (frames.length === 2) this.handler({ topic: frames[0]!, payload: frames[1]! });
        else this.options.onMalformed?.(frames.length);
      }
    } catch (error) {
      if (!this.closed) this.options.onError?.(error as Error);
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.socket.close();
  }
}

export interface ZmqPublisherOptions {
  endpoint: string;
  /** Messages waiting to be handed to ZeroMQ past this are dropped, oldest first. */
  maxQueued?: number;
  onDropped?: (count: number) => void;
}

/**
 * A PUB that connects to the instance's bus. zeromq.js allows one send in flight per socket,
 * so messages go through one ordered queue drained by a single loop.
 */
export class ZmqPublisher implements BusPublisher {
  private readonly socket = new zmq.Publisher({ sendHighWaterMark: HIGH_WATER_MARK, linger: 0 });
  private queue: Array<[string, string | Buffer]> = [];
  private draining = false;
  private closed = false;
  private readonly maxQueued: number;

  constructor(private readonly options: ZmqPublisherOptions) {
    this.maxQueued = options.maxQueued ?? HIGH_WATER_MARK;
    this.socket.connect(options.endpoint);
  }

  publish(topic: string, payload: string | Buffer): void {
    if (this.closed) return;
    this.queue.push([topic, payload]);
    if (this.queue.length > this.maxQueued) {
      const excess = this.queue.length - this.maxQueued;
      this.queue.splice(0, excess);
      this.options.onDropped?.(excess);
    }
    if (!this.draining) void this.drain();
  }

  private async drain(): Promise<void> {
    this.draining = true;
    while (this.queue.length > 0 && !this.closed) {
      const batch = this.queue;
      this.queue = [];
      for (const message of batch) {
        if (this.closed) break;
        try {
          await this.socket.send(message);
        } catch {
          this.options.onDropped?.(1);
        }
      }
    }
    this.draining = false;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.socket.close();
  }
}
