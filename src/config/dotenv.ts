/**
 * Reads an OpenAlgo `.env` file the way OpenAlgo does: with python-dotenv's grammar and its
 * `load_dotenv()` defaults (interpolation on, the environment not overridden). Pure: text and
 * the environment in, values out.
 *
 * The grammar, statement by statement (a statement is one line, or more inside quotes):
 * - blank lines and `# comment` lines are skipped; `export ` before a key is allowed;
 * - `KEY = value`, with spaces or tabs around `=`; a key is any run of characters other than
 *   `=`, `#` and spaces (or `'quoted'`);
 * - `'single quoted'`: only `\\` and `\'` are escapes; `"double quoted"`: `\\ \' \" \a \b \f \n
 *   \r \t \v` are; both may span lines; after the closing quote only spaces and a `# comment`
 *   may follow;
 * - an unquoted value runs to the end of the line, minus a comment that starts with a space and
 *   `#`, minus trailing spaces (`KEY=a#b` keeps `a#b`; `KEY= # x` is `# x`, as python-dotenv);
 * - `KEY` alone (no `=`) has no value: it sets nothing and unsets an earlier line's value;
 * - `${NAME}` and `${NAME:-default}` anywhere in a value are replaced by NAME from the
 *   environment, else from an earlier line, else the default, else nothing;
 * - a later line for the same key wins.
 * A statement python-dotenv cannot read is skipped by OpenAlgo with a warning; here it is
 * reported (its line, and its key when one can be made out) so the caller can refuse it.
 */

export interface DotenvResult {
  /** Each key with a value, after interpolation. */
  readonly values: ReadonlyMap<string, string>;
  /** Statements that could not be read: the line each starts on, and its key if one is visible. */
  readonly unreadable: ReadonlyArray<{ line: number; key: string | undefined }>;
}

const EXPORT = /(?:export[^\S\r\n]+)?/y;
const QUOTED_KEY = /'([^']+)'/y;
const UNQUOTED_KEY = /([^=#\s]+)/y;
const INLINE_SPACE = /[^\S\r\n]*/y;
const SINGLE_QUOTED = /'((?:\\'|[^'])*)'/y;
const DOUBLE_QUOTED = /"((?:\\"|[^"])*)"/y;
const REST_OF_LINE = /[^\r\n]*/y;
const COMMENT = /(?:[^\S\r\n]*#[^\r\n]*)?/y;
const END_OF_LINE = /[^\S\r\n]*(?:\r\n|\n|\r|$)/y;
const SKIP_LINE = /[^\r\n]*(?:\r|\n|\r\n)?/y;
const LEADING_SPACE = /\s*/y;
const SINGLE_ESCAPES = /\\[\\']/g;
const DOUBLE_ESCAPES = /\\[\\'"abfnrtv]/g;
const VARIABLE = /\$\{([^}:]*)(?::-([^}]*))?\}/g;
const KEY_LIKE = /^[^\S\r\n]*(?:export[^\S\r\n]+)?([A-Za-z_][A-Za-z0-9_.]*)/;

const ESCAPED: Record<string, string> = {
  '\\\\': '\\', "\\'": "'", '\\"': '"', '\\a': '\x07', '\\b': '\b', '\\f': '\f', '\\n': '\n', '\\r': '\r', '\\t': '\t', '\\v': '\v',
};

class Unreadable extends Error {}

/** A cursor over the text that reads sticky regular expressions and counts lines. */
class Cursor {
  position = 0;
  constructor(readonly text: string) {}

  get done(): boolean {
    return this.position >= this.text.length;
  }

  peek(): string {
    return this.text.charAt(this.position);
  }

  /** Reads `pattern` here (its first group, or the whole match); throws if it does not match. */
  read(pattern: RegExp): string {
    pattern.lastIndex = this.position;
    const match = pattern.exec(this.text);
    if (match === null) throw new Unreadable();
    this.position = pattern.lastIndex;
    return match[1] ?? match[0];
  }

  lineAt(position: number): number {
    let line = 1;
    for (let i = 0; i < position; i++) {
      const c = this.text.charCodeAt(i);
      // \r\n counts once, as python-dotenv does.
      if (c === 10 || (c === 13 && this.text.charCodeAt(i + 1) !== 10)) line++;
    }
    return line;
  }
}

function readValue(cursor: Cursor): string {
  const first = cursor.peek();
  if (first === "'") return cursor.read(SINGLE_QUOTED).replace(SINGLE_ESCAPES, (e) => ESCAPED[e] ?? e);
  if (first === '"') return cursor.read(DOUBLE_QUOTED).replace(DOUBLE_ESCAPES, (e) => ESCAPED[e] ?? e);
  if (first === '' || first === '\n' || first === '\r') return '';
  return cursor.read(REST_OF_LINE).replace(/\s+#.*/, '').trimEnd();
}

/** One statement: a key and its value (null: no `=`), or no key at all (a comment). */
function readStatement(cursor: Cursor): { key: string | null; value: string | null } {
  cursor.read(EXPORT);
  let key: string | null = null;
  if (cursor.peek() !== '#') key = cursor.read(cursor.peek() === "'" ? QUOTED_KEY : UNQUOTED_KEY);
  cursor.read(INLINE_SPACE);
  let value: string | null = null;
  if (cursor.peek() === '=') {
    cursor.position++;
    cursor.read(INLINE_SPACE);
    value = readValue(cursor);
  }
  cursor.read(COMMENT);
  cursor.read(END_OF_LINE);
  return { key, value };
}

/** Replaces `${NAME}` / `${NAME:-default}`: the environment first, then earlier lines. */
function interpolate(value: string, earlier: ReadonlyMap<string, string | null>, env: Readonly<Record<string, string | undefined>>): string {
  return value.replace(VARIABLE, (_match, name: string, fallback: string | undefined) => {
    if (Object.hasOwn(env, name) && env[name] !== undefined) return env[name];
    if (earlier.has(name)) return earlier.get(name) ?? '';
    return fallback ?? '';
  });
}

export function parseDotenv(text: string, env: Readonly<Record<string, string | undefined>> = {}): DotenvResult {
  const cursor = new Cursor(text);
  // Keys in order with their interpolated values; null for a key given without `=`.
  const seen = new Map<string, string | null>();
  const unreadable: Array<{ line: number; key: string | undefined }> = [];
  while (!cursor.done) {
    cursor.read(LEADING_SPACE);
    if (cursor.done) break;
    const start = cursor.position;
    let statement: { key: string | null; value: string | null };
    try {
      statement = readStatement(cursor);
    } catch (error) {
      if (!(error instanceof Unreadable)) throw error;
      const lineText = text.slice(start, text.indexOf('\n', start) < 0 ? text.length : text.indexOf('\n', start));
      unreadable.push({ line: cursor.lineAt(start), key: KEY_LIKE.exec(lineText)?.[1] });
      cursor.read(SKIP_LINE);
      continue;
    }
    if (statement.key === null) continue;
    const value = statement.value === null ? null : interpolate(statement.value, seen, env);
    seen.delete(statement.key); // a later line wins, and takes the later place
    seen.set(statement.key, value);
  }
  const values = new Map<string, string>();
  for (const [key, value] of seen) if (value !== null) values.set(key, value);
  return { values, unreadable };
}
