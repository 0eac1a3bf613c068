/**
 * The end of a burst. Client sockets written to during one event-loop turn are corked, and
 * sessions that batch market data are queued; on the next turn batches are written and every
 * socket uncorked, so a burst leaves as few frames and syscalls as possible.
 */
import type { Socket } from 'node:net';
import type { WebSocket } from 'ws';

/** ws keeps its TCP socket private; the field has been stable across ws 8.x. */
export const tcpSocket = (ws: WebSocket): Socket | undefined => (ws as unknown as { _socket?: Socket })._socket;

export interface Batching {
  flushBatch(): void;
}

export class Corker {
  private corked: Socket[] = [];
  private readonly seen = new Set<Socket>();
  private batching: Batching[] = [];
  private scheduled = false;

  cork(ws: WebSocket): void {
    const socket = tcpSocket(ws);
    if (!socket || this.seen.has(socket)) return;
    socket.cork();
    this.seen.add(socket);
    this.corked.push(socket);
    this.schedule();
  }

  /** Runs `session.flushBatch()` at the end of this burst (once per call). */
  defer(session: Batching): void {
    this.batching.push(session);
    this.schedule();
  }

  private schedule(): void {
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(this.flush);
    }
  }

  readonly flush = (): void => {
    const batching = this.batching;
    this.batching = [];
    for (const session of batching) session.flushBatch();
    const sockets = this.corked;
    this.corked = [];
    this.seen.clear();
    this.scheduled = false;
    for (const socket of sockets) socket.uncork();
  };
}
