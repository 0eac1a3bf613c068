/**
 * The data directory holds the store, the pepper and the control key, so whatever creates it keeps
 * it private to its owner: directories 0700 and files 0600 even under `umask 000`, where mkdir's
 * own mode would otherwise leave 0777. The real `tickcast` runs under `sh -c 'umask 000; exec …'`.
 */
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { TICKCAST_BIN, makeTempDir, removeDir, runProcess, tickcastEnv } from '../helpers/cli.js';

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) removeDir(dir);
});

/** `tickcast <args>` with umask 000 and TICKCAST_DATA_DIR `dataDir` (not created beforehand). */
function runUnderUmask000(dataDir: string, registryDir: string, args: readonly string[]) {
  const env = tickcastEnv(dataDir, { TICKCAST_REGISTRY: `sqlite:${join(registryDir, 'registry.db')}` });
  return runProcess('sh', ['-c', 'umask 000; exec "$@"', 'sh', process.execPath, TICKCAST_BIN, ...args], { env });
}

/** Every directory and file under `root` (itself included) with its permission bits. */
function modes(root: string): { dirs: Record<string, string>; files: Record<string, string> } {
  const result = { dirs: {} as Record<string, string>, files: {} as Record<string, string> };
  const walk = (path: string): void => {
    const stat = statSync(path);
    const mode = (stat.mode & 0o777).toString(8);
    if (stat.isDirectory()) {
      result.dirs[path] = mode;
      for (const name of readdirSync(path)) walk(join(path, name));
    } else {
      result.files[path] = mode;
    }
  };
  walk(root);
  return result;
}

function everyOne(entries: Record<string, string>, mode: string): Record<string, string> {
  return Object.fromEntries(Object.keys(entries).map((path) => [path, mode]));
}

describe('the data directory under umask 000', () => {
  it('tickcast keys create makes the data and instance directories 0700 and the store and pepper 0600', async () => {
    const root = makeTempDir('tickcast-umask-');
    dirs.push(root);
    const dataDir = join(root, 'data');
    const result = await runUnderUmask000(dataDir, root, ['keys', 'create', '--user', 'alice']);
    expect(result.code, result.stderr).toBe(0);

    const found = modes(dataDir);
    expect(Object.keys(found.dirs).sort()).toEqual([dataDir, join(dataDir, 'default')]);
    expect(found.dirs).toEqual(everyOne(found.dirs, '700'));
    expect(Object.keys(found.files)).toEqual(expect.arrayContaining([join(dataDir, 'default', 'tickcast.db'), join(dataDir, 'default', 'pepper')]));
    expect(found.files).toEqual(everyOne(found.files, '600'));
  });

  it('tickcast symbols import, which creates the instance directory itself, does the same', async () => {
    const root = makeTempDir('tickcast-umask-');
    dirs.push(root);
    const dataDir = join(root, 'data');
    const csv = fileURLToPath(new URL('../fixtures/kite-instruments.csv', import.meta.url));
    const result = await runUnderUmask000(dataDir, root, ['symbols', 'import', '--broker', 'zerodha', csv, '--instance', 'market']);
    expect(result.code, result.stderr).toBe(0);

    const found = modes(dataDir);
    expect(Object.keys(found.dirs).sort()).toEqual([dataDir, join(dataDir, 'market')]);
    expect(found.dirs).toEqual(everyOne(found.dirs, '700'));
    expect(Object.keys(found.files)).toContain(join(dataDir, 'market', 'tickcast.db'));
    expect(found.files).toEqual(everyOne(found.files, '600'));
  });
});
