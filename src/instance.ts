/**
 * Wires one tickcast instance from its configuration: store, API keys, bus, adapters, gateway.
 * This is the one place where a process's parts are created and connected; the CLI's `start`
 * and the integration tests both go through it.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { type Clock, systemClock } from './clock.js';
import type { Config } from './config/options.js';
import { ApiKeyStore, type CreatedApiKey } from './auth/api-keys.js';
import { deriveFernetKey } from './auth/fernet.js';
import { ApiKeyVerifier } from './auth/key-verifier.js';
import { resolvePepper } from './auth/pepper.js';
import { ZmqPublisher, ZmqSubscriber, type ZmqSubscriberOptions } from './bus/zeromq.js';
import { ErrorCode, TickcastError } from './errors.js';
import { DEFAULT_INSTRUMENTS, parseInstrumentList } from './adapters/simulator/instruments.js';
import { SimulatedMarket, createRng } from './adapters/simulator/market.js';
import { SimulatorAdapter } from './adapters/simulator/simulator-adapter.js';
import type { AdapterRoute } from './gateway/feeds.js';
import { Gateway } from './gateway/gateway.js';
import type { Logger } from './observability/logger.js';
import { type Database, openDatabase } from './store/database.js';

/** The user and broker of the development key created on first start. */
export const DEV_USER = 'dev';
export const SIMULATOR_BROKER = 'simulator';

export interface RunningInstance {
  config: Config;
  gateway: Gateway;
  /** Where clients connect (`ws://host:port`). */
  url: string;
  /** The bus endpoint publishers connect to. */
  busEndpoint: string;
  keys: ApiKeyStore;
  /** Set on the start that created the development key (it is shown once). */
  devKey: CreatedApiKey | undefined;
  /** Instruments the simulator serves (0 with `--feed none`). */
  instruments: number;
  stop(): Promise<void>;
}

export interface StartOptions {
  logger: Logger;
  clock?: Clock;
}

export function databaseFile(config: Config): string {
  return join(config.dataDir, 'tickcast.db');
}

/** Opens the store and the key machinery (shared by `start` and the `keys` commands). */
export async function openKeys(config: Config): Promise<{ db: Database; keys: ApiKeyStore; pepper: string; fernetKey: Buffer }> {
  mkdirSync(config.dataDir, { recursive: true });
  const db = openDatabase(databaseFile(config));
  try {
    const { pepper } = resolvePepper(config.auth.pepper, config.dataDir);
    const fernetKey = await deriveFernetKey(pepper, config.auth.fernetSalt);
    return { db, keys: new ApiKeyStore({ db, pepper, fernetKey }), pepper, fernetKey };
  } catch (error) {
    db.close();
    throw error;
  }
}

/** Binds the bus endpoint from ZMQ_HOST/ZMQ_PORT, naming those variables if the port is taken. */
async function bindBus(config: Config, options: Omit<ZmqSubscriberOptions, 'endpoint'>): Promise<ZmqSubscriber> {
  const endpoint = `tcp://${config.bus.host}:${config.bus.port}`;
  try {
    return await ZmqSubscriber.bind({ endpoint, ...options });
  } catch (error) {
    if (error instanceof TickcastError && error.code === ErrorCode.PORT_IN_USE) {
      throw new TickcastError(
        ErrorCode.PORT_IN_USE,
        `ZMQ_PORT ${config.bus.port} on ${config.bus.host} is already in use by another process (bus endpoint ${endpoint})`,
      );
    }
    throw error;
  }
}

export async function startInstance(config: Config, { logger, clock = systemClock }: StartOptions): Promise<RunningInstance> {
  const { db, keys, pepper, fernetKey } = await openKeys(config);
  const cleanups: Array<() => Promise<void> | void> = [
    () => {
      db.close();
    },
  ];
  const cleanup = async (): Promise<void> => {
    for (const step of cleanups.reverse()) await step();
  };

  try {
    const verifier = new ApiKeyVerifier({
      store: keys,
      pepper,
      fernetKey,
      clock,
      positiveTtlMs: config.auth.cacheTtlMs,
      logger,
    });

    let devKey: CreatedApiKey | undefined;
    if (config.auth.devKey && keys.count() === 0) {
      devKey = await keys.create(DEV_USER, SIMULATOR_BROKER);
      verifier.prime(devKey.apiKey, devKey.user, devKey.broker);
    }

    const bus = await bindBus(config, {
      onError: (error) => logger.error({ err: error.message }, 'bus receive loop failed'),
    });
    cleanups.push(() => bus.close());

    const adapters: AdapterRoute[] = [];
    let instruments = 0;
    if (config.feed === 'simulator') {
      const list = config.simulator.symbols ? parseInstrumentList(config.simulator.symbols) : DEFAULT_INSTRUMENTS;
      instruments = list.length;
      const publisher = new ZmqPublisher({
        endpoint: bus.endpoint,
        onDropped: (count) => logger.warn({ count }, 'simulator dropped ticks: bus queue full'),
      });
      cleanups.push(() => publisher.close());
      const seed = config.simulator.seed ?? Math.floor(Math.random() * 2 ** 32);
      const market = new SimulatedMarket({ instruments: list, rng: createRng(seed), now: () => clock.now() });
      const adapter = new SimulatorAdapter({
        feed: 'simulator',
        broker: SIMULATOR_BROKER,
        market,
        publisher,
        ratePerSymbol: config.simulator.rate,
        clock,
        logger: logger.child({ feed: 'simulator' }),
      });
      const brokers = config.simulator.brokers;
      adapters.push({ adapter, brokers: brokers.includes('*') ? '*' : brokers });
    }

    const gateway: Gateway = new Gateway({
      listener: {
        host: config.ws.host,
        port: config.ws.port,
        maxMessageBytes: config.ws.maxMessageBytes,
        maxFrameBytes: config.ws.maxFrameBytes,
        maxBufferedBytes: config.ws.maxBufferedBytes,
        authGraceMs: config.ws.authGraceMs,
        pingIntervalMs: config.ws.pingIntervalMs,
        pingTimeoutMs: config.ws.pingTimeoutMs,
      },
      bus,
      adapters,
      verifier,
      supportedBrokers: config.validBrokers,
      clock,
      logger,
    });
    const port = await gateway.start();
    cleanups.push(() => gateway.stop());

    const host = config.ws.host.includes(':') ? `[${config.ws.host}]` : config.ws.host;
    let stopping: Promise<void> | undefined;
    return {
      config,
      gateway,
      url: `ws://${host}:${port}`,
      busEndpoint: bus.endpoint,
      keys,
      devKey,
      instruments,
      stop: () => (stopping ??= cleanup()),
    };
  } catch (error) {
    await cleanup();
    throw error;
  }
}
