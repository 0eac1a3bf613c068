/**
 * An adapter for tests of what drives upstream (the hub, recording holds): it keeps the mode each
 * stream is held at, records every call, refuses symbols named BAD, and reports the status
 * `emit` gives it (from the one it was made with, live by default).
 */
import type { Adapter, FeedStatus, FeedStatusEvent, StreamRef, SubscribeResult } from '../../src/feed.js';
import type { Mode } from '../../src/protocol/modes.js';

export class KeepingAdapter implements Adapter {
  readonly broker = 'simulator';
  /** `sub SYMBOL MODE` and `unsub SYMBOL`, in order. */
  readonly calls: string[] = [];
  /** Symbol → the mode it is delivered at. */
  readonly held = new Map<string, Mode>();
  private readonly listeners: Array<(event: FeedStatusEvent) => void> = [];

  constructor(
    readonly feed: string,
    private current: FeedStatus = 'live',
  ) {}

  async start(): Promise<void> {}
  async stop(): Promise<void> {}

  async subscribe(stream: StreamRef, mode: Mode): Promise<SubscribeResult> {
    this.calls.push(`sub ${stream.symbol} ${mode}`);
    if (stream.symbol === 'BAD') return { ok: false, message: 'unknown symbol' };
    this.held.set(stream.symbol, mode);
    return { ok: true, depth: 5 };
  }

  async unsubscribe(stream: StreamRef): Promise<void> {
    this.calls.push(`unsub ${stream.symbol}`);
    this.held.delete(stream.symbol);
  }

  status(): FeedStatus {
    return this.current;
  }

  onStatus(listener: (event: FeedStatusEvent) => void): void {
    this.listeners.push(listener);
  }

  /** The feed's status changes to `status`, and its listeners hear it. */
  emit(status: FeedStatus): void {
    this.current = status;
    for (const listener of this.listeners) listener({ feed: this.feed, status });
  }
}
