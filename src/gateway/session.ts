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
 *
 * A gateway holds thousands of these, so per-session memory is kept small: what is the same for
 * every session (outbox limits, default extensions) is shared, and what most sessions never
 * need (a batch buffer, a 'drain' listener, the request chain once idle) is made on first use.
 */
import type { Socket } from 'node:net';
import type { WebSocket } from 'ws';
import { CloseReason } from '../errors.js';
import { type Extensions, OPENALGO_EXTENSIONS, type WireEncoder, websocketFrame } from '../protocol/encoding.js';
import type { Reply } from '../protocol/replies.js';
import { SHARED_FEED } from '../protocol/topics.js';
import { type Corkable, type Corker, tcpSocket } from './corker.js';
import type { TokenBucket } from './limits.js';
import { Outbox, type OutboxOptions, type OutboxSink } from './outbox.js';

/** How long a client the gateway closes has to answer the close frame before it is cut off. */
const CLOSE_CUTOFF_MS = 2000;

const TEXT = { binary: false };
const BINARY = { binary: true };

const sameExtensions = (a: Readonly<Extensions>, b: Readonly<Extensions>): boolean =>
  a.encoding === b.encoding && a.batch === b.batch && a.seq === b.seq && a.snapshot === b.snapshot;

export class Session implements Corkable, OutboxSink {
  /** Set once the API key verified and the user's broker resolved. */
  user: string | null = null;
  /** The key the session authenticated with, re-checked before its requests (a revoked key signs it out). */
  apiKey: unknown;
  broker = '';
  feed = SHARED_FEED;
  ordersSubscribed = false;
  closed = false;
  corked = false;
  readonly tcp: Socket | undefined;
  /** Never mutated: the listener's defaults (shared by every session that keeps them) or a copy. */
  private extensionsValue: Readonly<Extensions>;
  /**
   * Which shared encoding of a message this session takes (fan-out caches one per key):
   * encoding, seq, framing and broker. Recomputed when any of them changes.
   */
  variant = '';
  readonly outbox: Outbox;
  /**
   * Streams (key → mode mask) whose recovery after reconnect is pending: their live messages are
   * held back until it is done (fan-out.ts). Undefined when none, as for almost every session.
   */
  recovering: Map<string, number> | undefined;
  /** Subscribe/unsubscribe rate limit, made on the first such request. */
  requestBucket: TokenBucket | undefined;
  /**
   * Requests are handled one at a time, in arrival order: the tail of the chain while any is in
   * flight (the listener clears it when the last one settles).
   */
  pending: Promise<void> | undefined;
  pendingCount = 0;
  /** Owned by the listener: the auth grace timer until authenticated, and the keepalive state. */
  authGrace: NodeJS.Timeout | undefined;
  pingSentAt = 0;
  lastSeenAt: number;
  /** Market data of this burst, for a session that batches (none between bursts). */
  private batched: Buffer[] | undefined;
  private batchedBytes = 0;
  /** Listens for 'drain' while the outbox holds a backlog (made the first time it does). */
  private drained: (() => void) | undefined;

  /** `outbox` and `defaults` are shared by the listener's sessions and never changed here. */
  constructor(
    readonly id: number,
    readonly socket: WebSocket,
    readonly remoteAddress: string,
    outbox: OutboxOptions,
    private readonly corker: Corker,
    private readonly encoder: WireEncoder,
    defaults: Readonly<Extensions> = OPENALGO_EXTENSIONS,
  ) {
    this.tcp = tcpSocket(socket);
    this.extensionsValue = defaults;
    this.updateVariant();
    this.outbox = new Outbox(this, outbox);
    this.lastSeenAt = outbox.clock.now();
  }

  /** Called once the session authenticated: the auth grace timer is no longer needed. */
  onAuthenticated(): void {
    clearTimeout(this.authGrace);
    this.authGrace = undefined;
  }

  /**
   * Closes the connection with `code` (errors.ts CloseCode). A client that does not answer the
   * close frame is cut off soon, not after ws's 30 s closing handshake.
   */
  close(code: number): void {
    if (this.closed || this.socket.readyState !== this.socket.OPEN) return;
    this.socket.close(code, CloseReason[code]);
    setTimeout(() => this.socket.terminate(), CLOSE_CUTOFF_MS).unref();
  }

  get authenticated(): boolean {
    return this.user !== null;
  }

  get extensions(): Readonly<Extensions> {
    return this.extensionsValue;
  }

  set extensions(extensions: Extensions) {
    // Most clients negotiate nothing: they keep sharing the defaults instead of a copy each.
    if (!sameExtensions(extensions, this.extensionsValue)) this.extensionsValue = { ...extensions };
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
    // A client that does not read is cut off (outbox.ts), not buffered for without end.
    if (this.closed || !this.outbox.admitReply()) return;
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

  /** Outbox sink: unsent bytes (ws's and this burst's batch). */
  buffered(): number {
    return this.socket.bufferedAmount + this.batchedBytes;
  }

  /** Outbox sink: a frame (or a message to batch) leaves now. Everything else goes through `deliver`. */
  write(message: Buffer): void {
    if (this.extensionsValue.batch) {
      if (this.batched === undefined) {
        this.batched = [];
        this.corker.defer(this);
      }
      this.batched.push(message);
      this.batchedBytes += message.length;
      return;
    }
    if (this.socket.readyState !== this.socket.OPEN || !this.tcp) return;
    this.corker.cork(this);
    this.tcp.write(message);
  }

  /** Outbox sink: 'drain' (a congested client made progress) flushes the backlog while there is one. */
  backlogged(waiting: boolean): void {
    if (!this.tcp) return;
    if (!waiting) {
      if (this.drained) this.tcp.off('drain', this.drained);
      return;
    }
    this.drained ??= () => {
      if (!this.closed) this.outbox.flush();
    };
    this.tcp.on('drain', this.drained);
  }

  /** Writes the market data batched during this burst as one frame (called by the Corker). */
  flushBatch(): void {
    const messages = this.batched;
    this.batched = undefined;
    this.batchedBytes = 0;
    if (this.closed || messages === undefined || this.socket.readyState !== this.socket.OPEN || !this.tcp) return;
    const { encoding } = this.extensionsValue;
    this.corker.cork(this);
    this.tcp.write(websocketFrame(this.encoder.batch(messages, encoding), encoding === 'msgpack'));
  }
}
