/** Symbol search for the dashboard: query parsing, ranking, and the symbol master's prefix query. */
import { afterEach, describe, expect, it } from 'vitest';
import { DEFAULT_INSTRUMENTS } from '../../src/adapters/simulator/instruments.js';
import { SymbolCatalog, parseSymbolQuery, rankHits } from '../../src/http/symbol-catalog.js';
import { type Database, openDatabase } from '../../src/store/database.js';
import { ensureSymbolSchema } from '../../src/symbols/master.js';

let db: Database | undefined;
afterEach(() => db?.close());

function masterWith(rows: Array<[broker: string, exchange: string, symbol: string, name: string, type: string]>): Database {
  db = openDatabase(':memory:');
  ensureSymbolSchema(db);
  const insert = db.prepare(
    "INSERT INTO symtoken (symbol, brsymbol, name, exchange, brexchange, token, expiry, strike, lotsize, instrumenttype, tick_size, broker) VALUES (?, ?, ?, ?, ?, '1', '', 0, 1, ?, 0.05, ?)",
  );
  for (const [broker, exchange, symbol, name, type] of rows) insert.run(symbol, symbol, name, exchange, exchange, type, broker);
  return db;
}

describe('parseSymbolQuery', () => {
  it('upper-cases, splits an exchange filter and defaults the limit', () => {
    expect(parseSymbolQuery(' rel ', null)).toEqual({ text: 'REL', limit: 20 });
    expect(parseSymbolQuery('bse:rel', '5')).toEqual({ text: 'REL', exchange: 'BSE', limit: 5 });
    expect(parseSymbolQuery(null, null)).toEqual({ text: '', limit: 20 });
    expect(parseSymbolQuery(':TCS', null)).toEqual({ text: 'TCS', limit: 20 });
    expect(parseSymbolQuery('M&M', null)).toEqual({ text: 'M&M', limit: 20 });
  });

  it('refuses what can never match, with a reason', () => {
    expect(parseSymbolQuery('x'.repeat(65), null)).toMatch(/64 characters/);
    expect(parseSymbolQuery('REL%', null)).toMatch(/letters, digits/);
    expect(parseSymbolQuery("A' OR 1=1", null)).toMatch(/letters, digits/);
    for (const limit of ['0', '51', '-1', '2.5', 'ten', '']) expect(parseSymbolQuery('A', limit), limit).toMatch(/limit must be/);
  });
});

describe('rankHits', () => {
  const hits = [
    { exchange: 'NSE', symbol: 'BANKNIFTY', kind: 'index' },
    { exchange: 'NSE', symbol: 'NIFTY', kind: 'index' },
    { exchange: 'NSE', symbol: 'NIFTYNXT50', kind: 'index' },
    { exchange: 'NFO', symbol: 'NIFTY30DEC26FUT', kind: 'future' },
    { exchange: 'NSE', symbol: 'INFY', kind: 'equity', name: 'Infosys' },
  ];

  it('puts exact matches first, then prefixes, then substrings, then names', () => {
    const symbols = (text: string): string[] => rankHits(hits, { text, limit: 10 }).map((h) => h.symbol);
    expect(symbols('NIFTY')).toEqual(['NIFTY', 'NIFTYNXT50', 'NIFTY30DEC26FUT', 'BANKNIFTY']);
    expect(symbols('INFOSYS')).toEqual(['INFY']);
    expect(symbols('ZZZ')).toEqual([]);
  });

  it('applies the exchange filter and the limit, and lists each instrument once', () => {
    expect(rankHits(hits, { text: 'NIFTY', exchange: 'NFO', limit: 10 }).map((h) => h.symbol)).toEqual(['NIFTY30DEC26FUT']);
    expect(rankHits(hits, { text: '', limit: 2 })).toHaveLength(2);
    expect(rankHits([...hits, ...hits], { text: 'INFY', limit: 10 })).toHaveLength(1);
    const listed = [{ exchange: 'BSE', symbol: 'TCS', kind: 'equity' }, { exchange: 'XYZ', symbol: 'TCS', kind: 'equity' }, { exchange: 'NSE', symbol: 'TCS', kind: 'equity' }];
    expect(rankHits(listed, { text: 'TCS', limit: 10 }).map((h) => h.exchange)).toEqual(['NSE', 'BSE', 'XYZ']);
  });
});

describe('SymbolCatalog', () => {
  it("searches the simulator's instruments for users of the simulator only", () => {
    const catalog = new SymbolCatalog({ simulator: { broker: 'simulator', instruments: DEFAULT_INSTRUMENTS } });
    const found = catalog.search({ text: 'REL', limit: 10 }, ['simulator']);
    expect(found.map((h) => `${h.exchange}:${h.symbol}`)).toEqual(['NSE:RELIANCE', 'BSE:RELIANCE']);
    expect(found[0]).toEqual({ exchange: 'NSE', symbol: 'RELIANCE', kind: 'equity' });
    expect(catalog.search({ text: 'REL', limit: 10 }, ['zerodha'])).toEqual([]);
    expect(catalog.search({ text: 'REL', limit: 10 }, [])).toEqual([]);
  });

  it("searches the symbol master's rows of the user's broker by symbol prefix", () => {
    const catalog = new SymbolCatalog({
      db: masterWith([
        ['zerodha', 'NSE', 'RELIANCE', 'RELIANCE INDUSTRIES', 'EQ'],
        ['zerodha', 'BSE', 'RELIANCE', 'RELIANCE INDUSTRIES', 'EQ'],
        ['zerodha', 'NFO', 'RELIANCE30DEC26FUT', 'RELIANCE', 'FUT'],
        ['zerodha', 'NSE', 'TCS', 'TATA CONSULTANCY', 'EQ'],
        ['angel', 'NSE', 'RELAXO', 'RELAXO FOOTWEARS', 'EQ'],
      ]),
    });
    const found = catalog.search({ text: 'REL', limit: 10 }, ['zerodha']);
    expect(found.map((h) => `${h.exchange}:${h.symbol}`)).toEqual(['NSE:RELIANCE', 'BSE:RELIANCE', 'NFO:RELIANCE30DEC26FUT']);
    expect(found[0]).toEqual({ exchange: 'NSE', symbol: 'RELIANCE', kind: 'eq', name: 'RELIANCE INDUSTRIES' });
    expect(catalog.search({ text: 'REL', exchange: 'NFO', limit: 10 }, ['zerodha']).map((h) => h.symbol)).toEqual(['RELIANCE30DEC26FUT']);
    expect(catalog.search({ text: 'REL', limit: 10 }, ['angel']).map((h) => h.symbol)).toEqual(['RELAXO']);
    expect(catalog.search({ text: 'REL', limit: 1 }, ['zerodha'])).toHaveLength(1);
  });

  it('treats query text as data, not SQL or patterns', () => {
    const catalog = new SymbolCatalog({ db: masterWith([['zerodha', 'NSE', 'M&M', 'MAHINDRA', 'EQ'], ['zerodha', 'NSE', 'MARUTI', 'MARUTI SUZUKI', 'EQ']]) });
    expect(catalog.search({ text: 'M&', limit: 10 }, ['zerodha']).map((h) => h.symbol)).toEqual(['M&M']);
    expect(catalog.search({ text: "M' OR '1'='1", limit: 10 }, ['zerodha'])).toEqual([]);
    expect(catalog.search({ text: '%', limit: 10 }, ['zerodha'])).toEqual([]);
  });
});
