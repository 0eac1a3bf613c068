/**
 * Imports Kite Connect's instruments dump (`GET https://api.kite.trade/instruments`, CSV) into the
 * symbol master, naming instruments as OpenAlgo's Zerodha master-contract download does
 * (`broker/zerodha/database/master_contract_db.py`, `process_zerodha_csv`):
 *
 * - exchange: Kite's exchange (NSE, BSE, NFO, BFO, CDS, BCD, MCX); rows of segment INDICES go to
 *   NSE_INDEX / BSE_INDEX / MCX_INDEX / CDS_INDEX. Other Kite exchanges (NCO, NSEIX, GLOBAL…) have
 *   no OpenAlgo exchange: skipped. brexchange is that same OpenAlgo exchange, as OpenAlgo stores
 *   it (the Kite feed needs only the token).
 * - token: `instrument_token::::exchange_token` (SymbolMaster.lookup returns instrument_token).
 * - expiry: `YYYY-MM-DD` → `DD-MON-YY` upper case (`28-MAR-24`).
 * - symbol: futures `name + DDMONYY + FUT` (NIFTY28MAR24FUT); options `name + DDMONYY +
 *   int(strike) + CE|PE` (NIFTY28MAR2420800CE; the strike is truncated to an integer, so currency
 *   options on fractional strikes share a symbol and the last row wins, as in OpenAlgo); NSE
 *   indices upper-cased without spaces and hyphens, then NSE_INDEX_NAMES; BSE indices the same,
 *   then BSE_INDEX_NAMES, else prefixed with BSE; everything else the tradingsymbol.
 *
 * Streaming: the file is read chunk by chunk and line by line; rows are staged in batches.
 */
import type { Database } from '../store/database.js';
import { ErrorCode, TickcastError } from '../errors.js';
import { type ImportReport, MasterImport, type SymbolRow } from './master.js';

export const KITE_COLUMNS = [
  'instrument_token',
  'exchange_token',
  'tradingsymbol',
  'name',
  'last_price',
  'expiry',
  'strike',
  'tick_size',
  'lot_size',
  'instrument_type',
  'segment',
  'exchange',
] as const;
type KiteColumn = (typeof KITE_COLUMNS)[number];

/** Kite exchanges OpenAlgo maps (its `exchange_map`). */
const MAPPED_EXCHANGES = new Set(['NSE', 'NFO', 'CDS', 'BSE', 'BFO', 'BCD', 'MCX']);
/** Kite exchanges that exist but OpenAlgo leaves unmapped: their rows are skipped, not rejected. */
const UNMAPPED_EXCHANGES = new Set(['NCO', 'NSEIX', 'GLOBAL', 'MCXSX', 'BSEIX']);
const INDEX_EXCHANGES: Record<string, string> = { NSE: 'NSE_INDEX', BSE: 'BSE_INDEX', MCX: 'MCX_INDEX', CDS: 'CDS_INDEX' };

/** NSE index names (upper case, no spaces or hyphens) that OpenAlgo renames. */
export const NSE_INDEX_NAMES: Readonly<Record<string, string>> = {
  NIFTY50: 'NIFTY',
  NIFTYBANK: 'BANKNIFTY',
  NIFTYFINSERVICE: 'FINNIFTY',
  NIFTYNEXT50: 'NIFTYNXT50',
  NIFTYMIDSELECT: 'MIDCPNIFTY',
  NIFTYMIDCAPSELECT: 'MIDCPNIFTY',
};

/** BSE index tradingsymbols (normalised) → OpenAlgo's names; others get a BSE prefix. */
export const BSE_INDEX_NAMES: Readonly<Record<string, string>> = {
  SENSEX: 'SENSEX',
  BANKEX: 'BANKEX',
  SNSX50: 'SENSEX50',
  SENSEX50: 'SENSEX50',
  SNXT50: 'BSESENSEXNEXT50',
  BSE100: 'BSE100',
  BSE200: 'BSE200',
  BSE500: 'BSE500',
  MID150: 'BSE150MIDCAPINDEX',
  LMI250: 'BSE250LARGEMIDCAPINDEX',
  MSL400: 'BSE400MIDSMALLCAPINDEX',
  AUTO: 'BSEAUTO',
  BSECG: 'BSECAPITALGOODS',
  BSECD: 'BSECONSUMERDURABLES',
  BSEHC: 'BSEHEALTHCARE',
  BSEIT: 'BSEINFORMATIONTECHNOLOGY',
  CARBON: 'BSECARBONEX',
  CARBONEX: 'BSECARBONEX',
  CPSE: 'BSECPSE',
  DOL100: 'BSEDOLLEX100',
  DOL200: 'BSEDOLLEX200',
  DOL30: 'BSEDOLLEX30',
  ENERGY: 'BSEENERGY',
  BSEFMC: 'BSEFASTMOVINGCONSUMERGOODS',
  FMC: 'BSEFASTMOVINGCONSUMERGOODS',
  FINSER: 'BSEFINANCIALSERVICES',
  FIN: 'BSEFINANCIALSERVICES',
  GREENX: 'BSEGREENEX',
  GREENEX: 'BSEGREENEX',
  INFRA: 'BSEINDIAINFRASTRUCTUREINDEX',
  INDSTR: 'BSEINDUSTRIALS',
  BSEIPO: 'BSEIPO',
  IPO: 'BSEIPO',
  LRGCAP: 'BSELARGECAP',
  METAL: 'BSEMETAL',
  MIDCAP: 'BSEMIDCAP',
  MIDSEL: 'BSEMIDCAPSELECTINDEX',
  OILGAS: 'BSEOIL&GAS',
  POWER: 'BSEPOWER',
  BSEPSU: 'BSEPSU',
  PSU: 'BSEPSU',
  REALTY: 'BSEREALTY',
  SMLCAP: 'BSESMALLCAP',
  SMLSEL: 'BSESMALLCAPSELECTINDEX',
  SMEIPO: 'BSESMEIPO',
  TECK: 'BSETECK',
  TELCOM: 'BSETELECOM',
};

const MONTHS = ['JAN', 'FEB', 'MAR', 'APR', 'MAY', 'JUN', 'JUL', 'AUG', 'SEP', 'OCT', 'NOV', 'DEC'];
/** A real row is ~100 characters; a far longer "line" means this is not the CSV at all. */
const MAX_LINE = 64 * 1024;

export interface ImportOptions {
  /** Names the input in messages (a file name). */
  source?: string;
}

/** Streams a Kite instruments CSV into the master, replacing the Zerodha rows. */
export async function importZerodhaCsv(db: Database, input: AsyncIterable<Buffer | string>, options: ImportOptions = {}): Promise<ImportReport> {
  const what = options.source ?? 'the input';
  const job = new MasterImport(db, 'zerodha');
  try {
    await importCsvRows(job, input, what, { header: (line) => readHeader(line, what), row: kiteRow, empty: 'a Kite instruments CSV' });
    return job.finish(what);
  } finally {
    job.abort();
  }
}

/** What one row of a master file comes to. */
export type RowResult = { kind: 'row'; row: SymbolRow } | { kind: 'skip'; reason: string } | { kind: 'reject'; reason: string };

/** How one CSV file is read: its header line, each row against it, and what it is (for "is empty: expected …"). */
export interface CsvParse<H> {
  header(line: string): H;
  row(line: string, header: H): RowResult;
  empty: string;
  /** The reason a rejected row is reported with (the Noren importer names the file). */
  rejected?: (reason: string) => string;
}

/**
 * Feeds a CSV master file to `job`: the first line is its header, blank lines are skipped, and
 * every other row is added, skipped or rejected (with its line number). A file without even a
 * header line is refused.
 */
export async function importCsvRows<H>(job: MasterImport, input: AsyncIterable<Buffer | string>, what: string, parse: CsvParse<H>): Promise<void> {
  let header: H | undefined;
  let lineNo = 0;
  for await (const line of lines(input, what)) {
    lineNo++;
    if (header === undefined) {
      header = parse.header(line);
      continue;
    }
    if (line.trim() === '') continue;
    const result = parse.row(line, header);
    if (result.kind === 'row') job.add(result.row);
    else if (result.kind === 'skip') job.skip(result.reason);
    else job.reject({ line: lineNo, reason: parse.rejected ? parse.rejected(result.reason) : result.reason });
  }
  if (header === undefined) throw new TickcastError(ErrorCode.USAGE, `${what} is empty: expected ${parse.empty}`);
}

/** Lines of a UTF-8 byte (or text) stream, without their line ends, never holding more than one line. */
export async function* lines(input: AsyncIterable<Buffer | string>, what: string): AsyncGenerator<string> {
  const decoder = new TextDecoder('utf-8');
  let pending = '';
  let first = true;
  for await (const chunk of input) {
    let text = typeof chunk === 'string' ? chunk : decoder.decode(chunk, { stream: true });
    if (first && text.length > 0) {
      if (text.charCodeAt(0) === 0xfeff) text = text.slice(1); // a BOM from a spreadsheet save
      first = false;
    }
    let start = 0;
    let end = text.indexOf('\n');
    if (end < 0) {
      pending += text;
    } else {
      // Collect the chunk's complete lines first: no await between them keeps this fast.
      const complete: string[] = [];
      complete.push(pending + text.slice(0, end));
      start = end + 1;
      while ((end = text.indexOf('\n', start)) >= 0) {
        complete.push(text.slice(start, end));
        start = end + 1;
      }
      pending = text.slice(start);
      for (const line of complete) yield stripCr(checkLength(line, what));
    }
    checkLength(pending, what);
  }
  pending += decoder.decode();
  if (pending.length > 0) yield stripCr(checkLength(pending, what));
}

function stripCr(line: string): string {
  return line.endsWith('\r') ? line.slice(0, -1) : line;
}

function checkLength(line: string, what: string): string {
  if (line.length > MAX_LINE) throw new TickcastError(ErrorCode.USAGE, `${what} has a line longer than ${MAX_LINE} characters: not a CSV file`);
  return line;
}

/** Where each column is, and how many fields every row has. */
interface Header {
  at: Record<KiteColumn, number>;
  width: number;
}

function readHeader(line: string, what: string): Header {
  const first = line.trimStart();
  if (first.startsWith('[') || first.startsWith('{')) {
    throw new TickcastError(ErrorCode.USAGE, `${what} looks like JSON, not Kite's instruments CSV (for Angel's OpenAPIScripMaster.json use --broker angel)`);
  }
  const names = (splitCsvLine(line) ?? []).map((n) => n.trim().toLowerCase());
  const at = {} as Record<KiteColumn, number>;
  const missing: string[] = [];
  for (const column of KITE_COLUMNS) {
    const index = names.indexOf(column);
    if (index < 0) missing.push(column);
    else at[column] = index;
  }
  if (missing.length > 0) {
    throw new TickcastError(
      ErrorCode.USAGE,
      `${what} is not a Kite instruments CSV: its header lacks ${missing.join(', ')} (expected ${KITE_COLUMNS.join(',')})`,
    );
  }
  return { at, width: names.length };
}

/** RFC 4180 fields of one line (quoted fields may hold commas and doubled quotes); null if a quote is left open. */
export function splitCsvLine(line: string): string[] | null {
  if (!line.includes('"')) return line.split(',');
  const fields: string[] = [];
  let i = 0;
  for (;;) {
    if (line[i] === '"') {
      let value = '';
      i++;
      for (;;) {
        const q = line.indexOf('"', i);
        if (q < 0) return null;
        value += line.slice(i, q);
        if (line[q + 1] === '"') {
          value += '"';
          i = q + 2;
          continue;
        }
        i = q + 1;
        break;
      }
      // Anything between the closing quote and the comma is kept, as lenient readers do.
      const comma = line.indexOf(',', i);
      fields.push(value + line.slice(i, comma < 0 ? line.length : comma));
      if (comma < 0) return fields;
      i = comma + 1;
    } else {
      const comma = line.indexOf(',', i);
      fields.push(line.slice(i, comma < 0 ? line.length : comma));
      if (comma < 0) return fields;
      i = comma + 1;
    }
  }
}

function kiteRow(line: string, header: Header): RowResult {
  const fields = splitCsvLine(line);
  if (fields === null) return reject('a quoted field is not closed');
  if (fields.length !== header.width) return reject(`expected ${header.width} fields, got ${fields.length}`);
  const field = (c: KiteColumn): string => fields[header.at[c]]!.trim();

  const instrumentToken = field('instrument_token');
  const exchangeToken = field('exchange_token');
  const tradingsymbol = field('tradingsymbol');
  const kiteExchange = field('exchange');
  const segment = field('segment');
  const type = field('instrument_type');
  const name = field('name');

  if (instrumentToken === '') return reject('missing instrument_token');
  if (!/^\d+$/.test(instrumentToken) || Number(instrumentToken) > 0xffffffff) return reject(`instrument_token "${instrumentToken}" is not a 32-bit unsigned integer`);
  if (!/^\d+$/.test(exchangeToken)) return reject(`exchange_token "${exchangeToken}" is not an unsigned integer`);
  if (tradingsymbol === '') return reject('missing tradingsymbol');
  if (segment === '') return reject('missing segment');
  if (kiteExchange === '') return reject('missing exchange');
  if (!MAPPED_EXCHANGES.has(kiteExchange)) {
    if (UNMAPPED_EXCHANGES.has(kiteExchange)) return { kind: 'skip', reason: `exchange ${kiteExchange} has no OpenAlgo exchange` };
    return reject(`unknown exchange "${kiteExchange}"`);
  }
  const isIndex = segment === 'INDICES';
  if (!isIndex && segment !== kiteExchange && !segment.startsWith(`${kiteExchange}-`)) {
    return reject(`segment "${segment}" is not one of exchange ${kiteExchange}`);
  }

  const strike = decimal(field('strike'));
  if (strike === null) return reject(`strike "${field('strike')}" is not a number`);
  const tickSize = decimal(field('tick_size'));
  if (tickSize === null) return reject(`tick_size "${field('tick_size')}" is not a number`);
  const lotSize = decimal(field('lot_size'));
  if (lotSize === null || !Number.isInteger(lotSize)) return reject(`lot_size "${field('lot_size')}" is not an integer`);
  const expiry = kiteExpiry(field('expiry'));
  if (expiry === null) return reject(`expiry "${field('expiry')}" is not a YYYY-MM-DD date`);

  const exchange = isIndex ? (INDEX_EXCHANGES[kiteExchange] ?? kiteExchange) : kiteExchange;
  const compactExpiry = expiry.replaceAll('-', '');
  let symbol = tradingsymbol;
  if (type === 'FUT' || type === 'CE' || type === 'PE') {
    if (name === '') return reject(`${type} contract without a name`);
    if (expiry === '') return reject(`${type} contract without an expiry`);
    symbol = type === 'FUT' ? `${name}${compactExpiry}FUT` : `${name}${compactExpiry}${Math.trunc(strike)}${type}`;
  } else if (exchange === 'NSE_INDEX') {
    const plain = normaliseIndex(tradingsymbol);
    symbol = NSE_INDEX_NAMES[plain] ?? plain;
  } else if (exchange === 'BSE_INDEX') {
    const plain = normaliseIndex(tradingsymbol);
    symbol = BSE_INDEX_NAMES[plain] ?? (plain.startsWith('BSE') ? plain : `BSE${plain}`);
  }

  return {
    kind: 'row',
    row: {
      symbol,
      brsymbol: tradingsymbol,
      name,
      exchange,
      brexchange: exchange,
      token: `${instrumentToken}::::${exchangeToken}`,
      expiry,
      strike,
      lotsize: lotSize,
      instrumenttype: type,
      tick_size: tickSize,
    },
  };
}

export function reject(reason: string): RowResult {
  return { kind: 'reject', reason };
}

function normaliseIndex(tradingsymbol: string): string {
  return tradingsymbol.toUpperCase().replaceAll(' ', '').replaceAll('-', '');
}

/** A plain decimal number ('' is not one); null otherwise. */
/** A decimal number written plainly (no hex, no Infinity), or null. */
export function decimal(text: string): number | null {
  if (!/^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(text)) return null;
  const value = Number(text);
  return Number.isFinite(value) ? value : null;
}

/** `2024-03-28` → `28-MAR-24`; '' stays ''; null when it is not a real date. */
export function kiteExpiry(text: string): string | null {
  if (text === '') return '';
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(text);
  if (!m) return null;
  const [year, month, day] = [Number(m[1]), Number(m[2]), Number(m[3])];
  const date = new Date(Date.UTC(year, month - 1, day));
  if (date.getUTCFullYear() !== year || date.getUTCMonth() !== month - 1 || date.getUTCDate() !== day) return null;
  return `${m[3]}-${MONTHS[month - 1]}-${m[1]!.slice(2)}`;
}
