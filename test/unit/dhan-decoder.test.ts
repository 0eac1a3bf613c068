import { readFileSync } from 'node:fs';
import { describe, it, expect } from 'vitest';
import type { BrokerTick } from '../../src/adapters/broker.js';
import {
  DHAN_IST_OFFSET_S,
  DHAN_PACKET_LENGTH,
  DHAN_SEGMENTS,
  decodeDhanDepth20,
  decodeDhanFeed,
  decodeDhanText,
  depth20Tick,
  type DhanPacket,
} from '../../src/adapters/dhan/decoder.js';

/** test/fixtures/vectors/README.md says where these come from. */
interface Vector {
  name: string;
  feed: 'marketfeed' | 'depth20';
  frame: 'binary' | 'text';
  direction: 'server->client' | 'client->server';
  hex: string;
  text?: string;
  url?: string;
  decoded?: any;
  input?: any;
  printed?: string;
}

const vectors = JSON.parse(readFileSync(new URL('../fixtures/vectors/dhan.json', import.meta.url), 'utf8')) as Vector[];
const byName = (name: string): Vector => {
  const vector = vectors.find((v) => v.name === 'dhan/' + name);
  if (!vector) throw new Error(`no vector ${name}`);
  return vector;
};
const frameOf = (vector: Vector): Buffer => Buffer.from(vector.hex, 'hex');
const feedVectors = vectors.filter((v) => v.direction === 'server->client' && v.feed === 'marketfeed');
const depthVectors = vectors.filter((v) => v.direction === 'server->client' && v.feed === 'depth20');
const requests = vectors.filter((v) => v.direction === 'client->server');

/**
 * Where a correct decoder and the official `decoded` differ, and why. Everything else agrees.
 * - The official client formats every price with 2 decimals: currency prices (4 decimals) lose
 *   two; the decoder agrees with `input` and with the official string to 2 places.
 * - It prints LTT as the HH:MM:SS of the IST wall clock; the decoder gives the real instant.
 * - It decodes only the first packet of a message, and returns a fixed "Markets Open" for any
 *   market-status packet, None for disconnects and unknown codes.
 * - On the depth feed it keeps empty levels (price 0) and its combined view sorts them first
 *   among asks; the decoder leaves them out and keeps levels by position.
 */
const FLOAT32_LIMIT = new Set(['dhan/quote_nse_eq_price_above_2pow17']);

function only(packets: DhanPacket[]): DhanPacket {
  expect(packets).toHaveLength(1);
  return packets[0]!;
}

function tickOf(packet: DhanPacket): Extract<DhanPacket, { kind: 'tick' }> {
  if (packet.kind !== 'tick') throw new Error(`expected a tick, got ${JSON.stringify(packet)}`);
  return packet;
}

/** The price the builder meant; the float32 limit vector arrives 1/64 off (see its note). */
function meant(vector: Vector, field: string): number {
  return Number(vector.input[field]);
}

/**
 * What the official client shows for a price: the float32 itself formatted with 2 decimals
 * (so 83.405, a float32 just below, shows as 83.40 where the decimal price rounds to 83.41).
 */
function officialAgrees(official: string, ours: number | undefined): void {
  expect(Math.fround(ours ?? 0).toFixed(2)).toBe(official);
}

function hms(epochSeconds: number): string {
  return new Date(epochSeconds * 1000).toISOString().slice(11, 19);
}

function checkTime(tick: BrokerTick, ltt: number, official: string): void {
  // The official string is the IST wall clock, read from the epoch as if UTC.
  expect(official).toBe(hms(ltt));
  if (ltt === 0) {
    expect(tick.lastTradeTime).toBeUndefined();
    return;
  }
  expect(tick.lastTradeTime).toBe((ltt - DHAN_IST_OFFSET_S) * 1000);
  // The real instant, shown in IST, is the official wall clock.
  expect(hms(tick.lastTradeTime! / 1000 + DHAN_IST_OFFSET_S)).toBe(official);
}

function checkQuoteFields(vector: Vector, tick: BrokerTick): void {
  const { input, decoded: py } = vector;
  const segment = DHAN_SEGMENTS.get(input.segment)!;
  expect(tick.isIndex).toBe(segment.isIndex);
  if (FLOAT32_LIMIT.has(vector.name)) {
    expect(tick.ltp).toBe(140000.09);
    expect(tick.averagePrice).toBe(139850.34);
  } else {
    expect(tick.ltp).toBe(meant(vector, 'ltp'));
    expect(tick.averagePrice).toBe(meant(vector, 'atp') || undefined);
  }
  for (const field of ['open', 'close', 'high', 'low'] as const) {
    expect(tick[field]).toBe(meant(vector, field) || undefined);
    officialAgrees(py[field], tick[field]);
  }
  officialAgrees(py.LTP, tick.ltp);
  officialAgrees(py.avg_price, tick.averagePrice);
  checkTime(tick, input.ltt, py.LTT);
  if (segment.isIndex) {
    // An index's zeros are "not available".
    expect([tick.volume, tick.lastQuantity, tick.totalBuyQuantity, tick.totalSellQuantity]).toEqual([undefined, undefined, undefined, undefined]);
    expect([py.volume, py.LTQ, py.total_buy_quantity, py.total_sell_quantity]).toEqual([0, 0, 0, 0]);
  } else {
    expect(tick.volume).toBe(input.volume);
    expect(tick.lastQuantity).toBe(input.ltq);
    expect(tick.totalBuyQuantity).toBe(input.total_buy_quantity);
    expect(tick.totalSellQuantity).toBe(input.total_sell_quantity);
    expect([py.volume, py.LTQ, py.total_buy_quantity, py.total_sell_quantity]).toEqual([
      input.volume, input.ltq, input.total_buy_quantity, input.total_sell_quantity,
    ]);
  }
}

describe('decodeDhanFeed: every live-feed vector decodes to the official values', () => {
  it('has vectors of every packet type', () => {
    const codes = new Set(feedVectors.map((v) => v.input.response_code ?? v.input.packets?.[0]?.response_code));
    for (const code of Object.keys(DHAN_PACKET_LENGTH).map(Number)) expect(codes).toContain(code);
    expect(depthVectors.length).toBeGreaterThanOrEqual(4);
    expect(vectors.length).toBeGreaterThanOrEqual(15);
  });

  for (const vector of feedVectors.filter((v) => v.input.response_code === 2)) {
    it(`${vector.name}: ticker`, () => {
      const { input, decoded: py } = vector;
      const { tick, responseCode, segment } = tickOf(only(decodeDhanFeed(frameOf(vector))));
      expect([responseCode, segment]).toEqual([2, input.exchange_segment]);
      expect([py.exchange_segment, py.security_id]).toEqual([input.exchange_segment, input.security_id]);
      expect(tick).toMatchObject({ broker: 'dhan', token: String(input.security_id), exchange: input.segment_name, mode: 'ltp' });
      expect(tick.isIndex).toBe(input.segment_name === 'IDX_I');
      expect(tick.ltp).toBe(meant(vector, 'ltp'));
      officialAgrees(py.LTP, tick.ltp);
      checkTime(tick, input.ltt, py.LTT);
      expect(tick.volume).toBeUndefined();
    });
  }

  it('currency keeps its 4 decimals (the official client shows 2)', () => {
    const tick = tickOf(only(decodeDhanFeed(frameOf(byName('ticker_nse_currency_usdinr_fut'))))).tick;
    expect(tick.ltp).toBe(83.4525);
    expect(byName('ticker_nse_currency_usdinr_fut').decoded.LTP).toBe('83.45');
  });

  for (const vector of feedVectors.filter((v) => v.input.response_code === 4)) {
    it(`${vector.name}: quote`, () => {
      const { tick, responseCode } = tickOf(only(decodeDhanFeed(frameOf(vector))));
      expect(responseCode).toBe(4);
      expect(tick).toMatchObject({ broker: 'dhan', token: String(vector.input.security_id), mode: 'quote' });
      expect(tick.exchange).toBe(DHAN_SEGMENTS.get(vector.input.segment)!.name);
      expect(vector.decoded.security_id).toBe(vector.input.security_id);
      checkQuoteFields(vector, tick);
      expect(tick.oi).toBeUndefined();
      expect(tick.depth).toBeUndefined();
    });
  }

  for (const vector of feedVectors.filter((v) => v.input.response_code === 8)) {
    it(`${vector.name}: full, with 5-level depth`, () => {
      const { input, decoded: py } = vector;
      const { tick, responseCode } = tickOf(only(decodeDhanFeed(frameOf(vector))));
      expect(responseCode).toBe(8);
      expect(tick.mode).toBe('full');
      checkQuoteFields(vector, tick);
      const segment = DHAN_SEGMENTS.get(input.segment)!;
      if (segment.derivative) {
        expect([tick.oi, tick.oiDayHigh, tick.oiDayLow]).toEqual([input.oi, input.oi_day_high, input.oi_day_low]);
      } else {
        // Equity has no OI: the wire's zeros are left out.
        expect([tick.oi, tick.oiDayHigh, tick.oiDayLow]).toEqual([undefined, undefined, undefined]);
      }
      expect([py.OI, py.oi_day_high, py.oi_day_low]).toEqual([input.oi, input.oi_day_high, input.oi_day_low]);
      // Levels by position; empty ones (quantity and price 0) left out.
      const levels = input.depth as any[];
      const buy = levels.filter((l) => l.bid_quantity || Number(l.bid_price));
      const sell = levels.filter((l) => l.ask_quantity || Number(l.ask_price));
      expect(tick.depth!.buy).toEqual(buy.map((l) => ({ price: Number(l.bid_price), quantity: l.bid_quantity, orders: l.bid_orders })));
      expect(tick.depth!.sell).toEqual(sell.map((l) => ({ price: Number(l.ask_price), quantity: l.ask_quantity, orders: l.ask_orders })));
      // The official client returns all five rows, zeros included, prices with 2 decimals.
      expect(py.depth).toHaveLength(5);
      tick.depth!.buy.forEach((level, i) => {
        expect([py.depth[i].bid_quantity, py.depth[i].bid_orders]).toEqual([level.quantity, level.orders]);
        officialAgrees(py.depth[i].bid_price, level.price);
      });
      tick.depth!.sell.forEach((level, i) => {
        expect([py.depth[i].ask_quantity, py.depth[i].ask_orders]).toEqual([level.quantity, level.orders]);
        officialAgrees(py.depth[i].ask_price, level.price);
      });
    });
  }

  it('OI packet', () => {
    const vector = byName('oi_nse_fno_nifty_fut');
    expect(only(decodeDhanFeed(frameOf(vector)))).toEqual({ kind: 'oi', token: '35001', exchange: 'NSE_FNO', segment: 2, oi: 12_345_600 });
    expect(vector.decoded.OI).toBe(12_345_600);
  });

  it('previous-close packets: the close, and the previous OI for derivatives', () => {
    const equity = byName('prev_close_nse_eq_reliance');
    expect(only(decodeDhanFeed(frameOf(equity)))).toEqual({ kind: 'prevClose', token: '2885', exchange: 'NSE_EQ', segment: 1, close: 2921.15 });
    expect(equity.decoded).toMatchObject({ prev_close: '2921.15', prev_OI: 0 });
    const future = byName('prev_close_nse_fno_nifty_fut');
    expect(only(decodeDhanFeed(frameOf(future)))).toEqual({
      kind: 'prevClose', token: '35001', exchange: 'NSE_FNO', segment: 2, close: 23300.5, prevOi: 11_223_300,
    });
    expect(future.decoded).toMatchObject({ prev_close: '23300.50', prev_OI: 11_223_300 });
  });

  it('market-status packet (the official client answers "Markets Open" for any)', () => {
    const vector = byName('market_status');
    expect(only(decodeDhanFeed(frameOf(vector)))).toEqual({ kind: 'marketStatus', segment: 0, securityId: 0 });
    expect(vector.decoded).toBe('Markets Open');
  });

  it('disconnect packets: code, reason, and whether the credentials are refused', () => {
    const tooMany = byName('disconnect_805');
    expect(only(decodeDhanFeed(frameOf(tooMany)))).toMatchObject({ kind: 'disconnect', code: 805, refused: false });
    expect(tooMany.decoded).toBeNull();
    expect(tooMany.printed).toContain('websocket connections exceeded');
    const expired = byName('disconnect_807');
    expect(only(decodeDhanFeed(frameOf(expired)))).toEqual({ kind: 'disconnect', code: 807, reason: 'access token is expired', refused: true });
    expect(expired.printed).toContain('Access Token is expired');
  });

  it('a message of several packets decodes each (the official client reads only the first)', () => {
    const vector = byName('multi_packet_ticker_prevclose_oi');
    const packets = decodeDhanFeed(frameOf(vector));
    expect(packets.map((p) => p.kind)).toEqual(['tick', 'prevClose', 'oi']);
    expect(tickOf(packets[0]!).tick.ltp).toBe(2950.55);
    expect(packets[1]).toMatchObject({ close: 2921.15 });
    expect(packets[2]).toMatchObject({ token: '35001', oi: 12_345_600 });
    expect(vector.decoded).toMatchObject({ type: 'Ticker Data', LTP: '2950.55' });
  });

  it('an unknown response code is reported, not thrown (the official client returns None)', () => {
    const vector = byName('unknown_response_code_99');
    expect(only(decodeDhanFeed(frameOf(vector)))).toEqual({ kind: 'invalid', reason: 'unknown response code 99' });
    expect(vector.decoded).toBeNull();
  });
});

describe('decodeDhanDepth20: every 20-level vector decodes to the official values', () => {
  for (const vector of depthVectors.filter((v) => v.input.packets[0].response_code !== 50)) {
    it(`${vector.name}`, () => {
      const packets = decodeDhanDepth20(frameOf(vector));
      const inputs = vector.input.packets as any[];
      expect(packets).toHaveLength(inputs.length);
      expect(vector.decoded.packets).toHaveLength(inputs.length);
      packets.forEach((packet, i) => {
        const want = inputs[i];
        const py = vector.decoded.packets[i];
        if (packet.kind !== 'depth20') throw new Error(JSON.stringify(packet));
        expect(packet).toMatchObject({
          side: want.response_code === 41 ? 'buy' : 'sell',
          token: String(want.security_id),
          segment: want.exchange_segment,
          exchange: DHAN_SEGMENTS.get(want.exchange_segment)!.name,
          sequence: want.sequence,
        });
        expect([py.type, py.security_id, py.exchange_segment]).toEqual([want.response_code === 41 ? 'Bid' : 'Ask', want.security_id, want.exchange_segment]);
        const meantLevels = (want.levels as any[]).map((l) => ({ price: Number(l.price), quantity: l.quantity, orders: l.orders }));
        expect(packet.levels).toEqual(meantLevels);
        // The official client keeps all 20 rows; the non-empty ones are ours, as doubles.
        expect(py.depth).toHaveLength(20);
        expect(py.depth.filter((l: any) => l.price !== 0 || l.quantity !== 0)).toEqual(meantLevels);
      });
    });
  }

  it('a bid and an ask make one depth20 tick (the official client pairs them the same way)', () => {
    const vector = byName('depth20_pair_nse_eq_reliance');
    const [bid, ask] = decodeDhanDepth20(frameOf(vector));
    if (bid?.kind !== 'depth20' || ask?.kind !== 'depth20') throw new Error('expected two sides');
    const tick = depth20Tick(bid, ask)!;
    expect(tick).toMatchObject({ broker: 'dhan', token: '2885', exchange: 'NSE_EQ', mode: 'depth20', isIndex: false, sequence: 7002 });
    expect(tick.ltp).toBeNaN();
    expect(tick.depth!.buy).toHaveLength(20);
    expect(tick.depth!.buy[0]).toEqual({ price: 2950.5, quantity: 100, orders: 2 });
    expect(tick.depth!.sell[0]).toEqual({ price: 2950.55, quantity: 90, orders: 1 });
    expect(vector.decoded.get_data).toHaveLength(1);
    expect(vector.decoded.get_data[0].depth[0]).toBe('bid : {price:2950.50, quantity:100, no_of_orders:2} | ask : {price:2950.55, quantity:90, no_of_orders:1}');
    expect(depth20Tick(ask, bid)).toBeUndefined();
  });

  it('a partial book: empty levels are left out (the official combined view sorts them first among asks)', () => {
    const vector = byName('depth20_pair_nse_fno_partial_asks');
    const [bid, ask] = decodeDhanDepth20(frameOf(vector));
    if (bid?.kind !== 'depth20' || ask?.kind !== 'depth20') throw new Error('expected two sides');
    expect(bid.levels).toHaveLength(20);
    expect(ask.levels).toHaveLength(8);
    expect(ask.levels[0]!.price).toBe(23310.4);
    expect(vector.decoded.get_data[0].depth[0]).toContain('ask : {price:0.00, quantity:0, no_of_orders:0}');
  });

  it('two instruments in one message', () => {
    const packets = decodeDhanDepth20(frameOf(byName('depth20_two_instruments')));
    expect(packets.map((p) => (p.kind === 'depth20' ? `${p.token}/${p.side}` : p.kind))).toEqual(['11536/buy', '11536/sell', '35001/buy', '35001/sell']);
  });

  it('a disconnect on the depth feed', () => {
    const vector = byName('depth20_disconnect_807');
    expect(only(decodeDhanDepth20(frameOf(vector)))).toEqual({ kind: 'disconnect', code: 807, reason: 'access token is expired', refused: true });
    expect(vector.decoded.on_close).toBe(true);
  });
});

describe('garbage, short and unknown frames are reported invalid, never thrown', () => {
  const ticker = frameOf(byName('ticker_nse_eq_reliance'));
  const full = frameOf(byName('full_nse_fno_nifty_fut'));
  const depth = frameOf(byName('depth20_bid_nse_eq_reliance'));
  const cases: Array<[string, Buffer]> = [
    ['empty', Buffer.alloc(0)],
    ['one byte', Buffer.from([2])],
    ['short header', Buffer.from('0210000145', 'hex')],
    ['truncated ticker', ticker.subarray(0, 15)],
    ['truncated full', full.subarray(0, 100)],
    ['forged length 0xffff', Buffer.concat([Buffer.from([8, 0xff, 0xff]), full.subarray(3), ticker])],
    ['forged length 3', Buffer.concat([Buffer.from([8, 3, 0]), full.subarray(3), ticker])],
    ['unknown segment', Buffer.concat([ticker.subarray(0, 3), Buffer.from([6]), ticker.subarray(4)])],
    ['NaN LTP', Buffer.concat([ticker.subarray(0, 8), Buffer.from('0000c07f', 'hex'), ticker.subarray(12)])],
    ['ascii', Buffer.from('hello world, this is not a packet')],
    ['zeros', Buffer.alloc(64)],
    ['ones', Buffer.alloc(200, 0xff)],
  ];
  for (const [name, frame] of cases) {
    it(`live feed: ${name}`, () => {
      let packets: DhanPacket[] = [];
      expect(() => (packets = decodeDhanFeed(frame))).not.toThrow();
      expect(packets.length).toBeGreaterThan(0);
      expect(packets.length).toBeLessThanOrEqual(Math.max(1, frame.length / 8 + 1));
      expect(packets.some((p) => p.kind === 'invalid')).toBe(true);
    });
    it(`depth feed: ${name}`, () => {
      let packets: DhanPacket[] = [];
      expect(() => (packets = decodeDhanDepth20(frame))).not.toThrow();
      expect(packets.length).toBeGreaterThan(0);
      expect(packets.some((p) => p.kind === 'invalid')).toBe(true);
    });
  }

  it('code 0 with a plausible length is a heartbeat (OpenAlgo skips them), not a tick', () => {
    const heartbeat = Buffer.from('0008000000000000', 'hex');
    expect(decodeDhanFeed(Buffer.concat([heartbeat, ticker])).map((p) => p.kind)).toEqual(['heartbeat', 'tick']);
    expect(decodeDhanDepth20(Buffer.from('0c0000000000000000000000', 'hex'))).toEqual([{ kind: 'heartbeat' }]);
  });

  it('a truncated depth packet and a depth NaN price', () => {
    expect(decodeDhanDepth20(depth.subarray(0, 331))[0]!.kind).toBe('invalid');
    const nan = Buffer.from(depth);
    nan.writeDoubleLE(Number.NaN, 12);
    expect(decodeDhanDepth20(nan)[0]!.kind).toBe('invalid');
  });

  it('a frame holding exactly one packet is read even if its length field disagrees', () => {
    const odd = Buffer.from(ticker);
    odd.writeUInt16LE(8, 1);
    expect(tickOf(only(decodeDhanFeed(odd))).tick.ltp).toBe(2950.55);
  });

  it('a good packet followed by garbage keeps the good one', () => {
    const packets = decodeDhanFeed(Buffer.concat([ticker, Buffer.from([9, 9, 9])]));
    expect(packets.map((p) => p.kind)).toEqual(['tick', 'invalid']);
  });

  it('text frames are kept for the log, shortened', () => {
    expect(decodeDhanText('')).toEqual({ kind: 'invalid', reason: 'empty text frame' });
    expect(decodeDhanText('x'.repeat(2000))).toMatchObject({ kind: 'text' });
    expect((decodeDhanText('x'.repeat(2000)) as { text: string }).text.length).toBeLessThanOrEqual(501);
  });
});

describe('messages to Dhan, as the official clients send them', () => {
  const SEGMENT_NAMES = new Set([...DHAN_SEGMENTS.values()].map((s) => s.name));

  it('connect URLs: query parameters version (live feed only), token, clientId, authType=2', () => {
    expect(byName('request_subscribe_on_connect#0').url).toBe('wss://api-feed.dhan.co?version=2&token=ACCESS_TOKEN&clientId=1000000001&authType=2');
    expect(byName('depth20_request_subscribe_on_connect').url).toBe('wss://depth-api-feed.dhan.co/twentydepth?token=ACCESS_TOKEN&clientId=1000000001&authType=2');
  });

  it('subscribe/unsubscribe JSON: a request code, a count, and at most 100 (depth: 50) instruments', () => {
    const json = requests.filter((v) => v.frame === 'text').map((v) => ({ v, m: JSON.parse(v.text!) }));
    expect(json.length).toBeGreaterThan(10);
    for (const { v, m } of json) {
      if (m.RequestCode === 12) {
        expect(m).toEqual({ RequestCode: 12 });
        continue;
      }
      expect(v.feed === 'depth20' ? [23, 24] : [15, 16, 17, 18, 21, 22]).toContain(m.RequestCode);
      expect(m.InstrumentCount).toBe(m.InstrumentList.length);
      expect(m.InstrumentCount).toBeLessThanOrEqual(v.feed === 'depth20' ? 50 : 100);
      for (const instrument of m.InstrumentList) {
        expect(Object.keys(instrument)).toEqual(['ExchangeSegment', 'SecurityId']);
        expect(SEGMENT_NAMES).toContain(instrument.ExchangeSegment);
        expect(typeof instrument.SecurityId).toBe('string');
      }
    }
    const unsubscribe = ['request_unsubscribe_symbols#0', 'request_unsubscribe_symbols#1', 'request_unsubscribe_symbols#2'];
    expect(unsubscribe.map((n) => JSON.parse(byName(n).text!).RequestCode)).toEqual([16, 18, 22]);
    // The official 20-depth client unsubscribes with 24; the annexure says 25 (docs/brokers/dhan.md).
    expect(JSON.parse(byName('depth20_request_unsubscribe').text!).RequestCode).toBe(24);
  });

  it('disconnect: JSON 12, then an 83-byte binary header (code 12, length 83, client id)', () => {
    const header = frameOf(byName('request_disconnect#1'));
    expect(header.length).toBe(83);
    expect([header[0], header.readUInt16LE(1)]).toEqual([12, 83]);
    expect(header.subarray(3, 33).toString('latin1').replace(/\0+$/, '')).toBe('1000000001');
    expect(header.subarray(33).every((b) => b === 0)).toBe(true);
  });
});
