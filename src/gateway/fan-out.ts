/**
 * Delivers one tick to every subscriber of its stream in its own feed. A client gets one message
 * per mode it holds that the tick serves (last-values.ts says which), each tagged with that mode
 * and carrying that mode's fields (protocol/mode-payload.ts): a client holding LTP and Depth gets
 * an LTP message and a Depth message from one Depth tick. Each distinct message — (mode, broker,
 * encoding, with or without seq) — is built and encoded once per tick, not once per client, and
 * the same bytes go to every socket that wants it. Payloads are parsed only for MessagePack.
 */
import type { Clock } from '../clock.js';
import { type Mode, modeBit } from '../protocol/modes.js';
import { type WireEncoder, websocketFrame } from '../protocol/encoding.js';
import { projectPayload } from '../protocol/mode-payload.js';
import { LastValues, type LastValuesLimits } from './last-values.js';
import type { Session } from './session.js';
import type { SubscriptionIndex, Subscribers } from './subscription-index.js';

/** Where a tick goes: its feed, stream and mode (a parsed, memoised bus topic). */
export interface TickRoute {
  feed: string;
  exchange: string;
  symbol: string;
  /** Stream key (subscription-index.ts `streamKey`). */
  key: string;
  mode: Mode;
}

export interface FanOutOptions {
  clock: Clock;
  /** The broker whose payloads a feed carries (picks the key sets of lower-mode messages). */
  brokerOf(feed: string): string;
  /** Bounds of what is kept for snapshots and `seq` (last-values.ts). */
  limits?: LastValuesLimits;
}

/** A client's conflation slot: one per stream and mode, so one mode never replaces another's. */
const slotOf = (key: string, mode: Mode): string => key + '\u0000' + mode;

/** One tick being delivered: its per-mode payloads and encodings are made on first need and shared. */
class Delivery {
  /** Per delivered mode (index mode-1): session variant → message (a WebSocket frame unless batched). */
  private readonly frames: [Map<string, Buffer>?, Map<string, Buffer>?, Map<string, Buffer>?] = [];
  private readonly payloads: [string?, string?, string?] = [];
  private readonly parsed: [unknown?, unknown?, unknown?] = [];
  private readonly slots: [string?, string?, string?] = [];

  constructor(
    readonly route: TickRoute,
    private readonly payload: string,
    /** `seq` of this tick's message per mode. */
    private readonly seqs: readonly number[],
    private readonly broker: string,
    private readonly encoder: WireEncoder,
  ) {}

  /** The payload as a `mode` tick carries it (the whole one if it has no projection). */
  payloadAt(mode: Mode): string {
    if (mode === this.route.mode) return this.payload;
    return (this.payloads[mode - 1] ??= projectPayload(this.payload, this.route.mode, mode, this.broker) ?? this.payload);
  }

  slot(mode: Mode): string {
    return (this.slots[mode - 1] ??= slotOf(this.route.key, mode));
  }

  frameFor(session: Session, mode: Mode): Buffer {
    const frames = (this.frames[mode - 1] ??= new Map());
    let frame = frames.get(session.variant);
    if (!frame) {
      const { encoding, seq, batch } = session.extensions;
      const payload = this.payloadAt(mode);
      const message = this.encoder.marketData(
        encoding,
        this.route.symbol,
        this.route.exchange,
        mode,
        payload,
        () => (this.parsed[mode - 1] ??= JSON.parse(payload)),
        session.broker,
        seq ? this.seqs[mode - 1] : undefined,
      );
      frame = batch ? message : websocketFrame(message, encoding === 'msgpack');
      frames.set(session.variant, frame);
    }
    return frame;
  }
}

export class FanOut {
  /** Ticks delivered to at least one client, and messages written in total. */
  ticksRouted = 0;
  deliveries = 0;
  /** Messages per feed of the tick ('' = the shared feed): one map update per tick, not per client. */
  readonly deliveriesByFeed = new Map<string, number>();
  readonly lastValues: LastValues;

  constructor(
    private readonly index: SubscriptionIndex<Session>,
    private readonly encoder: WireEncoder,
    private readonly options: FanOutOptions,
  ) {
    this.lastValues = new LastValues(options.limits);
  }

  /** `payload` is the publisher's JSON, passed to JSON clients verbatim at the tick's own mode. */
  deliver(route: TickRoute, payload: string): void {
    const { stream, modes } = this.lastValues.record(route.feed, route.key, route.mode, payload, this.options.clock.now());
    // A feed's ticks reach only its own clients: the shared feed's (OpenAlgo's bare topics) too.
    const subscribers = this.index.subscribers(route.feed, route.key);
    if (!subscribers) return;
    const delivery = new Delivery(route, payload, stream.seq, this.options.brokerOf(route.feed), this.encoder);
    const delivered = this.deliverTo(subscribers, delivery, modes);
    if (delivered > 0) {
      this.ticksRouted++;
      this.deliveries += delivered;
      this.deliveriesByFeed.set(route.feed, (this.deliveriesByFeed.get(route.feed) ?? 0) + delivered);
    }
  }

  private deliverTo(subscribers: Subscribers<Session>, delivery: Delivery, modes: number): number {
    let delivered = 0;
    for (const [session, mask] of subscribers) {
      const wanted = mask & modes;
      if (wanted === 0) continue;
      // Lowest mode first, as OpenAlgo's adapters publish a trade's per-mode topics.
      for (let mode = 1 as Mode; mode <= 3; mode++) {
        if (!(wanted & modeBit(mode))) continue;
        session.deliver(delivery.frameFor(session, mode), delivery.slot(mode));
        delivered++;
      }
    }
    return delivered;
  }

  /**
   * Sends a new subscriber the stream's last `route.mode` message as an ordinary market_data
   * message, if there is one and `current` accepts its arrival time (from the feed's live
   * session and young enough). Returns whether one was sent.
   */
  snapshot(session: Session, route: TickRoute, current: (arrivedAt: number) => boolean): boolean {
    const last = this.lastValues.last(route.feed, route.key, route.mode);
    if (!last || !current(last.at)) return false;
    const seqs = [0, 0, 0];
    seqs[route.mode - 1] = last.seq;
    const delivery = new Delivery({ ...route, mode: last.source }, last.payload, seqs, this.options.brokerOf(route.feed), this.encoder);
    session.deliver(delivery.frameFor(session, route.mode), delivery.slot(route.mode));
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
