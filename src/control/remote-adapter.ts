/**
 * The gateway's handle on an adapter running in another process: it implements Adapter by
 * sending commands through the control protocol (gateway-control.ts) and waiting for the
 * matching reply. The gateway drives it exactly like an in-process adapter.
 *
 * One RemoteAdapter exists per feed id for the life of the GatewayControl: when the adapter
 * process restarts, the new process takes over the same object, so the gateway's references,
 * listeners and subscription bookkeeping stay valid.
 */
import type { Adapter, FeedStatus, FeedStatusEvent, StreamRef, SubscribeResult } from '../feed.js';
import type { Logger } from '../observability/logger.js';
import type { Mode } from '../protocol/modes.js';
import type { AdapterInfo } from './protocol.js';

/** What the gateway asks of an adapter; `feed`, `open` and `relogin` only of a feed host. */
export type Command =
  | { type: 'subscribe'; exchange: string; symbol: string; mode: Mode; depth: number; feed?: string }
  | { type: 'unsubscribe'; exchange: string; symbol: string; feed?: string }
  | { type: 'open'; feed: string; broker: string; user: string }
  | { type: 'relogin'; feed: string };

/** A hosted feed's status, as its feed host reported it. */
export type HostedStatusListener = (feed: string, status: FeedStatus, message: string | undefined) => void;

/**
 * Sends one command to the adapter's current process. Resolves true once the transport has
 * taken it, false if it could not (the peer is gone, or the registration it was made for ended).
 */
export type PeerSender = (command: Command & { id: number }) => Promise<boolean>;

/** An adapter process as it registered: who it is and its upstream status then. */
export type Registration = AdapterInfo & { status: FeedStatus; message?: string };

export interface RemoteAdapterOptions {
  /** The feed's first adapter: fixes feed, broker and brokers for good. */
  info: AdapterInfo;
  /** How long a command waits for the adapter's reply before failing. */
  commandTimeoutMs: number;
  logger: Logger;
}

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
  private currentHosts: readonly string[] | undefined;
  private readonly commandTimeoutMs: number;
  private readonly logger: Logger;
  /** Set while a live process is attached. */
  private sender: PeerSender | undefined;
  /** The adapter's own upstream status, as of its registration or last `status` message. */
  private upstream: FeedStatus = 'down';
  /** Last status told to listeners, so connection changes are reported once. */
  private reported: FeedStatus = 'down';
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private readonly statusListeners: Array<(event: FeedStatusEvent) => void> = [];
  private readonly hostedStatusListeners: HostedStatusListener[] = [];
  private readonly reconnectListeners: Array<(info: AdapterInfo) => void> = [];

  constructor(options: RemoteAdapterOptions) {
    this.feed = options.info.feed;
    this.broker = options.info.broker;
    this.brokers = options.info.brokers;
    this.currentPid = options.info.pid;
    this.currentHosts = options.info.hosts;
    this.commandTimeoutMs = options.commandTimeoutMs;
    this.logger = options.logger;
  }

  /** Pid of the process serving the feed now (or last, while down). */
  get pid(): number {
    return this.currentPid;
  }

  /** A feed host's brokers (whose users' feeds it opens), as its current process announced them; undefined for a plain adapter. */
  get hosts(): readonly string[] | undefined {
    return this.currentHosts;
  }

  /** True while an adapter process is attached and answering heartbeats. */
  get connected(): boolean {
    return this.sender !== undefined;
  }

  /** The process is managed outside the gateway; starting and stopping it is not ours to do. */
  async start(): Promise<void> {}
  async stop(): Promise<void> {}

  subscribe(stream: StreamRef, mode: Mode, depth: number): Promise<SubscribeResult> {
    return this.request({ type: 'subscribe', exchange: stream.exchange, symbol: stream.symbol, mode, depth });
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
    return this.request({ type: 'unsubscribe', exchange: stream.exchange, symbol: stream.symbol });
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
   * Fires after EVERY registration, the first one included (right after the onAdapter callback
   * accepted the feed, so a listener added there sees it), and after each restart or
   * re-registration: the adapter then counts nothing as held for this gateway, and the listener
   * should replay the whole active set through `subscribe`.
   */
  onReconnect(listener: (info: AdapterInfo) => void): void {
    this.reconnectListeners.push(listener);
  }

  /** Statuses of the feeds a feed host serves (`status` messages carrying a `feed`). */
  onHostedStatus(listener: HostedStatusListener): void {
    this.hostedStatusListeners.push(listener);
  }

  // ——— driven by GatewayControl ———

  /** A process (the first, a restarted one, or the same one registering anew) serves the feed. */
  attach(registration: Registration, sender: PeerSender): void {
    this.currentPid = registration.pid;
    this.currentHosts = registration.hosts;
    this.sender = sender;
    this.upstream = registration.status;
    this.report(this.upstream === 'live' ? undefined : (registration.message ?? `adapter pid ${registration.pid} reports ${registration.status}`), false);
    for (const listener of this.reconnectListeners) {
      try {
        listener(registration);
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

  /** The adapter's upstream status changed (with `feed`: one of a feed host's feeds). */
  receiveStatus(status: FeedStatus, message: string | undefined, feed?: string): void {
    if (feed !== undefined) {
      for (const listener of this.hostedStatusListeners) {
        try {
          listener(feed, status, message);
        } catch (err) {
          this.logger.error({ err, feed }, 'hosted feed status listener failed');
        }
      }
      return;
    }
    this.upstream = status;
    if (this.sender) this.report(message, true);
  }

  /**
   * Sends `command` to the adapter's current process and resolves with its reply; fails (never
   * rejects) when no process is attached, it cannot be reached, or it does not answer in time.
   */
  request(command: Command): Promise<SubscribeResult> {
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
