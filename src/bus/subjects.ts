/**
 * NATS subjects of the bus and of the control plane, and the escaping that lets any exchange,
 * symbol, feed or instance name sit in one subject token. Pure: no I/O.
 *
 * Layout (every variable part is one escaped token):
 *   tickcast.<instance>.tick.<feed>.<exchange>.<symbol>.<MODE>   a tick (MODE: LTP, QUOTE, DEPTH)
 *   tickcast.<instance>.event.<topic>                              any other bus message (order
 *                                                                   updates, cache invalidation)
 *   tickcast.<instance>.ctl.announce                               adapters announce themselves
 *   tickcast.<instance>.ctl.peer.<id>                              one control peer's inbox
 * The instance's shared feed (OpenAlgo's bare topics) is the feed token `_`, which no escaped
 * feed id can be (feed ids start with a letter or digit).
 *
 * Escaping rule (reversible, one canonical form per string): the text is taken as UTF-8 bytes;
 * the bytes of `A-Z a-z 0-9 - _` stand for themselves, every other byte is written `%XX` (two
 * upper-case hex digits), and the empty string is the lone token `%`. So `.`, `*`, `>`, spaces
 * and `%` itself never appear raw, and `unescapeToken(escapeToken(s)) === s` for every string
 * that is valid Unicode. A token that is not in canonical form (lower-case hex, an escaped safe
 * byte, bytes that are not UTF-8) is refused, so two different tokens never mean the same text.
 */
import { type Mode, TOPIC_MODE } from '../protocol/modes.js';
import { SHARED_FEED, formatTopic, isValidFeedId, parseTopic } from '../protocol/topics.js';

const SAFE = /^[A-Za-z0-9_-]$/;
const SAFE_BYTE = new Uint8Array(256);
for (let b = 0; b < 256; b++) SAFE_BYTE[b] = SAFE.test(String.fromCharCode(b)) ? 1 : 0;
const HEX = '0123456789ABCDEF';
const EMPTY_TOKEN = '%';
const SHARED_FEED_TOKEN = '_';
const ROOT = 'tickcast';
const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * Subjects longer than this are refused (a NATS server closes a connection whose protocol line
 * exceeds its max_control_line, 4 KiB by default; the longest real subject is far shorter).
 */
export const MAX_SUBJECT_LENGTH = 3000;

/** True for text that encodes to itself (only safe characters, not empty): the fast path. */
function isPlain(text: string): boolean {
  if (text.length === 0) return false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c >= 128 || SAFE_BYTE[c] === 0) return false;
  }
  return true;
}

/** One subject token for any string (see the rule above). Lone surrogates are encoded as U+FFFD. */
export function escapeToken(text: string): string {
  if (isPlain(text)) return text;
  if (text.length === 0) return EMPTY_TOKEN;
  let out = '';
  for (const byte of Buffer.from(text, 'utf8')) {
    out += SAFE_BYTE[byte] ? String.fromCharCode(byte) : `%${HEX[byte >> 4]}${HEX[byte & 15]}`;
  }
  return out;
}

/** The string a token stands for, or undefined if the token is not a canonical escaped token. */
export function unescapeToken(token: string): string | undefined {
  if (token === EMPTY_TOKEN) return '';
  if (isPlain(token)) return token;
  if (token.length === 0) return undefined;
  const bytes: number[] = [];
  for (let i = 0; i < token.length; i++) {
    const c = token.charCodeAt(i);
    if (c === 0x25 /* % */) {
      if (i + 2 >= token.length) return undefined;
      const hi = HEX.indexOf(token[i + 1]!);
      const lo = HEX.indexOf(token[i + 2]!);
      if (hi < 0 || lo < 0) return undefined;
      const byte = (hi << 4) | lo;
      if (SAFE_BYTE[byte]) return undefined; // a safe byte must stand for itself
      bytes.push(byte);
      i += 2;
    } else if (c < 128 && SAFE_BYTE[c]) {
      bytes.push(c);
    } else {
      return undefined;
    }
  }
  try {
    return strictUtf8.decode(Uint8Array.from(bytes));
  } catch {
    return undefined;
  }
}

const MODE_BY_TOKEN: Record<string, Mode> = { LTP: 1, QUOTE: 2, DEPTH: 3 };

function feedToken(feed: string): string {
  return feed === SHARED_FEED ? SHARED_FEED_TOKEN : escapeToken(feed);
}

/** The subjects of one instance. */
export class Subjects {
  /** `tickcast.<instance>` */
  readonly prefix: string;
  /** Every tick of the instance: `tickcast.<instance>.tick.>` */
  readonly allTicks: string;
  /** Every non-tick bus message: `tickcast.<instance>.event.>` */
  readonly allEvents: string;
  readonly announce: string;
  private readonly tickPrefix: string;
  private readonly eventPrefix: string;

  constructor(readonly instance: string) {
    this.prefix = `${ROOT}.${escapeToken(instance)}`;
    this.tickPrefix = `${this.prefix}.tick.`;
    this.eventPrefix = `${this.prefix}.event.`;
    this.allTicks = `${this.tickPrefix}>`;
    this.allEvents = `${this.eventPrefix}>`;
    this.announce = `${this.prefix}.ctl.announce`;
  }

  /** Where a tick of (feed, exchange, symbol) at `mode` is published. */
  tick(feed: string, exchange: string, symbol: string, mode: Mode): string {
    return `${this.stream(feed, exchange, symbol)}.${TOPIC_MODE[mode]}`;
  }

  /** Every mode of one stream: what a gateway node subscribes to. */
  streamWildcard(feed: string, exchange: string, symbol: string): string {
    return `${this.stream(feed, exchange, symbol)}.*`;
  }

  /** The inbox of one control peer (`id`: a plain token; empty: the prefix every inbox starts with). */
  controlPeer(id: string): string {
    return `${this.prefix}.ctl.peer.${id}`;
  }

  /** The subject a bus topic is published on: its tick subject, or an event subject. */
  forTopic(topic: string): string {
    const parsed = parseTopic(topic);
    if (parsed.kind === 'market') return this.tick(parsed.feed, parsed.exchange, parsed.symbol, parsed.mode);
    return this.eventPrefix + escapeToken(topic);
  }

  /**
   * The stream and mode of a tick subject of this instance, or undefined for any other subject
   * (or one whose tokens are not canonical escapes, or whose feed is not a valid feed id).
   */
  parseTick(subject: string): { feed: string; exchange: string; symbol: string; mode: Mode } | undefined {
    if (!subject.startsWith(this.tickPrefix)) return undefined;
    const tokens = subject.slice(this.tickPrefix.length).split('.');
    if (tokens.length !== 4) return undefined;
    const [feedPart, exchangePart, symbolPart, modePart] = tokens as [string, string, string, string];
    const mode = MODE_BY_TOKEN[modePart];
    const feed = feedPart === SHARED_FEED_TOKEN ? SHARED_FEED : unescapeToken(feedPart);
    const exchange = unescapeToken(exchangePart);
    const symbol = unescapeToken(symbolPart);
    if (mode === undefined || feed === undefined || exchange === undefined || symbol === undefined) return undefined;
    if (feed !== SHARED_FEED && !isValidFeedId(feed)) return undefined;
    return { feed, exchange, symbol, mode };
  }

  /**
   * The bus topic a subject of this instance carries (`simulator|NSE_TCS_LTP`, `CACHE_INVALIDATE_x`),
   * or undefined for a subject that is not a well-formed tick or event subject of this instance.
   */
  topicOf(subject: string): { topic: string; tick: boolean } | undefined {
    if (subject.startsWith(this.eventPrefix)) {
      const rest = subject.slice(this.eventPrefix.length);
      if (rest.includes('.')) return undefined;
      const topic = unescapeToken(rest);
      return topic === undefined ? undefined : { topic, tick: false };
    }
    const tick = this.parseTick(subject);
    return tick && { topic: formatTopic(tick.feed, tick.exchange, tick.symbol, tick.mode), tick: true };
  }

  private stream(feed: string, exchange: string, symbol: string): string {
    return `${this.tickPrefix}${feedToken(feed)}.${escapeToken(exchange)}.${escapeToken(symbol)}`;
  }
}
