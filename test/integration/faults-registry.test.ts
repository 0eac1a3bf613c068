/**
 * A SQLite registry that is locked by another process (a connection holding BEGIN EXCLUSIVE) or
 * damaged (garbage bytes), with real `tickcast` processes: a gateway starting on it fails with one
 * clear error naming the file and what to do, and a gateway already running keeps serving its
 * clients (heartbeats fail with a logged warning, without stalling the process) and recovers.
 * registry-sqlite.test.ts covers the same failures at the registry's own level.
 */
import { renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { type GatewayProcess, killSpawnedProcesses, makeTempDir, removeDir, runCli, startGatewayProcess } from '../helpers/cli.js';
import { TestClient, sleep } from '../helpers/client.js';
import { LEVEL, linesWith, waitForLog, waitForMessage } from '../helpers/logs.js';

const dirs: string[] = [];
const holders: BetterSqlite3.Database[] = [];
afterEach(async () => {
  for (const db of holders.splice(0)) if (db.open) db.close();
  await killSpawnedProcesses();
  for (const dir of dirs.splice(0)) removeDir(dir);
});

function fleet(): { root: string; file: string; env: Record<string, string> } {
  const root = makeTempDir('tickcast-faults-');
  dirs.push(root);
  const file = join(root, 'registry.db');
  // A 2 s TTL: heartbeats every ~0.7 s, so a fault spans several of them quickly.
  return { root, file, env: { TICKCAST_REGISTRY: `sqlite:${file}`, TICKCAST_REGISTRY_TTL_SECONDS: '2' } };
}

/** Another process's exclusive write lock on `file`, held until the connection commits or closes. */
function lock(file: string): BetterSqlite3.Database {
  const db = new BetterSqlite3(file);
  holders.push(db);
  db.exec('BEGIN EXCLUSIVE');
  return db;
}

/** Garbage over the database and its write-ahead log, in place (the same files, as a bad disk or copy would leave them). */
function damage(file: string): void {
  const garbage = Buffer.alloc(16_384, 0x5a);
  writeFileSync(file, garbage);
  writeFileSync(`${file}-wal`, garbage);
}

async function instances(root: string, env: Record<string, string>): Promise<{ code: number | null; stderr: string; entries: Array<Record<string, any>> }> {
  const result = await runCli(['instances', '--json'], { dataDir: root, env });
  return { code: result.code, stderr: result.stderr, entries: result.code === 0 ? JSON.parse(result.stdout) : [] };
}

/** A client subscribed to RELIANCE and receiving it. */
async function watching(gw: GatewayProcess): Promise<TestClient> {
  const client = await TestClient.authenticated(gw.url, gw.devKey!);
  expect((await client.request({ action: 'subscribe', symbols: [{ symbol: 'RELIANCE', exchange: 'NSE' }], mode: 1 })).status).toBe('success');
  await client.marketData('RELIANCE');
  return client;
}

/** Still serving, without stalls: pings answered promptly, ticks still arriving. */
async function servesPromptly(client: TestClient, rounds: number): Promise<void> {
  for (let i = 0; i < rounds; i++) {
    const sent = Date.now();
    expect(await client.request({ action: 'ping' })).toMatchObject({ type: 'pong', status: 'success' });
    // A hang catcher, not a measurement: a registry wait on the event loop took seconds here.
    expect(Date.now() - sent, 'a ping waited behind a registry lock').toBeLessThan(2000);
    client.drain();
    await client.marketData('RELIANCE');
    await sleep(250);
  }
}

describe('a registry locked by another process', () => {
  it('at start: exit 1 after the busy timeout, naming the file and what to do; once the lock goes, the start works', async () => {
    const { root, file, env } = fleet();
    expect((await instances(root, env)).code).toBe(0); // creates the registry, as any earlier run would have
    const holder = lock(file);
    const result = await runCli(['start', '--instance', 'blocked'], { dataDir: root, env: { ...env, WEBSOCKET_PORT: '0', ZMQ_PORT: '0' } });
    expect(result.code, result.stderr).toBe(1);
    expect(result.stderr).toContain(`tickcast: registry ${file}: claim failed: database is locked; another process holds a write lock on ${file}`);
    expect(result.stderr).toContain(`\`fuser ${file}\` names it); stop it and try again [STORE_FAILED]`);
    expect(result.stdout).not.toContain('is running');

    holder.exec('COMMIT');
    holder.close();
    const gw = await startGatewayProcess({ dataDir: root, args: ['--instance', 'blocked'], env });
    expect(await gw.stop()).toBe(0);
  });

  it('while running: heartbeats fail with a warning, clients are served without stalls, and it recovers when the lock goes', async () => {
    const { root, file, env } = fleet();
    const gw = await startGatewayProcess({ dataDir: root, args: ['--instance', 'steady'], env: { ...env, TICKCAST_LOG_LEVEL: 'info', TICKCAST_SIM_RATE: '20' } });
    const client = await watching(gw);

    const holder = lock(file);
    const warned = await waitForMessage(gw.stderr, 'registry heartbeat failed; still serving', LEVEL.warn);
    expect(warned.err).toContain(`registry ${file}: heartbeat failed: database is locked; another process holds a write lock on ${file}`);
    await servesPromptly(client, 6);
    await waitForLog(gw.stderr, (l) => l.msg.startsWith('registry heartbeat failed') && l.failed >= 3, 'three failed heartbeats in a row');

    holder.exec('COMMIT');
    const recovered = await waitForMessage(gw.stderr, 'registry heartbeat works again');
    expect(recovered.failed).toBeGreaterThanOrEqual(3);
    const { entries } = await instances(root, env);
    expect(entries).toEqual([expect.objectContaining({ instance: 'steady', role: 'gateway', pid: gw.child.pid, alive: true })]);
    expect(gw.child.exitCode).toBeNull();
    expect(linesWith(gw.stderr(), '').filter((l) => l.level >= LEVEL.error)).toEqual([]);
    await client.close();
  });
});

describe('a damaged registry (garbage bytes)', () => {
  it('at start: exit 1 naming the file and what to do; moved aside, the next start creates a new one', async () => {
    const { root, file, env } = fleet();
    writeFileSync(file, Buffer.alloc(16_384, 0x5a));
    const result = await runCli(['start', '--instance', 'fresh'], { dataDir: root, env: { ...env, WEBSOCKET_PORT: '0', ZMQ_PORT: '0' } });
    expect(result.code, result.stderr).toBe(1);
    expect(result.stderr).toContain(`tickcast: cannot open registry database ${file}: file is not a database; ${file} is damaged or unreadable`);
    expect(result.stderr).toContain('stop those, move it (with its -wal and -shm files) aside and start again (a new one is created) [STORE_FAILED]');

    renameSync(file, `${file}.damaged`);
    const gw = await startGatewayProcess({ dataDir: root, args: ['--instance', 'fresh'], env });
    expect((await instances(root, env)).entries).toEqual([expect.objectContaining({ instance: 'fresh', pid: gw.child.pid, alive: true })]);
    expect(await gw.stop()).toBe(0);
  });

  it('while running: the gateway keeps serving; other commands report the damaged file', async () => {
    const { root, file, env } = fleet();
    const gw = await startGatewayProcess({ dataDir: root, args: ['--instance', 'hardy'], env: { ...env, TICKCAST_LOG_LEVEL: 'info', TICKCAST_SIM_RATE: '20' } });
    const client = await watching(gw);

    damage(file);
    const listed = await instances(root, env);
    expect(listed.code).toBe(1);
    // "file is not a database" or "disk I/O error", depending on what SQLite reads first.
    expect(listed.stderr).toMatch(/cannot open registry database .+: (file is not a database|disk I\/O error); /);
    expect(listed.stderr).toContain(`${file} is damaged or unreadable; it holds only the entries of running tickcast processes`);

    // Several heartbeats and a prune later, the gateway still serves and nothing was fatal.
    await servesPromptly(client, 8);
    expect(gw.child.exitCode).toBeNull();
    expect(linesWith(gw.stderr(), '').filter((l) => l.level >= LEVEL.error)).toEqual([]);
    // Whatever SQLite still serves from its cache, a failed heartbeat is a warning naming the file.
    for (const line of linesWith(gw.stderr(), 'registry heartbeat failed')) expect(line.err).toContain(file);
    const another = await TestClient.authenticated(gw.url, gw.devKey!);
    expect(await another.request({ action: 'ping' })).toMatchObject({ type: 'pong' });
    await another.close();
    await client.close();
    expect(await gw.stop()).toBe(0);
  });
});
