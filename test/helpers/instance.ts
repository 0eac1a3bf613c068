/**
 * Starts a real tickcast instance (gateway, ZeroMQ bus, simulator) on free ports in a temporary
 * data directory, for integration tests. Stop it with `stop()`, which also removes the directory.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../src/config/load.js';
import type { Config } from '../../src/config/options.js';
import { type RunningInstance, startGateway } from '../../src/roles/gateway.js';
import { silentLogger } from '../../src/observability/logger.js';

export interface TestInstance extends RunningInstance {
  dataDir: string;
  /** Creates a key for `user` on `broker` (default: simulator). */
  createKey(user: string, broker?: string): Promise<string>;
}

/** A fixed pepper keeps tests from writing a pepper file; it is ≥ 32 characters as required. */
export const TEST_PEPPER = 'test-pepper-0123456789abcdef0123456789';

/**
 * The configuration a test instance runs with: free ports, a fixed pepper, no dev key, silent
 * logs, its registry and data in `dataDir`; `env` adds to it or overrides it.
 */
export function testConfig(dataDir: string, env: Record<string, string> = {}): Config {
  const result = loadConfig({
    cwd: dataDir,
    env: {
      TICKCAST_DATA_DIR: dataDir,
      TICKCAST_REGISTRY: `sqlite:${join(dataDir, 'registry.db')}`,
      WEBSOCKET_PORT: '0',
      ZMQ_PORT: '0',
      API_KEY_PEPPER: TEST_PEPPER,
      TICKCAST_DEV_KEY: 'false',
      TICKCAST_SIM_RATE: '20',
      TICKCAST_SIM_SEED: '42',
      TICKCAST_LOG_LEVEL: 'silent',
      ...env,
    },
  });
  if (!result.ok) throw new Error(result.errors.join('\n'));
  return result.config;
}

export async function startTestInstance(env: Record<string, string> = {}): Promise<TestInstance> {
  const dataDir = mkdtempSync(join(tmpdir(), 'tickcast-test-'));
  const config = testConfig(dataDir, env);
  // As `tickcast start` chooses: a gateway node on a NATS bus (the benchmarks run one), else one gateway.
  const start = config.bus.nats ? (await import('../../src/roles/nats-node.js')).startNatsNode : startGateway;
  const instance = await start(config, { logger: silentLogger() });
  const stopInstance = instance.stop;
  return Object.assign(instance, {
    dataDir,
    createKey: async (user: string, broker = 'simulator') => (await instance.keys.create(user, broker)).apiKey,
    stop: async () => {
      await stopInstance();
      rmSync(dataDir, { recursive: true, force: true });
    },
  });
}
