/**
 * Running the OpenAlgo bridge: `tickcast openalgo-bridge` for a gateway started with
 * TICKCAST_OPENALGO_BRIDGE=external, the refusals of settings that cannot work, and a bridge
 * that cannot run (its users are told why, everyone else is served).
 */
import { appendFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { killSpawnedProcesses, makeTempDir, removeDir, runCli, startBridgeCliProcess, startGatewayProcess } from '../helpers/cli.js';
import { type Message, TestClient } from '../helpers/client.js';
import { FakeOpenAlgo } from '../helpers/openalgo-tree.js';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  await killSpawnedProcesses();
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function root(): string {
  const dir = makeTempDir('tickcast-bridge-cli-');
  cleanups.push(() => removeDir(dir));
  return dir;
}

const RELIANCE = { symbol: 'RELIANCE', exchange: 'NSE' };
const feedStatus = (client: TestClient, status: string, timeoutMs = 15_000): Promise<Message> => client.next((m) => m.type === 'feed_status' && m.status === status, timeoutMs);

describe('tickcast openalgo-bridge', () => {
  it('refuses to run without an OpenAlgo directory holding websocket_proxy, naming what is missing', async () => {
    const dir = root();
    const without = await runCli(['openalgo-bridge'], { dataDir: join(dir, 'data') });
    expect(without.code).toBe(2);
    expect(without.stderr).toContain('--openalgo-dir');
    const notOpenAlgo = join(dir, 'not-openalgo');
    mkdirSync(notOpenAlgo);
    writeFileSync(join(notOpenAlgo, '.env'), '');
    const wrong = await runCli(['openalgo-bridge', '--openalgo-dir', notOpenAlgo], { dataDir: join(dir, 'data') });
    expect(wrong.code).toBe(2);
    expect(wrong.stderr).toContain(join(notOpenAlgo, 'websocket_proxy', 'broker_factory.py'));
    // `on` makes the same a start failure; `auto` starts without a bridge.
    const on = await runCli(['start', '--openalgo-dir', notOpenAlgo, '--openalgo-bridge', 'on'], { dataDir: join(dir, 'data'), env: { WEBSOCKET_PORT: '0', ZMQ_PORT: '0' }, timeoutMs: 20_000 });
    expect(on.code).toBe(2);
    expect(on.stderr).toContain('TICKCAST_OPENALGO_BRIDGE=on');
  });

  it('serves the bridged users of a gateway started with TICKCAST_OPENALGO_BRIDGE=external, from the moment it runs until it stops', async () => {
    const dir = root();
    const openalgo = new FakeOpenAlgo(dir, [{ user: 'alice', broker: 'dhan', token: 'dhan-token-alice' }]);
    const dataDir = join(dir, 'data');
    const env = openalgo.env({ TICKCAST_OPENALGO_BRIDGE: 'external' });
    const gw = await startGatewayProcess({ dataDir, args: ['--openalgo-dir', openalgo.dir], env });
    const client = await TestClient.authenticated(gw.url, openalgo.key('alice'));
    cleanups.push(() => void client.close());
    const waiting = await feedStatus(client, 'reconnecting');
    expect(waiting.message).toContain('no OpenAlgo bridge is connected (run `tickcast openalgo-bridge');
    const early = await client.request({ action: 'subscribe', symbols: [RELIANCE], mode: 2 });
    expect(early.subscriptions[0].status).toBe('error');
    expect(early.subscriptions[0].message).toContain('no OpenAlgo bridge is connected');

    const bridge = startBridgeCliProcess({ dataDir, args: ['--openalgo-dir', openalgo.dir], env });
    await bridge.ready;
    await feedStatus(client, 'live');
    const reply = await client.request({ action: 'subscribe', symbols: [RELIANCE], mode: 2 });
    expect(reply.subscriptions[0].status).toBe('success');
    const tick = await client.next((m) => m.type === 'market_data', 15_000);
    expect(tick.data.fake_user).toBe('alice');

    // It is the instance's adapter `openalgo`: listed, and one at a time.
    const listed = await runCli(['instances', '--json'], { dataDir });
    const entries = JSON.parse(listed.stdout) as Array<{ role: string; name: string; alive: boolean }>;
    expect(entries.filter((e) => e.role === 'adapter').map((e) => [e.name, e.alive])).toEqual([['openalgo', true]]);
    const second = await runCli(['openalgo-bridge', '--openalgo-dir', openalgo.dir, '--wait', '5'], { dataDir, env, timeoutMs: 20_000 });
    expect(second.code).not.toBe(0);
    expect(second.stderr).toContain('adapter "openalgo" of instance "default" is already running');

    client.drain();
    expect(await bridge.stop('SIGTERM')).toBe(0);
    // Its bye: the user hears at once that the bridge is gone.
    const gone = await feedStatus(client, 'reconnecting');
    expect(gone.message).toMatch(/OpenAlgo bridge is not connected/);
  });
});

describe('a bridge that cannot run', () => {
  it('tells the bridged users why, before and after it gave up', async () => {
    const dir = root();
    const openalgo = new FakeOpenAlgo(dir, [{ user: 'alice', broker: 'dhan', token: 'dhan-token-alice' }]);
    // OpenAlgo's package fails to import (a missing dependency, say).
    appendFileSync(join(openalgo.dir, 'websocket_proxy', 'broker_factory.py'), '\nraise ImportError("No module named \'flask\'")\n');
    const gw = await startGatewayProcess({ dataDir: join(dir, 'data'), args: ['--openalgo-dir', openalgo.dir], env: openalgo.env() });
    const reason = /the OpenAlgo bridge cannot run: it exited with code 2: cannot import OpenAlgo's websocket_proxy\.broker_factory .*No module named 'flask'/;
    const alice = await TestClient.authenticated(gw.url, openalgo.key('alice'));
    cleanups.push(() => void alice.close());
    expect((await feedStatus(alice, 'down')).message).toMatch(reason);
    const reply = await alice.request({ action: 'subscribe', symbols: [RELIANCE], mode: 1 });
    expect(reply.subscriptions[0].status).toBe('error');
    expect(reply.subscriptions[0].message).toMatch(reason);
    // A client that comes later is told at once.
    const later = await TestClient.authenticated(gw.url, openalgo.key('alice'));
    cleanups.push(() => void later.close());
    expect((await feedStatus(later, 'down', 2000)).message).toMatch(reason);
  });

  it('names a Python that cannot be run', async () => {
    const dir = root();
    const openalgo = new FakeOpenAlgo(dir, [{ user: 'alice', broker: 'dhan', token: 'dhan-token-alice' }]);
    const python = join(dir, 'no-such-python');
    const gw = await startGatewayProcess({ dataDir: join(dir, 'data'), args: ['--openalgo-dir', openalgo.dir], env: openalgo.env({ TICKCAST_OPENALGO_PYTHON: python }) });
    const alice = await TestClient.authenticated(gw.url, openalgo.key('alice'));
    cleanups.push(() => void alice.close());
    const down = await feedStatus(alice, 'down');
    expect(down.message).toContain(`${python} could not be run`);
    expect(down.message).toContain('TICKCAST_OPENALGO_PYTHON');
  });
});
