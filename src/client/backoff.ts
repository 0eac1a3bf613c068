/**
 * Reconnect delays: exponential with "full jitter". The ceiling starts at `initialDelayMs` and
 * doubles per failed attempt up to `maxDelayMs`; the delay is drawn below the ceiling, so a
 * gateway restart does not bring every client back in the same instant. Pure; `random` is
 * injected.
 */
import { ClientErrorCode } from '../errors.js';
import { TickcastClientError } from './client-error.js';
import type { ReconnectOptions } from './types.js';

export interface ReconnectSettings {
  initialDelayMs: number;
  maxDelayMs: number;
  jitter: number;
}

export const DEFAULT_RECONNECT: Readonly<ReconnectSettings> = { initialDelayMs: 500, maxDelayMs: 30_000, jitter: 1 };

/** Options over the defaults, checked: delays positive and finite, max ≥ initial, jitter in [0, 1]. */
export function reconnectSettings(options: ReconnectOptions = {}): ReconnectSettings {
  const settings = { ...DEFAULT_RECONNECT, ...stripUndefined(options) };
  const bad = (message: string): TickcastClientError => new TickcastClientError(ClientErrorCode.INVALID_ARGUMENT, `reconnect.${message}`);
  if (!(settings.initialDelayMs > 0) || !Number.isFinite(settings.initialDelayMs)) throw bad(`initialDelayMs must be a positive number of milliseconds, got ${settings.initialDelayMs}`);
  if (!(settings.maxDelayMs >= settings.initialDelayMs) || !Number.isFinite(settings.maxDelayMs)) throw bad(`maxDelayMs must be a number of milliseconds at least initialDelayMs (${settings.initialDelayMs}), got ${settings.maxDelayMs}`);
  if (!(settings.jitter >= 0 && settings.jitter <= 1)) throw bad(`jitter must be between 0 and 1, got ${settings.jitter}`);
  return settings;
}

/** Delay before retry `attempt` (1 for the first retry after a loss). */
export function reconnectDelay(attempt: number, settings: ReconnectSettings, random: () => number): number {
  const ceiling = Math.min(settings.maxDelayMs, settings.initialDelayMs * 2 ** Math.min(Math.max(0, attempt - 1), 30));
  return Math.round(ceiling * (1 - settings.jitter * random()));
}

function stripUndefined<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}
