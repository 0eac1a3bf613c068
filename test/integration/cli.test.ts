/**
 * The `tickcast` command end to end: `node bin/tickcast …` as a real child process (built dist/),
 * each test on its own temporary data directory. Exit codes: 0 ok, 1 runtime failure, 2 bad
 * usage or configuration.
 */
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ZmqPublisher } from '../../src/bus/zeromq.js';
import {
  type Env,
  type GatewayProcess,
  type RunResult,
  TICKCAST_BIN,
  killSpawnedProcesses,
  makeTempDir,
  removeDir,
  runCli,
  runProcess,
  startGatewayProcess,
  tickcastEnv,
} from '../helpers/cli.js';
import { TestClient, sleep } from '../helpers/client.js';

const HEX_KEY = /^[0-9a-f]{64}$/;

const dirs: string[] = [];
/** A fresh data directory, removed after the test. */
function dataDir(): string {
  const dir = makeTempDir();
  dirs.push(dir);
  return dir;
}

afterEach(async () => {
  await killSpawnedProcesses();
  for (const dir of dirs.splice(0)) removeDir(dir);
});

async function createKey(dir: string, user: string, broker?: string): Promise<{ api_key: string; replaced: boolean; user: string; broker: string }> {
  const result = await runCli(['keys', 'create', '--user', user, ...(broker ? ['--broker', broker] : []), '--json'], { dataDir: dir });
  expect(result.code, result.stderr).toBe(0);
  return JSON.parse(result.stdout) as { api_key: string; replaced: boolean; user: string; broker: string };
}

/** The auth reply for `key` (success or the error envelope). */
async function authenticate(url: string, key: string): Promise<Record<string, unknown>> {
  const client = await TestClient.connect(url);
  try {
    return await client.request({ action: 'authenticate', api_key: key });
  } finally {
    await client.close();
  }
}

describe('tickcast keys', () => {
  it('create --json prints one JSON object with a 64-hex key, the user and the broker', async () => {
    const dir = dataDir();
    const result = await runCli(['keys', 'create', '--user', 'alice', '--broker', 'zerodha', '--json'], { dataDir: dir });
    expect(result.code, result.stderr).toBe(0);
    const lines = result.stdout.trim().split('\n');
    expect(lines).toHaveLength(1);
    const created = JSON.parse(lines[0]!);
    expect(created).toMatchObject({ user: 'alice', broker: 'zerodha', replaced: false });
    expect(created.api_key).toMatch(HEX_KEY);
  });

  it('create without --json prints the key alone on stdout', async () => {
    const dir = dataDir();
    const result = await runCli(['keys', 'create', '--user', 'bob', '--broker', 'angel'], { dataDir: dir });
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toMatch(/^[0-9a-f]{64}\n$/);
    expect(result.stderr).toContain('bob');
  });

  it('list shows users and brokers but never a full key; --json is an array', async () => {
    const dir = dataDir();
    const alice = await createKey(dir, 'alice', 'zerodha');
    const bob = await createKey(dir, 'bob', 'angel');

    const table = await runCli(['keys', 'list'], { dataDir: dir });
    expect(table.code, table.stderr).toBe(0);
    for (const word of ['alice', 'zerodha', 'bob', 'angel']) expect(table.stdout).toContain(word);
    for (const key of [alice.api_key, bob.api_key]) {
      expect(table.stdout + table.stderr).not.toContain(key);
    }

    const json = await runCli(['keys', 'list', '--json'], { dataDir: dir });
    expect(json.code, json.stderr).toBe(0);
    const rows = JSON.parse(json.stdout) as Array<Record<string, unknown>>;
    expect(Array.isArray(rows)).toBe(true);
    expect(rows.map((r) => [r.user, r.broker]).sort()).toEqual([
      ['alice', 'zerodha'],
      ['bob', 'angel'],
    ]);
    for (const key of [alice.api_key, bob.api_key]) expect(json.stdout).not.toContain(key);
  });

  it('create for the same user replaces the key', async () => {
    const dir = dataDir();
    const first = await createKey(dir, 'alice', 'zerodha');
    const second = await createKey(dir, 'alice', 'zerodha');
    expect(second.replaced).toBe(true);
    expect(second.api_key).toMatch(HEX_KEY);
    expect(second.api_key).not.toBe(first.api_key);
    const list = await runCli(['keys', 'list', '--json'], { dataDir: dir });
    expect((JSON.parse(list.stdout) as unknown[]).length).toBe(1);
  });

  it('revoke removes the key; revoking again fails with a clear message', async () => {
    const dir = dataDir();
    await createKey(dir, 'alice');
    const revoked = await runCli(['keys', 'revoke', '--user', 'alice'], { dataDir: dir });
    expect(revoked.code, revoked.stderr).toBe(0);
    expect(JSON.parse((await runCli(['keys', 'list', '--json'], { dataDir: dir })).stdout)).toEqual([]);

    const again = await runCli(['keys', 'revoke', '--user', 'alice'], { dataDir: dir });
    expect(again.code).not.toBe(0);
    expect(again.stderr).toContain('alice');
    expect(again.stderr).toMatch(/no API key/i);
  });

  it('create --broker takes only brokers tickcast knows: exit 2 naming the broker and the known ones', async () => {
    const dir = dataDir();
    const unknown = await runCli(['keys', 'create', '--user', 'alice', '--broker', 'zerodah'], { dataDir: dir });
    expect(unknown.code, unknown.stderr).toBe(2);
    expect(unknown.stderr).toContain('unknown broker "zerodah"');
    expect(unknown.stderr).toContain('native brokers (zerodha, angel, dhan, upstox, shoonya, flattrade)');
    expect(unknown.stderr).toContain("OpenAlgo's brokers and simulator");
    expect(unknown.stderr).toMatch(/aliceblue, angel, .*fyers.*simulator.*zerodha/);
    expect(unknown.stderr).toContain('tickcast keys create --help');
    expect(unknown.stdout).toBe('');
    expect(existsSync(join(dir, 'default')), 'nothing is created').toBe(false);

    const help = await runCli(['keys', 'create', '--help'], { dataDir: dir });
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/zerodha,\s+angel,\s+dhan,\s+upstox,\s+shoonya,\s+flattrade/);
    expect(help.stdout).toContain('upstox');

    // OpenAlgo's brokers are known, in any case (stored as OpenAlgo spells them), and so is a
    // simulated broker the configuration names.
    expect((await createKey(dir, 'bob', 'Fyers')).broker).toBe('fyers');
    const paper = await runCli(['keys', 'create', '--user', 'carol', '--broker', 'paper', '--json'], { dataDir: dir, env: { TICKCAST_SIM_BROKERS: 'paper' } });
    expect(paper.code, paper.stderr).toBe(0);
    expect(JSON.parse(paper.stdout)).toMatchObject({ user: 'carol', broker: 'paper' });
    const list = await runCli(['keys', 'list', '--json'], { dataDir: dir });
    expect((JSON.parse(list.stdout) as Array<{ user: string; broker: string }>).map((r) => [r.user, r.broker])).toEqual([
      ['bob', 'fyers'],
      ['carol', 'paper'],
    ]);
  });

  it.each([['create'], ['revoke']])('%s without --user exits non-zero and names --user', async (command) => {
    const dir = dataDir();
    const result = await runCli(['keys', command], { dataDir: dir });
    expect(result.code).not.toBe(0);
    expect(result.code).not.toBeNull();
    expect(result.stderr).toContain('--user');
    expect(result.stdout).toBe('');
  });
});

describe('keys and the gateway share the data directory', () => {
  it('a CLI-created key authenticates, and still does after a gateway restart (one pepper file)', async () => {
    const dir = dataDir();
    const old = await createKey(dir, 'alice', 'zerodha');
    const pepperFile = join(dir, 'default', 'pepper');
    expect(existsSync(pepperFile)).toBe(true);
    const pepper = readFileSync(pepperFile, 'utf8');
    const current = await createKey(dir, 'alice', 'zerodha');
    expect(readFileSync(pepperFile, 'utf8')).toBe(pepper);

    for (let run = 0; run < 2; run++) {
      const gw = await startGatewayProcess({ dataDir: dir });
      expect(gw.devKey, 'keys exist, so no development key').toBeUndefined();
      expect(await authenticate(gw.url, current.api_key)).toMatchObject({ type: 'auth', status: 'success', user_id: 'alice', broker: 'zerodha' });
      // The replaced key no longer works.
      expect(await authenticate(gw.url, old.api_key)).toStrictEqual({ status: 'error', code: 'AUTHENTICATION_ERROR', message: 'Invalid API key' });
      expect(await gw.stop('SIGTERM')).toBe(0);
      expect(readFileSync(pepperFile, 'utf8')).toBe(pepper);
    }
  });

  it('a key revoked by the CLI stops working at the next gateway start', async () => {
    const dir = dataDir();
    const alice = await createKey(dir, 'alice');
    await createKey(dir, 'bob');
    expect((await runCli(['keys', 'revoke', '--user', 'alice'], { dataDir: dir })).code).toBe(0);
    const gw = await startGatewayProcess({ dataDir: dir });
    expect(await authenticate(gw.url, alice.api_key)).toMatchObject({ status: 'error', code: 'AUTHENTICATION_ERROR' });
    expect(await gw.stop()).toBe(0);
  });
});

describe('keys made with another pepper are refused, never silently dead', () => {
  const PEPPER_A = 'pepper-a-0123456789abcdef0123456789abcdef';
  const PEPPER_B = 'pepper-b-0123456789abcdef0123456789abcdef';

  /** Exit 2 with PEPPER_MISMATCH, naming API_KEY_PEPPER and both ways out. */
  function expectRefused(result: { code: number | null; stdout: string; stderr: string }): void {
    expect(result.code, result.stdout + result.stderr).toBe(2);
    expect(result.stderr).toContain('[PEPPER_MISMATCH]');
    expect(result.stderr).toContain('API_KEY_PEPPER');
    expect(result.stderr).toContain('made with a different pepper');
    expect(result.stderr).toContain('tickcast keys reset --instance default --yes');
    for (const secret of [PEPPER_A, PEPPER_B]) expect(result.stdout + result.stderr).not.toContain(secret);
  }

  it('another API_KEY_PEPPER: keys, credentials and start all exit 2; the right one still works', async () => {
    const dir = dataDir();
    const created = await runCli(['keys', 'create', '--user', 'alice', '--json'], { dataDir: dir, env: { API_KEY_PEPPER: PEPPER_A } });
    expect(created.code, created.stderr).toBe(0);
    const other = { API_KEY_PEPPER: PEPPER_B };
    expectRefused(await runCli(['keys', 'list'], { dataDir: dir, env: other }));
    expectRefused(await runCli(['keys', 'create', '--user', 'bob'], { dataDir: dir, env: other }));
    expectRefused(await runCli(['credentials', 'show', '--user', 'alice'], { dataDir: dir, env: other }));
    const start = await runCli(['start'], { dataDir: dir, env: { ...other, WEBSOCKET_PORT: '0', ZMQ_PORT: '0' }, timeoutMs: 15_000 });
    expectRefused(start);
    expect(start.stdout).not.toContain('running');

    const gw = await startGatewayProcess({ dataDir: dir, env: { API_KEY_PEPPER: PEPPER_A } });
    expect(await authenticate(gw.url, (JSON.parse(created.stdout) as { api_key: string }).api_key)).toMatchObject({ type: 'auth', status: 'success' });
    expect(await gw.stop()).toBe(0);
  });

  it('a lost pepper file is not replaced by a new one while keys exist; keys reset starts over', async () => {
    const dir = dataDir();
    const alice = await createKey(dir, 'alice');
    const pepperFile = join(dir, 'default', 'pepper');
    rmSync(pepperFile);
    const refused = await runCli(['keys', 'list'], { dataDir: dir });
    expectRefused(refused);
    expect(refused.stderr).toContain(`restore the pepper file ${pepperFile}`);
    expect(existsSync(pepperFile), 'no new pepper over existing keys').toBe(false);
    expectRefused(await runCli(['start'], { dataDir: dir, env: { WEBSOCKET_PORT: '0', ZMQ_PORT: '0' }, timeoutMs: 15_000 }));

    const unconfirmed = await runCli(['keys', 'reset'], { dataDir: dir });
    expect(unconfirmed.code).toBe(2);
    expect(unconfirmed.stderr).toContain('1 API key');
    expect(unconfirmed.stderr).toContain('--yes');
    const reset = await runCli(['keys', 'reset', '--yes'], { dataDir: dir });
    expect(reset.code, reset.stderr).toBe(0);
    expect(reset.stdout).toContain('deleted 1 API key');
    expect(existsSync(pepperFile)).toBe(true);

    const gw = await startGatewayProcess({ dataDir: dir });
    expect(gw.devKey, 'an empty store gets a development key again').toMatch(HEX_KEY);
    expect(await authenticate(gw.url, alice.api_key)).toMatchObject({ status: 'error', message: 'Invalid API key' });
    expect(await gw.stop()).toBe(0);
  });
});

describe('the data directory does not depend on the working directory', () => {
  /** `tickcast ARGS` run from `cwd` with TICKCAST_DATA_DIR unset and `env` over the test's own. */
  function runIn(cwd: string, root: string, args: readonly string[], env: Env = {}): Promise<RunResult> {
    return runProcess(process.execPath, [TICKCAST_BIN, ...args], { cwd, env: tickcastEnv(root, { TICKCAST_DATA_DIR: undefined, ...env }) });
  }

  it('unset, it is $XDG_DATA_HOME/tickcast (else ~/.local/share/tickcast), whatever the directory keys and start run from', async () => {
    const root = dataDir();
    const [here, there] = [join(root, 'here'), join(root, 'there')];
    for (const dir of [here, there]) mkdirSync(dir);
    const xdg = { XDG_DATA_HOME: join(root, 'xdg') };
    const created = await runIn(here, root, ['keys', 'create', '--user', 'alice', '--json'], xdg);
    expect(created.code, created.stderr).toBe(0);
    expect(existsSync(join(root, 'xdg', 'tickcast', 'default', 'tickcast.db'))).toBe(true);
    const listed = await runIn(there, root, ['keys', 'list', '--json'], xdg);
    expect(listed.code, listed.stderr).toBe(0);
    expect((JSON.parse(listed.stdout) as Array<{ user: string }>).map((r) => r.user)).toEqual(['alice']);
    // --instance picks the instance's own store under the same directory.
    const other = await runIn(there, root, ['keys', 'list', '--json', '--instance', 'desk'], xdg);
    expect(JSON.parse(other.stdout)).toEqual([]);
    expect(existsSync(join(root, 'xdg', 'tickcast', 'desk', 'tickcast.db'))).toBe(true);

    // The gateway says where, and serves the key made from the other directory.
    const gw = await startGatewayProcess({ dataDir: root, env: { TICKCAST_DATA_DIR: undefined, ...xdg } });
    expect(gw.stdout()).toContain(`Data       ${join(root, 'xdg', 'tickcast', 'default')}\n`);
    expect(await authenticate(gw.url, (JSON.parse(created.stdout) as { api_key: string }).api_key)).toMatchObject({ type: 'auth', status: 'success' });
    expect(await gw.stop()).toBe(0);

    // Without XDG_DATA_HOME (or with a relative one, which the XDG spec says to ignore): under HOME.
    const home = { HOME: join(root, 'home'), XDG_DATA_HOME: 'relative/dir' };
    expect((await runIn(here, root, ['keys', 'create', '--user', 'bob'], home)).code).toBe(0);
    expect(existsSync(join(root, 'home', '.local', 'share', 'tickcast', 'default', 'tickcast.db'))).toBe(true);
    expect(existsSync(join(here, 'relative'))).toBe(false);
  });

  it('a relative TICKCAST_DATA_DIR is taken from the working directory', async () => {
    const root = dataDir();
    const here = join(root, 'here');
    mkdirSync(here);
    expect((await runIn(here, root, ['keys', 'create', '--user', 'alice'], { TICKCAST_DATA_DIR: 'state' })).code).toBe(0);
    expect(existsSync(join(here, 'state', 'default', 'tickcast.db'))).toBe(true);
  });

  it('a store left in ./data by an earlier version is pointed at, not silently replaced', async () => {
    const root = dataDir();
    const here = join(root, 'here');
    mkdirSync(here);
    // Where TICKCAST_DATA_DIR used to default to.
    expect((await runIn(here, root, ['keys', 'create', '--user', 'alice'], { TICKCAST_DATA_DIR: './data' })).code).toBe(0);
    const xdg = { XDG_DATA_HOME: join(root, 'xdg') };
    const moved = join(root, 'xdg', 'tickcast', 'default');
    for (const args of [['keys', 'list'], ['start']]) {
      const refused = await runIn(here, root, args, { ...xdg, WEBSOCKET_PORT: '0', ZMQ_PORT: '0' });
      expect(refused.code, refused.stdout + refused.stderr).toBe(2);
      expect(refused.stderr).toContain(`has a store in ${join(here, 'data', 'default')}`);
      expect(refused.stderr).toContain(`mv ${join(here, 'data', 'default')} ${moved}`);
      expect(refused.stderr).toContain(`TICKCAST_DATA_DIR=${join(here, 'data')}`);
      expect(refused.stdout).not.toContain('running');
    }
    // From any other directory nothing points there: the new location is used.
    expect((await runIn(root, root, ['keys', 'list'], xdg)).code).toBe(0);
  });
});

describe('tickcast start', () => {
  it('on an empty data directory prints the URL and a development key that authenticates', async () => {
    const dir = dataDir();
    const gw = await startGatewayProcess({ dataDir: dir, env: { TICKCAST_SIM_RATE: '20' } });
    expect(gw.url).toMatch(/^ws:\/\/127\.0\.0\.1:\d+$/);
    expect(gw.busEndpoint).toMatch(/^tcp:\/\/127\.0\.0\.1:\d+$/);
    expect(gw.devKey).toMatch(HEX_KEY);

    const client = await TestClient.authenticated(gw.url, gw.devKey!);
    expect(await client.request({ action: 'get_broker_info' })).toMatchObject({ user_id: 'dev', broker: 'simulator' });
    const reply = await client.request({ action: 'subscribe', symbols: [{ symbol: 'RELIANCE', exchange: 'NSE' }], mode: 1 });
    expect(reply.status).toBe('success');
    expect(await client.marketData('RELIANCE', 'NSE')).toMatchObject({ type: 'market_data', mode: 1 });

    // SIGTERM: clients are told the server is going away, and the process exits 0.
    const stopped = gw.stop('SIGTERM');
    expect((await client.closed).code).toBe(1001);
    expect(await stopped).toBe(0);

    // The second start on the same directory creates no new key; the first still works.
    const again = await startGatewayProcess({ dataDir: dir });
    expect(again.devKey).toBeUndefined();
    expect(again.stdout()).not.toMatch(/[0-9a-f]{64}/);
    expect(await authenticate(again.url, gw.devKey!)).toMatchObject({ status: 'success', user_id: 'dev' });
    expect(await again.stop('SIGINT')).toBe(0);
  });

  it('SIGTERM closes every connected client with 1001', async () => {
    const gw = await startGatewayProcess({ dataDir: dataDir() });
    const authed = await TestClient.authenticated(gw.url, gw.devKey!);
    const anonymous = await TestClient.connect(gw.url);
    const stopped = gw.stop('SIGTERM');
    expect((await authed.closed).code).toBe(1001);
    expect((await anonymous.closed).code).toBe(1001);
    expect(await stopped).toBe(0);
  });
});

describe('bad configuration exits 2, names the setting and what is allowed, and changes nothing', () => {
  const cases: Array<{ name: string; args?: string[]; env?: Env; mentions: string[]; hidden?: string }> = [
    { name: 'WEBSOCKET_PORT=abc', env: { WEBSOCKET_PORT: 'abc' }, mentions: ['WEBSOCKET_PORT', 'integer from 1 to 65535'] },
    { name: 'ZMQ_PORT=70000', env: { ZMQ_PORT: '70000' }, mentions: ['ZMQ_PORT', 'integer from 1 to 65535'] },
    {
      name: 'API_KEY_PEPPER too short',
      env: { API_KEY_PEPPER: 'shortsecret' },
      mentions: ['API_KEY_PEPPER', 'at least 32 characters'],
      hidden: 'shortsecret',
    },
    { name: 'TICKCAST_FEED=bogus', env: { TICKCAST_FEED: 'bogus' }, mentions: ['TICKCAST_FEED', 'simulator', 'none'] },
    { name: 'TICKCAST_SIM_RATE=-1', env: { TICKCAST_SIM_RATE: '-1' }, mentions: ['TICKCAST_SIM_RATE', 'greater than 0'] },
    { name: 'unknown TICKCAST_TYPO', env: { TICKCAST_TYPO: '1' }, mentions: ['TICKCAST_TYPO', 'not a tickcast setting'] },
    { name: '--port abc', args: ['--port', 'abc'], mentions: ['--port', 'integer from 1 to 65535'] },
    { name: 'an unknown flag', args: ['--no-such-flag'], mentions: ['--no-such-flag'] },
  ];

  it.each(cases)('start with $name', async ({ args = [], env = {}, mentions, hidden }) => {
    const root = dataDir();
    const dir = join(root, 'data');
    // Ports pinned to 0 so that, should validation wrongly pass, nothing collides with a real gateway.
    const result = await runCli(['start', ...args], { dataDir: dir, env: { WEBSOCKET_PORT: '0', ZMQ_PORT: '0', ...env }, timeoutMs: 15_000 });
    expect(result.code, result.stdout + result.stderr).toBe(2);
    for (const text of mentions) expect(result.stderr).toContain(text);
    if (hidden) expect(result.stdout + result.stderr).not.toContain(hidden);
    expect(result.stdout).not.toContain('running');
    expect(existsSync(dir), 'the data directory must not be created').toBe(false);
  });

  it('keys create with a bad setting exits 2 and creates nothing', async () => {
    const root = dataDir();
    const dir = join(root, 'data');
    const result = await runCli(['keys', 'create', '--user', 'alice'], { dataDir: dir, env: { API_KEY_PEPPER: 'x' } });
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('API_KEY_PEPPER');
    expect(result.stdout).toBe('');
    expect(existsSync(dir)).toBe(false);
  });
});

describe('a pinned port that is taken', () => {
  /** The first gateway must keep serving after the second fails to start. */
  async function stillServes(first: GatewayProcess): Promise<void> {
    expect(first.child.exitCode).toBeNull();
    const client = await TestClient.authenticated(first.url, first.devKey!);
    expect(await client.request({ action: 'ping' })).toMatchObject({ type: 'pong', status: 'success' });
    await client.close();
  }

  it('WEBSOCKET_PORT in use: exit 1 with a message naming WEBSOCKET_PORT', async () => {
    const first = await startGatewayProcess({ dataDir: dataDir() });
    const result = await runCli(['start'], { dataDir: dataDir(), env: { WEBSOCKET_PORT: String(first.wsPort), ZMQ_PORT: '0' }, timeoutMs: 15_000 });
    expect(result.code, result.stderr).toBe(1);
    expect(result.stderr).toContain(`WEBSOCKET_PORT: tcp://127.0.0.1:${first.wsPort} is already in use by a process outside tickcast`);
    // …and how to run beside it: the port was set by hand, so another port (not another name) is the way.
    expect(result.stderr).toContain('To run beside it, pick another port with --port N (or WEBSOCKET_PORT=N; 0 picks a free one). [PORT_IN_USE]');
    expect(result.stdout).not.toContain('running');
    await stillServes(first);
  });

  it('ZMQ_PORT in use: exit 1 with a message naming ZMQ_PORT', async () => {
    const first = await startGatewayProcess({ dataDir: dataDir() });
    const result = await runCli(['start'], { dataDir: dataDir(), env: { WEBSOCKET_PORT: '0', ZMQ_PORT: String(first.busPort) }, timeoutMs: 15_000 });
    expect(result.code, result.stderr).toBe(1);
    expect(result.stderr).toContain(`ZMQ_PORT: tcp://127.0.0.1:${first.busPort} is already in use by`);
    expect(result.stderr).toContain('pick another port with --zmq-port N (or ZMQ_PORT=N; 0 picks a free one)');
    expect(result.stdout).not.toContain('running');
    await stillServes(first);
  });
});

describe('start --feed none', () => {
  it('accepts any well-formed symbol and sends nothing until an external publisher does', async () => {
    // A high simulator rate: if a simulator ran anyway, ticks would arrive at once.
    const gw = await startGatewayProcess({ dataDir: dataDir(), args: ['--feed', 'none'], env: { TICKCAST_SIM_RATE: '100' } });
    expect(gw.stdout()).toMatch(/Feed\s+none/);
    const client = await TestClient.authenticated(gw.url, gw.devKey!);
    const reply = await client.request({
      action: 'subscribe',
      symbols: [
        { symbol: 'RELIANCE', exchange: 'NSE' },
        { symbol: 'NO_SUCH_THING', exchange: 'NSE' },
        { symbol: 'NIFTY', exchange: 'NSE_INDEX' },
      ],
      mode: 1,
    });
    expect(reply.status).toBe('success');
    expect(reply.subscriptions.map((s: Record<string, unknown>) => s.status)).toEqual(['success', 'success', 'success']);

    await sleep(1000);
    expect(client.messages.filter((m) => m.type === 'market_data')).toEqual([]);

    const payload = '{"ltp":4242.25,"symbol":"NO_SUCH_THING","exchange":"NSE","timestamp":1}';
    const publisher = new ZmqPublisher({ endpoint: gw.busEndpoint });
    try {
      // Re-send until it arrives: a freshly connected PUB loses what it sends before the handshake.
      const arrived = client.marketData('NO_SUCH_THING', 'NSE');
      const timer = setInterval(() => publisher.publish('NSE_NO_SUCH_THING_LTP', payload), 100);
      try {
        const tick = await arrived;
        expect(tick).toStrictEqual({ type: 'market_data', symbol: 'NO_SUCH_THING', exchange: 'NSE', mode: 1, data: JSON.parse(payload), broker: 'simulator' });
      } finally {
        clearInterval(timer);
      }
    } finally {
      await publisher.close();
    }
    expect(client.messages.filter((m) => m.type === 'market_data' && m.symbol !== 'NO_SUCH_THING')).toEqual([]);
    await client.close();
    expect(await gw.stop()).toBe(0);
  });
});
