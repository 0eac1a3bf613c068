/**
 * Structured JSON logs (pino). Secrets never reach a log line: the paths below are censored
 * wherever they appear, and callers never put an API key in a message string.
 */
import { pino, type Logger, type DestinationStream } from 'pino';

export type { Logger };

export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';

const REDACT = [
  'api_key', 'apikey', 'apiKey', 'pepper', 'password', 'token', 'access_token', 'feed_token',
  '*.api_key', '*.apikey', '*.apiKey', '*.pepper', '*.password', '*.token', '*.access_token', '*.feed_token',
];

export function createLogger(level: LogLevel, destination?: DestinationStream): Logger {
  const options = { level, base: { pid: process.pid }, redact: { paths: REDACT, censor: '[redacted]' } };
  return destination ? pino(options, destination) : pino(options);
}

/** A logger that drops everything (tests, one-shot CLI commands). */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
