/**
 * Number and time formatting for the dashboard (pure). Prices use Indian digit grouping
 * (12,34,567.50) as Indian trading screens do; a change always carries its sign so a column of
 * them reads at a glance. Missing values show as an em dash.
 */

const DASH = '—';
/** U+2212: the same width as "+" in monospace fonts, so signed columns line up. */
const MINUS = '\u2212';

const priceFormats = new Map<number, Intl.NumberFormat>();
const integerFormat = new Intl.NumberFormat('en-IN', { maximumFractionDigits: 0 });

function priceFormat(decimals: number): Intl.NumberFormat {
  let format = priceFormats.get(decimals);
  if (!format) {
    format = new Intl.NumberFormat('en-IN', { minimumFractionDigits: decimals, maximumFractionDigits: decimals });
    priceFormats.set(decimals, format);
  }
  return format;
}

export function isNumber(value: unknown): value is number {
  return typeof value === 'number' && Number.isFinite(value);
}

/** `1,418.35`; `decimals` defaults to 2 (paise). */
export function formatPrice(value: unknown, decimals = 2): string {
  return isNumber(value) ? priceFormat(decimals).format(value).replace('-', MINUS) : DASH;
}

/** `+12.35`, `−3.10`, `0.00`. */
export function formatChange(value: unknown, decimals = 2): string {
  if (!isNumber(value)) return DASH;
  const text = priceFormat(decimals).format(Math.abs(value));
  if (Number(text.replace(/,/g, '')) === 0) return text;
  return (value > 0 ? '+' : MINUS) + text;
}

/** `+0.87%`. */
export function formatPercent(value: unknown): string {
  return isNumber(value) ? `${formatChange(value)}%` : DASH;
}

/** `12,34,567`. */
export function formatInteger(value: unknown): string {
  return isNumber(value) ? integerFormat.format(value) : DASH;
}

/** A rate per second: `0`, `8.5`, `1,240`, `12.3k`, `1.25M`. */
export function formatRate(value: unknown): string {
  if (!isNumber(value) || value < 0) return DASH;
  if (value >= 1e6) return `${(value / 1e6).toFixed(2)}M`;
  if (value >= 1e4) return `${(value / 1e3).toFixed(1)}k`;
  if (value >= 100) return integerFormat.format(Math.round(value));
  return value === Math.round(value) ? String(value) : value.toFixed(1);
}

/** Milliseconds: `0.4 ms`, `12 ms`, `1.25 s`. */
export function formatMillis(value: unknown): string {
  if (!isNumber(value) || value < 0) return DASH;
  if (value >= 1000) return `${(value / 1000).toFixed(2)} s`;
  if (value >= 10) return `${Math.round(value)} ms`;
  return `${value.toFixed(1)} ms`;
}

/** Seconds as `45s`, `12m 05s`, `3h 07m`, `2d 04h`. */
export function formatUptime(seconds: unknown): string {
  if (!isNumber(seconds) || seconds < 0) return DASH;
  const s = Math.floor(seconds);
  const pad = (n: number): string => String(n).padStart(2, '0');
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${pad(s % 60)}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ${pad(Math.floor((s % 3600) / 60))}m`;
  return `${Math.floor(s / 86400)}d ${pad(Math.floor((s % 86400) / 3600))}h`;
}

/** -1, 0 or 1: which way a value moved (for colours and flashes). */
export function direction(previous: number | undefined, current: number | undefined): -1 | 0 | 1 {
  if (previous === undefined || current === undefined || previous === current) return 0;
  return current > previous ? 1 : -1;
}
