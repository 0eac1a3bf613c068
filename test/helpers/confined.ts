/**
 * Runs a command with a directory that even root cannot write: a small tmpfs mounted over it,
 * read-only or already full, in a private mount namespace (`unshare -m` as root, `unshare -rm`
 * otherwise), so nothing outside the command sees the mount and nothing needs unmounting.
 *
 * `mountNamespace()` says whether this machine allows that; callers without it fall back to
 * other ways (see faults-data-dir.test.ts).
 */
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';

export type Confinement = 'read-only' | 'full';

let probed: string[] | null | undefined;

/** The `unshare` arguments that give a private mount namespace here, or null if none works. */
export function mountNamespace(): string[] | null {
  if (probed !== undefined) return probed;
  const root = process.getuid?.() === 0;
  const candidates = root ? [['-m'], ['-rm']] : [['-rm']];
  probed = null;
  for (const args of candidates) {
    const probe = spawnSync('unshare', [...args, 'sh', '-c', 'mount -t tmpfs -o size=64k tmpfs "$1"', 'sh', tmpdir()], { stdio: 'ignore', timeout: 10_000 });
    if (probe.status === 0) {
      probed = args;
      break;
    }
  }
  return probed;
}

/**
 * The command and arguments that run `command` with a fresh tmpfs over `dir` (which must exist):
 * `read-only` mounts it read-only; `full` mounts 64 KiB and fills it. Throws if this machine has
 * no mount namespace for us (check `mountNamespace()` first).
 */
export function confined(dir: string, how: Confinement, command: readonly string[]): { command: string; args: string[] } {
  const unshare = mountNamespace();
  if (!unshare) throw new Error('no private mount namespace on this machine (unshare -m / -rm)');
  const prepare =
    how === 'read-only'
      ? 'mount -t tmpfs -o ro,size=64k tmpfs "$1"'
      : // The filler stops at ENOSPC (head then fails, on purpose); df shows it is really full.
        'mount -t tmpfs -o size=64k tmpfs "$1" && { head -c 1048576 /dev/zero > "$1/filler" 2>/dev/null; [ "$(df -P "$1" | awk \'NR==2 {print $4}\')" = 0 ]; }';
  return { command: 'unshare', args: [...unshare, 'sh', '-c', `${prepare} && shift && exec "$@"`, 'sh', dir, ...command] };
}
