/**
 * Where the primary of `--workers N` binds its bus fan-out: a ZeroMQ `ipc://` socket file in a
 * fresh directory of mode 0700 under the OS temp dir. Every bus message passes through it (order
 * updates of every user included), so only the instance's own user may connect: a Linux abstract
 * socket has no permissions at all, any local process could read it.
 *
 * The directory is named after the primary's pid; one left by a primary that was killed is
 * removed by the next primary of the same OS user to start.
 */
import { chmodSync, lstatSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ErrorCode, TickcastError } from '../errors.js';

const PREFIX = 'tickcast-fanout-';
const SOCKET = 'fanout.sock';
const NAME = new RegExp(`^${PREFIX}(\\d+)-`);
/** sun_path holds 108 bytes, the terminating NUL included. */
const MAX_SOCKET_PATH = 107;

export interface FanoutDir {
  /** The directory (mode 0700). */
  dir: string;
  /** `ipc://<dir>/fanout.sock` */
  endpoint: string;
  /** Removes the directory and its socket file; safe to call twice. */
  remove(): void;
}

/** Creates the fan-out directory under `base` (default: the OS temp dir), first removing stale ones. */
export function createFanoutDir(base: string = tmpdir(), pid: number = process.pid): { fanout: FanoutDir; removedStale: string[] } {
  const removedStale = removeStaleFanoutDirs(base);
  // mkdtemp creates the directory 0700 already; chmod says so whatever the umask.
  const dir = mkdtempSync(join(base, `${PREFIX}${pid}-`));
  chmodSync(dir, 0o700);
  const socket = join(dir, SOCKET);
  if (Buffer.byteLength(socket) > MAX_SOCKET_PATH) {
    rmSync(dir, { recursive: true, force: true });
    throw new TickcastError(ErrorCode.BUS_BIND_FAILED, `the workers' fan-out socket path ${socket} is longer than ${MAX_SOCKET_PATH} bytes: set TMPDIR to a shorter directory`);
  }
  return { fanout: { dir, endpoint: `ipc://${socket}`, remove: () => rmSync(dir, { recursive: true, force: true }) }, removedStale };
}

/** Fan-out directories under `base` of this OS user whose primary is no longer running; returns those removed. */
export function removeStaleFanoutDirs(base: string): string[] {
  const removed: string[] = [];
  let names: string[];
  try {
    names = readdirSync(base);
  } catch {
    return removed;
  }
  const uid = process.getuid?.();
  for (const name of names) {
    const match = NAME.exec(name);
    if (!match || isRunning(Number(match[1]))) continue;
    const dir = join(base, name);
    try {
      // lstat: a symlink of that name (anyone may make one in the temp dir) is skipped, not
      // followed to delete what it points at. Another user's directory is theirs to clean.
      const stat = lstatSync(dir);
      if (!stat.isDirectory() || (uid !== undefined && stat.uid !== uid)) continue;
      rmSync(dir, { recursive: true, force: true });
      removed.push(dir);
    } catch {
      // Gone meanwhile, or not ours to remove: nothing to clean.
    }
  }
  return removed;
}

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: alive, another user's.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
