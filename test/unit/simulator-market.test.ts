import { describe, it, expect } from 'vitest';
import { DEFAULT_INSTRUMENTS, parseInstrumentList, type Instrument } from '../../src/adapters/simulator/instruments.js';
import { SimulatedMarket, createRng } from '../../src/adapters/simulator/market.js';
import type { Mode } from '../../src/protocol/modes.js';

interface Level {
  price: number;
  quantity: number;
  orders: number;
}

const LTP_KEYS = ['symbol', 'exchange', 'mode', 'ltp', 'ltt', 'timestamp'];
const INDEX_QUOTE_KEYS = [...LTP_KEYS, 'open', 'high', 'low', 'close', 'change', 'change_percent'];
const QUOTE_KEYS = [
  ...LTP_KEYS, 'volume', 'last_quantity', 'average_price', 'total_buy_quantity', 'total_sell_quantity',
  'open', 'high', 'low', 'close', 'change', 'change_percent',
];
const FULL_KEYS = [...QUOTE_KEYS, 'depth'];

function find(exchange: string, symbol: string): Instrument {
  const instrument = DEFAULT_INSTRUMENTS.find((i) => i.exchange === exchange && i.symbol === symbol);
  if (!instrument) throw new Error(`no default ${exchange}:${symbol}`);
  return instrument;
}

function makeMarket(seed: number, instruments: readonly Instrument[] = DEFAULT_INSTRUMENTS, now = () => 1_700_000_000_000) {
  return new SimulatedMarket({ instruments, rng: createRng(seed), now });
}

/** Price in whole paise, checking it really is a two-decimal value. */
function paise(value: number): number {
  const p = Math.round(value * 100);
  expect(Math.abs(value * 100 - p)).toBeLessThan(1e-6);
  return p;
}

function parse(market: SimulatedMarket, i: Instrument, mode: Mode, now = 1_700_000_000_123): Record<string, unknown> {
  return JSON.parse(market.payload(i.exchange, i.symbol, mode, now)) as Record<string, unknown>;
}

/** A full tick with every price in whole paise (integers), so checks need no float equality. */
interface Snapshot {
  ltp: number;
  open: number;
  high: number;
  low: number;
  close: number;
  average: number;
  volume: number;
  lastQuantity: number;
  totalBuy: number;
  totalSell: number;
  bids: Level[];
  asks: Level[];
  offGrid: number[];
}

function toPaise(value: unknown, offGrid: number[]): number {
  const v = value as number;
  const p = Math.round(v * 100);
  if (Math.abs(v * 100 - p) > 1e-6) offGrid.push(v);
  return p;
}

function snapshotOf(d: Record<string, unknown>): Snapshot {
  const offGrid: number[] = [];
  const depth = d.depth as { buy: Level[]; sell: Level[] };
  const level = (l: Level): Level => ({ price: toPaise(l.price, offGrid), quantity: l.quantity, orders: l.orders });
  return {
    ltp: toPaise(d.ltp, offGrid),
    open: toPaise(d.open, offGrid),
    high: toPaise(d.high, offGrid),
    low: toPaise(d.low, offGrid),
    close: toPaise(d.close, offGrid),
    average: toPaise(d.average_price, offGrid),
    volume: d.volume as number,
    lastQuantity: d.last_quantity as number,
    totalBuy: d.total_buy_quantity as number,
    totalSell: d.total_sell_quantity as number,
    bids: depth.buy.map(level),
    asks: depth.sell.map(level),
    offGrid,
  };
}

function checkTick(i: Instrument, s: Snapshot, previous: Snapshot | undefined): string[] {
  const problems: string[] = [];
  const tick = Math.round(i.tickSize * 100);
  const isCount = (q: number) => Number.isInteger(q) && q > 0;
  if (s.offGrid.length > 0) problems.push(`not whole paise: ${s.offGrid.join(', ')}`);
  const prices = [s.ltp, s.open, s.high, s.low, s.close, ...s.bids.map((l) => l.price), ...s.asks.map((l) => l.price)];
  for (const p of prices) {
    if (p % tick !== 0) problems.push(`${p} paise is off the ${tick}-paise grid`);
    if (p <= 0) problems.push(`non-positive price ${p}`);
  }
  if (!(s.high >= s.ltp && s.ltp >= s.low)) problems.push(`ltp ${s.ltp} outside [${s.low}, ${s.high}]`);
  if (!(s.high >= s.open && s.open >= s.low)) problems.push(`open ${s.open} outside [${s.low}, ${s.high}]`);
  if (!(s.low <= s.average && s.average <= s.high)) problems.push(`average ${s.average} outside [${s.low}, ${s.high}]`);
  if (!isCount(s.lastQuantity) || s.lastQuantity % Math.max(1, i.lotSize) !== 0) {
    problems.push(`bad last quantity ${s.lastQuantity}`);
  }
  if (previous) {
    if (s.volume - previous.volume !== s.lastQuantity) problems.push(`volume ${previous.volume} → ${s.volume}`);
    if (s.high < previous.high || s.low > previous.low) problems.push('day range narrowed');
    if (s.open !== previous.open || s.close !== previous.close) problems.push('open or close changed');
  }
  if (s.bids.length !== 5 || s.asks.length !== 5) problems.push('depth is not 5 levels');
  const bestBid = s.bids[0]!.price;
  const bestAsk = s.asks[0]!.price;
  if (!(bestBid < bestAsk)) problems.push(`crossed book ${bestBid} / ${bestAsk}`);
  if (!(bestBid <= s.ltp && s.ltp <= bestAsk)) problems.push(`ltp ${s.ltp} outside ${bestBid} / ${bestAsk}`);
  for (let k = 1; k < 5; k++) {
    if (s.bids[k - 1]!.price - s.bids[k]!.price < tick) problems.push(`bids not descending at level ${k}`);
    if (s.asks[k]!.price - s.asks[k - 1]!.price < tick) problems.push(`asks not ascending at level ${k}`);
  }
  for (const l of [...s.bids, ...s.asks]) {
    if (!isCount(l.quantity) || !isCount(l.orders)) problems.push(`bad level ${JSON.stringify(l)}`);
  }
  const visible = (levels: Level[]) => levels.reduce((sum, l) => sum + l.quantity, 0);
  if (!(s.totalBuy >= visible(s.bids) && s.totalSell >= visible(s.asks))) problems.push('totals below visible depth');
  return problems;
}

describe('createRng', () => {
  it('is reproducible and in [0, 1)', () => {
    const a = createRng(42);
    const b = createRng(42);
    const c = createRng(43);
    const xs = Array.from({ length: 1000 }, () => a());
    const ys = Array.from({ length: 1000 }, () => b());
    const zs = Array.from({ length: 1000 }, () => c());
    expect(xs).toEqual(ys);
    expect(xs).not.toEqual(zs);
    for (const x of xs) {
      expect(x).toBeGreaterThanOrEqual(0);
      expect(x).toBeLessThan(1);
    }
    const mean = xs.reduce((s, x) => s + x, 0) / xs.length;
    expect(mean).toBeGreaterThan(0.45);
    expect(mean).toBeLessThan(0.55);
  });
});

describe('SimulatedMarket invariants', () => {
  const tradables = [
    find('NSE', 'RELIANCE'), find('NSE', 'SBIN'), find('BSE', 'RELIANCE'), find('NSE', 'MARUTI'),
    find('NSE', 'TATASTEEL'), find('NFO', 'NIFTY30DEC26FUT'), find('MCX', 'CRUDEOIL18DEC26FUT'),
  ];
  const indices = [find('NSE_INDEX', 'NIFTY'), find('BSE_INDEX', 'SENSEX'), find('NSE_INDEX', 'INDIAVIX')];

  it('keeps prices on the tick grid, depth ordered around the LTP, volume cumulative', () => {
    const market = makeMarket(7);
    for (const i of tradables) {
      const problems: string[] = [];
      const distinctPrices = new Set<number>();
      let previous: Snapshot | undefined;
      for (let n = 0; n < 3000; n++) {
        market.step(i.exchange, i.symbol);
        const snapshot = snapshotOf(JSON.parse(market.payload(i.exchange, i.symbol, 3, 0)) as Record<string, unknown>);
        problems.push(...checkTick(i, snapshot, previous).map((p) => `step ${n}: ${p}`));
        distinctPrices.add(snapshot.ltp);
        previous = snapshot;
      }
      // Plain loops above, one assertion here: thousands of expect() calls are slow.
      expect(problems.slice(0, 5), `${i.exchange}:${i.symbol}`).toEqual([]);
      // It is a walk, not a constant, and it stays within the circuit band.
      expect(distinctPrices.size).toBeGreaterThan(5);
      expect(Math.abs(previous!.high / 100 - i.price) / i.price).toBeLessThan(0.21);
      expect(Math.abs(previous!.low / 100 - i.price) / i.price).toBeLessThan(0.21);
    }
  });

  it('moves indices without volume or depth', () => {
    const market = makeMarket(11);
    const expectedKeys = [...INDEX_QUOTE_KEYS].sort().join(',');
    for (const i of indices) {
      const problems: string[] = [];
      const seen = new Set<number>();
      for (let n = 0; n < 3000; n++) {
        market.step(i.exchange, i.symbol);
        const d = JSON.parse(market.payload(i.exchange, i.symbol, 3, 0)) as Record<string, number>;
        const keys = Object.keys(d).sort().join(',');
        if (keys !== expectedKeys) problems.push(`keys ${keys}`);
        const [ltp, high, low] = [d.ltp!, d.high!, d.low!].map((v) => Math.round(v * 100)) as [number, number, number];
        if (ltp % 5 !== 0 || ltp <= 0) problems.push(`ltp ${d.ltp}`);
        if (!(high >= ltp && ltp >= low)) problems.push(`ltp ${ltp} outside [${low}, ${high}]`);
        seen.add(ltp);
      }
      expect(problems.slice(0, 5), `${i.exchange}:${i.symbol}`).toEqual([]);
      expect(seen.size).toBeGreaterThan(3);
    }
  });

  it('stays positive, on the grid and in band over a long run for every default instrument', () => {
    const market = makeMarket(3);
    for (const i of DEFAULT_INSTRUMENTS) {
      const tick = Math.round(i.tickSize * 100);
      for (let n = 0; n < 2000; n++) market.step(i.exchange, i.symbol);
      const d = parse(market, i, 2);
      expect(paise(d.ltp as number) % tick).toBe(0);
      expect(paise(d.low as number)).toBeGreaterThan(0);
      expect(paise(d.high as number)).toBeLessThanOrEqual(Math.round(i.price * 120));
      expect(paise(d.low as number)).toBeGreaterThanOrEqual(Math.round(i.price * 80) - tick);
    }
  });
});

describe('SimulatedMarket payloads', () => {
  const reliance = find('NSE', 'RELIANCE');
  const nifty = find('NSE_INDEX', 'NIFTY');

  it('has exactly the expected keys per mode and kind', () => {
    const market = makeMarket(1);
    market.step('NSE', 'RELIANCE');
    market.step('NSE_INDEX', 'NIFTY');
    const cases: Array<[Instrument, Mode, string[], string]> = [
      [reliance, 1, LTP_KEYS, 'ltp'],
      [reliance, 2, QUOTE_KEYS, 'quote'],
      [reliance, 3, FULL_KEYS, 'full'],
      [nifty, 1, LTP_KEYS, 'ltp'],
      [nifty, 2, INDEX_QUOTE_KEYS, 'quote'],
      [nifty, 3, INDEX_QUOTE_KEYS, 'full'],
    ];
    for (const [i, mode, keys, label] of cases) {
      const text = market.payload(i.exchange, i.symbol, mode, 1_700_000_000_999);
      const d = JSON.parse(text) as Record<string, unknown>;
      expect(Object.keys(d)).toEqual(keys);
      expect(d.symbol).toBe(i.symbol);
      expect(d.exchange).toBe(i.exchange);
      expect(d.mode).toBe(label);
      expect(d.timestamp).toBe(1_700_000_000_999);
      expect(d.ltt).toBe(1_700_000_000_000);
    }
  });

  it('prints every price with a decimal point and quantities as integers', () => {
    const market = makeMarket(5);
    for (let n = 0; n < 50; n++) market.step('NSE', 'RELIANCE');
    const text = market.payload('NSE', 'RELIANCE', 3, 1_700_000_000_000);
    for (const key of ['ltp', 'average_price', 'open', 'high', 'low', 'close', 'change', 'change_percent', 'price']) {
      const values = [...text.matchAll(new RegExp(`"${key}":(-?[0-9.]+)`, 'g'))].map((m) => m[1]!);
      expect(values.length).toBeGreaterThan(0);
      for (const v of values) expect(v).toMatch(/^-?\d+\.\d\d$/);
    }
    for (const key of ['ltt', 'timestamp', 'volume', 'last_quantity', 'total_buy_quantity', 'total_sell_quantity', 'quantity', 'orders']) {
      const values = [...text.matchAll(new RegExp(`"${key}":(-?[0-9.]+)`, 'g'))].map((m) => m[1]!);
      expect(values.length).toBeGreaterThan(0);
      for (const v of values) expect(v).toMatch(/^\d+$/);
    }
  });

  it('reports change against the previous close, rounded to 2 dp', () => {
    const market = makeMarket(9);
    for (let n = 0; n < 500; n++) {
      market.step('NSE', 'SBIN');
      const d = JSON.parse(market.payload('NSE', 'SBIN', 2, 0)) as Record<string, number>;
      expect(d.close).toBe(815.45);
      expect(paise(d.change!)).toBe(paise(d.ltp!) - paise(d.close!));
      expect(d.change_percent).toBeCloseTo(Math.round(((d.ltp! - d.close!) / d.close!) * 10_000) / 100, 9);
    }
  });

  it('escapes symbols as JSON strings', () => {
    const odd: Instrument = { exchange: 'NSE', symbol: 'A"B\\C', price: 100, tickSize: 0.05, lotSize: 1, kind: 'equity' };
    const market = makeMarket(2, [odd, find('NSE', 'M&M')]);
    for (const mode of [1, 2, 3] as Mode[]) {
      expect((JSON.parse(market.payload('NSE', 'A"B\\C', mode, 0)) as { symbol: string }).symbol).toBe('A"B\\C');
      expect((JSON.parse(market.payload('NSE', 'M&M', mode, 0)) as { symbol: string }).symbol).toBe('M&M');
    }
  });

  it('is reproducible with the same seed and differs with another', () => {
    const run = (seed: number) => {
      const market = makeMarket(seed);
      const out: string[] = [];
      for (let n = 0; n < 200; n++) {
        for (const i of [reliance, nifty]) {
          market.step(i.exchange, i.symbol);
          out.push(market.payload(i.exchange, i.symbol, 3, n));
        }
      }
      return out;
    };
    expect(run(123)).toEqual(run(123));
    expect(run(123)).not.toEqual(run(124));
  });

  it('knows its instruments and refuses unknown ones', () => {
    const market = makeMarket(1);
    expect(market.has('NSE', 'RELIANCE')).toBe(true);
    expect(market.has('BSE', 'RELIANCE')).toBe(true);
    expect(market.has('NSE', 'NOPE')).toBe(false);
    expect(market.has('nse', 'RELIANCE')).toBe(false);
    expect(() => market.step('NSE', 'NOPE')).toThrow(/NSE:NOPE/);
    expect(() => market.payload('NSE', 'NOPE', 1, 0)).toThrow(/NSE:NOPE/);
    expect(market.instruments()).toHaveLength(DEFAULT_INSTRUMENTS.length);
  });

  it('gives a valid quote before any trade', () => {
    const market = makeMarket(4);
    const d = parse(market, reliance, 3);
    expect(d.volume).toBe(0);
    expect(d.average_price).toBe(d.ltp);
  });
});

describe('instruments', () => {
  it('has a default universe of at least 40 sensible instruments', () => {
    expect(DEFAULT_INSTRUMENTS.length).toBeGreaterThanOrEqual(40);
    const keys = DEFAULT_INSTRUMENTS.map((i) => `${i.exchange}:${i.symbol}`);
    expect(new Set(keys).size).toBe(keys.length);
    for (const key of ['NSE:RELIANCE', 'NSE:INFY', 'NSE:TCS', 'NSE:SBIN', 'NSE:HDFCBANK', 'BSE:RELIANCE',
      'NSE_INDEX:NIFTY', 'NSE_INDEX:BANKNIFTY', 'NSE_INDEX:FINNIFTY', 'BSE_INDEX:SENSEX']) {
      expect(keys).toContain(key);
    }
    for (const i of DEFAULT_INSTRUMENTS) {
      const tick = Math.round(i.tickSize * 100);
      expect(paise(i.price) % tick).toBe(0);
      // Far enough above zero for five bid levels at the lower circuit.
      expect(i.price / i.tickSize).toBeGreaterThan(200);
      expect(i.kind === 'index' ? i.exchange.endsWith('_INDEX') : !i.exchange.endsWith('_INDEX')).toBe(true);
    }
  });

  it('parses a user list, keeping defaults and pricing unknown names deterministically', () => {
    const list = parseInstrumentList(' NSE:RELIANCE, nse:foo ,,NSE_INDEX:MYINDEX,NFO:FOO30DEC26FUT,NSE:RELIANCE,');
    expect(list.map((i) => `${i.exchange}:${i.symbol}`)).toEqual([
      'NSE:RELIANCE', 'NSE:FOO', 'NSE_INDEX:MYINDEX', 'NFO:FOO30DEC26FUT',
    ]);
    expect(list[0]).toEqual(find('NSE', 'RELIANCE'));
    expect(list.map((i) => i.kind)).toEqual(['equity', 'equity', 'index', 'future']);
    const again = parseInstrumentList('NSE:FOO');
    expect(again[0]).toEqual(list[1]);
    expect(parseInstrumentList('NSE:BAR')[0]!.price).not.toBe(list[1]!.price);
    for (const i of list) {
      expect(i.price).toBeGreaterThan(0);
      expect(paise(i.price) % Math.round(i.tickSize * 100)).toBe(0);
    }
    expect(parseInstrumentList('NSE:M&M,NSE:BAJAJ-AUTO,CRYPTO:SOL_INR').map((i) => i.symbol)).toEqual([
      'M&M', 'BAJAJ-AUTO', 'SOL_INR',
    ]);
    // Parsed instruments trade in a market.
    const market = makeMarket(1, list);
    market.step('NSE', 'FOO');
    expect(JSON.parse(market.payload('NSE', 'FOO', 3, 0))).toHaveProperty('depth');
  });

  it('rejects malformed entries, naming them', () => {
    expect(() => parseInstrumentList('NSE:RELIANCE,RELIANCE')).toThrow(/"RELIANCE"/);
    expect(() => parseInstrumentList('NSE:')).toThrow(/"NSE:"/);
    expect(() => parseInstrumentList(':INFY')).toThrow(/":INFY"/);
    expect(() => parseInstrumentList('NSE:A:B')).toThrow(/"NSE:A:B"/);
    expect(() => parseInstrumentList('NSE:RELI ANCE')).toThrow(/"NSE:RELI ANCE"/);
    expect(() => parseInstrumentList('NSE:FOO|BAR')).toThrow(/"NSE:FOO\|BAR"/);
    expect(() => parseInstrumentList('NSE_EQ:FOO')).toThrow(/"NSE_EQ:FOO"/);
    expect(() => parseInstrumentList(`NSE:${'X'.repeat(65)}`)).toThrow(/64/);
    expect(() => parseInstrumentList('')).toThrow(/empty/);
    expect(() => parseInstrumentList(' , ')).toThrow(/empty/);
  });
});
