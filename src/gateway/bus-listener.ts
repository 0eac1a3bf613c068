/**
 * Turns bus messages into deliveries. Every message is classified by its topic (spec §3.2);
 * a malformed one is counted, logged (rate-limited) and skipped — the feed never pauses.
 */
import type { Logger } from '../observability/logger.js';
import { type MarketTopic, parseTopic } from '../protocol/topics.js';
import type { FanOut } from './fan-out.js';
import { streamKey } from '../feed.js';

export interface BusCounters {
  messages: number;
  ticks: number;
  orderUpdates: number;
  cacheInvalidations: number;
  /** Skipped on purpose (private positions/margins feeds). */
  ignored: number;
  /** Malformed topic or payload. */
  invalid: number;
}

export interface BusListenerOptions {
  fanOut: FanOut;
  logger: Logger;
  /** An order update (`*_orders`) for `user`, payload verbatim. */
  onOrderUpdate(user: string, payload: string): void;
  /** OpenAlgo's `CACHE_INVALIDATE_*` after a broker re-login or key change. */
  onCacheInvalidate(user: string, cacheType: string): void;
  /** Offered every valid tick of the streams it wants (history/recorder.ts). */
  recorder?: TickRecorder;
  /** Receives, for 1 in 16 ticks, the age of the tick (now − its `timestamp`) in ms. */
  onTickAge?(ageMs: number): void;
  now?(): number;
}

/** What the bus listener asks of a recorder. */
export interface TickRecorder {
  wants(feed: string, exchange: string, symbol: string): boolean;
  record(feed: string, exchange: string, symbol: string, mode: MarketTopic['mode'], payload: string): void;
}

/** A parsed topic, with whether its ticks are recorded (asked once per topic). */
type RoutedTopic = MarketTopic & { key: string; recorded: boolean };

/** Parsed topics are memoised; the cap bounds memory if a publisher invents endless topics. */
const TOPIC_CACHE_LIMIT = 50_000;
const LOG_EVERY = 1000;

export class BusListener {
  readonly counters: BusCounters = { messages: 0, ticks: 0, orderUpdates: 0, cacheInvalidations: 0, ignored: 0, invalid: 0 };
  /** Ticks per feed ('' = the shared feed). */
  readonly ticksByFeed = new Map<string, number>();
  private readonly topics = new Map<string, RoutedTopic>();

  constructor(private readonly options: BusListenerOptions) {}

  readonly handle = (topic: string, payload: string, batched = false): void => {
    this.counters.messages++;
    const routed = this.topics.get(topic);
    if (routed) return this.tick(routed, payload, batched);

    const parsed = parseTopic(topic);
    switch (parsed.kind) {
      case 'market': {
        const recorded = this.options.recorder?.wants(parsed.feed, parsed.exchange, parsed.symbol) ?? false;
        const entry = { ...parsed, key: streamKey(parsed.exchange, parsed.symbol), recorded };
        if (this.topics.size >= TOPIC_CACHE_LIMIT) this.topics.clear();
        this.topics.set(topic, entry);
        return this.tick(entry, payload, batched);
      }
      case 'orders':
        return this.account(topic, payload, (user, _value, text) => {
          this.counters.orderUpdates++;
          this.options.onOrderUpdate(user, text);
        });
      case 'cache_invalidate':
        return this.account(topic, payload, (user, value) => {
          this.counters.cacheInvalidations++;
          this.options.onCacheInvalidate(user, typeof value.cache_type === 'string' ? value.cache_type : 'ALL');
        });
      case 'ignored':
        this.counters.ignored++;
        return;
      case 'invalid':
        return this.reject(topic, parsed.reason);
    }
  };

  /**
   * Payloads from other publishers are parsed to check they are JSON objects before clients see
   * them. Batched ones come from tickcast's own adapters, which build them as JSON: a structural
   * check is enough, and saves a parse per tick (a quarter of the gateway's CPU at 20k ticks/s).
   */
  private tick(topic: RoutedTopic, payload: string, batched: boolean): void {
    if (!isTickPayload(payload, batched)) {
      return this.reject(`${topic.exchange}_${topic.symbol}`, 'payload is not a JSON object');
    }
    this.counters.ticks++;
    this.ticksByFeed.set(topic.feed, (this.ticksByFeed.get(topic.feed) ?? 0) + 1);
    if ((this.counters.ticks & 15) === 0 && this.options.onTickAge) this.sampleAge(payload);
    this.options.fanOut.deliver(topic, payload);
    if (topic.recorded) this.options.recorder!.record(topic.feed, topic.exchange, topic.symbol, topic.mode, payload);
  }

  /** Account-level messages carry their user in the payload (`user_id`), never in the topic. */
  private account(topic: string, text: string, handle: (user: string, value: Record<string, unknown>, text: string) => void): void {
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      return this.reject(topic, 'payload is not JSON');
    }
    const user = (value as Record<string, unknown> | null)?.user_id;
    if (typeof user !== 'string' || user === '') return this.reject(topic, 'payload has no user_id');
    handle(user, value as Record<string, unknown>, text);
  }

  /** Reads `"timestamp":<epoch ms>` by a string search: a parse would cost more than the tick. */
  private sampleAge(payload: string): void {
    const at = payload.indexOf('"timestamp":');
    if (at < 0) return;
    const timestamp = parseInt(payload.slice(at + 12, at + 40).trimStart(), 10);
    const age = (this.options.now?.() ?? Date.now()) - timestamp;
    // Only plausible epoch-ms timestamps (OpenAlgo adapters all stamp local ms).
    if (timestamp > 1e12 && age >= 0 && age < 3_600_000) this.options.onTickAge!(age);
  }

  /** Counts and (rate-limited) logs a message skipped as malformed. */
  reject(topic: string, reason: string): void {
    this.counters.invalid++;
    if (this.counters.invalid % LOG_EVERY === 1) {
      this.options.logger.warn({ topic: topic.slice(0, 200), reason, invalid: this.counters.invalid }, 'skipped a malformed bus message');
    }
  }
}

/**
 * Whether a tick's payload may go to clients: a JSON object. Batched payloads come from
 * tickcast's own adapters, which build them as JSON: a structural check is enough for those.
 */
export function isTickPayload(payload: string, batched: boolean): boolean {
  return batched ? looksLikeObject(payload) : isJsonObject(payload);
}

function looksLikeObject(text: string): boolean {
  return text.charCodeAt(0) === 0x7b && text.charCodeAt(text.length - 1) === 0x7d;
}

function isJsonObject(text: string): boolean {
  try {
    const value: unknown = JSON.parse(text);
    return value !== null && typeof value === 'object' && !Array.isArray(value);
  } catch {
    return false;
  }
}
