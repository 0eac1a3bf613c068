/**
 * Imports Upstox's instrument file (`https://assets.upstox.com/market-quote/instruments/exchange/
 * complete.json.gz`: one JSON array of flat objects `{segment, name, exchange, instrument_type,
 * instrument_key, trading_symbol, lot_size, tick_size, expiry, strike_price, …}`, gzipped or
 * not) into the symbol master, naming instruments as OpenAlgo's Upstox master-contract download
 * does (`broker/upstox/database/master_contract_db.py`: `process_upstox_json`, `reformat_symbol`):
 *
 * - exchange: segment NSE_EQ → NSE, NSE_FO → NFO, NCD_FO → CDS, BSE_EQ → BSE, BSE_FO → BFO,
 *   BCD_FO → BCD, MCX_FO → MCX, NSE_INDEX / BSE_INDEX / GLOBAL_INDEX as they are, GLOBAL_INDICATOR
 *   → GLOBAL_INDEX. NSE_COM rows OpenAlgo drops, and segments it does not map (it would store them
 *   without an exchange): skipped. brexchange: the segment.
 * - token: instrument_key (`NSE_EQ|INE002A01018`, `NSE_INDEX|Nifty 50`), what the Upstox feed
 *   subscribes with.
 * - expiry: epoch milliseconds → the UTC date as `DD-MON-YY` ('' when there is none).
 * - symbol: trading_symbol; futures whose trading symbol has 5 words `NIFTY FUT 28 MAR 24` →
 *   NIFTY28MAR24FUT; options with 6 words `NIFTY 22000 CE 28 MAR 24` → NIFTY28MAR2422000CE. Then,
 *   on every row as OpenAlgo replaces the whole column, INDEX_RENAMES (`NIFTY 50` → NIFTY, `NIFTY
 *   BANK` → BANKNIFTY…); on BSE_INDEX rows BSE_INDEX_RENAMES; on GLOBAL_INDEX rows
 *   GLOBAL_INDEX_RENAMES.
 * - name, strike_price, lot_size, instrument_type and tick_size as the file has them (OpenAlgo does
 *   not rescale Upstox's tick_size, which is in paise); strike 0 where the file has none.
 *
 * Streaming: gzip is recognised by its magic bytes and inflated on the fly (node:zlib); the
 * array is split into elements by the Angel importer's JsonArrayReader, each parsed on its own.
 */
import { Readable, pipeline } from 'node:stream';
import zlib from 'node:zlib';
import { ErrorCode, TickcastError } from '../errors.js';
import type { Database } from '../store/database.js';
import { JsonArrayReader, importJsonElements } from './import-angel.js';
import type { ImportOptions } from './import-zerodha.js';
import { type ImportReport, MasterImport, type SymbolRow } from './master.js';

/** OpenAlgo's `exchange_map`: Upstox segment → OpenAlgo exchange. */
export const UPSTOX_EXCHANGES: Readonly<Record<string, string>> = {
  NSE_EQ: 'NSE',
  NSE_FO: 'NFO',
  NCD_FO: 'CDS',
  NSE_INDEX: 'NSE_INDEX',
  BSE_INDEX: 'BSE_INDEX',
  BSE_EQ: 'BSE',
  BSE_FO: 'BFO',
  BCD_FO: 'BCD',
  MCX_FO: 'MCX',
  GLOBAL_INDEX: 'GLOBAL_INDEX',
  GLOBAL_INDICATOR: 'GLOBAL_INDEX',
};

/** Trading symbols OpenAlgo renames, whatever the row's exchange. */
export const INDEX_RENAMES: Readonly<Record<string, string>> = {
  'NIFTY 50': 'NIFTY',
  'NIFTY NEXT 50': 'NIFTYNXT50',
  'NIFTY FIN SERVICE': 'FINNIFTY',
  'NIFTY BANK': 'BANKNIFTY',
  'NIFTY MID SELECT': 'MIDCPNIFTY',
  'INDIA VIX': 'INDIAVIX',
  'HANGSENG BEES NAV': 'HANGSENGBEESNAV',
  'NIFTY 100': 'NIFTY100',
  'NIFTY 200': 'NIFTY200',
  'NIFTY 500': 'NIFTY500',
  'NIFTY ALPHA 50': 'NIFTYALPHA50',
  'NIFTY AUTO': 'NIFTYAUTO',
  'NIFTY COMMODITIES': 'NIFTYCOMMODITIES',
  'NIFTY CONSUMPTION': 'NIFTYCONSUMPTION',
  'NIFTY CPSE': 'NIFTYCPSE',
  'NIFTY DIV OPPS 50': 'NIFTYDIVOPPS50',
  'NIFTY ENERGY': 'NIFTYENERGY',
  'NIFTY FMCG': 'NIFTYFMCG',
  'NIFTY GROWSECT 15': 'NIFTYGROWSECT15',
  'NIFTY INFRA': 'NIFTYINFRA',
  'NIFTY IT': 'NIFTYIT',
  'NIFTY MEDIA': 'NIFTYMEDIA',
  'NIFTY METAL': 'NIFTYMETAL',
  'NIFTY MNC': 'NIFTYMNC',
  'NIFTY PHARMA': 'NIFTYPHARMA',
  'NIFTY PSE': 'NIFTYPSE',
  'NIFTY PSU BANK': 'NIFTYPSUBANK',
  'NIFTY PVT BANK': 'NIFTYPVTBANK',
  'NIFTY REALTY': 'NIFTYREALTY',
  'NIFTY SERV SECTOR': 'NIFTYSERVSECTOR',
  'NIFTY MID LIQ 15': 'NIFTYMIDLIQ15',
  'NIFTY MIDCAP 50': 'NIFTYMIDCAP50',
  'NIFTY MIDCAP 100': 'NIFTYMIDCAP100',
  'NIFTY MIDCAP 150': 'NIFTYMIDCAP150',
  'NIFTY MIDSML 400': 'NIFTYMIDSML400',
  'NIFTY SMLCAP 50': 'NIFTYSMLCAP50',
  'NIFTY SMLCAP 100': 'NIFTYSMLCAP100',
  'NIFTY SMLCAP 250': 'NIFTYSMLCAP250',
  'NIFTY100 EQL WGT': 'NIFTY100EQLWGT',
  'NIFTY100 LIQ 15': 'NIFTY100LIQ15',
  'NIFTY100 LOWVOL30': 'NIFTY100LOWVOL30',
  'NIFTY100 QUALTY30': 'NIFTY100QUALTY30',
  'NIFTY200 QUALTY30': 'NIFTY200QUALTY30',
  'NIFTY50 DIV POINT': 'NIFTY50DIVPOINT',
  'NIFTY50 EQL WGT': 'NIFTY50EQLWGT',
  'NIFTY50 PR 1X INV': 'NIFTY50PR1XINV',
  'NIFTY50 PR 2X LEV': 'NIFTY50PR2XLEV',
  'NIFTY50 TR 1X INV': 'NIFTY50TR1XINV',
  'NIFTY50 TR 2X LEV': 'NIFTY50TR2XLEV',
  'NIFTY50 VALUE 20': 'NIFTY50VALUE20',
  'NIFTY GS 10YR': 'NIFTYGS10YR',
  'NIFTY GS 10YR CLN': 'NIFTYGS10YRCLN',
  'NIFTY GS 11 15YR': 'NIFTYGS1115YR',
  'NIFTY GS 15YRPLUS': 'NIFTYGS15YRPLUS',
  'NIFTY GS 4 8YR': 'NIFTYGS48YR',
  'NIFTY GS 8 13YR': 'NIFTYGS813YR',
  'NIFTY GS COMPSITE': 'NIFTYGSCOMPSITE',
};

/** BSE_INDEX trading symbols OpenAlgo renames. */
export const BSE_INDEX_RENAMES: Readonly<Record<string, string>> = {
  SNSX50: 'SENSEX50',
  SNXT50: 'BSESENSEXNEXT50',
  MID150: 'BSE150MIDCAPINDEX',
  LMI250: 'BSE250LARGEMIDCAPINDEX',
  MSL400: 'BSE400MIDSMALLCAPINDEX',
  AUTO: 'BSEAUTO',
  'BSE CG': 'BSECAPITALGOODS',
  CARBON: 'BSECARBONEX',
  'BSE CD': 'BSECONSUMERDURABLES',
  CPSE: 'BSECPSE',
  DOL100: 'BSEDOLLEX100',
  DOL200: 'BSEDOLLEX200',
  DOL30: 'BSEDOLLEX30',
  ENERGY: 'BSEENERGY',
  BSEFMC: 'BSEFASTMOVINGCONSUMERGOODS',
  FINSER: 'BSEFINANCIALSERVICES',
  GREENX: 'BSEGREENEX',
  'BSE HC': 'BSEHEALTHCARE',
  INFRA: 'BSEINDIAINFRASTRUCTUREINDEX',
  INDSTR: 'BSEINDUSTRIALS',
  'BSE IT': 'BSEINFORMATIONTECHNOLOGY',
  BSEIPO: 'BSEIPO',
  LRGCAP: 'BSELARGECAP',
  METAL: 'BSEMETAL',
  MIDCAP: 'BSEMIDCAP',
  MIDSEL: 'BSEMIDCAPSELECTINDEX',
  OILGAS: 'BSEOIL&GAS',
  POWER: 'BSEPOWER',
  BSEPSU: 'BSEPSU',
  REALTY: 'BSEREALTY',
  SMLCAP: 'BSESMALLCAP',
  SMLSEL: 'BSESMALLCAPSELECTINDEX',
  SMEIPO: 'BSESMEIPO',
  TECK: 'BSETECK',
  TELCOM: 'BSETELECOM',
};

/** GLOBAL_INDEX trading symbols OpenAlgo renames. */
export const GLOBAL_INDEX_RENAMES: Readonly<Record<string, string>> = {
  '^HSI': 'HANGSENG',
  '^DJI': 'DOWJONES',
  '^FTSE': 'UK100',
  '^GSPC': 'US500',
  '^GDAXI': 'GERMANY40',
  '^FCHI': 'FRANCE40',
  '^N225': 'JAPAN225',
  IXIX: 'US100',
  'GIFT NIFTY': 'GIFTNIFTY',
  'DOW FUTURES': 'US30',
  BZUSD: 'BRENTOIL',
  CLUSD: 'WTIOIL',
};

const MONTHS = ['JAN', 'FEB', 'MAR', 'APR', 'MAY', 'JUN', 'JUL', 'AUG', 'SEP', 'OCT', 'NOV', 'DEC'];
const WHAT_FILE = "Upstox's instrument JSON (complete.json)";

/** Streams Upstox's complete.json (or complete.json.gz) into the master, replacing the Upstox rows. */
export async function importUpstoxJson(db: Database, input: AsyncIterable<Buffer | string>, options: ImportOptions = {}): Promise<ImportReport> {
  const what = options.source ?? 'the input';
  const job = new MasterImport(db, 'upstox');
  try {
    await importJsonElements(job, maybeGunzip(input, what), new JsonArrayReader(what, WHAT_FILE), (text, index) => upstoxElement(text, index, what));
    return job.finish(what);
  } finally {
    job.abort();
  }
}

/** The input, inflated when it starts with gzip's magic bytes (1f 8b); text input is passed through. */
export async function* maybeGunzip(input: AsyncIterable<Buffer | string>, what: string): AsyncGenerator<Buffer | string> {
  const it = input[Symbol.asyncIterator]();
  const head: Buffer[] = [];
  let headBytes = 0;
  for (;;) {
    const step = await it.next();
    if (step.done) break;
    if (typeof step.value === 'string') {
      // Text: not gzip. Hand back what was read, then the rest.
      yield* head;
      yield step.value;
      for (let s = await it.next(); !s.done; s = await it.next()) yield s.value;
      return;
    }
    head.push(step.value);
    headBytes += step.value.length;
    if (headBytes >= 2) break;
  }
  const start = Buffer.concat(head);
  const rest = async function* (): AsyncGenerator<Buffer | string> {
    yield start;
    for (let s = await it.next(); !s.done; s = await it.next()) yield s.value;
  };
  if (start.length < 2 || start[0] !== 0x1f || start[1] !== 0x8b) {
    yield* rest();
    return;
  }
  const inflated = pipeline(Readable.from(rest()), zlib.createGunzip(), () => {});
  try {
    for await (const chunk of inflated) yield chunk as Buffer;
  } catch (err) {
    if (err instanceof TickcastError) throw err;
    throw new TickcastError(ErrorCode.USAGE, `${what} is not a valid gzip file (${(err as Error).message}); nothing was imported`);
  }
}

type ElementResult = { kind: 'row'; row: SymbolRow } | { kind: 'skip'; reason: string } | { kind: 'reject'; reason: string };

function upstoxElement(text: string, index: number, what: string): ElementResult {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    if (index === 0) throw notInstrumentFile(what, 'its first element is not valid JSON');
    return reject(`invalid JSON: ${(err as Error).message}`);
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    if (index === 0) throw notInstrumentFile(what, 'its first element is not an object');
    return reject('not an object');
  }
  const record = value as Record<string, unknown>;
  if (index === 0 && !('instrument_key' in record && 'segment' in record && 'trading_symbol' in record)) {
    throw notInstrumentFile(what, `its first element has no instrument_key, segment and trading_symbol (keys: ${Object.keys(record).slice(0, 12).join(', ')})`);
  }
  return upstoxRow(record);
}

function notInstrumentFile(what: string, why: string): TickcastError {
  return new TickcastError(ErrorCode.USAGE, `${what} is not ${WHAT_FILE}: ${why}`);
}

function upstoxRow(record: Record<string, unknown>): ElementResult {
  const text = (key: string): string | null => {
    const v = record[key];
    if (v === undefined || v === null) return '';
    if (typeof v === 'string') return v.trim();
    if (typeof v === 'number' && Number.isFinite(v)) return String(v);
    return null;
  };
  const number = (key: string, fallback: number): number | null => {
    const v = record[key];
    if (v === undefined || v === null || v === '') return fallback;
    const n = typeof v === 'number' ? v : typeof v === 'string' && /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(v.trim()) ? Number(v) : NaN;
    return Number.isFinite(n) ? n : null;
  };
  const keys = ['instrument_key', 'trading_symbol', 'segment', 'name', 'instrument_type'] as const;
  const fields = {} as Record<(typeof keys)[number], string>;
  for (const key of keys) {
    const v = text(key);
    if (v === null) return reject(`${key} is not a string`);
    fields[key] = v;
  }
  const { instrument_key: key, trading_symbol: brsymbol, segment, name, instrument_type: type } = fields;
  if (key === '') return reject('missing instrument_key');
  const bar = key.indexOf('|');
  if (bar <= 0 || bar === key.length - 1 || key.length > 128) return reject(`instrument_key "${key}" is not SEGMENT|TOKEN`);
  if (segment === '') return reject('missing segment');
  if (brsymbol === '') return reject('missing trading_symbol');
  if (segment === 'NSE_COM') return { kind: 'skip', reason: 'segment NSE_COM, which OpenAlgo leaves out' };
  const exchange = UPSTOX_EXCHANGES[segment];
  if (exchange === undefined) return { kind: 'skip', reason: `segment ${segment} has no OpenAlgo exchange` };

  const strike = number('strike_price', 0);
  if (strike === null) return reject(`strike_price ${JSON.stringify(record.strike_price)} is not a number`);
  const lot = number('lot_size', 0);
  if (lot === null) return reject(`lot_size ${JSON.stringify(record.lot_size)} is not a number`);
  const tick = number('tick_size', 0);
  if (tick === null) return reject(`tick_size ${JSON.stringify(record.tick_size)} is not a number`);
  const expiry = upstoxExpiry(record.expiry);
  if (expiry === null) return reject(`expiry ${JSON.stringify(record.expiry)} is not epoch milliseconds`);

  let symbol = upstoxSymbol(brsymbol, type);
  symbol = INDEX_RENAMES[symbol] ?? symbol;
  if (exchange === 'BSE_INDEX') symbol = BSE_INDEX_RENAMES[symbol] ?? symbol;
  else if (exchange === 'GLOBAL_INDEX') symbol = GLOBAL_INDEX_RENAMES[symbol] ?? symbol;

  return {
    kind: 'row',
    row: {
      symbol,
      brsymbol,
      name,
      exchange,
      brexchange: segment,
      token: key,
      expiry,
      strike,
      lotsize: Math.trunc(lot),
      instrumenttype: type,
      tick_size: tick,
    },
  };
}

/** OpenAlgo's `reformat_symbol`: `NIFTY FUT 28 MAR 24` → NIFTY28MAR24FUT, `NIFTY 22000 CE 28 MAR 24` → NIFTY28MAR2422000CE. */
export function upstoxSymbol(tradingSymbol: string, instrumentType: string): string {
  const parts = tradingSymbol.split(' ');
  if (instrumentType === 'FUT' && parts.length === 5) return parts[0]! + parts[2] + parts[3] + parts[4] + parts[1];
  if ((instrumentType === 'CE' || instrumentType === 'PE') && parts.length === 6) return parts[0]! + parts[3] + parts[4] + parts[5] + parts[1] + parts[2];
  return tradingSymbol;
}

/** Epoch milliseconds → `DD-MON-YY` (UTC, as pandas' to_datetime(unit='ms')); '' when absent; null when not a number. */
export function upstoxExpiry(value: unknown): string | null {
  if (value === undefined || value === null || value === '') return '';
  const ms = typeof value === 'number' ? value : typeof value === 'string' && /^\d+$/.test(value) ? Number(value) : NaN;
  if (!Number.isFinite(ms)) return null;
  const date = new Date(ms);
  if (Number.isNaN(date.getTime())) return null;
  return `${String(date.getUTCDate()).padStart(2, '0')}-${MONTHS[date.getUTCMonth()]}-${String(date.getUTCFullYear() % 100).padStart(2, '0')}`;
}

function reject(reason: string): ElementResult {
  return { kind: 'reject', reason };
}
