/**
 * One client connection: who it is, what it may receive, its negotiated wire extensions, and its
 * outbound flow control (gateway/outbox.ts). Market data never waits on a slow client: past its
 * budget it is conflated per stream, so one slow reader never holds up the others and costs
 * bounded memory. Replies to the client's own requests are always written.
 */
import type { WebSocket } from 'ws';
import type { Clock } from '../clock.js';
import { type Extensions, OPENALGO_EXTENSIONS, type WireEncoder } from '../protocol/encoding.js';
import type { Reply } from '../protocol/replies.js';
import { SHARED_FEED } from '../protocol/topics.js';
import { type Corker, tcpSocket } from './corker.js';
import { Outbox } from './outbox.js';

const TEXT = { binary: false };
const BINARY = { binary: true };

export interface SessionLimits {
  /** Unsent bytes past which market data is conflated. */
  maxBufferedBytes: number;
  /** A congested client that drains nothing for this long is closed (4408). */
  slowConsumerMs: number;
}

export class Session {
  /** Set once the API key verified and the user's broker resolved. */
  user: string | null = null;
  broker = '';
  feed = SHARED_FEED;
  ordersSubscribed = false;
  closed = false;
  extensions: Extensions;
  readonly outbox: Outbox;
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
    this.extensions = { ...defaults };
    this.outbox = new Outbox(
      { buffered: () => socket.bufferedAmount + this.batchedBytes, write: (frame) => this.write(frame) },
      { budgetBytes: limits.maxBufferedBytes, slowConsumerMs: limits.slowConsumerMs, clock },
    );
    // 'drain' is when a congested client made progress.
    tcpSocket(socket)?.on('drain', () => {
      if (!this.closed) this.outbox.flush();
    });
  }

  get authenticated(): boolean {
    return this.user !== null;
  }

  /** A reply or event, in the session's encoding (the auth reply passes `json` explicitly). */
  reply(reply: Reply, encoding = this.extensions.encoding): void {
    if (this.closed) return;
    this.corker.cork(this.socket);
    this.socket.send(this.encoder.message(reply, encoding), encoding === 'msgpack' ? BINARY : TEXT);
  }

  /** Market data for `stream` (a stream key; undefined for frames never conflated). */
  deliver(frame: Buffer, stream: string | undefined): void {
    if (!this.closed) this.outbox.push(frame, stream);
  }

  private write(frame: Buffer): void {
    if (this.extensions.batch) {
      if (this.batched.length === 0) this.corker.defer(this);
      this.batched.push(frame);
      this.batchedBytes += frame.length;
      return;
    }
    this.corker.cork(this.socket);
    this.socket.send(frame, this.extensions.encoding === 'msgpack' ? BINARY : TEXT);
  }

  /** Writes the market data batched during this burst as one frame (called by the Corker). */
  flushBatch(): void {
    const frames = this.batched;
    this.batched = [];
    this.batchedBytes = 0;
    if (this.closed || frames.length === 0) return;
    const { encoding } = this.extensions;
    this.corker.cork(this.socket);
    this.socket.send(this.encoder.batch(frames, encoding), encoding === 'msgpack' ? BINARY : TEXT);
  }
}
