/**
 * The recorder's own view of the bus where no gateway in the process sees the ticks: the
 * primary of `--workers N` (its workers each see every tick; recording there would store each
 * tick N times). Topics are parsed once and malformed ticks skipped, by the gateway's rules.
 */
import { isTickPayload } from '../gateway/bus-listener.js';
import { parseTopic } from '../protocol/topics.js';
import type { Recorder } from './recorder.js';

/** Parsed topics are memoised, bounded as the gateway's are. */
const TOPIC_CACHE_LIMIT = 50_000;

export class RecordingTap {
  private readonly topics = new Map<string, { feed: string; exchange: string; symbol: string; mode: 1 | 2 | 3 } | null>();

  constructor(private readonly recorder: Recorder) {}

  readonly handle = (topic: string, payload: string, batched = false): void => {
    let entry = this.topics.get(topic);
    if (entry === undefined) {
      const parsed = parseTopic(topic);
      entry = parsed.kind === 'market' && this.recorder.wants(parsed.feed, parsed.exchange, parsed.symbol) ? parsed : null;
      if (this.topics.size >= TOPIC_CACHE_LIMIT) this.topics.clear();
      this.topics.set(topic, entry);
    }
    if (entry && isTickPayload(payload, batched)) this.recorder.record(entry.feed, entry.exchange, entry.symbol, entry.mode, payload);
  };
}
