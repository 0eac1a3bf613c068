/**
 * The simulator adapter: the gateway's embedded default feed. It streams ticks from a
 * SimulatedMarket for exactly the streams the gateway subscribed, each at a steady rate and at
 * the mode it was last subscribed with.
 */
import type { BusPublisher } from '../../bus/bus.js';
import type { Clock } from '../../clock.js';
import type { Logger } from '../../observability/logger.js';
import type { Mode } from '../../protocol/modes.js';
import { formatTopic } from '../../protocol/topics.js';
import { type Adapter, type FeedStatus, type FeedStatusEvent, type StreamRef, type SubscribeResult, streamKey } from '../../feed.js';
import type { SimulatedMarket } from './market.js';

export interface SimulatorAdapterOptions {
  feed: string;
  broker: string;
  market: SimulatedMarket;
  publisher: BusPublisher;
  /** Ticks per second per subscribed stream; fractional rates are fine. */
  ratePerSymbol: number;
  clock: Clock;
  logger: Logger;
  /** Timer period; each firing emits whatever ticks came due since the last one. */
  intervalMs?: number;
  /** Source of each stream's starting phase (defaults to Math.random). */
  random?: () => number;
}

const DEFAULT_INTERVAL_MS = 20;
const DEPTH_LEVELS = 5;
/** Credit never exceeds this many seconds of ticks, so a stalled event loop causes no burst. */
const MAX_BACKLOG_SECONDS = 1;
/** A failing stream logs at most once per this period, however fast it ticks. */
const ERROR_LOG_INTERVAL_MS = 10_000;

interface Stream {
  readonly exchange: string;
  readonly symbol: string;
  mode: Mode;
  topic: string;
  /** Ticks owed; one is emitted per whole unit. */
  credit: number;
  /** When credit was last accrued (epoch ms). */
  accruedAt: number;
  failures: number;
  lastErrorLogAt: number;
}

export class SimulatorAdapter implements Adapter {
  readonly feed: string;
  readonly broker: string;

  private readonly market: SimulatedMarket;
  private readonly publisher: BusPublisher;
  private readonly rate: number;
  private readonly maxCredit: number;
  private readonly clock: Clock;
  private readonly logger: Logger;
  private readonly intervalMs: number;
  private readonly random: () => number;
  private readonly streams = new Map<string, Stream>();
  private readonly listeners: Array<(event: FeedStatusEvent) => void> = [];
  private timer: NodeJS.Timeout | undefined;
  private currentStatus: FeedStatus = 'down';

  constructor(options: SimulatorAdapterOptions) {
    if (!(options.ratePerSymbol > 0) || !Number.isFinite(options.ratePerSymbol)) {
      throw new Error(`simulator rate must be a positive number of ticks per second, got ${options.ratePerSymbol}`);
    }
    const intervalMs = options.intervalMs ?? DEFAULT_INTERVAL_MS;
    if (!(intervalMs > 0) || !Number.isFinite(intervalMs)) {
      throw new Error(`simulator interval must be a positive number of milliseconds, got ${intervalMs}`);
    }
    this.feed = options.feed;
    this.broker = options.broker;
    this.market = options.market;
    this.publisher = options.publisher;
    this.rate = options.ratePerSymbol;
    // At least one whole tick, so a rate below 1/s still ticks.
    this.maxCredit = Math.max(1, this.rate * MAX_BACKLOG_SECONDS);
    this.clock = options.clock;
    this.logger = options.logger;
    this.intervalMs = intervalMs;
    this.random = options.random ?? Math.random;
  }

  async start(): Promise<void> {
    if (this.timer) return;
    // Time spent stopped earns no ticks.
    const now = this.clock.now();
    for (const stream of this.streams.values()) stream.accruedAt = now;
    this.timer = setInterval(() => this.onTimer(), this.intervalMs);
    this.timer.unref();
    this.setStatus('live');
  }

  async stop(): Promise<void> {
    if (this.timer) {
      clearInterval(this.timer);
      this.timer = undefined;
    }
    this.setStatus('down');
  }

  async subscribe(stream: StreamRef, mode: Mode, _depth: number): Promise<SubscribeResult> {
    const { exchange, symbol } = stream;
    if (!this.market.has(exchange, symbol)) {
      return { ok: false, message: `Token not found for ${symbol} on ${exchange}` };
    }
    const topic = formatTopic(this.feed, exchange, symbol, mode);
    const existing = this.streams.get(streamKey(exchange, symbol));
    if (existing) {
      existing.mode = mode;
      existing.topic = topic;
    } else {
      this.streams.set(streamKey(exchange, symbol), {
        exchange,
        symbol,
        mode,
        topic,
        // A random phase, so streams subscribed together do not tick in lockstep.
        credit: this.random(),
        accruedAt: this.clock.now(),
        failures: 0,
        lastErrorLogAt: -Infinity,
      });
    }
    return { ok: true, depth: DEPTH_LEVELS };
  }

  async unsubscribe(stream: StreamRef): Promise<void> {
    this.streams.delete(streamKey(stream.exchange, stream.symbol));
  }

  status(): FeedStatus {
    return this.currentStatus;
  }

  onStatus(listener: (event: FeedStatusEvent) => void): void {
    this.listeners.push(listener);
  }

  /**
   * Emits every tick that came due by `nowMs`: each stream earns `rate × elapsed` credit and
   * publishes one tick per whole unit. The timer calls this; tests call it with a fake clock.
   */
  emitDue(nowMs: number): void {
    for (const stream of this.streams.values()) {
      const elapsedMs = nowMs - stream.accruedAt;
      if (elapsedMs > 0) {
        stream.credit = Math.min(this.maxCredit, stream.credit + (this.rate * elapsedMs) / 1000);
        stream.accruedAt = nowMs;
      }
      while (stream.credit >= 1) {
        stream.credit -= 1;
        if (!this.emitTick(stream, nowMs)) {
          // Stop this stream for this round; it tries again at the next one.
          stream.credit = Math.min(stream.credit, 1 - Number.EPSILON);
          break;
        }
      }
    }
  }

  private emitTick(stream: Stream, nowMs: number): boolean {
    try {
      this.market.step(stream.exchange, stream.symbol);
      this.publisher.publish(stream.topic, this.market.payload(stream.exchange, stream.symbol, stream.mode, nowMs));
      return true;
    } catch (err) {
      stream.failures += 1;
      if (nowMs - stream.lastErrorLogAt >= ERROR_LOG_INTERVAL_MS) {
        stream.lastErrorLogAt = nowMs;
        this.logger.error(
          { err, feed: this.feed, exchange: stream.exchange, symbol: stream.symbol, failures: stream.failures },
          'simulator failed to emit a tick',
        );
      }
      return false;
    }
  }

  private onTimer(): void {
    try {
      this.emitDue(this.clock.now());
    } catch (err) {
      this.logger.error({ err, feed: this.feed }, 'simulator timer failed');
    }
  }

  private setStatus(status: FeedStatus): void {
    if (status === this.currentStatus) return;
    this.currentStatus = status;
    const event: FeedStatusEvent = { feed: this.feed, status };
    for (const listener of this.listeners) {
      try {
        listener(event);
      } catch (err) {
        this.logger.error({ err, feed: this.feed, status }, 'feed status listener failed');
      }
    }
  }
}

