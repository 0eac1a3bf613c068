/**
 * An instance's data directory, made ready before anything is written into it: created if
 * missing and checked writable, so a read-only or misplaced directory is one clear error naming
 * it and what to do, instead of a stack trace from deep inside a write.
 */
import fs from 'node:fs';
import path from 'node:path';
import { ErrorCode, TickcastError } from '../errors.js';

/** Creates `dir` (and its parents) if needed; STORE_FAILED naming it when it cannot be written. */
export function ensureDataDir(dir: string): void {
  try {
    fs.mkdirSync(dir, { recursive: true });
    // Root passes permission checks, but not a read-only mount.
    fs.accessSync(dir, fs.constants.W_OK);
  } catch (error) {
    throw new TickcastError(
      ErrorCode.STORE_FAILED,
      `data directory ${dir} ${problem(dir, error)}; set TICKCAST_DATA_DIR (--data-dir) to a writable directory, or fix the permissions or the mount`,
    );
  }
}

/**
 * What is wrong, judged from the nearest part of the path that exists: a recursive mkdir under a
 * read-only mount reports ENOENT, which would send the operator looking in the wrong place.
 */
function problem(dir: string, error: unknown): string {
  const target = path.resolve(dir);
  let existing = target;
  while (!fs.existsSync(existing) && path.dirname(existing) !== existing) existing = path.dirname(existing);
  try {
    if (!fs.statSync(existing).isDirectory()) return `cannot be created: ${existing} is a file, not a directory`;
    fs.accessSync(existing, fs.constants.W_OK);
  } catch (inner) {
    return existing === target ? `is not writable (${describe(inner)})` : `cannot be created: ${existing} is not writable (${describe(inner)})`;
  }
  return `cannot be used (${describe(error)})`;
}

/** `EROFS: read-only file system`, without the syscall and path Node appends. */
function describe(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return message.split(',')[0] ?? message;
}
