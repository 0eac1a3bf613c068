/**
 * `--openalgo-dir DIR` / TICKCAST_OPENALGO_DIR: DIR/.env read as OpenAlgo reads it, for
 * OpenAlgo's variable names, between the environment and tickcast's own .env; relative paths
 * taken from DIR; every problem named with its file and variable; the proxy settings tickcast
 * does not use listed for the start summary.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type LoadConfigInput, loadConfig } from '../../src/config/load.js';
import { concernsProxy, unusedProxySettings } from '../../src/config/openalgo-env.js';
import { statsFileOf } from '../../src/observability/openalgo-stats.js';

let cwd: string;
let openalgo: string;

beforeEach(() => {
  cwd = mkdtempSync(join(tmpdir(), 'tickcast-config-oa-'));
  openalgo = join(cwd, 'openalgo');
  mkdirSync(openalgo);
});
afterEach(() => rmSync(cwd, { recursive: true, force: true }));

const PEPPER = 'f'.repeat(64);

function writeOpenAlgoEnv(text: string): string {
  const file = join(openalgo, '.env');
  writeFileSync(file, text);
  return file;
}

function load(input: LoadConfigInput = {}) {
  return loadConfig({ cwd, ...input, env: { ...input.env } });
}

function loadOk(input: LoadConfigInput = {}) {
  const result = load(input);
  if (!result.ok) throw new Error(`expected a valid config, got:\n${result.errors.join('\n')}`);
  return result;
}

function errorsOf(input: LoadConfigInput): string[] {
  const result = load(input);
  if (result.ok) throw new Error('expected errors, got a valid config');
  return result.errors;
}

/** An OpenAlgo .env as its install scripts leave it (an excerpt of its .sample.env, secrets set). */
const SAMPLE = `# OpenAlgo Environment Configuration File
ENV_CONFIG_VERSION = '1.0.7'
BROKER_API_KEY = 'YOUR_BROKER_API_KEY'
BROKER_API_SECRET = 'YOUR_BROKER_API_SECRET'
REDIRECT_URL = 'http://127.0.0.1:5000/<broker>/callback'  # Change if different
VALID_BROKERS = 'angel,dhan,fyers,zerodha'
APP_KEY = '${'a'.repeat(64)}'
API_KEY_PEPPER = '${PEPPER}'
FERNET_SALT = '${'0123456789abcdef'.repeat(2)}'
HEALTH_DATABASE_URL = 'sqlite:///db/health.db'    # Database for health monitoring
FLASK_HOST_IP='127.0.0.1'
FLASK_PORT='5000'
WEBSOCKET_HOST='127.0.0.1'
WEBSOCKET_PORT='8766'
WEBSOCKET_URL='ws://127.0.0.1:8766'
WS_AUTH_GRACE_SECONDS='15'
WS_MAX_QUEUE='1024'
WS_PING_INTERVAL='20'
WS_PING_TIMEOUT='20'
ZMQ_HOST='127.0.0.1'
ZMQ_PORT='5556'
MAX_SYMBOLS_PER_WEBSOCKET='1000'
MAX_WEBSOCKET_CONNECTIONS='3'
ENABLE_CONNECTION_POOLING='true'
ORDER_UPDATES_ENABLED='TRUE'
LOG_LEVEL='INFO'
API_RATE_LIMIT="50 per second"
SESSION_EXPIRY_TIME = '03:00'
CORS_ENABLED = 'TRUE'
CSP_SCRIPT_SRC = "'self' 'unsafe-inline' https://cdn.socket.io https://static.cloudflareinsights.com"
CSRF_TIME_LIMIT = ''
`;

describe('an OpenAlgo directory', () => {
  it("reads OpenAlgo's settings from DIR/.env, named by --openalgo-dir", () => {
    const file = writeOpenAlgoEnv(SAMPLE);
    const { config, sources, openalgo: report } = loadOk({ flags: { openalgoDir: openalgo } });
    expect(config.openalgo.dir).toBe(openalgo);
    expect(config.ws).toMatchObject({ host: '127.0.0.1', port: 8766, authGraceMs: 15_000, pingIntervalMs: 20_000, pingTimeoutMs: 20_000 });
    expect(config.bus).toMatchObject({ host: '127.0.0.1', port: 5556 });
    // BROKER_API_KEY fills what OpenAlgo's auth rows lack (a client id), as OpenAlgo's adapters read it.
    expect(config.auth).toMatchObject({ pepper: PEPPER, fernetSalt: '0123456789abcdef'.repeat(2), brokerApiKey: 'YOUR_BROKER_API_KEY' });
    expect(config.validBrokers).toEqual(['angel', 'dhan', 'fyers', 'zerodha']);
    expect(sources).toMatchObject({ 'ws.port': 'openalgo-env', 'bus.port': 'openalgo-env', 'auth.pepper': 'openalgo-env', 'openalgo.dir': 'flag' });
    // Proxy settings tickcast has no option for, once each, in file order; Flask's are not listed.
    expect(report).toEqual({
      file,
      unused: ['BROKER_API_SECRET', 'WS_MAX_QUEUE', 'MAX_SYMBOLS_PER_WEBSOCKET', 'MAX_WEBSOCKET_CONNECTIONS', 'ENABLE_CONNECTION_POOLING', 'SESSION_EXPIRY_TIME'],
    });
    // The Health Monitor's stats go to OpenAlgo's default place.
    expect(statsFileOf(config)).toBe(join(openalgo, 'log', 'ws_proxy_stats.json'));
  });

  const ways = [
    { by: 'TICKCAST_OPENALGO_DIR', input: (dir: string): LoadConfigInput => ({ env: { TICKCAST_OPENALGO_DIR: dir } }), source: 'env' },
    { by: "tickcast's own .env", input: (): LoadConfigInput => ({}), source: 'env-file' },
  ] as const;
  for (const way of ways) {
    it(`is also named by ${way.by}, relative to the working directory`, () => {
      writeOpenAlgoEnv("WEBSOCKET_PORT = '9100'\n");
      writeFileSync(join(cwd, '.env'), 'TICKCAST_OPENALGO_DIR=openalgo\n');
      const { config, sources } = loadOk(way.input('openalgo'));
      expect(config.openalgo.dir).toBe(openalgo);
      expect(sources['openalgo.dir']).toBe(way.source);
      expect(config.ws.port).toBe(9100);
    });
  }

  it('precedence: flags > environment > DIR/.env > tickcast .env > defaults', () => {
    writeOpenAlgoEnv("WEBSOCKET_PORT = '2000'\nZMQ_PORT = '2001'\nWS_PING_TIMEOUT = '2002'\n");
    writeFileSync(join(cwd, '.env'), 'WEBSOCKET_PORT=1000\nZMQ_PORT=1001\nWS_PING_TIMEOUT=1002\nWS_PING_INTERVAL=1003\n');
    const { config, sources } = loadOk({
      flags: { openalgoDir: openalgo, port: '4000' },
      env: { WEBSOCKET_PORT: '3000', ZMQ_PORT: '3001' },
    });
    expect([config.ws.port, config.bus.port, config.ws.pingTimeoutMs, config.ws.pingIntervalMs, config.ws.authGraceMs]).toEqual([4000, 3001, 2_002_000, 1_003_000, 15_000]);
    expect([sources['ws.port'], sources['bus.port'], sources['ws.pingTimeoutMs'], sources['ws.pingIntervalMs'], sources['ws.authGraceMs']]).toEqual([
      'flag', 'env', 'openalgo-env', 'env-file', 'default',
    ]);
  });

  it('takes relative paths in DIR/.env from DIR, and the same value elsewhere from the working directory', () => {
    writeOpenAlgoEnv("WS_PROXY_STATS_FILE = 'log/proxy.json'\n");
    const fromDir = loadOk({ flags: { openalgoDir: openalgo } });
    expect(fromDir.config.openalgo.statsFile).toBe(join(openalgo, 'log', 'proxy.json'));
    expect(statsFileOf(fromDir.config)).toBe(join(openalgo, 'log', 'proxy.json'));
    const fromEnv = loadOk({ flags: { openalgoDir: openalgo }, env: { WS_PROXY_STATS_FILE: 'log/proxy.json' } });
    expect(fromEnv.config.openalgo.statsFile).toBe(join(cwd, 'log', 'proxy.json'));
  });

  it('interpolates ${VAR} from the environment, as python-dotenv does', () => {
    writeOpenAlgoEnv('WEBSOCKET_PORT=${OA_PORT:-8765}\nZMQ_PORT=${OA_ZMQ:-5599}\n');
    expect(loadOk({ flags: { openalgoDir: openalgo }, env: { OA_PORT: '9200' } }).config).toMatchObject({ ws: { port: 9200 }, bus: { port: 5599 } });
  });

  it('without it, no stats file is written unless WS_PROXY_STATS_FILE says where', () => {
    expect(statsFileOf(loadOk().config)).toBeUndefined();
    expect(statsFileOf(loadOk({ env: { WS_PROXY_STATS_FILE: 'stats.json' } }).config)).toBe(join(cwd, 'stats.json'));
  });
});

describe('a bad OpenAlgo directory stops the start, naming the file and the variable', () => {
  it('a directory that does not exist', () => {
    expect(errorsOf({ flags: { openalgoDir: 'nowhere' } })).toEqual([
      `TICKCAST_OPENALGO_DIR (--openalgo-dir)="nowhere" is not valid: expected an existing OpenAlgo directory (${join(cwd, 'nowhere')} does not exist)`,
    ]);
  });

  it('a file instead of a directory', () => {
    writeFileSync(join(cwd, 'plain'), '');
    expect(errorsOf({ env: { TICKCAST_OPENALGO_DIR: 'plain' } })).toEqual([
      `TICKCAST_OPENALGO_DIR="plain" is not valid: expected an OpenAlgo directory (${join(cwd, 'plain')} is not a directory)`,
    ]);
  });

  it('a directory without a .env', () => {
    expect(errorsOf({ flags: { openalgoDir: openalgo } })).toEqual([
      `TICKCAST_OPENALGO_DIR (--openalgo-dir)="${openalgo}" is not valid: expected an OpenAlgo directory holding a .env file (${join(openalgo, '.env')} does not exist)`,
    ]);
  });

  it('a bad value', () => {
    const file = writeOpenAlgoEnv("WEBSOCKET_PORT = 'eighty'\n");
    expect(errorsOf({ flags: { openalgoDir: openalgo } })).toEqual([
      `WEBSOCKET_PORT="eighty" (in ${file}) is not valid: expected an integer from 1 to 65535, or 0 or auto for any free port`,
    ]);
  });

  it('a bad secret, never shown', () => {
    const file = writeOpenAlgoEnv("API_KEY_PEPPER = 'short-pepper'\nFERNET_SALT = 'OPENALGO_PLACEHOLDER_FERNET_SALT_REGENERATE_BEFORE_USE'\n");
    const errors = errorsOf({ flags: { openalgoDir: openalgo } });
    expect(errors).toEqual([
      `API_KEY_PEPPER (value hidden, 12 characters) (in ${file}) is not valid: expected at least 32 characters`,
      `FERNET_SALT (value hidden, 54 characters) (in ${file}) is not valid: expected hexadecimal digits (0-9, a-f), an even number of them`,
    ]);
    expect(errors.join('\n')).not.toContain('short-pepper');
  });

  it('a statement python-dotenv cannot read (OpenAlgo would skip it, and with it the setting)', () => {
    const file = writeOpenAlgoEnv("ZMQ_PORT='5556'\nAPI_KEY_PEPPER = 'abc' 'def'\n");
    expect(errorsOf({ flags: { openalgoDir: openalgo } })).toEqual([
      `API_KEY_PEPPER (line 2 of ${file}) is not valid: expected KEY=value, KEY='value' or KEY="value" (OpenAlgo's python-dotenv would skip it with a warning)`,
    ]);
  });

  it("tickcast's own variables, which belong elsewhere", () => {
    const file = writeOpenAlgoEnv('TICKCAST_FEED=none\n');
    expect(errorsOf({ flags: { openalgoDir: openalgo } })).toEqual([
      `TICKCAST_FEED (in ${file}) is not read from OpenAlgo's .env: set tickcast's own variables in the environment, a flag or tickcast's .env`,
    ]);
  });

  it('a bad value shadowed by the environment is not used, so not checked', () => {
    writeOpenAlgoEnv("WEBSOCKET_PORT = 'eighty'\n");
    expect(loadOk({ flags: { openalgoDir: openalgo }, env: { WEBSOCKET_PORT: '9000' } }).config.ws.port).toBe(9000);
  });
});

describe('which OpenAlgo settings concern the proxy', () => {
  it("is OpenAlgo's proxy-side list plus any WS_* or ZMQ_* name", () => {
    for (const name of ['WS_MAX_QUEUE', 'WS_STALE_TICK_WARN_SECONDS', 'MAX_SYMBOLS_PER_WEBSOCKET', 'ENABLE_CONNECTION_POOLING', 'WS_SOMETHING_NEW', 'ZMQ_LINGER']) {
      expect(concernsProxy(name), name).toBe(true);
    }
    for (const name of ['FLASK_PORT', 'WEBSOCKET_URL', 'CORS_ENABLED', 'LOG_LEVEL', 'ORDER_UPDATES_ENABLED', 'APP_KEY', 'HEALTH_DATABASE_URL']) {
      expect(concernsProxy(name), name).toBe(false);
    }
  });

  it('lists those tickcast has no option for, once, in the order given', () => {
    const honoured = new Set(['WEBSOCKET_PORT', 'WS_PING_INTERVAL']);
    expect(unusedProxySettings(['WEBSOCKET_PORT', 'WS_STALE_TICK_WARN_SECONDS', 'FLASK_PORT', 'WS_PING_INTERVAL', 'WS_MAX_QUEUE'], honoured)).toEqual([
      'WS_STALE_TICK_WARN_SECONDS',
      'WS_MAX_QUEUE',
    ]);
  });

  it('does not list a setting left blank', () => {
    writeOpenAlgoEnv("WS_MAX_QUEUE=''\nWS_STALE_TICK_WARN_SECONDS='120'\n");
    expect(loadOk({ flags: { openalgoDir: openalgo } }).openalgo?.unused).toEqual(['WS_STALE_TICK_WARN_SECONDS']);
  });
});
