/**
 * Instruments as the dashboard names them: `EXCHANGE:SYMBOL` keys (pure). Exchange and symbol
 * are upper case everywhere in OpenAlgo, so input is upper-cased.
 */

export interface Instrument {
  exchange: string;
  symbol: string;
}

const KEY = /^([A-Z][A-Z0-9_]{0,31}):([A-Z0-9][A-Z0-9&._:-]{0,63})$/;

export function instrumentKey(instrument: Instrument): string {
  return `${instrument.exchange}:${instrument.symbol}`;
}

/** `nse:reliance` → `{exchange: 'NSE', symbol: 'RELIANCE'}`; undefined if it is not one. */
export function parseInstrument(text: string): Instrument | undefined {
  const match = KEY.exec(text.trim().toUpperCase().replace(/\s*:\s*/, ':'));
  return match ? { exchange: match[1]!, symbol: match[2]! } : undefined;
}

/** A stored watchlist (JSON array of keys) → instruments, skipping anything malformed. */
export function parseWatchlist(stored: string | null, max: number): Instrument[] {
  if (!stored) return [];
  let value: unknown;
  try {
    value = JSON.parse(stored);
  } catch {
    return [];
  }
  if (!Array.isArray(value)) return [];
  const seen = new Set<string>();
  const result: Instrument[] = [];
  for (const entry of value) {
    if (typeof entry !== 'string') continue;
    const instrument = parseInstrument(entry);
    if (!instrument || seen.has(instrumentKey(instrument))) continue;
    seen.add(instrumentKey(instrument));
    result.push(instrument);
    if (result.length >= max) break;
  }
  return result;
}
