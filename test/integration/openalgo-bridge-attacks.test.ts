/**
 * Processes posing as feed hosts. A feed host (the OpenAlgo bridge) carries users' own feeds, so
 * a process that holds the instance's control key still cannot become one where the gateway
 * routes nobody to a host, cannot take the bridged users' feeds from the bridge that serves them,
 * and cannot be a host and a broker's feed at once. The positive control: the real bridge serves.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { type GatewayProcess, REPO_ROOT, killSpawnedProcesses, makeTempDir, removeDir, startGatewayProcess } from '../helpers/cli.js';
import { TestClient } from '../helpers/client.js';
import { PYTHON } from '../helpers/openalgo-db.js';
import { FakeOpenAlgo } from '../helpers/openalgo-tree.js';

const ADAPTER = join(REPO_ROOT, 'test', 'python', 'control_adapter.py');

const cleanups: Array<() => Promise<void> | void> = [];
const pythons: ChildProcess[] = [];
afterEach(async () => {
  for (const child of pythons.splice(0)) if (child.exitCode === null) child.kill('SIGKILL');
  await killSpawnedProcesses();
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function controlEndpointOf(gw: GatewayProcess): string {
  const found = /^\s*Control\s+(tcp:\/\/\S+)/m.exec(gw.stdout())?.[1];
  if (!found) throw new Error(`no Control line in\n${gw.stdout()}`);
  return found;
}

/** The Python adapter written from docs/control-protocol.md, announcing itself as a feed host; resolves with its exit. */
function posingHost(gw: GatewayProcess, dataDir: string, { feed, brokers }: { feed: string; brokers: string }): Promise<{ code: number | null; stderr: string }> {
  const args = [ADAPTER, '--control', controlEndpointOf(gw), '--bus', gw.busEndpoint, '--key-file', join(dataDir, 'default', 'control.key'), '--instance', 'default', '--feed', feed, '--broker', 'openalgo', '--brokers', brokers, '--hosts', 'dhan', '--heartbeat-ms', '300'];
  const child = spawn(PYTHON, args, { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  pythons.push(child);
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
  return new Promise((resolve) =>
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stderr });
    }),
  );
}

function root(): string {
  const dir = makeTempDir('tickcast-host-attack-');
  cleanups.push(() => removeDir(dir));
  return dir;
}

describe('processes posing as feed hosts', () => {
  it('are refused by a gateway that routes nobody to a feed host', async () => {
    const dir = root();
    const dataDir = join(dir, 'data');
    const gw = await startGatewayProcess({ dataDir });
    const host = await posingHost(gw, dataDir, { feed: 'openalgo', brokers: '' });
    expect(host.code).toBe(1);
    expect(host.stderr).toContain('refused by the gateway: this gateway serves no users through a feed host');
  });

  it("cannot take the bridged users' feeds from the bridge, nor be a broker's feed and a host at once", async () => {
    const dir = root();
    const dataDir = join(dir, 'data');
    const openalgo = new FakeOpenAlgo(dir, [{ user: 'alice', broker: 'dhan', token: 'dhan-token-alice' }]);
    const gw = await startGatewayProcess({ dataDir, args: ['--openalgo-dir', openalgo.dir], env: openalgo.env() });
    const alice = await TestClient.authenticated(gw.url, openalgo.key('alice'));
    cleanups.push(() => void alice.close());
    const reply = await alice.request({ action: 'subscribe', symbols: [{ symbol: 'SBIN', exchange: 'NSE' }], mode: 2 });
    expect(reply.subscriptions[0].status).toBe('success');
    expect((await alice.next((m) => m.type === 'market_data', 15_000)).data.fake_user).toBe('alice');

    const second = await posingHost(gw, dataDir, { feed: 'rogue', brokers: '' });
    expect(second.code).toBe(1);
    expect(second.stderr).toMatch(/refused by the gateway: the bridged users' feeds are already served by the feed host "openalgo" \(pid \d+\)/);
    const both = await posingHost(gw, dataDir, { feed: 'rogue2', brokers: 'dhan' });
    expect(both.code).toBe(1);
    expect(both.stderr).toContain('refused by the gateway: a feed host serves users only through the feeds it opens: its brokers must be []');

    // Alice's feed is still her own adapter's.
    alice.drain();
    for (let i = 0; i < 5; i++) expect((await alice.next((m) => m.type === 'market_data', 15_000)).data.fake_user).toBe('alice');
  });
});
