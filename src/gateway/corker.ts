/**
 * Corks client sockets during a burst of writes and uncorks them all once the burst is over
 * (on the next turn of the event loop), so a burst leaves as few syscalls as possible instead of
 * one write per frame.
 */
import type { Socket } from 'node:net';
import type { WebSocket } from 'ws';

/** ws keeps its TCP socket private; the field has been stable across ws 8.x. */
const tcpSocket = (ws: WebSocket): Socket | undefined => (ws as unknown as { _socket?: Socket })._socket;

export class Corker {
  private corked: Socket[] = [];
  private readonly seen = new Set<Socket>();
  private scheduled = false;

  cork(ws: WebSocket): void {
    const socket = tcpSocket(ws);
    if (!socket || this.seen.has(socket)) return;
    socket.cork();
    this.seen.add(socket);
    this.corked.push(socket);
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(this.flush);
    }
  }

  readonly flush = (): void => {
    const sockets = this.corked;
    this.corked = [];
    this.seen.clear();
    this.scheduled = false;
    for (const socket of sockets) socket.uncork();
  };
}
