/**
 * A full disk under the real `tickcast` (exit 1, one line ending in [DISK_FULL] that says "disk
 * full", names the directory and says to free space there; no stack trace; the store intact once
 * space is freed):
 * - at start, with a store already there: SQLite then fails extending its -shm file, an I/O error
 *   that used to be reported as a damaged store ("restore it from a backup");
 * - a CLI write while the store is open elsewhere (as a running gateway keeps it): SQLITE_FULL
 *   from the insert, which used to escape as a stack trace;
 * - the pepper file that `keys create` makes on a store without one: ENOSPC, which used to be
 *   CONFIG_INVALID (exit 2).
 *
 * How the disk is made full, with no hook in tickcast: a 1 MiB tmpfs mounted over the data
 * directory in a private mount namespace (`unshare -rm` as a normal user where unprivileged user
 * namespaces are allowed, `unshare -m` as root; test/helpers/confined.ts finds which), the store
 * made there first, then a filler file written until the kernel says ENOSPC and `df` shows 0 left.
 * So every error is the real one from SQLite or the kernel. A plain process with the store open
 * (better-sqlite3, as the gateway holds it) keeps its -wal and -shm in place, so the CLI's failure
 * is on its own write rather than on opening. Where the machine allows no mount namespace these
 * cases are reported as skipped, as in faults-data-dir.test.ts; the SQLITE_FULL classification is
 * also tested everywhere in test/unit/disk-full.test.ts (a real SQLITE_FULL via max_page_count).
 */
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { type RunResult, TICKCAST_BIN, killSpawnedProcesses, makeTempDir, removeDir, runProcess, tickcastEnv } from '../helpers/cli.js';
import { mountNamespace } from '../helpers/confined.js';

const dirs: string[] = [];
afterEach(async () => {
  await killSpawnedProcesses();
  for (const dir of dirs.splice(0)) removeDir(dir);
});

const namespace = mountNamespace();

/**
 * Shell helpers for the steps: `tc NAME ARGS…` runs tickcast and keeps its output under NAME in
 * the results directory (outside the tmpfs); `fill` fills the disk; `hold` opens the store in a
 * separate process and waits until it has; `free` removes the filler and that process.
 */
const PRELUDE = `
set -u
data="$1"; out="$2"; node="$3"; bin="$4"
mount -t tmpfs -o size=1m tmpfs "$data" || exit 90
tc() { name="$1"; shift; "$node" "$bin" "$@" >"$out/$name.out" 2>"$out/$name.err"; echo $? >"$out/$name.code"; }
fill() { head -c 4194304 /dev/zero >"$data/filler" 2>/dev/null; [ "$(df -P "$data" | awk 'NR==2 {print $4}')" = 0 ] || exit 91; }
hold() {
  "$node" -e 'const db = new (require("better-sqlite3"))(process.argv[1]); db.prepare("SELECT count(*) FROM sqlite_master").get(); console.log("open"); setInterval(() => {}, 1e9);' "$data/$1/tickcast.db" >"$out/holder" 2>&1 &
  holder=$!
  i=0; until grep -q open "$out/holder"; do i=$((i + 1)); [ $i -gt 300 ] && exit 92; sleep 0.1; done
}
free() { rm -f "$data/filler"; [ -n "\${holder:-}" ] && kill "$holder" && wait "$holder"; holder=; true; }
`;

interface Steps {
  dataDir: string;
  results: string;
  run(): Promise<RunResult>;
}

function scenario(script: string): Steps {
  const root = makeTempDir('tickcast-full-');
  dirs.push(root);
  const dataDir = join(root, 'data');
  const results = join(root, 'results');
  mkdirSync(dataDir);
  mkdirSync(results);
  // The registry outside the full disk: what is tested is the instance's store.
  const env = tickcastEnv(dataDir, { TICKCAST_REGISTRY: `sqlite:${join(root, 'registry.db')}`, WEBSOCKET_PORT: '0', ZMQ_PORT: '0' });
  return {
    dataDir,
    results,
    run: () => runProcess('unshare', [...namespace!, 'sh', '-c', PRELUDE + script, 'sh', dataDir, results, process.execPath, TICKCAST_BIN], { env }),
  };
}

function step(results: string, name: string): RunResult {
  const read = (ext: string): string => readFileSync(join(results, `${name}.${ext}`), 'utf8');
  return { code: Number(read('code').trim()), signal: null, stdout: read('out'), stderr: read('err') };
}

function expectDiskFull(result: RunResult, dir: string, ...mentions: string[]): void {
  expect(result.code, result.stdout + result.stderr).toBe(1);
  expect(result.stderr).toMatch(/^tickcast: .*\[DISK_FULL\]\n$/);
  expect(result.stderr.trim().split('\n')).toHaveLength(1); // one line, no stack trace
  expect(result.stderr).toContain(`disk full: no space left on the disk holding ${dir}`);
  expect(result.stderr).toContain(`free space on that disk (\`df -h ${dir}\``);
  expect(result.stderr).not.toContain('restore it from a backup');
  for (const text of mentions) expect(result.stderr).toContain(text);
}

/** The users `keys list --json` printed in the step named `list`, once space was freed (it must succeed). */
function listedUsers(results: string): string[] {
  const list = step(results, 'list');
  expect(list.code, list.stderr).toBe(0);
  return (JSON.parse(list.stdout) as { user: string }[]).map((row) => row.user);
}

describe.runIf(namespace)('a full disk (a filled tmpfs in a private mount namespace)', () => {
  it('at start with a store already there: DISK_FULL, not "damaged"; the keys are there once space is freed', async () => {
    const steps = scenario(`
      tc create keys create --user alice --json
      fill
      tc start start --instance default
      tc list-full keys list --json
      free
      tc list keys list --json
    `);
    const run = await steps.run();
    expect(run.code, run.stderr).toBe(0);
    const dir = join(steps.dataDir, 'default');
    expect(step(steps.results, 'create').code).toBe(0);
    expectDiskFull(step(steps.results, 'start'), dir, `cannot open database ${dir}/tickcast.db`);
    expect(step(steps.results, 'start').stdout).not.toContain('is running');
    expectDiskFull(step(steps.results, 'list-full'), dir);
    expect(listedUsers(steps.results)).toEqual(['alice']);
  });

  it('keys create while the store is open elsewhere: SQLITE_FULL on the insert is DISK_FULL naming the file; nothing is stored', async () => {
    const steps = scenario(`
      tc create keys create --user alice --json
      hold default
      fill
      tc create-full keys create --user bob --json
      tc set-full credentials set --user alice --broker zerodha --access-token t0k3n --api-key k3y
      free
      tc list keys list --json
    `);
    const run = await steps.run();
    expect(run.code, run.stderr).toBe(0);
    const dir = join(steps.dataDir, 'default');
    expect(step(steps.results, 'create').code).toBe(0);
    const create = step(steps.results, 'create-full');
    expectDiskFull(create, dir, `cannot write ${dir}/tickcast.db: database or disk is full`);
    expect(create.stdout).toBe(''); // no key printed for a key that was not stored
    expectDiskFull(step(steps.results, 'set-full'), dir, `cannot write ${dir}/tickcast.db: database or disk is full`);
    expect(listedUsers(steps.results)).toEqual(['alice']);
  });

  it('keys create on a store without a pepper file: ENOSPC writing it is DISK_FULL (exit 1) naming the file, and no pepper is left behind', async () => {
    // A store with no keys and no pepper file (its only key revoked, the file removed), so
    // keys create makes a new pepper before it writes anything into the store.
    const steps = scenario(`
      tc create keys create --user alice
      tc revoke keys revoke --user alice
      rm "$data/default/pepper"
      hold default
      fill
      tc create-full keys create --user bob
      ls -A "$data/default" >"$out/files-after"
      free
      tc list keys list --json
    `);
    const run = await steps.run();
    expect(run.code, run.stderr).toBe(0);
    const dir = join(steps.dataDir, 'default');
    expect(step(steps.results, 'revoke').code).toBe(0);
    expectDiskFull(step(steps.results, 'create-full'), dir, `cannot create pepper file ${dir}/pepper: ENOSPC: no space left on device`);
    expect(readFileSync(join(steps.results, 'files-after'), 'utf8').split('\n')).not.toContain('pepper');
    expect(listedUsers(steps.results)).toEqual([]);
  });
});
