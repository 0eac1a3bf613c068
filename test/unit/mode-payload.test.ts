import { describe, expect, it } from 'vitest';
import type { BrokerTick } from '../../src/adapters/broker.js';
import { angelPayload } from '../../src/adapters/angel/payload.js';
import { DEFAULT_INSTRUMENTS } from '../../src/adapters/simulator/instruments.js';
import { SimulatedMarket, createRng } from '../../src/adapters/simulator/market.js';
import { kitePayload } from '../../src/adapters/zerodha/payload.js';
import type { Mode } from '../../src/protocol/modes.js';
import { projectPayload } from '../../src/protocol/mode-payload.js';

const NOW = 1_718_178_370_123;

const level = (price: number, quantity: number, orders: number) => ({ price, quantity, orders });

function brokerTick(broker: 'zerodha' | 'angel', overrides: Partial<BrokerTick> = {}): BrokerTick {
  return {
    broker,
    token: '2885',
    exchange: 'NSE',
    mode: 'full',
    isIndex: false,
    ltp: 2950.55,
    lastQuantity: 12,
    averagePrice: 2948.1,
    volume: 1_234_567,
    totalBuyQuantity: 50_000,
    totalSellQuantity: 61_000,
    open: 2930,
    high: 2961.2,
    low: 2921.15,
    close: 2921.15,
    oi: 0,
    upperCircuit: 3213.25,
    lowerCircuit: 2629.05,
    exchangeTimestamp: NOW - 40,
    lastTradeTime: NOW - 90,
    depth: {
      buy: [level(2950.5, 10, 2), level(2950.45, 7, 1)],
      sell: [level(2950.6, 3, 1), level(2950.65, 30, 4), level(2950.7, 1, 1)],
    },
    ...overrides,
  };
}

describe('projectPayload: a lower mode carries exactly what its own tick would', () => {
  const lower: Array<[Mode, Mode]> = [[3, 1], [3, 2], [2, 1]];

  it.each(lower)('Zerodha %i → %i, equity and index, text for text', (from, to) => {
    for (const tick of [brokerTick('zerodha'), brokerTick('zerodha', { isIndex: true, exchange: 'NSE_INDEX', depth: undefined }), brokerTick('zerodha', { close: undefined, oi: 1200 })]) {
      const high = kitePayload(tick, 'RELIANCE', 'NSE', from, NOW);
      expect(projectPayload(high, from, to, 'zerodha')).toBe(kitePayload(tick, 'RELIANCE', 'NSE', to, NOW));
    }
  });

  it.each(lower)('Angel %i → %i (its Depth-only oi and circuits left out of Quote), text for text', (from, to) => {
    const tick = brokerTick('angel', { oi: 4500 });
    const high = angelPayload(tick, 'RELIANCE', 'NSE', from, NOW);
    expect(projectPayload(high, from, to, 'angel')).toBe(angelPayload(tick, 'RELIANCE', 'NSE', to, NOW));
  });

  it('the simulator, for every instrument and many steps', () => {
    const market = new SimulatedMarket({ instruments: DEFAULT_INSTRUMENTS, rng: createRng(7), now: () => NOW });
    for (let step = 0; step < 20; step++) {
      for (const { exchange, symbol } of DEFAULT_INSTRUMENTS) {
        market.step(exchange, symbol);
        const depth = market.payload(exchange, symbol, 3, NOW);
        const quote = market.payload(exchange, symbol, 2, NOW);
        const ltp = market.payload(exchange, symbol, 1, NOW);
        expect(projectPayload(depth, 3, 2, 'simulator')).toBe(quote);
        expect(projectPayload(depth, 3, 1, 'simulator')).toBe(ltp);
        expect(projectPayload(quote, 2, 1, 'simulator')).toBe(ltp);
      }
    }
  });

  it("keeps another publisher's spelling and order, and rewrites its inner mode in its own style", () => {
    const payload = '{ "token":"2885" , "ltp" : 1418.0, "volume": 10, "mode": 3, "depth": {"buy": [{"price": 1.0}], "sell": []}, "symbol": "A,}B" }';
    expect(projectPayload(payload, 3, 1, 'fyers')).toBe('{"token":"2885","ltp":1418.0,"mode":1,"symbol":"A,}B"}');
    expect(projectPayload(payload, 3, 2, 'fyers')).toBe('{"token":"2885","ltp":1418.0,"volume":10,"mode":2,"symbol":"A,}B"}');
    expect(projectPayload('{"mode":"depth","ltp":1.5}', 3, 2, 'x')).toBe('{"mode":"quote","ltp":1.5}');
    expect(projectPayload('{"mode":"custom","ltp":1.5}', 3, 1, 'x')).toBe('{"mode":"custom","ltp":1.5}');
  });

  it('has no projection for what is not an object, or an LTP without a price', () => {
    for (const text of ['', '[]', '{', '{"ltp":1', '{"ltp":}', '{"ltp":1}x', '{"ltp" 1}', '{ltp:1}', '{"a":"unterminated}', '{"ltp":1,}']) {
      expect(projectPayload(text, 3, 1, 'zerodha'), text).toBeUndefined();
    }
    expect(projectPayload('{"last_price":1418.5,"depth":{}}', 3, 1, 'fyers')).toBeUndefined();
    expect(projectPayload('{"last_price":1418.5,"depth":{}}', 3, 2, 'fyers')).toBe('{"last_price":1418.5}');
  });
});
