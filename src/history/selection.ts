/**
 * What is recorded (TICKCAST_RECORD / --record), parsed once and asked per stream. Pure.
 *
 * A comma-separated list; a stream is recorded when any item matches it:
 *
 * | item                     | records                                                        |
 * |--------------------------|----------------------------------------------------------------|
 * | `all`                    | every stream of every feed                                     |
 * | `FEED`                   | every stream of that feed (`simulator`, `zerodha.alice`)       |
 * | `PREFIX*`                | every stream of the feeds whose id starts with PREFIX (`zerodha.*`) |
 * | `EXCHANGE:SYMBOL`        | that stream in every feed (`NSE:RELIANCE`)                     |
 * | `FEED/EXCHANGE:SYMBOL`   | that stream in that feed (the feed may be a `PREFIX*`)         |
 *
 * The shared feed (OpenAlgo's bare topics) is called `shared`. `off` (or an empty value) records
 * nothing. The items that name streams are also listed (`streams`): the gateway holds those
 * upstream while it records (holds.ts).
 */
import { SHARED_FEED, isValidFeedId } from '../protocol/topics.js';

/** The shared feed's name in selections and stored records. */
export const SHARED_FEED_NAME = 'shared';

export interface RecordSelection {
  /** Whether anything at all is recorded. */
  readonly any: boolean;
  /** The items as given, normalised, for logs and /api/status. */
  readonly items: readonly string[];
  matches(feed: string, exchange: string, symbol: string): boolean;
  /** The items that name a stream (`NSE:RELIANCE`, `FEED/NSE:RELIANCE`), in the order given. */
  readonly streams: readonly NamedStream[];
}

/** An item naming one stream, in one feed, every feed or the feeds of a PREFIX*. */
export interface NamedStream {
  /**
   * The feed: its name as written (`simulator`, `zerodha.alice`, `shared`), `undefined` for every
   * feed (`NSE:RELIANCE`), or a `PREFIX*` pattern as written (`zerodha.*`, `*`).
   */
  readonly feed: string | undefined;
  readonly pattern: boolean;
  readonly exchange: string;
  readonly symbol: string;
}

type FeedMatch = (feed: string) => boolean;

interface Item {
  feed: FeedMatch;
  stream?: { exchange: string; symbol: string };
  /** The feed as written, when the item has one. */
  feedText?: string;
}

const EXCHANGE = /^[A-Z][A-Z0-9_]{0,31}$/;
const SYMBOL = /^[A-Za-z0-9][A-Za-z0-9:&._-]{0,63}$/;
const ANY_FEED: FeedMatch = () => true;

/** The selection `raw` describes, or why it cannot be read. */
export function parseRecordSelection(raw: string): { ok: true; selection: RecordSelection } | { ok: false; error: string } {
  const parts = raw
    .split(',')
    .map((part) => part.trim())
    .filter((part) => part !== '');
  if (parts.length === 0 || (parts.length === 1 && parts[0]!.toLowerCase() === 'off')) {
    return { ok: true, selection: { any: false, items: [], matches: () => false, streams: [] } };
  }
  const items: Item[] = [];
  const streams: NamedStream[] = [];
  for (const part of parts) {
    const item = parseItem(part);
    if (typeof item === 'string') return { ok: false, error: `"${part}": ${item}` };
    items.push(item);
    if (item.stream) {
      const { feedText } = item;
      streams.push({ feed: feedText, pattern: feedText?.endsWith('*') ?? false, ...item.stream });
    }
  }
  return {
    ok: true,
    selection: {
      any: true,
      items: parts,
      streams,
      matches(feed, exchange, symbol) {
        const name = feed === SHARED_FEED ? SHARED_FEED_NAME : feed;
        return items.some((item) => item.feed(name) && (!item.stream || (item.stream.exchange === exchange && item.stream.symbol === symbol)));
      },
    },
  };
}

function parseItem(part: string): Item | string {
  if (part.toLowerCase() === 'all') return { feed: ANY_FEED };
  if (part.toLowerCase() === 'off') return '"off" cannot be combined with other items';
  const slash = part.indexOf('/');
  const feedText = slash >= 0 ? part.slice(0, slash) : part.includes(':') ? undefined : part;
  const streamText = slash >= 0 ? part.slice(slash + 1) : part.includes(':') ? part : undefined;
  let feed = ANY_FEED;
  if (feedText !== undefined) {
    const parsed = parseFeed(feedText);
    if (typeof parsed === 'string') return parsed;
    feed = parsed;
  }
  if (streamText === undefined) return { feed };
  const colon = streamText.indexOf(':');
  const exchange = streamText.slice(0, colon);
  const symbol = streamText.slice(colon + 1);
  if (colon < 0 || !EXCHANGE.test(exchange) || !SYMBOL.test(symbol)) {
    return 'expected EXCHANGE:SYMBOL, as in NSE:RELIANCE';
  }
  return { feed, stream: { exchange, symbol }, ...(feedText !== undefined ? { feedText } : {}) };
}

function parseFeed(text: string): FeedMatch | string {
  if (text.endsWith('*')) {
    const prefix = text.slice(0, -1);
    if (prefix === '') return ANY_FEED;
    if (!isValidFeedId(prefix.replace(/[._-]$/, '') || 'x')) return 'not a feed id or PREFIX*';
    return (feed) => feed.startsWith(prefix);
  }
  if (text !== SHARED_FEED_NAME && !isValidFeedId(text)) return 'not a feed id (letters, digits, ".", "_", "-")';
  return (feed) => feed === text;
}
