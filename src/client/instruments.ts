/**
 * Instruments and modes as the application gives them, checked and normalised. Pure. Bad input
 * throws INVALID_ARGUMENT before anything is sent.
 */
import { ClientErrorCode } from '../errors.js';
import { TickcastClientError } from './client-error.js';
import type { Instrument, InstrumentInput, Mode, ModeInput } from './types.js';

const MODE_NAMES: Record<string, Mode> = { ltp: 1, quote: 2, depth: 3 };

/** The gateway's limit on exchange and symbol names. */
const MAX_NAME_LENGTH = 128;
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]/;

function invalid(message: string): TickcastClientError {
  return new TickcastClientError(ClientErrorCode.INVALID_ARGUMENT, message);
}

export function parseMode(value: ModeInput | unknown): Mode {
  if (value === 1 || value === 2 || value === 3) return value;
  if (typeof value === 'string') {
    const mode = MODE_NAMES[value.trim().toLowerCase()];
    if (mode !== undefined) return mode;
  }
  throw invalid(`mode must be 1, 2, 3, 'ltp', 'quote' or 'depth', got ${describe(value)}`);
}

/** `EXCHANGE:SYMBOL` key of a stream (symbols may themselves contain ':'). */
export function streamKey(instrument: Instrument): string {
  return `${instrument.exchange}:${instrument.symbol}`;
}

function checkName(what: string, value: unknown, input: unknown): string {
  if (typeof value !== 'string' || value.trim() === '') throw invalid(`${what} must be a non-empty string in ${describe(input)}`);
  if (value.length > MAX_NAME_LENGTH) throw invalid(`${what} must be at most ${MAX_NAME_LENGTH} characters in ${describe(input)}`);
  if (CONTROL.test(value)) throw invalid(`${what} must not contain control characters in ${describe(input)}`);
  return value;
}

/** `'NSE:RELIANCE'` or `{ exchange, symbol }` → Instrument. The exchange is what precedes the first ':'. */
export function parseInstrument(input: InstrumentInput | unknown): Instrument {
  if (typeof input === 'string') {
    const colon = input.indexOf(':');
    if (colon <= 0 || colon === input.length - 1) {
      throw invalid(`instrument "${input}" must be EXCHANGE:SYMBOL, for example NSE:RELIANCE`);
    }
    return { exchange: checkName('exchange', input.slice(0, colon), input), symbol: checkName('symbol', input.slice(colon + 1), input) };
  }
  if (input !== null && typeof input === 'object' && !Array.isArray(input)) {
    const { exchange, symbol } = input as Record<string, unknown>;
    return { exchange: checkName('exchange', exchange, input), symbol: checkName('symbol', symbol, input) };
  }
  throw invalid(`an instrument must be "EXCHANGE:SYMBOL" or { exchange, symbol }, got ${describe(input)}`);
}

/** One instrument or a list → distinct instruments, in order. An empty list is an error. */
export function parseInstruments(input: InstrumentInput | readonly InstrumentInput[] | unknown): Instrument[] {
  const list = Array.isArray(input) ? (input as unknown[]) : [input];
  if (list.length === 0) throw invalid('at least one instrument is required');
  const seen = new Set<string>();
  const instruments: Instrument[] = [];
  for (const item of list) {
    const instrument = parseInstrument(item);
    const key = streamKey(instrument);
    if (seen.has(key)) continue;
    seen.add(key);
    instruments.push(instrument);
  }
  return instruments;
}

function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}
