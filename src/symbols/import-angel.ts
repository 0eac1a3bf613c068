/**
 * Imports Angel One's scrip master (`OpenAPIScripMaster.json`: one JSON array of flat objects
 * `{token, symbol, name, expiry, strike, lotsize, instrumenttype, exch_seg, tick_size}`, every
 * value a string) into the symbol master, naming instruments as OpenAlgo's Angel master-contract
 * download does (`broker/angel/database/master_contract_db.py`, `process_angel_json`):
 *
 * - exchange: exch_seg, except indices (instrumenttype AMXIDX) on NSE/BSE/MCX → NSE_INDEX /
 *   BSE_INDEX / MCX_INDEX. brexchange: exch_seg.
 * - strike: ÷100 (the file scales it); currency and interest-rate options on CDS (OPTCUR, OPTIRC)
 *   ÷1e7 in all. tick_size: ÷100. lotsize: integer.
 * - expiry: `28MAR2024` → `28-MAR-24` (kept as it is, upper-cased, when not in that form).
 * - symbol: the Angel symbol with every `-EQ`, `-BE`, `-MF`, `-SG` removed (RELIANCE-EQ →
 *   RELIANCE); futures on CDS (FUTCUR, FUTIRC), MCX (FUTCOM) and BFO (FUTIDX, FUTSTK) →
 *   `name + DDMONYY + FUT`; options on CDS (OPTCUR, OPTIRC), MCX (OPTFUT) and BFO (OPTIDX,
 *   OPTSTK) → `name + DDMONYY + strike + CE|PE`, the strike written as Python's str(float) with
 *   every ".0" removed (OpenAlgo's unanchored regex: 20800.0 → 20800, but 83.05 → 835, faithfully);
 *   NFO symbols are already in OpenAlgo's form and stay. Indices take their name, upper-cased
 *   without spaces and hyphens (BSE: also without "S&P "), and then, like every symbol,
 *   INDEX_NAMES renames (NIFTY50 → NIFTY, NIFTYBANK → BANKNIFTY…).
 * - instrumenttype: option types → CE/PE (by the symbol's ending), future types → FUT.
 *
 * Streaming: JsonArrayReader splits the array into elements as the bytes arrive; each element
 * (a few hundred bytes) is parsed on its own.
 */
import { ErrorCode, TickcastError } from '../errors.js';
import type { Database } from '../store/database.js';
import type { ImportOptions, RowResult } from './import-zerodha.js';
import { type ImportReport, MasterImport, type SymbolRow } from './master.js';

export const ANGEL_FIELDS = ['token', 'symbol', 'name', 'expiry', 'strike', 'lotsize', 'instrumenttype', 'exch_seg', 'tick_size'] as const;

/** Angel's exch_seg values (AngelExchangeMapper's, plus NCDEX as the file spells it). */
const EXCHANGES = new Set(['NSE', 'NFO', 'BSE', 'BFO', 'MCX', 'CDS', 'NCDEX', 'NCX', 'NCO', 'BCD']);
const INDEX_EXCHANGES: Record<string, string> = { NSE: 'NSE_INDEX', BSE: 'BSE_INDEX', MCX: 'MCX_INDEX' };

/** Applied to every symbol, as OpenAlgo applies its replace() to the whole column. */
export const INDEX_NAMES: Readonly<Record<string, string>> = {
  NIFTY50: 'NIFTY',
  NIFTYBANK: 'BANKNIFTY',
  NIFTYFINSERVICE: 'FINNIFTY',
  NIFTYNEXT50: 'NIFTYNXT50',
  NIFTYMIDSELECT: 'MIDCPNIFTY',
  NIFTYMIDCAPSELECT: 'MIDCPNIFTY',
  SNSX50: 'SENSEX50',
};

/** Instrument types whose symbol OpenAlgo rebuilds, per exchange. */
const FUTURES: Record<string, ReadonlySet<string>> = {
  CDS: new Set(['FUTCUR', 'FUTIRC']),
  MCX: new Set(['FUTCOM']),
  BFO: new Set(['FUTIDX', 'FUTSTK']),
};
const OPTIONS: Record<string, ReadonlySet<string>> = {
  CDS: new Set(['OPTCUR', 'OPTIRC']),
  MCX: new Set(['OPTFUT']),
  BFO: new Set(['OPTIDX', 'OPTSTK']),
};
const OPTION_TYPES = new Set(['OPTIDX', 'OPTSTK', 'OPTFUT', 'OPTCUR', 'OPTIRC']);
const FUTURE_TYPES = new Set(['FUTIDX', 'FUTSTK', 'FUTCOM', 'FUTCUR', 'FUTIRC', 'FUTIRT']);

const MONTHS = new Set(['JAN', 'FEB', 'MAR', 'APR', 'MAY', 'JUN', 'JUL', 'AUG', 'SEP', 'OCT', 'NOV', 'DEC']);

/** Streams Angel's OpenAPIScripMaster.json into the master, replacing the Angel rows. */
export async function importAngelJson(db: Database, input: AsyncIterable<Buffer | string>, options: ImportOptions = {}): Promise<ImportReport> {
  const what = options.source ?? 'the input';
  const job = new MasterImport(db, 'angel');
  try {
    await importJsonElements(job, input, new JsonArrayReader(what), (text, index) => angelElement(text, index, what));
    return job.finish(what);
  } finally {
    job.abort();
  }
}

/**
 * Feeds a JSON-array master file to `job`: each element's text, with its index, to `element`,
 * whose row is added, skipped or rejected (with that index). The reader holds at most one
 * chunk's elements; it refuses what is not a JSON array.
 */
export async function importJsonElements(
  job: MasterImport,
  input: AsyncIterable<Buffer | string>,
  reader: JsonArrayReader,
  element: (text: string, index: number) => RowResult,
): Promise<void> {
  const decoder = new TextDecoder('utf-8');
  let next = 0;
  const take = (elements: string[]): void => {
    for (const text of elements) {
      const index = next++;
      const result = element(text, index);
      if (result.kind === 'row') job.add(result.row);
      else if (result.kind === 'skip') job.skip(result.reason);
      else job.reject({ index, reason: result.reason });
    }
  };
  for await (const chunk of input) take(reader.push(typeof chunk === 'string' ? chunk : decoder.decode(chunk, { stream: true })));
  take(reader.push(decoder.decode()));
  reader.end();
}

type ElementResult = { kind: 'row'; row: SymbolRow } | { kind: 'reject'; reason: string };

function angelElement(text: string, index: number, what: string): ElementResult {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    if (index === 0) throw notScripMaster(what, 'its first element is not valid JSON');
    return { kind: 'reject', reason: `invalid JSON: ${(err as Error).message}` };
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    if (index === 0) throw notScripMaster(what, 'its first element is not an object');
    return { kind: 'reject', reason: 'not an object' };
  }
  const record = value as Record<string, unknown>;
  if (index === 0 && !('token' in record && 'exch_seg' in record && 'symbol' in record)) {
    throw notScripMaster(what, `its first element has no token, symbol and exch_seg (keys: ${Object.keys(record).slice(0, 12).join(', ')})`);
  }
  return angelRow(record);
}

function notScripMaster(what: string, why: string): TickcastError {
  return new TickcastError(ErrorCode.USAGE, `${what} is not Angel's OpenAPIScripMaster.json: ${why}`);
}

function angelRow(record: Record<string, unknown>): ElementResult {
  const fields = {} as Record<(typeof ANGEL_FIELDS)[number], string>;
  for (const key of ANGEL_FIELDS) {
    const v = record[key];
    if (v === undefined || v === null) {
      // An absent expiry or instrument type is blank in the file: accept either spelling.
      if (key === 'expiry' || key === 'instrumenttype' || key === 'name') fields[key] = '';
      else return reject(`missing ${key}`);
    } else if (typeof v === 'string') fields[key] = v.trim();
    else if (typeof v === 'number' && Number.isFinite(v)) fields[key] = String(v);
    else return reject(`${key} is not a string or number`);
  }
  const { token, symbol: brsymbol, name, exch_seg: exchSeg } = fields;
  let type = fields.instrumenttype;
  if (token === '') return reject('missing token');
  if (!/^[0-9A-Za-z_-]{1,32}$/.test(token)) return reject(`token "${token}" is not a broker token`);
  if (brsymbol === '') return reject('missing symbol');
  if (exchSeg === '') return reject('missing exch_seg');
  if (!EXCHANGES.has(exchSeg)) return reject(`unknown exch_seg "${exchSeg}"`);

  const rawStrike = decimal(fields.strike);
  if (rawStrike === null) return reject(`strike "${fields.strike}" is not a number`);
  const rawTick = decimal(fields.tick_size);
  if (rawTick === null) return reject(`tick_size "${fields.tick_size}" is not a number`);
  const lot = decimal(fields.lotsize);
  if (lot === null) return reject(`lotsize "${fields.lotsize}" is not a number`);

  const exchange = type === 'AMXIDX' ? (INDEX_EXCHANGES[exchSeg] ?? exchSeg) : exchSeg;
  const expiry = angelExpiry(fields.expiry);
  const compactExpiry = expiry.replaceAll('-', '');
  let strike = rawStrike / 100;
  if (exchange === 'CDS' && (type === 'OPTCUR' || type === 'OPTIRC')) strike = strike / 100000;

  let symbol = brsymbol.replace(/-EQ|-BE|-MF|-SG/g, '');
  const optionSuffix = symbol.slice(-2);
  if (FUTURES[exchange]?.has(type)) {
    if (name === '' || expiry === '') return reject(`${type} contract without a name or expiry`);
    symbol = `${name}${compactExpiry}FUT`;
  } else if (OPTIONS[exchange]?.has(type)) {
    if (name === '' || expiry === '') return reject(`${type} contract without a name or expiry`);
    // BFO options are rebuilt only when the symbol ends in CE/PE; MCX and CDS ones always.
    if (exchange !== 'BFO' || optionSuffix === 'CE' || optionSuffix === 'PE') {
      symbol = `${name}${compactExpiry}${pythonFloatText(strike).replaceAll('.0', '')}${optionSuffix}`;
    }
  } else if (exchange === 'NSE_INDEX') {
    symbol = name.toUpperCase().replaceAll(' ', '').replaceAll('-', '');
  } else if (exchange === 'BSE_INDEX') {
    symbol = name.toUpperCase().replaceAll('S&P ', '').replaceAll(' ', '').replaceAll('-', '');
  }
  symbol = INDEX_NAMES[symbol] ?? symbol;
  if (symbol === '') return reject('no symbol left after OpenAlgo naming (an index without a name?)');

  if (OPTION_TYPES.has(type)) {
    if (symbol.endsWith('CE')) type = 'CE';
    else if (symbol.endsWith('PE')) type = 'PE';
  } else if (FUTURE_TYPES.has(type)) {
    type = 'FUT';
  }

  return {
    kind: 'row',
    row: {
      symbol,
      brsymbol,
      name,
      exchange,
      brexchange: exchSeg,
      token,
      expiry,
      strike,
      lotsize: Math.trunc(lot),
      instrumenttype: type,
      tick_size: rawTick / 100,
    },
  };
}

function reject(reason: string): ElementResult {
  return { kind: 'reject', reason };
}

function decimal(text: string): number | null {
  if (!/^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(text)) return null;
  const value = Number(text);
  return Number.isFinite(value) ? value : null;
}

/** `28MAR2024` → `28-MAR-24` (Python's strptime('%d%b%Y') then strftime('%d-%b-%y')); anything else upper-cased as it is. */
export function angelExpiry(text: string): string {
  const m = /^(\d{1,2})([A-Za-z]{3})(\d{4})$/.exec(text);
  const month = m?.[2]!.toUpperCase();
  if (!m || !MONTHS.has(month!)) return text.toUpperCase();
  const day = Number(m[1]);
  const monthIndex = [...MONTHS].indexOf(month!);
  const year = Number(m[3]);
  const date = new Date(Date.UTC(year, monthIndex, day));
  if (day < 1 || date.getUTCMonth() !== monthIndex) return text.toUpperCase();
  return `${String(day).padStart(2, '0')}-${month}-${m[3]!.slice(2)}`;
}

/** Python's str(float): integral values keep a ".0"; repr otherwise (equal to JS's for strikes). */
export function pythonFloatText(value: number): string {
  return Number.isInteger(value) && Math.abs(value) < 1e16 ? `${value}.0` : String(value);
}

/**
 * Splits a streamed JSON array into the source text of its elements, tracking strings (with
 * escapes) and nesting so commas and brackets inside values do not split. Structure errors
 * (not an array, unterminated, trailing data) are fatal; an element that is not valid JSON is
 * left to its parser. Holds at most one element's text.
 */
export class JsonArrayReader {
  /** Elements completed so far (the next one's index). */
  #count = 0;
  #state: 'before' | 'first' | 'next' | 'element' | 'after' = 'before';
  #depth = 0;
  #inString = false;
  #escaped = false;
  #partial = '';
  #offset = 0;
  readonly #what: string;
  readonly #expected: string;

  static readonly MAX_ELEMENT = 64 * 1024;

  /** `what`: the input, for messages; `expected`: the file it should be, as its messages name it. */
  constructor(what: string, expected = "Angel's OpenAPIScripMaster.json") {
    this.#what = what;
    this.#expected = expected;
  }

  /** Feeds text; returns the elements completed by it. */
  push(text: string): string[] {
    const out: string[] = [];
    let start = this.#state === 'element' ? 0 : -1;
    for (let i = 0; i < text.length; i++) {
      const c = text.charCodeAt(i);
      switch (this.#state) {
        case 'before':
          if (isSpace(c) || c === 0xfeff) continue;
          if (c !== 0x5b /* [ */) throw this.#fail(`it does not start with a JSON array ('[')`, i, true);
          this.#state = 'first';
          continue;
        case 'first':
        case 'next':
          if (isSpace(c)) continue;
          if (c === 0x5d /* ] */) {
            if (this.#state === 'next') throw this.#fail('a comma is followed by "]"', i);
            this.#state = 'after';
            continue;
          }
          if (c === 0x2c /* , */) throw this.#fail('an array element is missing between commas', i);
          this.#state = 'element';
          this.#depth = 0;
          start = i;
          i--; // scan this character as part of the element
          continue;
        case 'after':
          if (!isSpace(c)) throw this.#fail('there is data after the end of the array', i);
          continue;
        case 'element': {
          if (this.#inString) {
            if (this.#escaped) this.#escaped = false;
            else if (c === 0x5c /* \ */) this.#escaped = true;
            else if (c === 0x22 /* " */) this.#inString = false;
            continue;
          }
          if (c === 0x22) this.#inString = true;
          else if (c === 0x7b /* { */ || c === 0x5b /* [ */) this.#depth++;
          else if (c === 0x7d /* } */ || c === 0x5d /* ] */) {
            if (this.#depth > 0) this.#depth--;
            else if (c === 0x5d) {
              out.push(this.#complete(text.slice(start, i)));
              this.#state = 'after';
            } else throw this.#fail("an unbalanced '}'", i);
          } else if (c === 0x2c && this.#depth === 0) {
            out.push(this.#complete(text.slice(start, i)));
            this.#state = 'next';
          }
          continue;
        }
      }
    }
    if (this.#state === 'element') {
      this.#partial += text.slice(start);
      this.#checkSize();
    }
    this.#offset += text.length;
    return out;
  }

  /** Call after the last push: throws if the array was not closed. */
  end(): void {
    if (this.#state === 'after') return;
    if (this.#state === 'before') throw new TickcastError(ErrorCode.USAGE, `${this.#what} is empty: expected ${this.#expected} (a JSON array)`);
    throw new TickcastError(ErrorCode.USAGE, `${this.#what} ends inside the JSON array (truncated download?); nothing was imported`);
  }

  #complete(tail: string): string {
    const text = (this.#partial + tail).trim();
    this.#partial = '';
    if (text.length > JsonArrayReader.MAX_ELEMENT) this.#tooLarge();
    this.#count++;
    return text;
  }

  #checkSize(): void {
    if (this.#partial.length > JsonArrayReader.MAX_ELEMENT) this.#tooLarge();
  }

  #tooLarge(): never {
    throw new TickcastError(
      ErrorCode.USAGE,
      `${this.#what}: array element ${this.#count} is larger than ${JsonArrayReader.MAX_ELEMENT} characters; not ${this.#expected} (whose elements are flat objects)`,
    );
  }

  #fail(why: string, at: number, start = false): TickcastError {
    const where = `character ${this.#offset + at + 1}`;
    return new TickcastError(
      ErrorCode.USAGE,
      start
        ? `${this.#what} is not ${this.#expected}: ${why}`
        : `${this.#what} is not a well-formed JSON array: ${why} at ${where}; nothing was imported`,
    );
  }
}

function isSpace(c: number): boolean {
  return c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;
}
