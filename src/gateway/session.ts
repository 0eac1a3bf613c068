/**
 * One client connection: who it is, what it may receive, its negotiated wire extensions, and its
 * outbound flow control (gateway/outbox.ts). Market data never waits on a slow client: past its
 * budget it is conflated per stream, so one slow reader never holds up the others and costs
 * bounded memory. Replies to the client's own requests are always written.
 *
 * Market data arrives as complete WebSocket frames, built once per message for every client
 * (fan-out.ts), and is written straight to the TCP socket. That is safe alongside ws's own
 * writes because ws writes each of its frames whole and synchronously (permessage-deflate, which
 * would make it queue, is off), so frames never interleave.
 */
import type { Socket } from 'node:net';
import type { WebSocket } from 'ws';
import type { Clock } from '../clock.js';
import { type Extensions, OPENALGO_EXTENSIONS, type WireEncoder, websocketFrame } from '../protocol/encoding.js';
import type { Reply } from '../protocol/replies.js';
import { SHARED_FEED } from '../protocol/topics.js';
import { type Corkable, type Corker, tcpSocket } from './corker.js';
import type { TokenBucket } from './limits.js';
import { Outbox } from './outbox.js';

const TEXT = { binary: false };
const BINARY = { binary: true };

export interface SessionLimits {
  /** Unsent bytes past which market data is conflated. */
  maxBufferedBytes: number;
  /** A congested client that drains nothing for this long is closed (4408). */
  slowConsumerMs: number;
}

export class Session implements Corkable {
  /** Set once the API key verified and the user's broker resolved. */
  user: string | null = null;
  broker = '';
  feed = SHARED_FEED;
  ordersSubscribed = false;
  closed = false;
  corked = false;
  readonly tcp: Socket | undefined;
  private extensionsValue: Extensions;
  /**
   * Which shared encoding of a message this session takes (fan-out caches one per key):
   * encoding, seq, framing and broker. Recomputed when any of them changes.
   */
  variant = '';
  readonly outbox: Outbox;
  /** Subscribe/unsubscribe rate limit, made on the first such request. */
  requestBucket: TokenBucket | undefined;
  /** Requests are handled one at a time, in arrival order. */
  pending: Promise<void> = Promise.resolve();
  pendingCount = 0;
  private batched: Buffer[] = [];
  private batchedBytes = 0;

  constructor(
    readonly id: number,
    readonly socket: WebSocket,
    readonly remoteAddress: string,
    limits: SessionLimits,
    private readonly corker: Corker,
    private readonly encoder: WireEncoder,
    clock: Clock,
    defaults: Extensions = OPENALGO_EXTENSIONS,
  ) {
    this.tcp = tcpSocket(socket);
    this.extensionsValue = { ...defaults };
    this.updateVariant();
    this.outbox = new Outbox(
      { buffered: () => socket.bufferedAmount + this.batchedBytes, write: (frame) => this.write(frame) },
      { budgetBytes: limits.maxBufferedBytes, slowConsumerMs: limits.slowConsumerMs, clock },
    );
    // 'drain' is when a congested client made progress.
    this.tcp?.on('drain', () => {
      if (!this.closed) this.outbox.flush();
    });
  }

  /** Called once the session authenticated (the listener drops its auth grace timer). */
  onAuthenticated: () => void = () => {};

  get authenticated(): boolean {
    return this.user !== null;
  }

  get extensions(): Readonly<Extensions> {
    return this.extensionsValue;
  }

  set extensions(extensions: Extensions) {
    this.extensionsValue = { ...extensions };
    this.updateVariant();
  }

  setBroker(broker: string): void {
    this.broker = broker;
    this.updateVariant();
  }

  private updateVariant(): void {
    const { encoding, seq, batch } = this.extensionsValue;
    this.variant = `${encoding}${seq ? '+seq' : ''}${batch ? '+batch' : ''}|${this.broker}`;
  }

  /** A reply or event, in the session's encoding (the auth reply passes `json` explicitly). */
  reply(reply: Reply, encoding = this.extensionsValue.encoding): void {
    if (this.closed) return;
    this.corker.cork(this);
    this.socket.send(this.encoder.message(reply, encoding), encoding === 'msgpack' ? BINARY : TEXT);
  }

  /**
   * Market data for `stream` (a stream key; undefined for messages never conflated): a whole
   * WebSocket frame, or for a batching session the bare message (batches are framed later).
   */
  deliver(message: Buffer, stream: string | undefined): void {
    if (!this.closed) this.outbox.push(message, stream);
  }

  private write(message: Buffer): void {
    if (this.extensionsValue.batch) {
      if (this.batched.length === 0) this.corker.defer(this);
      this.batched.push(message);
      this.batchedBytes += message.length;
      return;
    }
    if (this.socket.readyState !== this.socket.OPEN || !this.tcp) return;
    this.corker.cork(this);
    this.tcp.write(message);
  }

  /** Writes the market data batched during this burst as one frame (called by the Corker). */
  flushBatch(): void {
    const messages = this.batched;
    this.batched = [];
    this.batchedBytes = 0;
    if (this.closed || messages.length === 0 || this.socket.readyState !== this.socket.OPEN || !this.tcp) return;
    const { encoding } = this.extensionsValue;
    this.corker.cork(this);
    this.tcp.write(websocketFrame(this.encoder.batch(messages, encoding), encoding === 'msgpack'));
  }
}
