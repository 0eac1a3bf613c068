/**
 * The simulator's instrument universe: a default list of liquid Indian instruments with plausible
 * reference prices, and the parser for a user-supplied list (`TICKCAST_SIM_SYMBOLS`).
 */
import { formatTopic, parseTopic, SHARED_FEED } from '../../protocol/topics.js';

export type InstrumentKind = 'equity' | 'index' | 'future';

export interface Instrument {
  exchange: string;
  symbol: string;
  /** Reference price in rupees: the previous close the simulated day starts from. */
  price: number;
  /** Price grid in rupees; must be a whole number of paise. */
  tickSize: number;
  /** Exchange lot size (1 for cash equities, 0 for indices, as Kite's instrument master has it). */
  lotSize: number;
  kind: InstrumentKind;
  /** Standard deviation of one trade's relative price move, where the kind's default does not fit. */
  volatility?: number;
}

function equity(exchange: string, symbol: string, price: number): Instrument {
  return { exchange, symbol, price, tickSize: 0.05, lotSize: 1, kind: 'equity' };
}

function index(exchange: string, symbol: string, price: number, volatility?: number): Instrument {
  const instrument: Instrument = { exchange, symbol, price, tickSize: 0.05, lotSize: 0, kind: 'index' };
  if (volatility !== undefined) instrument.volatility = volatility;
  return instrument;
}

function future(exchange: string, symbol: string, price: number, tickSize: number, lotSize: number): Instrument {
  return { exchange, symbol, price, tickSize, lotSize, kind: 'future' };
}

const NSE_EQUITIES: ReadonlyArray<readonly [string, number]> = [
  ['RELIANCE', 1418.0], ['TCS', 3120.5], ['HDFCBANK', 985.5], ['INFY', 1520.3], ['ICICIBANK', 1410.2],
  ['SBIN', 815.45], ['BHARTIARTL', 1890.0], ['ITC', 412.35], ['HINDUNILVR', 2350.8], ['LT', 3580.0],
  ['KOTAKBANK', 2080.6], ['AXISBANK', 1165.25], ['BAJFINANCE', 935.4], ['MARUTI', 12450.0],
  ['SUNPHARMA', 1680.15], ['TITAN', 3420.7], ['ASIANPAINT', 2390.0], ['HCLTECH', 1560.9],
  ['WIPRO', 255.35], ['ULTRACEMCO', 11800.0], ['NTPC', 340.6], ['POWERGRID', 295.2], ['ONGC', 245.85],
  ['TATAMOTORS', 690.4], ['TATASTEEL', 158.3], ['M&M', 3150.0], ['ADANIENT', 2450.55],
  ['ADANIPORTS', 1420.0], ['COALINDIA', 385.75], ['JSWSTEEL', 1050.1], ['NESTLEIND', 2420.0],
  ['TECHM', 1480.65], ['BAJAJ-AUTO', 8650.0], ['HINDALCO', 700.2], ['DRREDDY', 1270.4],
  ['CIPLA', 1520.0], ['EICHERMOT', 5600.5], ['GRASIM', 2750.3], ['HEROMOTOCO', 4450.0],
  ['BRITANNIA', 5700.0], ['APOLLOHOSP', 7500.0], ['INDUSINDBK', 760.85], ['TATACONSUM', 1090.0],
  ['SBILIFE', 1800.4], ['HDFCLIFE', 760.15], ['BEL', 410.6], ['TRENT', 5200.0], ['ETERNAL', 320.45],
];

/** Large caps also listed on BSE, so the same symbol on two exchanges can be tested. */
const BSE_EQUITIES: ReadonlyArray<readonly [string, number]> = [
  ['RELIANCE', 1418.0], ['TCS', 3120.5], ['HDFCBANK', 985.5], ['INFY', 1520.3], ['SBIN', 815.45],
];

export const DEFAULT_INSTRUMENTS: readonly Readonly<Instrument>[] = Object.freeze([
  ...NSE_EQUITIES.map(([symbol, price]) => equity('NSE', symbol, price)),
  ...BSE_EQUITIES.map(([symbol, price]) => equity('BSE', symbol, price)),
  index('NSE_INDEX', 'NIFTY', 24850.0),
  index('NSE_INDEX', 'BANKNIFTY', 55300.0),
  index('NSE_INDEX', 'FINNIFTY', 26400.0),
  index('NSE_INDEX', 'MIDCPNIFTY', 12800.0),
  index('NSE_INDEX', 'NIFTYNXT50', 67000.0),
  index('NSE_INDEX', 'INDIAVIX', 13.25, 0.002), // a volatility index moves far more than its price suggests
  index('BSE_INDEX', 'SENSEX', 81500.0),
  index('BSE_INDEX', 'BANKEX', 62500.0),
  future('NFO', 'NIFTY30DEC26FUT', 25100.0, 0.05, 75),
  future('NFO', 'BANKNIFTY30DEC26FUT', 55800.0, 0.05, 35),
  future('MCX', 'CRUDEOIL18DEC26FUT', 5650.0, 1, 100),
  future('MCX', 'GOLD05FEB27FUT', 97500.0, 1, 1),
].map((instrument) => Object.freeze(instrument)));

const DERIVATIVE_EXCHANGES = new Set(['NFO', 'BFO', 'MCX', 'CDS', 'BCD', 'NCDEX']);
const ENTRY = /^([A-Z][A-Z0-9_]*):([A-Z0-9][A-Z0-9&._-]*)$/;
const MAX_NAME_LENGTH = 64;

/**
 * Parses `"NSE:RELIANCE, NSE:FOO"` into instruments. Known instruments keep their defaults;
 * unknown ones get a price derived from a hash of their name, so every run agrees. Entries are
 * upper-cased (exchange symbols are upper case everywhere), blank entries are skipped and
 * duplicates are kept once. Throws an Error naming the first malformed entry.
 */
export function parseInstrumentList(text: string): Instrument[] {
  const known = new Map(DEFAULT_INSTRUMENTS.map((i) => [`${i.exchange}:${i.symbol}`, i]));
  const seen = new Set<string>();
  const result: Instrument[] = [];
  for (const raw of text.split(',')) {
    const entry = raw.trim();
    if (entry === '') continue;
    const [exchange, symbol] = parseEntry(entry);
    const key = `${exchange}:${symbol}`;
    if (seen.has(key)) continue;
    seen.add(key);
    const preset = known.get(key);
    result.push(preset ? { ...preset } : synthesize(exchange, symbol));
  }
  if (result.length === 0) throw new Error('simulator symbol list is empty: expected EXCHANGE:SYMBOL[,EXCHANGE:SYMBOL…]');
  return result;
}

function parseEntry(entry: string): [string, string] {
  const normalised = entry.split(':').map((part) => part.trim()).join(':').toUpperCase();
  const match = ENTRY.exec(normalised);
  if (!match) {
    throw new Error(`invalid simulator symbol "${entry}": expected EXCHANGE:SYMBOL, for example NSE:RELIANCE`);
  }
  const exchange = match[1]!;
  const symbol = match[2]!;
  if (exchange.length > MAX_NAME_LENGTH || symbol.length > MAX_NAME_LENGTH) {
    throw new Error(`invalid simulator symbol "${entry}": names are limited to ${MAX_NAME_LENGTH} characters`);
  }
  // The gateway recovers exchange and symbol from the bus topic; refuse names that would not
  // survive that trip (for example an exchange with "_" that is not a known index exchange).
  const parsed = parseTopic(formatTopic(SHARED_FEED, exchange, symbol, 1));
  if (parsed.kind !== 'market' || parsed.exchange !== exchange || parsed.symbol !== symbol) {
    throw new Error(`invalid simulator symbol "${entry}": "${exchange}" and "${symbol}" cannot be told apart in a bus topic`);
  }
  return [exchange, symbol];
}

function kindOf(exchange: string): InstrumentKind {
  if (exchange.endsWith('_INDEX')) return 'index';
  return DERIVATIVE_EXCHANGES.has(exchange) ? 'future' : 'equity';
}

/** A deterministic, plausible instrument for a name the default list does not know. */
function synthesize(exchange: string, symbol: string): Instrument {
  const kind = kindOf(exchange);
  const hash = fnv1a(`${exchange}:${symbol}`);
  // Whole ticks of 5 paise: 50–5050 rupees for stocks and futures, 5000–55000 for indices.
  const ticks = kind === 'index' ? 100_000 + (hash % 1_000_000) : 1_000 + (hash % 100_000);
  const price = (ticks * 5) / 100;
  return { exchange, symbol, price, tickSize: 0.05, lotSize: kind === 'index' ? 0 : 1, kind };
}

function fnv1a(text: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return hash >>> 0;
}

/** The simulator's instruments as configured (TICKCAST_SIM_SYMBOLS): that list, or the built-in one when empty. */
export function configuredInstruments(symbols: string): readonly Instrument[] {
  return symbols ? parseInstrumentList(symbols) : DEFAULT_INSTRUMENTS;
}
