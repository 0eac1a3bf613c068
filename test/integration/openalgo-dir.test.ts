/**
 * Running from an OpenAlgo directory (`--openalgo-dir DIR`): DIR/.env configures the gateway
 * with OpenAlgo's names, the proxy settings tickcast does not use are named once at start, a bad
 * directory exits 2 naming the file and the variable, and the stats file OpenAlgo's Health
 * Monitor reads (DIR/log/ws_proxy_stats.json) appears, holds its fields, follows tickcast's
 * figures and is only ever replaced whole.
 */
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load.js';
import { type RunningInstance, startGateway } from '../../src/roles/gateway.js';
import { silentLogger } from '../../src/observability/logger.js';
import type { Ticker } from '../../src/observability/openalgo-stats.js';
import { killSpawnedProcesses, makeTempDir, removeDir, runCli, startGatewayProcess } from '../helpers/cli.js';
import { TestClient, sleep, waitUntil } from '../helpers/client.js';

const PEPPER = '0123456789abcdef'.repeat(4);
const SALT = 'fedcba9876543210'.repeat(2);

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  await killSpawnedProcesses();
});

/** A temporary OpenAlgo-shaped directory: a .env in OpenAlgo's own style, no log/ yet. */
function openAlgoDir(extra = ''): { root: string; dir: string; envFile: string; statsFile: string } {
  const root = makeTempDir('tickcast-openalgo-');
  cleanups.push(() => removeDir(root));
  const dir = join(root, 'openalgo');
  mkdirSync(dir);
  const envFile = join(dir, '.env');
  writeFileSync(
    envFile,
    [
      '# OpenAlgo Environment Configuration File',
      "ENV_CONFIG_VERSION = '1.0.7'",
      "APP_KEY = 'cafe'",
      `API_KEY_PEPPER = '${PEPPER}'`,
      `FERNET_SALT = '${SALT}'`,
      "FLASK_PORT='5000'",
      "WEBSOCKET_URL='ws://127.0.0.1:8765'",
      "WS_AUTH_GRACE_SECONDS='15'",
      "WS_MAX_QUEUE='1024'",
      "WS_STALE_TICK_WARN_SECONDS = '120'",
      "MAX_SYMBOLS_PER_WEBSOCKET='1000'",
      "ENABLE_CONNECTION_POOLING='true'",
      "VALID_BROKERS = 'zerodha,angel,simulator'",
      "CORS_ENABLED = 'TRUE'",
      extra,
    ].join('\n'),
  );
  return { root, dir, envFile, statsFile: join(dir, 'log', 'ws_proxy_stats.json') };
}

interface Stats {
  timestamp: number;
  total_connections: number;
  total_symbols: number;
  clients_connected: number;
  brokers: string[];
}

/** The file as the Health Monitor takes it (utils/health_monitor.py, get_websocket_metrics). */
function readStats(file: string): Stats {
  const stats = JSON.parse(readFileSync(file, 'utf8')) as Stats;
  expect(Object.keys(stats)).toEqual(['timestamp', 'total_connections', 'total_symbols', 'clients_connected', 'brokers']);
  expect(typeof stats.timestamp).toBe('number');
  // Fresh: the monitor ignores a snapshot a minute old.
  expect(Math.abs(Date.now() / 1000 - stats.timestamp)).toBeLessThan(60);
  for (const count of [stats.total_connections, stats.total_symbols, stats.clients_connected]) expect(Number.isInteger(count)).toBe(true);
  expect(Array.isArray(stats.brokers) && stats.brokers.every((b) => typeof b === 'string')).toBe(true);
  return stats;
}

/** Fires every few milliseconds instead of OpenAlgo's 10 s, so a test sees many writes. */
const fastTicker: Ticker = {
  every(_ms, tick) {
    const timer = setInterval(tick, 5);
    return () => clearInterval(timer);
  },
};

async function startFromOpenAlgoDir(dir: string, root: string): Promise<RunningInstance> {
  const dataDir = join(root, 'data');
  const result = loadConfig({
    cwd: root,
    env: {
      TICKCAST_OPENALGO_DIR: dir,
      TICKCAST_DATA_DIR: dataDir,
      TICKCAST_REGISTRY: `sqlite:${join(root, 'registry.db')}`,
      // Free ports: the environment is above OpenAlgo's .env.
      WEBSOCKET_PORT: '0',
      ZMQ_PORT: '0',
      TICKCAST_DEV_KEY: 'false',
      TICKCAST_SIM_RATE: '20',
      TICKCAST_LOG_LEVEL: 'silent',
    },
  });
  if (!result.ok) throw new Error(result.errors.join('\n'));
  expect(result.config.auth.pepper).toBe(PEPPER); // taken from OpenAlgo's .env
  const instance = await startGateway(result.config, { logger: silentLogger(), ticker: fastTicker });
  cleanups.push(() => instance.stop());
  return instance;
}

describe("OpenAlgo's Health Monitor stats file", () => {
  it('appears under DIR/log (created), with the fields the monitor reads, following the gateway', async () => {
    const { root, dir, statsFile } = openAlgoDir();
    expect(existsSync(join(dir, 'log'))).toBe(false);
    const gw = await startFromOpenAlgoDir(dir, root);
    await waitUntil(() => existsSync(statsFile), 'the stats file');
    expect(readStats(statsFile)).toMatchObject({ total_connections: 0, total_symbols: 0, clients_connected: 0, brokers: [] });

    const alice = await TestClient.authenticated(gw.url, (await gw.keys.create('alice', 'simulator')).apiKey);
    const bob = await TestClient.authenticated(gw.url, (await gw.keys.create('bob', 'simulator')).apiKey);
    const anonymous = await TestClient.connect(gw.url); // counted as connected, as OpenAlgo counts every socket
    expect((await alice.request({ action: 'subscribe', symbols: [{ symbol: 'RELIANCE', exchange: 'NSE' }, { symbol: 'TCS', exchange: 'NSE' }], mode: 1 })).status).toBe('success');
    expect((await alice.request({ action: 'subscribe', symbols: [{ symbol: 'RELIANCE', exchange: 'NSE' }], mode: 3 })).status).toBe('success');
    expect((await bob.request({ action: 'subscribe', symbols: [{ symbol: 'RELIANCE', exchange: 'NSE' }], mode: 1 })).status).toBe('success');
    // Keys are (symbol, exchange, mode): RELIANCE LTP, RELIANCE Depth, TCS LTP.
    const wanted = { total_connections: 2, total_symbols: 3, clients_connected: 3, brokers: ['simulator', 'simulator'] };
    await waitUntil(() => JSON.stringify({ ...readStats(statsFile), timestamp: 0 }) === JSON.stringify({ timestamp: 0, ...wanted }), 'the stats with two users');

    await Promise.all([alice.close(), bob.close(), anonymous.close()]);
    await waitUntil(() => readStats(statsFile).clients_connected === 0, 'the stats after everyone left');
    expect(readStats(statsFile)).toMatchObject({ total_connections: 0, total_symbols: 0, brokers: [] });
  });

  it('is replaced atomically: a reader polling it never sees a partial or missing file', async () => {
    const { root, dir, statsFile } = openAlgoDir();
    const gw = await startFromOpenAlgoDir(dir, root);
    await waitUntil(() => existsSync(statsFile), 'the stats file');
    const client = await TestClient.authenticated(gw.url, (await gw.keys.create('carol', 'simulator')).apiKey);
    await client.request({ action: 'subscribe', symbols: [{ symbol: 'INFY', exchange: 'NSE' }], mode: 2 });

    // Read as fast as possible while the writer replaces the file every 5 ms; count distinct versions.
    const versions = new Set<number>();
    let reads = 0;
    while (versions.size < 100) {
      const text = readFileSync(statsFile, 'utf8'); // throws if the file is ever missing
      const stats = JSON.parse(text) as Stats; // throws on half a file
      expect(text.endsWith('}')).toBe(true);
      versions.add(stats.timestamp);
      reads++;
      if (reads % 20 === 0) await sleep(1); // let the writer run
      if (reads > 1_000_000) throw new Error('the stats file stopped changing');
    }
    expect(readStats(statsFile)).toMatchObject({ clients_connected: 1, total_connections: 1, total_symbols: 1, brokers: ['simulator'] });
    // No temporary file is left behind beside it once writes stop.
    await gw.stop();
    expect(readFileSync(statsFile, 'utf8')).toMatch(/^\{"timestamp": /);
    expect(readdirSync(join(dir, 'log'))).toEqual(['ws_proxy_stats.json']);
    await client.close();
  });
});

describe('tickcast start --openalgo-dir', () => {
  it("runs from OpenAlgo's .env, names the proxy settings it does not use once, and writes the stats file", async () => {
    const { root, dir, statsFile } = openAlgoDir();
    const gw = await startGatewayProcess({ dataDir: join(root, 'data'), args: ['--openalgo-dir', dir], env: { TICKCAST_LOG_LEVEL: 'info' } });
    const summary = gw.stdout();
    const line = 'OpenAlgo settings not used by tickcast: WS_MAX_QUEUE, WS_STALE_TICK_WARN_SECONDS, MAX_SYMBOLS_PER_WEBSOCKET, ENABLE_CONNECTION_POOLING';
    expect(summary).toContain(line);
    // Once, in one line; the Flask app's settings are not listed.
    expect((summary + gw.stderr()).split('OpenAlgo settings not used by tickcast').length - 1).toBe(1);
    for (const name of ['FLASK_PORT', 'WEBSOCKET_URL', 'CORS_ENABLED', 'APP_KEY', 'ENV_CONFIG_VERSION']) expect(summary).not.toContain(name);
    expect(summary).toContain(`${join(dir, '.env')} read`);
    expect(summary).toContain(statsFile);

    const client = await TestClient.authenticated(gw.url, gw.devKey!);
    expect(await client.request({ action: 'get_supported_brokers' })).toMatchObject({ brokers: ['zerodha', 'angel', 'simulator'] });
    await waitUntil(() => existsSync(statsFile), 'the stats file', 15_000);
    readStats(statsFile);
    await client.close();
    expect(await gw.stop('SIGTERM')).toBe(0);
  });

  it('with --workers 2, the stats combine both workers', async () => {
    const { root, dir, statsFile } = openAlgoDir();
    const gw = await startGatewayProcess({ dataDir: join(root, 'data'), args: ['--openalgo-dir', dir, '--workers', '2'] });
    const clients: TestClient[] = [];
    for (let i = 0; i < 4; i++) {
      const client = await TestClient.authenticated(gw.url, gw.devKey!);
      await client.request({ action: 'subscribe', symbols: [{ symbol: 'RELIANCE', exchange: 'NSE' }, { symbol: ['INFY', 'TCS', 'ITC', 'SBIN'][i]!, exchange: 'NSE' }], mode: 1 });
      clients.push(client);
    }
    // The next write (OpenAlgo's 10 s cadence) has all four clients, whichever worker holds them.
    await waitUntil(() => existsSync(statsFile) && readStats(statsFile).clients_connected === 4, 'the stats of both workers', 25_000);
    expect(readStats(statsFile)).toMatchObject({ total_connections: 1, total_symbols: 5, brokers: ['simulator'] });
    for (const client of clients) await client.close();
    expect(await gw.stop('SIGTERM')).toBe(0);
  });
});

describe('a bad OpenAlgo directory exits 2, naming the file and the variable', () => {
  const cases = [
    { name: 'a directory that does not exist', make: (root: string) => join(root, 'nowhere'), mentions: ['TICKCAST_OPENALGO_DIR', '--openalgo-dir', 'nowhere', 'does not exist'] },
    {
      name: 'a directory without a .env',
      make: (root: string) => {
        mkdirSync(join(root, 'empty'));
        return join(root, 'empty');
      },
      mentions: ['--openalgo-dir', join('empty', '.env'), 'does not exist'],
    },
    { name: 'a bad value in its .env', make: () => openAlgoDir("ZMQ_HOST = 'not a host'").dir, mentions: ['ZMQ_HOST="not a host"', join('openalgo', '.env'), 'host name or IP address'] },
    { name: 'a statement its .env cannot hold', make: () => openAlgoDir("WS_PING_TIMEOUT = '20' '30'").dir, mentions: ['WS_PING_TIMEOUT (line', join('openalgo', '.env'), 'KEY=value'] },
  ];

  it.each(cases)('$name', async ({ make, mentions }) => {
    const root = makeTempDir();
    cleanups.push(() => removeDir(root));
    const target = make(root);
    const result = await runCli(['start', '--openalgo-dir', target], { dataDir: join(root, 'data'), env: { WEBSOCKET_PORT: '0', ZMQ_PORT: '0' }, timeoutMs: 15_000 });
    expect(result.code, result.stdout + result.stderr).toBe(2);
    for (const text of mentions) expect(result.stderr).toContain(text);
    expect(result.stdout).not.toContain('running');
    expect(existsSync(join(root, 'data'))).toBe(false);
  });

  it('also when named by TICKCAST_OPENALGO_DIR', async () => {
    const root = makeTempDir();
    cleanups.push(() => removeDir(root));
    const result = await runCli(['start'], { dataDir: join(root, 'data'), env: { TICKCAST_OPENALGO_DIR: join(root, 'missing'), WEBSOCKET_PORT: '0', ZMQ_PORT: '0' }, timeoutMs: 15_000 });
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(`TICKCAST_OPENALGO_DIR="${join(root, 'missing')}" is not valid: expected an existing OpenAlgo directory`);
  });
});
