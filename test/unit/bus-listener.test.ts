import { describe, expect, it } from 'vitest';
import { BusListener } from '../../src/gateway/bus-listener.js';
import type { FanOut, TickRoute } from '../../src/gateway/fan-out.js';
import { silentLogger } from '../../src/observability/logger.js';

function listener() {
  const ticks: Array<[TickRoute, string]> = [];
  const orders: Array<[string, string]> = [];
  const invalidations: Array<[string, string]> = [];
  const bus = new BusListener({
    fanOut: { deliver: (route: TickRoute, payload: string) => void ticks.push([route, payload]) } as unknown as FanOut,
    logger: silentLogger(),
    onOrderUpdate: (user, payload) => void orders.push([user, payload]),
    onCacheInvalidate: (user, type) => void invalidations.push([user, type]),
  });
  return { bus, ticks, orders, invalidations };
}

describe('BusListener', () => {
  it('routes ticks, order updates and cache invalidations; skips positions feeds', () => {
    const { bus, ticks, orders, invalidations } = listener();
    bus.handle('NSE_INDEX_NIFTY_QUOTE', '{"ltp": 24000.0}');
    bus.handle('simulator|NSE_TCS_LTP', '{"ltp":1}', true);
    bus.handle('ZERODHA_alice_orders', '{"user_id":"alice","orderid":"1"}');
    bus.handle('CACHE_INVALIDATE_AUTH_alice', '{"action":"invalidate","user_id":"alice","cache_type":"AUTH"}');
    bus.handle('deltaexchange_positions', '{}');
    expect(ticks.map(([route, payload]) => [route.feed, route.exchange, route.symbol, route.mode, payload])).toEqual([
      ['', 'NSE_INDEX', 'NIFTY', 2, '{"ltp": 24000.0}'],
      ['simulator', 'NSE', 'TCS', 1, '{"ltp":1}'],
    ]);
    expect(orders).toEqual([['alice', '{"user_id":"alice","orderid":"1"}']]);
    expect(invalidations).toEqual([['alice', 'AUTH']]);
    expect(bus.counters).toMatchObject({ messages: 5, ticks: 2, orderUpdates: 1, cacheInvalidations: 1, ignored: 1, invalid: 0 });
  });

  it('routes analyzer-mode order updates (ANALYZE_<user>_orders) like live ones: to the payload\'s user_id, verbatim', () => {
    const { bus, ticks, orders } = listener();
    const analyze = '{"type": "order_update", "user_id": "alice", "mode": "analyze", "broker": "zerodha", "orderid": "SB-1"}';
    bus.handle('ANALYZE_alice_orders', analyze);
    // A user name with underscores: the user is never parsed out of the topic.
    bus.handle('ANALYZE_john_doe_orders', '{"user_id":"john_doe","mode":"analyze"}');
    // The payload decides, as in OpenAlgo's _handle_order_update.
    bus.handle('ANALYZE_bob_orders', '{"user_id":"alice","mode":"analyze","orderid":"SB-2"}');
    bus.handle('ANALYZE_carol_orders', '{"mode":"analyze"}');
    expect(orders).toEqual([
      ['alice', analyze],
      ['john_doe', '{"user_id":"john_doe","mode":"analyze"}'],
      ['alice', '{"user_id":"alice","mode":"analyze","orderid":"SB-2"}'],
    ]);
    expect(ticks).toEqual([]);
    expect(bus.counters).toMatchObject({ orderUpdates: 3, invalid: 1, ticks: 0 });
  });

  it('keeps a deep-book suffix in a tick\'s symbol', () => {
    const { bus, ticks } = listener();
    bus.handle('NSE_RELIANCE:20_DEPTH', '{"ltp": 1418.5}');
    expect(ticks.map(([route]) => [route.feed, route.exchange, route.symbol, route.mode])).toEqual([['', 'NSE', 'RELIANCE:20', 3]]);
  });

  it('counts and skips every malformed message, and keeps going', () => {
    const { bus, ticks } = listener();
    bus.handle('NSE_TCS_LTP', 'not json');
    bus.handle('NSE_TCS_LTP', '[1,2]');
    bus.handle('NSE_TCS_LTP', '{"ltp":');
    bus.handle('FOO', '{}');
    bus.handle('NSE_TCS_FULL', '{}');
    bus.handle('ZERODHA_bob_orders', '{"no_user":1}');
    bus.handle('CACHE_INVALIDATE_ALL_x', 'nope');
    // Batched entries (tickcast's own publishers) get a structural check only.
    bus.handle('sim|NSE_TCS_LTP', 'garbage', true);
    bus.handle('NSE_TCS_LTP', '{"ltp":2}');
    expect(bus.counters.invalid).toBe(8);
    expect(ticks).toHaveLength(1);
  });
});
