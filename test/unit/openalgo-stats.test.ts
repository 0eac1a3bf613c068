/**
 * OpenAlgo's proxy stats file (observability/openalgo-stats.ts): the field mapping from
 * tickcast's figures, the text as Python's json.dump writes it, the cadence, and failures that
 * are logged (throttled) and never thrown. Clock, timer and files are fakes.
 */
import { describe, expect, it } from 'vitest';
import type { Logger } from '../../src/observability/logger.js';
import {
  OpenAlgoStatsWriter,
  type ProxyFigures,
  type StatsFiles,
  type Ticker,
  mergeProxyFigures,
  proxyStats,
  statsText,
} from '../../src/observability/openalgo-stats.js';

const key = (exchange: string, symbol: string, mode: number): string => `${exchange}\u0000${symbol}\u0000${mode}`;

describe('proxyStats: the fields OpenAlgo writes (websocket_proxy/server.py _stats_file_writer)', () => {
  it('maps sockets, users with a feed, and (symbol, exchange, mode) keys', () => {
    const figures: ProxyFigures = {
      clients: 5, // every open socket, authenticated or not
      users: { bob: 'zerodha', alice: 'simulator', carol: 'zerodha' },
      subscriptions: [key('NSE', 'RELIANCE', 1), key('NSE', 'RELIANCE', 3), key('NSE_INDEX', 'NIFTY', 2), key('NSE', 'RELIANCE:20', 3)],
    };
    expect(proxyStats(figures, 1_724_300_000_250)).toStrictEqual({
      timestamp: 1_724_300_000.25,
      total_connections: 3, // one broker adapter per user in OpenAlgo
      total_symbols: 4, // len(subscription_index): each mode of a symbol is a key
      clients_connected: 5,
      brokers: ['simulator', 'zerodha', 'zerodha'], // one entry per user, as user_broker_mapping.values()
    });
  });

  it('is all zeros and an empty list with nobody connected', () => {
    expect(proxyStats({ clients: 0, users: {}, subscriptions: [] }, 1_000)).toStrictEqual({
      timestamp: 1,
      total_connections: 0,
      total_symbols: 0,
      clients_connected: 0,
      brokers: [],
    });
  });

  it('writes the text as json.dump does, the timestamp always a float', () => {
    const text = statsText({ timestamp: 1_724_300_000, total_connections: 1, total_symbols: 2, clients_connected: 3, brokers: ['zerodha'] });
    expect(text).toBe('{"timestamp": 1724300000.0, "total_connections": 1, "total_symbols": 2, "clients_connected": 3, "brokers": ["zerodha"]}');
    expect(JSON.parse(text)).toStrictEqual({ timestamp: 1_724_300_000, total_connections: 1, total_symbols: 2, clients_connected: 3, brokers: ['zerodha'] });
    expect(statsText({ timestamp: 1.5, total_connections: 0, total_symbols: 0, clients_connected: 0, brokers: [] })).toBe(
      '{"timestamp": 1.5, "total_connections": 0, "total_symbols": 0, "clients_connected": 0, "brokers": []}',
    );
  });

  it('merges workers: sockets add up, users and keys are unions', () => {
    const merged = mergeProxyFigures([
      { clients: 2, users: { alice: 'simulator' }, subscriptions: [key('NSE', 'TCS', 1), key('NSE', 'INFY', 2)] },
      { clients: 3, users: { alice: 'simulator', bob: 'angel' }, subscriptions: [key('NSE', 'TCS', 1), key('NSE', 'TCS', 2)] },
    ]);
    expect(proxyStats(merged, 0)).toMatchObject({ clients_connected: 5, total_connections: 2, total_symbols: 3, brokers: ['simulator', 'angel'] });
  });
});

/** A ticker whose ticks the test fires by hand. */
class ManualTicker implements Ticker {
  intervalMs: number | undefined;
  private tick: (() => void) | undefined;
  every(ms: number, tick: () => void): () => void {
    this.intervalMs = ms;
    this.tick = tick;
    return () => (this.tick = undefined);
  }
  fire(): void {
    this.tick?.();
  }
  get running(): boolean {
    return this.tick !== undefined;
  }
}

class MemoryFiles implements StatsFiles {
  readonly writes: Array<{ path: string; text: string }> = [];
  failWith: Error | undefined;
  async replace(path: string, text: string): Promise<void> {
    if (this.failWith) throw this.failWith;
    this.writes.push({ path, text });
  }
}

function recordingLogger(): { logger: Logger; lines: Array<{ level: string; msg: string; fields: Record<string, unknown> }> } {
  const lines: Array<{ level: string; msg: string; fields: Record<string, unknown> }> = [];
  const at = (level: string) => (fields: Record<string, unknown>, msg: string) => void lines.push({ level, msg, fields });
  return { logger: { info: at('info'), warn: at('warn'), error: at('error'), debug: at('debug') } as unknown as Logger, lines };
}

function setup(
  figures: () => ProxyFigures = () => ({ clients: 1, users: { u: 'simulator' }, subscriptions: [key('NSE', 'TCS', 2)] }),
  files: StatsFiles = new MemoryFiles(),
) {
  let now = 1_724_300_000_000;
  const clock = { now: () => now };
  const ticker = new ManualTicker();
  const { logger, lines } = recordingLogger();
  const writer = new OpenAlgoStatsWriter({ path: '/oa/log/ws_proxy_stats.json', figures, files, clock, ticker, logger });
  return { writer, ticker, files: files as MemoryFiles, lines, advance: (ms: number) => (now += ms) };
}

const settle = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe('OpenAlgoStatsWriter', () => {
  it('writes at start and then on every tick, every 10 s, with the figures of that moment', async () => {
    let clients = 1;
    const { writer, ticker, files, advance } = setup(() => ({ clients, users: {}, subscriptions: [] }));
    writer.start();
    await settle();
    expect(ticker.intervalMs).toBe(10_000);
    expect(files.writes).toHaveLength(1);
    expect(files.writes[0]!.path).toBe('/oa/log/ws_proxy_stats.json');
    clients = 4;
    advance(10_000);
    ticker.fire();
    await settle();
    expect(files.writes.map((w) => JSON.parse(w.text))).toStrictEqual([
      { timestamp: 1_724_300_000, total_connections: 0, total_symbols: 0, clients_connected: 1, brokers: [] },
      { timestamp: 1_724_300_010, total_connections: 0, total_symbols: 0, clients_connected: 4, brokers: [] },
    ]);
    await writer.stop();
    expect(ticker.running).toBe(false);
  });

  it('logs a failed write once, then at most once a minute, and the recovery; it never throws', async () => {
    const { writer, ticker, files, lines, advance } = setup();
    files.failWith = new Error('EACCES: permission denied');
    writer.start();
    await settle();
    for (let i = 0; i < 5; i++) {
      advance(10_000);
      ticker.fire();
      await settle();
    }
    // Six failures in 50 s: one line.
    expect(lines.filter((l) => l.level === 'warn')).toHaveLength(1);
    expect(lines[0]!.fields).toMatchObject({ file: '/oa/log/ws_proxy_stats.json', err: 'EACCES: permission denied', failures: 1 });
    advance(10_000);
    ticker.fire();
    await settle();
    expect(lines.filter((l) => l.level === 'warn').map((l) => l.fields.failures)).toEqual([1, 7]);

    files.failWith = undefined;
    advance(10_000);
    ticker.fire();
    await settle();
    expect(files.writes).toHaveLength(1);
    expect(lines.at(-1)).toMatchObject({ level: 'info', fields: { failures: 7 } });
    // Written fine from then on: nothing more is logged.
    ticker.fire();
    await settle();
    expect(lines).toHaveLength(3);
    await writer.stop();
  });

  it('a figures source that fails is a failed write like any other', async () => {
    const { writer, files, lines } = setup(() => {
      throw new Error('workers did not answer');
    });
    writer.start();
    await settle();
    expect(files.writes).toEqual([]);
    expect(lines[0]).toMatchObject({ level: 'warn', fields: { err: 'workers did not answer' } });
    await writer.stop();
  });

  it('does not start a write while one is under way, and stop waits for it', async () => {
    let release: () => void = () => {};
    const slow = {
      calls: 0,
      replace(): Promise<void> {
        slow.calls++;
        return new Promise<void>((resolve) => (release = resolve));
      },
    };
    const { writer, ticker, advance } = setup(undefined, slow);
    writer.start();
    advance(10_000);
    ticker.fire();
    ticker.fire();
    await settle();
    expect(slow.calls).toBe(1);
    let stopped = false;
    const stopping = writer.stop().then(() => (stopped = true));
    await settle();
    expect(stopped).toBe(false);
    release();
    await stopping;
    expect(stopped).toBe(true);
  });
});
