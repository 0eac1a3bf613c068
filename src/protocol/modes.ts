/**
 * Subscription modes, numbered as OpenAlgo numbers them at every boundary:
 * 1 = LTP, 2 = Quote, 3 = Depth. A higher mode's tick carries everything a lower one does.
 */
import { pyRepr, pyTypeName } from './python.js';

export type Mode = 1 | 2 | 3;

export const MODES: readonly Mode[] = [1, 2, 3];

/** A mode's bit in a mask of modes (bit m−1 for mode m), as subscriptions and ticks keep them. */
export const modeBit = (mode: Mode): number => 1 << (mode - 1);

/** Labels used in subscribe replies (`"mode": "Quote"`). */
export const MODE_LABEL: Record<Mode, string> = { 1: 'LTP', 2: 'Quote', 3: 'Depth' };

/** Mode suffix of a bus topic (`NSE_RELIANCE_QUOTE`). */
export const TOPIC_MODE: Record<Mode, string> = { 1: 'LTP', 2: 'QUOTE', 3: 'DEPTH' };

const BY_NAME: Record<string, Mode> = { ltp: 1, quote: 2, depth: 3 };

export type ModeResult = { ok: true; mode: Mode } | { ok: false; message: string };

/**
 * OpenAlgo's `mode_utils.normalize_mode`, with its exact messages: ints 1–3 or the
 * case-insensitive, whitespace-trimmed names LTP/Quote/Depth. Everything else is refused.
 */
export function normalizeMode(value: unknown): ModeResult {
  if (typeof value === 'number' && Number.isInteger(value)) {
    if (value >= 1 && value <= 3) return { ok: true, mode: value as Mode };
    return { ok: false, message: `Invalid mode ${value}; expected 1 (LTP), 2 (Quote), or 3 (Depth)` };
  }
  if (typeof value === 'string') {
    const mode = BY_NAME[value.trim().toLowerCase()];
    if (mode !== undefined) return { ok: true, mode };
    return {
      ok: false,
      message: `Invalid mode ${pyRepr(value)}; expected 'LTP', 'Quote', or 'Depth' (case-insensitive)`,
    };
  }
  return { ok: false, message: `Mode must be int or str, got ${pyTypeName(value)}` };
}

/** Topic suffixes are matched case-insensitively (`NSE_RELIANCE_quote` is accepted). */
export function modeFromTopicSuffix(suffix: string): Mode | undefined {
  return BY_NAME[suffix.toLowerCase()];
}
