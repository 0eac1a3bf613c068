/**
 * A data directory the gateway cannot use (read-only, under a regular file, on a full disk) and a
 * damaged store file, with the real `tickcast start`: each is exit 1 with one line naming the
 * directory or file and what to do, and nothing starts.
 *
 * Read-only: chmod 0500 stops a normal user but not root, so as root the directory is a read-only
 * tmpfs in a private mount namespace (test/helpers/confined.ts), or, where the machine allows no
 * mount namespace, a path under a regular file (which fails for root too). A full disk is a
 * 64 KiB tmpfs filled up, where a mount namespace is available (see docs/reliability.md).
 */
import { chmodSync, copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { type RunResult, TICKCAST_BIN, killSpawnedProcesses, makeTempDir, removeDir, runCli, runProcess, startGatewayProcess, tickcastEnv } from '../helpers/cli.js';
import { type Confinement, confined, mountNamespace } from '../helpers/confined.js';

const dirs: string[] = [];
afterEach(async () => {
  await killSpawnedProcesses();
  for (const dir of dirs.splice(0)) {
    chmodSync(dir, 0o700);
    removeDir(dir);
  }
});

function tempDir(): string {
  const dir = makeTempDir('tickcast-faults-');
  dirs.push(dir);
  return dir;
}

const asRoot = process.getuid?.() === 0;
const namespace = mountNamespace();

/** `tickcast start` with `dataDir` as TICKCAST_DATA_DIR and the registry kept elsewhere, so the data directory is what fails. */
function start(dataDir: string, confinement?: Confinement): Promise<RunResult> {
  const registry = `sqlite:${join(tempDir(), 'registry.db')}`;
  const env = tickcastEnv(dataDir, { WEBSOCKET_PORT: '0', ZMQ_PORT: '0', TICKCAST_REGISTRY: registry });
  const argv = [process.execPath, TICKCAST_BIN, 'start', '--instance', 'stored'];
  if (!confinement) return runProcess(argv[0]!, argv.slice(1), { env });
  const { command, args } = confined(dataDir, confinement, argv);
  return runProcess(command, args, { env });
}

function expectRefused(result: RunResult, ...mentions: string[]): void {
  expect(result.code, result.stdout + result.stderr).toBe(1);
  for (const text of mentions) expect(result.stderr).toContain(text);
  expect(result.stderr).toMatch(/\[STORE_FAILED\]\n$/);
  expect(result.stderr.trim().split('\n')).toHaveLength(1); // one line, no stack trace
  expect(result.stdout).not.toContain('is running');
}

describe('a data directory that cannot be written', () => {
  const how = !asRoot ? 'chmod 0500' : namespace ? 'a read-only tmpfs (root ignores chmod)' : 'a path under a regular file (root ignores chmod; no mount namespace here)';

  it(`read-only, made with ${how}: exit 1 naming the directory and TICKCAST_DATA_DIR`, async () => {
    const root = tempDir();
    let dataDir = join(root, 'data');
    let result: RunResult;
    if (!asRoot) {
      mkdirSync(dataDir, { mode: 0o500 });
      chmodSync(dataDir, 0o500);
      result = await start(dataDir);
      expectRefused(result, `data directory ${dataDir}/stored cannot be created: ${dataDir} is not writable (EACCES: permission denied)`);
    } else if (namespace) {
      mkdirSync(dataDir);
      result = await start(dataDir, 'read-only');
      expectRefused(result, `data directory ${dataDir}/stored cannot be created: ${dataDir} is not writable (EROFS: read-only file system)`);
    } else {
      writeFileSync(join(root, 'file'), 'not a directory');
      dataDir = join(root, 'file', 'data');
      result = await start(dataDir);
      expectRefused(result, `data directory ${dataDir}/stored cannot be created: ${join(root, 'file')} is a file, not a directory`);
    }
    expect(result.stderr).toContain('set TICKCAST_DATA_DIR (--data-dir) to a writable directory, or fix the permissions or the mount');
  });

  it('under a regular file (fails for root too): exit 1 saying which part is a file', async () => {
    const root = tempDir();
    writeFileSync(join(root, 'notes'), 'a file where a directory is expected');
    const dataDir = join(root, 'notes', 'data');
    expectRefused(await start(dataDir), `data directory ${dataDir}/stored cannot be created: ${join(root, 'notes')} is a file, not a directory; set TICKCAST_DATA_DIR`);
  });

  // Needs a mount namespace (root, or unprivileged user namespaces); docs/reliability.md says why /dev/full is no substitute.
  it.runIf(namespace)('on a full disk: exit 1 naming the store file and saying the disk is full', async () => {
    const dataDir = join(tempDir(), 'data');
    mkdirSync(dataDir);
    const file = `${dataDir}/stored/tickcast.db`;
    const result = await start(dataDir, 'full');
    expect(result.code, result.stdout + result.stderr).toBe(1);
    expect(result.stderr).toBe(
      `tickcast: cannot open database ${file}: database or disk is full; disk full: no space left on the disk holding ${dataDir}/stored to write tickcast.db; free space on that disk (\`df -h ${dataDir}/stored\` shows it; delete or move other files there, not the store's), then try again; nothing stored was changed [DISK_FULL]\n`,
    );
  });
});

describe('a damaged store file', () => {
  it('exit 1 naming it and what it holds; the keys commands say the same; a restored file starts', async () => {
    const dataDir = tempDir();
    const gw = await startGatewayProcess({ dataDir, args: ['--instance', 'stored'] });
    expect(await gw.stop()).toBe(0);
    const file = join(dataDir, 'stored', 'tickcast.db');
    const saved = join(dataDir, 'backup.db');
    // A backup, as an operator would keep one (the gateway stopped, so the file is complete).
    copyFileSync(file, saved);
    writeFileSync(file, Buffer.alloc(16_384, 0x5a));

    const advice = `${file} is damaged or unreadable; it holds the instance's API keys, broker credentials and symbol master: restore it from a backup`;
    expectRefused(await start(dataDir), `cannot open database ${file}: file is not a database; ${advice}`);
    const keys = await runCli(['keys', 'list', '--instance', 'stored'], { dataDir });
    expect(keys.code).toBe(1);
    expect(keys.stderr).toContain(advice);

    copyFileSync(saved, file);
    const again = await startGatewayProcess({ dataDir, args: ['--instance', 'stored'] });
    expect(again.stdout()).toMatch(/API keys\s+1 stored/); // the dev key of the first start, restored
    expect(await again.stop()).toBe(0);
  });
});
