import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { BrokerTick, DepthLevel } from '../../src/adapters/broker.js';
import { scaleDecimal } from '../../src/adapters/decimal.js';
import { decodeKiteBinary, decodeKiteText, kiteSegment } from '../../src/adapters/zerodha/decoder.js';
import { type KiteFields, frameFromInput, kiteFrame, kitePacket } from '../helpers/fake-kite.js';

interface Vector {
  name: string;
  frame: 'binary' | 'text';
  direction: string;
  hex: string;
  text?: string;
  decoded: unknown;
  input?: { packets: Array<{ length: number; fields: KiteFields }> };
}

// The broker vectors (test/fixtures/vectors/README.md says where they come from).
const VECTORS = JSON.parse(
  readFileSync(new URL('../fixtures/vectors/zerodha.json', import.meta.url), 'utf8'),
) as Vector[];

const KNOWN_LENGTHS = new Set([8, 28, 32, 44, 184]);
const DIVISOR: Record<number, number> = { 3: 1e7, 6: 1e4 };
const EXCHANGE: Record<number, string> = {
  1: 'NSE', 2: 'NFO', 3: 'CDS', 4: 'BSE', 5: 'BFO', 6: 'BCD', 7: 'MCX', 8: 'MCXSX', 9: 'INDICES',
};

/** The §3 normalised tick for a vector packet, from its raw on-wire integers. */
function expectedTick(length: number, f: KiteFields): BrokerTick {
  const segment = f.instrument_token & 0xff;
  const div = DIVISOR[segment] ?? 100;
  const p = (name: string) => (f[name] as number) / div;
  const n = (name: string) => f[name] as number;
  const ms = (name: string) => (n(name) === 0 ? undefined : n(name) * 1000);
  const base = {
    broker: 'zerodha' as const,
    token: String(f.instrument_token),
    exchange: EXCHANGE[segment]!,
    ltp: p('last_price'),
  };
  if (length === 8) return { ...base, mode: 'ltp', isIndex: segment === 9 };
  if (length === 28 || length === 32) {
    const tick: BrokerTick = {
      ...base, mode: length === 32 ? 'full' : 'quote', isIndex: true,
      high: p('high'), low: p('low'), open: p('open'), close: p('close'),
    };
    if (length === 32) tick.exchangeTimestamp = ms('exchange_timestamp');
    return tick;
  }
  const tick: BrokerTick = {
    ...base, mode: length === 184 ? 'full' : 'quote', isIndex: false,
    lastQuantity: n('last_traded_quantity'), averagePrice: p('average_traded_price'), volume: n('volume_traded'),
    totalBuyQuantity: n('total_buy_quantity'), totalSellQuantity: n('total_sell_quantity'),
    open: p('open'), high: p('high'), low: p('low'), close: p('close'),
  };
  if (length === 184) {
    const depth = f.depth as { buy: DepthLevel[]; sell: DepthLevel[] };
    const side = (levels: DepthLevel[]) =>
      levels.filter((l) => l.price !== 0 || l.quantity !== 0).map((l) => ({ price: l.price / div, quantity: l.quantity, orders: l.orders }));
    Object.assign(tick, {
      lastTradeTime: ms('last_trade_time'), oi: n('oi'), oiDayHigh: n('oi_day_high'), oiDayLow: n('oi_day_low'),
      exchangeTimestamp: ms('exchange_timestamp'), depth: { buy: side(depth.buy), sell: side(depth.sell) },
    });
  }
  return tick;
}

/** pykiteconnect prints naive datetimes in IST (the generator's zone). */
function istMs(text: string): number {
  return Date.parse(`${text}+05:30`);
}

type PyTick = Record<string, any>;

/** Checks a tick against pykiteconnect's dict, after the §3 rules (percent change, datetimes…). */
function expectMatchesPykiteconnect(tick: BrokerTick, py: PyTick): void {
  expect(tick.token).toBe(String(py.instrument_token));
  expect(tick.mode).toBe(py.mode);
  expect(tick.isIndex).toBe(!py.tradable);
  expect(tick.ltp).toBe(py.last_price);
  if (py.ohlc) {
    expect({ open: tick.open, high: tick.high, low: tick.low, close: tick.close }).toEqual(py.ohlc);
  } else {
    expect(tick.open).toBeUndefined();
  }
  const same = (ours: unknown, theirs: unknown) => expect(ours).toBe(theirs ?? undefined);
  same(tick.lastQuantity, py.last_traded_quantity);
  same(tick.averagePrice, py.average_traded_price);
  same(tick.volume, py.volume_traded);
  same(tick.totalBuyQuantity, py.total_buy_quantity);
  same(tick.totalSellQuantity, py.total_sell_quantity);
  same(tick.oi, py.oi);
  same(tick.oiDayHigh, py.oi_day_high);
  same(tick.oiDayLow, py.oi_day_low);
  same(tick.exchangeTimestamp, py.exchange_timestamp === undefined ? undefined : istMs(py.exchange_timestamp));
  same(tick.lastTradeTime, py.last_trade_time === undefined ? undefined : istMs(py.last_trade_time));
  if (py.depth) {
    // pykiteconnect keeps empty levels; §3 drops them.
    const side = (levels: PyTick[]) => levels.filter((l) => l.price !== 0 || l.quantity !== 0);
    expect(tick.depth).toEqual({ buy: side(py.depth.buy), sell: side(py.depth.sell) });
  } else {
    expect(tick.depth).toBeUndefined();
  }
}

const binaryVectors = VECTORS.filter((v) => v.frame === 'binary' && v.direction === 'server->client');
const serverTextVectors = VECTORS.filter((v) => v.frame === 'text' && v.direction === 'server->client');

describe('decodeKiteBinary against the broker vectors', () => {
  it('has the vectors it expects', () => {
    expect(VECTORS).toHaveLength(27);
    expect(binaryVectors).toHaveLength(16);
  });

  for (const vector of binaryVectors) {
    it(vector.name, () => {
      const frame = Buffer.from(vector.hex, 'hex');
      const result = decodeKiteBinary(frame);
      if (vector.decoded === null) {
        expect(result).toEqual({ kind: 'heartbeat' });
        return;
      }
      if (result.kind !== 'ticks') throw new Error(`expected ticks, got ${JSON.stringify(result)}`);
      const packets = vector.input!.packets;
      const known = packets.filter((p) => KNOWN_LENGTHS.has(p.length));
      const decoded = vector.decoded as PyTick[];

      // The helper's builder makes exactly the vector's bytes (so its other frames are
      // trustworthy); an unknown-length packet's content is not in `input`, so not rebuildable.
      if (known.length === packets.length) expect(frameFromInput(vector.input!).toString('hex')).toBe(vector.hex);

      expect(result.ticks).toHaveLength(known.length);
      expect(result.ticks).toHaveLength(decoded.length);
      expect(result.rejected).toHaveLength(packets.length - known.length);
      for (const p of packets.filter((p) => !KNOWN_LENGTHS.has(p.length))) {
        expect(result.rejected.some((r) => r.includes(`unknown packet length ${p.length}`))).toBe(true);
      }
      result.ticks.forEach((tick, i) => {
        expect(tick).toEqual(expectedTick(known[i]!.length, known[i]!.fields));
        expectMatchesPykiteconnect(tick, decoded[i]!);
      });
    });
  }
});

describe('decodeKiteText against the broker vectors', () => {
  for (const vector of serverTextVectors) {
    it(vector.name, () => {
      expect(Buffer.from(vector.text!, 'utf8').toString('hex')).toBe(vector.hex);
      const parsed = JSON.parse(vector.text!) as { type: string; data: unknown };
      expect(decodeKiteText(vector.text!)).toEqual({ kind: 'text', type: parsed.type, data: parsed.data });
    });
  }

  it('treats client requests and non-objects as invalid', () => {
    for (const vector of VECTORS.filter((v) => v.direction === 'client->server')) {
      expect(decodeKiteText(vector.text!).kind).toBe('invalid');
    }
    for (const text of ['', 'not json', '[]', 'null', '42', '"error"', '{"type": 5}', '{"data": "x"}']) {
      expect(decodeKiteText(text).kind).toBe('invalid');
    }
  });
});

const RELIANCE = 738561;
const NIFTY = 256265;
const USDINR_CDS = 552195;
const USDINR_BCD = 296198;

describe('decodeKiteBinary', () => {
  it('decodes a message mixing every packet type, in order', () => {
    const frame = kiteFrame([
      kitePacket(8, { instrument_token: RELIANCE, last_price: 295055 }),
      kitePacket(28, { instrument_token: NIFTY, last_price: 2332295, close: 2326485 }),
      kitePacket(44, { instrument_token: RELIANCE, last_price: 295060, volume_traded: 7 }),
      kitePacket(184, { instrument_token: RELIANCE, last_price: 295065, oi: 3 }),
      kitePacket(8, { instrument_token: NIFTY, last_price: 2332300 }),
      kitePacket(32, { instrument_token: NIFTY, last_price: 2332305, exchange_timestamp: 1718178369 }),
    ]);
    const result = decodeKiteBinary(frame);
    if (result.kind !== 'ticks') throw new Error(result.kind);
    expect(result.rejected).toEqual([]);
    expect(result.ticks.map((t) => [t.token, t.mode, t.ltp])).toEqual([
      ['738561', 'ltp', 2950.55],
      ['256265', 'quote', 23322.95],
      ['738561', 'quote', 2950.6],
      ['738561', 'full', 2950.65],
      ['256265', 'ltp', 23323],
      ['256265', 'full', 23323.05],
    ]);
    expect(result.ticks[3]!.oi).toBe(3);
    expect(result.ticks[4]!.isIndex).toBe(true);
    expect(result.ticks[5]!.exchangeTimestamp).toBe(1718178369000);
  });

  it('scales CDS by 1e7 and BCD by 1e4 everywhere, depth included', () => {
    const depth = {
      buy: [{ quantity: 10, price: 834520000, orders: 2 }],
      sell: [{ quantity: 20, price: 834530000, orders: 3 }],
    };
    const cds = decodeKiteBinary(kiteFrame([kitePacket(184, {
      instrument_token: USDINR_CDS, last_price: 834525000, average_traded_price: 834411234, open: 834000000,
      high: 835000000, low: 833000000, close: 834100000, depth,
    })]));
    if (cds.kind !== 'ticks') throw new Error(cds.kind);
    const tick = cds.ticks[0]!;
    expect(tick.exchange).toBe('CDS');
    expect([tick.ltp, tick.averagePrice, tick.open, tick.high, tick.low, tick.close]).toEqual([83.4525, 83.4411234, 83.4, 83.5, 83.3, 83.41]);
    expect(tick.depth).toEqual({ buy: [{ price: 83.452, quantity: 10, orders: 2 }], sell: [{ price: 83.453, quantity: 20, orders: 3 }] });

    const bcd = decodeKiteBinary(kiteFrame([kitePacket(44, { instrument_token: USDINR_BCD, last_price: 834550, close: 834125 })]));
    if (bcd.kind !== 'ticks') throw new Error(bcd.kind);
    expect(bcd.ticks[0]).toMatchObject({ exchange: 'BCD', ltp: 83.455, close: 83.4125 });
  });

  it('leaves out what a packet does not carry: missing is not zero', () => {
    const result = decodeKiteBinary(kiteFrame([
      kitePacket(44, { instrument_token: RELIANCE, last_price: 1 }),
      kitePacket(28, { instrument_token: NIFTY, last_price: 1 }),
      kitePacket(184, { instrument_token: RELIANCE, last_price: 1, depth: { buy: [{ quantity: 5, price: 100, orders: 1 }, { quantity: 6, price: 99, orders: 1 }] } }),
    ]));
    if (result.kind !== 'ticks') throw new Error(result.kind);
    const [quote, index, full] = result.ticks;
    for (const key of ['lastTradeTime', 'exchangeTimestamp', 'oi', 'depth'] as const) expect(quote![key]).toBeUndefined();
    for (const key of ['volume', 'lastQuantity', 'averagePrice', 'totalBuyQuantity', 'depth', 'lastTradeTime', 'exchangeTimestamp', 'oi'] as const) {
      expect(index![key]).toBeUndefined();
    }
    // Zero timestamps are "none"; empty depth levels are dropped, not zero bids.
    expect(full!.lastTradeTime).toBeUndefined();
    expect(full!.exchangeTimestamp).toBeUndefined();
    expect(full!.depth).toEqual({ buy: [{ price: 1, quantity: 5, orders: 1 }, { price: 0.99, quantity: 6, orders: 1 }], sell: [] });
  });

  it('reads the index field order H, L, O, C and ignores the change field', () => {
    const result = decodeKiteBinary(kiteFrame([kitePacket(28, {
      instrument_token: NIFTY, last_price: 500, high: 400, low: 300, open: 200, close: 100, price_change_field: -7,
    })]));
    if (result.kind !== 'ticks') throw new Error(result.kind);
    expect(result.ticks[0]).toMatchObject({ ltp: 5, high: 4, low: 3, open: 2, close: 1 });
  });

  it('reads prices as unsigned and tokens of unknown segments with the default scale', () => {
    const result = decodeKiteBinary(kiteFrame([kitePacket(8, { instrument_token: (77 << 8) | 10, last_price: 0xffffffff })]));
    if (result.kind !== 'ticks') throw new Error(result.kind);
    expect(result.ticks[0]).toMatchObject({ exchange: 'SEGMENT10', ltp: 42949672.95, token: String((77 << 8) | 10) });
    expect(kiteSegment(NIFTY)).toEqual({ exchange: 'INDICES', decimals: 2, isIndex: true });
  });

  it('treats a 1-byte frame as a heartbeat and an empty one as invalid', () => {
    expect(decodeKiteBinary(Buffer.from([0]))).toEqual({ kind: 'heartbeat' });
    expect(decodeKiteBinary(Buffer.from([7]))).toEqual({ kind: 'heartbeat' });
    expect(decodeKiteBinary(Buffer.alloc(0)).kind).toBe('invalid');
  });

  it('rejects broken envelopes without reading past the frame', () => {
    const cases: Array<[string, Buffer]> = [
      ['zero packets', Buffer.from('0000', 'hex')],
      ['count but no length', Buffer.from('0001', 'hex')],
      ['half a length', Buffer.from('000100', 'hex')],
      ['65535 packets in 4 bytes', Buffer.from('ffff0008', 'hex')],
      ['a 65535-byte packet in 8 bytes', Buffer.from('0001ffff00000000', 'hex')],
      ['a short ltp packet', Buffer.from('00010008000b4501', 'hex')],
    ];
    for (const [what, frame] of cases) {
      const result = decodeKiteBinary(frame);
      expect(result.kind, what).toBe('invalid');
    }
  });

  it('keeps the good packets of a partly broken frame and says what it dropped', () => {
    const good = kitePacket(8, { instrument_token: RELIANCE, last_price: 295055 });
    const truncated = Buffer.concat([kiteFrame([good, good]).subarray(0, 2 + 2 + 8 + 2 + 5)]);
    const result = decodeKiteBinary(truncated);
    if (result.kind !== 'ticks') throw new Error(result.kind);
    expect(result.ticks).toHaveLength(1);
    expect(result.rejected).toHaveLength(1);
    expect(result.rejected[0]).toMatch(/truncated: packet 2 of 2 claims 8 bytes, 5 left/);

    const trailing = decodeKiteBinary(Buffer.concat([kiteFrame([good]), Buffer.from([1, 2, 3])]));
    if (trailing.kind !== 'ticks') throw new Error(trailing.kind);
    expect(trailing.ticks).toHaveLength(1);
    expect(trailing.rejected).toEqual(['3 trailing bytes after 1 packets']);

    const old = decodeKiteBinary(kiteFrame([kitePacket(164, { instrument_token: RELIANCE }), good]));
    if (old.kind !== 'ticks') throw new Error(old.kind);
    expect(old.ticks).toHaveLength(1);
    expect(old.rejected).toEqual(['packet 1 of 2: unknown packet length 164 (token 738561)']);
  });

  it('never throws on any truncation of any vector frame', () => {
    for (const vector of binaryVectors) {
      const frame = Buffer.from(vector.hex, 'hex');
      for (let cut = 0; cut < frame.length; cut++) {
        const result = decodeKiteBinary(frame.subarray(0, cut));
        if (result.kind === 'ticks') expect(result.rejected.length, `${vector.name} cut at ${cut}`).toBeGreaterThan(0);
        else expect(['invalid', 'heartbeat']).toContain(result.kind);
      }
    }
  });

  it('survives random bytes and random corruption (property-style)', () => {
    // A fixed-seed generator, so a failure reproduces.
    let state = 0x2545f491;
    const random = () => {
      state ^= state << 13;
      state ^= state >>> 17;
      state ^= state << 5;
      return (state >>> 0) / 4294967296;
    };
    const frames = binaryVectors.map((v) => Buffer.from(v.hex, 'hex'));
    for (let i = 0; i < 3000; i++) {
      let frame: Buffer;
      if (i % 2 === 0) {
        frame = Buffer.alloc(Math.floor(random() * 400));
        for (let j = 0; j < frame.length; j++) frame[j] = Math.floor(random() * 256);
      } else {
        frame = Buffer.from(frames[i % frames.length]!);
        for (let flips = 1 + Math.floor(random() * 4); flips > 0 && frame.length > 0; flips--) {
          frame[Math.floor(random() * frame.length)] = Math.floor(random() * 256);
        }
      }
      const result = decodeKiteBinary(frame);
      expect(['ticks', 'heartbeat', 'invalid']).toContain(result.kind);
      if (result.kind === 'ticks') {
        for (const tick of result.ticks) {
          expect(Number.isFinite(tick.ltp)).toBe(true);
          expect(tick.ltp).toBeGreaterThanOrEqual(0);
        }
      }
    }
  });
});

describe('scaled', () => {
  it('writes the exact decimal', () => {
    expect(scaleDecimal(295055, 2)).toBe(2950.55);
    expect(scaleDecimal(5, 2)).toBe(0.05);
    expect(scaleDecimal(0, 2)).toBe(0);
    expect(scaleDecimal(5, 7)).toBe(0.0000005);
    expect(scaleDecimal(834525000, 7)).toBe(83.4525);
    expect(scaleDecimal(834550, 4)).toBe(83.455);
    expect(scaleDecimal(0xffffffff, 2)).toBe(42949672.95);
  });

  it('is the double nearest the decimal for every scale', () => {
    for (let raw = 0; raw < 200_000; raw += 7) {
      expect(scaleDecimal(raw, 2)).toBe(Number(`${Math.floor(raw / 100)}.${String(raw % 100).padStart(2, '0')}`));
    }
  });
});
