/**
 * Imports Noren symbol files into the symbol master, naming instruments as OpenAlgo's
 * master-contract downloads do:
 *
 * - Shoonya (`broker/shoonya/database/master_contract_db.py`: `process_shoonya_nse_data`, `_bse_`,
 *   `_nfo_`, `_cds_`, `_mcx_`, `_bfo_data`): `https://api.shoonya.com/<X>_symbols.txt.zip`, each
 *   holding `<X>_symbols.txt`, a CSV with columns Exchange, Token, LotSize, Symbol, TradingSymbol,
 *   Expiry, Instrument, OptionType, StrikePrice, TickSize (equity files have no Expiry, OptionType,
 *   StrikePrice; CDS adds Precision, Multiplier; MCX adds GNGD; lines end with a comma).
 * - Flattrade (`broker/flattrade/database/master_contract_db.py`: `process_flattrade_*_data`):
 *   `https://flattrade.s3.ap-south-1.amazonaws.com/scripmaster/NSE_Equity.csv`, `BSE_Equity.csv`,
 *   `Nfo_Equity_Derivatives.csv` + `Nfo_Index_Derivatives.csv`, `Currency_Derivatives.csv`,
 *   `Commodity.csv`, `Bfo_Index_Derivatives.csv` + `Bfo_Equity_Derivatives.csv`, columns Token,
 *   Lotsize, Symbol, Tradingsymbol, Instrument, Expiry, Strike, Optiontype.
 *
 * All of a broker's files go into one import (the import replaces the broker's whole master), in
 * the order given; OpenAlgo's order is NSE, BSE, NFO, CDS, MCX, BFO. The rules:
 *
 * - token: Token, what the Noren feed subscribes with (`NSE|2885`). exchange and brexchange: the
 *   file's exchange, except NSE indices (Instrument INDEX) → NSE_INDEX, and Flattrade BSE indices
 *   (Instrument UNDIND) → BSE_INDEX (brexchange BSE). Shoonya's BSE import also adds OpenAlgo's two
 *   hand-made BSE_INDEX rows, SENSEX (token 1) and BANKEX (token 12).
 * - equities: symbol TradingSymbol without `-EQ` (else without `-BE`) on NSE, as it is on BSE;
 *   instrumenttype EQ (NSE keeps INDEX); expiry ''; strike -1. NSE indices upper-cased without
 *   spaces and hyphens, then NSE_INDEX_RENAMES; Flattrade BSE indices the same, then
 *   BSE_INDEX_RENAMES.
 * - derivatives: expiry `28-MAR-2024` → `28-MAR-24`; instrumenttype FUT when OptionType is XX,
 *   else OptionType (Shoonya CDS/MCX: the Instrument unless OPTCUR/OPTFUT; Shoonya BFO: from the
 *   TradingSymbol's ending, FUT/CE/PE, and name its leading letters); symbol `name + DDMONYY +
 *   FUT` or `name + DDMONYY + strike + CE|PE`, the strike without ".0" when whole. Shoonya CDS
 *   rows with a token ≤ 100 are dropped, as OpenAlgo drops them.
 * - tick_size: Shoonya NSE/BSE TickSize ÷ 100 and other files' TickSize as it is; Flattrade 0.05
 *   (CDS 0.0025), as OpenAlgo sets them. lotsize: an integer.
 * - rows without a TradingSymbol (or, on Shoonya, a Symbol; Noren files carry such placeholder
 *   rows) are skipped, as OpenAlgo drops them.
 *
 * Rejections name the file in their reason (`NFO_symbols.txt: …`) and give its 1-based line.
 */
import { ErrorCode, TickcastError } from '../errors.js';
import type { Database } from '../store/database.js';
import { type RowResult, decimal, importCsvRows, reject, splitCsvLine } from './import-zerodha.js';
import { type ImportReport, MasterImport, type SymbolRow } from './master.js';

export type NorenBroker = 'shoonya' | 'flattrade';
export type NorenFileKind = 'NSE' | 'BSE' | 'NFO' | 'CDS' | 'MCX' | 'BFO';

export interface NorenFile {
  kind: NorenFileKind;
  input: AsyncIterable<Buffer | string>;
  /** Names the file in messages. */
  source?: string;
}

/** OpenAlgo's order of the files. */
export const NOREN_FILE_ORDER: readonly NorenFileKind[] = ['NSE', 'BSE', 'NFO', 'CDS', 'MCX', 'BFO'];

export const NSE_INDEX_RENAMES: Readonly<Record<string, string>> = {
  NIFTY50: 'NIFTY',
  NIFTYBANK: 'BANKNIFTY',
  NIFTYFIN: 'FINNIFTY',
  NIFTYFINSERVICE: 'FINNIFTY',
  NIFTYFINANCIALSERVICES: 'FINNIFTY',
  NIFTYNEXT50: 'NIFTYNXT50',
  NIFTYMIDSELECT: 'MIDCPNIFTY',
  NIFTYMIDCAPSELECT: 'MIDCPNIFTY',
};
/** Shoonya's map also has this one. */
const SHOONYA_ONLY_RENAMES: Readonly<Record<string, string>> = { NIFTYINDEX: 'NIFTY' };

/** Flattrade's BSE index names (normalised) → OpenAlgo's. */
export const BSE_INDEX_RENAMES: Readonly<Record<string, string>> = {
  BSESENSEX: 'SENSEX',
  'S&PBSESENSEX': 'SENSEX',
  BSESENSEX50: 'SENSEX50',
  'S&PBSESENSEX50': 'SENSEX50',
  BSESENSEXNEXT50: 'BSESENSEXNEXT50',
  'S&PBSESENSEXNEXT50': 'BSESENSEXNEXT50',
};

/** The BSE index rows OpenAlgo adds by hand to Shoonya's master. */
const SHOONYA_BSE_INDICES: readonly SymbolRow[] = [
  { symbol: 'SENSEX', brsymbol: 'SENSEX', name: 'SENSEX', exchange: 'BSE_INDEX', brexchange: 'BSE_INDEX', token: '1', expiry: '', strike: -1, lotsize: 1, instrumenttype: 'INDEX', tick_size: 0.05 },
  { symbol: 'BANKEX', brsymbol: 'BANKEX', name: 'BANKEX', exchange: 'BSE_INDEX', brexchange: 'BSE_INDEX', token: '12', expiry: '', strike: -1, lotsize: 1, instrumenttype: 'INDEX', tick_size: 0.05 },
];

const MONTHS = ['JAN', 'FEB', 'MAR', 'APR', 'MAY', 'JUN', 'JUL', 'AUG', 'SEP', 'OCT', 'NOV', 'DEC'];

/** The kind of a downloaded file by its name (NSE_symbols.txt, Nfo_Index_Derivatives.csv…), if known. */
export function norenFileKind(fileName: string): NorenFileKind | undefined {
  const base = (fileName.split(/[\\/]/).pop() ?? '').toUpperCase();
  const m = /^(NSE|BSE|NFO|CDS|MCX|BFO)_SYMBOLS\.TXT$/.exec(base);
  if (m) return m[1] as NorenFileKind;
  if (base === 'NSE_EQUITY.CSV') return 'NSE';
  if (base === 'BSE_EQUITY.CSV') return 'BSE';
  if (/^NFO_(EQUITY|INDEX)_DERIVATIVES\.CSV$/.test(base)) return 'NFO';
  if (/^BFO_(EQUITY|INDEX)_DERIVATIVES\.CSV$/.test(base)) return 'BFO';
  if (base === 'CURRENCY_DERIVATIVES.CSV') return 'CDS';
  if (base === 'COMMODITY.CSV') return 'MCX';
  return undefined;
}

/** Streams a broker's Noren symbol files, one after another, into the master, replacing its rows. */
export async function importNorenFiles(db: Database, broker: NorenBroker, files: readonly NorenFile[]): Promise<ImportReport> {
  if (files.length === 0) throw new TickcastError(ErrorCode.USAGE, `no ${broker} symbol files given`);
  const job = new MasterImport(db, broker);
  try {
    for (const f of files) {
      const what = f.source ?? `the ${f.kind} file`;
      await importCsvRows(job, f.input, what, {
        header: (line) => readHeader(line, what, broker, f.kind),
        row: (line, header) => norenRow(line, header, broker, f.kind),
        empty: `a ${broker} ${f.kind} symbol file`,
        rejected: (reason) => `${what}: ${reason}`,
      });
      if (broker === 'shoonya' && f.kind === 'BSE') for (const row of SHOONYA_BSE_INDICES) job.add({ ...row });
    }
    return job.finish(files.map((f) => f.source ?? `the ${f.kind} file`).join(', '));
  } finally {
    job.abort();
  }
}

interface Header {
  at: Map<string, number>;
  width: number;
}

const EQUITY_KINDS = new Set<NorenFileKind>(['NSE', 'BSE']);

function readHeader(line: string, what: string, broker: NorenBroker, kind: NorenFileKind): Header {
  const names = (splitCsvLine(line) ?? []).map((n) => n.trim().toLowerCase());
  const at = new Map<string, number>();
  names.forEach((n, i) => {
    if (n !== '' && !at.has(n)) at.set(n, i);
  });
  const required = broker === 'shoonya'
    ? ['token', 'lotsize', 'symbol', 'tradingsymbol', 'instrument', ...(EQUITY_KINDS.has(kind) ? ['ticksize'] : ['expiry', 'optiontype', 'strikeprice', 'ticksize'])]
    : ['token', 'lotsize', 'symbol', 'tradingsymbol', 'instrument', ...(EQUITY_KINDS.has(kind) ? [] : ['expiry', 'strike', 'optiontype'])];
  const missing = required.filter((c) => !at.has(c));
  if (missing.length > 0) {
    throw new TickcastError(ErrorCode.USAGE, `${what} is not a ${broker} ${kind} symbol file: its header lacks ${missing.join(', ')}`);
  }
  return { at, width: names.length };
}

function norenRow(line: string, header: Header, broker: NorenBroker, kind: NorenFileKind): RowResult {
  const fields = splitCsvLine(line);
  if (fields === null) return reject('a quoted field is not closed');
  if (fields.length !== header.width) return reject(`expected ${header.width} fields, got ${fields.length}`);
  const field = (c: string): string => {
    const i = header.at.get(c);
    return i === undefined ? '' : fields[i]!.trim();
  };
  const shoonya = broker === 'shoonya';
  const token = field('token');
  const brsymbol = field('tradingsymbol');
  let name = field('symbol');
  const instrument = field('instrument');

  if (brsymbol === '' || (shoonya && kind !== 'BFO' && name === '')) return { kind: 'skip', reason: `placeholder ${kind} row without a symbol` };
  if (!/^\d+$/.test(token)) return reject(`Token "${token}" is not an unsigned integer`);
  if (shoonya && kind === 'CDS' && Number(token) <= 100) return { kind: 'skip', reason: 'CDS token of 100 or less, which OpenAlgo leaves out' };
  const lotText = field('lotsize');
  const lot = lotText === '' ? (shoonya || !EQUITY_KINDS.has(kind) ? 0 : 1) : decimal(lotText);
  if (lot === null) return reject(`LotSize "${lotText}" is not a number`);
  const tickText = field('ticksize');
  const rawTick = tickText === '' ? 0 : decimal(tickText);
  if (shoonya && rawTick === null) return reject(`TickSize "${tickText}" is not a number`);

  if (EQUITY_KINDS.has(kind)) {
    let symbol = brsymbol;
    let exchange: string = kind;
    let brexchange: string = kind;
    let type = 'EQ';
    if (kind === 'NSE') {
      symbol = brsymbol.includes('-EQ') ? brsymbol.replaceAll('-EQ', '') : brsymbol.replaceAll('-BE', '');
      const inst = instrument === '' && !shoonya ? 'EQ' : instrument;
      if (inst === 'INDEX') {
        exchange = brexchange = 'NSE_INDEX';
        const plain = symbol.toUpperCase().replaceAll(' ', '').replaceAll('-', '');
        symbol = NSE_INDEX_RENAMES[plain] ?? (shoonya ? SHOONYA_ONLY_RENAMES[plain] : undefined) ?? plain;
      }
      type = inst === 'EQ' || inst === 'BE' ? 'EQ' : inst;
    } else if (!shoonya && instrument === 'UNDIND') {
      exchange = 'BSE_INDEX';
      type = 'INDEX';
      const plain = symbol.toUpperCase().replaceAll(' ', '').replaceAll('-', '');
      symbol = BSE_INDEX_RENAMES[plain] ?? plain;
    }
    let strike = -1;
    let expiry = '';
    if (!shoonya) {
      strike = decimal(field('strike')) ?? -1;
      expiry = field('expiry');
    }
    return {
      kind: 'row',
      row: { symbol, brsymbol, name, exchange, brexchange, token, expiry, strike, lotsize: Math.trunc(lot), instrumenttype: type, tick_size: shoonya ? rawTick! / 100 : 0.05 },
    };
  }

  const expiryText = field('expiry');
  const expiry = norenExpiry(expiryText);
  if (expiry === null) return reject(`Expiry "${expiryText}" is not a DD-MON-YYYY date`);
  const strikeText = shoonya ? field('strikeprice') : field('strike');
  const strike = strikeText === '' ? -1 : decimal(strikeText);
  if (strike === null) return reject(`strike "${strikeText}" is not a number`);
  const option = field('optiontype');
  let type: string;
  if (shoonya && kind === 'BFO') {
    name = /^[A-Za-z]+/.exec(brsymbol)?.[0] ?? brsymbol;
    type = brsymbol.endsWith('FUT') ? 'FUT' : brsymbol.endsWith('CE') ? 'CE' : brsymbol.endsWith('PE') ? 'PE' : 'UNKNOWN';
  } else if (shoonya && (kind === 'CDS' || kind === 'MCX')) {
    type = option === 'XX' ? 'FUT' : instrument === (kind === 'CDS' ? 'OPTCUR' : 'OPTFUT') ? option : instrument;
  } else {
    type = option === 'XX' ? 'FUT' : option;
  }
  const compact = expiry.replaceAll('-', '');
  let strikeWord = String(strike);
  if (shoonya && kind === 'BFO' && !Number.isInteger(strike)) strikeWord = strike.toFixed(2).replace(/0+$/, '').replace(/\.$/, '');
  const symbol = type === 'FUT' ? `${name}${compact}FUT` : `${name}${compact}${strikeWord}${type}`;
  return {
    kind: 'row',
    row: {
      symbol,
      brsymbol,
      name,
      exchange: kind,
      brexchange: kind,
      token,
      expiry,
      strike,
      lotsize: Math.trunc(lot),
      instrumenttype: type,
      tick_size: shoonya ? (rawTick ?? 0) : kind === 'CDS' ? 0.0025 : 0.05,
    },
  };
}

/** `28-MAR-2024` (any case) → `28-MAR-24`; null when it is not such a date. */
export function norenExpiry(text: string): string | null {
  const m = /^(\d{1,2})-([A-Za-z]{3})-(\d{4})$/.exec(text);
  if (!m) return null;
  const month = MONTHS.indexOf(m[2]!.toUpperCase());
  const day = Number(m[1]);
  const year = Number(m[3]);
  if (month < 0 || day < 1 || new Date(Date.UTC(year, month, day)).getUTCMonth() !== month) return null;
  return `${String(day).padStart(2, '0')}-${MONTHS[month]}-${m[3]!.slice(2)}`;
}


