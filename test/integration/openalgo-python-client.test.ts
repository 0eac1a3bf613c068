/**
 * Compatibility with OpenAlgo's Python side, using the real Python libraries OpenAlgo uses
 * (Debian's python3-websocket and python3-zmq, run with /usr/bin/python3):
 *   - a miniature of the OpenAlgo SDK feed client (openalgo/feed.py v2.0.1, spec §2.12);
 *   - pyzmq publishers framing messages as OpenAlgo's do (spec §3.2), including order updates.
 * A missing Python library fails these tests; it never skips them.
 */
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { killSpawnedProcesses, makeTempDir, removeDir, runProcess, startGatewayProcess } from '../helpers/cli.js';
import { type Message, TestClient, waitFor } from '../helpers/client.js';
import { type TestInstance, startTestInstance } from '../helpers/instance.js';

const PYTHON = '/usr/bin/python3';
const SDK_CLIENT = fileURLToPath(new URL('../python/openalgo_sdk_client.py', import.meta.url));
const PUBLISHER = fileURLToPath(new URL('../python/zmq_publisher.py', import.meta.url));

/** The parent's environment without proxy settings (websocket-client honours them). */
function pythonEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, PYTHONDONTWRITEBYTECODE: '1' };
  for (const name of Object.keys(env)) if (/^(https?|all|no)_proxy$/i.test(name)) delete env[name];
  return env;
}

async function python(args: string[], input?: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return runProcess(PYTHON, args, { env: pythonEnv(), timeoutMs: 40_000, ...(input === undefined ? {} : { input }) });
}

type BusLine = { topic: string; data: unknown } | { frames: string[] };

/** Runs the pyzmq publisher; resolves with the exact frames it sent (one array per message). */
async function publish(endpoint: string, lines: BusLine[], repeat = 3): Promise<string[][]> {
  const result = await python([PUBLISHER, endpoint, '--repeat', String(repeat), '--gap', '0.2'], lines.map((l) => JSON.stringify(l)).join('\n') + '\n');
  expect(result.code, result.stderr).toBe(0);
  return result.stdout
    .trim()
    .split('\n')
    .map((line) => (JSON.parse(line) as { frames: string[] }).frames);
}

afterEach(() => killSpawnedProcesses());

it('/usr/bin/python3 has pyzmq and websocket-client (Debian python3-zmq, python3-websocket)', async () => {
  const result = await python([
    '-c',
    'import zmq, websocket; assert hasattr(websocket, "WebSocketApp") and hasattr(websocket, "create_connection"); print(zmq.pyzmq_version())',
  ]);
  expect(result.code, result.stderr).toBe(0);
});

describe('the OpenAlgo SDK feed client (v2.0.1 behaviour)', () => {
  let gw: TestInstance;
  let key: string;

  beforeAll(async () => {
    gw = await startTestInstance();
    key = await gw.createKey('sdkuser');
  });
  afterAll(() => gw.stop());

  it('authenticates within 5 s, receives every mode with the fields it reads, and unsubscribes', async () => {
    const result = await python([
      SDK_CLIENT,
      '--url', gw.url,
      '--api-key', key,
      '--sub', '1', 'NSE:RELIANCE',
      '--sub', '2', 'NSE:INFY',
      '--sub', '3', 'NSE_INDEX:NIFTY,NSE:TCS',
      '--min-ticks', '2',
    ]);
    expect(result.code, result.stderr + result.stdout).toBe(0);
    const summary = JSON.parse(result.stdout);

    // connect() returns True only if the auth success arrives within 5 s of the socket opening.
    expect(summary.auth).toMatchObject({ ok: true, user_id: 'sdkuser', broker: 'simulator' });
    expect(summary.auth.ms).toBeLessThan(5000);

    expect(summary.violations).toEqual([]);
    expect(summary.subscribe_replies.map((r: { status: string }) => r.status)).toEqual(['success', 'success', 'success']);
    expect(summary.collected_all).toBe(true);

    const symbols = summary.symbols;
    // LTP (mode 1): the SDK needs "ltp" (and reads timestamp, ltt when present).
    expect(Object.keys(symbols['NSE:RELIANCE'])).toEqual(['1']);
    expect(symbols['NSE:RELIANCE']['1'].handled).toBeGreaterThanOrEqual(2);
    expect(symbols['NSE:RELIANCE']['1'].data_keys).toEqual(expect.arrayContaining(['ltp', 'timestamp']));
    // Quote (mode 2): open/high/low/close/volume/ltp.
    expect(Object.keys(symbols['NSE:INFY'])).toEqual(['2']);
    expect(symbols['NSE:INFY']['2'].handled).toBeGreaterThanOrEqual(2);
    expect(symbols['NSE:INFY']['2'].data_keys).toEqual(expect.arrayContaining(['open', 'high', 'low', 'close', 'volume', 'ltp', 'timestamp']));
    // Depth (mode 3): depth.buy/sell, 5 levels of {price, quantity, orders}.
    expect(symbols['NSE:TCS']['3']).toMatchObject({ depth: { buy: 5, sell: 5, level_keys: ['orders', 'price', 'quantity'] } });
    expect(symbols['NSE:TCS']['3'].handled).toBeGreaterThanOrEqual(2);
    // An index at Depth: delivered, tagged mode 3, with its ltp (like Zerodha, an index has no book).
    expect(symbols['NSE_INDEX:NIFTY']['3'].received).toBeGreaterThanOrEqual(2);
    expect(symbols['NSE_INDEX:NIFTY']['3'].data_keys).toEqual(expect.arrayContaining(['ltp', 'timestamp']));

    expect(Object.keys(summary.modes).sort()).toEqual(['1', '2', '3']);

    // The SDK's unsubscribe form ({symbol, exchange, mode} items) is honoured.
    expect(summary.unsubscribe_acknowledged).toBe(true);
    expect(summary.unsubscribe_replies).toEqual(['success', 'success', 'success']);
    expect(summary.ticks_after_unsubscribe).toBe(0);
    for (const [exchange, symbol] of [['NSE', 'RELIANCE'], ['NSE', 'INFY'], ['NSE_INDEX', 'NIFTY'], ['NSE', 'TCS']] as const) {
      await waitFor(() => gw.gateway.upstream.mode('simulator', exchange, symbol) === 0);
    }
  });

  it('a wrong key fails the SDK connect (non-zero exit)', async () => {
    const result = await python([SDK_CLIENT, '--url', gw.url, '--api-key', 'f'.repeat(64), '--sub', '1', 'NSE:RELIANCE']);
    expect(result.code).toBe(3);
    expect(JSON.parse(result.stdout).auth.ok).toBe(false);
  });
});

describe('the OpenAlgo SDK against the default `tickcast start`, every mode of the same symbols', () => {
  it("fires the LTP, Quote and Depth callbacks of each symbol and fills get_ltp(), get_quotes() and get_depth()", async () => {
    const dir = makeTempDir();
    try {
      const gateway = await startGatewayProcess({ dataDir: dir });
      expect(gateway.devKey).toBeDefined();
      const instruments = 'NSE:RELIANCE,NSE:INFY,NSE_INDEX:NIFTY';
      const result = await python([
        SDK_CLIENT,
        '--url', gateway.url,
        '--api-key', gateway.devKey!,
        '--sub', '1', instruments,
        '--sub', '2', instruments,
        '--sub', '3', instruments,
        '--min-ticks', '2',
        '--collect-timeout', '20',
      ]);
      expect(result.code, result.stderr + result.stdout).toBe(0);
      const summary = JSON.parse(result.stdout);
      expect(summary.violations).toEqual([]);
      expect(summary.collected_all).toBe(true);
      for (const key of instruments.split(',')) {
        for (const mode of ['1', '2', '3']) expect(summary.symbols[key][mode].received, `${key} mode ${mode}`).toBeGreaterThanOrEqual(2);
        // LTP messages carry what an LTP tick has, Quote messages no book.
        expect(summary.symbols[key]['1'].data_keys).toEqual(['exchange', 'ltp', 'ltt', 'mode', 'symbol', 'timestamp']);
        expect(summary.symbols[key]['2'].data_keys).not.toContain('depth');
        expect(summary.caches.ltp[key].price).toBeGreaterThan(0);
        expect(summary.caches.quotes[key].ltp).toBeGreaterThan(0);
        expect(summary.caches.quotes[key].open).toBeGreaterThan(0);
      }
      // Equities get their callbacks in every mode; the index has no book (as on Kite), so only
      // its LTP and Quote callbacks fire and get_depth() has nothing for it, as with OpenAlgo.
      for (const key of ['NSE:RELIANCE', 'NSE:INFY']) {
        for (const mode of ['1', '2', '3']) expect(summary.symbols[key][mode].handled).toBe(summary.symbols[key][mode].received);
        expect(summary.caches.depth[key].depth.buy).toHaveLength(5);
      }
      expect(summary.caches.depth['NSE_INDEX:NIFTY']).toBeUndefined();
      expect(summary.unsubscribe_replies).toEqual(['success', 'success', 'success']);
      expect(summary.ticks_after_unsubscribe).toBe(0);
      expect(await gateway.stop()).toBe(0);
    } finally {
      removeDir(dir);
    }
  });
});

describe('external pyzmq publishers (TICKCAST_FEED=none)', () => {
  let gw: TestInstance;
  let key: string;

  beforeAll(async () => {
    gw = await startTestInstance({ TICKCAST_FEED: 'none' });
    key = await gw.createKey('alice', 'zerodha');
  });
  afterAll(() => gw.stop());

  it('delivers OpenAlgo topics verbatim, skipping malformed messages without stalling', async () => {
    const client = await TestClient.authenticated(gw.url, key);
    expect((await client.request({ action: 'subscribe', symbols: [{ symbol: 'RELIANCE', exchange: 'NSE' }], mode: 1 })).status).toBe('success');
    expect((await client.request({ action: 'subscribe', symbols: [{ symbol: 'NIFTY', exchange: 'NSE_INDEX' }], mode: 2 })).status).toBe('success');

    const ltp = { symbol: 'RELIANCE', exchange: 'NSE', mode: 1, ltp: 1234.5, ltt: 1767000000000, timestamp: 1767000000123 };
    const quote = {
      symbol: 'NIFTY', exchange: 'NSE_INDEX', mode: 2, ltp: 24567.85, ltt: 1767000000000, timestamp: 1767000000456,
      volume: 0, price_change: 0, price_change_percent: 0, open: 24500.1, high: 24600.2, low: 24400.3, close: 24480.4,
    };
    const niftyLtp = { symbol: 'NIFTY', exchange: 'NSE_INDEX', mode: 1, ltp: 1.25, timestamp: 1 };
    const invalidBefore = gw.gateway.busListener.counters.invalid;

    const sent = await publish(gw.busEndpoint, [
      { frames: ['NSE_RELIANCE_LTP', '{"ltp": 1}', 'third frame'] },
      { topic: 'FOO', data: { ltp: 2 } },
      { frames: ['NSE_RELIANCE_LTP', 'not json'] },
      // An LTP topic does not reach a client subscribed only at Quote (spec §2.10).
      { topic: 'NSE_INDEX_NIFTY_LTP', data: niftyLtp },
      { topic: 'NSE_RELIANCE_LTP', data: ltp },
      { topic: 'NSE_INDEX_NIFTY_QUOTE', data: quote },
    ]);
    const ltpText = sent[4]![1]!;
    const quoteText = sent[5]![1]!;
    expect(ltpText).toContain('1234.5');

    const reliance = await client.marketData('RELIANCE', 'NSE');
    const nifty = await client.marketData('NIFTY', 'NSE_INDEX');
    expect(reliance).toStrictEqual({ type: 'market_data', symbol: 'RELIANCE', exchange: 'NSE', mode: 1, data: ltp, broker: 'zerodha' });
    expect(nifty).toStrictEqual({ type: 'market_data', symbol: 'NIFTY', exchange: 'NSE_INDEX', mode: 2, data: quote, broker: 'zerodha' });

    // The payload bytes are passed through untouched (Python's json.dumps spacing included).
    const frames = client.raw.filter((text) => text.includes('"market_data"'));
    expect(frames.some((text) => text.includes(ltpText))).toBe(true);
    expect(frames.some((text) => text.includes(quoteText))).toBe(true);

    // Nothing else was delivered: not the bad payload, not the 3-frame message, not NIFTY's LTP.
    const ticks = [reliance, nifty, ...client.messages.filter((m) => m.type === 'market_data')];
    for (const tick of ticks) {
      if (tick.symbol === 'RELIANCE') expect(tick.data).toStrictEqual(ltp);
      else expect(tick).toMatchObject({ symbol: 'NIFTY', mode: 2, data: quote });
    }
    // The good message of a round arrived, so that round's three bad ones were seen before it.
    expect(gw.gateway.busListener.counters.invalid - invalidBefore).toBeGreaterThanOrEqual(3);
    await client.close();
  });

  it('relays {BROKER}_{user}_orders verbatim to that user\'s order subscribers only', async () => {
    const bobKey = await gw.createKey('bob', 'zerodha');
    const alice = await TestClient.authenticated(gw.url, key);
    const aliceQuiet = await TestClient.authenticated(gw.url, key); // never asks for order updates
    const bob = await TestClient.authenticated(gw.url, bobKey);
    for (const client of [alice, bob]) {
      expect(await client.request({ action: 'subscribe_orders' })).toMatchObject({ type: 'subscribe_orders', status: 'success' });
    }

    const order = (user: string, orderid: string): Record<string, unknown> => ({
      type: 'order_update', user_id: user, mode: 'live', broker: 'zerodha', orderid, symbol: 'RELIANCE',
      exchange: 'NSE', action: 'BUY', quantity: 10, price: 1424.0, trigger_price: 0, pricetype: 'LIMIT', product: 'MIS',
      order_status: 'complete', filled_quantity: 10, pending_quantity: 0, average_price: 1423.85, rejection_reason: '',
    });
    const sent = await publish(gw.busEndpoint, [
      { topic: 'ZERODHA_alice_orders', data: order('alice', 'A-1') },
      { topic: 'ZERODHA_bob_orders', data: order('bob', 'B-1') },
    ]);
    const aliceText = sent[0]![1]!;
    const bobText = sent[1]![1]!;

    const isOrder = (m: Message): boolean => m.type === 'order_update';
    expect(await alice.next(isOrder)).toStrictEqual(JSON.parse(aliceText));
    expect(await bob.next(isOrder)).toStrictEqual(JSON.parse(bobText));
    // Barriers: a reply on the same socket is written after any order update already sent to it.
    for (const client of [alice, aliceQuiet, bob]) await client.request({ action: 'ping' });

    const orderFrames = (client: TestClient): string[] => client.raw.filter((text) => text.includes('"order_update"'));
    expect(orderFrames(alice).length).toBeGreaterThanOrEqual(1);
    for (const text of orderFrames(alice)) expect(text).toBe(aliceText);
    expect(orderFrames(bob).length).toBeGreaterThanOrEqual(1);
    for (const text of orderFrames(bob)) expect(text).toBe(bobText);
    expect(orderFrames(aliceQuiet)).toEqual([]);

    // After unsubscribe_orders, nothing more arrives.
    await alice.request({ action: 'unsubscribe_orders' });
    const before = orderFrames(alice).length;
    await publish(gw.busEndpoint, [
      { topic: 'ZERODHA_alice_orders', data: order('alice', 'A-2') },
      { topic: 'ZERODHA_bob_orders', data: order('bob', 'B-2') },
    ]);
    expect((await bob.next((m) => isOrder(m) && m.orderid === 'B-2')).user_id).toBe('bob');
    await alice.request({ action: 'ping' });
    expect(orderFrames(alice).length).toBe(before);

    await Promise.all([alice.close(), aliceQuiet.close(), bob.close()]);
  });
});
