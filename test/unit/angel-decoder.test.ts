import { describe, it, expect } from 'vitest';
import { buildAngelRequests, type UpstreamEntry } from '../../src/adapters/angel/angel-adapter.js';
import {
  ANGEL_EXCHANGES,
  ANGEL_PACKET_LENGTH,
  decodeAngelBinary,
  decodeAngelText,
  type AngelDecoded,
} from '../../src/adapters/angel/decoder.js';
import type { BrokerTick } from '../../src/adapters/broker.js';
import { scaleDecimal } from '../../src/adapters/decimal.js';
import { encodeAngelPacket, loadAngelVectors, vectorFrame, type AngelVector } from '../helpers/fake-angel.js';

const vectors = loadAngelVectors();

function tickOf(decoded: AngelDecoded): Extract<AngelDecoded, { kind: 'tick' }> {
  if (decoded.kind !== 'tick') throw new Error(`expected a tick, got ${JSON.stringify(decoded)}`);
  return decoded;
}

/** The decimal price of a raw wire integer: one correctly rounded division is the nearest double. */
function price(raw: number, exchangeType: number): number {
  return raw / 10 ** ANGEL_EXCHANGES.get(exchangeType)!.priceDecimals;
}

/** Optional price: zero on the wire means none. */
function optionalPrice(raw: number, exchangeType: number): number | undefined {
  return raw === 0 ? undefined : price(raw, exchangeType);
}

/** Checks one server→client binary vector against its `input` and the official `decoded`. */
function checkBinaryVector(vector: AngelVector): void {
  const { input, decoded: py } = vector;
  const result = tickOf(decodeAngelBinary(Buffer.from(vector.hex!, 'hex')));
  const { tick } = result;
  const type = input.exchange_type as number;

  expect(result.packetMode).toBe(input.subscription_mode);
  expect(result.exchangeType).toBe(type);
  expect(tick.broker).toBe('angel');
  expect(tick.token).toBe(input.token);
  expect(tick.exchange).toBe(ANGEL_EXCHANGES.get(type)!.name);
  // The official decoder reads the same header.
  expect([py.subscription_mode, py.exchange_type, py.token]).toEqual([input.subscription_mode, type, input.token]);

  if (input.subscription_mode === 4) {
    checkDepth20(tick, input, py);
    return;
  }
  expect(tick.mode).toBe({ 1: 'ltp', 2: 'quote', 3: 'full' }[input.subscription_mode as 1 | 2 | 3]);
  expect(tick.sequence).toBe(input.sequence_number);
  expect(tick.sequence).toBe(py.sequence_number);
  expect(tick.exchangeTimestamp).toBe(input.exchange_timestamp);
  expect(tick.exchangeTimestamp).toBe(py.exchange_timestamp);
  expect(tick.ltp).toBe(price(input.last_traded_price, type));
  expect(py.last_traded_price).toBe(input.last_traded_price);
  if (input.subscription_mode === 1) return;

  // QUOTE fields: indices report zeros, which mean "not available" (spec §3.2).
  const index = input.volume_trade_for_the_day === 0 && input.last_traded_quantity === 0;
  expect(tick.isIndex).toBe(index);
  if (index) {
    for (const field of ['volume', 'lastQuantity', 'totalBuyQuantity', 'totalSellQuantity', 'averagePrice', 'oi'] as const) {
      expect(tick[field]).toBeUndefined();
    }
  } else {
    expect(tick.volume).toBe(input.volume_trade_for_the_day);
    expect(tick.lastQuantity).toBe(input.last_traded_quantity);
    expect(tick.totalBuyQuantity).toBe(Math.trunc(input.total_buy_quantity));
    expect(tick.totalSellQuantity).toBe(Math.trunc(input.total_sell_quantity));
    expect(tick.averagePrice).toBe(price(input.average_traded_price, type));
  }
  expect(py.total_buy_quantity).toBe(input.total_buy_quantity);
  expect(tick.open).toBe(optionalPrice(input.open_price_of_the_day, type));
  expect(tick.high).toBe(optionalPrice(input.high_price_of_the_day, type));
  expect(tick.low).toBe(optionalPrice(input.low_price_of_the_day, type));
  expect(tick.close).toBe(optionalPrice(input.closed_price, type));
  expect(py.closed_price).toBe(input.closed_price);
  if (input.subscription_mode === 2) return;

  // SNAP_QUOTE: last-trade time is seconds on the wire, ms here.
  expect(tick.lastTradeTime).toBe(input.last_traded_timestamp * 1000);
  expect(py.last_traded_timestamp).toBe(input.last_traded_timestamp);
  expect(tick.oi).toBe(input.open_interest);
  expect(tick.upperCircuit).toBe(price(input.upper_circuit_limit, type));
  expect(tick.lowerCircuit).toBe(price(input.lower_circuit_limit, type));
  expect(tick.high52w).toBe(price(input['52_week_high_price'], type));
  expect(tick.low52w).toBe(price(input['52_week_low_price'], type));
  // Best five by position: slots 0–4 (offset 147) buy, 5–9 (offset 247) sell.
  const slots = input.best_five_slots_147_347 as Array<{ quantity: number; price: number; orders: number }>;
  const level = (s: { quantity: number; price: number; orders: number }) => ({ price: price(s.price, type), quantity: s.quantity, orders: s.orders });
  expect(tick.depth!.buy).toEqual(slots.slice(0, 5).map(level));
  expect(tick.depth!.sell).toEqual(slots.slice(5).map(level));
  // The official client splits by flag; with a well-formed book that is the same split.
  const pyLevel = (l: any) => ({ price: price(l.price, type), quantity: l.quantity, orders: l['no of orders'] });
  expect(tick.depth!.buy).toEqual(py.best_5_buy_data.map(pyLevel));
  expect(tick.depth!.sell).toEqual(py.best_5_sell_data.map(pyLevel));
  expect(result.anomaly).toBeUndefined();
}

function checkDepth20(tick: BrokerTick, input: any, py: any): void {
  expect(tick.mode).toBe('depth20');
  expect(Number.isNaN(tick.ltp)).toBe(true); // DEPTH-20 carries no LTP
  // [27,35) is the exchange timestamp; the official client reports [35,43) under that name (§2.5).
  expect(tick.exchangeTimestamp).toBe(input['exchange_timestamp(27-35)']);
  expect(py.exchange_timestamp).toBe(input['packet_received_time(35-43)']);
  const level = (l: any) => ({ price: price(l.price, 1), quantity: l.quantity, orders: l.orders });
  expect(tick.depth!.buy).toEqual(input.buy.map(level));
  expect(tick.depth!.sell).toEqual(input.sell.map(level));
  expect(tick.depth!.buy).toEqual(py.depth_20_buy_data.map((l: any) => ({ price: price(l.price, 1), quantity: l.quantity, orders: l.num_of_orders })));
  expect(tick.depth!.sell).toHaveLength(20);
}

/** Our request builder rebuilds every request the official client sent (ids aside). */
function checkRequestVector(vector: AngelVector): void {
  const request = vector.decoded;
  const entries: UpstreamEntry[] = [];
  for (const group of request.params.tokenList) {
    for (const token of group.tokens) entries.push({ exchangeType: group.exchangeType, token, mode: request.params.mode });
  }
  const built = buildAngelRequests(request.action, entries, () => 'id1').map((text) => JSON.parse(text));
  const { correlationID: _id, ...rest } = request;
  expect(built).toEqual([{ correlationID: 'id1', ...rest }]);
}

describe('Angel decoder: every shared vector', () => {
  it('has the vectors', () => {
    expect(vectors.length).toBe(24);
  });

  for (const vector of vectors) {
    it(vector.name, () => {
      if (vector.frame === 'binary') {
        checkBinaryVector(vector);
      } else if (vector.direction === 'server->client') {
        expect(vector.text).toBe('pong');
        expect(decodeAngelText(vector.text!)).toEqual({ kind: 'pong' });
      } else if (vector.decoded) {
        checkRequestVector(vector);
      } else {
        // The official client raised (depth-20 on a non-NSE exchange type): tickcast never
        // subscribes depth-20 at all, so there is nothing to send.
        expect(vector.exception).toMatch(/ExchangeType/);
      }
    });
  }

  it('scales prices exactly, including negative, sub-rupee and 1e7 (CDE_FO) values', () => {
    const reliance = tickOf(decodeAngelBinary(vectorFrame(vectors, 'angel/ltp_nse_cm_reliance'))).tick;
    expect(reliance.ltp).toBe(2950.55);
    const usdinr = tickOf(decodeAngelBinary(vectorFrame(vectors, 'angel/ltp_cde_fo_usdinr_fut'))).tick;
    expect(usdinr.exchange).toBe('cde_fo');
    expect(usdinr.ltp).toBe(83.4525);
    expect(scaleDecimal(5, 2)).toBe(0.05);
    expect(scaleDecimal(-5, 2)).toBe(-0.05);
    expect(scaleDecimal(-150, 2)).toBe(-1.5);
    expect(scaleDecimal(0, 7)).toBe(0);
    expect(scaleDecimal(1, 7)).toBe(1e-7);
    expect(scaleDecimal(29505500000n, 7)).toBe(2950.55);
    expect(scaleDecimal(123, 0)).toBe(123);
    const negative = encodeAngelPacket({ mode: 1, exchangeType: 5, token: '430106', ltp: -3763, exchangeTimestamp: 1 });
    expect(tickOf(decodeAngelBinary(negative)).tick.ltp).toBe(-37.63);
  });

  it('maps every exchange type', () => {
    const names = [...ANGEL_EXCHANGES].map(([type, e]) => [type, e.name]);
    expect(names).toEqual([[1, 'nse_cm'], [2, 'nse_fo'], [3, 'bse_cm'], [4, 'bse_fo'], [5, 'mcx_fo'], [7, 'ncx_fo'], [13, 'cde_fo']]);
  });
});

describe('Angel decoder: normalisation', () => {
  it('takes index status from the symbol master when given, and leaves an index\'s zeros undefined', () => {
    const frame = vectorFrame(vectors, 'angel/ltp_nse_cm_index_nifty50');
    expect(tickOf(decodeAngelBinary(frame)).tick.isIndex).toBe(false);
    expect(tickOf(decodeAngelBinary(frame, { isIndex: (type, token) => type === 1 && token === '26000' })).tick.isIndex).toBe(true);

    const quote = tickOf(decodeAngelBinary(vectorFrame(vectors, 'angel/quote_nse_cm_index_banknifty'))).tick;
    expect(quote).toMatchObject({ isIndex: true, open: 49790, high: 50002.1, low: 49710.4, close: 49705.85 });
    expect(quote.volume).toBeUndefined();

    // A tradable instrument with no trades yet: real zeros stay zeros, zero prices are "none".
    const preOpen = encodeAngelPacket({ mode: 2, exchangeType: 1, token: '2885', ltp: 292115, totalBuyQuantity: 1000, close: 292115 });
    const tick = tickOf(decodeAngelBinary(preOpen)).tick;
    expect(tick).toMatchObject({ isIndex: false, volume: 0, lastQuantity: 0, totalBuyQuantity: 1000, totalSellQuantity: 0, close: 2921.15 });
    expect(tick.open).toBeUndefined();
    expect(tick.averagePrice).toBeUndefined();
    expect(tick.exchangeTimestamp).toBeUndefined();
  });

  it('splits best five by position, drops empty levels, and flags a flag that disagrees', () => {
    const frame = encodeAngelPacket({
      mode: 3,
      exchangeType: 2,
      token: '35001',
      ltp: 2339000,
      volume: 10,
      lastTradeTime: 1718178368,
      // Three bids, one of them with the sell flag: by flag the book would be 2 + 2.
      buy: [
        { quantity: 50, price: 2338990, orders: 1 },
        { quantity: 25, price: 2338950, orders: 1, flag: 0 },
        { quantity: 75, price: 2338905, orders: 2 },
      ],
      sell: [{ quantity: 100, price: 2339000, orders: 2 }],
    });
    const result = tickOf(decodeAngelBinary(frame));
    expect(result.tick.depth!.buy.map((l) => l.price)).toEqual([23389.9, 23389.5, 23389.05]);
    expect(result.tick.depth!.sell).toEqual([{ price: 23390, quantity: 100, orders: 2 }]);
    expect(result.anomaly).toMatch(/flag/);
    expect(result.tick.lastTradeTime).toBe(1718178368000);
  });

  it('decodes text frames: pong, JSON errors, plain text', () => {
    expect(decodeAngelText('pong')).toEqual({ kind: 'pong' });
    expect(decodeAngelText(' pong\n')).toEqual({ kind: 'pong' });
    expect(decodeAngelText('{"correlationID":"a1","errorCode":"E1001","errorMessage":"Invalid Request"}')).toEqual({
      kind: 'text',
      data: { correlationID: 'a1', errorCode: 'E1001', errorMessage: 'Invalid Request' },
    });
    expect(decodeAngelText('Unauthorized')).toEqual({ kind: 'text', data: 'Unauthorized' });
    expect(decodeAngelText('')).toMatchObject({ kind: 'invalid' });
  });
});

describe('Angel decoder: bad frames', () => {
  const binary = vectors.filter((v) => v.frame === 'binary');

  it('reports every truncation and extension of every vector as invalid', () => {
    for (const vector of binary) {
      const frame = Buffer.from(vector.hex!, 'hex');
      for (let length = 0; length < frame.length; length++) {
        expect(decodeAngelBinary(frame.subarray(0, length)).kind, `${vector.name} cut to ${length}`).toBe('invalid');
      }
      expect(decodeAngelBinary(Buffer.concat([frame, Buffer.alloc(1)])).kind).toBe('invalid');
    }
  });

  it('rejects unknown modes, unknown exchange types and bad tokens with a reason', () => {
    const good = vectorFrame(vectors, 'angel/ltp_nse_cm_reliance');
    const patched = (offset: number, byte: number) => {
      const copy = Buffer.from(good);
      copy[offset] = byte;
      return decodeAngelBinary(copy);
    };
    expect(patched(0, 0)).toEqual({ kind: 'invalid', reason: 'unknown subscription mode 0' });
    expect(patched(0, 2)).toMatchObject({ kind: 'invalid', reason: expect.stringMatching(/123 bytes, got 51/) });
    expect(patched(1, 6)).toEqual({ kind: 'invalid', reason: 'unknown exchange type 6' });
    expect(patched(2, 0)).toMatchObject({ kind: 'invalid', reason: expect.stringMatching(/token/) });
    expect(patched(3, 0x07)).toMatchObject({ kind: 'invalid', reason: expect.stringMatching(/token/) });
    // A 25-character token with no NUL is fine.
    const full = Buffer.from(good);
    full.fill(0x41, 2, 27);
    expect(tickOf(decodeAngelBinary(full)).tick.token).toBe('A'.repeat(25));
  });

  it('survives huge int64 values without throwing', () => {
    const frame = Buffer.from(vectorFrame(vectors, 'angel/snapquote_nse_cm_reliance'));
    for (let offset = 27; offset + 8 <= 147; offset += 8) frame.writeBigInt64LE(-(2n ** 63n), offset);
    const tick = tickOf(decodeAngelBinary(frame)).tick;
    expect(Number.isFinite(tick.ltp)).toBe(true);
  });

  it('never throws on random bytes', () => {
    let seed = 42;
    const next = () => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return seed;
    };
    const kinds = new Set<string>();
    for (let i = 0; i < 4000; i++) {
      // Every other frame has a valid mode, its exact length, a known exchange type and a token,
      // so the body parsers run on noise; the rest are noise of any length.
      const plausible = i % 2 === 0;
      const mode = (next() % 4) + 1;
      const length = plausible ? ANGEL_PACKET_LENGTH[mode]! : next() % 600;
      const frame = Buffer.alloc(length);
      for (let j = 0; j < length; j++) frame[j] = next() & 0xff;
      if (plausible) {
        frame[0] = mode;
        frame[1] = [1, 2, 3, 4, 5, 7, 13][next() % 7]!;
        frame.write('2885\0', 2, 'latin1');
      }
      kinds.add(decodeAngelBinary(frame).kind);
    }
    expect(kinds).toEqual(new Set(['tick', 'invalid']));
  });
});
