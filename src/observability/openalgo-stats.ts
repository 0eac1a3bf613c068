/**
 * The stats file OpenAlgo's Health Monitor reads (`WS_PROXY_STATS_FILE`, by default
 * `log/ws_proxy_stats.json` in OpenAlgo's directory), written as OpenAlgo's proxy writes it
 * (websocket_proxy/server.py, `_stats_file_writer`): at start and then every 10 s,
 *
 *   {"timestamp": <epoch seconds, float>, "total_connections": <users with a broker feed>,
 *    "total_symbols": <distinct (symbol, exchange, mode) held>, "clients_connected": <sockets>,
 *    "brokers": [<the broker of each of those users>]}
 *
 * replaced atomically (a temporary file in the same directory, then a rename), so a reader never
 * sees half a file. The Health Monitor (utils/health_monitor.py, `get_websocket_metrics`) takes
 * `total_connections`, `total_symbols` and a count per broker from `brokers`, and ignores a file
 * whose `timestamp` is a minute old. A failed write is logged (the first, then at most once a
 * minute, and the recovery) and never affects the gateway. The mapping is pure; the clock, the
 * timer and the file system are injected.
 */
import { mkdir, rename, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { Clock } from '../clock.js';
import type { Config } from '../config/options.js';
import type { Logger } from './logger.js';

/** OpenAlgo's cadence (`STATS_FILE_INTERVAL`). */
export const STATS_INTERVAL_MS = 10_000;
/** Failed writes are logged at most this often (after the first). */
const FAILURE_LOG_EVERY_MS = 60_000;

/** tickcast's own figures at one moment, from one gateway or several (`mergeProxyFigures`). */
export interface ProxyFigures {
  /** Client connections open, authenticated or not (OpenAlgo: `len(self.clients)`). */
  readonly clients: number;
  /**
   * Each user with an authenticated client that a feed serves, and their broker (OpenAlgo: one
   * broker adapter per such user; a user whose broker has no feed here has none).
   */
  readonly users: Readonly<Record<string, string>>;
  /** `exchange NUL symbol NUL mode` of every mode at least one client holds, once each. */
  readonly subscriptions: readonly string[];
}

/** The file's content, field for field and in OpenAlgo's order. */
export interface OpenAlgoProxyStats {
  timestamp: number;
  total_connections: number;
  total_symbols: number;
  clients_connected: number;
  brokers: string[];
}

/** The figures of several gateway processes (`--workers`) as one: users and keys are unions. */
export function mergeProxyFigures(parts: readonly ProxyFigures[]): ProxyFigures {
  const users: Record<string, string> = {};
  const subscriptions = new Set<string>();
  let clients = 0;
  for (const part of parts) {
    clients += part.clients;
    Object.assign(users, part.users);
    for (const key of part.subscriptions) subscriptions.add(key);
  }
  return { clients, users, subscriptions: [...subscriptions] };
}

export function proxyStats(figures: ProxyFigures, nowMs: number): OpenAlgoProxyStats {
  const users = Object.keys(figures.users).sort();
  return {
    timestamp: nowMs / 1000,
    total_connections: users.length,
    total_symbols: new Set(figures.subscriptions).size,
    clients_connected: figures.clients,
    brokers: users.map((user) => figures.users[user]!),
  };
}

/**
 * The file's text as Python's `json.dump` writes it: `", "` and `": "` separators, and the
 * timestamp always a float (`1724300000.0`), so the file reads the same as OpenAlgo's.
 */
export function statsText(stats: OpenAlgoProxyStats): string {
  const float = Number.isInteger(stats.timestamp) ? `${stats.timestamp}.0` : String(stats.timestamp);
  const brokers = stats.brokers.map((broker) => JSON.stringify(broker)).join(', ');
  return (
    `{"timestamp": ${float}, "total_connections": ${stats.total_connections}, "total_symbols": ${stats.total_symbols}, ` +
    `"clients_connected": ${stats.clients_connected}, "brokers": [${brokers}]}`
  );
}

/** Where the stats go: `WS_PROXY_STATS_FILE`, else OpenAlgo's default under `--openalgo-dir`. */
export function statsFileOf(config: Pick<Config, 'openalgo'>): string | undefined {
  const { dir, statsFile } = config.openalgo;
  return statsFile ?? (dir === undefined ? undefined : join(dir, 'log', 'ws_proxy_stats.json'));
}

export interface StatsFiles {
  /** Makes `path` hold `text` at once, with no moment where a reader sees part of it. */
  replace(path: string, text: string): Promise<void>;
}

/**
 * The real file system: the directory is created if missing, the text written to a temporary
 * file beside the target (named after this process, so two writers never share one) and renamed
 * over it, which is atomic within a directory.
 */
export const diskStatsFiles: StatsFiles = {
  async replace(path, text) {
    await mkdir(dirname(path), { recursive: true });
    const temporary = `${path}.${process.pid}.tmp`;
    await writeFile(temporary, text);
    await rename(temporary, path);
  },
};

export interface Ticker {
  /** Calls `tick` every `ms` until the returned function is called. */
  every(ms: number, tick: () => void): () => void;
}

export const systemTicker: Ticker = {
  every(ms, tick) {
    const timer = setInterval(tick, ms);
    timer.unref(); // the stats never keep the process alive
    return () => clearInterval(timer);
  },
};

export interface StatsWriterOptions {
  path: string;
  figures: () => ProxyFigures | Promise<ProxyFigures>;
  files: StatsFiles;
  clock: Clock;
  ticker: Ticker;
  logger: Logger;
  intervalMs?: number;
}

export class OpenAlgoStatsWriter {
  private stopTicker: (() => void) | undefined;
  private writing: Promise<void> | undefined;
  private failures = 0;
  private lastFailureLogAt = -Infinity;

  constructor(private readonly options: StatsWriterOptions) {}

  /** Writes now, then every interval. */
  start(): void {
    if (this.stopTicker) return;
    this.stopTicker = this.options.ticker.every(this.options.intervalMs ?? STATS_INTERVAL_MS, () => void this.write());
    void this.write();
  }

  /** Stops writing, after a write under way. The file stays (the reader ignores it once old). */
  async stop(): Promise<void> {
    this.stopTicker?.();
    this.stopTicker = undefined;
    await this.writing;
  }

  /** One write (a failure is logged, never thrown); while one is under way, that one is returned. */
  write(): Promise<void> {
    if (this.writing) return this.writing;
    this.writing = this.attempt().finally(() => (this.writing = undefined));
    return this.writing;
  }

  private async attempt(): Promise<void> {
    const { path, files, clock, logger } = this.options;
    try {
      const stats = proxyStats(await this.options.figures(), clock.now());
      await files.replace(path, statsText(stats));
      if (this.failures > 0) logger.info({ file: path, failures: this.failures }, "OpenAlgo's proxy stats file is written again");
      this.failures = 0;
    } catch (error) {
      this.failures++;
      const now = clock.now();
      if (this.failures === 1 || now - this.lastFailureLogAt >= FAILURE_LOG_EVERY_MS) {
        this.lastFailureLogAt = now;
        logger.warn(
          { file: path, err: (error as Error).message, failures: this.failures },
          "could not write OpenAlgo's proxy stats file (its Health Monitor shows no WebSocket figures); the gateway carries on",
        );
      }
    }
  }
}
