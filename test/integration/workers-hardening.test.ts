/**
 * `tickcast start --workers 2` against a local attacker, as real processes: the primary's bus
 * fan-out (every tick and every user's order updates) is a socket file in a 0700 directory that
 * another user cannot open and no abstract name exposes, cleaned up at shutdown and after a
 * killed primary; and the per-key connection and failed-key limits count the whole instance,
 * whichever worker a connection lands on.
 */
import { spawn } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { connect } from 'node:net';
import { dirname } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { type Env, type GatewayProcess, killSpawnedProcesses, makeTempDir, removeDir, startGatewayProcess, workerPids } from '../helpers/cli.js';
import { TestClient, sleep, waitFor } from '../helpers/client.js';

const dirs: string[] = [];
afterEach(async () => {
  await killSpawnedProcesses();
  for (const dir of dirs.splice(0)) removeDir(dir);
});

async function startWorkers(env: Env = {}): Promise<GatewayProcess> {
  const dir = makeTempDir();
  dirs.push(dir);
  return startGatewayProcess({ dataDir: dir, args: ['--workers', '2', '--sim-rate', '20'], env: { TICKCAST_LOG_LEVEL: 'info', ...env } });
}

/** The primary's fan-out endpoint, from its log. */
async function fanoutOf(gateway: GatewayProcess): Promise<string> {
  await waitFor(() => gateway.stderr().includes('bus fan-out to the workers bound'), 10_000);
  const line = gateway.stderr().split('\n').find((entry) => entry.includes('bus fan-out to the workers bound'))!;
  return (JSON.parse(line) as { fanout: string }).fanout;
}

/** Connects to a Unix socket (`\0name` for an abstract one) as this process: 'connected' or the error code. */
function tryConnect(path: string): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect({ path });
    socket.once('connect', () => {
      socket.destroy();
      resolve('connected');
    });
    socket.once('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? error.message));
  });
}

/** The same, from a process running as the unprivileged user `nobody`. */
function tryConnectAsNobody(path: string): Promise<string> {
  const script = `const s=require('net').connect({path:process.argv[1]});s.once('connect',()=>{console.log('connected');s.destroy()});s.once('error',(e)=>console.log(e.code))`;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['-e', script, path], { uid: 65534, gid: 65534, cwd: '/', env: {}, stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
    child.once('error', reject);
    child.once('close', () => resolve(out.trim()));
  });
}

describe('tickcast start --workers 2: the bus fan-out', () => {
  it('is a socket file in a 0700 directory of its own, not an abstract name any local process can read; workers still stream; removed at shutdown', async () => {
    const gateway = await startWorkers();
    const fanout = await fanoutOf(gateway);
    expect(fanout).toMatch(/^ipc:\/\/\//);
    expect(fanout).not.toMatch(/^ipc:\/\/@/);
    const socketPath = fanout.slice('ipc://'.length);
    const dir = dirname(socketPath);
    const stat = statSync(dir);
    expect(stat.mode & 0o777).toBe(0o700);
    expect(stat.uid).toBe(process.getuid!());
    expect(statSync(socketPath).isSocket()).toBe(true);

    // The attack: the name the primary used to bind, open to every local process, is gone.
    expect(await tryConnect(`\0tickcast-default-${gateway.child.pid}-workers`)).toBe('ECONNREFUSED');
    // The socket file is live (its owner can connect) ...
    expect(await tryConnect(socketPath)).toBe('connected');
    // ... and another user cannot (root passes every permission check, so only root can switch to one to see it).
    if (process.getuid!() === 0) expect(await tryConnectAsNobody(socketPath)).toBe('EACCES');

    await waitFor(() => workerPids(gateway).size === 2, 10_000);
    const clients: TestClient[] = [];
    for (let i = 0; i < 4; i++) {
      const client = await TestClient.authenticated(gateway.url, gateway.devKey!);
      expect(await client.request({ action: 'subscribe', symbols: [{ exchange: 'NSE', symbol: 'RELIANCE' }], mode: 1 })).toMatchObject({ status: 'success' });
      clients.push(client);
    }
    for (const client of clients) expect(await client.marketData('RELIANCE')).toMatchObject({ exchange: 'NSE', symbol: 'RELIANCE' });

    expect(await gateway.stop('SIGTERM')).toBe(0);
    expect(existsSync(dir)).toBe(false);
  }, 60_000);

  it("is removed by the next primary when the last one was killed", async () => {
    const killed = await startWorkers();
    const dir = dirname((await fanoutOf(killed)).slice('ipc://'.length));
    await waitFor(() => workerPids(killed).size === 2, 10_000);
    killed.child.kill('SIGKILL');
    await killed.exited;
    expect(existsSync(dir)).toBe(true);

    const next = await startWorkers();
    const own = dirname((await fanoutOf(next)).slice('ipc://'.length));
    expect(own).not.toBe(dir);
    expect(existsSync(dir)).toBe(false);
    expect(existsSync(own)).toBe(true);
    expect(await next.stop('SIGTERM')).toBe(0);
  }, 60_000);
});

const authenticate = async (gateway: GatewayProcess, apiKey: string): Promise<{ client: TestClient; reply: Record<string, unknown> }> => {
  const client = await TestClient.connect(gateway.url);
  return { client, reply: (await client.request({ action: 'authenticate', api_key: apiKey })) as Record<string, unknown> };
};

describe('tickcast start --workers 2: limits per instance', () => {
  it('refuses a key its third connection whichever worker it lands on, and counts a closed one or a dead worker\'s as gone', async () => {
    const gateway = await startWorkers({ TICKCAST_MAX_CONNECTIONS_PER_KEY: '2' });
    await waitFor(() => workerPids(gateway).size === 2, 10_000);
    const key = gateway.devKey!;
    // The cluster hands connections to the workers in turn: one each, then one more each.
    const first = await TestClient.authenticated(gateway.url, key);
    const second = await TestClient.authenticated(gateway.url, key);
    for (let i = 0; i < 4; i++) {
      const { client, reply } = await authenticate(gateway, key);
      expect({ i, reply }).toStrictEqual({ i, reply: { status: 'error', code: 'LIMIT_EXCEEDED', message: 'Too many connections for this API key (limit 2)' } });
      await client.close();
    }
    const status = (await (await fetch(`${gateway.url.replace('ws', 'http')}/api/status`)).json()) as { per_worker: Array<{ authenticated: number }> };
    expect(status.per_worker.map((worker) => worker.authenticated)).toEqual([1, 1]);

    // A closed connection no longer counts, on whichever worker it was.
    await first.close();
    let again: { client: TestClient; reply: Record<string, unknown> } | undefined;
    for (let i = 0; i < 50 && again?.reply.status !== 'success'; i++) {
      await again?.client.close();
      again = await authenticate(gateway, key);
      if (again.reply.status !== 'success') await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(again!.reply).toMatchObject({ type: 'auth', status: 'success' });
    expect((await authenticate(gateway, key)).reply).toMatchObject({ code: 'LIMIT_EXCEEDED' });

    // Nor do the connections of a worker that died.
    const perWorker = ((await (await fetch(`${gateway.url.replace('ws', 'http')}/api/status`)).json()) as { per_worker: Array<{ worker: number; authenticated: number }> }).per_worker;
    const victim = perWorker.find((worker) => worker.authenticated > 0)!;
    process.kill(workerPids(gateway).get(victim.worker)!, 'SIGKILL');
    await Promise.race([second.closed, again!.client.closed]);
    await waitFor(() => (gateway.stderr().match(/gateway worker listening/g) ?? []).length === 3, 20_000);
    const fresh: string[] = [];
    for (let i = 0; i <= victim.authenticated; i++) fresh.push(String((await authenticate(gateway, key)).reply.status));
    expect(fresh).toEqual([...Array<string>(victim.authenticated).fill('success'), 'error']);
    expect(await gateway.stop('SIGTERM')).toBe(0);
  }, 90_000);

  it('counts wrong keys from an address across both workers together', async () => {
    const gateway = await startWorkers({ TICKCAST_AUTH_FAILURES: '2' });
    await waitFor(() => workerPids(gateway).size === 2, 10_000);
    const wrong = 'f'.repeat(64);
    // Within the allowance: one wrong key on each worker, answered at once.
    for (let i = 0; i < 2; i++) expect((await authenticate(gateway, wrong)).reply).toMatchObject({ status: 'error', message: 'Invalid API key' });
    // Past it, counted for the instance: the next wrong key's answer is held back (1 s) on
    // whichever worker it lands. A valid key sent once that key has been checked is let in at
    // once, so its answer comes first; counted per worker, the wrong key's would (that worker has
    // seen one failure, within its own allowance of two) and come first.
    const order: string[] = [];
    const wrongClient = await TestClient.connect(gateway.url);
    const wrongAnswer = wrongClient.request({ action: 'authenticate', api_key: wrong }).then((reply) => order.push(`wrong: ${String(reply.message)}`));
    await sleep(200); // the wrong key's own check is a few milliseconds
    for (;;) {
      // A valid key arriving while the wrong one is still being checked is told to retry.
      const { reply } = await authenticate(gateway, gateway.devKey!);
      if (reply.status === 'success') break;
      expect(reply.message).toMatch(/^Too many failed authentication attempts; retry in \d+ s$/);
      await sleep(50);
    }
    order.push('valid: success');
    await wrongAnswer;
    expect(order).toEqual(['valid: success', 'wrong: Invalid API key']);
    // A valid key is still let in at once, on either worker.
    for (let i = 0; i < 2; i++) expect((await authenticate(gateway, gateway.devKey!)).reply).toMatchObject({ type: 'auth', status: 'success' });
    expect(await gateway.stop('SIGTERM')).toBe(0);
  }, 60_000);
});
