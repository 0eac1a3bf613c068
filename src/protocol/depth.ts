/**
 * The depth of book a subscription asks for. Pure.
 *
 * OpenAlgo's clients ask for a deeper book in two ways. The request's `depth` (default 5; its
 * docs call it `depth_level`, which OpenAlgo's server does not read) is passed to the adapter.
 * And a suffix on the symbol, `RELIANCE:20`, `:30` or `:50`, which OpenAlgo's proxy leaves alone
 * (it stays in the topic, `NSE_RELIANCE:20_DEPTH`, and in `market_data.symbol`) and its adapters
 * read: Dhan's (broker/dhan/streaming/dhan_adapter.py, `subscribe`) strips `:20` to look the
 * symbol up and serves 20 levels in Depth mode; Fyers' (fyers_websocket_adapter.py) strips `:50`
 * for its 50-level feed; the UI's playground sends `TCS:50` with `depth: 50`. No adapter of
 * OpenAlgo's reads `:30` (its playground asks for 30 levels with `depth: 30`); it is taken as a
 * suffix too, for the brokers that have 30 levels. The suffixed symbol is a stream of its own,
 * apart from the plain one, as it is in OpenAlgo.
 */

/** The deep-book levels a symbol suffix can ask for. */
export const DEEP_DEPTH_LEVELS: readonly number[] = [20, 30, 50];

const DEFAULT_DEPTH = 5;

/** `RELIANCE:20` → `{ base: 'RELIANCE', levels: 20 }`; a symbol without such a suffix → undefined. */
export function depthSuffix(symbol: string): { base: string; levels: number } | undefined {
  const colon = symbol.lastIndexOf(':');
  if (colon <= 0) return undefined;
  const levels = Number(symbol.slice(colon + 1));
  if (!DEEP_DEPTH_LEVELS.includes(levels) || symbol.slice(colon + 1) !== String(levels)) return undefined;
  return { base: symbol.slice(0, colon), levels };
}

/**
 * The depth an adapter is asked for: the symbol's suffix when it has one (as Dhan's adapter lets
 * `:20` decide), else the request's depth when it is a positive integer, else 5.
 */
export function requestedDepth(symbol: string, depth: unknown): number {
  const suffix = depthSuffix(symbol);
  if (suffix) return suffix.levels;
  return typeof depth === 'number' && Number.isInteger(depth) && depth > 0 ? depth : DEFAULT_DEPTH;
}
