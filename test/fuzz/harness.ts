/**
 * What every fuzz target shares: a named property that can be asserted (tests) or checked with
 * any run count (scripts/fuzz.ts), and the bounds the properties assert.
 */
import { ok } from 'node:assert/strict';
import fc from 'fast-check';
import { ProtocolErrorCode } from '../../src/errors.js';

export interface CaseResult {
  failed: boolean;
  runs: number;
  /** fast-check's report (seed, counterexample, error) when it failed. */
  report: string;
}

export interface FuzzCase {
  name: string;
  /**
   * Share of the requested run count this case gets: cases that build a 64 KiB input per run
   * take a smaller share so a long run stays balanced.
   */
  share: number;
  /** Runs the property; throws fast-check's report (with the seed) on failure. */
  assert(runs: number): void;
  check(runs: number, seed?: number): CaseResult;
}

export function fuzzCase<Ts extends [unknown, ...unknown[]]>(name: string, property: fc.IProperty<Ts>, share = 1): FuzzCase {
  const numRuns = (runs: number): number => Math.max(1, Math.round(runs * share));
  return {
    name,
    share,
    assert: (runs) => fc.assert(property, { numRuns: numRuns(runs) }),
    check: (runs, seed) => {
      const details = fc.check(property, seed === undefined ? { numRuns: numRuns(runs) } : { numRuns: numRuns(runs), seed });
      return { failed: details.failed, runs: details.numRuns, report: details.failed ? (fc.defaultReportMessage(details) ?? 'failed') : '' };
    },
  };
}

/** Share for cases whose every run builds a 64 KiB hostile input. */
export const HOSTILE_SHARE = 0.05;

/**
 * Generous wall-clock bound for one decode of a 64 KiB input. Real decodes take well under a
 * millisecond; this only catches work that grows with a forged length or count (a hang).
 */
export const HANG_MS = 2000;

/** Runs `work` and fails if it took longer than HANG_MS. */
export function bounded<T>(what: string, work: () => T): T {
  const start = performance.now();
  const result = work();
  const elapsed = performance.now() - start;
  ok(elapsed < HANG_MS, `${what} took ${elapsed.toFixed(0)} ms (bound ${HANG_MS} ms)`);
  return result;
}

/**
 * Approximate size in bytes of a decoded value (strings count their length, everything else a
 * few bytes), walked without recursion so any nesting depth can be measured.
 */
export function sizeOf(value: unknown): number {
  let size = 0;
  const stack: unknown[] = [value];
  while (stack.length > 0) {
    const item = stack.pop();
    if (typeof item === 'string') size += item.length;
    else if (Buffer.isBuffer(item)) size += item.length;
    else if (item !== null && typeof item === 'object') {
      size += 2;
      for (const [key, child] of Object.entries(item)) {
        size += key.length + 1;
        stack.push(child);
      }
    } else size += 8;
  }
  return size;
}

const PROTOCOL_CODES: ReadonlySet<string> = new Set(Object.values(ProtocolErrorCode));

/** A client error as the gateway sends it: a code from src/errors.ts and a human message. */
export function assertProtocolError(error: { code: unknown; message: unknown }): void {
  ok(typeof error.code === 'string' && PROTOCOL_CODES.has(error.code), `unknown error code ${String(error.code)}`);
  ok(typeof error.message === 'string' && error.message.trim().length > 0, `error ${error.code} has no message`);
}

/** A decoder's reason (invalid frame, bad control message): a non-empty string of sane length. */
export function assertReason(reason: unknown, maxLength = 1000): void {
  ok(typeof reason === 'string' && reason.trim().length > 0, 'a rejection must say why');
  ok(reason.length <= maxLength, `reason of ${reason.length} chars (bound ${maxLength})`);
}

/** Callers log or re-send what a decoder hands them: it must survive JSON.stringify. */
export function assertSerialisable(value: unknown, what: string): void {
  try {
    JSON.stringify(value);
  } catch (error) {
    ok(false, `${what} cannot be serialised: ${(error as Error).message}`);
  }
}
