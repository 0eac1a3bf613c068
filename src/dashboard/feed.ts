/**
 * The dashboard's market-data connection, on the client SDK (`tickcast/client`): sign in with an
 * API key, watch instruments at Depth (one subscription gives LTP, change, volume, best bid/ask
 * and the book), and report the connection's state. The SDK reconnects and resubscribes by itself.
 */
import { TickcastClient } from '../client/index.js';
import type { DepthTick, MarketData, SubscriptionHandle } from '../client/index.js';
import type { Instrument } from './instrument.js';

export type ConnectionState = 'connected' | 'reconnecting' | 'disconnected';

export interface FeedEvents {
  state(state: ConnectionState, detail: string): void;
  /** The upstream feed of the user's broker changed state (live, reconnecting, stale, down). */
  feedStatus(feed: string, status: string, message: string | undefined): void;
}

export interface Identity {
  user: string;
  broker: string;
}

export class MarketFeed {
  private readonly client: TickcastClient;

  constructor(url: string, apiKey: string, events: FeedEvents) {
    this.client = new TickcastClient({ url, apiKey, reconnect: { initialDelayMs: 500, maxDelayMs: 10_000 } });
    this.client.on('connected', (e) => events.state('connected', e.reconnected ? 'reconnected' : ''));
    this.client.on('reconnecting', (e) => events.state('reconnecting', `attempt ${e.attempt}`));
    this.client.on('disconnected', (e) => events.state(e.willReconnect ? 'reconnecting' : 'disconnected', e.reason || `closed (${e.code})`));
    this.client.on('feed_status', (e) => events.feedStatus(e.feed, e.status, e.message));
  }

  /** Connects and authenticates; rejects with the gateway's message (a bad key, say). */
  async connect(): Promise<Identity> {
    await this.client.connect();
    const session = this.client.session;
    return { user: session?.userId ?? '', broker: session?.broker ?? '' };
  }

  /**
   * Streams `instrument`'s ticks to `onTick`. Resolves with a function that stops it, or rejects
   * with the gateway's reason when the subscription failed (an unknown symbol, a limit).
   */
  async watch(instrument: Instrument, onTick: (data: DepthTick) => void): Promise<() => void> {
    const handle: SubscriptionHandle = this.client.subscribe([instrument], 'depth', (message: MarketData) => onTick(message.data as DepthTick));
    const [result] = await handle.ready;
    if (!result || !result.ok) {
      handle.unsubscribe();
      throw new Error(result && !result.ok ? result.message : 'no answer for the subscription');
    }
    return () => handle.unsubscribe();
  }

  close(): void {
    void this.client.close();
  }
}
