/**
 * Bus topics. OpenAlgo publishers send `EXCHANGE_SYMBOL_MODE` (`NSE_RELIANCE_LTP`,
 * `NSE_INDEX_NIFTY_QUOTE`, `CRYPTO_SOL_INR_LTP`); those ticks belong to the instance's shared
 * feed. tickcast's own adapters prefix the feed they come from (`simulator|NSE_RELIANCE_LTP`),
 * so the gateway can keep one feed's ticks away from another feed's clients.
 */
import { type Mode, TOPIC_MODE, modeFromTopicSuffix } from './modes.js';

/** The feed of OpenAlgo's bare topics. */
export const SHARED_FEED = '';

export const FEED_SEPARATOR = '|';
const FEED_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

/** Exchanges whose names contain `_`, so their topics start with two segments. */
const TWO_SEGMENT_EXCHANGES = new Set(['NSE_INDEX', 'BSE_INDEX', 'MCX_INDEX', 'GLOBAL_INDEX']);

export function isValidFeedId(feed: string): boolean {
  return FEED_ID.test(feed);
}

export interface MarketTopic {
  kind: 'market';
  feed: string;
  exchange: string;
  symbol: string;
  mode: Mode;
}

export type Topic =
  | MarketTopic
  | { kind: 'cache_invalidate'; topic: string }
  | { kind: 'orders'; topic: string }
  | { kind: 'ignored'; topic: string; reason: string }
  | { kind: 'invalid'; topic: string; reason: string };

/**
 * Classifies a topic in OpenAlgo's order: cache invalidation, order updates, private
 * positions/margins feeds (skipped), then market data.
 */
export function parseTopic(topic: string): Topic {
  if (topic.startsWith('CACHE_INVALIDATE')) return { kind: 'cache_invalidate', topic };
  if (topic.endsWith('_orders')) return { kind: 'orders', topic };
  if (topic.endsWith('_positions') || topic.endsWith('_margins')) {
    return { kind: 'ignored', topic, reason: 'private positions/margins feed' };
  }

  let feed = SHARED_FEED;
  let rest = topic;
  const bar = topic.indexOf(FEED_SEPARATOR);
  if (bar > 0) {
    const prefix = topic.slice(0, bar);
    if (isValidFeedId(prefix)) {
      feed = prefix;
      rest = topic.slice(bar + 1);
    }
  }

  const parts = rest.split('_');
  if (parts.length < 3) return { kind: 'invalid', topic, reason: 'expected EXCHANGE_SYMBOL_MODE' };
  const mode = modeFromTopicSuffix(parts[parts.length - 1]!);
  if (mode === undefined) return { kind: 'invalid', topic, reason: 'mode must be LTP, QUOTE or DEPTH' };

  const twoSegment = TWO_SEGMENT_EXCHANGES.has(`${parts[0]}_${parts[1]}`);
  const exchange = twoSegment ? `${parts[0]}_${parts[1]}` : parts[0]!;
  const symbol = parts.slice(twoSegment ? 2 : 1, -1).join('_');
  if (exchange === '' || symbol === '') return { kind: 'invalid', topic, reason: 'empty exchange or symbol' };
  return { kind: 'market', feed, exchange, symbol, mode };
}

/** The topic an adapter publishes a tick on. */
export function formatTopic(feed: string, exchange: string, symbol: string, mode: Mode): string {
  const bare = `${exchange}_${symbol}_${TOPIC_MODE[mode]}`;
  return feed === SHARED_FEED ? bare : feed + FEED_SEPARATOR + bare;
}
