/**
 * A tick's payload as a lower mode carries it. A client holding LTP and Depth of a stream gets,
 * for a Depth tick, a Depth message and an LTP message; the LTP one must have what an LTP tick
 * has, as OpenAlgo's adapters publish it on the LTP topic, not the whole book.
 *
 * Works on the JSON text, never on a parse: values keep their exact spelling (`1418.0` stays a
 * float for Python clients) and key order is kept. Pure.
 *
 * Key sets, as OpenAlgo's adapters (and tickcast's, which write the same payloads) publish them:
 * - LTP: `symbol`, `exchange`, `token`, `mode`, `ltp`, `ltt`, `timestamp` (those present).
 * - Quote from Depth: everything but the book (`depth`) and, for Angel, the keys its adapter
 *   adds only in Depth (`oi`, `upper_circuit`, `lower_circuit`).
 * - `mode` inside the payload follows the lower mode in the publisher's own style: a number
 *   becomes the number, Kite's names (`ltp`, `quote`, `full`) the name.
 * A payload that is not a JSON object, or whose LTP projection would have no `ltp`, has no
 * projection (`undefined`): the caller sends it whole, as OpenAlgo's proxy does.
 */
import type { Mode } from './modes.js';

const LTP_KEYS = new Set(['symbol', 'exchange', 'token', 'mode', 'ltp', 'ltt', 'timestamp']);
const DEPTH_ONLY: Readonly<Record<string, ReadonlySet<string>>> = {
  angel: new Set(['depth', 'oi', 'upper_circuit', 'lower_circuit']),
};
const BOOK = new Set(['depth']);
const MODE_NAMES = new Set(['"ltp"', '"quote"', '"full"', '"depth"']);
const KITE_NAME: Record<Mode, string> = { 1: '"ltp"', 2: '"quote"', 3: '"full"' };

/** A top-level member of a JSON object: its key (decoded) and the raw text of key and value. */
interface Member {
  key: string;
  rawKey: string;
  value: string;
}

/**
 * The payload of a `from`-mode tick as a `to`-mode tick would carry it (`to` < `from`), for a
 * feed of `broker`; undefined when it has none (see above).
 */
export function projectPayload(payload: string, from: Mode, to: Mode, broker: string): string | undefined {
  if (to >= from) return payload;
  const members = topLevelMembers(payload);
  if (!members) return undefined;
  const dropped = DEPTH_ONLY[broker] ?? BOOK;
  let out = '{';
  let hasLtp = false;
  for (const member of members) {
    if (to === 1 ? !LTP_KEYS.has(member.key) : dropped.has(member.key)) continue;
    if (member.key === 'ltp') hasLtp = true;
    if (out.length > 1) out += ',';
    out += member.rawKey + ':' + (member.key === 'mode' ? modeValue(member.value, to) : member.value);
  }
  if (to === 1 && !hasLtp) return undefined;
  return out + '}';
}

function modeValue(value: string, to: Mode): string {
  if (value === '1' || value === '2' || value === '3') return String(to);
  if (MODE_NAMES.has(value)) return KITE_NAME[to];
  return value;
}

const isSpace = (c: number): boolean => c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;

/**
 * The members of a JSON object, scanned without building values; undefined if the text is not
 * one well-formed object at the top level (inner values are only delimited, not validated:
 * the publisher's text reaches clients as it was, whatever its inner spelling).
 */
export function topLevelMembers(text: string): Member[] | undefined {
  const n = text.length;
  let i = skipSpace(text, 0);
  if (text.charCodeAt(i) !== 0x7b /* { */) return undefined;
  i = skipSpace(text, i + 1);
  const members: Member[] = [];
  if (text.charCodeAt(i) === 0x7d /* } */) return skipSpace(text, i + 1) === n ? members : undefined;
  for (;;) {
    if (text.charCodeAt(i) !== 0x22 /* " */) return undefined;
    const keyEnd = stringEnd(text, i);
    if (keyEnd < 0) return undefined;
    const rawKey = text.slice(i, keyEnd);
    let key: string;
    try {
      key = rawKey.includes('\\') ? (JSON.parse(rawKey) as string) : rawKey.slice(1, -1);
    } catch {
      return undefined;
    }
    i = skipSpace(text, keyEnd);
    if (text.charCodeAt(i) !== 0x3a /* : */) return undefined;
    const start = skipSpace(text, i + 1);
    const end = valueEnd(text, start);
    if (end < 0 || end === start) return undefined;
    members.push({ key, rawKey, value: text.slice(start, end) });
    i = skipSpace(text, end);
    const c = text.charCodeAt(i);
    if (c === 0x2c /* , */) {
      i = skipSpace(text, i + 1);
      continue;
    }
    if (c === 0x7d /* } */ && skipSpace(text, i + 1) === n) return members;
    return undefined;
  }
}

function skipSpace(text: string, i: number): number {
  while (i < text.length && isSpace(text.charCodeAt(i))) i++;
  return i;
}

/** Index just past the string starting at `i` (a quote), or -1 if it never closes. */
function stringEnd(text: string, i: number): number {
  for (let j = i + 1; j < text.length; j++) {
    const c = text.charCodeAt(j);
    if (c === 0x5c /* \ */) j++;
    else if (c === 0x22) return j + 1;
  }
  return -1;
}

/** Index just past the value starting at `i` (trailing spaces excluded), or -1 if it is cut off. */
function valueEnd(text: string, i: number): number {
  let depth = 0;
  let j = i;
  let last = i;
  while (j < text.length) {
    const c = text.charCodeAt(j);
    if (c === 0x22) {
      j = stringEnd(text, j);
      if (j < 0) return -1;
      last = j;
      continue;
    }
    if (c === 0x7b || c === 0x5b /* { [ */) depth++;
    else if (c === 0x7d || c === 0x5d /* } ] */) {
      if (depth === 0) return last;
      depth--;
    } else if (c === 0x2c && depth === 0) return last;
    j++;
    if (!isSpace(c)) last = j;
  }
  return -1;
}
