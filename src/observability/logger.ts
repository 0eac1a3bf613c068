/**
 * Structured JSON logs (pino). Secrets never reach a log line: the paths below are censored
 * wherever they appear, and callers never put an API key in a message string.
 *
 * Every line has each key once. pino writes a child's bindings, then its children's, then the
 * call's own fields, one after another without merging, so a key given twice (a feed bound by
 * whoever created an adapter and again by the adapter, or named again at a call site) would
 * appear twice: JSON parsers keep the last and log stores disagree about it. Fields about
 * another process use their own names (`adapterPid`), since `pid` is always the writer's.
 */
import { pino, type Logger, type DestinationStream } from 'pino';

export type { Logger };

export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';

const REDACT = [
  'api_key', 'apikey', 'apiKey', 'pepper', 'password', 'token', 'access_token', 'feed_token',
  '*.api_key', '*.apikey', '*.apiKey', '*.pepper', '*.password', '*.token', '*.access_token', '*.feed_token',
  // DATABASE_URL may carry a password, raw or parsed (config.database.password).
  'DATABASE_URL', 'databaseUrl', 'connectionString', '*.DATABASE_URL', '*.databaseUrl', '*.connectionString', '*.*.password',
];

/**
 * The keys at the top level of a one-line JSON object, in order, repeats included. A scan, not
 * a parse: a parser keeps only the last of repeated keys, which is what this is for. Anything
 * that is not an object yields what it has seen up to there.
 */
export function topLevelKeys(line: string): string[] {
  const keys: string[] = [];
  let depth = 0;
  let expectKey = false;
  for (let i = 0; i < line.length; i++) {
    const c = line.charCodeAt(i);
    if (c === 0x22 /* " */) {
      let end = i + 1;
      while (end < line.length && line.charCodeAt(end) !== 0x22) end += line.charCodeAt(end) === 0x5c /* \ */ ? 2 : 1;
      if (depth === 1 && expectKey) keys.push(JSON.parse(line.slice(i, end + 1)) as string);
      expectKey = false;
      i = end;
    } else if (c === 0x7b /* { */ || c === 0x5b /* [ */) {
      depth++;
      expectKey = depth === 1 && c === 0x7b;
    } else if (c === 0x7d /* } */ || c === 0x5d /* ] */) {
      depth--;
    } else if (c === 0x2c /* , */ && depth === 1) {
      expectKey = true;
    }
  }
  return keys;
}

/**
 * The line with each top-level key once, holding its last value (what any JSON reader already
 * took it to mean); unchanged when no key repeats, which is every line but a mistake's.
 */
export function withUniqueKeys(line: string): string {
  const keys = topLevelKeys(line);
  if (new Set(keys).size === keys.length) return line;
  try {
    return JSON.stringify(JSON.parse(line)) + (line.endsWith('\n') ? '\n' : '');
  } catch {
    return line;
  }
}

export function createLogger(level: LogLevel, destination?: DestinationStream): Logger {
  const options = {
    level,
    base: { pid: process.pid },
    redact: { paths: REDACT, censor: '[redacted]' },
    hooks: { streamWrite: withUniqueKeys },
  };
  return destination ? pino(options, destination) : pino(options);
}

/** A logger that drops everything (tests, one-shot CLI commands). */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
