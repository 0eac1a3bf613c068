/**
 * Symbol search for the dashboard (`/api/symbols?q=REL`): what a user can subscribe to. Two
 * sources: the simulator's instrument list (for users the simulator serves) and the symbol
 * master's rows of the user's broker (for users with a broker feed). The ranking is pure; the
 * symbol master is read with one indexed prefix query per broker, so a search costs the same
 * whether the master holds a hundred rows or a hundred thousand.
 */
import type { Instrument } from '../adapters/simulator/instruments.js';
import { ensureSymbolSchema } from '../symbols/master.js';
import type { Database } from '../store/database.js';
import type { OpenAlgoDb } from '../store/openalgo-db.js';

export interface SymbolHit {
  exchange: string;
  symbol: string;
  /** The instrument's kind or type (`equity`, `index`, `future`; the master's `instrumenttype`). */
  kind: string;
  name?: string;
}

export interface SymbolQuery {
  /** Upper-cased text to match; '' lists from the start. */
  text: string;
  /** Only this exchange, when the query was `EXCHANGE:TEXT`. */
  exchange?: string;
  limit: number;
}

export interface SymbolSearch {
  /** Hits for a user whose instruments come from `brokers` (their feed's broker and their own). */
  search(query: SymbolQuery, brokers: readonly string[]): SymbolHit[] | Promise<SymbolHit[]>;
}

export const MAX_QUERY_LENGTH = 64;
export const MAX_LIMIT = 50;

/**
 * Parses the `q` and `limit` parameters: `REL`, `nse:rel` (an exchange filter), '' (everything).
 * Returns an error message for input that can never match.
 */
export function parseSymbolQuery(q: string | null, limit: string | null): SymbolQuery | string {
  const raw = (q ?? '').trim().toUpperCase();
  if (raw.length > MAX_QUERY_LENGTH) return `q is limited to ${MAX_QUERY_LENGTH} characters`;
  if (/[^A-Z0-9&:._ -]/.test(raw)) return 'q may hold letters, digits and & : . _ - only';
  let count = 20;
  if (limit !== null) {
    if (!/^\d{1,3}$/.test(limit) || Number(limit) < 1 || Number(limit) > MAX_LIMIT) return `limit must be a whole number from 1 to ${MAX_LIMIT}`;
    count = Number(limit);
  }
  const colon = raw.indexOf(':');
  if (colon < 0) return { text: raw, limit: count };
  const exchange = raw.slice(0, colon).trim();
  const text = raw.slice(colon + 1).trim();
  return exchange === '' ? { text, limit: count } : { text, exchange, limit: count };
}

/** How well a symbol matches: 0 exact, 1 prefix, 2 substring, 3 name only; undefined no match. */
function rank(hit: SymbolHit, text: string): number | undefined {
  if (text === '') return 1;
  if (hit.symbol === text) return 0;
  if (hit.symbol.startsWith(text)) return 1;
  if (hit.symbol.includes(text)) return 2;
  if (hit.name?.toUpperCase().includes(text)) return 3;
  return undefined;
}

/** Where the same symbol trades on several exchanges, the primary market comes first. */
const EXCHANGE_ORDER = ['NSE', 'NSE_INDEX', 'NFO', 'BSE', 'BSE_INDEX', 'BFO', 'MCX', 'CDS', 'BCD'];

function exchangeOrder(exchange: string): number {
  const index = EXCHANGE_ORDER.indexOf(exchange);
  return index < 0 ? EXCHANGE_ORDER.length : index;
}

/** The best `limit` hits of `candidates`: by rank, then shorter symbols, alphabetically, primary exchange first. */
export function rankHits(candidates: Iterable<SymbolHit>, query: SymbolQuery): SymbolHit[] {
  const ranked: Array<{ hit: SymbolHit; rank: number }> = [];
  for (const hit of candidates) {
    if (query.exchange !== undefined && hit.exchange !== query.exchange) continue;
    const r = rank(hit, query.text);
    if (r !== undefined) ranked.push({ hit, rank: r });
  }
  ranked.sort(
    (a, b) =>
      a.rank - b.rank ||
      a.hit.symbol.length - b.hit.symbol.length ||
      (a.hit.symbol < b.hit.symbol ? -1 : a.hit.symbol > b.hit.symbol ? 1 : 0) ||
      exchangeOrder(a.hit.exchange) - exchangeOrder(b.hit.exchange) ||
      (a.hit.exchange < b.hit.exchange ? -1 : a.hit.exchange > b.hit.exchange ? 1 : 0),
  );
  const seen = new Set<string>();
  const result: SymbolHit[] = [];
  for (const { hit } of ranked) {
    const key = `${hit.exchange}:${hit.symbol}`;
    if (seen.has(key)) continue;
    seen.add(key);
    result.push(hit);
    if (result.length >= query.limit) break;
  }
  return result;
}

export interface SymbolCatalogOptions {
  /** The simulator's instruments and the broker name its feed carries. */
  simulator?: { broker: string; instruments: readonly Instrument[] };
  /** The database holding the symbol master (`symtoken`). */
  db?: Database;
}

interface MasterRow {
  symbol: string;
  exchange: string;
  name: string | null;
  instrumenttype: string | null;
}

export class SymbolCatalog implements SymbolSearch {
  private readonly simulated: readonly SymbolHit[];
  private readonly simulatorBroker: string | undefined;
  private readonly prefix: ((broker: string, from: string, to: string, limit: number) => MasterRow[]) | undefined;
  private readonly prefixOn: ((broker: string, exchange: string, from: string, to: string, limit: number) => MasterRow[]) | undefined;

  constructor(options: SymbolCatalogOptions) {
    this.simulatorBroker = options.simulator?.broker;
    this.simulated = (options.simulator?.instruments ?? []).map((i) => ({ exchange: i.exchange, symbol: i.symbol, kind: i.kind }));
    if (options.db) {
      ensureSymbolSchema(options.db);
      // A range on (broker, symbol) uses the table's unique index; LIKE would scan every row.
      const all = options.db.prepare(
        'SELECT symbol, exchange, name, instrumenttype FROM symtoken WHERE broker = ? AND symbol >= ? AND symbol < ? ORDER BY length(symbol), symbol, exchange LIMIT ?',
      );
      const one = options.db.prepare(
        'SELECT symbol, exchange, name, instrumenttype FROM symtoken WHERE broker = ? AND exchange = ? AND symbol >= ? AND symbol < ? ORDER BY length(symbol), symbol LIMIT ?',
      );
      this.prefix = (broker, from, to, limit) => all.all(broker, from, to, limit) as MasterRow[];
      this.prefixOn = (broker, exchange, from, to, limit) => one.all(broker, exchange, from, to, limit) as MasterRow[];
    }
  }

  search(query: SymbolQuery, brokers: readonly string[]): SymbolHit[] {
    const candidates: SymbolHit[] = [];
    const wanted = new Set(brokers.map((b) => b.toLowerCase()));
    if (this.simulatorBroker !== undefined && wanted.has(this.simulatorBroker.toLowerCase())) candidates.push(...this.simulated);
    if (this.prefix && this.prefixOn) {
      // Symbols in the master are upper case; every string starting with `text` sorts below text + U+FFFF.
      const to = `${query.text}\uffff`;
      for (const broker of wanted) {
        if (broker === this.simulatorBroker?.toLowerCase()) continue;
        const rows =
          query.exchange === undefined
            ? this.prefix(broker, query.text, to, query.limit)
            : this.prefixOn(broker, query.exchange, query.text, to, query.limit);
        for (const row of rows) {
          const hit: SymbolHit = { exchange: row.exchange, symbol: row.symbol, kind: (row.instrumenttype ?? '').toLowerCase() };
          if (row.name) hit.name = row.name;
          candidates.push(hit);
        }
      }
    }
    return rankHits(candidates, query);
  }
}

/**
 * The search over OpenAlgo's own `symtoken` (DATABASE_URL), beside the simulator's list. That
 * master is the one broker's OpenAlgo is logged in with, so it serves every user with a broker
 * other than the simulator's; it is read at each search, so OpenAlgo's daily refresh shows at once.
 */
export class OpenAlgoSymbolCatalog implements SymbolSearch {
  private readonly simulator: SymbolCatalog;
  private readonly simulatorBroker: string | undefined;
  private readonly sql: { all: string; one: string };

  constructor(
    private readonly db: OpenAlgoDb,
    simulator?: SymbolCatalogOptions['simulator'],
  ) {
    this.simulator = new SymbolCatalog(simulator ? { simulator } : {});
    this.simulatorBroker = simulator?.broker.toLowerCase();
    // Byte order, as the own master's range: SQLite's BINARY uses OpenAlgo's symbol index, and
    // PostgreSQL's "C" keeps a locale's collation from reordering the range's upper bound.
    const symbol = db.url.kind === 'postgresql' ? 'symbol COLLATE "C"' : 'symbol';
    const select = `SELECT symbol, exchange, name, instrumenttype FROM symtoken WHERE ${symbol} >= ? AND ${symbol} < ?`;
    this.sql = {
      all: `${select} ORDER BY length(symbol), symbol, exchange LIMIT ?`,
      one: `${select} AND exchange = ? ORDER BY length(symbol), symbol LIMIT ?`,
    };
  }

  async search(query: SymbolQuery, brokers: readonly string[]): Promise<SymbolHit[]> {
    const simulated = this.simulator.search(query, brokers);
    if (!brokers.some((b) => b.toLowerCase() !== this.simulatorBroker)) return simulated;
    const to = `${query.text}\uffff`;
    const rows =
      query.exchange === undefined
        ? await this.db.all<MasterRow>(this.sql.all, [query.text, to, query.limit])
        : await this.db.all<MasterRow>(this.sql.one, [query.text, to, query.exchange, query.limit]);
    const hits = rows.map((row) => {
      const hit: SymbolHit = { exchange: row.exchange, symbol: row.symbol, kind: (row.instrumenttype ?? '').toLowerCase() };
      if (row.name) hit.name = row.name;
      return hit;
    });
    return rankHits([...simulated, ...hits], query);
  }
}
