import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import zlib from 'node:zlib';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ErrorCode, TickcastError } from '../../src/errors.js';
import { openDatabase, type Database } from '../../src/store/database.js';
import { dhanDerivativeSymbol, dhanExpiry, importDhanCsv } from '../../src/symbols/import-dhan.js';
import { importNorenFiles, type NorenBroker, norenExpiry, norenFileKind } from '../../src/symbols/import-noren.js';
import { importUpstoxJson, upstoxExpiry, upstoxSymbol } from '../../src/symbols/import-upstox.js';
import { importZerodhaCsv } from '../../src/symbols/import-zerodha.js';
import { type ImportReport, SymbolMaster, type SymbolRecord } from '../../src/symbols/master.js';

const FIXTURES = fileURLToPath(new URL('../fixtures/', import.meta.url));
const DHAN_CSV = path.join(FIXTURES, 'dhan-scrip-master.csv');
const KITE_CSV = path.join(FIXTURES, 'kite-instruments.csv');
const UPSTOX_JSON = path.join(FIXTURES, 'upstox-instruments.json');
const NOREN_DIR = path.join(FIXTURES, 'noren-symbols');
const SHOONYA_FILES = ['NSE_symbols.txt', 'BSE_symbols.txt', 'NFO_symbols.txt', 'MCX_symbols.txt'];
const FLATTRADE_FILES = ['NSE_Equity.csv', 'BSE_Equity.csv', 'Bfo_Index_Derivatives.csv'];

let dir: string;
let db: Database;

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tickcast-symbol-brokers-'));
  db = openDatabase(path.join(dir, 'tickcast.db'));
});
afterEach(() => {
  db.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

const file = (p: string): fs.ReadStream => fs.createReadStream(p);
/** The text in pieces of `size` characters (or bytes, as Buffers), to cross every boundary. */
function pieces(text: string | Buffer, size: number): Readable {
  const parts: (string | Buffer)[] = [];
  for (let i = 0; i < text.length; i += size) parts.push(text.slice(i, i + size));
  return Readable.from(parts, { objectMode: true });
}
function rows(broker: string): SymbolRecord[] {
  return db.prepare('SELECT * FROM symtoken WHERE broker = ? ORDER BY id').all(broker) as SymbolRecord[];
}
/** A stored row without its id, broker and contract_value: what the importer decided. */
function stored(broker: string, exchange: string, symbol: string): Omit<SymbolRecord, 'id' | 'broker' | 'contract_value'> | undefined {
  const found = new SymbolMaster(db).find(broker as 'dhan', exchange, symbol);
  if (found === undefined) return undefined;
  const { id: _id, broker: _broker, contract_value: _cv, ...rest } = found;
  return rest;
}
async function expectUsage(promise: Promise<unknown>, text: string | RegExp): Promise<void> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(TickcastError);
  expect((err as TickcastError).code).toBe(ErrorCode.USAGE);
  expect((err as TickcastError).message).toMatch(text);
}
/** Every stored row, as text, to show an import left other brokers alone. */
function snapshot(): unknown[] {
  return db.prepare('SELECT * FROM symtoken ORDER BY id').all();
}

describe("Dhan's api-scrip-master.csv", () => {
  it('imports equities, indices, futures and options under OpenAlgo names, rejecting bad rows', async () => {
    const report = await importDhanCsv(db, file(DHAN_CSV), { source: 'dhan.csv' });
    expect(report).toEqual<ImportReport>({
      broker: 'dhan',
      imported: 13,
      skipped: 1,
      skippedReasons: { 'MCX INDEX has no OpenAlgo exchange': 1 },
      rejected: [
        { line: 16, reason: 'SEM_SMST_SECURITY_ID "ABC" is not a 32-bit unsigned integer' },
        { line: 17, reason: 'FUTSTK contract with SEM_EXPIRY_DATE "" (expected YYYY-MM-DD)' },
        { line: 18, reason: 'expected 16 fields, got 8' },
        { line: 19, reason: 'unknown SEM_EXM_EXCH_ID "NCDEX"' },
      ],
      rejectedCount: 4,
      added: 13,
      updated: 0,
      removed: 0,
    });
    expect(rows('dhan').map((r) => `${r.exchange}:${r.symbol}:${r.brexchange}:${r.token}`)).toEqual([
      'NSE:RELIANCE:NSE_EQ:2885',
      'BSE:RELIANCE:BSE_EQ:500325',
      'NSE_INDEX:NIFTY:IDX_I:13',
      'NSE_INDEX:INDIAVIX:IDX_I:21',
      // Not among OpenAlgo's NSE index symbols once normalised: the trading symbol stays.
      'NSE_INDEX:NIFTY CONSR DURBL:IDX_I:17',
      'BSE_INDEX:SENSEX:IDX_I:51',
      'BSE_INDEX:BSEINFORMATIONTECHNOLOGY:IDX_I:69',
      'NFO:NIFTY28MAR24FUT:NSE_FNO:35001',
      'NFO:NIFTY28MAR2422000CE:NSE_FNO:43120',
      'NFO:RELIANCE28MAR242900PE:NSE_FNO:52345',
      'BFO:SENSEX28MAR2473000CE:BSE_FNO:1140234',
      'CDS:USDINR26MAR24FUT:NSE_CURRENCY:8902',
      'MCX:CRUDEOIL19APR24FUT:MCX_COMM:426262',
    ]);
  });

  it('stores values as OpenAlgo does and looks up the security id with the exchange segment', async () => {
    await importDhanCsv(db, file(DHAN_CSV));
    expect(stored('dhan', 'NSE', 'RELIANCE')).toEqual({
      symbol: 'RELIANCE', brsymbol: 'RELIANCE', name: 'RELIANCE INDUSTRIES LTD', exchange: 'NSE', brexchange: 'NSE_EQ',
      token: '2885', expiry: '', strike: -0.01, lotsize: 1, instrumenttype: 'EQ', tick_size: 0.05,
    });
    expect(stored('dhan', 'NFO', 'NIFTY28MAR2422000CE')).toEqual({
      symbol: 'NIFTY28MAR2422000CE', brsymbol: 'NIFTY-Mar2024-22000-CE', name: 'NIFTY', exchange: 'NFO', brexchange: 'NSE_FNO',
      token: '43120', expiry: '28-MAR-24', strike: 22000, lotsize: 50, instrumenttype: 'CE', tick_size: 0.05,
    });
    // Derivative names are the underlying read off the symbol, not Dhan's mnemonic (RELOPT, BSXOPT).
    expect(stored('dhan', 'NFO', 'RELIANCE28MAR242900PE')?.name).toBe('RELIANCE');
    expect(stored('dhan', 'BFO', 'SENSEX28MAR2473000CE')?.name).toBe('SENSEX');
    expect(stored('dhan', 'NSE_INDEX', 'NIFTY')).toMatchObject({ brsymbol: 'NIFTY', name: 'NIFTY 50', instrumenttype: 'INDEX', token: '13' });
    expect(stored('dhan', 'CDS', 'USDINR26MAR24FUT')?.tick_size).toBeCloseTo(0.0025, 10);
    const master = new SymbolMaster(db);
    expect(master.lookup('dhan', 'NSE_INDEX', 'NIFTY')).toEqual({ token: '13', brexchange: 'IDX_I' });
    expect(master.lookup('dhan', 'MCX', 'CRUDEOIL19APR24FUT')).toEqual({ token: '426262', brexchange: 'MCX_COMM' });
    expect(master.lookup('dhan', 'NSE', 'INFY')).toBeUndefined();
  });

  it('changes nothing else, is idempotent and reads input split at any byte', async () => {
    await importZerodhaCsv(db, file(KITE_CSV));
    const zerodha = rows('zerodha');
    await importDhanCsv(db, file(DHAN_CSV));
    expect(rows('zerodha')).toEqual(zerodha);
    const before = snapshot();
    const again = await importDhanCsv(db, pieces(fs.readFileSync(DHAN_CSV), 7));
    expect(again).toMatchObject({ imported: 13, added: 0, updated: 0, removed: 0 });
    expect(snapshot()).toEqual(before);
  });

  it('refuses what is not the scrip master, changing nothing', async () => {
    await importDhanCsv(db, file(DHAN_CSV));
    const before = snapshot();
    await expectUsage(importDhanCsv(db, file(KITE_CSV), { source: 'kite.csv' }), /kite\.csv is not Dhan's api-scrip-master\.csv: its header lacks SEM_EXM_EXCH_ID/);
    await expectUsage(importDhanCsv(db, pieces('[{"token":"1"}]', 4)), /looks like JSON/);
    await expectUsage(importDhanCsv(db, pieces('', 4)), /is empty/);
    const header = fs.readFileSync(DHAN_CSV, 'utf8').split('\n')[0]!;
    await expectUsage(importDhanCsv(db, pieces(`${header}\nNSE,E,x\n`, 64)), /no valid instruments \(1 rejected\); the 13 stored dhan symbols are unchanged/);
    expect(snapshot()).toEqual(before);
  });

  it("rearranges Dhan's custom symbols as OpenAlgo's reformat_symbol does", () => {
    expect(dhanDerivativeSymbol('NIFTY MAR FUT', '28MAR24', 'FUT')).toBe('NIFTY28MAR24FUT');
    expect(dhanDerivativeSymbol('NIFTY 28 MAR FUT', '28MAR24', 'FUT')).toBe('NIFTY28MAR24FUT');
    expect(dhanDerivativeSymbol('BANKNIFTY MAR 48000 CALL', '27MAR24', 'CE')).toBe('BANKNIFTY27MAR2448000CE');
    expect(dhanDerivativeSymbol('USDINR 26 MAR 83.25 PUT', '26MAR24', 'PE')).toBe('USDINR26MAR2483.25PE');
    expect(dhanDerivativeSymbol('ODD FUT', '28MAR24', 'FUT')).toBe('ODD FUT');
    expect(dhanExpiry('2024-03-28 14:30:00')).toBe('28-MAR-24');
    expect(dhanExpiry('2024-02-30')).toBe('');
    expect(dhanExpiry('-1')).toBe('');
  });
});

describe("Upstox's instrument JSON", () => {
  it('imports under OpenAlgo names with instrument keys as tokens, rejecting bad elements', async () => {
    const report = await importUpstoxJson(db, file(UPSTOX_JSON), { source: 'complete.json' });
    expect(report).toEqual<ImportReport>({
      broker: 'upstox',
      imported: 10,
      skipped: 1,
      skippedReasons: { 'segment NSE_COM, which OpenAlgo leaves out': 1 },
      rejected: [
        { index: 11, reason: 'instrument_key "INE009A01021" is not SEGMENT|TOKEN' },
        { index: 12, reason: 'expiry "soon" is not epoch milliseconds' },
        { index: 13, reason: 'not an object' },
      ],
      rejectedCount: 3,
      added: 10,
      updated: 0,
      removed: 0,
    });
    expect(rows('upstox').map((r) => `${r.exchange}:${r.symbol}:${r.brexchange}:${r.token}`)).toEqual([
      'NSE:RELIANCE:NSE_EQ:NSE_EQ|INE002A01018',
      'BSE:RELIANCE:BSE_EQ:BSE_EQ|INE002A01018',
      'NSE_INDEX:NIFTY:NSE_INDEX:NSE_INDEX|Nifty 50',
      'NSE_INDEX:BANKNIFTY:NSE_INDEX:NSE_INDEX|Nifty Bank',
      'BSE_INDEX:BSEINFORMATIONTECHNOLOGY:BSE_INDEX:BSE_INDEX|BSE IT',
      'GLOBAL_INDEX:GIFTNIFTY:GLOBAL_INDEX:GLOBAL_INDEX|GIFT NIFTY',
      'NFO:NIFTY28MAR24FUT:NSE_FO:NSE_FO|35001',
      'NFO:NIFTY28MAR2422000CE:NSE_FO:NSE_FO|43120',
      'CDS:USDINR26MAR2483.25PE:NCD_FO:NCD_FO|8903',
      'MCX:CRUDEOIL19APR24FUT:MCX_FO:MCX_FO|426262',
    ]);
  });

  it('stores values as OpenAlgo does and looks up the instrument key', async () => {
    await importUpstoxJson(db, file(UPSTOX_JSON));
    expect(stored('upstox', 'NFO', 'NIFTY28MAR2422000CE')).toEqual({
      symbol: 'NIFTY28MAR2422000CE', brsymbol: 'NIFTY 22000 CE 28 MAR 24', name: 'NIFTY', exchange: 'NFO', brexchange: 'NSE_FO',
      token: 'NSE_FO|43120', expiry: '28-MAR-24', strike: 22000, lotsize: 50, instrumenttype: 'CE', tick_size: 5,
    });
    expect(stored('upstox', 'NSE', 'RELIANCE')).toMatchObject({ brsymbol: 'RELIANCE', expiry: '', instrumenttype: 'EQ', tick_size: 5 });
    const master = new SymbolMaster(db);
    expect(master.lookup('upstox', 'NSE_INDEX', 'NIFTY')).toEqual({ token: 'NSE_INDEX|Nifty 50', brexchange: 'NSE_INDEX' });
    expect(master.lookup('upstox', 'NSE', 'RELIANCE')).toEqual({ token: 'NSE_EQ|INE002A01018', brexchange: 'NSE_EQ' });
  });

  it('reads the gzipped download as it is, split at any byte, and changes nothing else', async () => {
    await importDhanCsv(db, file(DHAN_CSV));
    const dhan = rows('dhan');
    await importUpstoxJson(db, file(UPSTOX_JSON));
    expect(rows('dhan')).toEqual(dhan);
    const before = snapshot();
    const gz = zlib.gzipSync(fs.readFileSync(UPSTOX_JSON));
    const again = await importUpstoxJson(db, pieces(gz, 1));
    expect(again).toMatchObject({ imported: 10, added: 0, updated: 0, removed: 0, rejectedCount: 3 });
    expect(await importUpstoxJson(db, pieces(fs.readFileSync(UPSTOX_JSON, 'utf8'), 5))).toMatchObject({ imported: 10, added: 0, updated: 0 });
    expect(snapshot()).toEqual(before);
  });

  it('refuses what is not the instrument file, changing nothing', async () => {
    await importUpstoxJson(db, file(UPSTOX_JSON));
    const before = snapshot();
    const gz = zlib.gzipSync(fs.readFileSync(UPSTOX_JSON));
    await expectUsage(importUpstoxJson(db, pieces(gz.subarray(0, 60), 16)), /is not a valid gzip file/);
    await expectUsage(importUpstoxJson(db, pieces('{"a":1}', 3)), /is not Upstox's instrument JSON \(complete\.json\): it does not start with a JSON array/);
    await expectUsage(importUpstoxJson(db, pieces('[{"token":"1"}]', 3)), /its first element has no instrument_key, segment and trading_symbol/);
    await expectUsage(importUpstoxJson(db, pieces('', 3)), /is empty: expected Upstox's instrument JSON/);
    await expectUsage(importUpstoxJson(db, pieces(fs.readFileSync(UPSTOX_JSON, 'utf8').slice(0, 900), 64)), /ends inside the JSON array/);
    expect(snapshot()).toEqual(before);
  });

  it("rearranges trading symbols as OpenAlgo's reformat_symbol does", () => {
    expect(upstoxSymbol('BANKNIFTY FUT 27 MAR 24', 'FUT')).toBe('BANKNIFTY27MAR24FUT');
    expect(upstoxSymbol('RELIANCE 2900 PE 28 MAR 24', 'PE')).toBe('RELIANCE28MAR242900PE');
    expect(upstoxSymbol('NIFTY 50', 'INDEX')).toBe('NIFTY 50');
    expect(upstoxSymbol('ODD FUT 24', 'FUT')).toBe('ODD FUT 24');
    expect(upstoxExpiry(1711650599000)).toBe('28-MAR-24');
    expect(upstoxExpiry(undefined)).toBe('');
    expect(upstoxExpiry('soon')).toBeNull();
  });
});

function noren(broker: NorenBroker, names: readonly string[]): ReturnType<typeof importNorenFiles> {
  return importNorenFiles(db, broker, names.map((n) => ({ kind: norenFileKind(n)!, input: file(path.join(NOREN_DIR, n)), source: n })));
}

describe('Noren symbol files (Shoonya, Flattrade)', () => {
  it("imports Shoonya's files under OpenAlgo names, adding its hand-made BSE indices, rejecting bad rows", async () => {
    const report = await noren('shoonya', SHOONYA_FILES);
    expect(report).toEqual<ImportReport>({
      broker: 'shoonya',
      imported: 17,
      skipped: 2,
      skippedReasons: { 'placeholder NSE row without a symbol': 1, 'placeholder NFO row without a symbol': 1 },
      rejected: [
        { line: 9, reason: 'NSE_symbols.txt: Token "X12" is not an unsigned integer' },
        { line: 7, reason: 'NFO_symbols.txt: Expiry "30-FEB-2024" is not a DD-MON-YYYY date' },
      ],
      rejectedCount: 2,
      added: 17,
      updated: 0,
      removed: 0,
    });
    expect(rows('shoonya').map((r) => `${r.exchange}:${r.symbol}:${r.brexchange}:${r.token}`)).toEqual([
      'NSE:RELIANCE:NSE:2885',
      'NSE:INFY:NSE:1594',
      'NSE:SUZLON:NSE:4717',
      'NSE_INDEX:NIFTY:NSE_INDEX:26000',
      'NSE_INDEX:BANKNIFTY:NSE_INDEX:26009',
      'NSE_INDEX:INDIAVIX:NSE_INDEX:26017',
      'BSE:RELIANCE:BSE:500325',
      'BSE:INFY:BSE:500209',
      'BSE:HDFCBANK:BSE:500180',
      'BSE_INDEX:SENSEX:BSE_INDEX:1',
      'BSE_INDEX:BANKEX:BSE_INDEX:12',
      'NFO:NIFTY28MAR24FUT:NFO:35001',
      'NFO:NIFTY28MAR2422000CE:NFO:43120',
      'NFO:NIFTY28MAR2422000PE:NFO:43121',
      'NFO:RELIANCE28MAR242927.5PE:NFO:52345',
      'MCX:CRUDEOIL19APR24FUT:MCX:426262',
      'MCX:CRUDEOIL16APR246500CE:MCX:426300',
    ]);
    expect(stored('shoonya', 'NFO', 'NIFTY28MAR2422000CE')).toEqual({
      symbol: 'NIFTY28MAR2422000CE', brsymbol: 'NIFTY28MAR24C22000', name: 'NIFTY', exchange: 'NFO', brexchange: 'NFO',
      token: '43120', expiry: '28-MAR-24', strike: 22000, lotsize: 50, instrumenttype: 'CE', tick_size: 0.05,
    });
    // OpenAlgo divides the equity files' TickSize by 100 and keeps the derivative files' as it is.
    expect(stored('shoonya', 'NSE', 'SUZLON')).toMatchObject({ brsymbol: 'SUZLON-BE', instrumenttype: 'EQ', expiry: '', strike: -1, tick_size: 0.05 });
    expect(new SymbolMaster(db).lookup('shoonya', 'NSE_INDEX', 'NIFTY')).toEqual({ token: '26000', brexchange: 'NSE_INDEX' });
  });

  it("imports Flattrade's CSV files under OpenAlgo names", async () => {
    const report = await noren('flattrade', FLATTRADE_FILES);
    expect(report).toMatchObject({
      broker: 'flattrade',
      imported: 8,
      skipped: 0,
      rejected: [{ line: 4, reason: 'Bfo_Index_Derivatives.csv: Expiry "2024-03-28" is not a DD-MON-YYYY date' }],
      rejectedCount: 1,
    });
    expect(rows('flattrade').map((r) => `${r.exchange}:${r.symbol}:${r.brexchange}:${r.token}:${r.instrumenttype}`)).toEqual([
      'NSE:RELIANCE:NSE:2885:EQ',
      'NSE_INDEX:NIFTY:NSE_INDEX:26000:INDEX',
      'NSE_INDEX:FINNIFTY:NSE_INDEX:26037:INDEX',
      'NSE:TCS:NSE:11536:EQ',
      'BSE:RELIANCE:BSE:500325:EQ',
      'BSE_INDEX:SENSEX:BSE:1:INDEX',
      'BFO:SENSEX28MAR2473000CE:BFO:1140234:CE',
      'BFO:SENSEX28MAR24FUT:BFO:1140001:FUT',
    ]);
    expect(stored('flattrade', 'BFO', 'SENSEX28MAR2473000CE')).toEqual({
      symbol: 'SENSEX28MAR2473000CE', brsymbol: 'SENSEX24MAR73000CE', name: 'SENSEX', exchange: 'BFO', brexchange: 'BFO',
      token: '1140234', expiry: '28-MAR-24', strike: 73000, lotsize: 10, instrumenttype: 'CE', tick_size: 0.05,
    });
  });

  it('keeps the two brokers and others apart, is idempotent, and refuses what is not a symbol file', async () => {
    await importDhanCsv(db, file(DHAN_CSV));
    const dhan = rows('dhan');
    await noren('shoonya', SHOONYA_FILES);
    await noren('flattrade', FLATTRADE_FILES);
    expect(rows('dhan')).toEqual(dhan);
    const before = snapshot();
    expect(await noren('shoonya', SHOONYA_FILES)).toMatchObject({ imported: 17, added: 0, updated: 0, removed: 0 });
    await expectUsage(
      importNorenFiles(db, 'shoonya', [{ kind: 'NFO', input: file(DHAN_CSV), source: 'dhan.csv' }]),
      /dhan\.csv is not a shoonya NFO symbol file: its header lacks token/,
    );
    await expectUsage(importNorenFiles(db, 'flattrade', []), /no flattrade symbol files given/);
    expect(snapshot()).toEqual(before);
  });

  it('tells file kinds by their download names and reads Noren expiries', () => {
    expect(norenFileKind('tmp/NFO_symbols.txt')).toBe('NFO');
    expect(norenFileKind('Nfo_Index_Derivatives.csv')).toBe('NFO');
    expect(norenFileKind('Commodity.csv')).toBe('MCX');
    expect(norenFileKind('Currency_Derivatives.csv')).toBe('CDS');
    expect(norenFileKind('README.md')).toBeUndefined();
    expect(norenExpiry('28-Mar-2024')).toBe('28-MAR-24');
    expect(norenExpiry('30-FEB-2024')).toBeNull();
  });
});
