/**
 * What the symbol master holds and answers, in its own module so the master depends on no
 * adapter: the broker adapters read symbols through these types, never the other way round.
 */

/** Brokers with a native tickcast decoder (the adapters and master importers of some are still to come). */
export type BrokerName = 'zerodha' | 'angel' | 'dhan' | 'upstox' | 'shoonya' | 'flattrade';

/** An instrument in the symbol master, as the broker names it. */
export interface BrokerInstrument {
  token: string;
  /** The broker's exchange for it (OpenAlgo's `brexchange`: `NSE`, `NFO`, `nse_cm`…). */
  brexchange: string;
}

/** OpenAlgo (symbol, exchange) → the broker's instrument; exact and case-sensitive, as OpenAlgo. */
export interface SymbolLookup {
  lookup(broker: BrokerName, exchange: string, symbol: string): BrokerInstrument | undefined;
}
