/**
 * The bus over ZeroMQ: the gateway's SUB binds the instance endpoint and every publisher PUB
 * connects to it (OpenAlgo's fan-in topology), so any number of adapters — tickcast's own or
 * OpenAlgo's Python processes — can feed one gateway.
 */
import * as zmq from 'zeromq';
import { BATCH_TOPIC, BATCH_TOPIC_BYTES, BatchEncoder, decodeBatch } from './batch.js';
import type { BusPublisher, BusSubscriber } from './bus.js';
import { BURST, bindSocket, yieldToEventLoop } from './zmq-socket.js';

/**
 * ZeroMQ's default high-water mark (1000) silently drops a large share of a fast feed; 100k
 * messages absorbs bursts while still bounding memory.
 */
export const HIGH_WATER_MARK = 100_000;

export interface ZmqSubscriberOptions {
  /** `tcp://host:port` (port 0 picks a free one) or `ipc://…`. */
  endpoint: string;
  /** Called if the receive loop itself fails (the socket is then unusable). */
  onError?: (error: Error) => void;
}

export class ZmqSubscriber implements BusSubscriber {
  private handler: (topic: string, payload: string, batched: boolean) => void = () => {};
  private readonly batchEntry = (topic: string, payload: string): void => this.handler(topic, payload, true);
  private malformed: (reason: string) => void = () => {};
  private closed = false;

  private constructor(
    private readonly socket: zmq.Subscriber,
    readonly endpoint: string,
    private readonly options: ZmqSubscriberOptions,
  ) {}

  /** Binds, or throws TickcastError PORT_IN_USE / BUS_BIND_FAILED naming the endpoint. */
  static async bind(options: ZmqSubscriberOptions): Promise<ZmqSubscriber> {
    const socket = new zmq.Subscriber({ receiveHighWaterMark: HIGH_WATER_MARK, linger: 0 });
    const endpoint = await bindSocket(socket, options.endpoint, 'bus');
    socket.subscribe();
    const subscriber = new ZmqSubscriber(socket, endpoint, options);
    void subscriber.receiveLoop();
    return subscriber;
  }

  /**
   * Connects instead of binding: a gateway worker (`--workers N`) receives the bus from its
   * primary's fan-out endpoint (bus/zmq-proxy.ts) rather than binding the instance's endpoint.
   */
  static connect(options: ZmqSubscriberOptions): ZmqSubscriber {
    const socket = new zmq.Subscriber({ receiveHighWaterMark: HIGH_WATER_MARK, linger: 0 });
    socket.connect(options.endpoint);
    socket.subscribe();
    const subscriber = new ZmqSubscriber(socket, options.endpoint, options);
    void subscriber.receiveLoop();
    return subscriber;
  }

  onMessage(handler: (topic: string, payload: string, batched: boolean) => void): void {
    this.handler = handler;
  }

  onMalformed(handler: (reason: string) => void): void {
    this.malformed = handler;
  }

  private receive(frames: Buffer[]): void {
    if (frames.length !== 2) {
      this.malformed(`expected 2 frames, got ${frames.length}`);
      return;
    }
    const [topic, payload] = frames as [Buffer, Buffer];
    if (topic.equals(BATCH_TOPIC_BYTES)) {
      const fault = decodeBatch(payload, this.batchEntry);
      if (fault) this.malformed(`bad ${BATCH_TOPIC} message: ${fault}`);
      return;
    }
    this.handler(topic.toString('utf8'), payload.toString('utf8'), false);
  }

  private async receiveLoop(): Promise<void> {
    try {
      let burst = 0;
      while (!this.closed) {
        const frames = await this.socket.receive();
        try {
          this.receive(frames);
        } catch (error) {
          // A bug in handling one message must not stop the feed.
          this.malformed(`handler failed: ${(error as Error).message}`);
        }
        if (++burst === BURST) {
          burst = 0;
          await yieldToEventLoop();
        }
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
  /**
   * Pack the messages published in one event-loop turn into `@batch` messages (up to
   * `maxBatch` entries or 256 KiB each). Only tickcast gateways understand batches; leave it
   * off to publish OpenAlgo's one-message-per-tick frames. Default true.
   */
  batch?: boolean;
  maxBatch?: number;
  /** ZeroMQ messages waiting to be sent past this are dropped, oldest first. */
  maxQueued?: number;
  /** Called with the number of ticks dropped because the queue was full or a send failed. */
  onDropped?: (count: number) => void;
}

const MAX_BATCH_BYTES = 256 * 1024;

type Outgoing = [string | Buffer, string | Buffer];

/**
 * A PUB that connects to the instance's bus. zeromq.js allows one send in flight per socket,
 * so messages go through one ordered queue drained by a single loop.
 */
export class ZmqPublisher implements BusPublisher {
  private readonly socket = new zmq.Publisher({ sendHighWaterMark: HIGH_WATER_MARK, linger: 0 });
  private queue: Outgoing[] = [];
  /** Ticks per queued message (1 unless batched), for drop accounting. */
  private queueTicks: number[] = [];
  private readonly batch: BatchEncoder | undefined;
  private flushScheduled = false;
  private draining = false;
  private closed = false;
  private readonly maxQueued: number;
  private readonly maxBatch: number;

  private endpoint: string;

  constructor(private readonly options: ZmqPublisherOptions) {
    this.maxQueued = options.maxQueued ?? HIGH_WATER_MARK;
    this.maxBatch = options.maxBatch ?? 256;
    this.batch = options.batch === false ? undefined : new BatchEncoder();
    this.endpoint = options.endpoint;
    this.socket.connect(this.endpoint);
  }

  /** Moves to another bus endpoint (the gateway restarted elsewhere). */
  reconnect(endpoint: string): void {
    if (endpoint === this.endpoint || this.closed) return;
    this.socket.disconnect(this.endpoint);
    this.endpoint = endpoint;
    this.socket.connect(endpoint);
  }

  publish(topic: string, payload: string): void {
    if (this.closed) return;
    if (!this.batch) return this.enqueue([topic, payload], 1);
    this.batch.add(topic, payload);
    if (this.batch.count >= this.maxBatch || this.batch.size >= MAX_BATCH_BYTES) this.flushBatch();
    else if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(this.flushBatch);
    }
  }

  private readonly flushBatch = (): void => {
    this.flushScheduled = false;
    if (!this.batch || this.batch.count === 0 || this.closed) return;
    const ticks = this.batch.count;
    this.enqueue([BATCH_TOPIC_BYTES, this.batch.take()], ticks);
  };

  private enqueue(message: Outgoing, ticks: number): void {
    this.queue.push(message);
    this.queueTicks.push(ticks);
    if (this.queue.length > this.maxQueued) {
      const excess = this.queue.length - this.maxQueued;
      this.queue.splice(0, excess);
      const dropped = this.queueTicks.splice(0, excess).reduce((a, b) => a + b, 0);
      this.options.onDropped?.(dropped);
    }
    if (!this.draining) void this.drain();
  }

  private async drain(): Promise<void> {
    this.draining = true;
    while (this.queue.length > 0 && !this.closed) {
      const batch = this.queue;
      const ticks = this.queueTicks;
      this.queue = [];
      this.queueTicks = [];
      for (let i = 0; i < batch.length && !this.closed; i++) {
        try {
          await this.socket.send(batch[i]!);
        } catch {
          this.options.onDropped?.(ticks[i]!);
        }
        if ((i + 1) % BURST === 0) await yieldToEventLoop();
      }
    }
    this.draining = false;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.flushBatch();
    this.closed = true;
    this.socket.close();
  }
}
