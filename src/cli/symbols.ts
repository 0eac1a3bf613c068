/** `tickcast symbols import|lookup`: load a broker's instrument master, look a symbol up. */
import fs from 'node:fs';
import { basename } from 'node:path';
import { Option, type Command } from 'commander';
import type { BrokerName } from '../adapters/broker.js';
import type { Config } from '../config/options.js';
import { ErrorCode, TickcastError } from '../errors.js';
import { databaseFile, instanceDir } from '../wiring.js';
import { type Database, openDatabase } from '../store/database.js';
import { importAngelJson } from '../symbols/import-angel.js';
import { importZerodhaCsv } from '../symbols/import-zerodha.js';
import { importDhanCsv } from '../symbols/import-dhan.js';
import { importNorenFiles, norenFileKind } from '../symbols/import-noren.js';
import { importUpstoxJson } from '../symbols/import-upstox.js';
import { feedToken, type ImportReport, type Rejection, type SymbolRecord, SymbolMaster } from '../symbols/master.js';
import { MASTER_MANAGED_BY_OPENALGO, OpenAlgoSymbols } from '../symbols/openalgo-master.js';
import { openOpenAlgoDb } from '../store/openalgo-db.js';
import { addConfigFlags, configFrom, EXIT_FAILURE, EXIT_OK, type Io, writing } from './common.js';
import { ensureDataDir } from '../store/data-dir.js';

const STORE_FLAGS = ['envFile', 'instance', 'dataDir'];
const BROKERS: readonly BrokerName[] = ['zerodha', 'angel', 'dhan', 'upstox', 'shoonya', 'flattrade'];

export function registerSymbolCommands(program: Command, io: Io, setExit: (code: number) => void, env: NodeJS.ProcessEnv = process.env): void {
  const symbols = program.command('symbols').description("Import brokers' instrument masters and look symbols up");

  addConfigFlags(
    symbols
      .command('import')
      .description(
        "Replace a broker's symbols with its instrument master: Kite's instruments CSV, Angel's OpenAPIScripMaster.json, Dhan's api-scrip-master.csv, Upstox's complete.json(.gz), or Shoonya's / Flattrade's symbol files (all of them at once, extracted: NSE_symbols.txt, NFO_symbols.txt, …) ('-' reads stdin, for a single file)",
      )
      .addOption(new Option('--broker <broker>', 'whose master the file is').choices(BROKERS).makeOptionMandatory())
      .option('--json', 'print the report as JSON')
      .argument('<files...>', 'the instrument master file (Noren brokers: each of its exchange files)')
      .action(async (files: string[], flags: Record<string, unknown>) => {
        const broker = flags.broker as BrokerName;
        if (configFrom(flags, env).database) throw new TickcastError(ErrorCode.MANAGED_BY_OPENALGO, MASTER_MANAGED_BY_OPENALGO);
        const noren = broker === 'shoonya' || broker === 'flattrade';
        if (!noren && files.length !== 1) throw new TickcastError(ErrorCode.USAGE, `the ${broker} master is one file; got ${files.length}`);
        const kinds = noren ? files.map((file) => ({ file, kind: norenFileKind(basename(file)) })) : [];
        const unknown = kinds.find(({ kind }) => kind === undefined);
        if (unknown) throw new TickcastError(ErrorCode.USAGE, `${unknown.file} is not one of ${broker}'s symbol files (NSE, BSE, NFO, CDS, MCX or BFO, by its name)`);
        const inputs = await Promise.all(files.map((file) => openInput(file)));
        try {
          const db = openStore(flags, env);
          try {
            const source = files.map((file) => (file === '-' ? 'stdin' : file)).join(', ');
            const options = { source };
            const input = inputs[0]!.input;
            const report = await writing(db.name, () => {
              switch (broker) {
                case 'zerodha':
                  return importZerodhaCsv(db, input, options);
                case 'angel':
                  return importAngelJson(db, input, options);
                case 'dhan':
                  return importDhanCsv(db, input, options);
                case 'upstox':
                  return importUpstoxJson(db, input, options);
                case 'shoonya':
                case 'flattrade':
                  return importNorenFiles(db, broker, kinds.map(({ file, kind }, i) => ({ kind: kind!, input: inputs[i]!.input, source: file })));
              }
            });
            io.out(flags.json ? `${JSON.stringify(report)}\n` : describeReport(report, source));
            setExit(EXIT_OK);
          } finally {
            db.close();
          }
        } finally {
          for (const { close } of inputs) close();
        }
      }),
    STORE_FLAGS,
  );

  addConfigFlags(
    symbols
      .command('lookup')
      .description("Show the broker's token for an OpenAlgo symbol (exact and case-sensitive, as OpenAlgo)")
      .addOption(new Option('--broker <broker>', "whose master to look in").choices(BROKERS).makeOptionMandatory())
      .requiredOption('--exchange <exchange>', 'OpenAlgo exchange (NSE, NFO, NSE_INDEX…)')
      .option('--json', 'print the row as JSON')
      .argument('<symbol>', 'OpenAlgo symbol (RELIANCE, NIFTY, NIFTY28MAR24FUT…)')
      .action(async (symbol: string, flags: Record<string, unknown>) => {
        const broker = flags.broker as BrokerName;
        const exchange = String(flags.exchange);
        const { row, close } = await findSymbol(configFrom(flags, env), broker, exchange, symbol);
        try {
          if (!row) {
            io.err(`tickcast: ${exchange}:${symbol} not found in the ${broker} symbols\n`);
            setExit(EXIT_FAILURE);
            return;
          }
          const token = feedToken(row.token);
          if (flags.json) {
            io.out(`${JSON.stringify({ ...row, feed_token: token })}\n`);
          } else {
            const lines: [string, string][] = [
              ['token', token],
              ...(token !== row.token ? ([['stored token', row.token]] as [string, string][]) : []),
              ['brexchange', row.brexchange],
              ['brsymbol', row.brsymbol],
              ['name', row.name ?? ''],
              ['instrument type', row.instrumenttype ?? ''],
              ['expiry', row.expiry || '-'],
              ['strike', String(row.strike)],
              ['lot size', String(row.lotsize)],
              ['tick size', String(row.tick_size)],
            ];
            io.out(lines.map(([k, v]) => `${k.padEnd(16)}${v}`).join('\n') + '\n');
          }
          setExit(EXIT_OK);
        } finally {
          await close();
        }
      }),
    STORE_FLAGS,
  );
}

/** The instance database; symbols need no pepper, so this skips openKeys' key derivation. */
function openStore(flags: Record<string, unknown>, env: NodeJS.ProcessEnv): Database {
  return openOwnStore(configFrom(flags, env));
}

function openOwnStore(config: Config): Database {
  // As openKeys: a private directory, and one clear error when it cannot be made.
  ensureDataDir(instanceDir(config));
  return openDatabase(databaseFile(config));
}

/** A row of the instance's master, or of OpenAlgo's symtoken with DATABASE_URL (read-only). */
async function findSymbol(config: Config, broker: BrokerName, exchange: string, symbol: string): Promise<{ row: SymbolRecord | undefined; close: () => Promise<void> }> {
  if (config.database) {
    const db = await openOpenAlgoDb(config.database);
    try {
      return { row: await new OpenAlgoSymbols(db).find(broker, exchange, symbol), close: () => db.close() };
    } catch (error) {
      await db.close();
      throw error;
    }
  }
  const db = openOwnStore(config);
  try {
    return { row: new SymbolMaster(db).find(broker, exchange, symbol), close: async () => void db.close() };
  } catch (error) {
    db.close();
    throw error;
  }
}

/** A readable for the file, or a usage error naming what is wrong with the path. */
async function openInput(file: string): Promise<{ input: AsyncIterable<Buffer | string>; close: () => void }> {
  if (file === '-') return { input: process.stdin, close: () => {} };
  let handle: fs.promises.FileHandle;
  try {
    handle = await fs.promises.open(file, 'r');
    const stat = await handle.stat();
    if (stat.isDirectory()) {
      await handle.close();
      throw new TickcastError(ErrorCode.USAGE, `${file} is a directory, not an instrument master file`);
    }
  } catch (err) {
    if (err instanceof TickcastError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : (err as Error).message;
    throw new TickcastError(ErrorCode.USAGE, `cannot read ${file}: ${why}`);
  }
  const stream = handle.createReadStream({ highWaterMark: 256 * 1024 });
  return { input: stream, close: () => stream.destroy() };
}

function describeReport(report: ImportReport, source: string): string {
  const out = [
    `imported ${report.imported} ${report.broker} symbols from ${source} (${report.added} added, ${report.updated} updated, ${report.removed} removed)`,
  ];
  if (report.skipped > 0) {
    out.push(`skipped ${report.skipped} rows:`);
    for (const [reason, count] of Object.entries(report.skippedReasons)) out.push(`  ${count}  ${reason}`);
  }
  if (report.rejectedCount > 0) {
    const shown = report.rejected.length < report.rejectedCount ? ` (the first ${report.rejected.length} shown)` : '';
    out.push(`rejected ${report.rejectedCount} rows${shown}:`);
    for (const r of report.rejected) out.push(`  ${where(r)}: ${r.reason}`);
  }
  return out.join('\n') + '\n';
}

function where(r: Rejection): string {
  return 'line' in r ? `line ${r.line}` : `element ${r.index}`;
}
