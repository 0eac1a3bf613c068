/**
 * The per-key connection limit counted by another process (the primary of `--workers N`, through
 * an injected ConnectionLedger) rather than from this gateway's own sessions alone: a session
 * takes one of its user's connections when it authenticates (the request handler's
 * `reserveConnection`) and gives it back when it leaves the user (closes, signs out, or
 * authenticates as someone else).
 */
import type { ConnectionLedger } from './limits.js';
import type { Session } from './session.js';

export class SharedConnections {
  /** The user each session holds a counted connection for. */
  private readonly counted = new Map<Session, string>();

  constructor(
    private readonly ledger: ConnectionLedger,
    private readonly limit: number,
  ) {}

  /** Takes one of `user`'s connections for `session`; false past the limit, or if the session closed meanwhile. */
  async reserve(session: Session, user: string): Promise<boolean> {
    if ((await this.ledger.reserve(user)) >= this.limit) return false;
    if (session.closed) {
      this.ledger.release(user);
      return false;
    }
    // Authenticating as someone else: the previous user's connection is given back now.
    const previous = this.counted.get(session);
    if (previous !== undefined) this.ledger.release(previous);
    this.counted.set(session, user);
    return true;
  }

  /** The session's user changed or it left: a connection it no longer uses is given back. */
  userChanged(session: Session, leaving: boolean): void {
    const counted = this.counted.get(session);
    if (counted === undefined || (!leaving && session.user === counted)) return;
    this.counted.delete(session);
    this.ledger.release(counted);
  }
}
