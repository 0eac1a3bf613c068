/**
 * A simulated market: a pure, seeded model of trades, prices and order books, and the JSON tick
 * payloads OpenAlgo's Zerodha adapter would publish for them. No timers and no I/O; the adapter
 * decides when to step it. The same seed and the same calls give the same output.
 *
 * Prices are held as whole ticks and printed from whole paise, so every price is exactly on its
 * tick grid and prints with two decimals (`1418.00`), as a Python client sees Kite's floats.
 */
import type { Mode } from '../../protocol/modes.js';
import type { Instrument, InstrumentKind } from './instruments.js';

/** mulberry32: a small, fast, seeded PRNG returning floats in [0, 1). */
export function createRng(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface SimulatedMarketOptions {
  instruments: readonly Instrument[];
  rng: () => number;
  /** Epoch ms, used as each trade's time (`ltt`). */
  now: () => number;
}

const DEPTH_LEVELS = 5;
/** Pull towards the reference per trade: long runs stay within a couple of percent of it. */
const MEAN_REVERSION = 0.0002;
/** Circuit band around the previous close, as NSE's price bands cap a day's range. */
const BAND = 0.2;
/** Lowest LTP in ticks, so five descending bid levels always stay above zero. */
const MIN_LTP_TICKS = 16;

interface KindProfile {
  /** Standard deviation of one trade's relative price move, unless the instrument sets its own. */
  volatility: number;
  /** Largest trade, in lots (shares for cash equities). */
  maxTradeLots: number;
  /** Largest quantity at one depth level, in lots. */
  maxLevelLots: number;
  /** Typical quantity resting beyond the five visible levels, in lots. */
  restingLots: number;
}

const PROFILES: Record<InstrumentKind, KindProfile> = {
  equity: { volatility: 0.0003, maxTradeLots: 1000, maxLevelLots: 2000, restingLots: 300_000 },
  future: { volatility: 0.00012, maxTradeLots: 20, maxLevelLots: 40, restingLots: 5_000 },
  index: { volatility: 0.00008, maxTradeLots: 0, maxLevelLots: 0, restingLots: 0 },
};

interface InstrumentState {
  readonly profile: KindProfile;
  readonly volatility: number;
  readonly tradable: boolean;
  readonly tickPaise: number;
  readonly lot: number;
  /** Payload openings up to `"ltp":`, one per mode, built once (symbol/exchange JSON-escaped). */
  readonly heads: Record<Mode, string>;
  readonly closeTicks: number;
  /** Open and close never change during the day, so they are formatted once. */
  readonly openText: string;
  readonly closeText: string;
  readonly bandLow: number;
  readonly bandHigh: number;
  /** Unrounded price in ticks; the LTP is this rounded to the grid. */
  fair: number;
  ltp: number;
  readonly open: number;
  high: number;
  low: number;
  volume: number;
  /** Sum of price (paise) × quantity, for the volume-weighted average price. */
  turnover: number;
  lastQuantity: number;
  lastTradeTime: number;
  /** A trade happened since the order book was last built. */
  bookStale: boolean;
  restingBuy: number;
  restingSell: number;
  readonly bidPrice: Int32Array;
  readonly bidQuantity: Int32Array;
  readonly bidOrders: Int32Array;
  readonly askPrice: Int32Array;
  readonly askQuantity: Int32Array;
  readonly askOrders: Int32Array;
}

export class SimulatedMarket {
  private readonly rng: () => number;
  private readonly now: () => number;
  /** exchange → symbol → state; two levels so a lookup builds no key string. */
  private readonly states = new Map<string, Map<string, InstrumentState>>();
  private readonly list: Instrument[] = [];

  constructor(options: SimulatedMarketOptions) {
    this.rng = options.rng;
    this.now = options.now;
    for (const instrument of options.instruments) {
      let bySymbol = this.states.get(instrument.exchange);
      if (!bySymbol) {
        bySymbol = new Map();
        this.states.set(instrument.exchange, bySymbol);
      }
      if (bySymbol.has(instrument.symbol)) continue;
      bySymbol.set(instrument.symbol, this.initialState(instrument));
      this.list.push({ ...instrument });
    }
  }

  /** The instruments this market trades, in the order given. */
  instruments(): readonly Instrument[] {
    return this.list;
  }

  has(exchange: string, symbol: string): boolean {
    return this.states.get(exchange)?.has(symbol) ?? false;
  }

  /** Advances the instrument by one trade (for an index, one recomputation). */
  step(exchange: string, symbol: string): void {
    const s = this.state(exchange, symbol);
    const { rng } = this;
    s.fair += s.fair * s.volatility * this.gaussian() + MEAN_REVERSION * (s.closeTicks - s.fair);
    s.fair = Math.min(s.bandHigh, Math.max(s.bandLow, s.fair));
    s.ltp = Math.round(s.fair);
    if (s.ltp > s.high) s.high = s.ltp;
    if (s.ltp < s.low) s.low = s.ltp;
    s.lastTradeTime = Math.floor(this.now());
    if (!s.tradable) return;

    // Heavy-tailed sizes: mostly small trades, occasionally a block.
    const lots = 1 + Math.floor(rng() ** 3 * s.profile.maxTradeLots);
    s.lastQuantity = lots * s.lot;
    s.volume += s.lastQuantity;
    s.turnover += s.ltp * s.tickPaise * s.lastQuantity;
    // The book is rebuilt only when a quote or depth payload needs it: most of a step's cost,
    // and LTP-only streams never look at it.
    s.bookStale = true;
  }

  /**
   * The JSON text of the tick payload for `mode`, stamped with `nowMs` as `timestamp`. A quote or
   * depth payload after a trade first builds the order book (drawing random numbers).
   */
  payload(exchange: string, symbol: string, mode: Mode, nowMs: number): string {
    const s = this.state(exchange, symbol);
    const p = s.tickPaise;
    let out = s.heads[mode] + cents(s.ltp * p) + ',"ltt":' + s.lastTradeTime + ',"timestamp":' + Math.floor(nowMs);
    if (mode === 1) return out + '}';

    if (s.tradable) {
      if (s.bookStale) this.rebuildBook(s);
      const average = s.volume > 0 ? Math.round(s.turnover / s.volume) : s.ltp * p;
      out +=
        ',"volume":' + s.volume +
        ',"last_quantity":' + s.lastQuantity +
        ',"average_price":' + cents(average) +
        ',"total_buy_quantity":' + (s.restingBuy + sum(s.bidQuantity)) +
        ',"total_sell_quantity":' + (s.restingSell + sum(s.askQuantity));
    }
    const changePaise = (s.ltp - s.closeTicks) * p;
    const changeBasisPoints = Math.round((changePaise * 10_000) / (s.closeTicks * p));
    out +=
      ',"open":' + s.openText +
      ',"high":' + cents(s.high * p) +
      ',"low":' + cents(s.low * p) +
      ',"close":' + s.closeText +
      ',"change":' + cents(changePaise) +
      ',"change_percent":' + cents(changeBasisPoints);
    if (mode === 2 || !s.tradable) return out + '}';

    return (
      out +
      ',"depth":{"buy":' + levels(s.bidPrice, s.bidQuantity, s.bidOrders, p) +
      ',"sell":' + levels(s.askPrice, s.askQuantity, s.askOrders, p) + '}}'
    );
  }

  private state(exchange: string, symbol: string): InstrumentState {
    const s = this.states.get(exchange)?.get(symbol);
    if (!s) throw new Error(`simulator has no instrument ${exchange}:${symbol}`);
    return s;
  }

  private initialState(instrument: Instrument): InstrumentState {
    const tickPaise = Math.round(instrument.tickSize * 100);
    if (!(tickPaise >= 1) || Math.abs(instrument.tickSize * 100 - tickPaise) > 1e-9) {
      throw new Error(`tick size of ${instrument.exchange}:${instrument.symbol} must be a whole number of paise`);
    }
    if (!(instrument.price > 0)) {
      throw new Error(`reference price of ${instrument.exchange}:${instrument.symbol} must be positive`);
    }
    const profile = PROFILES[instrument.kind];
    const volatility = instrument.volatility ?? profile.volatility;
    const closeTicks = Math.max(1, Math.round((instrument.price * 100) / tickPaise));
    const bandLow = Math.max(MIN_LTP_TICKS, Math.ceil(closeTicks * (1 - BAND)));
    const bandHigh = Math.max(bandLow, Math.floor(closeTicks * (1 + BAND)));
    // The day opens with a small gap from the previous close.
    const fair = Math.min(bandHigh, Math.max(bandLow, closeTicks * (1 + 30 * volatility * this.gaussian())));
    const ltp = Math.round(fair);
    const lot = Math.max(1, instrument.lotSize);
    const tradable = instrument.kind !== 'index';
    const prefix = `{"symbol":${JSON.stringify(instrument.symbol)},"exchange":${JSON.stringify(instrument.exchange)},"mode":`;
    const state: InstrumentState = {
      profile,
      volatility,
      tradable,
      tickPaise,
      lot,
      heads: { 1: prefix + '"ltp","ltp":', 2: prefix + '"quote","ltp":', 3: prefix + '"full","ltp":' },
      closeTicks,
      openText: cents(ltp * tickPaise),
      closeText: cents(closeTicks * tickPaise),
      bandLow,
      bandHigh,
      fair,
      ltp,
      open: ltp,
      high: ltp,
      low: ltp,
      volume: 0,
      turnover: 0,
      lastQuantity: 0,
      lastTradeTime: Math.floor(this.now()),
      bookStale: false,
      restingBuy: tradable ? Math.round(profile.restingLots * lot * (0.5 + this.rng())) : 0,
      restingSell: tradable ? Math.round(profile.restingLots * lot * (0.5 + this.rng())) : 0,
      bidPrice: new Int32Array(DEPTH_LEVELS),
      bidQuantity: new Int32Array(DEPTH_LEVELS),
      bidOrders: new Int32Array(DEPTH_LEVELS),
      askPrice: new Int32Array(DEPTH_LEVELS),
      askQuantity: new Int32Array(DEPTH_LEVELS),
      askOrders: new Int32Array(DEPTH_LEVELS),
    };
    if (tradable) this.rebuildDepth(state);
    return state;
  }

  private rebuildBook(s: InstrumentState): void {
    s.restingBuy = this.drift(s.restingBuy, s.profile.restingLots * s.lot);
    s.restingSell = this.drift(s.restingSell, s.profile.restingLots * s.lot);
    this.rebuildDepth(s);
    s.bookStale = false;
  }

  /**
   * A fresh five-level book around the last trade: the trade hit one side, so the LTP is the best
   * bid or the best ask, and the other side is one or two ticks away.
   */
  private rebuildDepth(s: InstrumentState): void {
    const { rng } = this;
    const spread = rng() < 0.7 ? 1 : 2;
    const tradedAtBid = rng() < 0.5;
    let bid = tradedAtBid ? s.ltp : s.ltp - spread;
    let ask = tradedAtBid ? s.ltp + spread : s.ltp;
    for (let i = 0; i < DEPTH_LEVELS; i++) {
      if (i > 0) {
        bid -= this.levelGap();
        ask += this.levelGap();
      }
      s.bidPrice[i] = bid;
      s.askPrice[i] = ask;
      this.fillLevel(s, s.bidQuantity, s.bidOrders, i);
      this.fillLevel(s, s.askQuantity, s.askOrders, i);
    }
  }

  /** Mostly adjacent ticks, sometimes a gap of two or three. */
  private levelGap(): number {
    return this.rng() < 0.75 ? 1 : 2 + Math.floor(this.rng() * 2);
  }

  private fillLevel(s: InstrumentState, quantity: Int32Array, orders: Int32Array, i: number): void {
    const lots = 1 + Math.floor(this.rng() ** 2 * s.profile.maxLevelLots);
    quantity[i] = lots * s.lot;
    orders[i] = 1 + Math.floor(this.rng() * Math.min(lots, 25));
  }

  /** A few percent of random drift, kept within a factor of two of the typical value. */
  private drift(value: number, typical: number): number {
    const next = Math.round(value * (1 + 0.04 * (this.rng() - 0.5)));
    return Math.min(2 * typical, Math.max(Math.ceil(typical / 2), next));
  }

  /** Approximately standard normal (sum of four uniforms): cheap and bounded. */
  private gaussian(): number {
    const { rng } = this;
    return (rng() + rng() + rng() + rng() - 2) * 1.7320508075688772;
  }
}

/** Whole paise (or basis points) as a decimal with exactly two places: 141800 → "1418.00". */
function cents(value: number): string {
  const negative = value < 0;
  const abs = negative ? -value : value;
  const fraction = abs % 100;
  return (negative ? '-' : '') + ((abs - fraction) / 100) + (fraction < 10 ? '.0' : '.') + fraction;
}

function levels(price: Int32Array, quantity: Int32Array, orders: Int32Array, tickPaise: number): string {
  let out = '[';
  for (let i = 0; i < DEPTH_LEVELS; i++) {
    if (i > 0) out += ',';
    out += '{"price":' + cents(price[i]! * tickPaise) + ',"quantity":' + quantity[i] + ',"orders":' + orders[i] + '}';
  }
  return out + ']';
}

function sum(values: Int32Array): number {
  let total = 0;
  for (let i = 0; i < values.length; i++) total += values[i]!;
  return total;
}
