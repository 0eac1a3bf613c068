/**
 * The gateway's handle on an adapter running in another process: it implements Adapter by
 * sending commands over the control channel (server.ts owns the socket) and waiting for the
 * matching reply. The gateway drives it exactly like an in-process adapter.
 *
 * One RemoteAdapter exists per feed id for the life of the ControlServer: when the adapter
 * process restarts, the new process takes over the same object, so the gateway's references,
 * listeners and subscription bookkeeping stay valid.
 */
import type { Adapter, FeedStatus, FeedStatusEvent, StreamRef, SubscribeResult } from '../feed.js';
import type { Logger } from '../observability/logger.js';
import type { Mode } from '../protocol/modes.js';
import type { GatewayMessage, Hello } from './protocol.js';

/**
 * Sends one message to the adapter's current process. Resolves true once ZeroMQ has taken it,
 * false if it could not (the peer is gone or not reading).
 */
export type PeerSender = (message: GatewayMessage) => Promise<boolean>;

export interface RemoteAdapterOptions {
  /** The first hello of the feed: fixes feed, broker and brokers for good. */
  hello: Hello;
  /** How long a command waits for the adapter's reply before failing. */
  commandTimeoutMs: number;
  logger: Logger;
}

type Command =
  | { type: 'subscribe'; exchange: string; symbol: string; mode: Mode; depth: number }
  | { type: 'unsubscribe'; exchange: string; symbol: string };

interface Pending {
  resolve: (result: SubscribeResult) => void;
  timer: NodeJS.Timeout;
}

/** `5000` → `5 s`, `1500` → `1.5 s`, `200` → `200 ms`. */
export function formatDuration(ms: number): string {
  return ms >= 1000 ? `${Number((ms / 1000).toFixed(3))} s` : `${ms} ms`;
}

export class RemoteAdapter implements Adapter {
  readonly feed: string;
  readonly broker: string;
  readonly brokers: string[] | '*';

  private currentPid: number;
  private readonly commandTimeoutMs: number;
  private readonly logger: Logger;
  /** Set while a live process is attached. */
  private sender: PeerSender | undefined;
  /** The adapter's own upstream status, as of its hello or last `status` message. */
  private upstream: FeedStatus = 'down';
  /** Last status told to listeners, so connection changes are reported once. */
  private reported: FeedStatus = 'down';
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private readonly statusListeners: Array<(event: FeedStatusEvent) => void> = [];
  private readonly reconnectListeners: Array<(hello: Hello) => void> = [];

  constructor(options: RemoteAdapterOptions) {
    this.feed = options.hello.feed;
    this.broker = options.hello.broker;
    this.brokers = options.hello.brokers;
    this.currentPid = options.hello.pid;
    this.commandTimeoutMs = options.commandTimeoutMs;
    this.logger = options.logger;
  }

  /** Pid of the process serving the feed now (or last, while down). */
  get pid(): number {
    return this.currentPid;
  }

  /** True while an adapter process is attached and answering heartbeats. */
  get connected(): boolean {
    return this.sender !== undefined;
  }

  /** The process is managed outside the gateway; starting and stopping it is not ours to do. */
  async start(): Promise<void> {}
  async stop(): Promise<void> {}

  subscribe(stream: StreamRef, mode: Mode, depth: number): Promise<SubscribeResult> {
    return this.command({ type: 'subscribe', exchange: stream.exchange, symbol: stream.symbol, mode, depth });
  }

  /** Adapter's unsubscribe: never rejects; a failure is logged (see `requestUnsubscribe`). */
  async unsubscribe(stream: StreamRef): Promise<void> {
    const result = await this.requestUnsubscribe(stream);
    if (!result.ok) {
      this.logger.warn({ feed: this.feed, ...stream, reason: result.message }, 'remote unsubscribe failed');
    }
  }

  /** Unsubscribe with the adapter's answer, for callers that want to know. */
  requestUnsubscribe(stream: StreamRef): Promise<SubscribeResult> {
    return this.command({ type: 'unsubscribe', exchange: stream.exchange, symbol: stream.symbol });
  }

  status(): FeedStatus {
    return this.sender ? this.upstream : 'down';
  }

  /**
   * Status changes: `live` (or the adapter's own status) when a process attaches, `down` when it
   * stops answering or says bye, and every `status` message the adapter sends (for example
   * `reconnecting` while its upstream is lost).
   */
  onStatus(listener: (event: FeedStatusEvent) => void): void {
    this.statusListeners.push(listener);
  }

  /**
   * Fires after EVERY accepted hello, the first one included (it fires right after the server's
   * onAdapter callback accepted the feed, so a listener added there sees it), and after each
   * restart or re-registration: the adapter then holds no subscriptions, and the listener should
   * replay the whole active set through `subscribe`.
   */
  onReconnect(listener: (hello: Hello) => void): void {
    this.reconnectListeners.push(listener);
  }

  // ——— driven by ControlServer ———

  /** A process (the first, a restarted one, or the same one registering anew) serves the feed. */
  attach(hello: Hello, sender: PeerSender): void {
    this.currentPid = hello.pid;
    this.sender = sender;
    this.upstream = hello.status;
    this.report(this.upstream === 'live' ? undefined : `adapter pid ${hello.pid} reports ${hello.status}`, false);
    for (const listener of this.reconnectListeners) {
      try {
        listener(hello);
      } catch (err) {
        this.logger.error({ err, feed: this.feed }, 'feed reconnect listener failed');
      }
    }
  }

  /** The process is gone (silent, said bye, or replaced): fail what waits and report down. */
  detach(reason: string): void {
    this.sender = undefined;
    this.failPending(reason);
    this.report(reason, false);
  }

  /** Fails every command waiting for a reply, for example when its process was replaced. */
  failPending(message: string): void {
    for (const [id, pending] of this.pending) this.settle(id, pending, { ok: false, message });
  }

  /** A reply to a command. Late replies (after a timeout) are ignored. */
  receiveReply(id: number, result: SubscribeResult): void {
    const pending = this.pending.get(id);
    if (pending) this.settle(id, pending, result);
    else this.logger.debug({ feed: this.feed, id }, 'reply to no pending command (late or duplicate)');
  }

  /** The adapter's upstream status changed. */
  receiveStatus(status: FeedStatus, message: string | undefined): void {
    this.upstream = status;
    if (this.sender) this.report(message, true);
  }

  private command(command: Command): Promise<SubscribeResult> {
    const sender = this.sender;
    if (!sender) return Promise.resolve({ ok: false, message: `Feed "${this.feed}" is not connected` });
    const id = this.nextId++;
    return new Promise<SubscribeResult>((resolve) => {
      const timer = setTimeout(() => {
        const pending = this.pending.get(id);
        if (pending) {
          const message = `Feed "${this.feed}" did not answer within ${formatDuration(this.commandTimeoutMs)}`;
          this.settle(id, pending, { ok: false, message });
        }
      }, this.commandTimeoutMs);
      timer.unref();
      this.pending.set(id, { resolve, timer });
      void sender({ ...command, id }).then((sent) => {
        const pending = this.pending.get(id);
        if (!sent && pending) this.settle(id, pending, { ok: false, message: `Feed "${this.feed}" is not reachable` });
      });
    });
  }

  private settle(id: number, pending: Pending, result: SubscribeResult): void {
    clearTimeout(pending.timer);
    this.pending.delete(id);
    pending.resolve(result);
  }

  /** Tells listeners the current status if it changed (or always, for the adapter's own reports). */
  private report(message: string | undefined, always: boolean): void {
    const status = this.status();
    if (status === this.reported && !always) return;
    this.reported = status;
    const event: FeedStatusEvent = message === undefined ? { feed: this.feed, status } : { feed: this.feed, status, message };
    for (const listener of this.statusListeners) {
      try {
        listener(event);
      } catch (err) {
        this.logger.error({ err, feed: this.feed, status }, 'feed status listener failed');
      }
    }
  }
}
