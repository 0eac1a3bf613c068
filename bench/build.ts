/**
 * The gateway under test is `node bin/tickcast`, which runs dist/; a benchmark of stale build
 * output would measure old code. Rebuilds dist/ when any file in src/ is newer than the last build.
 */
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../', import.meta.url));

function newestMtime(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) newest = Math.max(newest, newestMtime(path));
    else if (entry.name.endsWith('.ts')) newest = Math.max(newest, statSync(path).mtimeMs);
  }
  return newest;
}

function builtAt(): number {
  try {
    // tsc rewrites its build info on every build that emits.
    return statSync(join(ROOT, 'dist', '.tsbuildinfo')).mtimeMs;
  } catch {
    return 0;
  }
}

/** Rebuilds if stale (or only warns, when `build` is false). Throws if the build fails. */
export function ensureBuilt(build: boolean): void {
  if (builtAt() >= newestMtime(join(ROOT, 'src'))) return;
  if (!build) {
    process.stderr.write('bench: warning: dist/ is older than src/ and --no-build was given; measuring the old build\n');
    return;
  }
  process.stderr.write('bench: dist/ is older than src/; running the build (tsc -p tsconfig.json)\n');
  const tsc = join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
  const result = spawnSync(process.execPath, [tsc, '-p', 'tsconfig.json'], { cwd: ROOT, stdio: ['ignore', 'inherit', 'inherit'] });
  if (result.status !== 0) throw new Error('the build failed (see above); fix it, or pass --no-build to measure the existing dist/');
}
