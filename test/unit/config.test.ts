import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { devNull, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, expectTypeOf, it } from 'vitest';
import { renderConfigTable } from '../../src/config/docs.js';
import { loadConfig, loadConfigOrThrow, type LoadConfigInput } from '../../src/config/load.js';
import { OPTIONS, flagAttribute, type Config } from '../../src/config/options.js';
import { ErrorCode, TickcastError } from '../../src/errors.js';
import type { LogLevel } from '../../src/observability/logger.js';

let dir: string;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'tickcast-config-'));
});

afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

/** Loads with an explicit environment and the temp dir as cwd (never the real ones). */
function load(input: LoadConfigInput = {}) {
  return loadConfig({ env: {}, cwd: dir, ...input });
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

function writeEnvFile(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

/** Reads a dotted key out of the nested config. */
function at(config: Config, key: string): unknown {
  return key.split('.').reduce<unknown>((node, part) => (node as Record<string, unknown>)[part], config);
}

describe('defaults', () => {
  it('gives every documented default with no input', () => {
    const { config, sources } = loadOk();
    expect(config).toEqual({
      envFile: undefined,
      instance: 'default',
      dataDir: undefined, // the per-user default, resolved where used (store/data-dir.ts)
      openalgo: { dir: undefined, statsFile: undefined, bridge: 'auto', bridgeBrokers: undefined, bridgeStaleMs: 30_000, bridgeCallTimeoutMs: 30_000, bridgeRetryMs: 5000, python: undefined },
      ws: {
        host: '127.0.0.1',
        port: undefined, // resolved per instance at start: 8765 for 'default', free otherwise
        authGraceMs: 15_000,
        pingIntervalMs: 20_000,
        pingTimeoutMs: 20_000,
        maxMessageBytes: 65_536,
        maxFrameBytes: 1_048_576,
        maxBufferedBytes: 1_048_576,
        slowConsumerMs: 10_000,
        snapshots: true,
        snapshotMaxAgeMs: 60_000,
        recoveryTicks: 2000,
        recoveryMaxAgeMs: 60_000,
        recoveryBytes: 64 * 1024 * 1024,
        allowedOrigins: undefined,
        tlsCert: undefined,
        tlsKey: undefined,
      },
      brokers: {
        kiteUrl: 'wss://ws.kite.trade',
        angelUrl: 'wss://smartapisocket.angelone.in/smart-stream',
        dhanUrl: 'wss://api-feed.dhan.co',
        dhanDepthUrl: 'wss://depth-api-feed.dhan.co/twentydepth',
        upstoxUrl: 'wss://api.upstox.com/v3/feed/market-data-feed',
        shoonyaUrl: 'wss://api.shoonya.com/NorenWSAPI/',
        flattradeUrl: 'wss://piconnect.flattrade.in/PiConnectWSAPI/',
      },
      bus: { host: '127.0.0.1', port: undefined, transport: 'tcp', batch: true, nats: undefined },
      control: { port: 'auto' },
      node: undefined,
      registry: { url: undefined, ttlMs: 15_000 },
      workers: 1,
      limits: { maxConnections: 10_000, maxPendingAuth: 1000, maxConnectionsPerKey: 1000, maxSubscriptions: 3000, subscribeRate: 20, authFailures: 5 },
      feed: 'simulator',
      sharedFeed: 'auto',
      simulator: { rate: 2, symbols: '', seed: undefined, brokers: ['simulator'] },
      auth: { pepper: undefined, fernetSalt: undefined, brokerApiKey: undefined, cacheTtlMs: 36_000_000, devKey: true },
      history: { record: expect.objectContaining({ any: false, items: [] }), recordFrames: 'off', dir: undefined, url: undefined, maxAgeDays: 30, maxBytes: 0, queueTicks: 100_000, ticksMaxRangeHours: 24, ticksMaxRows: 1_000_000 },
      validBrokers: undefined,
      logLevel: 'info',
    });
    for (const option of OPTIONS) expect(sources[option.key]).toBe('default');
  });

  it('parses every default with its own parser', () => {
    for (const option of OPTIONS) {
      if (option.default === undefined) continue;
      expect(option.parse(option.default, { cwd: dir }).ok, option.env).toBe(true);
    }
  });

  it('returns a frozen config', () => {
    const { config } = loadOk();
    expect(Object.isFrozen(config)).toBe(true);
    expect(Object.isFrozen(config.ws)).toBe(true);
    expect(Object.isFrozen(config.simulator.brokers)).toBe(true);
  });

  it('has a typed Config', () => {
    expectTypeOf<Config['ws']['port']>().toEqualTypeOf<number | 'auto' | undefined>();
    expectTypeOf<Config['feed']>().toEqualTypeOf<'simulator' | 'none'>();
    expectTypeOf<Config['logLevel']>().toEqualTypeOf<LogLevel>();
    expectTypeOf<Config['simulator']['seed']>().toEqualTypeOf<number | undefined>();
    expectTypeOf<Config['simulator']['brokers']>().toEqualTypeOf<readonly string[]>();
    expectTypeOf<Config['auth']['pepper']>().toEqualTypeOf<string | undefined>();
    expectTypeOf<Config['auth']['devKey']>().toEqualTypeOf<boolean>();
    expectTypeOf<Config['validBrokers']>().toEqualTypeOf<readonly string[] | undefined>();
    expectTypeOf<Config['envFile']>().toEqualTypeOf<string | undefined>();
  });
});

describe('precedence: flag > env > env file > default', () => {
  const cases = [
    { name: 'default', file: false, env: false, flag: false, port: undefined, source: 'default' },
    { name: 'env file over default', file: true, env: false, flag: false, port: 1111, source: 'env-file' },
    { name: 'env over env file', file: true, env: true, flag: false, port: 2222, source: 'env' },
    { name: 'flag over env', file: true, env: true, flag: true, port: 3333, source: 'flag' },
    { name: 'flag over env file', file: true, env: false, flag: true, port: 3333, source: 'flag' },
  ] as const;

  for (const c of cases) {
    it(c.name, () => {
      if (c.file) writeEnvFile('.env', 'WEBSOCKET_PORT=1111\n');
      const { config, sources } = loadOk({
        env: c.env ? { WEBSOCKET_PORT: '2222' } : {},
        flags: c.flag ? { port: '3333' } : {},
      });
      expect(config.ws.port).toBe(c.port);
      expect(sources['ws.port']).toBe(c.source);
    });
  }

  it('takes each option from its own highest source', () => {
    writeEnvFile('.env', 'WEBSOCKET_HOST=0.0.0.0\nZMQ_PORT=6000\nTICKCAST_SIM_RATE=5\n');
    const { config, sources } = loadOk({ env: { ZMQ_PORT: '6001' }, flags: { simRate: '7' } });
    expect(config.ws.host).toBe('0.0.0.0');
    expect(config.bus.port).toBe(6001);
    expect(config.simulator.rate).toBe(7);
    expect(sources).toMatchObject({ 'ws.host': 'env-file', 'bus.port': 'env', 'simulator.rate': 'flag' });
    expect(config.envFile).toBe(join(dir, '.env'));
  });

  it('treats a blank value as not set', () => {
    writeEnvFile('.env', 'WEBSOCKET_PORT=1111\n');
    const { config, sources } = loadOk({ env: { WEBSOCKET_PORT: '  ' }, flags: { port: '' } });
    expect(config.ws.port).toBe(1111);
    expect(sources['ws.port']).toBe('env-file');
  });

  it('ignores undefined environment entries and flags that are not configuration', () => {
    const { config } = loadOk({ env: { WEBSOCKET_PORT: undefined }, flags: { json: true, port: undefined } });
    expect(config.ws.port).toBeUndefined(); // resolved per instance at start: 8765 for 'default'
  });

  it('accepts numeric flag values', () => {
    expect(loadOk({ flags: { port: 9000, simRate: 0.5 } }).config).toMatchObject({ ws: { port: 9000 }, simulator: { rate: 0.5 } });
  });

  it('trims values', () => {
    expect(loadOk({ env: { WEBSOCKET_PORT: ' 9001 ', TICKCAST_FEED: ' none ' } }).config).toMatchObject({
      ws: { port: 9001 },
      feed: 'none',
    });
  });
});

describe('flags', () => {
  it('are keyed by commander attribute names', () => {
    const attributes = OPTIONS.filter((o) => o.flag !== undefined).map((o) => flagAttribute(o.flag as string));
    expect(attributes).toEqual([
      'envFile', 'instance', 'dataDir', 'controlKeyFile', 'openalgoDir', 'openalgoBridge', 'bridgeBrokers', 'python', 'host', 'port', 'authGrace', 'tlsCert', 'tlsKey', 'zmqHost', 'zmqPort',
      'transport', 'controlPort', 'bus', 'natsCreds', 'natsNkeySeed', 'natsTokenFile', 'natsCa', 'natsCert', 'natsKey', 'node', 'record', 'recordFrames', 'historyUrl', 'registry', 'workers', 'feed', 'simRate', 'simSymbols', 'simBrokers', 'busBrokers', 'logLevel',
    ]);
    expect(flagAttribute('--ws-port <port>')).toBe('wsPort');
  });

  it('sets every flagged option', () => {
    mkdirSync(join(dir, 'openalgo'));
    writeEnvFile('openalgo/.env', '');
    const { config, sources } = loadOk({
      flags: {
        instance: 'b-2', dataDir: 'state', controlKeyFile: 'keys/control.key', openalgoDir: 'openalgo', openalgoBridge: 'external', bridgeBrokers: 'Zerodha', python: 'venv/bin/python', host: '::', port: '0', authGrace: '0.5', zmqHost: 'localhost',
        tlsCert: 'cert.pem', tlsKey: 'key.pem',
        zmqPort: '5556', transport: 'ipc', controlPort: '7000', bus: 'nats://a:4222, nats://b:4222', node: 'node-1',
        natsCreds: 'nats/user.creds', natsNkeySeed: 'nats/user.nk', natsTokenFile: 'nats/token', natsCa: 'nats/ca.pem', natsCert: 'nats/cert.pem', natsKey: 'nats/key.pem',
        record: 'simulator, NSE:RELIANCE', recordFrames: 'zerodha, Dhan', historyUrl: 'postgres://rec:pw@db.example:5432/ticks', registry: 'redis://127.0.0.1:6390/1', workers: '1',
        feed: 'none', simRate: '100000', simSymbols: 'NSE:INFY', simBrokers: 'paper,demo', busBrokers: 'fyers, Dhan', logLevel: 'debug',
      },
    });
    expect(config).toMatchObject({
      instance: 'b-2',
      dataDir: join(dir, 'state'),
      controlKeyFile: join(dir, 'keys/control.key'),
      openalgo: { dir: join(dir, 'openalgo'), bridge: 'external', bridgeBrokers: ['zerodha'], python: join(dir, 'venv/bin/python') },
      ws: { host: '::', port: 'auto', authGraceMs: 500, tlsCert: join(dir, 'cert.pem'), tlsKey: join(dir, 'key.pem') },
      bus: {
        host: 'localhost', port: 5556, transport: 'ipc', nats: ['nats://a:4222', 'nats://b:4222'],
        natsCredsFile: join(dir, 'nats/user.creds'), natsNkeySeedFile: join(dir, 'nats/user.nk'), natsTokenFile: join(dir, 'nats/token'),
        natsCaFile: join(dir, 'nats/ca.pem'), natsCertFile: join(dir, 'nats/cert.pem'), natsKeyFile: join(dir, 'nats/key.pem'),
      },
      control: { port: 7000 },
      node: 'node-1',
      history: { record: { any: true, items: ['simulator', 'NSE:RELIANCE'] }, recordFrames: ['zerodha', 'dhan'], url: 'postgres://rec:pw@db.example:5432/ticks' },
      registry: { url: 'redis://127.0.0.1:6390/1' },
      workers: 1,
      feed: 'none',
      simulator: { rate: 100_000, symbols: 'NSE:INFY', brokers: ['paper', 'demo'] },
      sharedFeed: ['fyers', 'dhan'],
      logLevel: 'debug',
    });
    for (const option of OPTIONS) {
      if (option.flag !== undefined && option.key !== 'envFile') expect(sources[option.key]).toBe('flag');
    }
  });

  it('refuses a flag value that is not a single value', () => {
    expect(errorsOf({ flags: { port: ['1', '2'] } })).toEqual([
      'WEBSOCKET_PORT (--port) is not valid: expected a single value, got a list',
    ]);
  });
});

describe('env file', () => {
  it('is optional when it is the default .env', () => {
    expect(loadOk().config.envFile).toBeUndefined();
  });

  it('supports comments, quotes and export', () => {
    writeEnvFile('.env', '# a comment\nexport WEBSOCKET_HOST="0.0.0.0"\nTICKCAST_INSTANCE=\'alpha\'\n');
    expect(loadOk().config).toMatchObject({ ws: { host: '0.0.0.0' }, instance: 'alpha' });
  });

  const named = [
    { by: 'TICKCAST_ENV_FILE', input: (p: string) => ({ env: { TICKCAST_ENV_FILE: p } }), source: 'env' },
    { by: 'the envFile argument', input: (p: string) => ({ envFile: p }), source: 'flag' },
    { by: '--env-file', input: (p: string) => ({ flags: { envFile: p } }), source: 'flag' },
  ] as const;

  for (const n of named) {
    it(`can be named by ${n.by}, relative to cwd`, () => {
      writeEnvFile('.env', 'WEBSOCKET_PORT=1111\n');
      mkdirSync(join(dir, 'conf'));
      writeEnvFile('conf/prod.env', 'WEBSOCKET_PORT=4444\n');
      const { config, sources } = loadOk(n.input('conf/prod.env'));
      expect(config.ws.port).toBe(4444);
      expect(config.envFile).toBe(join(dir, 'conf', 'prod.env'));
      expect(sources.envFile).toBe(n.source);
    });

    it(`must exist when named by ${n.by}`, () => {
      const errors = errorsOf(n.input('missing.env'));
      expect(errors).toHaveLength(1);
      expect(errors[0]).toMatch(/^TICKCAST_ENV_FILE/);
      expect(errors[0]).toContain('"missing.env"');
      expect(errors[0]).toContain(`expected an existing file (${join(dir, 'missing.env')} does not exist)`);
    });
  }

  it('names the flag when the missing file came from one', () => {
    expect(errorsOf({ envFile: 'nope.env' })[0]).toBe(
      `TICKCAST_ENV_FILE (--env-file)="nope.env" is not valid: expected an existing file (${join(dir, 'nope.env')} does not exist)`,
    );
  });

  it('the envFile argument beats TICKCAST_ENV_FILE', () => {
    writeEnvFile('a.env', 'WEBSOCKET_PORT=1\n');
    writeEnvFile('b.env', 'WEBSOCKET_PORT=2\n');
    expect(loadOk({ envFile: 'b.env', env: { TICKCAST_ENV_FILE: 'a.env' } }).config.ws.port).toBe(2);
  });

  it('reports a default .env that cannot be read', () => {
    mkdirSync(join(dir, '.env'));
    const errors = errorsOf({});
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatch(/^TICKCAST_ENV_FILE=".env" \(the default\) is not valid: expected a readable file/);
  });

  it('refuses TICKCAST_ENV_FILE inside an env file', () => {
    const path = writeEnvFile('.env', 'TICKCAST_ENV_FILE=other.env\n');
    expect(errorsOf({})).toEqual([
      `TICKCAST_ENV_FILE (in ${path}) has no effect inside an env file: set it in the environment or pass --env-file`,
    ]);
  });

  it('says which file a bad value came from', () => {
    const path = writeEnvFile('.env', 'WEBSOCKET_PORT=abc\n');
    expect(errorsOf({})).toEqual([`WEBSOCKET_PORT="abc" (in ${path}) is not valid: expected an integer from 1 to 65535, or 0 or auto for any free port`]);
  });

  it('does not modify process.env', () => {
    writeEnvFile('.env', 'CONFIG_TEST_PROBE=1\nWS_PING_TIMEOUT=3\n');
    const before = { ...process.env };
    load({ env: undefined });
    expect(process.env).toEqual(before);
  });
});

describe('valid values', () => {
  const cases: Array<[env: string, value: string, key: string, expected: unknown]> = [
    ['TICKCAST_INSTANCE', 'a', 'instance', 'a'],
    ['TICKCAST_RECORD_FRAMES', 'ON', 'history.recordFrames', 'all'],
    ['TICKCAST_RECORD_FRAMES', 'off', 'history.recordFrames', 'off'],
    ['TICKCAST_RECORD_FRAMES', 'shoonya,flattrade,shoonya', 'history.recordFrames', ['shoonya', 'flattrade']],
    ['TICKCAST_INSTANCE', 'Prod_1-x', 'instance', 'Prod_1-x'],
    ['TICKCAST_INSTANCE', 'a'.repeat(32), 'instance', 'a'.repeat(32)],
    ['TICKCAST_DATA_DIR', '/srv/tickcast', 'dataDir', '/srv/tickcast'],
    ['WEBSOCKET_HOST', '0.0.0.0', 'ws.host', '0.0.0.0'],
    ['WEBSOCKET_HOST', '::1', 'ws.host', '::1'],
    ['WEBSOCKET_HOST', 'gateway.example.com', 'ws.host', 'gateway.example.com'],
    ['WEBSOCKET_PORT', '0', 'ws.port', 'auto'],
    ['WEBSOCKET_PORT', 'AUTO', 'ws.port', 'auto'],
    ['TICKCAST_CONTROL_PORT', '7001', 'control.port', 7001],
    ['TICKCAST_BUS_TRANSPORT', 'IPC', 'bus.transport', 'ipc'],
    ['TICKCAST_REGISTRY', 'redis://127.0.0.1:6390/2', 'registry.url', 'redis://127.0.0.1:6390/2'],
    ['TICKCAST_REGISTRY', 'sqlite:/tmp/r.db', 'registry.url', 'sqlite:/tmp/r.db'],
    ['TICKCAST_REGISTRY_TTL_SECONDS', '2.5', 'registry.ttlMs', 2500],
    ['WEBSOCKET_PORT', '65535', 'ws.port', 65535],
    ['WS_AUTH_GRACE_SECONDS', '2.5', 'ws.authGraceMs', 2500],
    ['WS_AUTH_GRACE_SECONDS', '0.001', 'ws.authGraceMs', 1],
    ['WS_PING_INTERVAL', '0', 'ws.pingIntervalMs', 0],
    ['WS_PING_INTERVAL', '30', 'ws.pingIntervalMs', 30_000],
    ['WS_PING_TIMEOUT', '.5', 'ws.pingTimeoutMs', 500],
    ['TICKCAST_MAX_MESSAGE_BYTES', '1024', 'ws.maxMessageBytes', 1024],
    ['TICKCAST_MAX_FRAME_BYTES', '65536', 'ws.maxFrameBytes', 65536],
    ['TICKCAST_MAX_BUFFERED_BYTES', '65536', 'ws.maxBufferedBytes', 65536],
    ['ZMQ_HOST', 'localhost', 'bus.host', 'localhost'],
    ['ZMQ_PORT', '5560', 'bus.port', 5560],
    ['TICKCAST_FEED', 'NONE', 'feed', 'none'],
    ['TICKCAST_SIM_RATE', '0.25', 'simulator.rate', 0.25],
    ['TICKCAST_SIM_SYMBOLS', 'NSE:RELIANCE, NSE_INDEX:NIFTY-50,', 'simulator.symbols', 'NSE:RELIANCE,NSE_INDEX:NIFTY-50'],
    ['TICKCAST_SIM_SEED', '-42', 'simulator.seed', -42],
    ['TICKCAST_SIM_BROKERS', 'Simulator, paper', 'simulator.brokers', ['simulator', 'paper']],
    ['TICKCAST_BUS_BROKERS', 'none', 'sharedFeed', 'none'],
    ['TICKCAST_BUS_BROKERS', 'AUTO', 'sharedFeed', 'auto'],
    ['TICKCAST_BUS_BROKERS', '*', 'sharedFeed', ['*']],
    ['TICKCAST_BUS_BROKERS', 'Fyers, dhan', 'sharedFeed', ['fyers', 'dhan']],
    ['TICKCAST_OPENALGO_BRIDGE', 'OFF', 'openalgo.bridge', 'off'],
    ['TICKCAST_BRIDGE_BROKERS', 'Zerodha, angel', 'openalgo.bridgeBrokers', ['zerodha', 'angel']],
    ['TICKCAST_BRIDGE_STALE', '1.5', 'openalgo.bridgeStaleMs', 1500],
    ['TICKCAST_SNAPSHOT_MAX_AGE_SECONDS', '2.5', 'ws.snapshotMaxAgeMs', 2500],
    ['TICKCAST_RECOVERY_TICKS', '0', 'ws.recoveryTicks', 0],
    ['TICKCAST_RECOVERY_SECONDS', '1.5', 'ws.recoveryMaxAgeMs', 1500],
    ['API_KEY_PEPPER', 'p'.repeat(32), 'auth.pepper', 'p'.repeat(32)],
    ['API_KEY_PEPPER', ` ${'p'.repeat(32)} `, 'auth.pepper', ` ${'p'.repeat(32)} `],
    ['FERNET_SALT', 'a1B2'.repeat(8), 'auth.fernetSalt', 'a1B2'.repeat(8)],
    ['TICKCAST_AUTH_CACHE_TTL_SECONDS', '0', 'auth.cacheTtlMs', 0],
    ['TICKCAST_AUTH_CACHE_TTL_SECONDS', '60', 'auth.cacheTtlMs', 60_000],
    ['TICKCAST_DEV_KEY', 'FALSE', 'auth.devKey', false],
    ['TICKCAST_DEV_KEY', '0', 'auth.devKey', false],
    ['TICKCAST_DEV_KEY', 'no', 'auth.devKey', false],
    ['TICKCAST_DEV_KEY', 'Yes', 'auth.devKey', true],
    ['TICKCAST_DEV_KEY', '1', 'auth.devKey', true],
    ['VALID_BROKERS', ' zerodha, ,angel ,', 'validBrokers', ['zerodha', 'angel']],
    ['TICKCAST_LOG_LEVEL', 'Silent', 'logLevel', 'silent'],
  ];

  for (const [env, value, key, expected] of cases) {
    it(`${env}=${JSON.stringify(value)}`, () => {
      expect(at(loadOk({ env: { [env]: value } }).config, key)).toEqual(expected);
    });
  }
});

describe('invalid values: name the variable, show the value, say what is allowed', () => {
  const cases: Array<[env: string, value: string, expected: string]> = [
    ['TICKCAST_INSTANCE', '-x', 'expected 1 to 32 letters, digits, _ or -, starting with a letter or digit'],
    ['TICKCAST_RECORD_FRAMES', 'zerodha,fyers', 'expected off, on, or a comma-separated list of native brokers (zerodha, angel, dhan, upstox, shoonya, flattrade); not a native broker: "fyers"'],
    ['TICKCAST_INSTANCE', 'a'.repeat(33), 'expected 1 to 32 letters'],
    ['TICKCAST_INSTANCE', 'a b', 'expected 1 to 32 letters'],
    ['WEBSOCKET_HOST', 'bad host', 'expected a host name or IP address'],
    ['WEBSOCKET_HOST', '-bad.example', 'expected a host name or IP address'],
    ['WEBSOCKET_PORT', 'abc', 'expected an integer from 1 to 65535, or 0 or auto for any free port'],
    ['WEBSOCKET_PORT', '65536', 'expected an integer from 1 to 65535, or 0 or auto for any free port'],
    ['WEBSOCKET_PORT', '-1', 'expected an integer from 1 to 65535, or 0 or auto for any free port'],
    ['WEBSOCKET_PORT', '80.5', 'expected an integer from 1 to 65535, or 0 or auto for any free port'],
    ['WEBSOCKET_PORT', '0x50', 'expected an integer from 1 to 65535, or 0 or auto for any free port'],
    ['WS_AUTH_GRACE_SECONDS', '0', 'expected a number of seconds greater than 0 and at most 86400'],
    ['WS_AUTH_GRACE_SECONDS', '15s', 'expected a number of seconds greater than 0'],
    ['WS_AUTH_GRACE_SECONDS', '0.0001', 'the smallest step is 0.001 seconds'],
    ['WS_AUTH_GRACE_SECONDS', '86401', 'at most 86400'],
    ['WS_PING_INTERVAL', '-1', 'expected a number of seconds from 0 to 86400 (0 disables it'],
    ['WS_PING_TIMEOUT', '0', 'expected a number of seconds greater than 0'],
    ['TICKCAST_MAX_MESSAGE_BYTES', '1023', 'expected an integer of at least 1024'],
    ['TICKCAST_MAX_BUFFERED_BYTES', '65535', 'expected an integer of at least 65536'],
    ['ZMQ_HOST', 'a_b', 'expected a host name or IP address'],
    ['ZMQ_PORT', '70000', 'expected an integer from 1 to 65535, or 0 or auto for any free port'],
    ['TICKCAST_FEED', 'zerodha', 'expected one of simulator, none'],
    ['TICKCAST_SIM_RATE', '0', 'expected a number greater than 0 and at most 100000'],
    ['TICKCAST_SIM_RATE', '100001', 'expected a number greater than 0 and at most 100000'],
    ['TICKCAST_SIM_RATE', 'fast', 'expected a number greater than 0'],
    ['TICKCAST_SIM_SYMBOLS', 'NSE:RELIANCE,nse:infy,INFY', 'not valid: "nse:infy", "INFY"'],
    ['TICKCAST_SIM_SEED', '1.5', 'expected an integer'],
    ['TICKCAST_SIM_BROKERS', 'zerodha,*', 'expected a comma-separated list of simulated broker names'],
    ['TICKCAST_SIM_BROKERS', '*', 'not valid: "*"'],
    ['TICKCAST_SIM_BROKERS', 'simulator,Zerodha', 'zerodha is a real broker: its users get ticks only from its own feed, never simulated prices'],
    ['TICKCAST_SIM_BROKERS', 'fyers,angel', 'fyers, angel are real brokers'],
    ['TICKCAST_SIM_BROKERS', ',', 'expected a comma-separated list of simulated broker names'],
    ['TICKCAST_BUS_BROKERS', 'fyers,*', 'not valid: "*"'],
    ['TICKCAST_BUS_BROKERS', ' , ', 'expected auto, none, *'],
    ['TICKCAST_OPENALGO_BRIDGE', 'yes', 'expected one of auto, on, external, off'],
    ['TICKCAST_BRIDGE_BROKERS', 'zerodha,mybroker', 'not a broker OpenAlgo streams for: "mybroker"'],
    ['TICKCAST_BRIDGE_CALL_TIMEOUT', '0', 'expected a number of seconds greater than 0'],
    ['TICKCAST_SNAPSHOT_MAX_AGE_SECONDS', '0', 'expected a number of seconds greater than 0'],
    ['TICKCAST_AUTH_CACHE_TTL_SECONDS', '1.5', 'expected a whole number of seconds, 0 or more'],
    ['TICKCAST_DEV_KEY', 'maybe', 'expected true or false (also 1/0, yes/no)'],
    ['TICKCAST_LOG_LEVEL', 'verbose', 'expected one of fatal, error, warn, info, debug, trace, silent'],
    ['TICKCAST_NODE', 'a b', "expected 1 to 64 letters, digits, '.', _ or -"],
  ];

  for (const [env, value, expected] of cases) {
    it(`${env}=${JSON.stringify(value)}`, () => {
      const errors = errorsOf({ env: { [env]: value } });
      expect(errors).toHaveLength(1);
      const message = errors[0] as string;
      expect(message.startsWith(`${env}=${JSON.stringify(value)} is not valid: expected `)).toBe(true);
      expect(message).toContain(expected);
    });
  }

  it('uses the documented wording', () => {
    expect(errorsOf({ env: { WEBSOCKET_PORT: 'abc' } })).toEqual([
      'WEBSOCKET_PORT="abc" is not valid: expected an integer from 1 to 65535, or 0 or auto for any free port',
    ]);
  });

  it('names the flag when the value came from one', () => {
    expect(errorsOf({ flags: { port: 'abc' } })).toEqual([
      'WEBSOCKET_PORT (--port)="abc" is not valid: expected an integer from 1 to 65535, or 0 or auto for any free port',
    ]);
  });

  it('shortens a very long value', () => {
    const [message] = errorsOf({ env: { TICKCAST_INSTANCE: 'x'.repeat(200) } });
    expect(message).toContain('… (200 characters)');
    expect(message).not.toContain('x'.repeat(81));
  });

  it('collects every error, not just the first', () => {
    const errors = errorsOf({
      env: { WEBSOCKET_PORT: 'abc', TICKCAST_FEED: 'x', TICKCAST_DEV_KEY: 'maybe' },
      flags: { logLevel: 'loud' },
    });
    expect(errors.map((e) => e.split(/[ =]/)[0])).toEqual([
      'WEBSOCKET_PORT', 'TICKCAST_FEED', 'TICKCAST_DEV_KEY', 'TICKCAST_LOG_LEVEL',
    ]);
  });
});

describe('secrets are never echoed', () => {
  const cases: Array<[env: string, value: string, expected: string]> = [
    ['API_KEY_PEPPER', 'too-short-secret', 'API_KEY_PEPPER (value hidden, 16 characters) is not valid: expected at least 32 characters'],
    ['FERNET_SALT', 'not-hex-salt', 'FERNET_SALT (value hidden, 12 characters) is not valid: expected hexadecimal digits (0-9, a-f), an even number of them'],
    ['FERNET_SALT', 'abc', 'FERNET_SALT (value hidden, 3 characters) is not valid: expected hexadecimal digits'],
    // URLs that may carry a password: hidden, the detail shows them without credentials.
    ['TICKCAST_BUS', 'tcp://u:hunter2@127.0.0.1:4222', 'TICKCAST_BUS (value hidden, 30 characters) is not valid: expected nats://HOST:PORT, or several separated by commas for a cluster (tls:// for TLS); "tcp://127.0.0.1:4222" is not a nats:// URL with a host'],
    ['TICKCAST_BUS', 'nats://:pw@', 'TICKCAST_BUS (value hidden, 11 characters) is not valid: expected nats://HOST:PORT'],
    ['TICKCAST_HISTORY_URL', 'mysql://u:hunter2@h/db', 'TICKCAST_HISTORY_URL (value hidden, 22 characters) is not valid: expected postgres://[USER[:PASSWORD]@]HOST[:PORT]/DATABASE (or postgresql://); got "mysql://h/db"'],
    ['TICKCAST_HISTORY_URL', 'postgres://u:hunter2@h', 'TICKCAST_HISTORY_URL (value hidden, 22 characters) is not valid: expected postgres://'],
    ['TICKCAST_REGISTRY', 'mysql://u:hunter2@h/db', 'TICKCAST_REGISTRY (value hidden, 22 characters) is not valid: expected sqlite:PATH, a file path, or redis://[USER:PASSWORD@]HOST[:PORT][/DB] (rediss:// for TLS); got "mysql://h/db"'],
  ];

  for (const [env, value, expected] of cases) {
    it(`${env}`, () => {
      const errors = errorsOf({ env: { [env]: value } });
      expect(errors).toHaveLength(1);
      expect(errors[0]).toContain(expected);
      expect(errors[0]).not.toContain(value);
    });
  }

  it('also not from an env file or through loadConfigOrThrow', () => {
    writeEnvFile('.env', 'API_KEY_PEPPER=hunter2hunter2\n');
    try {
      loadConfigOrThrow({ env: {}, cwd: dir });
      expect.unreachable();
    } catch (error) {
      expect((error as Error).message).toContain('API_KEY_PEPPER (value hidden, 14 characters) (in ');
      expect((error as Error).message).not.toContain('hunter2');
    }
  });
});

describe('cross-field checks', () => {
  it('TICKCAST_MAX_FRAME_BYTES must be at least TICKCAST_MAX_MESSAGE_BYTES', () => {
    expect(errorsOf({ env: { TICKCAST_MAX_FRAME_BYTES: '2048' } })).toEqual([
      'TICKCAST_MAX_FRAME_BYTES="2048" is not valid: expected an integer no smaller than TICKCAST_MAX_MESSAGE_BYTES (65536)',
    ]);
    expect(errorsOf({ env: { TICKCAST_MAX_MESSAGE_BYTES: '2000000' } })).toEqual([
      'TICKCAST_MAX_FRAME_BYTES="1048576" (the default) is not valid: expected an integer no smaller than TICKCAST_MAX_MESSAGE_BYTES (2000000)',
    ]);
  });

  it('accepts equal limits', () => {
    const { config } = loadOk({ env: { TICKCAST_MAX_FRAME_BYTES: '4096', TICKCAST_MAX_MESSAGE_BYTES: '4096' } });
    expect(config.ws).toMatchObject({ maxFrameBytes: 4096, maxMessageBytes: 4096 });
  });

  it('a NATS bus needs --feed none and one worker: its nodes take ticks from adapter processes', () => {
    expect(errorsOf({ env: { TICKCAST_BUS: 'nats://127.0.0.1:4222' } })).toEqual([
      'TICKCAST_FEED="simulator" (the default) is not valid: expected none when TICKCAST_BUS is a NATS URL (gateway nodes take their ticks from adapter processes: tickcast adapter --bus nats://…)',
    ]);
    expect(errorsOf({ env: { TICKCAST_BUS: 'nats://127.0.0.1:4222', TICKCAST_FEED: 'none', TICKCAST_WORKERS: '2' } })).toEqual([
      'TICKCAST_WORKERS="2" is not valid: expected 1 when TICKCAST_BUS is a NATS URL (run more gateway nodes instead)',
    ]);
    const { config } = loadOk({ env: { TICKCAST_BUS: 'nats://a:4222,tls://b:4443', TICKCAST_FEED: 'none' } });
    expect(config.bus.nats).toEqual(['nats://a:4222', 'tls://b:4443']);
  });

  it('is skipped when one side is already invalid', () => {
    expect(errorsOf({ env: { TICKCAST_MAX_MESSAGE_BYTES: 'big', TICKCAST_MAX_FRAME_BYTES: '2048' } })).toHaveLength(1);
  });
});

describe('unknown variables', () => {
  it('reports an unknown TICKCAST_ variable with a suggestion', () => {
    expect(errorsOf({ env: { TICKCAST_SIM_RATES: '5' } })).toEqual([
      'TICKCAST_SIM_RATES (in the environment) is not a tickcast setting: did you mean TICKCAST_SIM_RATE?',
    ]);
  });

  it('lists the known ones when nothing is close', () => {
    const [message] = errorsOf({ env: { TICKCAST_BANANA: '1' } });
    expect(message).toMatch(/^TICKCAST_BANANA \(in the environment\) is not a tickcast setting; tickcast's own variables are /);
    expect(message).toContain('TICKCAST_SIM_RATE');
  });

  it('reports one in the env file too', () => {
    const path = writeEnvFile('.env', 'TICKCAST_LOGLEVEL=debug\n');
    expect(errorsOf({})).toEqual([
      `TICKCAST_LOGLEVEL (in ${path}) is not a tickcast setting: did you mean TICKCAST_LOG_LEVEL?`,
    ]);
  });

  it('ignores unknown variables without the TICKCAST_ prefix', () => {
    writeEnvFile('.env', 'LOGS_DATABASE_URL=sqlite:///db/logs.db\nBROKER_API_KEY=x\n');
    expect(load({ env: { PATH: '/usr/bin', HOME: '/root', WEBSOCKET_URL: 'ws://x' } }).ok).toBe(true);
  });
});

describe('loadConfigOrThrow', () => {
  it('returns the config', () => {
    expect(loadConfigOrThrow({ env: { WEBSOCKET_PORT: '9' }, cwd: dir }).ws.port).toBe(9);
  });

  it('throws CONFIG_INVALID with every error, one a line', () => {
    const input = { env: { WEBSOCKET_PORT: 'abc', ZMQ_PORT: 'def' }, cwd: dir };
    const expected = errorsOf(input);
    expect(expected).toHaveLength(2);
    try {
      loadConfigOrThrow(input);
      expect.unreachable();
    } catch (error) {
      expect(error).toBeInstanceOf(TickcastError);
      expect((error as TickcastError).code).toBe(ErrorCode.CONFIG_INVALID);
      expect((error as TickcastError).message).toBe(expected.join('\n'));
    }
  });
});

describe('renderConfigTable', () => {
  const table = renderConfigTable();

  it('has a header and one row per option', () => {
    const lines = table.split('\n');
    expect(lines[0]).toBe('| Variable | Flag | Default | Description |');
    expect(lines).toHaveLength(OPTIONS.length + 2);
  });

  it("contains every option's variable, flag and description", () => {
    for (const option of OPTIONS) {
      const row = table.split('\n').find((line) => line.startsWith(`| \`${option.env}\` |`));
      expect(row, option.env).toBeDefined();
      if (option.flag !== undefined) expect(row).toContain(`\`${option.flag}\``);
      expect(row).toContain(option.description);
    }
  });

  it('shows defaults as users write them', () => {
    expect(table).toContain('| `WS_AUTH_GRACE_SECONDS` | `--auth-grace <seconds>` | `15` |');
    expect(table).toContain('| `API_KEY_PEPPER` |  | (unset) |');
    expect(table).toContain('| `TICKCAST_SIM_SYMBOLS` | `--sim-symbols <list>` | (empty) |');
  });
});

describe('the options table', () => {
  it('has unique keys, variables and flags, and a sentence for each', () => {
    const unique = (values: unknown[]) => new Set(values).size === values.length;
    expect(unique(OPTIONS.map((o) => o.key))).toBe(true);
    expect(unique(OPTIONS.map((o) => o.env))).toBe(true);
    expect(unique(OPTIONS.filter((o) => o.flag).map((o) => o.flag))).toBe(true);
    for (const option of OPTIONS) expect(option.description, option.env).toMatch(/^[A-Z].*\.$/);
  });
});

describe('TLS files', () => {
  it('a certificate without its key (or a key without its certificate) is refused, naming both', () => {
    const cert = loadConfig({ cwd: tmpdir(), env: { TICKCAST_ENV_FILE: devNull, TICKCAST_TLS_CERT: 'c.pem' } });
    expect(cert.ok ? [] : cert.errors).toEqual(['TICKCAST_TLS_CERT="c.pem" is not valid: expected to come with TICKCAST_TLS_KEY (the private key file), which is not set']);
    const key = loadConfig({ cwd: tmpdir(), env: { TICKCAST_ENV_FILE: devNull, TICKCAST_TLS_KEY: 'k.pem' } });
    expect(key.ok ? [] : key.errors).toEqual(['TICKCAST_TLS_KEY="k.pem" is not valid: expected to come with TICKCAST_TLS_CERT (the certificate file), which is not set']);
  });
});
