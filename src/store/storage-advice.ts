/**
 * What an operator should do about a storage failure: a database file that is locked, damaged or
 * on a full disk, or a directory that cannot be written. Pure: it reads the SQLite or system
 * error code (following `cause` links) and returns a sentence to append to the error message.
 */

export type StorageProblem = 'locked' | 'corrupt' | 'full' | 'unwritable' | 'not-a-directory';

/** What kind of storage failure `error` is, if it is one we can advise on. */
export function storageProblem(error: unknown): StorageProblem | undefined {
  let current: unknown = error;
  for (let depth = 0; current !== null && typeof current === 'object' && depth < 5; depth++) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === 'string') {
      if (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED')) return 'locked';
      // Unreadable counts as damaged: garbage in a write-ahead log shows up as an I/O error.
      if (code.startsWith('SQLITE_CORRUPT') || code === 'SQLITE_NOTADB' || code.startsWith('SQLITE_IOERR') || code === 'EIO') return 'corrupt';
      if (code === 'SQLITE_FULL' || code === 'ENOSPC' || code === 'EDQUOT') return 'full';
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

/** A sentence telling the operator what to do about `error` on `file`, or undefined. */
export function storageAdvice(error: unknown, kind: StorageKind, file: string): string | undefined {
  switch (storageProblem(error)) {
    case 'locked':
      return `another process holds a write lock on ${file} (a tickcast command that is stuck, or another program with the file open: \`fuser ${file}\` names it); stop it and try again`;
    case 'corrupt':
      return kind === 'registry'
        ? `${file} is damaged or unreadable; it holds only the entries of running tickcast processes, so stop those, move it (with its -wal and -shm files) aside and start again (a new one is created)`
        : `${file} is damaged or unreadable; it holds the instance's API keys, broker credentials and symbol master: restore it from a backup, or move it (with its -wal and -shm files) aside to start with an empty store (keys must then be created again)`;
    case 'full':
      return `the disk holding ${file} is full; free some space and try again`;
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
