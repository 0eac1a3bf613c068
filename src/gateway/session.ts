/**
 * One client connection: who it is, what it may receive, and its outbound budget.
 *
 * Market data is written without waiting: if a client's unsent bytes pass its budget, further
 * market data for it is dropped (and counted) until it drains, so one slow reader never holds up
 * the others. Replies to its own requests are always written.
 */
import type { WebSocket } from 'ws';
import type { Reply } from '../protocol/replies.js';
import { SHARED_FEED } from '../protocol/topics.js';
import type { Corker } from './corker.js';

const TEXT = { binary: false };

export class Session {
  /** Set once the API key verified and the user's broker resolved. */
  user: string | null = null;
  broker = '';
  feed = SHARED_FEED;
  ordersSubscribed = false;
  closed = false;
  /** Market-data messages written and dropped for lack of budget. */
  sent = 0;
  dropped = 0;
  /** Requests are handled one at a time, in arrival order. */
  pending: Promise<void> = Promise.resolve();
  pendingCount = 0;

  constructor(
    readonly id: number,
    readonly socket: WebSocket,
    readonly remoteAddress: string,
    private readonly maxBufferedBytes: number,
    private readonly corker: Corker,
  ) {}

  get authenticated(): boolean {
    return this.user !== null;
  }

  reply(reply: Reply): void {
    if (this.closed) return;
    this.corker.cork(this.socket);
    this.socket.send(JSON.stringify(reply));
  }

  /** Writes one serialised market-data frame, or drops it if the client is over budget. */
  deliver(frame: Buffer): void {
    if (this.closed) return;
    if (this.socket.bufferedAmount > this.maxBufferedBytes) {
      this.dropped++;
      return;
    }
    this.corker.cork(this.socket);
    this.socket.send(frame, TEXT);
    this.sent++;
  }
}
