/**
 * Delivers one tick to every subscriber of its stream. The envelope is built and encoded once
 * per (delivery mode, broker) — not once per client — and the same bytes go to every socket.
 */
import type { Mode } from '../protocol/modes.js';
import { marketDataEnvelope } from '../protocol/replies.js';
import { SHARED_FEED } from '../protocol/topics.js';
import type { Session } from './session.js';
import { type SubscriptionIndex, type Subscribers, deliveryMode } from './subscription-index.js';

/** Where a tick goes: its feed, stream and mode (a parsed, memoised bus topic). */
export interface TickRoute {
  feed: string;
  exchange: string;
  symbol: string;
  /** Stream key (subscription-index.ts `streamKey`). */
  key: string;
  mode: Mode;
}

export class FanOut {
  /** Ticks delivered to at least one client, and frames written in total. */
  ticksRouted = 0;
  deliveries = 0;

  constructor(private readonly index: SubscriptionIndex<Session>) {}

  /** `payload` is the publisher's JSON, passed to clients verbatim. */
  deliver(tick: TickRoute, payload: string): void {
    const frames = new Map<string, Buffer>();
    let delivered = 0;
    if (tick.feed === SHARED_FEED) {
      // The shared feed is the instance's own: it reaches clients of every feed.
      for (const feed of this.index.feeds()) {
        const subscribers = this.index.subscribers(feed, tick.key);
        if (subscribers) delivered += this.deliverTo(subscribers, tick, payload, frames);
      }
    } else {
      const subscribers = this.index.subscribers(tick.feed, tick.key);
      if (subscribers) delivered += this.deliverTo(subscribers, tick, payload, frames);
    }
    if (delivered > 0) {
      this.ticksRouted++;
      this.deliveries += delivered;
    }
  }

  private deliverTo(subscribers: Subscribers<Session>, tick: TickRoute, payload: string, frames: Map<string, Buffer>): number {
    let delivered = 0;
    for (const [session, mask] of subscribers) {
      const mode = deliveryMode(mask, tick.mode);
      if (mode === 0) continue;
      const frameKey = mode + session.broker;
      let frame = frames.get(frameKey);
      if (!frame) {
        frame = Buffer.from(marketDataEnvelope(tick.symbol, tick.exchange, mode, payload, session.broker));
        frames.set(frameKey, frame);
      }
      session.deliver(frame, tick.key);
      delivered++;
    }
    return delivered;
  }

  /** Order updates go verbatim to the user's sessions that asked for them. */
  deliverOrderUpdate(sessions: Iterable<Session>, payload: string): number {
    const frame = Buffer.from(payload);
    let delivered = 0;
    for (const session of sessions) {
      if (!session.ordersSubscribed) continue;
      session.deliver(frame, undefined);
      delivered++;
    }
    return delivered;
  }
}
