/**
 * The client SDK against a real gateway: connecting, each mode's ticks, unsubscribing, the
 * latest-value getters, MessagePack, a refused key, reconnection after the gateway drops its
 * clients and after it restarts on the same port, feed status events, and gap detection; and
 * the browser example (examples/client-browser.html with the SDK bundled by esbuild) in headless
 * Chromium, which needs Debian's chromium or CHROMIUM_PATH (without one the test fails, saying so).
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { chromium } from 'playwright-core';
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ZmqPublisher } from '../../src/bus/zeromq.js';
import { type ClientEvents, type DepthTick, type LtpTick, type MarketData, type QuoteTick, TickcastClient } from '../../src/client/index.js';
import { sleep, waitFor } from '../helpers/client.js';
import { type TestInstance, startTestInstance } from '../helpers/instance.js';

/** Hang catcher only. */
const WAIT_MS = 10_000;
const FAST_RECONNECT = { initialDelayMs: 50, maxDelayMs: 500 };

/** Resolves with the next `event` satisfying `match`. */
function next<E extends keyof ClientEvents>(client: TickcastClient, event: E, match: (payload: ClientEvents[E]) => boolean = () => true): Promise<ClientEvents[E]> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      off();
      reject(new Error(`no "${String(event)}" event within ${WAIT_MS} ms`));
    }, WAIT_MS);
    const off = client.on(event, (payload) => {
      if (!match(payload)) return;
      clearTimeout(timer);
      off();
      resolve(payload);
    });
  });
}

/** Collects ticks; `nextTick(symbol)` waits for the next one of a symbol. */
function collector<T extends LtpTick>() {
  const ticks: Array<MarketData<T>> = [];
  return {
    ticks,
    callback: (message: MarketData<T>) => void ticks.push(message),
    async nextTick(symbol?: string): Promise<MarketData<T>> {
      const from = ticks.length;
      await waitFor(() => ticks.slice(from).some((t) => symbol === undefined || t.symbol === symbol), WAIT_MS);
      return ticks.slice(from).find((t) => symbol === undefined || t.symbol === symbol)!;
    },
  };
}

describe('client SDK against a simulator gateway', () => {
  let gw: TestInstance;
  let key: string;
  const clients: TickcastClient[] = [];
  const client = (options: Partial<ConstructorParameters<typeof TickcastClient>[0]> = {}): TickcastClient => {
    const c = new TickcastClient({ url: gw.url, apiKey: key, reconnect: FAST_RECONNECT, ...options });
    clients.push(c);
    return c;
  };

  beforeAll(async () => {
    gw = await startTestInstance();
    key = await gw.createKey('sdk');
  });
  afterAll(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await gw.stop();
  });

  it('connects, and each mode delivers its payload to its typed callback', async () => {
    const c = client();
    const connected = next(c, 'connected');
    await c.connect();
    expect(await connected).toEqual({ broker: 'simulator', userId: 'sdk', extensions: { encoding: 'json', batch: true, seq: true, snapshot: true }, reconnected: false });
    expect(c.state).toBe('connected');

    const ltp = collector<LtpTick>();
    const quote = collector<QuoteTick>();
    const depth = collector<DepthTick>();
    const handles = [c.subscribe('NSE:INFY', 'ltp', ltp.callback), c.subscribe('NSE:TCS', 'quote', quote.callback), c.subscribe(['NSE:SBIN'], 3, depth.callback)];
    const results = await Promise.all(handles.map((h) => h.ready));
    expect(results.flat().map((r) => r.ok)).toEqual([true, true, true]);

    const l = await ltp.nextTick('INFY');
    expect(l).toMatchObject({ type: 'market_data', exchange: 'NSE', symbol: 'INFY', mode: 1, broker: 'simulator' });
    expect(typeof l.data.ltp).toBe('number');
    expect(Number.isInteger(l.seq)).toBe(true);
    const q = await quote.nextTick('TCS');
    expect(q.mode).toBe(2);
    for (const field of ['ltp', 'open', 'high', 'low', 'close', 'volume'] as const) expect(typeof q.data[field]).toBe('number');
    const d = await depth.nextTick('SBIN');
    expect(d.mode).toBe(3);
    expect(d.data.depth!.buy).toHaveLength(5);
    expect(Object.keys(d.data.depth!.sell[0]!).sort()).toEqual(['orders', 'price', 'quantity']);
    // Each callback saw only its own stream.
    expect(new Set(ltp.ticks.map((t) => t.symbol))).toEqual(new Set(['INFY']));
    expect(new Set(depth.ticks.map((t) => t.symbol))).toEqual(new Set(['SBIN']));
    for (const h of handles) h.unsubscribe();
    await waitFor(() => gw.gateway.index.heldCount === 0, WAIT_MS);
  });

  it('unsubscribing stops the ticks and the gateway lets go of the stream', async () => {
    const c = client();
    await c.connect();
    const ticks = collector<LtpTick>();
    const held = gw.gateway.index.heldCount;
    const handle = c.subscribe('NSE:ITC', 1, ticks.callback);
    const other = c.subscribe('NSE:WIPRO', 1, ticks.callback);
    await ticks.nextTick('ITC');
    await ticks.nextTick('WIPRO');
    expect(gw.gateway.index.heldCount).toBe(held + 2);

    handle.unsubscribe();
    await waitFor(() => gw.gateway.index.heldCount === held + 1, WAIT_MS);
    const count = ticks.ticks.filter((t) => t.symbol === 'ITC').length;
    await ticks.nextTick('WIPRO');
    await ticks.nextTick('WIPRO');
    expect(ticks.ticks.filter((t) => t.symbol === 'ITC')).toHaveLength(count);

    c.unsubscribe(['NSE:WIPRO'], 'LTP');
    await waitFor(() => gw.gateway.index.heldCount === held, WAIT_MS);
    expect(c.getLtp('NSE', 'WIPRO')).toEqual({ ltp: {} });
  });

  it('the latest-value getters hold the last tick of each stream in OpenAlgo SDK shapes', async () => {
    const c = client();
    await c.connect();
    const ticks = collector<DepthTick>();
    c.subscribe(['NSE:HDFCBANK', 'NSE_INDEX:NIFTY'], 'depth', ticks.callback);
    await ticks.nextTick('HDFCBANK');
    await ticks.nextTick('NIFTY');
    // Read the cache right after a tick, in the same turn, so it cannot have moved on.
    const seen = await new Promise<{ tick: MarketData<DepthTick>; ltp: ReturnType<TickcastClient['getLtp']>; quotes: ReturnType<TickcastClient['getQuotes']>; depth: ReturnType<TickcastClient['getDepth']> }>((resolve) => {
      const h = c.subscribe('NSE:HDFCBANK', 'depth', (tick) => {
        h.unsubscribe();
        resolve({ tick, ltp: c.getLtp(), quotes: c.getQuotes(), depth: c.getDepth('NSE') });
      });
    });
    const data = seen.tick.data;
    expect(seen.ltp.ltp.NSE!.HDFCBANK).toEqual({ timestamp: data.timestamp, ltp: data.ltp });
    expect(typeof seen.ltp.ltp.NSE_INDEX!.NIFTY!.ltp).toBe('number');
    expect(seen.quotes.quote.NSE!.HDFCBANK).toEqual({
      timestamp: data.timestamp,
      open: data.open,
      high: data.high,
      low: data.low,
      close: data.close,
      ltp: data.ltp,
      volume: data.volume,
      last_trade_quantity: data.last_quantity,
      avg_trade_price: data.average_price,
      change: data.change,
      change_percent: data.change_percent,
    });
    const book = seen.depth.depth.NSE!.HDFCBANK!;
    expect(Object.keys(seen.depth.depth)).toEqual(['NSE']);
    expect(book.ltp).toBe(data.ltp);
    expect(Object.keys(book.buyBook)).toEqual(['1', '2', '3', '4', '5']);
    expect(book.buyBook['1']).toEqual({ price: data.depth!.buy[0]!.price, qty: data.depth!.buy[0]!.quantity, orders: data.depth!.buy[0]!.orders });
    expect(book.sellBook['5']).toEqual({ price: data.depth!.sell[4]!.price, qty: data.depth!.sell[4]!.quantity, orders: data.depth!.sell[4]!.orders });
  });

  it('MessagePack: negotiated, and ticks arrive decoded', async () => {
    const c = client({ encoding: 'msgpack', batch: false, WebSocket });
    await c.connect();
    expect(c.extensions).toEqual({ encoding: 'msgpack', batch: false, seq: true, snapshot: true });
    const ticks = collector<QuoteTick>();
    const handle = c.subscribe('NSE:LT', 'quote', ticks.callback);
    expect(await handle.ready).toMatchObject([{ ok: true }]);
    const tick = await ticks.nextTick('LT');
    expect(tick).toMatchObject({ type: 'market_data', exchange: 'NSE', symbol: 'LT', mode: 2, broker: 'simulator' });
    expect(typeof tick.data.ltp).toBe('number');
    expect(typeof tick.data.volume).toBe('number');
    expect(await c.ping()).toBeGreaterThanOrEqual(0);
  });

  it('an unknown symbol is reported in ready and as an error event; the rest of the subscription works', async () => {
    const c = client();
    await c.connect();
    const error = next(c, 'error');
    const ticks = collector<LtpTick>();
    const handle = c.subscribe(['NSE:NOSUCH', 'NSE:AXISBANK'], 1, ticks.callback);
    expect(await handle.ready).toEqual([
      { instrument: { exchange: 'NSE', symbol: 'NOSUCH' }, ok: false, message: 'Token not found for NOSUCH on NSE' },
      { instrument: { exchange: 'NSE', symbol: 'AXISBANK' }, ok: true, depth: 5 },
    ]);
    expect(await error).toMatchObject({ code: 'SUBSCRIBE_FAILED', message: 'NSE:NOSUCH (LTP): Token not found for NOSUCH on NSE' });
    expect(handle.instruments).toEqual([{ exchange: 'NSE', symbol: 'AXISBANK' }]);
    await ticks.nextTick('AXISBANK');
  });

  it('a bad key rejects connect() with AUTHENTICATION_ERROR', async () => {
    const c = client({ apiKey: 'f'.repeat(64) });
    await expect(c.connect()).rejects.toMatchObject({ name: 'TickcastClientError', code: 'AUTHENTICATION_ERROR', message: 'Invalid API key' });
    expect(c.state).toBe('idle');
  });

  it('feed status changes reach the clients of the feed', async () => {
    const c = client();
    await c.connect();
    const simulator = [...gw.gateway.feeds.adapters()][0]!;
    const down = next(c, 'feed_status');
    await simulator.stop();
    expect(await down).toMatchObject({ type: 'feed_status', feed: 'simulator', broker: 'simulator', status: 'down' });
    const live = next(c, 'feed_status');
    await simulator.start();
    expect(await live).toMatchObject({ status: 'live' });
  });

  it('when the gateway drops its clients, the client reconnects and resubscribes', async () => {
    const c = client();
    await c.connect();
    const ticks = collector<QuoteTick>();
    c.subscribe(['NSE:MARUTI', 'NSE:TITAN'], 'quote', ticks.callback);
    await ticks.nextTick('MARUTI');

    const events: string[] = [];
    c.on('disconnected', (e) => events.push(`disconnected willReconnect=${e.willReconnect}`));
    c.on('reconnecting', (e) => events.push(`reconnecting ${e.attempt}`));
    const reconnected = next(c, 'connected');
    for (const session of gw.gateway.listener.sessions) session.socket.terminate();
    expect((await reconnected).reconnected).toBe(true);
    expect(events).toEqual(['disconnected willReconnect=true', 'reconnecting 1']);
    await ticks.nextTick('MARUTI');
    await ticks.nextTick('TITAN');
  });
});

describe('client SDK across a gateway restart on the same port', () => {
  it('reconnects to the new gateway, authenticates again and resubscribes', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'tickcast-sdk-'));
    const env = { TICKCAST_DATA_DIR: dataDir, TICKCAST_REGISTRY: `sqlite:${join(dataDir, 'registry.db')}` };
    let gw = await startTestInstance(env);
    const c = new TickcastClient({ url: gw.url, apiKey: await gw.createKey('restart'), reconnect: FAST_RECONNECT });
    try {
      await c.connect();
      const ticks = collector<LtpTick>();
      c.subscribe('NSE:RELIANCE', 1, ticks.callback);
      await ticks.nextTick();

      const disconnected = next(c, 'disconnected');
      const port = new URL(gw.url).port;
      await gw.stop();
      expect(await disconnected).toEqual({ code: 1001, reason: 'server shutting down', willReconnect: true });
      await sleep(300); // a few attempts fail while nothing listens
      expect(c.state).toBe('reconnecting');

      const reconnected = next(c, 'connected');
      gw = await startTestInstance({ ...env, WEBSOCKET_PORT: port });
      expect((await reconnected).reconnected).toBe(true);
      const after = await ticks.nextTick('RELIANCE');
      expect(after.mode).toBe(1);
      expect(gw.gateway.index.heldCount).toBe(1);
    } finally {
      await c.close();
      await gw.stop();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});

describe('client SDK gap detection (external publisher)', () => {
  let gw: TestInstance;
  let publisher: ZmqPublisher;
  beforeAll(async () => {
    // Recovery off: what a reconnecting client missed cannot be resent, and it must hear so.
    gw = await startTestInstance({ TICKCAST_FEED: 'none', TICKCAST_RECOVERY_TICKS: '0' });
    publisher = new ZmqPublisher({ endpoint: gw.busEndpoint, batch: false });
    // The publisher's connection is up once the gateway has a value from it.
    while (gw.gateway.fanOut.lastValues.size === 0) {
      publisher.publish('NSE_GAPTEST_QUOTE', JSON.stringify({ ltp: 100.0, timestamp: 1 }));
      await sleep(50);
    }
    await sleep(100);
  });
  afterAll(async () => {
    await publisher.close();
    await gw.stop();
  });

  it('a tick the client did not receive shows as a gap of its sequence numbers', async () => {
    // A fixed half second before reconnecting: the tick published meanwhile is surely missed.
    const c = new TickcastClient({ url: gw.url, apiKey: await gw.createKey('gaps'), snapshot: false, reconnect: { initialDelayMs: 500, maxDelayMs: 500, jitter: 0 } });
    try {
      await c.connect();
      const ticks = collector<QuoteTick>();
      const gaps: Array<ClientEvents['gap']> = [];
      c.on('gap', (gap) => gaps.push(gap));
      c.subscribe('NSE:GAPTEST', 'quote', ticks.callback);
      await waitFor(() => gw.gateway.index.heldCount === 1, WAIT_MS);
      publisher.publish('NSE_GAPTEST_QUOTE', JSON.stringify({ ltp: 101.0, timestamp: 2 }));
      const before = await ticks.nextTick();
      expect(before.data.ltp).toBe(101);

      // The connection drops; a Quote tick published meanwhile never reaches the client.
      const reconnected = next(c, 'connected');
      for (const session of gw.gateway.listener.sessions) session.socket.terminate();
      await waitFor(() => gw.gateway.index.heldCount === 0, WAIT_MS);
      publisher.publish('NSE_GAPTEST_QUOTE', JSON.stringify({ ltp: 102.0, timestamp: 3 }));
      // An LTP tick of the stream counts only among LTP messages: no gap for a Quote subscriber.
      publisher.publish('NSE_GAPTEST_LTP', JSON.stringify({ ltp: 102.5, timestamp: 3 }));
      await reconnected;
      await waitFor(() => gw.gateway.index.heldCount === 1, WAIT_MS);
      publisher.publish('NSE_GAPTEST_QUOTE', JSON.stringify({ ltp: 103.0, timestamp: 4 }));
      await waitFor(() => ticks.ticks.some((t) => t.data.ltp === 103), WAIT_MS);
      const after = ticks.ticks.find((t) => t.data.ltp === 103)!;
      expect(ticks.ticks.some((t) => t.data.ltp === 102)).toBe(false);
      expect(gaps).toEqual([
        {
          stream: 'NSE:GAPTEST',
          exchange: 'NSE',
          symbol: 'GAPTEST',
          mode: 2,
          reason: 'history',
          expected: before.seq! + 1,
          received: after.seq!,
          missed: 1,
          message: `messages after seq ${before.seq!} cannot be resent: this gateway keeps no recent ticks; resync`,
        },
      ]);
      expect(after.seq).toBe(before.seq! + 2);
    } finally {
      await c.close();
    }
  });
});

describe('client SDK in a browser', () => {
  const root = fileURLToPath(new URL('../../', import.meta.url));
  const chromiumPath = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

  it('the browser example shows live prices using the browser\'s own WebSocket', async () => {
    if (!existsSync(chromiumPath)) throw new Error(`Chromium is needed and was not found at ${chromiumPath}: install Debian's chromium or set CHROMIUM_PATH`);
    // The bundle the example's comment tells users to build.
    const bundle = await build({ entryPoints: [join(root, 'src/client/index.ts')], bundle: true, format: 'esm', platform: 'browser', write: false, logLevel: 'silent' });
    const script = bundle.outputFiles[0]!.text;
    expect(script).not.toMatch(/from ?["']node:/); // nothing Node-only reached the bundle
    // A static server on loopback for the example page and the bundle beside it, as a page served
    // from this machine would be (Chromium keeps public origins from reaching loopback addresses).
    const files: Record<string, [string, string]> = {
      '/client-browser.html': ['text/html', readFileSync(join(root, 'examples/client-browser.html'), 'utf8')],
      '/tickcast-client.js': ['text/javascript', script],
    };
    const server = createServer((request, response) => {
      const file = files[new URL(request.url ?? '/', 'http://x').pathname];
      if (file) response.writeHead(200, { 'content-type': file[0] }).end(file[1]);
      else response.writeHead(404).end();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const site = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const gw = await startTestInstance();
    const profile = mkdtempSync(join(tmpdir(), 'tickcast-chromium-'));
    const browser = await chromium.launchPersistentContext(profile, {
      executablePath: chromiumPath,
      headless: true,
      args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
    try {
      const page = browser.pages()[0] ?? (await browser.newPage());
      const problems: string[] = [];
      page.on('pageerror', (error) => problems.push(error.message));
      const key = await gw.createKey('browser');
      await page.goto(`${site}/client-browser.html?url=${encodeURIComponent(gw.url)}&key=${key}&symbols=NSE:RELIANCE,NSE_INDEX:NIFTY`);
      const text = async (selector: string): Promise<string> => (await page.textContent(selector)) ?? '';
      const ltp = (instrument: string): Promise<string> => text(`tr[data-instrument="${instrument}"] .ltp`);
      const seq = async (): Promise<number> => Number(await text('tr[data-instrument="NSE:RELIANCE"] .seq'));
      /** Reads until `accept` holds; the timeout only catches hangs. */
      const until = async <T>(read: () => Promise<T>, accept: (value: T) => boolean): Promise<T> => {
        const deadline = Date.now() + WAIT_MS;
        for (let value = await read(); ; value = await read()) {
          if (accept(value)) return value;
          if (Date.now() > deadline) throw new Error(`gave up waiting; last value: ${JSON.stringify(value)}`);
          await sleep(50);
        }
      };
      const price = /^\d+\.\d{2}$/;
      await until(() => Promise.all([ltp('NSE:RELIANCE'), ltp('NSE_INDEX:NIFTY')]), (values) => values.every((v) => price.test(v)));
      expect(await text('#status')).toBe('connected');
      const first = await seq();
      expect(first).toBeGreaterThan(0);
      await until(seq, (n) => n > first); // it keeps moving
      expect(problems).toEqual([]);
    } finally {
      await browser.close();
      rmSync(profile, { recursive: true, force: true });
      await gw.stop();
      await new Promise((resolve) => server.close(resolve));
    }
  });
});
