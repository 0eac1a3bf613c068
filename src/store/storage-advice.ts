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

/**
 * What kind of storage failure `error` is, if it is one we can advise on. `file`, when given, is
 * where it happened: an I/O error there counts as a full disk when its file system has (next to) no
 * space left, since SQLite reports a full disk as an I/O error in some places (extending -shm).
 */
export function storageProblem(error: unknown, file?: string): StorageProblem | undefined {
  let current: unknown = error;
  for (let depth = 0; current !== null && typeof current === 'object' && depth < 5; depth++) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === 'string') {
      if (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED')) return 'locked';
      // Opening a WAL store on a full disk fails here, not with SQLITE_FULL: it is never damage.
      if (code === 'SQLITE_FULL' || code === 'SQLITE_IOERR_SHMSIZE' || code === 'ENOSPC' || code === 'EDQUOT') return 'full';
      // Unreadable counts as damaged: garbage in a write-ahead log shows up as an I/O error.
      if (code.startsWith('SQLITE_CORRUPT') || code === 'SQLITE_NOTADB' || code.startsWith('SQLITE_IOERR') || code === 'EIO') {
        return file !== undefined && nearlyFull(file) ? 'full' : 'corrupt';
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
 * The registry holds only the entries of running processes (each re-registers by itself), the
 * store holds what cannot be rebuilt (API keys, broker credentials, the symbol master).
 */
export type StorageKind = 'registry' | 'store';

const RELOCATE: Record<StorageKind, string> = {
  registry: 'point TICKCAST_REGISTRY at a writable file',
  store: 'set TICKCAST_DATA_DIR (--data-dir) to a writable directory',
};

/** Whether the file system holding `file` (or its nearest existing ancestor) has almost no space left for this user. */
function nearlyFull(file: string): boolean {
  let existing = path.resolve(file);
  while (!fs.existsSync(existing) && path.dirname(existing) !== existing) existing = path.dirname(existing);
  try {
    const stats = fs.statfsSync(existing);
    // Root may use the blocks reserved for it, so only their end is a full disk for root.
    const blocks = process.getuid?.() === 0 ? stats.bfree : stats.bavail;
    return blocks * stats.bsize < NEARLY_FULL_BYTES;
  } catch {
    return false;
  }
}

/** The sentence for a full disk: says so, names the directory and what to free. */
export function diskFullAdvice(file: string): string {
  const dir = path.dirname(path.resolve(file));
  return `disk full: no space left on the disk holding ${dir} to write ${path.basename(file)}; free space on that disk (\`df -h ${dir}\` shows it; delete or move other files there, not the store's), then try again; nothing stored was changed`;
}

/** A sentence telling the operator what to do about `error` on `file`, or undefined. */
export function storageAdvice(error: unknown, kind: StorageKind, file: string): string | undefined {
  switch (storageProblem(error, file)) {
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

/** `message`, followed by the advice for `error` when there is some. */
export function withStorageAdvice(message: string, error: unknown, kind: StorageKind, file: string): string {
  const advice = storageAdvice(error, kind, file);
  return advice === undefined ? message : `${message}; ${advice}`;
}

/**
 * The operator's error for a storage failure: DISK_FULL on a full disk, else `code` (by default
 * STORE_FAILED), with the advice appended. The original error stays reachable as `cause`.
 */
export function storageError(message: string, error: unknown, kind: StorageKind, file: string, code: ErrorCode = ErrorCode.STORE_FAILED): TickcastError {
  const full = storageProblem(error, file) === 'full';
  return Object.assign(new TickcastError(full ? ErrorCode.DISK_FULL : code, withStorageAdvice(message, error, kind, file)), { cause: error });
}

/**
 * `error` as the operator should see it when it happened writing `file`: a raw storage failure
 * (SQLITE_FULL from an insert, ENOSPC) becomes storageError's; anything else is returned as is.
 */
export function asStorageError(error: unknown, kind: StorageKind, file: string): unknown {
  if (error instanceof TickcastError || storageProblem(error, file) === undefined) return error;
  return storageError(`cannot write ${file}: ${error instanceof Error ? error.message : String(error)}`, error, kind, file);
}
