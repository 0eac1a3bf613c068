/**
 * Every configuration option tickcast has, in one table (`OPTIONS`): where its value lives in
 * `Config`, the environment variable and CLI flag that set it, the sentence users read about it,
 * its default, and how its text is parsed and checked. The loader (load.ts), the docs table
 * (docs.ts) and the CLI's help are all generated from this table, and the `Config` type is derived
 * from it, so an option exists exactly when it has a row here.
 *
 * Environment variable names are OpenAlgo's where OpenAlgo has the setting; tickcast's own start
 * with `TICKCAST_`. Defaults are written as a user would write the value (seconds, not
 * milliseconds) and go through the same parser as any other value.
 */
import { isIP } from 'node:net';
import { resolve } from 'node:path';
import type { LogLevel } from '../observability/logger.js';
import { NATIVE_BROKERS, isRealBroker } from '../brokers.js';
import { type DatabaseUrl, parseDatabaseUrl } from './database-url.js';
import { type RecordSelection, parseRecordSelection } from '../history/selection.js';

// ---------------------------------------------------------------------------------------------
// Parsers: text in, typed value or "what is allowed" out.
// ---------------------------------------------------------------------------------------------

export interface ParseContext {
  /** Absolute working directory; relative paths are resolved against it. */
  readonly cwd: string;
}

/**
 * A parser's verdict. On failure `expected` completes the sentence "… is not valid: expected …"
 * and `detail` (optional) says which part was wrong.
 */
export type Parsed<T> = { ok: true; value: T } | { ok: false; expected: string; detail?: string };

export type Parser<T> = (raw: string, ctx: ParseContext) => Parsed<T>;

const ok = <T>(value: T): Parsed<T> => ({ ok: true, value });
const fail = (expected: string, detail?: string): Parsed<never> =>
  detail === undefined ? { ok: false, expected } : { ok: false, expected, detail };

const INTEGER = /^[+-]?[0-9]+$/;
const DECIMAL = /^[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)$/;

/** Longest duration accepted: one day (well inside setTimeout's limit of 2^31-1 ms). */
const MAX_SECONDS = 86_400;

/** An integer in [min, max] (max defaults to the largest safe integer). */
function integer(min: number, max?: number): Parser<number> {
  const expected =
    max === undefined ? `an integer of at least ${min}` : `an integer from ${min} to ${max}`;
  return (raw) => {
    const n = Number(raw);
    if (!INTEGER.test(raw) || !Number.isSafeInteger(n)) return fail(expected);
    if (n < min || (max !== undefined && n > max)) return fail(expected);
    return ok(n);
  };
}

/** A TCP port to pin (1–65535), or `auto` / `0` for any free port. */
function port(): Parser<number | 'auto'> {
  const expected = 'an integer from 1 to 65535, or 0 or auto for any free port';
  return (raw) => {
    if (raw.toLowerCase() === 'auto') return ok('auto');
    const n = Number(raw);
    if (!INTEGER.test(raw) || !Number.isSafeInteger(n) || n < 0 || n > 65535) return fail(expected);
    return ok(n === 0 ? 'auto' : n);
  };
}

/** `scheme://user:password@host/…` → `scheme://host/…`, for messages about URLs that may carry credentials. */
function withoutCredentials(url: string): string {
  return url.replace(/^([a-z][a-z0-9+.-]*:\/\/)[^@/]*@/i, '$1');
}

/**
 * A registry URL: `sqlite:PATH`, a plain path, or `redis://[USER:PASSWORD@]HOST[:PORT][/DB]`
 * (`rediss://` for TLS). The option is secret (a Redis URL may carry a password), so it is
 * trimmed here and messages show it without credentials.
 */
function registryUrl(): Parser<string> {
  return (raw) => {
    const url = raw.trim();
    return /^(sqlite:.+|rediss?:\/\/.+|[^:]+)$/i.test(url)
      ? ok(url)
      : fail('sqlite:PATH, a file path, or redis://[USER:PASSWORD@]HOST[:PORT][/DB] (rediss:// for TLS)', `got ${JSON.stringify(withoutCredentials(url).slice(0, 80))}`);
  };
}

/** A PostgreSQL connection URL (`postgres://` or `postgresql://`, with a host and a database). */
function postgresUrl(): Parser<string> {
  const expected = 'postgres://[USER[:PASSWORD]@]HOST[:PORT]/DATABASE (or postgresql://)';
  return (raw) => {
    const url = raw.trim();
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      return fail(expected, `"${withoutCredentials(url).slice(0, 80)}" is not a URL`);
    }
    if ((parsed.protocol !== 'postgres:' && parsed.protocol !== 'postgresql:') || parsed.hostname === '' || parsed.pathname.length < 2) {
      return fail(expected, `got "${withoutCredentials(url).slice(0, 80)}"`);
    }
    return ok(url);
  };
}

/** NATS server URLs, comma-separated: `nats://host:port` (or `tls://` for TLS). */
function natsUrls(): Parser<readonly string[]> {
  const expected = 'nats://HOST:PORT, or several separated by commas for a cluster (tls:// for TLS)';
  return (raw) => {
    const urls = splitList(raw);
    if (urls.length === 0) return fail(expected);
    for (const url of urls) {
      let parsed: URL;
      try {
        parsed = new URL(url);
      } catch {
        return fail(expected, `"${withoutCredentials(url)}" is not a URL`);
      }
      if ((parsed.protocol !== 'nats:' && parsed.protocol !== 'tls:') || parsed.hostname === '') return fail(expected, `"${withoutCredentials(url)}" is not a nats:// URL with a host`);
    }
    return ok(urls);
  };
}

/** A ws:// or wss:// URL. */
function websocketUrl(): Parser<string> {
  return (raw) => {
    try {
      const url = new URL(raw);
      if (url.protocol === 'ws:' || url.protocol === 'wss:') return ok(raw);
    } catch {
      // fall through
    }
    return fail('a ws:// or wss:// URL');
  };
}

/** Any integer (for seeds). */
function anyInteger(): Parser<number> {
  return (raw) => {
    const n = Number(raw);
    return INTEGER.test(raw) && Number.isSafeInteger(n) ? ok(n) : fail('an integer');
  };
}

/** A decimal number greater than 0 and at most `max`. */
function positiveNumber(max: number): Parser<number> {
  const expected = `a number greater than 0 and at most ${max} (fractions allowed, e.g. 0.5)`;
  return (raw) => {
    const n = Number(raw);
    return DECIMAL.test(raw) && n > 0 && n <= max ? ok(n) : fail(expected);
  };
}

/**
 * Decimal seconds, returned in whole milliseconds. `allowZero` admits exactly 0 (a "disabled"
 * value); otherwise the value must be at least 1 ms.
 */
function seconds(allowZero: boolean): Parser<number> {
  const expected = allowZero
    ? `a number of seconds from 0 to ${MAX_SECONDS} (0 disables it; fractions allowed, e.g. 2.5)`
    : `a number of seconds greater than 0 and at most ${MAX_SECONDS} (fractions allowed, e.g. 2.5)`;
  return (raw) => {
    const s = Number(raw);
    if (!DECIMAL.test(raw) || s < 0 || s > MAX_SECONDS) return fail(expected);
    const ms = Math.round(s * 1000);
    if (s === 0 && allowZero) return ok(0);
    if (ms < 1) return fail(expected, 'the smallest step is 0.001 seconds');
    return ok(ms);
  };
}

/** Whole seconds ≥ 0, returned in milliseconds. */
function wholeSecondsAsMs(): Parser<number> {
  const toSeconds = integer(0);
  return (raw, ctx) => {
    const s = toSeconds(raw, ctx);
    return s.ok ? ok(s.value * 1000) : fail('a whole number of seconds, 0 or more');
  };
}

/** One of a fixed set of words, case-insensitive, returned in lower case. */
function oneOf<const W extends string>(words: readonly W[]): Parser<W> {
  const expected = `one of ${words.join(', ')}`;
  return (raw) => {
    const word = raw.toLowerCase();
    return (words as readonly string[]).includes(word) ? ok(word as W) : fail(expected);
  };
}

const TRUE_WORDS = ['true', '1', 'yes'];
const FALSE_WORDS = ['false', '0', 'no'];

/** true/false, 1/0, yes/no (case-insensitive). */
function boolean(): Parser<boolean> {
  return (raw) => {
    const word = raw.toLowerCase();
    if (TRUE_WORDS.includes(word)) return ok(true);
    if (FALSE_WORDS.includes(word)) return ok(false);
    return fail('true or false (also 1/0, yes/no)');
  };
}

/** A string matching `pattern`. */
function matching(pattern: RegExp, expected: string): Parser<string> {
  return (raw) => (pattern.test(raw) ? ok(raw) : fail(expected));
}

const HOST_LABEL = /^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$/;

/** A host name (RFC 1123 labels) or an IPv4/IPv6 address. */
function host(): Parser<string> {
  return (raw) =>
    isIP(raw) !== 0 || (raw.length <= 253 && raw.split('.').every((l) => HOST_LABEL.test(l)))
      ? ok(raw)
      : fail('a host name or IP address (e.g. 127.0.0.1, 0.0.0.0, ::1, localhost)');
}

/** A file-system path, returned absolute (relative ones are taken from the working directory). */
function path(): Parser<string> {
  return (raw, ctx) => ok(resolve(ctx.cwd, raw));
}

/**
 * The env file's absolute path. Typed as possibly undefined: the loader leaves it unset when the
 * default file is absent, so `config.envFile` names the file actually read.
 */
function envFilePath(): Parser<string | undefined> {
  return path();
}

/** Comma-separated items, trimmed, empty items dropped. */
function splitList(raw: string): string[] {
  return raw
    .split(',')
    .map((item) => item.trim())
    .filter((item) => item !== '');
}

const SYMBOL_ENTRY = /^[A-Z0-9_]+:[^,\s]+$/;

/**
 * A comma list of EXCHANGE:SYMBOL entries, kept as text with the entries trimmed and empty ones
 * dropped (`'NSE:A, NSE:B,'` → `'NSE:A,NSE:B'`); empty is allowed.
 */
function symbolList(): Parser<string> {
  const expected =
    'a comma-separated list of EXCHANGE:SYMBOL entries with an upper-case exchange (e.g. NSE:RELIANCE,NSE:INFY), or nothing for the built-in list';
  return (raw) => {
    const entries = splitList(raw);
    const bad = entries.filter((entry) => !SYMBOL_ENTRY.test(entry));
    if (bad.length === 0) return ok(entries.join(','));
    return fail(expected, `not valid: ${bad.map((entry) => JSON.stringify(entry)).join(', ')}`);
  };
}

const BROKER_NAME = /^[a-z0-9_-]+$/;

/**
 * Broker names the simulator serves (lower-cased). Simulated prices must never reach a real
 * broker's users, so `*` and the names of real brokers (src/brokers.ts) are refused.
 */
function simulatedBrokers(): Parser<readonly string[]> {
  const expected = 'a comma-separated list of simulated broker names (letters, digits, _ and -), e.g. simulator';
  return (raw) => {
    const names = splitList(raw.toLowerCase());
    if (names.length === 0) return fail(expected);
    const bad = names.filter((name) => !BROKER_NAME.test(name));
    if (bad.length > 0) return fail(expected, `not valid: ${bad.map((name) => JSON.stringify(name)).join(', ')}`);
    const real = names.filter(isRealBroker);
    if (real.length > 0) {
      return fail(expected, `${real.join(', ')} ${real.length === 1 ? 'is a real broker' : 'are real brokers'}: its users get ticks only from its own feed, never simulated prices`);
    }
    return ok(names);
  };
}

/**
 * Brokers whose users the shared feed serves: `auto`, `none`, `*` (returned as `['*']`) or a
 * comma list of broker names (lower-cased).
 */
function sharedFeedBrokers(): Parser<SharedFeedBrokers> {
  const expected = 'auto, none, * (every broker without an adapter) or a comma-separated list of broker names';
  return (raw) => {
    const word = raw.trim().toLowerCase();
    if (word === 'auto' || word === 'none') return ok(word);
    const names = splitList(word);
    if (names.length === 1 && names[0] === '*') return ok(['*']);
    if (names.length === 0) return fail(expected);
    const bad = names.filter((name) => !BROKER_NAME.test(name));
    if (bad.length > 0) return fail(expected, `not valid: ${bad.map((name) => JSON.stringify(name)).join(', ')}`);
    return ok(names);
  };
}

export type SharedFeedBrokers = 'auto' | 'none' | readonly string[];

/** Real broker names (lower-cased) whose users the OpenAlgo bridge serves instead of a native feed. */
function bridgedBrokers(): Parser<readonly string[]> {
  const expected = 'a comma-separated list of broker names (zerodha, angel, …)';
  return (raw) => {
    const names = splitList(raw.toLowerCase());
    const unknown = names.filter((name) => !isRealBroker(name));
    if (unknown.length > 0) return fail(expected, `not a broker OpenAlgo streams for: ${unknown.map((name) => JSON.stringify(name)).join(', ')}`);
    return ok(names);
  };
}

/** A comma list passed through as given (trimmed, empty items dropped). */
function list(): Parser<readonly string[]> {
  return (raw) => ok(splitList(raw));
}

/** What TICKCAST_RECORD selects (history/selection.ts). */
function recordSelection(): Parser<RecordSelection> {
  const expected = 'off, all, or a comma-separated list of FEED, PREFIX*, EXCHANGE:SYMBOL and FEED/EXCHANGE:SYMBOL';
  return (raw) => {
    const parsed = parseRecordSelection(raw);
    return parsed.ok ? ok(parsed.selection) : fail(expected, parsed.error);
  };
}

/** What TICKCAST_RECORD_FRAMES records: nothing, every native broker's sockets, or those of the brokers named. */
export type FrameRecording = 'off' | 'all' | readonly string[];

function frameRecording(): Parser<FrameRecording> {
  const expected = `off, on, or a comma-separated list of native brokers (${NATIVE_BROKERS.join(', ')})`;
  return (raw) => {
    const word = raw.trim().toLowerCase();
    if (word === 'off' || word === '') return ok('off');
    if (word === 'on' || word === 'all') return ok('all');
    const names = splitList(word);
    const bad = names.filter((name) => !NATIVE_BROKERS.includes(name));
    if (names.length === 0 || bad.length > 0) return fail(expected, bad.length > 0 ? `not a native broker: ${bad.map((name) => JSON.stringify(name)).join(', ')}` : undefined);
    return ok([...new Set(names)]);
  };
}

/** A secret of at least `min` characters. */
function secret(min: number): Parser<string> {
  return (raw) => (raw.length >= min ? ok(raw) : fail(`at least ${min} characters`));
}

/** OpenAlgo's DATABASE_URL, as SQLAlchemy reads it (database-url.ts). */
function databaseUrl(): Parser<DatabaseUrl> {
  return (raw, ctx) => {
    const parsed = parseDatabaseUrl(raw, ctx.cwd);
    return parsed.ok ? ok(parsed.value) : fail(parsed.expected, parsed.detail);
  };
}

const HEX = /^(?:[0-9a-fA-F]{2})+$/;

/** Hexadecimal digits, an even number of them (bytes). */
function hex(): Parser<string> {
  return (raw) => (HEX.test(raw) ? ok(raw) : fail('hexadecimal digits (0-9, a-f), an even number of them'));
}

// ---------------------------------------------------------------------------------------------
// The table.
// ---------------------------------------------------------------------------------------------

export interface Option<K extends string = string, T = unknown> {
  /** Dotted path of the value in `Config` (`ws.port`). */
  readonly key: K;
  /** Environment variable (also the name used in `.env` files). */
  readonly env: string;
  /** Commander-style long flag with its argument (`--port <port>`), if the CLI has one. */
  readonly flag: string | undefined;
  /** One sentence for users: docs table and CLI help. */
  readonly description: string;
  /** The default as a user would write it, or undefined for "unset". Parsed like any value. */
  readonly default: string | undefined;
  /** The value is never echoed in messages, and is used exactly as given (not trimmed). */
  readonly secret: boolean;
  readonly parse: Parser<T>;
}

interface OptionInput<K extends string, T> {
  key: K;
  env: string;
  flag?: string;
  description: string;
  secret?: boolean;
  parse: Parser<T>;
}

/** A row with a default: its value is always present. */
function option<const K extends string, T>(spec: OptionInput<K, T> & { default: string }): Option<K, T>;
/** A row without a default: its value is `undefined` unless set. */
function option<const K extends string, T>(
  spec: OptionInput<K, T> & { default: undefined },
): Option<K, T | undefined>;
function option<const K extends string, T>(
  spec: OptionInput<K, T> & { default: string | undefined },
): Option<K, T | undefined> {
  return {
    key: spec.key,
    env: spec.env,
    flag: spec.flag,
    description: spec.description,
    default: spec.default,
    secret: spec.secret ?? false,
    parse: spec.parse,
  };
}

export const FEEDS = ['simulator', 'none'] as const;
export type FeedKind = (typeof FEEDS)[number];

export const LOG_LEVELS = [
  'fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent',
] as const satisfies readonly LogLevel[];

/** The variable naming the env file; the loader reads it before the file itself. */
export const ENV_FILE_VAR = 'TICKCAST_ENV_FILE';

/** Prefix of tickcast's own variables; an unknown one in the environment is reported as a typo. */
export const OWN_PREFIX = 'TICKCAST_';

export const OPTIONS = [
  option({
    key: 'envFile',
    env: ENV_FILE_VAR,
    flag: '--env-file <file>',
    default: '.env',
    description:
      'File of KEY=value lines read at start, below the environment and flags in precedence; the default .env may be absent, a file named here must exist.',
    parse: envFilePath(),
  }),
  option({
    key: 'instance',
    env: 'TICKCAST_INSTANCE',
    flag: '--instance <name>',
    default: 'default',
    description:
      'Name of this gateway instance, to tell several on one machine apart (letters, digits, _ and -, up to 32 characters).',
    parse: matching(
      /^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$/,
      '1 to 32 letters, digits, _ or -, starting with a letter or digit',
    ),
  }),
  option({
    key: 'dataDir',
    env: 'TICKCAST_DATA_DIR',
    flag: '--data-dir <dir>',
    default: undefined,
    description:
      "Directory for tickcast's state; each instance keeps its API keys, pepper and symbol master in its own subdirectory <dir>/<instance>. Unset: a per-user directory, the same from any working directory: $XDG_DATA_HOME/tickcast (~/.local/share/tickcast when XDG_DATA_HOME is unset). A relative value is taken from the working directory.",
    parse: path(),
  }),
  option({
    key: 'controlKeyFile',
    env: 'TICKCAST_CONTROL_KEY_FILE',
    flag: '--control-key-file <file>',
    default: undefined,
    description:
      "File holding the instance's control key (64 hex digits): only processes that can read it may serve as the instance's adapters or gateways on the control channel. Unset: control.key in the instance's data directory, created (mode 0600) by the first tickcast process of the instance that needs it. A file named here must exist: adapters and gateway nodes on other hosts are given a copy of the instance's file (docs/control-protocol.md).",
    parse: path(),
  }),
  option({
    key: 'openalgo.dir',
    env: 'TICKCAST_OPENALGO_DIR',
    flag: '--openalgo-dir <dir>',
    default: undefined,
    description:
      "An OpenAlgo installation's directory: its .env is read as OpenAlgo reads it, for OpenAlgo's variables (DATABASE_URL, API_KEY_PEPPER, FERNET_SALT, WEBSOCKET_HOST/PORT, ZMQ_HOST/PORT, WS_*, VALID_BROKERS), below the environment and above tickcast's own .env, with relative paths taken from this directory; the proxy settings there that tickcast does not use are named at start, and the stats file OpenAlgo's Health Monitor reads is written (WS_PROXY_STATS_FILE). It must exist and hold a .env.",
    parse: path(),
  }),
  option({
    key: 'openalgo.statsFile',
    env: 'WS_PROXY_STATS_FILE',
    default: undefined,
    description:
      "JSON file of the proxy's figures that OpenAlgo's Health Monitor reads, replaced atomically every 10 s (OpenAlgo's variable and format). Unset: log/ws_proxy_stats.json in the OpenAlgo directory with TICKCAST_OPENALGO_DIR, else none is written. A relative path set in OpenAlgo's .env is taken from the OpenAlgo directory, elsewhere from the working directory.",
    parse: path(),
  }),
  option({
    key: 'openalgo.bridge',
    env: 'TICKCAST_OPENALGO_BRIDGE',
    flag: '--openalgo-bridge <when>',
    default: 'auto',
    description:
      "Whether users of brokers without a native tickcast adapter are served by the OpenAlgo bridge (OpenAlgo's own broker adapters, one per user, in OpenAlgo's Python: docs/openalgo.md). auto: yes when TICKCAST_OPENALGO_DIR holds OpenAlgo's websocket_proxy/broker_factory.py, and `tickcast start` runs and supervises the bridge; on: the same, and the start fails if it cannot; external: yes, with a bridge you run yourself (`tickcast openalgo-bridge`); off: no bridge, those users are told they have no feed.",
    parse: oneOf(['auto', 'on', 'external', 'off'] as const),
  }),
  option({
    key: 'openalgo.bridgeBrokers',
    env: 'TICKCAST_BRIDGE_BROKERS',
    flag: '--bridge-brokers <list>',
    default: undefined,
    description:
      `Brokers with a native tickcast adapter (${NATIVE_BROKERS.join(', ')}) whose users are served by the OpenAlgo bridge instead, as OpenAlgo's proxy would serve them. Every other broker's users go through the bridge anyway.`,
    parse: bridgedBrokers(),
  }),
  option({
    key: 'openalgo.bridgeStaleMs',
    env: 'TICKCAST_BRIDGE_STALE',
    default: '30',
    description:
      "Seconds a bridged user's feed may send no tick while it has streams subscribed before its clients are told it is stale (feed_status stale); the next tick makes it live again.",
    parse: seconds(false),
  }),
  option({
    key: 'openalgo.bridgeCallTimeoutMs',
    env: 'TICKCAST_BRIDGE_CALL_TIMEOUT',
    default: '30',
    description:
      "Seconds the OpenAlgo bridge waits for a call into an OpenAlgo broker adapter (initialize, connect, subscribe, …) to return; one that hangs longer has that user's feed reported down and opened afresh, and never holds up another user.",
    parse: seconds(false),
  }),
  option({
    key: 'openalgo.bridgeRetryMs',
    env: 'TICKCAST_BRIDGE_RETRY',
    default: '5',
    description:
      "Seconds before the OpenAlgo bridge tries again to open a user's feed that failed to open (an adapter that raised, returned an error, refused the broker session or hung); the wait doubles with each failure up to 60 s. A re-login in OpenAlgo retries at once.",
    parse: seconds(false),
  }),
  option({
    key: 'openalgo.python',
    env: 'TICKCAST_OPENALGO_PYTHON',
    flag: '--python <path>',
    default: undefined,
    description:
      "Python that runs the OpenAlgo bridge: OpenAlgo's own environment, since the bridge imports OpenAlgo's code. Unset: .venv/bin/python in the OpenAlgo directory when it exists, else python3 on the PATH.",
    parse: path(),
  }),
  option({
    key: 'ws.host',
    env: 'WEBSOCKET_HOST',
    flag: '--host <host>',
    default: '127.0.0.1',
    description: 'Address the WebSocket server listens on (host name or IP; 0.0.0.0 for every interface).',
    parse: host(),
  }),
  option({
    key: 'ws.port',
    env: 'WEBSOCKET_PORT',
    flag: '--port <port>',
    default: undefined,
    description:
      'Port the WebSocket server listens on. A number pins it (a taken port stops the start, naming the holder); 0 or auto picks a free one. Unset: 8765 for the instance named default, a free port for any other.',
    parse: port(),
  }),
  option({
    key: 'ws.authGraceMs',
    env: 'WS_AUTH_GRACE_SECONDS',
    flag: '--auth-grace <seconds>',
    default: '15',
    description: 'Seconds a client may stay connected without authenticating before it is closed with code 4401.',
    parse: seconds(false),
  }),
  option({
    key: 'ws.pingIntervalMs',
    env: 'WS_PING_INTERVAL',
    default: '20',
    description: 'Seconds between keepalive pings to each client (0 disables them).',
    parse: seconds(true),
  }),
  option({
    key: 'ws.pingTimeoutMs',
    env: 'WS_PING_TIMEOUT',
    default: '20',
    description: 'Seconds to wait for the answer to a keepalive ping before closing the connection with code 1011.',
    parse: seconds(false),
  }),
  option({
    key: 'ws.maxMessageBytes',
    env: 'TICKCAST_MAX_MESSAGE_BYTES',
    default: '65536',
    description:
      'Largest client message in bytes that is processed; a larger one gets a MESSAGE_TOO_LARGE error reply and the connection stays open.',
    parse: integer(1024),
  }),
  option({
    key: 'ws.maxFrameBytes',
    env: 'TICKCAST_MAX_FRAME_BYTES',
    default: '1048576',
    description:
      "Largest client frame in bytes accepted at all (OpenAlgo's limit); a larger one closes the connection with code 1009; at least TICKCAST_MAX_MESSAGE_BYTES.",
    parse: integer(1024),
  }),
  option({
    key: 'ws.maxBufferedBytes',
    env: 'TICKCAST_MAX_BUFFERED_BYTES',
    default: '1048576',
    description:
      'Bytes of outgoing data that may wait for one client; past this its market data is conflated (only the latest tick of each stream waits), so memory per client stays bounded.',
    parse: integer(65536),
  }),
  option({
    key: 'ws.slowConsumerMs',
    env: 'TICKCAST_SLOW_CONSUMER_SECONDS',
    default: '10',
    description:
      'A client whose outgoing data stays over its budget without draining anything for this long is closed with code 4408 (slow consumer).',
    parse: seconds(false),
  }),
  option({
    key: 'ws.allowedOrigins',
    env: 'TICKCAST_ALLOWED_ORIGINS',
    default: undefined,
    description:
      'Comma-separated browser origins allowed to connect (e.g. https://trade.example.com); a browser from any other origin is refused with HTTP 403, and gets no CORS headers from the API-key endpoints (/api/ticks, /api/history/streams, /api/symbols, /api/instances). Unset: any origin, as OpenAlgo. Clients that send no Origin (SDKs, scripts) are always allowed.',
    parse: list(),
  }),
  option({
    key: 'ws.allowedHosts',
    env: 'TICKCAST_ALLOWED_HOSTS',
    default: undefined,
    description:
      'Comma-separated extra host names the HTTP endpoints (status, metrics, dashboard and its API) answer to, e.g. the public name a reverse proxy passes in Host (trade.example.com); a name alone for any port, name:port for one. Always answered: localhost and WEBSOCKET_HOST at the gateway\'s port, and any IP address; other Host headers get 421 (a defence against DNS rebinding). /healthz, /readyz and WebSocket upgrades are not checked.',
    parse: list(),
  }),
  option({
    key: 'ws.tlsCert',
    env: 'TICKCAST_TLS_CERT',
    flag: '--tls-cert <file>',
    default: undefined,
    description: 'PEM certificate (chain) file: serve wss:// instead of ws://; needs TICKCAST_TLS_KEY too.',
    parse: path(),
  }),
  option({
    key: 'ws.tlsKey',
    env: 'TICKCAST_TLS_KEY',
    flag: '--tls-key <file>',
    default: undefined,
    description: 'PEM private key file for TICKCAST_TLS_CERT.',
    parse: path(),
  }),
  option({
    key: 'limits.maxConnections',
    env: 'TICKCAST_MAX_CONNECTIONS',
    default: '10000',
    description: 'Client connections at most; more are refused at the WebSocket handshake with HTTP 503.',
    parse: integer(1),
  }),
  option({
    key: 'limits.maxPendingAuth',
    env: 'TICKCAST_MAX_PENDING_AUTH',
    default: '1000',
    description: 'Connections that have not authenticated yet, at most; more are refused at the handshake with HTTP 503.',
    parse: integer(1),
  }),
  option({
    key: 'limits.maxConnectionsPerKey',
    env: 'TICKCAST_MAX_CONNECTIONS_PER_KEY',
    default: '1000',
    description: 'Authenticated connections per API key (per user) at most; one more gets LIMIT_EXCEEDED on authenticate.',
    parse: integer(1),
  }),
  option({
    key: 'limits.maxSubscriptions',
    env: 'TICKCAST_MAX_SUBSCRIPTIONS',
    default: '3000',
    description: 'Streams (exchange, symbol) one client may hold; symbols past it fail in the subscribe reply.',
    parse: integer(1),
  }),
  option({
    key: 'limits.subscribeRate',
    env: 'TICKCAST_SUBSCRIBE_RATE',
    default: '20',
    description: 'Subscribe and unsubscribe requests per second one client may send on average (bursts of twice that); more get LIMIT_EXCEEDED.',
    parse: positiveNumber(100_000),
  }),
  option({
    key: 'limits.authFailures',
    env: 'TICKCAST_AUTH_FAILURES',
    default: '5',
    description:
      'Failed authentications one address may make in a minute and have answered at once; past that each further failure is answered after 1 s, then twice as long per failure (up to 60 s), and the address gets one key checked at a time. A valid key is always let in at once, even from an address that keeps failing (behind a proxy every client shares one).',
    parse: integer(1),
  }),
  option({
    key: 'ws.snapshots',
    env: 'TICKCAST_SNAPSHOT',
    default: 'true',
    description:
      "Send a stream's last known value right after a client subscribes (an ordinary market_data message); a client can opt out with \"snapshot\": false in authenticate.",
    parse: boolean(),
  }),
  option({
    key: 'ws.snapshotMaxAgeMs',
    env: 'TICKCAST_SNAPSHOT_MAX_AGE_SECONDS',
    default: '60',
    description:
      "A snapshot is sent only if its tick arrived within this many seconds, and only from the feed's current live session: an older value, or one from before the feed last went down, is never shown as the price now.",
    parse: seconds(false),
  }),
  option({
    key: 'ws.recoveryTicks',
    env: 'TICKCAST_RECOVERY_TICKS',
    default: '2000',
    description:
      'Recent ticks kept per stream so a client that negotiated seq and reconnects can be resent exactly what it missed (subscribe with "since"); 0 turns recovery off (such a client is told the gap cannot be filled).',
    parse: integer(0),
  }),
  option({
    key: 'ws.recoveryMaxAgeMs',
    env: 'TICKCAST_RECOVERY_SECONDS',
    default: '60',
    description: 'Ticks older than this many seconds are not resent by recovery after reconnect: a client away longer is told the gap cannot be filled.',
    parse: seconds(false),
  }),
  option({
    key: 'ws.recoveryBytes',
    env: 'TICKCAST_RECOVERY_BYTES',
    default: '67108864',
    description:
      'Payload characters of recent ticks kept for recovery, all streams together; past it the oldest ticks of the least recently updated streams go first.',
    parse: integer(0),
  }),
  option({
    key: 'bus.batch',
    env: 'TICKCAST_BUS_BATCH',
    default: 'true',
    description:
      "Let tickcast's adapter processes (and a --workers primary's adapters) pack the ticks of one event-loop turn into @batch bus messages (fewer ZeroMQ messages); false sends OpenAlgo's one message per tick. Adapters inside a single gateway process hand ticks over directly and do not use the bus.",
    parse: boolean(),
  }),
  option({
    key: 'brokers.kiteUrl',
    env: 'TICKCAST_KITE_URL',
    default: 'wss://ws.kite.trade',
    description: "Zerodha Kite ticker WebSocket URL (the real one unless you are testing against a local fake).",
    parse: websocketUrl(),
  }),
  option({
    key: 'brokers.angelUrl',
    env: 'TICKCAST_ANGEL_URL',
    default: 'wss://smartapisocket.angelone.in/smart-stream',
    description: 'Angel One SmartAPI WebSocket 2.0 URL (the real one unless you are testing against a local fake).',
    parse: websocketUrl(),
  }),
  option({
    key: 'brokers.dhanUrl',
    env: 'TICKCAST_DHAN_URL',
    default: 'wss://api-feed.dhan.co',
    description: "Dhan's live market feed WebSocket URL (the real one unless you are testing against a local fake).",
    parse: websocketUrl(),
  }),
  option({
    key: 'brokers.dhanDepthUrl',
    env: 'TICKCAST_DHAN_DEPTH_URL',
    default: 'wss://depth-api-feed.dhan.co/twentydepth',
    description: "Dhan's 20-level depth WebSocket URL, opened for `SYMBOL:20` Depth subscriptions (the real one unless you are testing against a local fake).",
    parse: websocketUrl(),
  }),
  option({
    key: 'brokers.upstoxUrl',
    env: 'TICKCAST_UPSTOX_URL',
    default: 'wss://api.upstox.com/v3/feed/market-data-feed',
    description: "Upstox's market data feed v3 WebSocket URL (the real one unless you are testing against a local fake).",
    parse: websocketUrl(),
  }),
  option({
    key: 'brokers.shoonyaUrl',
    env: 'TICKCAST_SHOONYA_URL',
    default: 'wss://api.shoonya.com/NorenWSAPI/',
    description: "Shoonya's (Noren) market data WebSocket URL (the real one unless you are testing against a local fake).",
    parse: websocketUrl(),
  }),
  option({
    key: 'brokers.flattradeUrl',
    env: 'TICKCAST_FLATTRADE_URL',
    default: 'wss://piconnect.flattrade.in/PiConnectWSAPI/',
    description: "Flattrade's (Noren) market data WebSocket URL (the real one unless you are testing against a local fake).",
    parse: websocketUrl(),
  }),
  option({
    key: 'bus.host',
    env: 'ZMQ_HOST',
    flag: '--zmq-host <host>',
    default: '127.0.0.1',
    description: 'Address of the internal ZeroMQ bus on which adapters publish ticks.',
    parse: host(),
  }),
  option({
    key: 'bus.port',
    env: 'ZMQ_PORT',
    flag: '--zmq-port <port>',
    default: undefined,
    description:
      'Port of the ZeroMQ bus the gateway binds and publishers connect to (tcp transport). A number pins it; 0 or auto picks a free one. Unset: 5555 for the instance named default, a free port for any other.',
    parse: port(),
  }),
  option({
    key: 'bus.transport',
    env: 'TICKCAST_BUS_TRANSPORT',
    flag: '--transport <transport>',
    default: 'tcp',
    description:
      'Transport of the bus and control channel: tcp (ZMQ_HOST:ZMQ_PORT, what OpenAlgo publishers use) or ipc (Linux abstract sockets ipc://@tickcast-<instance>-bus and -control, no ports at all; a second bind fails instead of stealing the name).',
    parse: oneOf(['tcp', 'ipc'] as const),
  }),
  option({
    key: 'control.port',
    env: 'TICKCAST_CONTROL_PORT',
    flag: '--control-port <port>',
    default: 'auto',
    description:
      'Port of the control channel (ZeroMQ ROUTER on ZMQ_HOST) through which out-of-process adapters receive subscribe commands; a number pins it, 0 or auto picks a free one (found through the registry).',
    parse: port(),
  }),
  option({
    key: 'bus.nats',
    env: 'TICKCAST_BUS',
    flag: '--bus <urls>',
    default: undefined,
    description:
      'The bus between adapters and gateways. Unset: ZeroMQ (ZMQ_HOST, ZMQ_PORT; one gateway per instance). nats://HOST:PORT (several, comma-separated, for a cluster): NATS, so an instance can run several gateway nodes on several hosts, fed by adapter processes (tickcast adapter --bus nats://…); see docs/scale-out.md. tls://HOST:PORT requires TLS; nats://USER:PASSWORD@HOST:PORT or nats://TOKEN@HOST:PORT carries credentials (the same in every URL), shown nowhere.',
    // The URLs may carry a password or token: never echoed.
    secret: true,
    parse: natsUrls(),
  }),
  option({
    key: 'bus.natsCredsFile',
    env: 'TICKCAST_NATS_CREDS',
    flag: '--nats-creds <file>',
    default: undefined,
    description:
      "NATS credentials file (a user JWT and its nkey seed, as nsc writes it) this process connects to the NATS bus with, for servers using decentralized (operator/account) auth. One kind of NATS credentials at a time: this, TICKCAST_NATS_NKEY_SEED, TICKCAST_NATS_TOKEN_FILE or a USER:PASSWORD in TICKCAST_BUS. Keep it mode 0600.",
    parse: path(),
  }),
  option({
    key: 'bus.natsNkeySeedFile',
    env: 'TICKCAST_NATS_NKEY_SEED',
    flag: '--nats-nkey-seed <file>',
    default: undefined,
    description:
      "File holding the NATS user nkey seed (one line starting with SU, as nk -gen user writes it) this process connects with, for servers whose authorization lists users by nkey; the seed never leaves the host (the server gets a signature). Keep it mode 0600.",
    parse: path(),
  }),
  option({
    key: 'bus.natsTokenFile',
    env: 'TICKCAST_NATS_TOKEN_FILE',
    flag: '--nats-token-file <file>',
    default: undefined,
    description:
      "File holding the NATS server's authorization token (authorization { token: … }), for servers that use one shared token; per-role users (TICKCAST_NATS_NKEY_SEED, a USER:PASSWORD in TICKCAST_BUS) allow permissions per role, a token does not.",
    parse: path(),
  }),
  option({
    key: 'bus.natsCaFile',
    env: 'TICKCAST_NATS_CA',
    flag: '--nats-ca <file>',
    default: undefined,
    description:
      "CA certificate file (PEM) the NATS servers' TLS certificates must chain to; setting it requires TLS on every connection to the bus, as tls:// URLs do. Unset: the system's CAs (and NODE_EXTRA_CA_CERTS).",
    parse: path(),
  }),
  option({
    key: 'bus.natsCertFile',
    env: 'TICKCAST_NATS_CERT',
    flag: '--nats-cert <file>',
    default: undefined,
    description:
      'Client certificate file (PEM) presented to NATS servers that verify clients (tls { verify: true }); goes with TICKCAST_NATS_KEY.',
    parse: path(),
  }),
  option({
    key: 'bus.natsKeyFile',
    env: 'TICKCAST_NATS_KEY',
    flag: '--nats-key <file>',
    default: undefined,
    description: "Private key file (PEM) of TICKCAST_NATS_CERT. Keep it mode 0600.",
    parse: path(),
  }),
  option({
    key: 'node',
    env: 'TICKCAST_NODE',
    flag: '--node <name>',
    default: undefined,
    description:
      "Name of this gateway node within its instance on a NATS bus (letters, digits, '.', _ and -, up to 64 characters), unique per instance; tickcast instances lists nodes by it. Unset: <host name>-<pid>.",
    parse: matching(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, "1 to 64 letters, digits, '.', _ or -, starting with a letter or digit"),
  }),
  option({
    key: 'history.record',
    env: 'TICKCAST_RECORD',
    flag: '--record <what>',
    default: 'off',
    description:
      "Which ticks are recorded into the history store (docs/history.md): off, all, or a comma-separated list of feeds (`simulator`, `zerodha.alice`, `zerodha.*`; `shared` for OpenAlgo's bare topics), streams in every feed (`NSE:RELIANCE`) and a feed's streams (`zerodha.alice/NSE:RELIANCE`).",
    parse: recordSelection(),
  }),
  option({
    key: 'history.recordFrames',
    env: 'TICKCAST_RECORD_FRAMES',
    flag: '--record-frames <what>',
    default: 'off',
    description:
      "Records every WebSocket message the native broker sockets receive and send, as on the wire, into `frames-YYYY-MM-DD.db` beside the tick history (docs/history.md, \"Raw broker frames\"; the SQLite history directory even when TICKCAST_HISTORY_URL is set): off, on, or a comma-separated list of brokers (`zerodha,dhan`). Read back with `tickcast frames`.",
    parse: frameRecording(),
  }),
  option({
    key: 'history.dir',
    env: 'TICKCAST_HISTORY_DIR',
    default: undefined,
    description: "Directory of the history store, one SQLite file per UTC day (`ticks-YYYY-MM-DD.db`). Unset: `history` in the instance's data directory.",
    parse: path(),
  }),
  option({
    key: 'history.url',
    env: 'TICKCAST_HISTORY_URL',
    flag: '--history-url <url>',
    default: undefined,
    // It may carry a password: never echoed.
    secret: true,
    description:
      "A PostgreSQL database to keep the history in instead of the embedded SQLite files (docs/history.md, \"A fleet's store\"): postgres://USER:PASSWORD@HOST:PORT/DATABASE. Its tables are made in the schema tickcast_history, one partition per UTC day (TimescaleDB's hypertable when the extension is there). Messages and logs show it without the password.",
    parse: postgresUrl(),
  }),
  option({
    key: 'history.maxAgeDays',
    env: 'TICKCAST_HISTORY_MAX_AGE_DAYS',
    default: '30',
    description: 'Days of history kept: a day file is deleted once its last instant is older than this (0 keeps every day).',
    parse: integer(0, 36_500),
  }),
  option({
    key: 'history.maxBytes',
    env: 'TICKCAST_HISTORY_MAX_BYTES',
    default: '0',
    description: "Most bytes the history store may take on disk; past it the oldest days are deleted (today's never). 0: no limit but the disk's own.",
    parse: integer(0),
  }),
  option({
    key: 'history.queueTicks',
    env: 'TICKCAST_RECORD_QUEUE',
    default: '100000',
    description: 'Ticks that may wait for the history writer; past it new ticks are not recorded (counted in tickcast_history_ticks_shed_total and logged), so a slow disk never slows delivery.',
    parse: integer(1000),
  }),
  option({
    key: 'history.ticksMaxRangeHours',
    env: 'TICKCAST_TICKS_MAX_RANGE_HOURS',
    default: '24',
    description: 'Longest time range one `GET /api/ticks` request may ask for, in hours; a longer one is refused with RANGE_TOO_LARGE (ask for it in parts).',
    parse: integer(1, 24 * 366),
  }),
  option({
    key: 'history.ticksMaxRows',
    env: 'TICKCAST_TICKS_MAX_ROWS',
    default: '1000000',
    description: "Most ticks one `GET /api/ticks` answer holds, and its `limit` when none is given; an answer cut by it says so (docs/history.md, \"Ticks over HTTP\").",
    parse: integer(1, 100_000_000),
  }),
  option({
    key: 'registry.url',
    env: 'TICKCAST_REGISTRY',
    flag: '--registry <url>',
    default: undefined,
    // A Redis URL may carry a password: never echoed.
    secret: true,
    description:
      "Where instances and adapters register: sqlite:PATH (or a path) for one host, redis://[USER:PASSWORD@]HOST:PORT/DB for hosts that share state (rediss:// for TLS; a server certificate from a private CA needs NODE_EXTRA_CA_CERTS=ca.pem in the process's environment). Messages and logs show it without the password. Unset: a per-user SQLite file, $XDG_STATE_HOME/tickcast/registry.db (~/.local/state/tickcast/registry.db).",
    parse: registryUrl(),
  }),
  option({
    key: 'registry.ttlMs',
    env: 'TICKCAST_REGISTRY_TTL_SECONDS',
    default: '15',
    description:
      'A registry entry whose heartbeat is older than this is stale and reaped (entries of dead processes on this host are reaped at once); heartbeats go every third of it.',
    parse: seconds(false),
  }),
  option({
    key: 'workers',
    env: 'TICKCAST_WORKERS',
    flag: '--workers <n>',
    default: '1',
    description:
      'Gateway processes sharing the WebSocket port. 1 runs everything in one process; N > 1 runs a primary (bus, adapters, registry) and N workers that serve clients, one per core being the usual choice.',
    parse: integer(1, 64),
  }),
  option({
    key: 'feed',
    env: 'TICKCAST_FEED',
    flag: '--feed <feed>',
    default: 'simulator',
    description:
      'Market data started with the gateway: simulator (a simulated market) or none (only separately started adapters publish).',
    parse: oneOf(FEEDS),
  }),
  option({
    key: 'simulator.rate',
    env: 'TICKCAST_SIM_RATE',
    flag: '--sim-rate <ticks>',
    default: '2',
    description: 'Ticks per second the simulator sends for each subscribed symbol (fractions allowed, at most 100000).',
    parse: positiveNumber(100_000),
  }),
  option({
    key: 'simulator.symbols',
    env: 'TICKCAST_SIM_SYMBOLS',
    flag: '--sim-symbols <list>',
    default: '',
    description:
      'Comma-separated EXCHANGE:SYMBOL list the simulator quotes (e.g. NSE:RELIANCE,NSE:INFY); empty means its built-in list.',
    parse: symbolList(),
  }),
  option({
    key: 'simulator.seed',
    env: 'TICKCAST_SIM_SEED',
    default: undefined,
    description: 'Integer seed that makes simulated prices repeatable; unset means a random seed.',
    parse: anyInteger(),
  }),
  option({
    key: 'simulator.brokers',
    env: 'TICKCAST_SIM_BROKERS',
    flag: '--sim-brokers <list>',
    default: 'simulator',
    description:
      'Comma-separated simulated broker names whose users the simulator serves; real brokers (zerodha, fyers, …) are refused, so simulated prices never reach their users.',
    parse: simulatedBrokers(),
  }),
  option({
    key: 'sharedFeed',
    env: 'TICKCAST_BUS_BROKERS',
    flag: '--bus-brokers <list>',
    default: 'auto',
    description:
      "Brokers whose users take ticks from external publishers on OpenAlgo's bare bus topics (NSE_RELIANCE_LTP), when no adapter serves their broker: a comma-separated list, * for every broker, or none. auto means * with --feed none (OpenAlgo's proxy: every tick on the bus is the feed) and none otherwise; a user whose broker has no feed gets an error per symbol and a feed_status saying what is missing.",
    parse: sharedFeedBrokers(),
  }),
  option({
    key: 'auth.pepper',
    env: 'API_KEY_PEPPER',
    default: undefined,
    secret: true,
    description:
      "Secret added to API keys before hashing, at least 32 characters; set it to OpenAlgo's value to accept keys from an OpenAlgo database.",
    parse: secret(32),
  }),
  option({
    key: 'auth.fernetSalt',
    env: 'FERNET_SALT',
    default: undefined,
    secret: true,
    description:
      "Hex salt of the key that encrypts stored API keys and broker tokens, as OpenAlgo's FERNET_SALT; unset means OpenAlgo's legacy fixed salt.",
    parse: hex(),
  }),
  option({
    key: 'database',
    env: 'DATABASE_URL',
    default: undefined,
    secret: true,
    description:
      "OpenAlgo's database, to serve OpenAlgo's users in place (OpenAlgo's variable and syntax): API keys, broker sessions and the symbol master are read from its api_keys, auth and symtoken tables, never written. sqlite:///relative.db (from the working directory), sqlite:////absolute/path.db or postgresql://user:password@host:port/database (postgresql+psycopg2:// too; MySQL is not supported); needs OpenAlgo's API_KEY_PEPPER (and FERNET_SALT, if it has one). Unset: the instance's own store. See docs/openalgo.md.",
    parse: databaseUrl(),
  }),
  option({
    key: 'auth.brokerApiKey',
    env: 'BROKER_API_KEY',
    default: undefined,
    secret: true,
    description:
      "OpenAlgo's broker app key (OpenAlgo's variable), read with DATABASE_URL as OpenAlgo's streaming adapters read it, for what a user's auth row lacks: `client:::key` gives Dhan's client id (Shoonya's and Flattrade's user id) and the app key, a plain value is the app key (Angel's SmartAPI key). Unused with the instance's own store, where `tickcast credentials set` stores them per user.",
    parse: secret(1),
  }),
  option({
    key: 'auth.cacheTtlMs',
    env: 'TICKCAST_AUTH_CACHE_TTL_SECONDS',
    default: '36000',
    description: 'Whole seconds a verified API key stays cached before it is checked against the key store again (0 disables the cache).',
    parse: wholeSecondsAsMs(),
  }),
  option({
    key: 'auth.devKey',
    env: 'TICKCAST_DEV_KEY',
    default: 'true',
    description: 'Create a development API key on first start and print it (true/false, 1/0 or yes/no).',
    parse: boolean(),
  }),
  option({
    key: 'validBrokers',
    env: 'VALID_BROKERS',
    default: undefined,
    description: 'Comma-separated broker names that get_supported_brokers reports, as in OpenAlgo.',
    parse: list(),
  }),
  option({
    key: 'logLevel',
    env: 'TICKCAST_LOG_LEVEL',
    flag: '--log-level <level>',
    default: 'info',
    description: 'Log verbosity: fatal, error, warn, info, debug, trace or silent.',
    parse: oneOf(LOG_LEVELS),
  }),
] as const;

// ---------------------------------------------------------------------------------------------
// The Config type, derived from the table.
// ---------------------------------------------------------------------------------------------

type AnyOption = (typeof OPTIONS)[number];

/** Every option's dotted key (`ws.port`). */
export type ConfigKey = AnyOption['key'];

type ValueOf<O> = O extends Option<string, infer T> ? T : never;

/** Dotted key → value type. */
export type FlatConfig = { readonly [O in AnyOption as O['key']]: ValueOf<O> };

type Head<K extends string> = K extends `${infer H}.${string}` ? H : K;

/** Turns `{ 'ws.port': number }` into `{ ws: { port: number } }`. */
type Nest<F> = {
  readonly [K in keyof F & string as Head<K>]: K extends `${infer H}.${string}`
    ? Nest<{ [P in keyof F & string as P extends `${H}.${infer R}` ? R : never]: F[P] }>
    : F[K];
};

/**
 * The validated configuration. Durations are in milliseconds (`…Ms`), sizes in bytes, paths
 * absolute. See OPTIONS for what each value means.
 */
export type Config = Nest<FlatConfig>;

// ---------------------------------------------------------------------------------------------
// Rules across options (checked once every option alone is valid).
// ---------------------------------------------------------------------------------------------

export interface Constraint {
  /** The option reported as wrong when the rule fails. */
  readonly key: ConfigKey;
  /** The other options the rule reads (so it is skipped when one of them is invalid). */
  readonly against: readonly ConfigKey[];
  /** undefined when the values agree, else what `key` must be (completes "expected …"). */
  readonly check: (config: FlatConfig) => string | undefined;
}

export const CONSTRAINTS: readonly Constraint[] = [
  {
    key: 'ws.tlsCert',
    against: ['ws.tlsKey'],
    check: (c) => (c['ws.tlsKey'] !== undefined ? undefined : 'to come with TICKCAST_TLS_KEY (the private key file), which is not set'),
  },
  {
    key: 'ws.tlsKey',
    against: ['ws.tlsCert'],
    check: (c) => (c['ws.tlsCert'] !== undefined ? undefined : 'to come with TICKCAST_TLS_CERT (the certificate file), which is not set'),
  },
  {
    key: 'feed',
    against: ['bus.nats'],
    check: (c) =>
      c['bus.nats'] === undefined || c.feed === 'none'
        ? undefined
        : 'none when TICKCAST_BUS is a NATS URL (gateway nodes take their ticks from adapter processes: tickcast adapter --bus nats://…)',
  },
  {
    key: 'workers',
    against: ['bus.nats'],
    check: (c) => (c['bus.nats'] === undefined || c.workers === 1 ? undefined : '1 when TICKCAST_BUS is a NATS URL (run more gateway nodes instead)'),
  },
  {
    key: 'database',
    against: ['auth.pepper'],
    check: (c) =>
      c.database === undefined || c['auth.pepper'] !== undefined
        ? undefined
        : "to come with API_KEY_PEPPER set to OpenAlgo's pepper (from OpenAlgo's .env), which is not set: its keys and tokens cannot be read without it",
  },
  {
    key: 'ws.maxFrameBytes',
    against: ['ws.maxMessageBytes'],
    check: (c) =>
      c['ws.maxFrameBytes'] >= c['ws.maxMessageBytes']
        ? undefined
        : `an integer no smaller than TICKCAST_MAX_MESSAGE_BYTES (${c['ws.maxMessageBytes']})`,
  },
];

// ---------------------------------------------------------------------------------------------
// Flag names.
// ---------------------------------------------------------------------------------------------

/** `--ws-port <port>` → `--ws-port`. */
export function flagName(flag: string): string {
  return flag.split(/[\s=]/)[0] ?? flag;
}

/** Commander's attribute for a flag: `--ws-port <port>` → `wsPort`. */
export function flagAttribute(flag: string): string {
  return flagName(flag)
    .replace(/^--/, '')
    .replace(/-([a-z0-9])/g, (_, c: string) => c.toUpperCase());
}
