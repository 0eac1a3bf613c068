/**
 * The symbol master as OpenAlgo keeps it: its own `symtoken` table (DATABASE_URL), read at each
 * subscribe, so OpenAlgo's daily master-contract download (which empties or drops the table and
 * fills it again) is followed with no import by hand and no reload to schedule. A lookup is one
 * indexed query (OpenAlgo indexes (symbol, exchange)); subscribes are rare next to ticks.
 *
 * OpenAlgo keeps one broker's master at a time, the broker it is logged in with, so the broker a
 * lookup names does not select rows: every user of an OpenAlgo installation has that broker.
 */
import type { BrokerInstrument, BrokerName } from './instrument.js';
import type { OpenAlgoDb } from '../store/openalgo-db.js';
import { type SymbolRecord, feedToken } from './master.js';

/** What `tickcast symbols import` is told with DATABASE_URL (exit 2). */
export const MASTER_MANAGED_BY_OPENALGO =
  "the symbol master is OpenAlgo's symtoken table while DATABASE_URL points at its database: OpenAlgo's master contract download fills it at each broker login, and tickcast reads it from there (never writes it)";

/** A symbol master read asynchronously (the broker feeds fetch before they subscribe). */
export interface AsyncSymbolLookup {
  lookupAsync(broker: BrokerName, exchange: string, symbol: string): Promise<BrokerInstrument | undefined>;
}

export class OpenAlgoSymbols implements AsyncSymbolLookup {
  constructor(private readonly db: OpenAlgoDb) {}

  /** Exact and case-sensitive, as OpenAlgo's token cache; of duplicate rows the last one counts, as
   * in OpenAlgo's cache, which keeps the last row it loads. */
  async lookupAsync(_broker: BrokerName, exchange: string, symbol: string): Promise<BrokerInstrument | undefined> {
    const [row] = await this.db.all<{ token: string | number | null; brexchange: string | null }>(
      'SELECT token, brexchange FROM symtoken WHERE symbol = ? AND exchange = ? ORDER BY id DESC LIMIT 1',
      [symbol, exchange],
    );
    if (!row || row.token === null || row.token === '') return undefined;
    return { token: feedToken(String(row.token)), brexchange: row.brexchange ?? '' };
  }

  /** The whole row, for `tickcast symbols lookup`; the broker is the one OpenAlgo's master is for. */
  async find(broker: BrokerName, exchange: string, symbol: string): Promise<SymbolRecord | undefined> {
    const [row] = await this.db.all<Omit<SymbolRecord, 'broker'>>(
      'SELECT * FROM symtoken WHERE symbol = ? AND exchange = ? ORDER BY id DESC LIMIT 1',
      [symbol, exchange],
    );
    return row && { ...row, broker, token: String(row.token ?? ''), id: Number(row.id) };
  }
}
