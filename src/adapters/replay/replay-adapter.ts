/**
 * The replay adapter: feed `replay` (by default), serving a recorded range of market history as
 * if it were live. Like the simulator it publishes only the streams the gateway subscribed; each
 * tick goes out as recorded — the JSON payload untouched, on `<feed>|EXCHANGE_SYMBOL_MODE` at
 * the tick's recorded mode — and the gateway makes each client's modes from it as it did live (a
 * Depth tick also gives the LTP and Quote messages). A subscription at a mode higher than any
 * recorded for that stream in the range, or to a stream not recorded in it, is refused.
 *
 * The replay begins once a stream is subscribed and subscriptions have been quiet for `settleMs`
 * (so a client subscribing to several streams gets them all from the first tick); a stream
 * subscribed later joins at the current point, as a live feed would. When the range is
 * exhausted the feed goes `down` with "replay finished: …" and `finished` resolves (with `loop`,
 * the range starts again instead).
 */
import type { BusPublisher } from '../../bus/bus.js';
import type { RecordedTick } from '../../history/tick-store.js';
import type { Logger } from '../../observability/logger.js';
import { type Mode, MODE_LABEL } from '../../protocol/modes.js';
import { formatTopic } from '../../protocol/topics.js';
import { type Adapter, type FeedStatus, type FeedStatusEvent, type StreamRef, type SubscribeResult, streamKey } from '../../feed.js';
import { type Scheduler, type Speed, type Survey, iso, pace } from './replay-source.js';
import { FeedStatusBoard } from '../session/feed-status.js';

export const REPLAY_FEED = 'replay';

export interface ReplayAdapterOptions {
  feed: string;
  broker: string;
  publisher: BusPublisher;
  /** A fresh pass over the range's ticks in receive order (called once per pass). */
  read(): AsyncIterable<RecordedTick> | Iterable<RecordedTick>;
  /** What the range holds (replay-source.ts `survey`). */
  recorded: Survey;
  /** The range asked for, for messages. */
  range: { from: number; to: number };
  speed: Speed;
  /** Longest recorded spacing kept between two ticks, ms (replay-source.ts `pace`); default every one. */
  maxGapMs?: number;
  scheduler: Scheduler;
  logger: Logger;
  /** Quiet time after the last subscription before the replay begins (default 500 ms; at most 10× this after the first). */
  settleMs?: number;
  /** Start the range again when it is exhausted, until stopped. */
  loop?: boolean;
  /** Time between the last tick and the finished status, for the bus to deliver the last ticks (default 1000 ms). */
  drainMs?: number;
  /** Days that could not be read, each with why (named in the finished status). */
  problems?(): readonly string[];
}

export interface ReplayOutcome {
  /** Passes over the range completed. */
  passes: number;
  /** Ticks read, and sent (their stream was subscribed), over all passes. */
  read: number;
  sent: number;
  /** Receive times of the range's first and last tick. */
  first: number | undefined;
  last: number | undefined;
  /** The feed's final status message. */
  message: string;
}

const DEFAULT_SETTLE_MS = 500;
const DEFAULT_DRAIN_MS = 1000;

export class ReplayAdapter implements Adapter {
  readonly feed: string;
  readonly broker: string;
  /** Resolves when the range is exhausted (never with `loop`, unless stopped first: then not at all). */
  readonly finished: Promise<ReplayOutcome>;

  private readonly options: ReplayAdapterOptions;
  private readonly settleMs: number;
  private readonly drainMs: number;
  /** Wanted streams: key → topic per mode (made once). */
  private readonly wanted = new Map<string, Mode>();
  private readonly topics = new Map<string, string>();
  private readonly board: FeedStatusBoard;
  /** How the replay ended (finished, or failed), kept as the status message once stopped. */
  private ending: string | undefined;
  private firstSubscribeAt: number | undefined;
  private lastSubscribeAt = 0;
  private begun = false;
  private stopped = false;
  private resolveFinished: (outcome: ReplayOutcome) => void = () => {};

  constructor(options: ReplayAdapterOptions) {
    this.options = options;
    this.feed = options.feed;
    this.broker = options.broker;
    this.settleMs = options.settleMs ?? DEFAULT_SETTLE_MS;
    this.drainMs = options.drainMs ?? DEFAULT_DRAIN_MS;
    this.board = new FeedStatusBoard(options.feed, options.logger);
    this.finished = new Promise((resolve) => (this.resolveFinished = resolve));
  }

  async start(): Promise<void> {
    if (this.stopped) return;
    this.board.set('live', undefined);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.board.set('down', this.ending ?? 'replay stopped');
  }

  async subscribe(stream: StreamRef, mode: Mode, _depth: number): Promise<SubscribeResult> {
    const { exchange, symbol } = stream;
    const key = streamKey(exchange, symbol);
    const recorded = this.options.recorded.streams.get(key);
    const { from, to } = this.options.range;
    if (!recorded) return { ok: false, message: `${exchange}:${symbol} has no recorded ticks from ${iso(from)} to ${iso(to)}` };
    if (mode > recorded.maxMode) {
      return {
        ok: false,
        message: `${exchange}:${symbol} was recorded at ${MODE_LABEL[recorded.maxMode]} mode at most from ${iso(from)} to ${iso(to)}: there are no ${MODE_LABEL[mode]} ticks to replay`,
      };
    }
    this.wanted.set(key, mode);
    this.lastSubscribeAt = this.options.scheduler.now();
    if (this.firstSubscribeAt === undefined) {
      this.firstSubscribeAt = this.lastSubscribeAt;
      void this.begin();
    }
    return { ok: true };
  }

  async unsubscribe(stream: StreamRef): Promise<void> {
    this.wanted.delete(streamKey(stream.exchange, stream.symbol));
  }

  status(): FeedStatus {
    return this.board.status;
  }

  statusMessage(): string | undefined {
    return this.board.message;
  }

  onStatus(listener: (event: FeedStatusEvent) => void): void {
    this.board.listen(listener);
  }

  /** Whether the replay has begun (a stream was subscribed and the subscriptions settled). */
  get running(): boolean {
    return this.begun;
  }

  private async begin(): Promise<void> {
    const { scheduler, logger } = this.options;
    // Wait for the subscriptions to settle: quiet for settleMs, or 10× that since the first.
    for (;;) {
      const now = scheduler.now();
      const quiet = this.settleMs - (now - this.lastSubscribeAt);
      const cap = 10 * this.settleMs - (now - this.firstSubscribeAt!);
      const wait = Math.min(quiet, cap);
      if (wait <= 0) break;
      await scheduler.sleep(wait);
    }
    if (this.stopped) return;
    this.begun = true;
    logger.info({ feed: this.feed, streams: this.wanted.size, speed: this.options.speed }, 'replay begins');
    const outcome: ReplayOutcome = { passes: 0, read: 0, sent: 0, first: undefined, last: undefined, message: '' };
    try {
      do {
        const pass = await pace({
          ticks: this.options.read(),
          speed: this.options.speed,
          ...(this.options.maxGapMs !== undefined ? { maxGapMs: this.options.maxGapMs } : {}),
          scheduler,
          emit: (tick) => this.emit(tick),
          stopped: () => this.stopped,
        });
        if (pass.stopped) return;
        outcome.passes++;
        outcome.read += pass.read;
        outcome.sent += pass.sent;
        outcome.first ??= pass.first;
        outcome.last = pass.last ?? outcome.last;
        // A short range at max would otherwise loop without ever letting the bus drain.
        if (this.options.loop) await scheduler.sleep(0);
      } while (this.options.loop && !this.stopped);
    } catch (error) {
      logger.error({ err: error, feed: this.feed }, 'replay failed');
      outcome.message = `replay failed: ${(error as Error).message}`;
      this.end(outcome.message);
      this.resolveFinished(outcome);
      return;
    }
    if (this.stopped) return;
    // The last ticks may still be in the bus queue: let them reach the gateway before saying so.
    await scheduler.sleep(this.drainMs);
    if (this.stopped) return;
    outcome.message = this.finishedMessage(outcome);
    this.end(outcome.message);
    this.resolveFinished(outcome);
  }

  private finishedMessage(outcome: ReplayOutcome): string {
    const { range } = this.options;
    const span = outcome.first === undefined ? `nothing read from ${iso(range.from)} to ${iso(range.to)}` : `from ${iso(outcome.first)} to ${iso(outcome.last!)}`;
    const plural = (n: number): string => `${n} tick${n === 1 ? '' : 's'}`;
    let message = `replay finished: ${plural(outcome.sent)} ${span}`;
    if (outcome.read !== outcome.sent) message += ` (${plural(outcome.read)} read; the rest were of streams no client had subscribed)`;
    const problems = this.options.problems?.() ?? [];
    if (problems.length > 0) message += `; skipped: ${problems.join('; ')}`;
    return message;
  }

  private emit(tick: RecordedTick): boolean {
    const key = streamKey(tick.exchange, tick.symbol);
    if (!this.wanted.has(key)) return false;
    const topicKey = key + '\u0000' + tick.mode;
    let topic = this.topics.get(topicKey);
    if (topic === undefined) {
      topic = formatTopic(this.feed, tick.exchange, tick.symbol, tick.mode);
      this.topics.set(topicKey, topic);
    }
    this.options.publisher.publish(topic, tick.payload);
    return true;
  }

  private end(message: string): void {
    this.ending = message;
    this.board.set('down', message);
  }
}
