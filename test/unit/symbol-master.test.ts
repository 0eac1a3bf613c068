import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import v8 from 'node:v8';
import vm from 'node:vm';
import BetterSqlite3 from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ErrorCode, TickcastError } from '../../src/errors.js';
import { openDatabase, type Database } from '../../src/store/database.js';
import { angelExpiry, importAngelJson, JsonArrayReader, pythonFloatText } from '../../src/symbols/import-angel.js';
import { importZerodhaCsv, kiteExpiry, splitCsvLine } from '../../src/symbols/import-zerodha.js';
import { type ImportReport, MAX_REJECTIONS_KEPT, SymbolMaster, type SymbolRecord } from '../../src/symbols/master.js';

const FIXTURES = fileURLToPath(new URL('../fixtures/', import.meta.url));
const KITE_CSV = path.join(FIXTURES, 'kite-instruments.csv');
const ANGEL_JSON = path.join(FIXTURES, 'angel-scrip-master.json');

let dir: string;
let db: Database;

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tickcast-symbols-'));
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
function row(broker: string, exchange: string, symbol: string): SymbolRecord | undefined {
  return new SymbolMaster(db).find(broker as 'zerodha', exchange, symbol);
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

describe('the Kite instruments CSV', () => {
  it('imports equities, indices, futures, options and CDS under OpenAlgo names, rejecting bad rows', async () => {
    const report = await importZerodhaCsv(db, file(KITE_CSV), { source: 'kite.csv' });
    expect(report).toEqual<ImportReport>({
      broker: 'zerodha',
      imported: 13,
      skipped: 2,
      skippedReasons: {
        'exchange NCO has no OpenAlgo exchange': 1,
        'same symbol and exchange as a later row, which replaces it': 1,
      },
      rejected: [
        { line: 17, reason: 'instrument_token "abc" is not a 32-bit unsigned integer' },
        { line: 18, reason: 'expected 12 fields, got 11' },
        { line: 19, reason: 'expiry "2024-02-30" is not a YYYY-MM-DD date' },
        { line: 20, reason: 'unknown exchange "XYZ"' },
      ],
      rejectedCount: 4,
      added: 13,
      updated: 0,
      removed: 0,
    });
    expect(rows('zerodha').map((r) => `${r.exchange}:${r.symbol}`)).toEqual([
      'NSE:RELIANCE',
      'NSE:INFY',
      'BSE:RELIANCE',
      'NSE_INDEX:NIFTY',
      'NSE_INDEX:BANKNIFTY',
      'BSE_INDEX:SENSEX',
      'NFO:NIFTY28MAR24FUT',
      'NFO:NIFTY28MAR2420800CE',
      'NFO:NIFTY28MAR2420800PE',
      'BFO:SENSEX28MAR2475000CE',
      'CDS:USDINR26MAR24FUT',
      'CDS:USDINR26MAR2483CE',
      'MCX:CRUDEOIL19APR24FUT',
    ]);
  });

  it('stores rows as OpenAlgo does (token pair, DD-MON-YY expiry, brsymbol, brexchange)', async () => {
    await importZerodhaCsv(db, file(KITE_CSV));
    expect(row('zerodha', 'NFO', 'NIFTY28MAR2420800CE')).toMatchObject({
      broker: 'zerodha',
      brsymbol: 'NIFTY24MAR20800CE',
      name: 'NIFTY',
      brexchange: 'NFO',
      token: '11229698::::43866',
      expiry: '28-MAR-24',
      strike: 20800,
      lotsize: 50,
      instrumenttype: 'CE',
      tick_size: 0.05,
      contract_value: null,
    });
    expect(row('zerodha', 'NSE', 'RELIANCE')).toMatchObject({ name: 'RELIANCE INDUSTRIES', expiry: '', token: '738561::::2885' });
    // OpenAlgo copies the mapped exchange into brexchange (NSE_INDEX, not Kite's NSE).
    expect(row('zerodha', 'NSE_INDEX', 'NIFTY')).toMatchObject({ brsymbol: 'NIFTY 50', brexchange: 'NSE_INDEX', token: '256265::::1001' });
    // OpenAlgo truncates option strikes to integers: the later 83.5 row wins the shared symbol.
    expect(row('zerodha', 'CDS', 'USDINR26MAR2483CE')).toMatchObject({ brsymbol: 'USDINR24MAR83.5CE', strike: 83.5, tick_size: 0.0025 });
  });

  it('looks up exact, case-sensitive (symbol, exchange) pairs and returns the instrument token', async () => {
    await importZerodhaCsv(db, file(KITE_CSV));
    const master = new SymbolMaster(db);
    expect(master.lookup('zerodha', 'NSE_INDEX', 'NIFTY')).toEqual({ token: '256265', brexchange: 'NSE_INDEX' });
    expect(master.lookup('zerodha', 'BSE_INDEX', 'SENSEX')).toEqual({ token: '265', brexchange: 'BSE_INDEX' });
    expect(master.lookup('zerodha', 'NFO', 'NIFTY28MAR24FUT')).toEqual({ token: '12683010', brexchange: 'NFO' });
    expect(master.lookup('zerodha', 'MCX', 'CRUDEOIL19APR24FUT')).toEqual({ token: '65737991', brexchange: 'MCX' });
    // Kite's segment is the token's low byte: NFO is 2, indices 9.
    expect(Number(master.lookup('zerodha', 'NFO', 'NIFTY28MAR2420800PE')!.token) & 0xff).toBe(2);
    expect(Number(master.lookup('zerodha', 'NSE_INDEX', 'BANKNIFTY')!.token) & 0xff).toBe(9);
    expect(master.lookup('zerodha', 'NSE_INDEX', 'nifty')).toBeUndefined();
    expect(master.lookup('zerodha', 'NSE', 'NIFTY')).toBeUndefined();
    expect(master.lookup('angel', 'NSE_INDEX', 'NIFTY')).toBeUndefined();
    expect(master.lookup('zerodha', 'NSE', 'NIFTY 50')).toBeUndefined();
    expect(master.count('zerodha')).toBe(13);
    expect(master.count()).toBe(13);
  });

  it('is idempotent: the same file again changes nothing, not even row ids', async () => {
    await importZerodhaCsv(db, file(KITE_CSV));
    const master = new SymbolMaster(db);
    master.reload();
    const before = rows('zerodha');
    const again = await importZerodhaCsv(db, file(KITE_CSV));
    expect(again).toMatchObject({ imported: 13, skipped: 2, rejectedCount: 4, added: 0, updated: 0, removed: 0 });
    expect(rows('zerodha')).toEqual(before);
    expect(master.refresh()).toBe(false); // nothing changed: no reload needed
  });

  it('replaces the broker\'s rows with a new file: adds, updates and removes, keeping unchanged ids', async () => {
    await importZerodhaCsv(db, file(KITE_CSV));
    await importAngelJson(db, file(ANGEL_JSON));
    const master = new SymbolMaster(db);
    master.reload();
    const angelBefore = rows('angel');
    const idOf = (symbol: string): number => rows('zerodha').find((r) => r.symbol === symbol)!.id;
    const infyId = idOf('INFY');
    const lines = fs.readFileSync(KITE_CSV, 'utf8').trimEnd().split('\n');
    const next = [
      lines[0],
      ...lines.slice(1).filter((l) => !l.includes('RELIANCE')), // two rows gone
      '408065,1594,INFY,"INFOSYS",0,,0,0.01,1,EQ,NSE,NSE', // tick size changed (a later row wins)
      '779521,3045,SBIN,"STATE BANK OF INDIA",0,,0,0.05,1,EQ,NSE,NSE', // new
    ].join('\n');
    const report = await importZerodhaCsv(db, pieces(next, 4096));
    expect(report).toMatchObject({ imported: 12, added: 1, updated: 1, removed: 2 });
    expect(row('zerodha', 'NSE', 'RELIANCE')).toBeUndefined();
    expect(row('zerodha', 'NSE', 'INFY')).toMatchObject({ tick_size: 0.01, id: infyId });
    expect(master.lookup('zerodha', 'NSE', 'SBIN')).toBeUndefined(); // the index is a snapshot…
    expect(master.refresh()).toBe(true); // …until a refresh sees the import
    expect(master.lookup('zerodha', 'NSE', 'SBIN')).toEqual({ token: '779521', brexchange: 'NSE' });
    expect(master.lookup('zerodha', 'NSE', 'RELIANCE')).toBeUndefined();
    expect(rows('angel')).toEqual(angelBefore); // another broker's master is untouched
  });

  it('reads CRLF line ends, a BOM, blank lines and input split at any byte', async () => {
    const original = fs.readFileSync(KITE_CSV, 'utf8');
    await importZerodhaCsv(db, file(KITE_CSV));
    const expected = rows('zerodha');
    const variant = Buffer.from(`\ufeff${original.replaceAll('\n', '\r\n')}\r\n\r\n`, 'utf8');
    const report = await importZerodhaCsv(db, pieces(variant, 7));
    expect(report).toMatchObject({ imported: 13, added: 0, updated: 0, removed: 0, rejectedCount: 4 });
    expect(rows('zerodha')).toEqual(expected);
  });

  it('refuses what is not a Kite instruments CSV, changing nothing', async () => {
    await importZerodhaCsv(db, file(KITE_CSV));
    const before = rows('zerodha');
    await expectUsage(importZerodhaCsv(db, pieces('symbol,token\nX,1\n', 100)), /header lacks instrument_token, exchange_token, tradingsymbol/);
    await expectUsage(importZerodhaCsv(db, file(ANGEL_JSON), { source: 'a.json' }), /a\.json looks like JSON.*--broker angel/);
    await expectUsage(importZerodhaCsv(db, pieces('', 1)), /is empty/);
    await expectUsage(importZerodhaCsv(db, pieces('x'.repeat(70_000), 1000)), /longer than 65536/);
    const header = fs.readFileSync(KITE_CSV, 'utf8').split('\n')[0]!;
    await expectUsage(importZerodhaCsv(db, pieces(`${header}\n`, 100)), /no valid instruments.*13 stored zerodha symbols are unchanged/);
    await expectUsage(importZerodhaCsv(db, pieces(`${header}\n1,2,3\n`, 100)), /no valid instruments \(1 rejected\)/);
    expect(rows('zerodha')).toEqual(before);
  });

  it('keeps the first 20 rejected rows and counts them all', async () => {
    const header = fs.readFileSync(KITE_CSV, 'utf8').split('\n')[0]!;
    const bad = Array.from({ length: 25 }, (_, i) => `${i},1,X${i},X,0,,zero,0.05,1,EQ,NSE,NSE`);
    const report = await importZerodhaCsv(db, pieces([header, '738561,2885,RELIANCE,R,0,,0,0.05,1,EQ,NSE,NSE', ...bad].join('\n'), 500));
    expect(report.imported).toBe(1);
    expect(report.rejectedCount).toBe(25);
    expect(report.rejected).toHaveLength(MAX_REJECTIONS_KEPT);
    expect(report.rejected[0]).toEqual({ line: 3, reason: 'strike "zero" is not a number' });
  });
});

describe("Angel's OpenAPIScripMaster.json", () => {
  it('imports under OpenAlgo names with strikes and tick sizes unscaled, rejecting bad elements', async () => {
    const report = await importAngelJson(db, file(ANGEL_JSON));
    expect(report).toEqual<ImportReport>({
      broker: 'angel',
      imported: 12,
      skipped: 0,
      skippedReasons: {},
      rejected: [
        { index: 12, reason: 'missing token' },
        { index: 13, reason: expect.stringMatching(/^invalid JSON: /) as unknown as string },
        { index: 14, reason: 'strike "n/a" is not a number' },
        { index: 15, reason: 'unknown exch_seg "XYZ"' },
      ],
      rejectedCount: 4,
      added: 12,
      updated: 0,
      removed: 0,
    });
    expect(rows('angel').map((r) => `${r.exchange}:${r.symbol}:${r.instrumenttype}`)).toEqual([
      'NSE:RELIANCE:',
      'NSE:INFY:',
      'BSE:RELIANCE:',
      'NSE_INDEX:NIFTY:AMXIDX',
      'NSE_INDEX:BANKNIFTY:AMXIDX',
      'BSE_INDEX:SENSEX:AMXIDX',
      'NFO:NIFTY28MAR24FUT:FUT',
      'NFO:NIFTY28MAR2420800CE:CE',
      'BFO:SENSEX28MAR2475000CE:CE',
      'CDS:USDINR26MAR24FUT:FUT',
      'CDS:USDINR26MAR2483.25CE:CE',
      'MCX:CRUDEOIL19APR24FUT:FUT',
    ]);
  });

  it('stores values as OpenAlgo does and looks tokens up with the exch_seg as brexchange', async () => {
    await importAngelJson(db, file(ANGEL_JSON));
    expect(row('angel', 'NSE', 'RELIANCE')).toMatchObject({ brsymbol: 'RELIANCE-EQ', token: '2885', brexchange: 'NSE', strike: -0.01, tick_size: 0.05, lotsize: 1, expiry: '' });
    expect(row('angel', 'NFO', 'NIFTY28MAR2420800CE')).toMatchObject({ strike: 20800, expiry: '28-MAR-24', lotsize: 50, tick_size: 0.05 });
    expect(row('angel', 'CDS', 'USDINR26MAR2483.25CE')).toMatchObject({ strike: 83.25, brsymbol: 'USDINR24MAR83.25CE' });
    expect(row('angel', 'BFO', 'SENSEX28MAR2475000CE')).toMatchObject({ brsymbol: 'SENSEX24MAR75000CE', strike: 75000 });
    // Escapes, commas and brackets inside strings survive the streaming split.
    expect(row('angel', 'NSE', 'INFY')!.name).toBe('INFOSYS "LTD", [A] {B} \\ é');
    const master = new SymbolMaster(db);
    expect(master.lookup('angel', 'NSE_INDEX', 'NIFTY')).toEqual({ token: '99926000', brexchange: 'NSE' });
    expect(master.lookup('angel', 'BSE_INDEX', 'SENSEX')).toEqual({ token: '99919000', brexchange: 'BSE' });
    expect(master.lookup('angel', 'MCX', 'CRUDEOIL19APR24FUT')).toEqual({ token: '234230', brexchange: 'MCX' });
    expect(master.lookup('angel', 'NSE', 'RELIANCE-EQ')).toBeUndefined();
  });

  it('is idempotent and reads the array split at every byte, pretty-printed or not', async () => {
    const text = fs.readFileSync(ANGEL_JSON);
    await importAngelJson(db, pieces(text, 1));
    const expected = rows('angel');
    const pretty = `\n  ${text.toString('utf8').replaceAll('},{', '},\n  {').replace('[', '[\n  ').replace(/]$/, '\n]\n')}`;
    const again = await importAngelJson(db, pieces(Buffer.from(pretty), 3));
    expect(again).toMatchObject({ imported: 12, added: 0, updated: 0, removed: 0, rejectedCount: 4 });
    expect(rows('angel')).toEqual(expected);
  });

  it('refuses what is not a JSON array of scrip objects, changing nothing', async () => {
    await importAngelJson(db, file(ANGEL_JSON));
    const before = rows('angel');
    await expectUsage(importAngelJson(db, file(KITE_CSV), { source: 'k.csv' }), /k\.csv is not Angel's OpenAPIScripMaster\.json: it does not start with a JSON array/);
    await expectUsage(importAngelJson(db, pieces('{"token":"1"}', 5)), /does not start with a JSON array/);
    await expectUsage(importAngelJson(db, pieces('[{"a":1,"b":2}]', 5)), /first element has no token, symbol and exch_seg \(keys: a, b\)/);
    await expectUsage(importAngelJson(db, pieces('[1,2]', 5)), /first element is not an object/);
    await expectUsage(importAngelJson(db, pieces('', 5)), /is empty/);
    await expectUsage(importAngelJson(db, pieces('[]', 5)), /no valid instruments/);
    const text = fs.readFileSync(ANGEL_JSON, 'utf8');
    await expectUsage(importAngelJson(db, pieces(text.slice(0, 2000), 100)), /ends inside the JSON array \(truncated download\?\)/);
    await expectUsage(importAngelJson(db, pieces(`${text} x`, 100)), /data after the end of the array at character/);
    await expectUsage(importAngelJson(db, pieces(text.replace('},{', '},,{'), 100)), /missing between commas/);
    await expectUsage(importAngelJson(db, pieces(text.replace(/]$/, ',]'), 100)), /comma is followed by "]"/);
    await expectUsage(importAngelJson(db, pieces(`[${JSON.stringify({ token: '1', symbol: 'x'.repeat(70_000), exch_seg: 'NSE' })}]`, 4096)), /larger than 65536/);
    expect(rows('angel')).toEqual(before);
  });
});

describe('one database, several brokers', () => {
  it('keeps each broker\'s master apart and counts them', async () => {
    await importZerodhaCsv(db, file(KITE_CSV));
    await importAngelJson(db, file(ANGEL_JSON));
    const master = new SymbolMaster(db);
    expect(master.count('zerodha')).toBe(13);
    expect(master.count('angel')).toBe(12);
    expect(master.count()).toBe(25);
    expect(master.lookup('zerodha', 'NSE', 'RELIANCE')!.token).toBe('738561');
    expect(master.lookup('angel', 'NSE', 'RELIANCE')!.token).toBe('2885');
  });

  it('sees an import made through another connection after refresh()', async () => {
    const master = new SymbolMaster(db);
    expect(master.lookup('zerodha', 'NSE', 'RELIANCE')).toBeUndefined();
    expect(master.refresh()).toBe(false);
    const other = openDatabase(db.name);
    try {
      await importZerodhaCsv(other, file(KITE_CSV));
    } finally {
      other.close();
    }
    expect(master.refresh()).toBe(true);
    expect(master.lookup('zerodha', 'NSE', 'RELIANCE')!.token).toBe('738561');
  });

  it("adopts a symtoken table OpenAlgo created, ignoring OpenAlgo's broker-less rows", async () => {
    const file2 = path.join(dir, 'openalgo.db');
    const raw = new BetterSqlite3(file2);
    raw.exec(`CREATE TABLE symtoken (id INTEGER NOT NULL PRIMARY KEY, symbol VARCHAR NOT NULL, brsymbol VARCHAR NOT NULL, name VARCHAR,
      exchange VARCHAR, brexchange VARCHAR, token VARCHAR, expiry VARCHAR, strike FLOAT, lotsize INTEGER, instrumenttype VARCHAR, tick_size FLOAT)`);
    raw.exec("INSERT INTO symtoken (symbol, brsymbol, exchange, brexchange, token) VALUES ('RELIANCE', 'RELIANCE', 'NSE', 'NSE', '738561::::2885'), ('RELIANCE', 'RELIANCE', 'NSE', 'NSE', 'dup')");
    raw.close();
    const oa = openDatabase(file2);
    try {
      const master = new SymbolMaster(oa);
      const columns = (oa.prepare('PRAGMA table_info(symtoken)').all() as { name: string }[]).map((c) => c.name);
      expect(columns).toEqual(expect.arrayContaining(['broker', 'contract_value']));
      expect(master.lookup('zerodha', 'NSE', 'RELIANCE')).toBeUndefined();
      await importZerodhaCsv(oa, file(KITE_CSV));
      master.reload();
      expect(master.lookup('zerodha', 'NSE', 'RELIANCE')!.token).toBe('738561');
      expect(master.count('zerodha')).toBe(13);
      expect((oa.prepare('SELECT COUNT(*) AS n FROM symtoken WHERE broker IS NULL').get() as { n: number }).n).toBe(2);
    } finally {
      oa.close();
    }
  });
});

describe('large masters stream', () => {
  // gc() makes the heap baseline meaningful; the flag can be set at run time.
  v8.setFlagsFromString('--expose-gc');
  const gc = vm.runInNewContext('gc') as () => void;
  const ROWS = 200_000;
  /** Generous: young-generation garbage alone can reach ~20 MB between scavenges. */
  const MAX_GROWTH_MB = 48;
  /** Makes each row long enough that the file outweighs the bound. */
  const PADDING = 'LIMITED (A LONG NAME THAT MAKES THE FILE LARGER THAN THE HEAP BOUND)'.repeat(2);

  /** Runs `work`, sampling the heap; returns the peak growth over the starting heap, in MB. */
  async function peakHeapGrowth(work: () => Promise<unknown>): Promise<number> {
    gc();
    const base = process.memoryUsage().heapUsed;
    let peak = base;
    const sample = (): void => {
      peak = Math.max(peak, process.memoryUsage().heapUsed);
    };
    const timer = setInterval(sample, 2);
    try {
      await work();
    } finally {
      clearInterval(timer);
      sample();
    }
    return (peak - base) / 2 ** 20;
  }

  function writeInParts(target: string, head: string, count: number, line: (i: number) => string, sep: string, tail: string): number {
    fs.writeFileSync(target, head);
    for (let start = 0; start < count; start += 10_000) {
      const part: string[] = [];
      for (let i = start; i < Math.min(count, start + 10_000); i++) part.push(line(i));
      fs.appendFileSync(target, (start === 0 ? '' : sep) + part.join(sep));
    }
    fs.appendFileSync(target, tail);
    return fs.statSync(target).size;
  }

  it(`imports a ${ROWS}-row Kite CSV with a bounded heap`, async () => {
    const target = path.join(dir, 'big.csv');
    const header = fs.readFileSync(KITE_CSV, 'utf8').split('\n')[0]!;
    const size = writeInParts(
      target,
      `${header}\n`,
      ROWS,
      (i) =>
        i % 10 === 0
          ? `${(100_000 + i) * 256 + 2},${100_000 + i},UL${i}24MAR${20_000 + i}CE,UL${i},0,2024-03-28,${20_000 + i},0.05,50,CE,NFO-OPT,NFO`
          : `${(100_000 + i) * 256 + 1},${100_000 + i},SYM${i},"COMPANY NUMBER ${i} ${PADDING} ${PADDING}",0,,0,0.05,1,EQ,NSE,NSE`,
      '\n',
      '\n',
    );
    expect(size / 2 ** 20).toBeGreaterThan(MAX_GROWTH_MB); // reading it whole would break the bound
    let report: ImportReport | undefined;
    const started = Date.now();
    const growth = await peakHeapGrowth(async () => {
      report = await importZerodhaCsv(db, fs.createReadStream(target));
    });
    const seconds = (Date.now() - started) / 1000;
    expect(report).toMatchObject({ imported: ROWS, skipped: 0, rejectedCount: 0, added: ROWS });
    expect(growth, `heap grew ${growth.toFixed(1)} MB for a ${(size / 2 ** 20).toFixed(1)} MB file`).toBeLessThan(MAX_GROWTH_MB);
    expect(seconds).toBeLessThan(20);
    const master = new SymbolMaster(db);
    expect(master.lookup('zerodha', 'NFO', 'UL19999028MAR24219990CE')).toEqual({ token: String((100_000 + 199_990) * 256 + 2), brexchange: 'NFO' });
  });

  it(`imports a ${ROWS}-element Angel scrip master with a bounded heap`, async () => {
    const target = path.join(dir, 'big.json');
    const size = writeInParts(
      target,
      '[',
      ROWS,
      (i) =>
        JSON.stringify({
          token: String(100_000 + i),
          symbol: `STOCK${i}-EQ`,
          name: `STOCK${i} ${PADDING}`,
          expiry: '',
          strike: '-1.000000',
          lotsize: '1',
          instrumenttype: '',
          exch_seg: i % 2 ? 'NSE' : 'BSE',
          tick_size: '5.000000',
        }),
      ',',
      ']',
    );
    expect(size / 2 ** 20).toBeGreaterThan(MAX_GROWTH_MB);
    let report: ImportReport | undefined;
    const growth = await peakHeapGrowth(async () => {
      report = await importAngelJson(db, fs.createReadStream(target));
    });
    expect(report).toMatchObject({ imported: ROWS, rejectedCount: 0, added: ROWS });
    expect(growth, `heap grew ${growth.toFixed(1)} MB for a ${(size / 2 ** 20).toFixed(1)} MB file`).toBeLessThan(MAX_GROWTH_MB);
    const master = new SymbolMaster(db);
    expect(master.lookup('angel', 'NSE', 'STOCK199999')).toEqual({ token: '299999', brexchange: 'NSE' });
  });
});

describe('format helpers', () => {
  it('splits CSV lines with quotes, doubled quotes and commas inside quotes', () => {
    expect(splitCsvLine('a,b,,d')).toEqual(['a', 'b', '', 'd']);
    expect(splitCsvLine('1,"INFOSYS, LTD","say ""hi""",')).toEqual(['1', 'INFOSYS, LTD', 'say "hi"', '']);
    expect(splitCsvLine('"open')).toBeNull();
  });

  it("formats expiries as OpenAlgo's DD-MON-YY", () => {
    expect(kiteExpiry('2024-03-28')).toBe('28-MAR-24');
    expect(kiteExpiry('2030-12-05')).toBe('05-DEC-30');
    expect(kiteExpiry('')).toBe('');
    expect(kiteExpiry('2024-13-01')).toBeNull();
    expect(kiteExpiry('28-03-2024')).toBeNull();
    expect(angelExpiry('28MAR2024')).toBe('28-MAR-24');
    expect(angelExpiry('5Dec2030')).toBe('05-DEC-30');
    expect(angelExpiry('')).toBe('');
    expect(angelExpiry('31FEB2024')).toBe('31FEB2024');
    expect(angelExpiry('soon')).toBe('SOON');
  });

  it("writes strikes as Python's str(float)", () => {
    expect(pythonFloatText(20800)).toBe('20800.0');
    expect(pythonFloatText(83.25)).toBe('83.25');
    expect(pythonFloatText(-0.01)).toBe('-0.01');
    expect(pythonFloatText(83.05).replaceAll('.0', '')).toBe('835'); // OpenAlgo's unanchored "\.0" removal
  });

  it('splits a JSON array into element texts across chunk boundaries', () => {
    const reader = new JsonArrayReader('t');
    const got = [...reader.push(' [ {"a":"x,]\\"}"} , [1,[2]], 3'), ...reader.push(' ,"s\\\\" ]  ')];
    reader.end();
    expect(got).toEqual(['{"a":"x,]\\"}"}', '[1,[2]]', '3', '"s\\\\"']);
    expect(() => new JsonArrayReader('t').push('[{}}')).toThrow(/unbalanced/);
  });
});
