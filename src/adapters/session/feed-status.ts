/**
 * A feed's status and its listeners. Status events go out on changes only, and a listener that
 * throws is logged and does not stop the others.
 */
import type { Logger } from '../../observability/logger.js';
import type { FeedStatus, FeedStatusEvent } from '../../feed.js';

/** What the status aggregation reads from each socket. */
export interface SessionView {
  readonly state: 'idle' | 'connecting' | 'open' | 'retrying' | 'down' | 'closed';
  readonly message: string | undefined;
  readonly everOpened: boolean;
  readonly failures: number;
}

/**
 * A feed's status from its sockets (pure): down if the broker refuses any, reconnecting while
 * any is out, else live. A socket opened for more capacity is no outage until it failed once.
 */
export function aggregateStatus(sessions: readonly SessionView[], label: string): { status: FeedStatus; message: string | undefined } {
  const refused = sessions.find((session) => session.state === 'down');
  if (refused) return { status: 'down', message: refused.message };
  const out = sessions.find((session, i) => session.state !== 'open' && (i === 0 || session.everOpened || session.failures > 0));
  if (out) return { status: 'reconnecting', message: out.message ?? `connecting to ${label}` };
  return { status: 'live', message: undefined };
}

export class FeedStatusBoard {
  private current: FeedStatus = 'down';
  private currentMessage: string | undefined = 'not started';
  private readonly listeners: Array<(event: FeedStatusEvent) => void> = [];

  constructor(
    private readonly feed: string,
    private readonly logger: Logger,
  ) {}

  get status(): FeedStatus {
    return this.current;
  }

  get message(): string | undefined {
    return this.currentMessage;
  }

  listen(listener: (event: FeedStatusEvent) => void): void {
    this.listeners.push(listener);
  }

  set(status: FeedStatus, message: string | undefined): void {
    this.currentMessage = message;
    if (status === this.current) return;
    this.current = status;
    const event: FeedStatusEvent = message === undefined ? { feed: this.feed, status } : { feed: this.feed, status, message };
    this.logger.info({ status, message }, 'feed status');
    for (const listener of this.listeners) {
      try {
        listener(event);
      } catch (err) {
        this.logger.error({ err, status }, 'feed status listener failed');
      }
    }
  }
}

/** Logs at most once per interval, counting what it skipped, so garbage cannot flood the log. */
export class LogThrottle {
  private lastAt = -Infinity;
  private suppressed = 0;

  constructor(
    private readonly now: () => number,
    private readonly intervalMs = 10_000,
  ) {}

  log(logger: Logger, level: 'info' | 'warn' | 'error', fields: Record<string, unknown>, message: string): void {
    const now = this.now();
    if (now - this.lastAt < this.intervalMs) {
      this.suppressed += 1;
      return;
    }
    this.lastAt = now;
    const suppressed = this.suppressed;
    this.suppressed = 0;
    logger[level]({ ...fields, suppressed }, message);
  }
}
