/**
 * An instance's data directory, made ready before anything is written into it: created if
 * missing and checked writable, so a read-only or misplaced directory is one clear error naming
 * it and what to do, instead of a stack trace from deep inside a write.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ErrorCode, TickcastError } from '../errors.js';
import { diskFullAdvice, storageProblem } from './storage-advice.js';

/**
 * Where tickcast keeps its state unless TICKCAST_DATA_DIR says otherwise: `$XDG_DATA_HOME/tickcast`,
 * or `~/.local/share/tickcast` when XDG_DATA_HOME is unset or relative (the XDG spec says to ignore
 * a relative one). Per user and the same from any working directory, so `tickcast keys` run from
 * anywhere manages the keys the gateway uses.
 */
export function defaultDataDir(env: NodeJS.ProcessEnv = process.env, homedir: () => string = os.homedir): string {
  const xdg = env.XDG_DATA_HOME;
  const dataHome = xdg && path.isAbsolute(xdg) ? xdg : path.join(homedir(), '.local', 'share');
  return path.join(dataHome, 'tickcast');
}

/**
 * Refuses to use a store at the default location that holds no keys while the store an earlier
 * tickcast kept under the working directory (`./data/<instance>`, the old default) still exists:
 * its keys would otherwise silently stop working. CONFIG_INVALID saying how to keep using it or
 * move it.
 */
export function checkNoStoreLeftBehind(instanceDir: string, instance: string, inUse: boolean, cwd: string = process.cwd()): void {
  if (inUse) return;
  const old = path.join(cwd, 'data', instance);
  if (path.resolve(old) === path.resolve(instanceDir) || !fs.existsSync(path.join(old, 'tickcast.db'))) return;
  throw new TickcastError(
    ErrorCode.CONFIG_INVALID,
    `instance "${instance}" has a store in ${old}, where tickcast kept it when TICKCAST_DATA_DIR defaulted to ./data, and no keys in ${instanceDir}, where it is kept now; ` +
      `move it there (stop the gateway, then: rm -rf ${instanceDir} && mkdir -p ${path.dirname(instanceDir)} && mv ${old} ${instanceDir}) or set TICKCAST_DATA_DIR=${path.dirname(old)} to keep using it`,
  );
}

/**
 * Creates `dir` and any missing parents private to the owner (0700): they hold the store, the
 * pepper and the control key. mkdir's 0700 can only lose bits to the umask, and a restrictive one
 * leaves the owner unable to use it (0277 gives 0500: not writable), so each directory created
 * here is chmod-ed to 0700; directories that already existed are left as their owner set them.
 * Throws the file system's error.
 */
export function makePrivateDir(dir: string): void {
  const first = fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  if (first === undefined) return;
  const target = path.resolve(dir);
  for (let created = path.resolve(first); ; created = path.join(created, path.relative(created, target).split(path.sep)[0]!)) {
    fs.chmodSync(created, 0o700);
    if (created === target) break;
  }
}

/**
 * Creates `dir` (and its parents, 0700) if needed; STORE_FAILED naming it when it cannot be
 * written, DISK_FULL when there is no space left to create it.
 */
export function ensureDataDir(dir: string): void {
  try {
    makePrivateDir(dir);
    // Root passes permission checks, but not a read-only mount.
    fs.accessSync(dir, fs.constants.W_OK);
  } catch (error) {
    if (storageProblem(error) === 'full') {
      throw Object.assign(new TickcastError(ErrorCode.DISK_FULL, `data directory ${dir} cannot be created: ${describe(error)}; ${diskFullAdvice(dir)}`), { cause: error });
    }
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
