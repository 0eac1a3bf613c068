/**
 * Delivers one tick to every subscriber of its stream in its own feed. A client gets one message
 * per mode it holds that the tick serves (last-values.ts says which), each tagged with that mode
 * and carrying that mode's fields (protocol/mode-payload.ts): a client holding LTP and Depth gets
 * an LTP message and a Depth message from one Depth tick. Each distinct message — (mode, broker,
 * encoding, with or without seq) — is built and encoded once per tick, not once per client, and
 * the same bytes go to every socket that wants it. Payloads are parsed only for MessagePack.
 *
 * Each tick is also kept in its stream's ring (recent-ticks.ts) so a reconnecting client can be
 * resent what it missed (`recover`). While a session's recovery of a (stream, mode) is pending
 * (between its subscription entering the index and the recovery after the reply) live messages
 * of it are not sent: they are in the ring, and the recovery sends them in order.
 */
import type { Clock } from '../clock.js';
import { type Mode, modeBit } from '../protocol/modes.js';
import { type WireEncoder, websocketFrame } from '../protocol/encoding.js';
import { projectPayload } from '../protocol/mode-payload.js';
import { type GapReason, type Reply, gapEvent, recoveredEvent } from '../protocol/replies.js';
import { LastValues, type LastValuesLimits } from './last-values.js';
import { RECOVERY_DEFAULTS, RecentTicks, type RecentTick, type RecoveryLimits } from './recent-ticks.js';
import type { Session } from './session.js';
import { StreamHolder } from './stream-holds.js';
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
  /** Bounds of the recent ticks kept for recovery (recent-ticks.ts); `ticks: 0` turns it off. */
  recovery?: Partial<RecoveryLimits>;
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
    /** Resent by recovery: its messages say `"recovered": true`. */
    private readonly recovered = false,
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
        this.recovered,
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
  /** Recent ticks per stream, for recovery (undefined: recovery is off). */
  readonly recentTicks: RecentTicks | undefined;
  /** Recoveries answered: messages resent, and `gap` answers. */
  recoveries = 0;
  recoveredMessages = 0;
  recoveryGaps = 0;

  constructor(
    private readonly index: SubscriptionIndex<Session | StreamHolder>,
    private readonly encoder: WireEncoder,
    private readonly options: FanOutOptions,
  ) {
    const recentTicks = (this.recentTicks = (options.recovery?.ticks ?? RECOVERY_DEFAULTS.ticks) > 0 ? new RecentTicks(options.recovery) : undefined);
    this.lastValues = new LastValues(options.limits, recentTicks ? (stream) => recentTicks.forget(stream) : undefined);
  }

  /** `payload` is the publisher's JSON, passed to JSON clients verbatim at the tick's own mode. */
  deliver(route: TickRoute, payload: string): void {
    const now = this.options.clock.now();
    const { stream, modes } = this.lastValues.record(route.feed, route.key, route.mode, payload, now);
    this.recentTicks?.push(stream, payload, route.mode, modes, now);
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

  private deliverTo(subscribers: Subscribers<Session | StreamHolder>, delivery: Delivery, modes: number): number {
    let delivered = 0;
    for (const [session, mask] of subscribers) {
      // A stream held for recording: the gateway itself holds it, nobody is sent anything.
      if (session instanceof StreamHolder) continue;
      let wanted = mask & modes;
      if (wanted === 0) continue;
      // A recovery pending for this stream: its live messages are in the ring and go with it.
      if (session.recovering !== undefined && (wanted &= ~(session.recovering.get(delivery.route.key) ?? 0)) === 0) continue;
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

  /**
   * A recovery of `route` (its stream at `route.mode`) starts for `session`: live messages of it
   * are held back until `recover`. Called as the subscription enters the index. Returns the
   * stream's `seq` of the mode now (the last one sent live), or undefined when recovery is off
   * (nothing is held back).
   */
  startRecovery(session: Session, route: TickRoute): number | undefined {
    if (!this.recentTicks) return undefined;
    const marks = (session.recovering ??= new Map());
    marks.set(route.key, (marks.get(route.key) ?? 0) | modeBit(route.mode));
    return this.lastValues.stream(route.feed, route.key)?.seq[route.mode - 1] ?? 0;
  }

  /**
   * Sends `session`, which last saw `since` of `route`'s stream at `route.mode`, every message
   * after it that the ring holds (`"recovered": true`, in seq order), then a `recovered` message;
   * or, when they cannot all be sent, a `gap` message. `marked` is what `startRecovery` returned;
   * `epochMismatch` says why the client's numbering is not this process's, if it is not. Live
   * messages flow again afterwards. Synchronous, so no tick comes between the two.
   */
  recover(session: Session, route: TickRoute, since: number, marked: number | undefined, epochMismatch: string | undefined): void {
    const { mode } = route;
    try {
      // Closed, or moved to another feed meanwhile (its subscriptions went along, unrecovered).
      if (session.closed || session.feed !== route.feed) return;
      const now = this.options.clock.now();
      const stream = this.lastValues.stream(route.feed, route.key);
      const last = stream?.seq[mode - 1] ?? 0;
      let gap: { reason: GapReason; message: string; oldest?: number } | undefined;
      if (epochMismatch !== undefined) {
        gap = { reason: 'epoch', message: epochMismatch };
      } else if (since > last) {
        gap = { reason: 'ahead', message: `seq ${since} is beyond this stream's last (${last}): the gateway forgot the stream and its numbering restarted, or since is wrong; resync` };
      } else if (!this.recentTicks) {
        if (since < last) gap = { reason: 'history', message: `messages after seq ${since} cannot be resent: this gateway keeps no recent ticks; resync` };
      } else {
        const plan = this.recentTicks.plan(stream, mode, since, now);
        if (plan.ok) {
          for (const tick of plan.ticks) this.resend(session, route, tick, true);
          this.sendEvent(session, recoveredEvent(route.symbol, route.exchange, mode, plan.from, plan.to, plan.ticks.length));
          this.recoveries++;
          this.recoveredMessages += plan.ticks.length;
          return;
        }
        if (plan.reason === 'history') {
          const held = plan.oldest === undefined ? 'none held' : `held from seq ${plan.oldest}`;
          gap = { reason: 'history', message: `messages after seq ${since} are no longer held (${held}); resync`, ...(plan.oldest === undefined ? {} : { oldest: plan.oldest }) };
        }
      }
      if (gap === undefined) {
        // Nothing was missed (and nothing is kept to be resent).
        this.sendEvent(session, recoveredEvent(route.symbol, route.exchange, mode, since + 1, last, 0));
        this.recoveries++;
        return;
      }
      this.recoveryGaps++;
      // The live messages held back meanwhile follow, as live ones.
      const held = marked === undefined ? [] : this.recentTicks!.after(stream, mode, marked, now);
      const next = held.length > 0 ? held[0]!.seqs[mode - 1]! : last + 1;
      this.sendEvent(session, gapEvent(route.symbol, route.exchange, mode, since, gap.reason, gap.message, next, gap.oldest));
      for (const tick of held) this.resend(session, route, tick, false);
    } finally {
      this.endRecovery(session, route);
    }
  }

  /** Live messages of `route` flow to `session` again. */
  endRecovery(session: Session, route: TickRoute): void {
    const marks = session.recovering;
    if (!marks) return;
    const left = (marks.get(route.key) ?? 0) & ~modeBit(route.mode);
    if (left !== 0) marks.set(route.key, left);
    else marks.delete(route.key);
    if (marks.size === 0) session.recovering = undefined;
  }

  private resend(session: Session, route: TickRoute, tick: RecentTick, recovered: boolean): void {
    const delivery = new Delivery({ ...route, mode: tick.source }, tick.payload, tick.seqs, this.options.brokerOf(route.feed), this.encoder, recovered);
    session.deliver(delivery.frameFor(session, route.mode), delivery.slot(route.mode));
  }

  /** `recovered` and `gap` go the way market data goes, so they stay in order with it. */
  private sendEvent(session: Session, event: Reply): void {
    const { encoding, batch } = session.extensions;
    const encoded = this.encoder.message(event, encoding);
    const message = typeof encoded === 'string' ? Buffer.from(encoded) : encoded;
    session.deliver(batch ? message : websocketFrame(message, encoding === 'msgpack'), undefined);
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
