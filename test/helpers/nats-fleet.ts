/**
 * What the tests of gateway nodes on a NATS bus share: a nats-server and a Redis registry of
 * their own (on free ports, started once per describe block by `useNatsFleet`), the environment
 * of an instance on them, an API key made as an operator makes one (`tickcast keys create`), and
 * the simulator as an adapter process of feed `sim`.
 */
import { afterAll, beforeAll, expect } from 'vitest';
import { type AdapterProcess, runCli, startAdapterCliProcess } from './cli.js';
import { TEST_PEPPER } from './instance.js';
import { type NatsServer, startNatsServer } from './nats-server.js';
import { type RedisServer, startRedisServer } from './redis-server.js';

export interface NatsFleet {
  nats: NatsServer;
  redis: RedisServer;
  /** The environment of instance `instance` on this bus (nodes and adapters alike), `extra` added. */
  env(instance: string, extra?: Record<string, string>): Record<string, string>;
}

/** Starts the bus and registry before the block's tests and stops them after; call inside `describe`. */
export function useNatsFleet(): () => NatsFleet {
  let fleet: NatsFleet | undefined;
  beforeAll(async () => {
    const [nats, redis] = await Promise.all([startNatsServer(), startRedisServer()]);
    fleet = {
      nats,
      redis,
      env: (instance, extra = {}) => ({
        TICKCAST_INSTANCE: instance,
        TICKCAST_REGISTRY: `${redis.url}/0`,
        TICKCAST_BUS: nats.url,
        // Nodes on a NATS bus run no simulator of their own: adapters feed them.
        TICKCAST_FEED: 'none',
        TICKCAST_DEV_KEY: 'false',
        API_KEY_PEPPER: TEST_PEPPER,
        TICKCAST_SIM_RATE: '50',
        ...extra,
      }),
    };
  });
  afterAll(async () => {
    await Promise.all([fleet?.nats.stop(), fleet?.redis.stop()]);
  });
  return () => {
    if (!fleet) throw new Error('the NATS fleet is not started: useNatsFleet() belongs in a describe block, its value read in a test');
    return fleet;
  };
}

/** An API key for `user`, made by `tickcast keys create` in the instance of `env`. */
export async function createKeyWithCli(dataDir: string, env: Record<string, string>, user = 'trader'): Promise<string> {
  const created = await runCli(['keys', 'create', '--user', user, '--json'], { dataDir, env });
  expect(created.code, created.stderr).toBe(0);
  return JSON.parse(created.stdout).api_key as string;
}

/** The simulator as an adapter process of feed `feedId`, once it has registered. */
export async function startSimAdapter(dataDir: string, env: Record<string, string>, feedId = 'sim'): Promise<AdapterProcess> {
  const adapter = startAdapterCliProcess({ dataDir, env, args: ['--feed-id', feedId] });
  await adapter.ready;
  return adapter;
}
