/**
 * `tickcast watch NSE:RELIANCE NSE_INDEX:NIFTY …`: live prices in the terminal, through the client
 * SDK. On a terminal the table is redrawn in place (ANSI cursor movement), with each stream's
 * age and a marker on any price that cannot be trusted (stale, feed not live, no connection);
 * otherwise each tick is one plain line on stdout and connection and feed events go to stderr, so
 * the output pipes cleanly.
 *
 * The gateway is `--url`, or the instance's, found in the registry; the API key is `--api-key`,
 * or read from the environment variable named by `--api-key-env` (keeping it out of shell
 * history, as the credentials commands do).
 */
import type { Command } from 'commander';
import WebSocket from 'ws';
import { systemClock } from '../clock.js';
import { TickcastClient } from '../client/client.js';
import { TickcastClientError } from '../client/client-error.js';
import { DEFAULT_STALE_AFTER_MS, FeedStates, describeFeed, streamFreshness } from '../client/freshness.js';
import { parseInstruments, parseMode, streamKey } from '../client/instruments.js';
import type { DepthTick, Instrument, MarketData, Mode, WebSocketConstructor } from '../client/types.js';
import { openConfiguredRegistry } from '../wiring.js';
import { EXIT_FAILURE, EXIT_OK, type Io, UsageError, addConfigFlags, configFrom } from './common.js';

const REGISTRY_FLAGS = ['envFile', 'instance', 'registry.url'];
const MODE_LABEL: Record<Mode, string> = { 1: 'LTP', 2: 'Quote', 3: 'Depth' };
/** Redraws at most this often on a terminal. */
const REDRAW_MS = 100;
/** Redraws at least this often on a terminal, so ages grow and staleness shows without ticks. */
const AGE_REFRESH_MS = 1000;

export interface Terminal {
  isTTY: boolean;
  /** Width in characters; lines are cut to it so they never wrap (wrapping breaks redrawing). */
  columns: number | undefined;
}

// --- formatting (pure) --------------------------------------------------------------------------

function num(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isFinite(value) ? value : undefined;
}

/** Prices with two decimals unless they need more (currency pairs quote four). */
export function formatPrice(value: unknown): string {
  const n = num(value);
  if (n === undefined) return '-';
  return Number.isInteger(Math.round(n * 100 * 1e6) / 1e6) ? n.toFixed(2) : String(n);
}

function signed(value: number | undefined, suffix = ''): string {
  if (value === undefined) return '-';
  return `${value > 0 ? '+' : ''}${formatPrice(value)}${suffix}`;
}

function clock(timestamp: unknown): string {
  const ms = num(timestamp);
  if (ms === undefined) return '-';
  const d = new Date(ms);
  const two = (n: number): string => String(n).padStart(2, '0');
  return `${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())}.${String(d.getMilliseconds()).padStart(3, '0')}`;
}

function bestLevel(side: unknown): { price: number; quantity: number } | undefined {
  if (!Array.isArray(side) || side.length === 0) return undefined;
  const level = side[0] as { price?: unknown; quantity?: unknown };
  const price = num(level.price);
  const quantity = num(level.quantity);
  return price === undefined || quantity === undefined ? undefined : { price, quantity };
}

/** One tick as a plain `key=value` line (non-terminal output). Fields the tick lacks are left out. */
export function plainLine(message: MarketData<DepthTick>, mode: Mode): string {
  const d = message.data;
  const parts = [`${message.exchange}:${message.symbol}`, `ltp=${formatPrice(d.ltp)}`];
  if (mode >= 2) {
    if (num(d.change) !== undefined) parts.push(`chg=${signed(num(d.change))}`);
    if (num(d.change_percent) !== undefined) parts.push(`chg%=${signed(num(d.change_percent))}`);
    for (const field of ['open', 'high', 'low'] as const) if (num(d[field]) !== undefined) parts.push(`${field}=${formatPrice(d[field])}`);
    if (num(d.volume) !== undefined) parts.push(`vol=${d.volume}`);
  }
  if (mode === 3) {
    const bid = bestLevel(d.depth?.buy);
    const ask = bestLevel(d.depth?.sell);
    if (bid) parts.push(`bid=${formatPrice(bid.price)}x${bid.quantity}`);
    if (ask) parts.push(`ask=${formatPrice(ask.price)}x${ask.quantity}`);
  }
  const ts = num(d.timestamp);
  if (ts !== undefined) parts.push(`time=${new Date(ts).toISOString()}`);
  if (message.seq !== undefined) parts.push(`seq=${message.seq}`);
  return parts.join(' ');
}

const COLUMNS: Record<Mode, Array<[string, number]>> = {
  1: [['LTP', 12], ['TIME', 13]],
  2: [['LTP', 12], ['CHG', 10], ['CHG%', 8], ['OPEN', 11], ['HIGH', 11], ['LOW', 11], ['VOLUME', 12], ['TIME', 13]],
  3: [['LTP', 12], ['CHG%', 8], ['BID', 11], ['BID QTY', 9], ['ASK', 11], ['ASK QTY', 9], ['TIME', 13]],
};

function cells(message: MarketData<DepthTick> | undefined, mode: Mode): string[] {
  if (!message) return COLUMNS[mode].map(() => '…');
  const d = message.data;
  switch (mode) {
    case 1:
      return [formatPrice(d.ltp), clock(d.timestamp)];
    case 2:
      return [formatPrice(d.ltp), signed(num(d.change)), signed(num(d.change_percent), '%'), formatPrice(d.open), formatPrice(d.high), formatPrice(d.low), num(d.volume) === undefined ? '-' : String(d.volume), clock(d.timestamp)];
    case 3: {
      const bid = bestLevel(d.depth?.buy);
      const ask = bestLevel(d.depth?.sell);
      return [formatPrice(d.ltp), signed(num(d.change_percent), '%'), bid ? formatPrice(bid.price) : '-', bid ? String(bid.quantity) : '-', ask ? formatPrice(ask.price) : '-', ask ? String(ask.quantity) : '-', clock(d.timestamp)];
    }
  }
}

/** A stream's last tick and when it was received (local clock, ms). */
export interface Seen {
  message: MarketData<DepthTick>;
  at: number;
}

/** Everything one drawing of the table shows; `now` is passed in so drawing stays pure. */
export interface Board {
  instruments: readonly Instrument[];
  latest: ReadonlyMap<string, Seen>;
  mode: Mode;
  now: number;
  staleAfterMs: number;
  feeds: FeedStates;
  /** Whether the connection to the gateway is up; if not, every row is marked. */
  connected: boolean;
  /** The rest of the status line: connection, broker and mode, URL, missed ticks. */
  status: string;
}

const AGE_WIDTH = 7;

/**
 * The terminal table: a header, one row per instrument (in the order given) and a status line
 * that starts with the feeds' states. Each row ends with the age of its last tick and, when its
 * price cannot be trusted, a marker (`stale`, `feed down`, `no connection`).
 */
export function boardLines(board: Board): string[] {
  const { instruments, latest, mode } = board;
  const width = Math.max(10, ...instruments.map((i) => streamKey(i).length)) + 2;
  const header = 'INSTRUMENT'.padEnd(width) + COLUMNS[mode].map(([name, w]) => name.padStart(w)).join('') + 'AGE'.padStart(AGE_WIDTH);
  const feedDown = board.feeds.notLive();
  const rows = instruments.map((instrument) => {
    const key = streamKey(instrument);
    const seen = latest.get(key);
    const values = cells(seen?.message, mode);
    const fresh = streamFreshness({ lastTickAt: seen?.at, now: board.now, staleAfterMs: board.staleAfterMs, feedDown, connected: board.connected });
    const row = key.padEnd(width) + values.map((value, i) => value.padStart(COLUMNS[mode][i]![1])).join('') + (fresh.age ?? '…').padStart(AGE_WIDTH);
    return fresh.marker ? `${row}  ${fresh.marker}` : row;
  });
  const feeds = board.feeds.all().map((state) => `feed ${describeFeed(state)}`);
  return [header, ...rows, [...feeds, board.status].join(' · ')];
}

// --- the command --------------------------------------------------------------------------------

function positiveSeconds(name: string, value: unknown): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (String(value).trim() === '' || !Number.isFinite(n) || n <= 0) throw new UsageError(`${name} "${String(value)}" is not valid: expected a number of seconds greater than 0`);
  return n;
}

function positiveInteger(name: string, value: unknown): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) throw new UsageError(`${name} "${String(value)}" is not valid: expected a whole number greater than 0`);
  return n;
}

function usage(error: unknown): never {
  if (error instanceof TickcastClientError) throw new UsageError(error.message);
  throw error;
}

/** The gateway's URL: the flag, or the instance's entry in the registry. */
async function gatewayUrl(flags: Record<string, unknown>, env: NodeJS.ProcessEnv): Promise<string> {
  if (flags.url !== undefined) {
    const url = String(flags.url);
    if (!/^wss?:\/\/[^/]/i.test(url)) throw new UsageError(`--url "${url}" is not valid: expected ws://HOST:PORT or wss://HOST:PORT`);
    return url;
  }
  const config = configFrom(flags, env);
  const registry = await openConfiguredRegistry(config, systemClock);
  try {
    const [gateway] = await registry.find(config.instance, 'gateway');
    if (!gateway?.endpoints.ws) {
      throw new TickcastClientError('GATEWAY_NOT_FOUND', `no gateway of instance "${config.instance}" is running (registry ${registry.url}); start one, or pass --url`);
    }
    return gateway.endpoints.ws;
  } finally {
    await registry.close();
  }
}

function apiKey(flags: Record<string, unknown>, env: NodeJS.ProcessEnv): string {
  if (flags.apiKey !== undefined && flags.apiKeyEnv !== undefined) throw new UsageError('give --api-key or --api-key-env, not both');
  if (flags.apiKeyEnv !== undefined) {
    const value = env[String(flags.apiKeyEnv)];
    if (value === undefined || value === '') throw new UsageError(`--api-key-env: environment variable ${String(flags.apiKeyEnv)} is not set`);
    return value;
  }
  if (flags.apiKey === undefined || String(flags.apiKey) === '') throw new UsageError('an API key is required: give --api-key KEY or --api-key-env NAME');
  return String(flags.apiKey);
}

export interface WatchOptions {
  env?: NodeJS.ProcessEnv;
  terminal?: Terminal;
  /** Resolves when the command should stop (default: SIGINT or SIGTERM). */
  stopSignal?: () => Promise<void>;
  /** Epoch ms (default Date.now), for ages. */
  now?: () => number;
}

/**
 * Resolves when nobody reads stdout any more (`tickcast watch … | head -n 5`: head exits, the next
 * write fails with EPIPE): watch then stops like `yes | head` does, instead of dying on the
 * unhandled stream error or printing to no one for ever.
 */
function untilOutputClosed(): Promise<void> {
  return new Promise((resolve) => {
    process.stdout.on('error', () => resolve());
  });
}

function untilSignal(): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      process.off('SIGINT', done);
      process.off('SIGTERM', done);
      resolve();
    };
    process.once('SIGINT', done);
    process.once('SIGTERM', done);
  });
}

export function registerWatchCommand(program: Command, io: Io, setExit: (code: number) => void, options: WatchOptions = {}): void {
  addConfigFlags(
    program
      .command('watch')
      .description('Show live prices of instruments (EXCHANGE:SYMBOL …), updating in place on a terminal')
      .argument('<instruments...>', 'instruments as EXCHANGE:SYMBOL, e.g. NSE:RELIANCE NSE_INDEX:NIFTY')
      .option('--mode <mode>', 'ltp, quote or depth', 'ltp')
      .option('--url <url>', "the gateway's WebSocket URL (default: the instance's, from the registry)")
      .option('--api-key <key>', 'an API key (`tickcast keys create`)')
      .option('--api-key-env <name>', 'read the API key from this environment variable instead')
      .option('--count <n>', 'exit after this many ticks in total')
      .option('--stale-after <seconds>', `on a terminal, mark a price stale when its stream has not ticked for this long (default ${DEFAULT_STALE_AFTER_MS / 1000})`)
      .action(async (args: string[], flags: Record<string, unknown>) => {
        const env = options.env ?? process.env;
        const terminal = options.terminal ?? { isTTY: process.stdout.isTTY === true, columns: process.stdout.columns };
        let instruments: Instrument[];
        let mode: Mode;
        try {
          instruments = parseInstruments(args);
        } catch (error) {
          usage(error);
        }
        try {
          mode = parseMode(String(flags.mode));
        } catch {
          throw new UsageError(`--mode "${String(flags.mode)}" is not valid: expected ltp, quote or depth`);
        }
        const count = positiveInteger('--count', flags.count);
        const staleAfterMs = (positiveSeconds('--stale-after', flags.staleAfter) ?? DEFAULT_STALE_AFTER_MS / 1000) * 1000;
        const key = apiKey(flags, env);
        let url: string;
        try {
          url = await gatewayUrl(flags, env);
        } catch (error) {
          if (!(error instanceof TickcastClientError)) throw error;
          io.err(`tickcast watch: ${error.message}\n`);
          setExit(EXIT_FAILURE);
          return;
        }
        setExit(await watch({ io, terminal, url, key, instruments, mode, count, staleAfterMs, now: options.now ?? Date.now, stop: options.stopSignal ?? (() => Promise.race([untilSignal(), untilOutputClosed()])) }));
      }),
    REGISTRY_FLAGS,
  );
}

interface WatchRun {
  io: Io;
  terminal: Terminal;
  url: string;
  key: string;
  instruments: Instrument[];
  mode: Mode;
  count: number | undefined;
  staleAfterMs: number;
  now: () => number;
  stop: () => Promise<void>;
}

async function watch(run: WatchRun): Promise<number> {
  const { io, terminal, mode } = run;
  const client = new TickcastClient({ url: run.url, apiKey: run.key, WebSocket: WebSocket as unknown as WebSocketConstructor });
  const tty = terminal.isTTY;
  const latest = new Map<string, Seen>();
  const feeds = new FeedStates();
  let status = 'connecting';
  let connected = true;
  let gaps = 0;
  let ticks = 0;
  let fatal = false;
  let closing = false;
  let finish: () => void = () => {};
  const finished = new Promise<void>((resolve) => (finish = resolve));
  let scheduleDraw = (): void => {};

  const note = (text: string): void => {
    if (closing) return;
    status = text;
    if (!tty) io.err(`tickcast watch: ${text}\n`);
    scheduleDraw();
  };
  client.on('disconnected', (e) => {
    connected = false;
    note(`disconnected (code ${e.code}${e.reason ? `, ${e.reason}` : ''})${e.willReconnect ? '' : '; not reconnecting'}`);
  });
  client.on('reconnecting', (e) => {
    connected = false;
    note(`reconnecting (attempt ${e.attempt}, in ${e.delayMs} ms)`);
  });
  client.on('connected', (e) => {
    connected = true;
    if (e.reconnected) note('reconnected');
  });
  // Feed states are kept across reconnections: a gateway that sends the current state after
  // authentication corrects them at once, and an older one would otherwise show a down feed as live.
  client.on('feed_status', (e) => {
    feeds.update(e);
    if (closing) return;
    if (!tty) io.err(`tickcast watch: feed ${e.feed}: ${e.status}${e.message ? ` (${e.message})` : ''}\n`);
    scheduleDraw();
  });
  client.on('gap', (e) => {
    gaps += e.missed;
    if (tty) return;
    // After a reconnection to another gateway process (or a stream's numbering it no longer has), how many were missed cannot be known.
    const unknown = e.reason === 'epoch' || e.reason === 'ahead';
    const what = unknown ? 'ticks missed while reconnecting, how many unknown' : `${e.missed} tick(s) missed`;
    io.err(`tickcast watch: ${e.stream}: ${what} (${e.message ?? `seq ${e.expected} expected, ${e.received} received`})\n`);
  });
  client.on('error', (e) => {
    if (e.code === 'SUBSCRIBE_FAILED') return; // reported from the subscribe results below
    note(`${e.message} [${e.code}]`);
    if (client.state === 'idle') {
      fatal = true; // reconnecting gave up (e.g. the key was revoked)
      finish();
    }
  });

  try {
    await client.connect();
  } catch (error) {
    const e = error as TickcastClientError;
    io.err(`tickcast watch: cannot watch ${run.url}: ${e.message}${e.code ? ` [${e.code}]` : ''}\n`);
    return EXIT_FAILURE;
  }

  const fit = (line: string): string => (terminal.columns && line.length > terminal.columns ? line.slice(0, terminal.columns) : line);
  let drawn = 0;
  let started = false;
  let redrawTimer: ReturnType<typeof setTimeout> | undefined;
  const draw = (): void => {
    if (redrawTimer) clearTimeout(redrawTimer);
    redrawTimer = undefined;
    const streams = `${client.session?.broker ?? ''} ${MODE_LABEL[mode]}`.trim();
    const lines = boardLines({
      instruments: run.instruments,
      latest,
      mode,
      now: run.now(),
      staleAfterMs: run.staleAfterMs,
      feeds,
      connected,
      status: `${status} · ${streams} · ${run.url}${gaps ? ` · ${gaps} missed` : ''}`,
    });
    // Up to the first line of the previous drawing, then each line cleared and rewritten.
    let out = drawn > 0 ? `\x1b[${drawn}A` : '';
    for (const line of lines) out += `\r\x1b[2K${fit(line)}\n`;
    io.out(out);
    drawn = lines.length;
  };
  scheduleDraw = (): void => {
    if (tty && started && !closing && !redrawTimer) redrawTimer = setTimeout(draw, REDRAW_MS);
  };

  const handle = client.subscribe(run.instruments, mode, (message) => {
    // Ticks can still arrive between the last counted one and the socket closing.
    if (run.count !== undefined && ticks >= run.count) return;
    const tick = message as MarketData<DepthTick>;
    latest.set(`${tick.exchange}:${tick.symbol}`, { message: tick, at: run.now() });
    ticks++;
    if (tty) scheduleDraw();
    else io.out(plainLine(tick, mode) + '\n');
    if (run.count !== undefined && ticks >= run.count) finish();
  });
  const results = await handle.ready;
  const failed = results.filter((r) => !r.ok);
  for (const result of failed) io.err(`tickcast watch: ${streamKey(result.instrument)}: ${'message' in result ? result.message : 'failed'}\n`);
  if (failed.length === results.length) {
    closing = true;
    await client.close();
    return EXIT_FAILURE;
  }
  run.instruments = handle.instruments.slice();
  if (status === 'connecting') status = 'connected';
  let ageTimer: ReturnType<typeof setInterval> | undefined;
  if (tty) {
    io.out('\x1b[?25l'); // hide the cursor while redrawing
    started = true;
    draw();
    // Without ticks nothing else redraws, and an age that stops growing would hide a stalled stream.
    ageTimer = setInterval(draw, AGE_REFRESH_MS);
  }

  await Promise.race([finished, run.stop()]);
  if (ageTimer) clearInterval(ageTimer);
  if (redrawTimer) clearTimeout(redrawTimer);
  if (tty) {
    draw();
    io.out('\x1b[?25h');
  }
  closing = true;
  await client.close();
  return fatal ? EXIT_FAILURE : EXIT_OK;
}
