/**
 * Whatever a benchmark run starts (child processes, temporary directories) is registered here
 * and removed when the run ends — normally, on an error, or on Ctrl-C/SIGTERM — so no gateway or
 * load worker is left running and no temp directory is left behind.
 */
import type { ChildProcess } from 'node:child_process';
import { rmSync } from 'node:fs';

const children = new Set<ChildProcess>();
const dirs = new Set<string>();

export function trackChild(child: ChildProcess): void {
  children.add(child);
  child.once('exit', () => children.delete(child));
}

export function trackDir(dir: string): void {
  dirs.add(dir);
}

export function removeDirNow(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
  dirs.delete(dir);
}

/** Synchronous, so it also works from an 'exit' handler. */
export function cleanupNow(): void {
  for (const child of children) {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
  children.clear();
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  dirs.clear();
}

let installed = false;

export function installCleanupHandlers(): void {
  if (installed) return;
  installed = true;
  process.once('exit', cleanupNow);
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(signal, () => {
      process.stderr.write(`\nbench: ${signal}, stopping everything it started\n`);
      cleanupNow();
      process.exit(130);
    });
  }
}

/**
 * Runs a bench command's `main` and exits with its code, after killing what it started; a
 * failure prints its stack under `name` and exits 1.
 */
export function runMain(name: string, main: () => Promise<number>): void {
  main().then(
    (code) => {
      cleanupNow();
      process.exit(code);
    },
    (error: Error) => {
      process.stderr.write(`${name}: ${error.stack ?? error.message}\n`);
      cleanupNow();
      process.exit(1);
    },
  );
}
