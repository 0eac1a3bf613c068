/**
 * Imports Dhan's scrip master (`https://images.dhan.co/api-data/api-scrip-master.csv`, the compact
 * CSV: SEM_EXM_EXCH_ID, SEM_SEGMENT, SEM_SMST_SECURITY_ID, SEM_INSTRUMENT_NAME, SEM_EXPIRY_CODE,
 * SEM_TRADING_SYMBOL, SEM_LOT_UNITS, SEM_CUSTOM_SYMBOL, SEM_EXPIRY_DATE, SEM_STRIKE_PRICE,
 * SEM_OPTION_TYPE, SEM_TICK_SIZE, SEM_EXPIRY_FLAG, SEM_EXCH_INSTRUMENT_TYPE, SEM_SERIES,
 * SM_SYMBOL_NAME) into the symbol master, naming instruments as OpenAlgo's Dhan master-contract
 * download does (`broker/dhan/database/master_contract_db.py`: `process_dhan_csv`,
 * `assign_values`, `reformat_symbol`; derivative names by `extract_underlying_from_symbol` in
 * `database/token_db_enhanced.py`):
 *
 * - exchange / brexchange / instrumenttype by (SEM_EXM_EXCH_ID, SEM_INSTRUMENT_NAME)
 *   (`assign_values`): NSE|BSE EQUITY → NSE|BSE, NSE_EQ|BSE_EQ, EQ; NSE|BSE INDEX → NSE_INDEX|
 *   BSE_INDEX, IDX_I, INDEX; NSE FUTIDX/FUTSTK/OPTIDX/OPTSTK/OPTFUT → NFO, NSE_FNO; NSE FUTCUR/
 *   OPTCUR → CDS, NSE_CURRENCY; BSE FUTIDX/FUTSTK/OPTIDX/OPTSTK → BFO, BSE_FNO; BSE FUTCUR/OPTCUR →
 *   BCD, BSE_CURRENCY; MCX FUTIDX/FUTCOM/OPTFUT → MCX, MCX_COMM. Derivatives' instrumenttype is
 *   SEM_OPTION_TYPE (CE/PE) for OPT… names, else FUT. Other pairs OpenAlgo stores under exchange
 *   "Unknown", where no lookup finds them: skipped here.
 * - token: SEM_SMST_SECURITY_ID, the security id Dhan's feed subscribes with (the brexchange is
 *   the feed's exchange segment).
 * - expiry: SEM_EXPIRY_DATE (`2024-03-28 14:30:00`) → `28-MAR-24`. OpenAlgo writes "-1" where there
 *   is none; tickcast's master keeps '' there, as for every broker.
 * - symbol: equities and indices SEM_TRADING_SYMBOL; futures `first word of SEM_CUSTOM_SYMBOL +
 *   DDMONYY + FUT` when the custom symbol has 3 or 4 words; options `first word + DDMONYY + strike
 *   word + CE|PE`, the strike the 3rd word of 4 or the 4th of 5 (`NIFTY 28 MAR 22000 CALL` →
 *   NIFTY28MAR2422000CE); otherwise the custom symbol unchanged, as OpenAlgo leaves it. NSE indices
 *   upper-cased without spaces and hyphens, renamed by NSE_INDEX_RENAMES, and kept only when the
 *   result is in OPENALGO_NSE_INDICES (else the trading symbol stays as it was); BSE indices
 *   renamed by BSE_INDEX_RENAMES (exact trading symbols).
 * - name: SM_SYMBOL_NAME; for futures and options the underlying read off the OpenAlgo symbol
 *   (what precedes its DDMONYY), falling back to SM_SYMBOL_NAME.
 * - strike: SEM_STRIKE_PRICE as it is (Dhan writes -0.01 for non-options; so does OpenAlgo).
 *   lotsize: SEM_LOT_UNITS as an integer. tick_size: SEM_TICK_SIZE ÷ 100.
 *
 * Streaming: the file is read line by line (the Kite importer's reader); rows are staged in batches.
 */
import { ErrorCode, TickcastError } from '../errors.js';
import type { Database } from '../store/database.js';
import { type ImportOptions, type RowResult, decimal, importCsvRows, reject, splitCsvLine } from './import-zerodha.js';
import { type ImportReport, MasterImport } from './master.js';

export const DHAN_COLUMNS = [
  'SEM_EXM_EXCH_ID',
  'SEM_SMST_SECURITY_ID',
  'SEM_INSTRUMENT_NAME',
  'SEM_TRADING_SYMBOL',
  'SEM_LOT_UNITS',
  'SEM_CUSTOM_SYMBOL',
  'SEM_EXPIRY_DATE',
  'SEM_STRIKE_PRICE',
  'SEM_OPTION_TYPE',
  'SEM_TICK_SIZE',
  'SM_SYMBOL_NAME',
] as const;
type DhanColumn = (typeof DHAN_COLUMNS)[number];

const DHAN_EXCHANGES = new Set(['NSE', 'BSE', 'MCX']);

/** `assign_values`: (exchange id, instrument name) → OpenAlgo exchange and Dhan segment. */
const DERIVATIVE_SEGMENTS: Record<string, Record<string, readonly [string, string]>> = {
  NSE: {
    FUTIDX: ['NFO', 'NSE_FNO'],
    FUTSTK: ['NFO', 'NSE_FNO'],
    OPTIDX: ['NFO', 'NSE_FNO'],
    OPTSTK: ['NFO', 'NSE_FNO'],
    OPTFUT: ['NFO', 'NSE_FNO'],
    FUTCUR: ['CDS', 'NSE_CURRENCY'],
    OPTCUR: ['CDS', 'NSE_CURRENCY'],
  },
  BSE: {
    FUTIDX: ['BFO', 'BSE_FNO'],
    FUTSTK: ['BFO', 'BSE_FNO'],
    OPTIDX: ['BFO', 'BSE_FNO'],
    OPTSTK: ['BFO', 'BSE_FNO'],
    FUTCUR: ['BCD', 'BSE_CURRENCY'],
    OPTCUR: ['BCD', 'BSE_CURRENCY'],
  },
  MCX: {
    FUTIDX: ['MCX', 'MCX_COMM'],
    FUTCOM: ['MCX', 'MCX_COMM'],
    OPTFUT: ['MCX', 'MCX_COMM'],
  },
};

/** NSE index names (upper case, no spaces or hyphens) OpenAlgo renames for Dhan. */
export const NSE_INDEX_RENAMES: Readonly<Record<string, string>> = {
  NIFTYNEXT50: 'NIFTYNXT50',
  NIFTYMCAP50: 'NIFTYMIDCAP50',
  NIFTYMIDSMALLCAP400: 'NIFTYMIDSML400',
  NIFTYSMALLCAP100: 'NIFTYSMLCAP100',
  NIFTYSMALLCAP250: 'NIFTYSMLCAP250',
  NIFTYSMALLCAP50: 'NIFTYSMLCAP50',
  NIFTY100EQUALWEIGHT: 'NIFTY100EQLWGT',
  NIFTY100LOWVOLATILITY30: 'NIFTY100LOWVOL30',
  NIFTYMID100FREE: 'NIFTYMIDCAP100',
};

/** The NSE index symbols OpenAlgo documents; a normalised Dhan name outside them is not used. */
export const OPENALGO_NSE_INDICES: ReadonlySet<string> = new Set([
  'NIFTY', 'NIFTYNXT50', 'FINNIFTY', 'BANKNIFTY', 'MIDCPNIFTY', 'INDIAVIX',
  'HANGSENGBEESNAV', 'NIFTY100', 'NIFTY200', 'NIFTY500', 'NIFTYALPHA50',
  'NIFTYAUTO', 'NIFTYCOMMODITIES', 'NIFTYCONSUMPTION', 'NIFTYCPSE',
  'NIFTYDIVOPPS50', 'NIFTYENERGY', 'NIFTYFMCG', 'NIFTYGROWSECT15',
  'NIFTYGS10YR', 'NIFTYGS10YRCLN', 'NIFTYGS1115YR', 'NIFTYGS15YRPLUS',
  'NIFTYGS48YR', 'NIFTYGS813YR', 'NIFTYGSCOMPSITE', 'NIFTYINFRA', 'NIFTYIT',
  'NIFTYMEDIA', 'NIFTYMETAL', 'NIFTYMIDLIQ15', 'NIFTYMIDCAP100',
  'NIFTYMIDCAP150', 'NIFTYMIDCAP50', 'NIFTYMIDSML400', 'NIFTYMNC',
  'NIFTYPHARMA', 'NIFTYPSE', 'NIFTYPSUBANK', 'NIFTYPVTBANK', 'NIFTYREALTY',
  'NIFTYSERVSECTOR', 'NIFTYSMLCAP100', 'NIFTYSMLCAP250', 'NIFTYSMLCAP50',
  'NIFTY100EQLWGT', 'NIFTY100LIQ15', 'NIFTY100LOWVOL30', 'NIFTY100QUALTY30',
  'NIFTY200QUALTY30', 'NIFTY50DIVPOINT', 'NIFTY50EQLWGT', 'NIFTY50PR1XINV',
  'NIFTY50PR2XLEV', 'NIFTY50TR1XINV', 'NIFTY50TR2XLEV', 'NIFTY50VALUE20',
]);

/** Dhan's BSE index trading symbols (exact) → OpenAlgo's names. */
export const BSE_INDEX_RENAMES: Readonly<Record<string, string>> = {
  SENSEX: 'SENSEX',
  BANKEX: 'BANKEX',
  SNSX50: 'SENSEX50',
  SNXT50: 'BSESENSEXNEXT50',
  BSE100: 'BSE100',
  BSE200: 'BSE200',
  BSE500: 'BSE500',
  MID150: 'BSE150MIDCAPINDEX',
  LMI250: 'BSE250LARGEMIDCAPINDEX',
  MSL400: 'BSE400MIDSMALLCAPINDEX',
  AUTO: 'BSEAUTO',
  'BSE CG': 'BSECAPITALGOODS',
  'BSE CD': 'BSECONSUMERDURABLES',
  'BSE HC': 'BSEHEALTHCARE',
  'BSE IT': 'BSEINFORMATIONTECHNOLOGY',
  CARBON: 'BSECARBONEX',
  CPSE: 'BSECPSE',
  DOL100: 'BSEDOLLEX100',
  DOL200: 'BSEDOLLEX200',
  DOL30: 'BSEDOLLEX30',
  ENERGY: 'BSEENERGY',
  BSEFMC: 'BSEFASTMOVINGCONSUMERGOODS',
  FINSER: 'BSEFINANCIALSERVICES',
  GREENX: 'BSEGREENEX',
  INFRA: 'BSEINDIAINFRASTRUCTUREINDEX',
  INDSTR: 'BSEINDUSTRIALS',
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

const MONTHS = ['JAN', 'FEB', 'MAR', 'APR', 'MAY', 'JUN', 'JUL', 'AUG', 'SEP', 'OCT', 'NOV', 'DEC'];
/** `extract_underlying_from_symbol`'s pattern: the underlying is what precedes DDMONYY. */
const UNDERLYING = /^(.+?)(\d{2}(?:JAN|FEB|MAR|APR|MAY|JUN|JUL|AUG|SEP|OCT|NOV|DEC)\d{2})(?:\d+(?:\.\d+)?)?(?:FUT|CE|PE)?$/i;

/** Streams Dhan's api-scrip-master.csv into the master, replacing the Dhan rows. */
export async function importDhanCsv(db: Database, input: AsyncIterable<Buffer | string>, options: ImportOptions = {}): Promise<ImportReport> {
  const what = options.source ?? 'the input';
  const job = new MasterImport(db, 'dhan');
  try {
    await importCsvRows(job, input, what, { header: (line) => readHeader(line, what), row: dhanRow, empty: "Dhan's api-scrip-master.csv" });
    return job.finish(what);
  } finally {
    job.abort();
  }
}

interface Header {
  at: Record<DhanColumn, number>;
  width: number;
}

function readHeader(line: string, what: string): Header {
  const first = line.trimStart();
  if (first.startsWith('[') || first.startsWith('{')) {
    throw new TickcastError(ErrorCode.USAGE, `${what} looks like JSON, not Dhan's api-scrip-master.csv`);
  }
  // OpenAlgo strips the column names (`df.columns.str.strip()`); they are matched as written otherwise.
  const names = (splitCsvLine(line) ?? []).map((n) => n.trim().toUpperCase());
  const at = {} as Record<DhanColumn, number>;
  const missing: string[] = [];
  for (const column of DHAN_COLUMNS) {
    const index = names.indexOf(column);
    if (index < 0) missing.push(column);
    else at[column] = index;
  }
  if (missing.length > 0) {
    throw new TickcastError(
      ErrorCode.USAGE,
      `${what} is not Dhan's api-scrip-master.csv: its header lacks ${missing.join(', ')} (the detailed api-scrip-master-detailed.csv is not the file OpenAlgo reads either)`,
    );
  }
  return { at, width: names.length };
}

function dhanRow(line: string, header: Header): RowResult {
  const fields = splitCsvLine(line);
  if (fields === null) return reject('a quoted field is not closed');
  if (fields.length !== header.width) return reject(`expected ${header.width} fields, got ${fields.length}`);
  const field = (c: DhanColumn): string => fields[header.at[c]]!.trim();

  const exchangeId = field('SEM_EXM_EXCH_ID');
  const securityId = field('SEM_SMST_SECURITY_ID');
  const instrument = field('SEM_INSTRUMENT_NAME');
  const tradingSymbol = field('SEM_TRADING_SYMBOL');
  const customSymbol = field('SEM_CUSTOM_SYMBOL');
  const optionType = field('SEM_OPTION_TYPE');

  if (securityId === '') return reject('missing SEM_SMST_SECURITY_ID');
  if (!/^\d+$/.test(securityId) || Number(securityId) > 0xffffffff) return reject(`SEM_SMST_SECURITY_ID "${securityId}" is not a 32-bit unsigned integer`);
  if (exchangeId === '') return reject('missing SEM_EXM_EXCH_ID');
  if (!DHAN_EXCHANGES.has(exchangeId)) return reject(`unknown SEM_EXM_EXCH_ID "${exchangeId}"`);
  if (instrument === '') return reject('missing SEM_INSTRUMENT_NAME');
  if (tradingSymbol === '') return reject('missing SEM_TRADING_SYMBOL');

  let exchange: string;
  let brexchange: string;
  let type: string;
  if (instrument === 'EQUITY' && exchangeId !== 'MCX') {
    [exchange, brexchange, type] = [exchangeId, `${exchangeId}_EQ`, 'EQ'];
  } else if (instrument === 'INDEX' && exchangeId !== 'MCX') {
    [exchange, brexchange, type] = [`${exchangeId}_INDEX`, 'IDX_I', 'INDEX'];
  } else {
    const segment = DERIVATIVE_SEGMENTS[exchangeId]![instrument];
    if (segment === undefined) return { kind: 'skip', reason: `${exchangeId} ${instrument} has no OpenAlgo exchange` };
    [exchange, brexchange] = segment;
    if (instrument.includes('OPT')) {
      if (optionType !== 'CE' && optionType !== 'PE') return reject(`${instrument} with SEM_OPTION_TYPE "${optionType}" (expected CE or PE)`);
      type = optionType;
    } else {
      type = 'FUT';
    }
  }

  const strike = decimal(field('SEM_STRIKE_PRICE'));
  if (strike === null) return reject(`SEM_STRIKE_PRICE "${field('SEM_STRIKE_PRICE')}" is not a number`);
  const tick = decimal(field('SEM_TICK_SIZE'));
  if (tick === null) return reject(`SEM_TICK_SIZE "${field('SEM_TICK_SIZE')}" is not a number`);
  const lot = decimal(field('SEM_LOT_UNITS'));
  if (lot === null) return reject(`SEM_LOT_UNITS "${field('SEM_LOT_UNITS')}" is not a number`);
  const expiry = dhanExpiry(field('SEM_EXPIRY_DATE'));
  const derivative = type === 'FUT' || type === 'CE' || type === 'PE';
  if (derivative && expiry === '') return reject(`${instrument} contract with SEM_EXPIRY_DATE "${field('SEM_EXPIRY_DATE')}" (expected YYYY-MM-DD)`);

  let symbol: string;
  if (instrument === 'EQUITY' || instrument === 'INDEX') {
    symbol = tradingSymbol;
  } else {
    if (customSymbol === '') return reject(`${instrument} contract without SEM_CUSTOM_SYMBOL`);
    symbol = dhanDerivativeSymbol(customSymbol, expiry.replaceAll('-', ''), type);
  }
  if (exchange === 'NSE_INDEX') {
    const plain = symbol.toUpperCase().replaceAll(' ', '').replaceAll('-', '');
    const renamed = NSE_INDEX_RENAMES[plain] ?? plain;
    if (OPENALGO_NSE_INDICES.has(renamed)) symbol = renamed;
  } else if (exchange === 'BSE_INDEX') {
    symbol = BSE_INDEX_RENAMES[symbol] ?? symbol;
  }

  let name = field('SM_SYMBOL_NAME');
  if (derivative) name = UNDERLYING.exec(symbol.toUpperCase())?.[1] ?? name;

  return {
    kind: 'row',
    row: {
      symbol,
      brsymbol: tradingSymbol,
      name,
      exchange,
      brexchange,
      token: securityId,
      expiry,
      strike,
      lotsize: Math.trunc(lot),
      instrumenttype: type,
      tick_size: tick / 100,
    },
  };
}

/** `reformat_symbol` for futures and options: the custom symbol's words rearranged, or the custom symbol as it is. */
export function dhanDerivativeSymbol(customSymbol: string, compactExpiry: string, type: string): string {
  const parts = customSymbol.split(' ');
  if (type === 'FUT') {
    if (parts.length === 3 || parts.length === 4) return `${parts[0]}${compactExpiry}FUT`;
  } else if (parts.length === 4) {
    return `${parts[0]}${compactExpiry}${parts[2]}${type}`;
  } else if (parts.length === 5) {
    return `${parts[0]}${compactExpiry}${parts[3]}${type}`;
  }
  return customSymbol;
}

/** `2024-03-28` or `2024-03-28 14:30:00` → `28-MAR-24`; '' when there is none or it is not a real date. */
export function dhanExpiry(text: string): string {
  const m = /^(\d{4})-(\d{2})-(\d{2})(?:[ T]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?$/.exec(text);
  if (!m) return '';
  const [year, month, day] = [Number(m[1]), Number(m[2]), Number(m[3])];
  const date = new Date(Date.UTC(year, month - 1, day));
  if (date.getUTCFullYear() !== year || date.getUTCMonth() !== month - 1 || date.getUTCDate() !== day) return '';
  return `${m[3]}-${MONTHS[month - 1]}-${m[1]!.slice(2)}`;
}


