/**
 * The API-key pepper (OpenAlgo's API_KEY_PEPPER): mixed into every Argon2 hash and the password
 * of the Fernet key. Configured, or kept in `<dataDir>/pepper` so a zero-config start still has a
 * stable, secret one. Losing or changing it invalidates every stored key, which is why the store
 * records the pepper's fingerprint (store-pepper.ts) and refuses to start with another one.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { ErrorCode, TickcastError } from '../errors.js';
import { diskFullAdvice, storageProblem } from '../store/storage-advice.js';

/** OpenAlgo refuses to start with a shorter one. */
export const MIN_PEPPER_LENGTH = 32;

export interface ResolvedPepper {
  pepper: string;
  source: 'config' | 'file' | 'created';
}

/** Where the pepper file of a data directory is. */
export function pepperFile(dataDir: string): string {
  return path.join(dataDir, 'pepper');
}

/** The configured pepper, else the pepper file's; null when there is neither (nothing is created).
 * An empty `configured` counts as unset (an empty `API_KEY_PEPPER=` line in a .env). */
export function findPepper(configured: string | undefined, dataDir: string): ResolvedPepper | null {
  if (configured !== undefined && configured !== '') {
    checkLength(configured, 'API_KEY_PEPPER');
    return { pepper: configured, source: 'config' };
  }
  const existing = readPepperFile(pepperFile(dataDir));
  return existing === null ? null : { pepper: existing, source: 'file' };
}

/** As findPepper, but creates the pepper file when there is no pepper yet. */
export function resolvePepper(configured: string | undefined, dataDir: string): ResolvedPepper {
  const found = findPepper(configured, dataDir);
  if (found !== null) return found;
  const file = pepperFile(dataDir);
  // Read back even when we won: if another process won the race, its pepper is the one to use.
  const created = createPepperFile(file);
  const pepper = readPepperFile(file);
  if (pepper === null) {
    throw new TickcastError(ErrorCode.CONFIG_INVALID, `pepper file ${file} disappeared while starting`);
  }
  return { pepper, source: created ? 'created' : 'file' };
}

function checkLength(pepper: string, where: string): void {
  const length = [...pepper].length; // code points, as Python's len()
  if (length < MIN_PEPPER_LENGTH) {
    throw new TickcastError(
      ErrorCode.CONFIG_INVALID,
      `${where} must be at least ${MIN_PEPPER_LENGTH} characters (got ${length})`,
    );
  }
}

/** The file's content without surrounding whitespace (a hand-written file ends in a newline), or
 * null when there is no file. */
function readPepperFile(file: string): string | null {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new TickcastError(ErrorCode.CONFIG_INVALID, `cannot read pepper file ${file}: ${(err as Error).message}`);
  }
  const pepper = text.trim();
  checkLength(pepper, `pepper file ${file}`);
  return pepper;
}

/**
 * Writes a fresh pepper to a private temp file, then hard-links it into place: link() fails if
 * the target exists (the `wx` guarantee) and, unlike open('wx') + write, never exposes a
 * half-written file to a racing reader. Returns false when another process's file won.
 */
function createPepperFile(file: string): boolean {
  const dir = path.dirname(file);
  const tmp = `${file}.${process.pid}.${crypto.randomBytes(6).toString('hex')}.tmp`;
  try {
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    const fd = fs.openSync(tmp, 'wx', 0o600);
    try {
      fs.writeSync(fd, `${crypto.randomBytes(32).toString('hex')}\n`);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    try {
      fs.linkSync(tmp, file);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'EEXIST') return false;
      if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP') throw err;
      // A filesystem without hard links: exclusive create still guarantees a single winner.
      return copyExclusive(tmp, file);
    }
    syncDir(dir);
    return true;
  } catch (err) {
    // A full disk is not a configuration mistake: exit 1 saying where to free space, not exit 2.
    if (storageProblem(err) === 'full') {
      throw Object.assign(new TickcastError(ErrorCode.DISK_FULL, `cannot create pepper file ${file}: ${(err as Error).message}; ${diskFullAdvice(file)}`), { cause: err });
    }
    throw new TickcastError(ErrorCode.CONFIG_INVALID, `cannot create pepper file ${file}: ${(err as Error).message}`);
  } finally {
    fs.rmSync(tmp, { force: true });
  }
}

function copyExclusive(from: string, to: string): boolean {
  try {
    fs.copyFileSync(from, to, fs.constants.COPYFILE_EXCL);
    fs.chmodSync(to, 0o600);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  }
}

/** Makes the new directory entry durable; best effort (not every platform can fsync a dir). */
function syncDir(dir: string): void {
  try {
    const fd = fs.openSync(dir, 'r');
    try {
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
  } catch {
    // durability nicety only
  }
}
