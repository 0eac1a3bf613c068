/**
 * Bus topics (src/protocol/topics.ts). Contract: parseTopic never throws and classifies every
 * string; a market topic names a non-empty exchange and symbol taken from the topic, a mode
 * 1–3 and a valid feed; everything else says why. formatTopic and parseTopic round-trip.
 */
import { deepEqual, equal, ok } from 'node:assert/strict';
import fc from 'fast-check';
import type { Mode } from '../../../src/protocol/modes.js';
import { SHARED_FEED, type Topic, formatTopic, isValidFeedId, parseTopic } from '../../../src/protocol/topics.js';
import { HOSTILE_SHARE, assertReason, bounded, fuzzCase, type FuzzCase } from '../harness.js';
import { HOSTILE_BYTES, mutated } from '../mutate.js';

const KINDS = new Set(['market', 'cache_invalidate', 'orders', 'ignored', 'invalid']);
const TWO_SEGMENT = ['NSE_INDEX', 'BSE_INDEX', 'MCX_INDEX', 'GLOBAL_INDEX'];

function assertTopic(topic: string, parsed: Topic): void {
  ok(KINDS.has(parsed.kind), `kind ${parsed.kind}`);
  if (parsed.kind === 'market') {
    ok(parsed.exchange.length > 0 && parsed.symbol.length > 0, 'empty exchange or symbol');
    ok([1, 2, 3].includes(parsed.mode), `mode ${parsed.mode}`);
    ok(parsed.feed === SHARED_FEED || isValidFeedId(parsed.feed), `feed ${parsed.feed}`);
    // Everything comes from the topic: nothing longer than it, nothing invented.
    ok(parsed.feed.length + parsed.exchange.length + parsed.symbol.length < topic.length);
    ok(topic.includes(`${parsed.exchange}_${parsed.symbol}_`), 'exchange and symbol are not from the topic');
  } else {
    equal(parsed.topic, topic);
    if (parsed.kind === 'invalid' || parsed.kind === 'ignored') assertReason(parsed.reason);
  }
}

const feed = fc.oneof(fc.constant(SHARED_FEED), fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/));
const exchange = fc.oneof(fc.stringMatching(/^[A-Z0-9]{1,8}$/), fc.constantFrom(...TWO_SEGMENT));
/** Any symbol without `|` (a bare topic with `|` is ambiguous by design) and not starting a two-segment exchange. */
const symbol = fc.oneof(fc.stringMatching(/^[A-Z0-9&][A-Z0-9&_-]{0,24}$/), fc.string({ unit: 'binary', minLength: 1, maxLength: 40 })).filter((s) => !s.includes('|'));
const mode = fc.constantFrom<Mode>(1, 2, 3);

const parts = fc
  .record({ feed, exchange, symbol, mode })
  .filter(({ feed, exchange, symbol }) => {
    const topic = formatTopic(feed, exchange, symbol, 1);
    const bare = feed === SHARED_FEED ? topic : topic.slice(feed.length + 1);
    // Topics OpenAlgo reserves, and exchanges a symbol would merge with (`NSE` + `INDEX_X`).
    return !bare.startsWith('CACHE_INVALIDATE') && !TWO_SEGMENT.includes(`${exchange}_${symbol.split('_')[0]}`);
  });

/** Described, then built in the property (a failure prints the description, not 64 KiB). */
const hostileTopic = fc.record({
  pattern: fc.constantFrom('_', '|', 'a|', 'A_', '_LTP', 'CACHE_INVALIDATE', 'x_orders', '\u0000', 'é'),
  prefix: fc.constantFrom('', 'sim|', 'NSE_', 'NSE_INDEX_'),
});

export const topicCases: FuzzCase[] = [
  fuzzCase(
    'random strings never throw and are classified',
    fc.property(fc.oneof(fc.string({ unit: 'binary', maxLength: 200 }), fc.stringMatching(/^[A-Za-z|_]{0,40}$/)), (topic) => {
      assertTopic(topic, parseTopic(topic));
    }),
  ),
  fuzzCase(
    'mutated valid topics never throw and are classified',
    fc.property(mutated(parts.map((p) => Buffer.from(formatTopic(p.feed, p.exchange, p.symbol, p.mode)))), (bytes) => {
      const topic = bytes.toString('utf8');
      assertTopic(topic, parseTopic(topic));
    }),
  ),
  fuzzCase(
    'formatTopic then parseTopic gives the feed, exchange, symbol and mode back',
    fc.property(parts, ({ feed, exchange, symbol, mode }) => {
      const topic = formatTopic(feed, exchange, symbol, mode);
      deepEqual(parseTopic(topic), { kind: 'market', feed, exchange, symbol, mode });
    }),
  ),
  fuzzCase(
    '64 KiB hostile topics: bounded work, output bounded by input',
    fc.property(hostileTopic, ({ pattern, prefix }) => {
      const topic = prefix + pattern.repeat(Math.ceil(HOSTILE_BYTES / pattern.length));
      assertTopic(topic, bounded('hostile topic', () => parseTopic(topic)));
    }),
    HOSTILE_SHARE,
  ),
];
