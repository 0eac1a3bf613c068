/**
 * A client's flow control. Market data is written straight to the socket while the client keeps
 * up. Once more than `budgetBytes` are unsent, frames wait here instead, keyed by slot (a stream
 * and mode): a newer message of a slot replaces the waiting one (conflation) and moves to the
 * back, so waiting frames leave in the order their contents arrived, the client never receives
 * an older value after a newer one of the same stream, and the backlog never exceeds one frame
 * per slot.
 * When the socket drains, the backlog is written. A client that stays congested longer than
 * `slowConsumerMs` is given up on, and so is one that lets replies pile up: replies cannot be
 * conflated, so a client with more than twice the budget unsent gets no more of them (a client
 * that sends requests and never reads would otherwise grow the gateway's memory without end).
 *
 * Pure bookkeeping with an injected writer and clock, so it is tested without sockets.
 */
import type { Clock } from '../clock.js';

/** The same for every client of a listener: one object shared by all their outboxes. */
export interface OutboxOptions {
  budgetBytes: number;
  /** How long a congested client may go without draining before `isSlowConsumer` says so. */
  slowConsumerMs: number;
  clock: Clock;
  /** Waiting frames that cannot be conflated (order updates) allowed before giving up. */
  maxUnconflatable?: number;
}

export interface OutboxSink {
  /** Bytes written but not yet handed to the kernel. */
  buffered(): number;
  write(frame: Buffer): void;
  /** Told when a backlog starts (true) and when it is gone (false): when to call `flush`. */
  backlogged?(waiting: boolean): void;
}

const DEFAULT_MAX_UNCONFLATABLE = 1000;
/** Never written to: an outbox swaps in its own map when it first has to hold something. */
const EMPTY: Map<string, Buffer> = new Map();

export class Outbox {
  /** Frames written, replaced by a newer tick while waiting, and thrown away on close. */
  sent = 0;
  conflated = 0;
  dropped = 0;
  /** Shared by every client that is not congested (most of them): no map per connection. */
  private waiting: Map<string, Buffer> = EMPTY;
  private unconflatable = 0;
  private nextUnconflatable = 0;
  private congestedSince = 0;
  /** A reply found the client over its reply limit: it is given up on at the next check. */
  private overflowed = false;

  constructor(
    private readonly sink: OutboxSink,
    private readonly options: OutboxOptions,
  ) {}

  /** Queues or writes a frame of `stream` (`undefined`: never conflated, e.g. an order update). */
  push(frame: Buffer, stream: string | undefined): void {
    if (this.waiting.size > 0 && stream !== undefined && this.waiting.has(stream)) {
      // To the back: frames leave in the order their contents arrived, so a stream's newer LTP
      // never goes out before an older Quote of it still waiting in its own slot.
      this.waiting.delete(stream);
      this.waiting.set(stream, frame);
      this.conflated++;
      return;
    }
    if (this.waiting.size === 0 && this.sink.buffered() <= this.options.budgetBytes) {
      this.sink.write(frame);
      this.sent++;
      return;
    }
    if (this.waiting.size === 0) {
      this.waiting = new Map();
      this.congestedSince = this.options.clock.now();
      this.sink.backlogged?.(true);
    }
    if (stream === undefined) {
      this.unconflatable++;
      this.waiting.set(`\u0000${this.nextUnconflatable++}`, frame);
    } else {
      this.waiting.set(stream, frame);
    }
  }

  /** Writes waiting frames while the budget allows (call when the socket drains: progress). */
  flush(): void {
    if (this.waiting.size === 0) return;
    this.congestedSince = this.options.clock.now();
    for (const [key, frame] of this.waiting) {
      if (this.sink.buffered() > this.options.budgetBytes) return;
      this.waiting.delete(key);
      if (key.startsWith('\u0000')) this.unconflatable--;
      this.sink.write(frame);
      this.sent++;
    }
    if (this.waiting.size === 0) {
      this.waiting = EMPTY;
      this.sink.backlogged?.(false);
    }
  }

  /**
   * Whether one more reply (never conflated, written at once) may be queued: the client's unsent
   * bytes are within twice the budget. Once refused, the client counts as a slow consumer.
   */
  admitReply(): boolean {
    if (this.sink.buffered() <= 2 * this.options.budgetBytes) return true;
    this.overflowed = true;
    return false;
  }

  get backlog(): number {
    return this.waiting.size;
  }

  /** True once the client has been congested for too long, its unconflatable backlog overflows, or a reply was refused. */
  isSlowConsumer(): boolean {
    if (this.overflowed) return true;
    if (this.waiting.size === 0) return false;
    return (
      this.options.clock.now() - this.congestedSince > this.options.slowConsumerMs ||
      this.unconflatable > (this.options.maxUnconflatable ?? DEFAULT_MAX_UNCONFLATABLE)
    );
  }

  /** Forgets the backlog (the client is gone), counting it as dropped. */
  discard(): void {
    if (this.waiting.size > 0) this.sink.backlogged?.(false);
    this.dropped += this.waiting.size;
    this.waiting = EMPTY;
    this.unconflatable = 0;
  }
}
