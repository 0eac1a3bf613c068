/**
 * One client connection: who it is, what it may receive, and its outbound flow control
 * (gateway/outbox.ts). Market data never waits on a slow client: past its budget it is conflated
 * per stream, so one slow reader never holds up the others and costs bounded memory. Replies to
 * the client's own requests are always written.
 */
import type { Socket } from 'node:net';
import type { WebSocket } from 'ws';
import type { Clock } from '../clock.js';
import type { Reply } from '../protocol/replies.js';
import { SHARED_FEED } from '../protocol/topics.js';
import type { Corker } from './corker.js';
import { Outbox } from './outbox.js';

const TEXT = { binary: false };

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
  readonly outbox: Outbox;
  /** Requests are handled one at a time, in arrival order. */
  pending: Promise<void> = Promise.resolve();
  pendingCount = 0;

  constructor(
    readonly id: number,
    readonly socket: WebSocket,
    readonly remoteAddress: string,
    limits: SessionLimits,
    private readonly corker: Corker,
    clock: Clock,
  ) {
    this.outbox = new Outbox(
      {
        buffered: () => socket.bufferedAmount,
        write: (frame) => {
          corker.cork(socket);
          socket.send(frame, TEXT);
        },
      },
      { budgetBytes: limits.maxBufferedBytes, slowConsumerMs: limits.slowConsumerMs, clock },
    );
    // ws keeps its TCP socket private; 'drain' is when a congested client made progress.
    (socket as unknown as { _socket?: Socket })._socket?.on('drain', () => {
      if (!this.closed) this.outbox.flush();
    });
  }

  get authenticated(): boolean {
    return this.user !== null;
  }

  reply(reply: Reply): void {
    if (this.closed) return;
    this.corker.cork(this.socket);
    this.socket.send(JSON.stringify(reply));
  }

  /** Market data for `stream` (a stream key; undefined for frames never conflated). */
  deliver(frame: Buffer, stream: string | undefined): void {
    if (!this.closed) this.outbox.push(frame, stream);
  }
}
