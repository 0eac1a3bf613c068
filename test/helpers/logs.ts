/**
 * Reads the JSON log lines (pino) a spawned tickcast process writes on stderr, so fault tests can
 * assert what the operator is told. Lines that are not JSON (a CLI error, a stack) are skipped.
 */
import { sleep } from './client.js';

export type LogLine = Record<string, any> & { level: number; msg: string };

/** pino's numeric levels. */
export const LEVEL = { debug: 20, info: 30, warn: 40, error: 50 } as const;

export function logLines(text: string): LogLine[] {
  const lines: LogLine[] = [];
  for (const line of text.split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      const parsed = JSON.parse(line) as LogLine;
      if (typeof parsed.msg === 'string') lines.push(parsed);
    } catch {
      // a partial line still being written; the next read has it whole
    }
  }
  return lines;
}

/** Log lines whose message starts with `prefix` (messages may carry a detail after a ';'). */
export function linesWith(text: string, prefix: string): LogLine[] {
  return logLines(text).filter((line) => line.msg.startsWith(prefix));
}

/**
 * Resolves with the first log line matching `match` in `source()` (polled), or rejects naming
 * what was awaited and showing the log. The timeout only catches hangs.
 */
export async function waitForLog(source: () => string, match: (line: LogLine) => boolean, what: string, timeoutMs = 20_000): Promise<LogLine> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const found = logLines(source()).find(match);
    if (found) return found;
    if (Date.now() > deadline) throw new Error(`no log line ${what} within ${timeoutMs} ms\n--- log\n${source().slice(-4000)}`);
    await sleep(50);
  }
}

/** The same, for a message starting with `prefix` and, if given, one at least `level`. */
export function waitForMessage(source: () => string, prefix: string, level?: number, timeoutMs?: number): Promise<LogLine> {
  return waitForLog(source, (line) => line.msg.startsWith(prefix) && (level === undefined || line.level >= level), `"${prefix}…"`, timeoutMs);
}
