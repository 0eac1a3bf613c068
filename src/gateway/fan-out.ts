/**
 * Delivers one tick to every subscriber of its stream. Each distinct message — (delivery mode,
 * broker, encoding, with or without seq) — is built and encoded once per tick, not once per
 * client, and the same bytes go to every socket that wants it. The publisher's payload is parsed
 * only if some subscriber takes MessagePack.
 */
import type { Mode } from '../protocol/modes.js';
import { type WireEncoder, websocketFrame } from '../protocol/encoding.js';
import { SHARED_FEED } from '../protocol/topics.js';
import { LastValues } from './last-values.js';
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

/** One tick being delivered: its encodings are made on first need and shared. */
class Delivery {
  /** Per delivery mode (index mode-1): session variant → message (a WebSocket frame unless batched). */
  private readonly frames: [Map<string, Buffer>?, Map<string, Buffer>?, Map<string, Buffer>?] = [];
  private parsed: unknown;

  constructor(
    readonly route: TickRoute,
    readonly payload: string,
    readonly seq: number,
    private readonly encoder: WireEncoder,
  ) {}

  frameFor(session: Session, mode: Mode): Buffer {
    const frames = (this.frames[mode - 1] ??= new Map());
    let frame = frames.get(session.variant);
    if (!frame) {
      const { encoding, seq, batch } = session.extensions;
      const message = this.encoder.marketData(
        encoding,
        this.route.symbol,
        this.route.exchange,
        mode,
        this.payload,
        () => (this.parsed ??= JSON.parse(this.payload)),
        session.broker,
        seq ? this.seq : undefined,
      );
      frame = batch ? message : websocketFrame(message, encoding === 'msgpack');
      frames.set(session.variant, frame);
    }
    return frame;
  }
}

export class FanOut {
  /** Ticks delivered to at least one client, and frames written in total. */
  ticksRouted = 0;
  deliveries = 0;
  /** Frames per feed of the tick ('' = the shared feed): one map update per tick, not per client. */
  readonly deliveriesByFeed = new Map<string, number>();
  readonly lastValues = new LastValues();

  constructor(
    private readonly index: SubscriptionIndex<Session>,
    private readonly encoder: WireEncoder,
  ) {}

  /** `payload` is the publisher's JSON, passed to JSON clients verbatim. */
  deliver(route: TickRoute, payload: string): void {
    const seq = this.lastValues.record(route.feed, route.key, route.mode, payload);
    const delivery = new Delivery(route, payload, seq, this.encoder);
    let delivered = 0;
    if (route.feed === SHARED_FEED) {
      // The shared feed is the instance's own: it reaches clients of every feed.
      for (const feed of this.index.feeds()) {
        const subscribers = this.index.subscribers(feed, route.key);
        if (subscribers) delivered += this.deliverTo(subscribers, delivery);
      }
    } else {
      const subscribers = this.index.subscribers(route.feed, route.key);
      if (subscribers) delivered += this.deliverTo(subscribers, delivery);
    }
    if (delivered > 0) {
      this.ticksRouted++;
      this.deliveries += delivered;
      this.deliveriesByFeed.set(route.feed, (this.deliveriesByFeed.get(route.feed) ?? 0) + delivered);
    }
  }

  private deliverTo(subscribers: Subscribers<Session>, delivery: Delivery): number {
    let delivered = 0;
    for (const [session, mask] of subscribers) {
      const mode = deliveryMode(mask, delivery.route.mode);
      if (mode === 0) continue;
      session.deliver(delivery.frameFor(session, mode), delivery.route.key);
      delivered++;
    }
    return delivered;
  }

  /**
   * Sends a new subscriber the stream's last known value (from its feed or the shared feed), as
   * an ordinary market_data message at its mode. Returns whether there was one.
   */
  snapshot(session: Session, route: TickRoute): boolean {
    const feeds = route.feed === SHARED_FEED ? [SHARED_FEED] : [route.feed, SHARED_FEED];
    const last = this.lastValues.latest(feeds, route.key, route.mode);
    if (!last) return false;
    const delivery = new Delivery({ ...route, mode: last.mode }, last.payload, last.seq, this.encoder);
    session.deliver(delivery.frameFor(session, route.mode), route.key);
    return true;
  }

  /** Order updates go verbatim to the user's sessions that asked for them. */
  deliverOrderUpdate(sessions: Iterable<Session>, payload: string): number {
    let delivered = 0;
    for (const session of sessions) {
      if (!session.ordersSubscribed) continue;
      const { encoding, batch } = session.extensions;
      const message = encoding === 'json' ? Buffer.from(payload) : (this.encoder.message(JSON.parse(payload), encoding) as Buffer);
      session.deliver(batch ? message : websocketFrame(message, encoding === 'msgpack'), undefined);
      delivered++;
    }
    return delivered;
  }
}
