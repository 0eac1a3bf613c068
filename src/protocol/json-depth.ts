/**
 * How deeply a JSON text nests, found by a scan instead of a parse. V8's JSON.parse accepts any
 * depth, but values parsed from peers are later walked recursively (JSON.stringify when a reply
 * echoes them, Python-style repr in error messages), which overflows the stack a few thousand
 * levels down. Parsers refuse such texts up front instead. Pure.
 */

/**
 * The bracket (`[` or `{`) that first opens more than `limit` levels, or undefined if the text
 * never nests that deep. Brackets inside strings do not count. Linear, and free for texts
 * shorter than `limit` (they cannot nest deeper than their length).
 */
export function nestedBeyond(text: string, limit: number): '[' | '{' | undefined {
  if (text.length <= limit) return undefined;
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++; // backslash: skip the escaped character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) {
      inString = true;
    } else if (c === 0x5b || c === 0x7b) {
      if (++depth > limit) return c === 0x5b ? '[' : '{';
    } else if (c === 0x5d || c === 0x7d) {
      depth--;
    }
  }
  return undefined;
}
