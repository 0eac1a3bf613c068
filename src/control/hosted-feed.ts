/**
 * The gateway's handle on one user's feed inside a feed host (docs/control-protocol.md, Feed
 * hosts): an Adapter the gateway drives like any other, whose commands go to the host's
 * registration tagged with the feed id, and whose status is what the host reports for the
 * feed, or `reconnecting` while no host process is attached. The handle outlives host
 * processes: a restarted host gets `open` and the feed's streams again (HostedFeeds replays).
 */
import type { Adapter, FeedStatus, FeedStatusEvent, StreamRef, SubscribeResult } from '../feed.js';
import type { Logger } from '../observability/logger.js';
import type { Mode } from '../protocol/modes.js';
import type { RemoteAdapter } from './remote-adapter.js';

export interface HostedFeedOptions {
  feed: string;
  broker: string;
  user: string;
  /** The host process attached now, if any. */
  host: () => RemoteAdapter | undefined;
  /** Why no host is attached, as a sentence for the user (the bridge is starting, failed, …). */
  noHost: () => string;
  /** Whether no host will come (it cannot run): the feed is then down, and subscribes do not wait. */
  noHostForGood: () => boolean;
  /** How long a subscribe waits for a host to attach before failing (a host starting up). */
  hostWaitMs: number;
  logger: Logger;
}

export class HostedFeed implements Adapter {
  readonly feed: string;
  readonly broker: string;
  readonly user: string;
  private current: FeedStatus = 'reconnecting';
  private message: string | undefined;
  private readonly listeners: Array<(event: FeedStatusEvent) => void> = [];
  private readonly waiters = new Set<() => void>();

  constructor(private readonly options: HostedFeedOptions) {
    this.feed = options.feed;
    this.broker = options.broker;
    this.user = options.user;
    if (options.host()?.connected) this.message = this.opening(options.host()!);
    else [this.current, this.message] = [options.noHostForGood() ? 'down' : 'reconnecting', options.noHost()];
  }

  /** Opens the feed at the host now, if one is attached (otherwise the host's attach will). */
  async start(): Promise<void> {
    const host = this.options.host();
    if (host?.connected) this.open(host);
  }

  /** The host closes the feed once no gateway has it open; nothing to do from here. */
  async stop(): Promise<void> {}

  async subscribe(stream: StreamRef, mode: Mode, depth: number): Promise<SubscribeResult> {
    const host = await this.waitForHost();
    if (!host) return { ok: false, message: `No market data feed for ${this.broker} user ${this.user}: ${this.options.noHost()}` };
    if (!host.hosts?.includes(this.broker)) {
      return { ok: false, message: `No market data feed for ${this.broker} user ${this.user}: the feed host (pid ${host.pid}) has no adapter for ${this.broker}` };
    }
    return host.request({ type: 'subscribe', feed: this.feed, exchange: stream.exchange, symbol: stream.symbol, mode, depth });
  }

  async unsubscribe(stream: StreamRef): Promise<void> {
    const host = this.options.host();
    if (!host?.connected) return; // the host holds nothing for us; a replay sends only what is wanted
    const result = await host.request({ type: 'unsubscribe', feed: this.feed, exchange: stream.exchange, symbol: stream.symbol });
    if (!result.ok) this.options.logger.warn({ feed: this.feed, ...stream, reason: result.message }, 'hosted feed unsubscribe failed');
  }

  /** A re-login: the host reopens the user's broker adapter with the credentials read afresh. */
  credentialsChanged(): void {
    const host = this.options.host();
    if (!host?.connected) return; // a host that attaches later opens with fresh credentials anyway
    void host.request({ type: 'relogin', feed: this.feed }).then((result) => {
      if (!result.ok) this.options.logger.warn({ feed: this.feed, reason: result.message }, 'hosted feed relogin failed');
    });
  }

  status(): FeedStatus {
    return this.current;
  }

  statusMessage(): string | undefined {
    return this.message;
  }

  onStatus(listener: (event: FeedStatusEvent) => void): void {
    this.listeners.push(listener);
  }

  // ——— driven by HostedFeeds ———

  /** Asks `host` to open the feed; its `status` messages say how it goes. */
  open(host: RemoteAdapter): void {
    for (const wake of this.waiters) wake();
    this.waiters.clear();
    if (!host.hosts?.includes(this.broker)) {
      this.setStatus('down', `the feed host (pid ${host.pid}) has no adapter for ${this.broker}`);
      return;
    }
    // A live feed stays live while a re-registration opens it again; the host reports any change.
    if (this.current !== 'live') this.setStatus('reconnecting', this.opening(host));
    void host.request({ type: 'open', feed: this.feed, broker: this.broker, user: this.user }).then((result) => {
      if (!result.ok) this.setStatus('down', result.message);
    });
  }

  /** The host process went away: the feed waits for the next one (`down`: none will come). */
  hostLost(reason: string, status: 'reconnecting' | 'down' = 'reconnecting'): void {
    this.setStatus(status, reason);
  }

  /** A status the host reported for this feed. Returns true when the feed has just turned live. */
  receiveStatus(status: FeedStatus, message: string | undefined): boolean {
    const turnedLive = status === 'live' && this.current !== 'live';
    this.setStatus(status, message);
    return turnedLive;
  }

  private opening(host: RemoteAdapter): string {
    return `opening the ${this.broker} feed of ${this.user} (feed host pid ${host.pid})`;
  }

  private setStatus(status: FeedStatus, message: string | undefined): void {
    if (status === this.current && message === this.message) return;
    this.current = status;
    this.message = message;
    const event: FeedStatusEvent = message === undefined ? { feed: this.feed, status } : { feed: this.feed, status, message };
    for (const listener of this.listeners) {
      try {
        listener(event);
      } catch (err) {
        this.options.logger.error({ err, feed: this.feed, status }, 'feed status listener failed');
      }
    }
  }

  private async waitForHost(): Promise<RemoteAdapter | undefined> {
    const host = this.options.host();
    if (host?.connected) return host;
    if (this.options.noHostForGood()) return undefined;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(done, this.options.hostWaitMs);
      timer.unref();
      const waiters = this.waiters;
      function done(): void {
        clearTimeout(timer);
        waiters.delete(done);
        resolve();
      }
      waiters.add(done);
    });
    const attached = this.options.host();
    return attached?.connected ? attached : undefined;
  }
}
