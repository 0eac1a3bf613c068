/**
 * The end of a burst. Sessions written to during one event-loop turn have their TCP socket
 * corked, and sessions that batch market data are queued; on the next turn batches are written
 * and every socket uncorked, so a burst leaves as few frames and syscalls as possible.
 */
import type { Socket } from 'node:net';
import type { WebSocket } from 'ws';

/** ws keeps its TCP socket private; the field has been stable across ws 8.x. */
export const tcpSocket = (ws: WebSocket): Socket | undefined => (ws as unknown as { _socket?: Socket })._socket;

export interface Corkable {
  /** Set while the session's socket is corked for this burst (owned by the Corker). */
  corked: boolean;
  readonly tcp: Socket | undefined;
  flushBatch(): void;
}

export class Corker {
  private corked: Corkable[] = [];
  private batching: Corkable[] = [];
  private scheduled = false;

  cork(session: Corkable): void {
    if (session.corked || !session.tcp) return;
    session.corked = true;
    session.tcp.cork();
    this.corked.push(session);
    this.schedule();
  }

  /** Runs `session.flushBatch()` at the end of this burst (once per call). */
  defer(session: Corkable): void {
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
    const corked = this.corked;
    this.corked = [];
    this.scheduled = false;
    for (const session of corked) {
      session.corked = false;
      session.tcp!.uncork();
    }
  };
}
