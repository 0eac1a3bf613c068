/**
 * The client protocol end to end: a real gateway with the simulator, driven over real
 * WebSockets, checked against OpenAlgo's behaviour (spec §2, §7).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestClient, sleep, waitFor } from '../helpers/client.js';
import { type TestInstance, startTestInstance } from '../helpers/instance.js';

let gw: TestInstance;
let key: string;
let otherKey: string;

beforeAll(async () => {
  gw = await startTestInstance({ VALID_BROKERS: 'zerodha, angel ,simulator' });
  key = await gw.createKey('alice');
  otherKey = await gw.createKey('bob');
});
afterAll(() => gw.stop());

describe('authenticate', () => {
  it('succeeds with the OpenAlgo reply shape', async () => {
    const client = await TestClient.connect(gw.url);
    const reply = await client.request({ action: 'authenticate', api_key: key });
    expect(reply).toStrictEqual({
      type: 'auth',
      status: 'success',
      message: 'Authentication successful',
      broker: 'simulator',
      user_id: 'alice',
      supported_features: { ltp: true, quote: true, depth: true },
    });
    await client.close();
  });

  it('accepts the auth and apikey aliases and the type field', async () => {
    for (const request of [
      { action: 'auth', api_key: key },
      { action: 'authenticate', apikey: key },
      { type: 'authenticate', api_key: key },
    ]) {
      const client = await TestClient.connect(gw.url);
      expect(await client.request(request)).toMatchObject({ type: 'auth', status: 'success', user_id: 'alice' });
      await client.close();
    }
  });

  it('refuses a missing or wrong key with the error envelope and keeps the connection', async () => {
    const client = await TestClient.connect(gw.url);
    expect(await client.request({ action: 'authenticate' })).toStrictEqual({
      status: 'error',
      code: 'AUTHENTICATION_ERROR',
      message: 'API key is required',
    });
    for (const wrong of ['0'.repeat(64), 12345, ['x'], { k: 1 }]) {
      expect(await client.request({ action: 'authenticate', api_key: wrong })).toStrictEqual({
        status: 'error',
        code: 'AUTHENTICATION_ERROR',
        message: 'Invalid API key',
      });
    }
    // Still usable: a later correct key authenticates on the same socket.
    expect(await client.request({ action: 'authenticate', api_key: key })).toMatchObject({ status: 'success' });
    await client.close();
  });

  it('answers a cached key quickly (well within the SDK 5 s budget)', async () => {
    const client = await TestClient.connect(gw.url);
    const started = performance.now();
    await client.request({ action: 'authenticate', api_key: key });
    expect(performance.now() - started).toBeLessThan(5000);
    await client.close();
  });
});

describe('requests before authentication', () => {
  it('refuses protected actions with NOT_AUTHENTICATED', async () => {
    const client = await TestClient.connect(gw.url);
    for (const action of ['subscribe', 'unsubscribe', 'unsubscribe_all', 'subscribe_orders', 'unsubscribe_orders', 'get_broker_info']) {
      // An invalid mode is still NOT_AUTHENTICATED: auth is checked first.
      expect(await client.request({ action, symbols: [{ symbol: 'TCS', exchange: 'NSE' }], mode: 9 })).toStrictEqual({
        status: 'error',
        code: 'NOT_AUTHENTICATED',
        message: 'You must authenticate first',
      });
    }
    await client.close();
  });

  it('serves ping and get_supported_brokers without auth', async () => {
    const client = await TestClient.connect(gw.url);
    const before = Date.now();
    const pong = await client.request({ action: 'ping', timestamp: 123, _pingId: 'p-1' });
    expect(pong).toMatchObject({ type: 'pong', status: 'success', client_timestamp: 123, _pingId: 'p-1' });
    expect(pong.server_timestamp).toBeGreaterThanOrEqual(before);
    expect(Number.isInteger(pong.server_timestamp)).toBe(true);
    expect(await client.request({ action: 'ping' })).toStrictEqual({ type: 'pong', status: 'success', server_timestamp: expect.any(Number) });
    expect(await client.request({ action: 'get_supported_brokers' })).toStrictEqual({
      type: 'supported_brokers',
      status: 'success',
      brokers: ['zerodha', 'angel', 'simulator'],
      count: 3,
    });
    await client.close();
  });
});

describe('bad input', () => {
  it('answers each bad frame with its error and stays usable', async () => {
    const client = await TestClient.authenticated(gw.url, key);
    const cases: Array<[unknown, object]> = [
      ['not json{', { status: 'error', code: 'INVALID_JSON', message: 'Invalid JSON message' }],
      ['[1,2]', { status: 'error', code: 'SERVER_ERROR', message: "'list' object has no attribute 'get'" }],
      ['"hello"', { status: 'error', code: 'SERVER_ERROR', message: "'str' object has no attribute 'get'" }],
      ['null', { status: 'error', code: 'SERVER_ERROR', message: "'NoneType' object has no attribute 'get'" }],
      [{}, { status: 'error', code: 'INVALID_ACTION', message: 'Invalid action: None' }],
      [{ action: 'explode' }, { status: 'error', code: 'INVALID_ACTION', message: 'Invalid action: explode' }],
      [{ action: 42 }, { status: 'error', code: 'INVALID_ACTION', message: 'Invalid action: 42' }],
      [{ action: 'subscribe', symbols: [{ symbol: 'TCS', exchange: 'NSE' }], mode: 4 }, { status: 'error', code: 'INVALID_MODE', message: 'Invalid mode 4; expected 1 (LTP), 2 (Quote), or 3 (Depth)' }],
      ['{"action":"subscribe","symbols":[{"symbol":"TCS","exchange":"NSE"}],"mode":2.0}', { status: 'error', code: 'INVALID_MODE', message: 'Mode must be int or str, got float' }],
      [{ action: 'subscribe', symbols: [{ symbol: 'TCS', exchange: 'NSE' }], mode: 'full' }, { status: 'error', code: 'INVALID_MODE', message: "Invalid mode 'full'; expected 'LTP', 'Quote', or 'Depth' (case-insensitive)" }],
      [{ action: 'subscribe', symbols: [{ symbol: 'TCS', exchange: 'NSE' }], mode: true }, { status: 'error', code: 'INVALID_MODE', message: 'Mode must be int or str, got bool' }],
      [{ action: 'subscribe' }, { status: 'error', code: 'INVALID_PARAMETERS', message: 'At least one symbol must be specified' }],
      [{ action: 'subscribe', instruments: [{ symbol: 'TCS', exchange: 'NSE' }] }, { status: 'error', code: 'INVALID_PARAMETERS', message: 'At least one symbol must be specified' }],
      [{ action: 'subscribe', symbols: 'TCS' }, { status: 'error', code: 'INVALID_PARAMETERS', message: 'symbols must be a list of {"symbol", "exchange"} objects' }],
      [{ action: 'unsubscribe' }, { status: 'error', code: 'INVALID_PARAMETERS', message: 'Either symbols or unsubscribe_all is required' }],
      [{ action: 'unsubscribe', symbol: 'TCS', exchange: 'NSE', mode: 0 }, { status: 'error', code: 'INVALID_MODE', message: 'Invalid mode 0; expected 1 (LTP), 2 (Quote), or 3 (Depth)' }],
    ];
    for (const [frame, reply] of cases) {
      expect(await client.request(frame), JSON.stringify(frame)).toStrictEqual(reply);
    }
    expect(await client.request({ action: 'ping' })).toMatchObject({ type: 'pong' });
    await client.close();
  });

  it('answers a frame over the message limit with MESSAGE_TOO_LARGE and keeps the connection', async () => {
    const client = await TestClient.authenticated(gw.url, key);
    const big = JSON.stringify({ action: 'subscribe', symbols: [{ symbol: 'X'.repeat(70_000), exchange: 'NSE' }] });
    const reply = await client.request(big);
    expect(reply).toMatchObject({ status: 'error', code: 'MESSAGE_TOO_LARGE' });
    expect(reply.message).toContain('65536');
    expect(await client.request({ action: 'ping' })).toMatchObject({ type: 'pong' });
    await client.close();
  });

  it('closes with 1009 on a frame over the hard limit; the gateway keeps serving', async () => {
    const client = await TestClient.authenticated(gw.url, key);
    client.send('x'.repeat(1_100_000));
    expect((await client.closed).code).toBe(1009);
    const next = await TestClient.authenticated(gw.url, key);
    expect(await next.request({ action: 'ping' })).toMatchObject({ type: 'pong' });
    await next.close();
  });

  it('reports wrong-typed symbols per item', async () => {
    const client = await TestClient.authenticated(gw.url, key);
    const reply = await client.request({ action: 'subscribe', symbols: [{ symbol: 7, exchange: 'NSE' }, { symbol: 'TCS', exchange: 'NSE' }], mode: 1 });
    expect(reply.status).toBe('partial');
    expect(reply.subscriptions).toStrictEqual([
      { symbol: 7, exchange: 'NSE', status: 'error', message: 'symbol and exchange must be strings', broker: 'simulator' },
      { symbol: 'TCS', exchange: 'NSE', status: 'success', mode: 'LTP', depth: 5, broker: 'simulator' },
    ]);
    await client.close();
  });
});

describe('subscribe and market data', () => {
  it('single-symbol form, echoing the label and request_id', async () => {
    const client = await TestClient.authenticated(gw.url, key);
    const reply = await client.request({ action: 'subscribe', symbol: 'RELIANCE', exchange: 'NSE', mode: 1, depth: 5, request_id: 'req-1' });
    expect(reply).toStrictEqual({
      type: 'subscribe',
      status: 'success',
      subscriptions: [{ symbol: 'RELIANCE', exchange: 'NSE', status: 'success', mode: 'LTP', depth: 5, broker: 'simulator' }],
      message: 'Subscription processing complete',
      broker: 'simulator',
      request_id: 'req-1',
    });
    const tick = await client.marketData('RELIANCE', 'NSE');
    expect(tick).toMatchObject({ type: 'market_data', symbol: 'RELIANCE', exchange: 'NSE', mode: 1, broker: 'simulator' });
    expect(Object.keys(tick)).toEqual(['type', 'symbol', 'exchange', 'mode', 'data', 'broker']);
    expect(typeof tick.data.ltp).toBe('number');
    expect(typeof tick.data.timestamp).toBe('number');
    await client.close();
  });

  it('bulk form with partial failure; unknown symbols get the per-symbol error', async () => {
    const client = await TestClient.authenticated(gw.url, key);
    const reply = await client.request({
      action: 'subscribe',
      symbols: [
        { symbol: 'INFY', exchange: 'NSE' },
        { symbol: 'NOSUCH', exchange: 'NSE' },
        { symbol: 'NIFTY', exchange: 'NSE_INDEX' },
        { symbol: 'skipped' },
      ],
      mode: 'Quote',
    });
    expect(reply.status).toBe('partial');
    expect(reply.subscriptions).toStrictEqual([
      { symbol: 'INFY', exchange: 'NSE', status: 'success', mode: 'Quote', depth: 5, broker: 'simulator' },
      { symbol: 'NOSUCH', exchange: 'NSE', status: 'error', message: 'Token not found for NOSUCH on NSE', broker: 'simulator' },
      { symbol: 'NIFTY', exchange: 'NSE_INDEX', status: 'success', mode: 'Quote', depth: 5, broker: 'simulator' },
    ]);
    const allFailed = await client.request({ action: 'subscribe', symbols: [{ symbol: 'NOPE', exchange: 'NSE' }] });
    expect(allFailed.status).toBe('partial');
    await client.close();
  });

  it('delivers each mode with its payload fields', async () => {
    const client = await TestClient.authenticated(gw.url, key);
    await client.request({ action: 'subscribe', symbols: [{ symbol: 'TCS', exchange: 'NSE' }], mode: 'LTP' });
    await client.request({ action: 'subscribe', symbols: [{ symbol: 'SBIN', exchange: 'NSE' }], mode: 'Quote' });
    await client.request({ action: 'subscribe', symbols: [{ symbol: 'HDFCBANK', exchange: 'NSE' }], mode: 'Depth' });
    const ltp = await client.marketData('TCS');
    expect(ltp.mode).toBe(1);
    expect(Object.keys(ltp.data).sort()).toEqual(['exchange', 'ltp', 'ltt', 'mode', 'symbol', 'timestamp']);
    const quote = await client.marketData('SBIN');
    expect(quote.mode).toBe(2);
    for (const field of ['ltp', 'open', 'high', 'low', 'close', 'volume', 'last_quantity', 'average_price', 'total_buy_quantity', 'total_sell_quantity']) {
      expect(quote.data, field).toHaveProperty(field);
    }
    expect(quote.data).not.toHaveProperty('depth');
    const depth = await client.marketData('HDFCBANK');
    expect(depth.mode).toBe(3);
    expect(depth.data.depth.buy).toHaveLength(5);
    expect(depth.data.depth.sell).toHaveLength(5);
    expect(depth.data.depth.buy[0]).toStrictEqual({ price: expect.any(Number), quantity: expect.any(Number), orders: expect.any(Number) });
    await client.close();
  });

  it('serves lower-mode subscribers from higher-mode ticks, each with its own mode and fields', async () => {
    const low = await TestClient.authenticated(gw.url, key);
    const high = await TestClient.authenticated(gw.url, otherKey);
    await low.request({ action: 'subscribe', symbols: [{ symbol: 'ITC', exchange: 'NSE' }], mode: 1 });
    await high.request({ action: 'subscribe', symbols: [{ symbol: 'ITC', exchange: 'NSE' }], mode: 3 });
    expect(gw.gateway.upstream.mode('simulator', 'NSE', 'ITC')).toBe(3);
    const seenByHigh = await high.next((m) => m.type === 'market_data' && m.symbol === 'ITC' && 'depth' in m.data);
    expect(seenByHigh.mode).toBe(3);
    // The LTP subscriber gets the same tick as an LTP message: LTP fields, not the book.
    const seenByLow = await low.next((m) => m.type === 'market_data' && m.symbol === 'ITC' && m.data.timestamp === seenByHigh.data.timestamp);
    expect(seenByLow).toMatchObject({ mode: 1, data: { mode: 'ltp', ltp: seenByHigh.data.ltp } });
    expect(Object.keys(seenByLow.data).sort()).toEqual(['exchange', 'ltp', 'ltt', 'mode', 'symbol', 'timestamp']);
    // When the Depth subscriber leaves, upstream is downgraded to what is still wanted.
    await high.close();
    await waitFor(() => gw.gateway.upstream.mode('simulator', 'NSE', 'ITC') === 1);
    await low.close();
  });

  it('re-authenticating as another user drops the old subscriptions', async () => {
    const client = await TestClient.authenticated(gw.url, key);
    await client.request({ action: 'subscribe', symbols: [{ symbol: 'WIPRO', exchange: 'NSE' }], mode: 1 });
    expect(gw.gateway.upstream.mode('simulator', 'NSE', 'WIPRO')).toBe(1);
    expect(await client.request({ action: 'authenticate', api_key: otherKey })).toMatchObject({ user_id: 'bob' });
    await waitFor(() => gw.gateway.upstream.mode('simulator', 'NSE', 'WIPRO') === 0);
    await client.close();
  });
});

describe('unsubscribe', () => {
  it('per-item modes, the single form, the top-level mode fallback, and no-ops', async () => {
    const client = await TestClient.authenticated(gw.url, key);
    const symbols = [
      { symbol: 'LT', exchange: 'NSE' },
      { symbol: 'AXISBANK', exchange: 'NSE' },
    ];
    await client.request({ action: 'subscribe', symbols, mode: 'LTP' });
    await client.request({ action: 'subscribe', symbols, mode: 'Depth' });

    // Per-item mode.
    let reply = await client.request({ action: 'unsubscribe', symbols: [{ symbol: 'LT', exchange: 'NSE', mode: 3 }], request_id: 9 });
    expect(reply).toStrictEqual({
      type: 'unsubscribe',
      status: 'success',
      message: 'Unsubscription processing complete',
      successful: [{ symbol: 'LT', exchange: 'NSE', status: 'success', broker: 'simulator' }],
      failed: [],
      broker: 'simulator',
      request_id: 9,
    });
    await waitFor(() => gw.gateway.upstream.mode('simulator', 'NSE', 'LT') === 1);

    // Top-level mode used when items carry none (OpenAlgo would have read Quote and done nothing).
    await client.request({ action: 'unsubscribe', symbols: [{ symbol: 'AXISBANK', exchange: 'NSE' }], mode: 'Depth' });
    await waitFor(() => gw.gateway.upstream.mode('simulator', 'NSE', 'AXISBANK') === 1);

    // Single form.
    reply = await client.request({ action: 'unsubscribe', symbol: 'LT', exchange: 'NSE', mode: 1 });
    expect(reply.status).toBe('success');
    await waitFor(() => gw.gateway.upstream.mode('simulator', 'NSE', 'LT') === 0);

    // A stream never held is reported as success; an invalid item mode fails that item only.
    reply = await client.request({
      action: 'unsubscribe',
      symbols: [
        { symbol: 'NEVER', exchange: 'NSE', mode: 1 },
        { symbol: 'AXISBANK', exchange: 'NSE', mode: 'bogus' },
      ],
    });
    expect(reply.status).toBe('partial');
    expect(reply.successful).toEqual([{ symbol: 'NEVER', exchange: 'NSE', status: 'success', broker: 'simulator' }]);
    expect(reply.failed).toEqual([
      { symbol: 'AXISBANK', exchange: 'NSE', status: 'error', message: "Invalid mode 'bogus'; expected 'LTP', 'Quote', or 'Depth' (case-insensitive)", broker: 'simulator' },
    ]);
    reply = await client.request({ action: 'unsubscribe', symbols: [{ symbol: 'AXISBANK', exchange: 'NSE', mode: 'bogus' }] });
    expect(reply.status).toBe('error');

    // After the last mode goes, no more ticks for it.
    await client.request({ action: 'unsubscribe', symbols: [{ symbol: 'AXISBANK', exchange: 'NSE', mode: 1 }] });
    await waitFor(() => gw.gateway.upstream.mode('simulator', 'NSE', 'AXISBANK') === 0);
    await sleep(150);
    client.drain();
    await sleep(300);
    expect(client.messages.filter((m) => m.type === 'market_data')).toEqual([]);
    await client.close();
  });

  it.each([{ action: 'unsubscribe_all' }, { type: 'unsubscribe_all' }, { action: 'unsubscribe', type: 'unsubscribe_all' }])('%j clears everything', async (request) => {
    const client = await TestClient.authenticated(gw.url, key);
    await client.request({ action: 'subscribe', symbols: [{ symbol: 'MARUTI', exchange: 'NSE' }, { symbol: 'BANKNIFTY', exchange: 'NSE_INDEX' }], mode: 2 });
    await client.request({ action: 'subscribe', symbols: [{ symbol: 'MARUTI', exchange: 'NSE' }], mode: 1 });
    const reply = await client.request(request);
    expect(reply).toMatchObject({ type: 'unsubscribe', status: 'success', failed: [] });
    expect(reply.successful).toHaveLength(3);
    await waitFor(() => gw.gateway.upstream.mode('simulator', 'NSE', 'MARUTI') === 0 && gw.gateway.upstream.mode('simulator', 'NSE_INDEX', 'BANKNIFTY') === 0);
    await client.close();
  });

  it('a disconnect releases everything the client held upstream', async () => {
    const client = await TestClient.authenticated(gw.url, key);
    await client.request({ action: 'subscribe', symbols: [{ symbol: 'TITAN', exchange: 'NSE' }, { symbol: 'SENSEX', exchange: 'BSE_INDEX' }], mode: 3 });
    expect(gw.gateway.upstream.mode('simulator', 'NSE', 'TITAN')).toBe(3);
    await client.marketData('TITAN');
    await client.close();
    await waitFor(() => gw.gateway.upstream.mode('simulator', 'NSE', 'TITAN') === 0 && gw.gateway.upstream.mode('simulator', 'BSE_INDEX', 'SENSEX') === 0);
  });
});

describe('account actions', () => {
  it('get_broker_info and order-update subscriptions', async () => {
    const client = await TestClient.authenticated(gw.url, key);
    expect(await client.request({ action: 'get_broker_info' })).toStrictEqual({
      type: 'broker_info',
      status: 'success',
      broker: 'simulator',
      adapter_status: 'connected',
      user_id: 'alice',
    });
    expect(await client.request({ action: 'subscribe_orders', request_id: 'o' })).toStrictEqual({
      type: 'subscribe_orders',
      status: 'success',
      message: 'Subscribed to order updates',
      request_id: 'o',
    });
    expect(await client.request({ action: 'unsubscribe_orders' })).toStrictEqual({
      type: 'unsubscribe_orders',
      status: 'success',
      message: 'Unsubscribed from order updates',
    });
    await client.close();
  });
});
