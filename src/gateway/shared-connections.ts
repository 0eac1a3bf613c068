/**
 * The per-key connection limit counted by another process (the primary of `--workers N`, through
 * an injected ConnectionLedger) rather than from this gateway's own sessions alone.
 *
 * The request handler checks the limit synchronously, right after the key is verified. So the
 * verifier is wrapped: once a key verifies for a session about to become its user, the
 * connection is reserved with the ledger (counted only if under the limit), and the handler's
 * count for that user is what the ledger held before, so a refusal and the ledger agree. Which
 * session a verification is for is carried by AsyncLocalStorage from the request that caused it.
 * A reservation the authentication did not use (refused, failed, client gone) is given back when
 * the request ends; one it used is given back when the session leaves the user.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import type { ConnectionLedger } from './limits.js';
import type { KeyVerifier } from './request-handler.js';
import type { Session } from './session.js';

export class SharedConnections {
  private readonly requestOf = new AsyncLocalStorage<Session>();
  /** Reservations made while a session authenticates, until it becomes the user or the request ends. */
  private readonly pending = new Map<Session, { user: string; held: number }>();
  /** The user each session holds a counted connection for. */
  private readonly counted = new Map<Session, string>();

  constructor(
    private readonly ledger: ConnectionLedger,
    private readonly limit: number,
  ) {}

  /** Runs `session`'s request; gives back a reservation it made but did not use. */
  async run(session: Session, handle: () => Promise<void>): Promise<void> {
    try {
      await this.requestOf.run(session, handle);
    } finally {
      this.dropPending(session);
    }
  }

  verifier(inner: KeyVerifier): KeyVerifier {
    return {
      verify: async (apiKey) => {
        const identity = await inner.verify(apiKey);
        const session = this.requestOf.getStore();
        // Re-checking the session's own key takes no new connection.
        if (identity && session && !session.closed && session.user !== identity.user) {
          this.dropPending(session);
          const held = await this.ledger.reserve(identity.user);
          this.pending.set(session, { user: identity.user, held });
        }
        return identity;
      },
    };
  }

  /** The instance's connections of `user` as the reservation of the current request saw them, if it made one. */
  heldFor(user: string): number | undefined {
    const session = this.requestOf.getStore();
    const pending = session && this.pending.get(session);
    return pending?.user === user ? pending.held : undefined;
  }

  /** The session's user changed (or it left): the counted connection follows. */
  userChanged(session: Session, previous: string | null, leaving: boolean): void {
    if (previous !== null && this.counted.get(session) === previous) {
      this.counted.delete(session);
      this.ledger.release(previous);
    }
    if (leaving || session.user === null) return;
    const pending = this.pending.get(session);
    if (pending?.user === session.user && pending.held < this.limit) {
      this.pending.delete(session);
      this.counted.set(session, session.user);
    }
  }

  private dropPending(session: Session): void {
    const pending = this.pending.get(session);
    if (!pending) return;
    this.pending.delete(session);
    if (pending.held < this.limit) this.ledger.release(pending.user);
  }
}
