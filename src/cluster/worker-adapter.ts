/**
 * How a worker's gateway sees one of the primary's adapters: subscribing and unsubscribing
 * become interest messages to the primary, and status changes arrive from it. The adapter
 * itself runs in the primary, once for all workers.
 */
import type { Adapter, FeedStatus, FeedStatusEvent, StreamRef, SubscribeResult } from '../feed.js';
import type { Mode } from '../protocol/modes.js';
import type { PrimaryChannel } from './channel.js';

export interface WorkerAdapterOptions {
  feed: string;
  broker: string;
  status: FeedStatus;
  channel: PrimaryChannel;
  /** Set for a user's own broker feed, which the primary starts on the first `start()`. */
  user?: string;
}

export class WorkerAdapter implements Adapter {
  readonly feed: string;
  readonly broker: string;
  private current: FeedStatus;
  private readonly listeners: Array<(event: FeedStatusEvent) => void> = [];

  constructor(private readonly options: WorkerAdapterOptions) {
    this.feed = options.feed;
    this.broker = options.broker;
    this.current = options.status;
  }

  async start(): Promise<void> {
    const { user } = this.options;
    if (user === undefined) return;
    const result = await this.options.channel.request({ type: 'user_feed', user, broker: this.broker, feed: this.feed });
    if (!result.ok) throw new Error(result.message);
  }

  /** The primary stops its adapters itself. */
  async stop(): Promise<void> {}

  async subscribe(stream: StreamRef, mode: Mode, depth: number): Promise<SubscribeResult> {
    const result = await this.options.channel.request({ type: 'interest', feed: this.feed, exchange: stream.exchange, symbol: stream.symbol, mode, depth });
    if (!result.ok) return result;
    return result.depth === undefined ? { ok: true } : { ok: true, depth: result.depth };
  }

  async unsubscribe(stream: StreamRef): Promise<void> {
    await this.options.channel.request({ type: 'interest', feed: this.feed, exchange: stream.exchange, symbol: stream.symbol, mode: 0, depth: 0 });
  }

  credentialsChanged(): void {
    if (this.options.user !== undefined) this.options.channel.send({ type: 'credentials_changed', user: this.options.user });
  }

  status(): FeedStatus {
    return this.current;
  }

  onStatus(listener: (event: FeedStatusEvent) => void): void {
    this.listeners.push(listener);
  }

  /** The primary reported a status change. */
  setStatus(status: FeedStatus, message?: string): void {
    this.current = status;
    const event: FeedStatusEvent = message === undefined ? { feed: this.feed, status } : { feed: this.feed, status, message };
    for (const listener of this.listeners) listener(event);
  }
}
