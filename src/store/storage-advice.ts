/**
 * What an operator should do about a storage failure: a database file that is locked, damaged or
 * on a full disk, or a directory that cannot be written. It reads the SQLite or system error code
 * (following `cause` links) and returns a sentence to append to the error message; only an I/O
 * error also looks at the file system, to tell a full disk from a damaged file.
 */
import fs from 'node:fs';
import path from 'node:path';
import { ErrorCode, TickcastError } from '../errors.js';

export type StorageProblem = 'locked' | 'corrupt' | 'full' | 'unwritable' | 'not-a-directory';

/** Below this much free space an I/O error is taken for a full disk (SQLite's -shm alone needs 32 KiB). */
const NEARLY_FULL_BYTES = 1024 * 1024;

/** Free bytes for this user on the file system of the file in question, or undefined when unknown. */
export type FreeSpace = () => number | undefined;

/**
 * What kind of storage failure `error` is, if it is one we can advise on. Pure: `free` is asked
 * only for an I/O error, and at most once. SQLite reports a full disk as an I/O error in some
 * places (extending -shm), so an I/O error with (next to) no space left counts as a full disk.
 * Damage (SQLITE_CORRUPT*, SQLITE_NOTADB) is damage however full the disk is.
 */
export function classifyStorageProblem(error: unknown, free?: FreeSpace): StorageProblem | undefined {
  let current: unknown = error;
  for (let depth = 0; current !== null && typeof current === 'object' && depth < 5; depth++) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === 'string') {
      if (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED')) return 'locked';
      // Opening a WAL store on a full disk fails here, not with SQLITE_FULL: it is never damage.
      if (code === 'SQLITE_FULL' || code === 'SQLITE_IOERR_SHMSIZE' || code === 'ENOSPC' || code === 'EDQUOT') return 'full';
      if (code.startsWith('SQLITE_CORRUPT') || code === 'SQLITE_NOTADB') return 'corrupt';
      // Unreadable counts as damaged (garbage in a write-ahead log shows up as an I/O error), unless the disk is full.
      if (code.startsWith('SQLITE_IOERR') || code === 'EIO') {
        const bytes = free?.();
        return bytes !== undefined && bytes < NEARLY_FULL_BYTES ? 'full' : 'corrupt';
      }
      if (code.startsWith('SQLITE_READONLY') || code.startsWith('SQLITE_CANTOPEN') || code === 'EACCES' || code === 'EPERM' || code === 'EROFS') {
        return 'unwritable';
      }
      if (code === 'ENOTDIR') return 'not-a-directory';
    }
    current = (current as { cause?: unknown }).cause;
  }
  return undefined;
}

/**
 * classifyStorageProblem with the free space of `file`'s file system, when `file` is given,
 * read from the disk (only for an I/O error).
 */
export function storageProblem(error: unknown, file?: string): StorageProblem | undefined {
  return classifyStorageProblem(error, file === undefined ? undefined : () => freeBytes(file));
}

/** Free bytes for this user on the file system holding `file` (or its nearest existing ancestor); undefined if unknown. */
export function freeBytes(file: string): number | undefined {
  let existing = path.resolve(file);
  while (!fs.existsSync(existing) && path.dirname(existing) !== existing) existing = path.dirname(existing);
  try {
    const stats = fs.statfsSync(existing);
    // Root may use the blocks reserved for it, so only their end is a full disk for root.
    const blocks = process.getuid?.() === 0 ? stats.bfree : stats.bavail;
    return blocks * stats.bsize;
  } catch {
    return undefined;
  }
}

/**
 * The registry holds only the entries of running processes (each re-registers by itself), the
 * store holds what cannot be rebuilt (API keys, broker credentials, the symbol master).
 */
export type StorageKind = 'registry' | 'store';

const RELOCATE: Record<StorageKind, string> = {
  registry: 'point TICKCAST_REGISTRY at a writable file',
  store: 'set TICKCAST_DATA_DIR (--data-dir) to a writable directory',
};

/** The sentence for a full disk: says so, names the directory and what to free. */
export function diskFullAdvice(file: string): string {
  const dir = path.dirname(path.resolve(file));
  return `disk full: no space left on the disk holding ${dir} to write ${path.basename(file)}; free space on that disk (\`df -h ${dir}\` shows it; delete or move other files there, not the store's), then try again; nothing stored was changed`;
}

/** The sentence for `problem` on `file`, or undefined. */
function adviceFor(problem: StorageProblem | undefined, kind: StorageKind, file: string): string | undefined {
  switch (problem) {
    case 'locked':
      return `another process holds a write lock on ${file} (a tickcast command that is stuck, or another program with the file open: \`fuser ${file}\` names it); stop it and try again`;
    case 'corrupt':
      return kind === 'registry'
        ? `${file} is damaged or unreadable; it holds only the entries of running tickcast processes, so stop those, move it (with its -wal and -shm files) aside and start again (a new one is created)`
        : `${file} is damaged or unreadable; it holds the instance's API keys, broker credentials and symbol master: restore it from a backup, or move it (with its -wal and -shm files) aside to start with an empty store (keys must then be created again)`;
    case 'full':
      return diskFullAdvice(file);
    case 'unwritable':
      return `${file} or its directory cannot be written by this user; fix the permissions or the mount, or ${RELOCATE[kind]}`;
    case 'not-a-directory':
      return `a part of the path of ${file} is a file, not a directory; ${RELOCATE[kind]}`;
    default:
      return undefined;
  }
}

const appendAdvice = (message: string, advice: string | undefined): string => (advice === undefined ? message : `${message}; ${advice}`);

/** A sentence telling the operator what to do about `error` on `file`, or undefined. */
export function storageAdvice(error: unknown, kind: StorageKind, file: string): string | undefined {
  return adviceFor(storageProblem(error, file), kind, file);
}

/** `message`, followed by the advice for `error` when there is some. */
export function withStorageAdvice(message: string, error: unknown, kind: StorageKind, file: string): string {
  return appendAdvice(message, storageAdvice(error, kind, file));
}

/** The error for `problem`, already classified: its code and its advice come from the same verdict. */
function errorFor(message: string, error: unknown, problem: StorageProblem | undefined, kind: StorageKind, file: string, code: ErrorCode): TickcastError {
  const tagged = new TickcastError(problem === 'full' ? ErrorCode.DISK_FULL : code, appendAdvice(message, adviceFor(problem, kind, file)));
  return Object.assign(tagged, { cause: error });
}

/**
 * The operator's error for a storage failure: DISK_FULL on a full disk, else `code` (by default
 * STORE_FAILED), with the advice appended. The original error stays reachable as `cause`. The
 * failure is classified once (`free`, by default the disk's reading, injectable for tests), so the
 * code and the advice cannot disagree.
 */
export function storageError(
  message: string,
  error: unknown,
  kind: StorageKind,
  file: string,
  code: ErrorCode = ErrorCode.STORE_FAILED,
  free: FreeSpace = () => freeBytes(file),
): TickcastError {
  return errorFor(message, error, classifyStorageProblem(error, free), kind, file, code);
}

/**
 * `error` as the operator should see it when it happened writing `file`: a raw storage failure
 * (SQLITE_FULL from an insert, ENOSPC) becomes storageError's; anything else is returned as is.
 */
export function asStorageError(error: unknown, kind: StorageKind, file: string): unknown {
  if (error instanceof TickcastError) return error;
  const problem = storageProblem(error, file);
  if (problem === undefined) return error;
  return errorFor(`cannot write ${file}: ${error instanceof Error ? error.message : String(error)}`, error, problem, kind, file, ErrorCode.STORE_FAILED);
}
