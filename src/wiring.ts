/**
 * The parts a tickcast process is built from: its store and API keys, registry claim, adapters,
 * gateway settings, control channel, endpoints and stats file. Each process role assembles them
 * (roles/: one gateway, a NATS node, the cluster primary and its workers, the adapter processes);
 * this module imports none of those roles.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { type Clock, systemClock } from './clock.js';
import type { Config } from './config/options.js';
import { ApiKeyStore, type CreatedApiKey, type InstanceKeys } from './auth/api-keys.js';
import { ApiKeyVerifier } from './auth/key-verifier.js';
import { openStorePepper, pepperedSecrets } from './auth/store-pepper.js';
import type { BusPublisher } from './bus/bus.js';
import { ZmqPublisher } from './bus/zeromq.js';
import { GatewayControl } from './control/gateway-control.js';
import { loadInstanceKey } from './control/keys.js';
import { ZmqGatewayTransport } from './control/transport-zmq.js';
import { DEFAULT_INSTANCE, describeHolder, endpointResource, planEndpoints } from './endpoints.js';
import { defaultRegistryUrl, openRegistry } from './registry/open.js';
import { Registration } from './registry/registration.js';
import type { Registry, RegistryEntry } from './registry/registry.js';
import { ErrorCode, TickcastError } from './errors.js';
import { type Instrument, configuredInstruments } from './adapters/simulator/instruments.js';
import { SimulatedMarket, createRng } from './adapters/simulator/market.js';
import { SimulatorAdapter } from './adapters/simulator/simulator-adapter.js';
import { brokerAdapterFactory, credentialChecks } from './adapters/broker-factory.js';
import { BridgedFeeds, bridgedBrokers, withBridge } from './bridge/bridged-feeds.js';
import { BRIDGE_FEED, type BridgeEndpoints, BridgeSupervisor, OPENALGO_FACTORY, bridgePython, bridgeTimings } from './bridge/supervisor.js';
import { type CredentialReader, CredentialStore } from './auth/credentials.js';
import type { KeyRowSource } from './auth/key-verifier.js';
import type { AsyncSymbolLookup } from './symbols/openalgo-master.js';
import { openOpenAlgoStores } from './store/openalgo-stores.js';
import { RecordingHolds, recordingHolds } from './history/holds.js';
import { Recorder } from './history/recorder.js';
import { FrameRecorder } from './history/frame-recorder.js';
import type { FrameSink } from './adapters/session/frame-sink.js';
import { type HistoryLocation, describeLocation } from './history/store.js';
import type { TickHistory } from './http/ticks.js';
import type { OpenAlgoDb } from './store/openalgo-db.js';
import type { AdapterRoute } from './gateway/feeds.js';
import { SymbolMaster } from './symbols/master.js';
import { Gateway, type GatewayOptions } from './gateway/gateway.js';
import { isUserFeedId } from './gateway/user-feeds.js';
import type { BrokerAdapterFactory } from './feed.js';
import type { Logger } from './observability/logger.js';
import { OpenAlgoStatsWriter, type ProxyFigures, type Ticker, diskStatsFiles, statsFileOf, systemTicker } from './observability/openalgo-stats.js';
import { Teardown } from './teardown.js';
import { natsNodeName } from './nats/node-name.js';
import { type Database, openDatabase } from './store/database.js';
import { checkNoStoreLeftBehind, defaultDataDir, ensureDataDir } from './store/data-dir.js';

/** The user and broker of the development key created on first start. */
export const DEV_USER = 'dev';
import { SIMULATOR_BROKER } from './brokers.js';

export { SIMULATOR_BROKER };

/** What `tickcast start` reports of a running instance, however many processes serve it. */
export interface InstanceSummary {
  config: Config;
  /** Where clients connect (`ws://host:port`). */
  url: string;
  /** The bus endpoint publishers connect to. */
  busEndpoint: string;
  /** The control endpoint out-of-process adapters connect to. */
  controlEndpoint: string;
  /** The instance's API keys: its own store's, or OpenAlgo's (DATABASE_URL), which refuses create(). */
  keys: InstanceKeys;
  /** Set on the start that created the development key (it is shown once). */
  devKey: CreatedApiKey | undefined;
  /** Instruments the simulator serves (0 with `--feed none`). */
  instruments: number;
  /** Where this instance is registered. */
  registryUrl: string;
  stop(): Promise<void>;
}

/** An instance served by one process. */
export interface RunningInstance extends InstanceSummary {
  gateway: Gateway;
}

export interface StartOptions {
  logger: Logger;
  clock?: Clock;
  /** A registry to use instead of opening the configured one (tests). */
  registry?: Registry;
  /** Drives periodic work, OpenAlgo's stats file (tests pass a faster one). */
  ticker?: Ticker;
}

/** An instance's own directory: its API keys, pepper and anything else it keeps. */
export function instanceDir(config: Config): string {
  return join(config.dataDir ?? defaultDataDir(), config.instance);
}

/** The history store's directory (TICKCAST_HISTORY_DIR, else `history` in the instance's). */
export function historyDir(config: Config): string {
  return config.history.dir ?? join(instanceDir(config), 'history');
}

/** Where the history is kept: TICKCAST_HISTORY_URL's PostgreSQL database, else the SQLite day files. */
export function historyLocation(config: Config): HistoryLocation {
  return config.history.url === undefined ? { kind: 'sqlite', dir: historyDir(config) } : { kind: 'postgres', url: config.history.url };
}

/** The history store as `GET /api/ticks` reads it (the store this process's recorder writes), with its read limits. */
export function tickHistory(config: Config): TickHistory {
  return { location: historyLocation(config), maxRangeHours: config.history.ticksMaxRangeHours, maxRows: config.history.ticksMaxRows };
}

/**
 * The recorder of the native broker sockets' raw frames (TICKCAST_RECORD_FRAMES), writing
 * `frames-YYYY-MM-DD.db` in the SQLite history directory on its own thread (always there: the
 * PostgreSQL store holds no frames); undefined when off. Closed by `teardown`, after whatever
 * was added to it later (the feeds whose frames it takes) has stopped.
 */
export function startFrameRecorder(config: Config, teardown: Teardown, { clock, logger }: { clock: Clock; logger: Logger }): FrameRecorder | undefined {
  const { recordFrames, maxAgeDays, maxBytes } = config.history;
  if (recordFrames === 'off') return undefined;
  const dir = historyDir(config);
  const frames = new FrameRecorder({ brokers: recordFrames, dir, clock, logger: logger.child({ part: 'frames' }), maxAgeMs: maxAgeDays * 86_400_000, maxBytes });
  teardown.add(() => frames.close());
  logger.info({ brokers: recordFrames === 'all' ? 'all' : recordFrames, dir }, 'recording broker frames');
  return frames;
}

/**
 * The recorder of the ticks TICKCAST_RECORD selects, writing to the history store on its own
 * thread; undefined when nothing is recorded. Closed (its last batch written) by `teardown`.
 * The streams the selection names are its `holds`: whoever drives this process's upstream (the
 * gateway, or the primary's hub) holds them, so they are recorded without a client; a stream
 * named for every feed is held on the process's own simulator, when it runs one.
 */
export function startRecorder(config: Config, teardown: Teardown, { clock, logger }: { clock: Clock; logger: Logger }): Recorder | undefined {
  const { record, maxAgeDays, maxBytes, queueTicks } = config.history;
  if (!record.any) return undefined;
  const location = historyLocation(config);
  const history = logger.child({ part: 'history' });
  const holds = new RecordingHolds(recordingHolds(record, config.feed === 'simulator' ? SIMULATOR_FEED : undefined), history);
  const recorder = new Recorder({ selection: record, location, clock, logger: history, queueTicks, maxAgeMs: maxAgeDays * 86_400_000, maxBytes, holds });
  teardown.add(() => recorder.close());
  logger.info({ record: record.items, store: describeLocation(location), held: holds.figures().map((hold) => hold.stream) }, 'recording ticks');
  return recorder;
}

export function databaseFile(config: Config): string {
  return join(instanceDir(config), 'tickcast.db');
}

/** What a command that needs tickcast's own store is told when DATABASE_URL points at OpenAlgo's database. */
export const OWN_STORE_UNUSED =
  "tickcast's own store is not used while DATABASE_URL points at OpenAlgo's database: API keys, broker sessions and the symbol master are OpenAlgo's, managed in OpenAlgo (tickcast only reads them)";

/**
 * Opens the instance's own store and the key machinery (the `keys`, `credentials` and `symbols`
 * commands; `start` goes through openStores). MANAGED_BY_OPENALGO with DATABASE_URL, whose
 * database tickcast never writes.
 */
export async function openKeys(config: Config): Promise<{ db: Database; keys: ApiKeyStore; pepper: string; fernetKey: Buffer }> {
  if (config.database) throw new TickcastError(ErrorCode.MANAGED_BY_OPENALGO, OWN_STORE_UNUSED);
  ensureDataDir(instanceDir(config));
  const db = openDatabase(databaseFile(config));
  try {
    if (config.dataDir === undefined) {
      const held = pepperedSecrets(db);
      checkNoStoreLeftBehind(instanceDir(config), config.instance, held.keys + held.credentials > 0);
    }
    // Refuses a pepper other than the one the stored keys were made with (auth/store-pepper.ts).
    const { pepper, fernetKey } = await openStorePepper({
      db,
      configured: config.auth.pepper,
      fernetSalt: config.auth.fernetSalt,
      dir: instanceDir(config),
      instance: config.instance,
    });
    return { db, keys: new ApiKeyStore({ db, pepper, fernetKey }), pepper, fernetKey };
  } catch (error) {
    db.close();
    throw error;
  }
}

/**
 * Where an instance reads API keys, users' broker sessions and the symbol master: its own store,
 * or OpenAlgo's database in place (DATABASE_URL), read-only.
 */
export interface InstanceStores {
  keys: InstanceKeys & KeyRowSource;
  pepper: string;
  fernetKey: Buffer;
  credentials: CredentialReader;
  symbols: SymbolMaster | AsyncSymbolLookup;
  /** tickcast's own database; undefined with DATABASE_URL. */
  own: Database | undefined;
  /** OpenAlgo's database (DATABASE_URL), if that is the store. */
  openalgo: OpenAlgoDb | undefined;
  close(): Promise<void>;
}

/** Opens the instance's stores: OpenAlgo's database when DATABASE_URL is set, else its own. */
export async function openStores(config: Config): Promise<InstanceStores> {
  if (config.database) {
    const oa = await openOpenAlgoStores({ url: config.database, pepper: config.auth.pepper, fernetSalt: config.auth.fernetSalt, brokerApiKey: config.auth.brokerApiKey });
    return { ...oa, own: undefined, openalgo: oa.db, close: () => oa.db.close() };
  }
  const { db, keys, pepper, fernetKey } = await openKeys(config);
  try {
    return {
      keys,
      pepper,
      fernetKey,
      credentials: new CredentialStore({ db, fernetKey }),
      symbols: new SymbolMaster(db),
      own: db,
      openalgo: undefined,
      close: async () => {
        db.close();
      },
    };
  } catch (error) {
    db.close();
    throw error;
  }
}

/** Opens the configured registry (a per-user SQLite file unless TICKCAST_REGISTRY says otherwise). */
export function openConfiguredRegistry(config: Config, clock: Clock): Promise<Registry> {
  return openRegistry(config.registry.url ?? defaultRegistryUrl(), { ttlMs: config.registry.ttlMs, clock });
}

/** The TLS certificate and key, read once at start. */
function readTls(certFile: string, keyFile: string): { cert: Buffer; key: Buffer } {
  const read = (variable: string, file: string): Buffer => {
    try {
      return readFileSync(file);
    } catch (error) {
      throw new TickcastError(ErrorCode.CONFIG_INVALID, `${variable}: cannot read ${file}: ${(error as Error).message}`);
    }
  };
  return { cert: read('TICKCAST_TLS_CERT', certFile), key: read('TICKCAST_TLS_KEY', keyFile) };
}

/** The variable that pins each endpoint, for messages. */
function variableFor(part: 'ws' | 'bus' | 'control', config: Config): string {
  if (part === 'ws') return 'WEBSOCKET_PORT';
  if (config.bus.transport === 'ipc') return 'TICKCAST_BUS_TRANSPORT=ipc';
  return part === 'bus' ? 'ZMQ_PORT' : 'TICKCAST_CONTROL_PORT';
}

const PORT_FLAGS = { ws: ['--port', 'WEBSOCKET_PORT'], bus: ['--zmq-port', 'ZMQ_PORT'], control: ['--control-port', 'TICKCAST_CONTROL_PORT'] } as const;

/**
 * How to get past a taken endpoint, for the message that names its holder: another port, or
 * (when the port is only the default instance's default) another instance name, whose ports are
 * picked free; an ipc endpoint is named after the instance, so only another name helps.
 */
export function portConflictAdvice(part: 'ws' | 'bus' | 'control', config: Config): string {
  if (config.bus.transport === 'ipc' && part !== 'ws') {
    return 'Its name comes from the instance name: run this one as another instance with --instance NAME, or use --transport tcp.';
  }
  const [flag, variable] = PORT_FLAGS[part];
  const configured = part === 'ws' ? config.ws.port : part === 'bus' ? config.bus.port : config.control.port;
  const otherPort = `pick another port with ${flag} N (or ${variable}=N; 0 picks a free one)`;
  // Only an unset port of the default instance is a default that another name would avoid.
  return configured === undefined && config.instance === DEFAULT_INSTANCE
    ? `To run beside it, ${otherPort}, or run this one as another instance with --instance NAME, which picks free ports by itself.`
    : `To run beside it, ${otherPort}.`;
}

/** The one-line message of a taken endpoint: who holds it, and what to do about it. */
function portConflict(part: 'ws' | 'bus' | 'control', endpoint: string, holder: RegistryEntry | undefined, config: Config): TickcastError {
  return new TickcastError(ErrorCode.PORT_IN_USE, `${variableFor(part, config)}: ${endpoint} is already in use by ${describeHolder(holder)}. ${portConflictAdvice(part, config)}`);
}

/**
 * Re-raises a bind failure as one line naming who holds the endpoint (an instance from the
 * registry, or a process outside tickcast) and how to run beside it.
 */
export async function explainBindFailure(
  error: unknown,
  part: 'ws' | 'bus' | 'control',
  endpoint: string,
  config: Config,
  registry: Registry,
  self: Registration,
): Promise<never> {
  if (!(error instanceof TickcastError) || error.code !== ErrorCode.PORT_IN_USE) throw error;
  const resource = endpointResource(endpoint);
  const found = resource ? await registry.holderOf(resource) : undefined;
  // Our own claim on a pinned endpoint says nothing about who is really bound to it.
  const holder = found && found.id !== self.id ? found : undefined;
  throw portConflict(part, endpoint, holder, config);
}

/** What every instance opens before its clients' side: the registry claim, the store, the keys. */
export interface InstanceBase {
  registry: Registry;
  registration: Registration;
  plan: ReturnType<typeof planEndpoints>;
  wsEndpoint: string;
  stores: InstanceStores;
  keys: InstanceKeys;
  verifier: ApiKeyVerifier;
  devKey: CreatedApiKey | undefined;
}

/**
 * Claims the instance name and every pinned endpoint before binding anything, so two processes
 * racing for either cannot both win and the loser learns who won; then opens the store and keys.
 */
export async function openInstance(config: Config, teardown: Teardown, { logger, clock = systemClock, registry: given }: StartOptions): Promise<InstanceBase> {
  const registry = given ?? (await openConfiguredRegistry(config, clock));
  if (!given) teardown.add(() => registry.close());

  const plan = planEndpoints(config);
  const wsEndpoint = `tcp://${config.ws.host}:${plan.wsPort}`;
  // On a NATS bus an instance has many gateway nodes, each claiming its own name and no ZeroMQ ports.
  const node = config.bus.nats ? natsNodeName(config) : undefined;
  const pinned = (node ? [wsEndpoint] : [wsEndpoint, plan.bus, plan.control]).map(endpointResource).filter((r): r is string => r !== undefined);
  const claim = await Registration.claim({
    registry,
    instance: config.instance,
    role: 'gateway',
    name: node ?? config.instance,
    resources: pinned,
    ttlMs: config.registry.ttlMs,
    clock,
    logger,
    prune: true,
  });
  if (!claim.ok) {
    if (claim.conflict === 'name') {
      const what = node ? `node "${node}" of instance "${config.instance}"` : `instance "${config.instance}"`;
      const advice = node ? 'To run another node beside it, give it its own name with --node NAME.' : 'To run another gateway beside it, give it its own instance name with --instance NAME.';
      throw new TickcastError(ErrorCode.INSTANCE_RUNNING, `${what} is already running: ${describeHolder(claim.holder)}. ${advice}`);
    }
    const part = claim.resource === endpointResource(wsEndpoint) ? 'ws' : claim.resource === endpointResource(plan.bus) ? 'bus' : 'control';
    const endpoint = part === 'ws' ? wsEndpoint : part === 'bus' ? plan.bus : plan.control;
    throw portConflict(part, endpoint, claim.holder, config);
  }
  const registration = claim.registration;
  teardown.add(() => registration.release());

  const stores = await openStores(config);
  teardown.add(() => stores.close());
  const verifier = verifierFor(config, stores, clock, logger);
  const { keys } = stores;
  if (stores.openalgo) {
    logger.info({ database: stores.openalgo.where, keys: keys.count() }, "API keys, broker sessions and the symbol master are read from OpenAlgo's database (DATABASE_URL), never written");
  }

  let devKey: CreatedApiKey | undefined;
  // OpenAlgo's keys are made in OpenAlgo: no development key goes into its database.
  if (config.auth.devKey && stores.own && keys.count() === 0) {
    devKey = await keys.create(DEV_USER, SIMULATOR_BROKER);
    await verifier.prime(devKey.apiKey, devKey.user, devKey.broker);
  }
  return { registry, registration, plan, wsEndpoint, stores, keys, verifier, devKey };
}

export function verifierFor(config: Config, stores: Pick<InstanceStores, 'keys' | 'pepper' | 'fernetKey'>, clock: Clock, logger: Logger): ApiKeyVerifier {
  const { keys, pepper, fernetKey } = stores;
  return new ApiKeyVerifier({ store: keys, pepper, fernetKey, clock, positiveTtlMs: config.auth.cacheTtlMs, logger });
}

/** The factory of users' own native broker feeds, over the instance's stores. */
export function userBrokerFeeds(
  config: Config,
  stores: Pick<InstanceStores, 'symbols' | 'credentials' | 'openalgo'>,
  publisher: BusPublisher,
  { logger, clock, frames }: { logger: Logger; clock: Clock; frames?: FrameSink | undefined },
): BrokerAdapterFactory {
  return brokerAdapterFactory({
    ...(frames ? { frames } : {}),
    symbols: stores.symbols,
    credentials: stores.credentials,
    managedByOpenAlgo: stores.openalgo !== undefined,
    publisher,
    clock,
    logger,
    urls: {
      zerodha: config.brokers.kiteUrl,
      angel: config.brokers.angelUrl,
      dhan: config.brokers.dhanUrl,
      dhanDepth: config.brokers.dhanDepthUrl,
      upstox: config.brokers.upstoxUrl,
      shoonya: config.brokers.shoonyaUrl,
      flattrade: config.brokers.flattradeUrl,
    },
  });
}

/** The OpenAlgo bridge of an instance: the users' feeds it serves, and the process when tickcast runs it. */
export interface OpenAlgoBridge {
  feeds: BridgedFeeds;
  supervisor: BridgeSupervisor | undefined;
}

/**
 * Whether the OpenAlgo bridge serves users (TICKCAST_OPENALGO_BRIDGE): `supervised` (tickcast
 * runs it), `external` (the user runs `tickcast openalgo-bridge`) or `off`.
 */
export function bridgeMode(config: Config): 'supervised' | 'external' | 'off' {
  const { bridge, dir } = config.openalgo;
  if (bridge === 'off') return 'off';
  if (bridge === 'external') return 'external';
  const usable = dir !== undefined && existsSync(join(dir, OPENALGO_FACTORY));
  if (usable) return 'supervised';
  if (bridge === 'on') {
    throw new TickcastError(
      ErrorCode.CONFIG_INVALID,
      dir === undefined
        ? 'TICKCAST_OPENALGO_BRIDGE=on needs the OpenAlgo directory whose adapters it runs: set TICKCAST_OPENALGO_DIR (--openalgo-dir)'
        : `TICKCAST_OPENALGO_BRIDGE=on, but ${join(dir, OPENALGO_FACTORY)} does not exist: TICKCAST_OPENALGO_DIR must be an OpenAlgo installation with its websocket_proxy`,
    );
  }
  return 'off';
}

/** The bridge's feeds and (when tickcast runs it) its supervisor, started later by `superviseBridge`. */
function openAlgoBridge(config: Config, credentials: CredentialReader, managedByOpenAlgo: boolean, { logger, clock }: { logger: Logger; clock: Clock }): OpenAlgoBridge | undefined {
  const mode = bridgeMode(config);
  if (mode === 'off') return undefined;
  const dir = config.openalgo.dir;
  const supervisor =
    mode === 'supervised'
      ? new BridgeSupervisor({
          openalgoDir: dir!,
          python: bridgePython(dir!, config.openalgo.python),
          timings: bridgeTimings(config),
          keyFile: controlKeyFile(config),
          instance: config.instance,
          clock,
          logger: logger.child({ part: 'bridge' }),
        })
      : undefined;
  const feeds = new BridgedFeeds({
    brokers: bridgedBrokers(config.openalgo.bridgeBrokers),
    credentials: credentialChecks(credentials, managedByOpenAlgo),
    noBridge: () => supervisor?.describe() ?? 'no OpenAlgo bridge is connected (run `tickcast openalgo-bridge --openalgo-dir DIR`)',
    logger,
  });
  supervisor?.onFailed((reason) => feeds.unavailable(`the OpenAlgo bridge cannot run: ${reason}`));
  return { feeds, supervisor };
}

/**
 * Starts the bridge tickcast runs (if it does) for the gateway at `endpoints`; it stops at
 * teardown. It is registered as the instance's adapter `openalgo` (so `tickcast instances` lists
 * it, and a second one for the instance is not started).
 */
export async function superviseBridge(
  bridge: OpenAlgoBridge | undefined,
  endpoints: BridgeEndpoints,
  teardown: Teardown,
  { config, registry, clock, logger }: { config: Config; registry: Registry; clock: Clock; logger: Logger },
): Promise<void> {
  const supervisor = bridge?.supervisor;
  if (!supervisor) return;
  let registration: Registration;
  try {
    registration = await claimAdapter({ config, feedId: BRIDGE_FEED, registry, teardown, clock, logger });
  } catch (error) {
    // Another process runs the instance's bridge (`tickcast openalgo-bridge`): it serves.
    logger.error({ err: (error as Error).message }, 'not starting the OpenAlgo bridge: one already runs for this instance');
    return;
  }
  await registration.publish({ bus: endpoints.bus, control: endpoints.control }, []);
  supervisor.start(endpoints);
  teardown.add(() => supervisor.stop());
}

/** The instance's in-process adapters (the simulator, unless `--feed none`) and its per-user broker feeds. */
export function createAdapters(
  config: Config,
  /** The instance's bus endpoint, or (in a single gateway process) a direct in-process publisher. */
  bus: string | (() => BusPublisher),
  base: Pick<InstanceBase, 'stores'>,
  teardown: Teardown,
  { logger, clock }: { logger: Logger; clock: Clock },
): { adapters: AdapterRoute[]; instruments: number; brokerAdapters: BrokerAdapterFactory; bridge: OpenAlgoBridge | undefined; frames: FrameRecorder | undefined } {
  const publisherFor = (what: string): BusPublisher => {
    if (typeof bus !== 'string') return bus();
    const publisher = new ZmqPublisher({
      endpoint: bus,
      batch: config.bus.batch,
      onDropped: (count) => logger.warn({ count }, `${what} dropped ticks: bus queue full`),
    });
    teardown.add(() => publisher.close());
    return publisher;
  };
  const adapters: AdapterRoute[] = [];
  let instruments = 0;
  if (config.feed === 'simulator') {
    const list = configuredInstruments(config.simulator.symbols);
    instruments = list.length;
    const publisher = publisherFor('simulator');
    adapters.push({
      adapter: createSimulator({ config, instruments: list, publisher, clock, logger, feed: SIMULATOR_FEED }),
      brokers: config.simulator.brokers,
    });
  }

  // Users with stored Zerodha or Angel credentials get their own broker feed (one publisher for all).
  const brokerPublisher = publisherFor('broker feeds');
  // Added to the teardown before the gateway that stops the feeds: closed after them, with their last frames.
  const frames = startFrameRecorder(config, teardown, { clock, logger });
  const native = userBrokerFeeds(config, base.stores, brokerPublisher, { logger, clock, frames });
  // Users of every other broker OpenAlgo streams for: OpenAlgo's own adapters, through the bridge.
  const bridge = openAlgoBridge(config, base.stores.credentials, base.stores.openalgo !== undefined, { logger, clock });
  return { adapters, instruments, brokerAdapters: bridge ? withBridge(native, bridge.feeds) : native, bridge, frames };
}

/** The gateway options that come straight from configuration (the same in every worker). */
export function gatewaySettings(
  config: Config,
  port: number,
): Pick<GatewayOptions, 'listener' | 'limits' | 'snapshots' | 'snapshotMaxAgeMs' | 'recovery' | 'sharedFeedBrokers' | 'supportedBrokers'> {
  return {
    listener: {
      host: config.ws.host,
      port,
      maxMessageBytes: config.ws.maxMessageBytes,
      maxFrameBytes: config.ws.maxFrameBytes,
      maxBufferedBytes: config.ws.maxBufferedBytes,
      slowConsumerMs: config.ws.slowConsumerMs,
      maxConnections: config.limits.maxConnections,
      ...(config.ws.allowedOrigins ? { allowedOrigins: config.ws.allowedOrigins } : {}),
      ...(config.ws.tlsCert && config.ws.tlsKey ? { tls: readTls(config.ws.tlsCert, config.ws.tlsKey) } : {}),
      maxPendingAuth: config.limits.maxPendingAuth,
      authGraceMs: config.ws.authGraceMs,
      pingIntervalMs: config.ws.pingIntervalMs,
      pingTimeoutMs: config.ws.pingTimeoutMs,
    },
    limits: {
      maxConnectionsPerKey: config.limits.maxConnectionsPerKey,
      maxSubscriptions: config.limits.maxSubscriptions,
      subscribeRate: config.limits.subscribeRate,
      authFailures: config.limits.authFailures,
    },
    snapshots: config.ws.snapshots,
    snapshotMaxAgeMs: config.ws.snapshotMaxAgeMs,
    recovery: { ticks: config.ws.recoveryTicks, maxAgeMs: config.ws.recoveryMaxAgeMs, bytes: config.ws.recoveryBytes },
    sharedFeedBrokers: sharedFeedBrokers(config),
    ...(config.validBrokers ? { supportedBrokers: config.validBrokers } : {}),
  };
}

/**
 * Brokers the shared feed serves: `auto` is every broker with `--feed none` (OpenAlgo's proxy,
 * where the bus is the feed) and none otherwise (the simulator never stands in for a broker).
 */
export function sharedFeedBrokers(config: Config): readonly string[] | '*' {
  const { sharedFeed } = config;
  if (sharedFeed === 'auto') return config.feed === 'none' ? '*' : [];
  if (sharedFeed === 'none') return [];
  return sharedFeed.includes('*') ? '*' : sharedFeed;
}

/** A running gateway's ZeroMQ endpoints, as it published them in the registry. */
export interface GatewayEndpoints {
  bus: string;
  control: string;
}

export async function findGateway(registry: Registry, instance: string): Promise<GatewayEndpoints | undefined> {
  const [gateway] = await registry.find(instance, 'gateway');
  const { bus, control } = gateway?.endpoints ?? {};
  return bus && control ? { bus, control } : undefined;
}

/** The instance's gateway, waiting for it to start (GATEWAY_NOT_FOUND after `waitMs`, if given). */
export async function waitForGateway(
  registry: Registry,
  config: Config,
  { waitMs, clock, logger }: { waitMs: number | undefined; clock: Clock; logger: Logger },
): Promise<GatewayEndpoints> {
  const pollMs = Math.max(100, Math.min(1000, config.registry.ttlMs / 3));
  const started = clock.now();
  let loggedAt = -Infinity;
  for (;;) {
    const endpoints = await findGateway(registry, config.instance);
    if (endpoints) return endpoints;
    const now = clock.now();
    if (waitMs !== undefined && now - started >= waitMs) {
      throw new TickcastError(ErrorCode.GATEWAY_NOT_FOUND, `no gateway of instance "${config.instance}" appeared in ${registry.url}`);
    }
    if (now - loggedAt >= 10_000) {
      loggedAt = now;
      logger.info({ instance: config.instance, registry: registry.url }, 'waiting for the gateway to start');
    }
    await new Promise((resolve) => setTimeout(resolve, pollMs));
  }
}

/** Where adapters join at run time: a gateway, or the primary of a worker pool. */
export interface AdapterHost {
  addAdapter(route: AdapterRoute): string | undefined;
  replay(feed: string): Promise<void>;
}

/**
 * The instance's control key (control/keys.ts). A configured file must exist: it is a copy of
 * the instance's key, and a process that made up its own would never be heard. The default file
 * (`control.key` in the instance's data directory) is created by the first process that needs it.
 */
export function instanceControlKey(config: Config): Buffer {
  return loadInstanceKey(controlKeyFile(config), { create: config.controlKeyFile === undefined });
}

/** Where the instance's control key is: TICKCAST_CONTROL_KEY_FILE, else control.key in its data directory. */
export function controlKeyFile(config: Config): string {
  return config.controlKeyFile ?? join(instanceDir(config), 'control.key');
}

/**
 * Lets out-of-process adapters join `host` through `control`: each accepted feed is routed, and
 * every registration (the first, and after each adapter restart) replays the feed's streams. A
 * feed host (the OpenAlgo bridge) serves the bridged users' feeds when `bridged` is given.
 */
export function acceptAdapters(control: GatewayControl, host: AdapterHost, logger: Logger, bridged?: BridgedFeeds): void {
  control.onAdapter((remote, info) => {
    if (isUserFeedId(info.feed)) return { accept: false, message: `feed id "${info.feed}" has the form of a user's own broker feed (<broker>.<user>), which only that user's feed may use` };
    if (info.hosts !== undefined) {
      if (!bridged) return { accept: false, message: 'this gateway serves no users through a feed host (TICKCAST_OPENALGO_BRIDGE is off, or there is no OpenAlgo directory)' };
      if (info.brokers === '*' || info.brokers.length > 0) return { accept: false, message: 'a feed host serves users only through the feeds it opens: its brokers must be []' };
      const taken = bridged.taken();
      if (taken) return { accept: false, message: taken };
    }
    const refusal = host.addAdapter({ adapter: remote, brokers: info.brokers });
    if (refusal) return { accept: false, message: refusal };
    if (info.hosts !== undefined) bridged!.attach(remote, (feed) => host.replay(feed));
    remote.onReconnect(() => void host.replay(remote.feed));
    logger.info({ feed: info.feed, broker: info.broker, adapterPid: info.pid, adapterHost: info.host }, 'adapter connected');
    return { accept: true };
  });
}

/** Binds the ZeroMQ control channel and lets out-of-process adapters (and the OpenAlgo bridge, if any) join `host`. */
export async function bindControl(
  config: Config,
  base: InstanceBase,
  host: AdapterHost,
  teardown: Teardown,
  { logger, clock, bridge }: { logger: Logger; clock: Clock; bridge?: OpenAlgoBridge | undefined },
): Promise<GatewayControl> {
  const key = instanceControlKey(config);
  const transport = await ZmqGatewayTransport.bind(base.plan.control, logger).catch((error) =>
    explainBindFailure(error, 'control', base.plan.control, config, base.registry, base.registration),
  );
  teardown.add(() => transport.close());
  const control = new GatewayControl({ transport, key, instance: config.instance, gateway: `${hostname()}/${process.pid}/${randomBytes(4).toString('hex')}`, clock, logger: logger.child({ part: 'control' }) });
  teardown.add(() => control.close());
  acceptAdapters(control, host, logger, bridge?.feeds);
  return control;
}

/** Publishes the bound endpoints in the registry; returns the clients' URL. */
export async function publishEndpoints(config: Config, base: InstanceBase, port: number, busEndpoint: string, controlEndpoint: string): Promise<string> {
  const host = config.ws.host.includes(':') ? `[${config.ws.host}]` : config.ws.host;
  const url = `${config.ws.tlsCert ? 'wss' : 'ws'}://${host}:${port}`;
  await base.registration.publish(
    { ws: url, bus: busEndpoint, control: controlEndpoint },
    [`tcp://${config.ws.host}:${port}`, busEndpoint, controlEndpoint].map(endpointResource).filter((r): r is string => r !== undefined),
  );
  return url;
}

/**
 * With `--openalgo-dir` (or `WS_PROXY_STATS_FILE`), keeps OpenAlgo's Health Monitor fed with
 * the proxy stats file until teardown.
 */
export function writeOpenAlgoStats(
  config: Config,
  figures: () => ProxyFigures | Promise<ProxyFigures>,
  teardown: Teardown,
  { logger, clock, ticker = systemTicker }: { logger: Logger; clock: Clock; ticker?: Ticker | undefined },
): void {
  const path = statsFileOf(config);
  if (path === undefined) return;
  const writer = new OpenAlgoStatsWriter({ path, figures, files: diskStatsFiles, clock, ticker, logger });
  writer.start();
  teardown.add(() => writer.stop());
  logger.info({ file: path }, "writing OpenAlgo's proxy stats file every 10 s (its Health Monitor reads it)");
}

/** The in-process simulator's feed id. */
export const SIMULATOR_FEED = 'simulator';

/** A simulator adapter publishing on `publisher` (in the gateway process or an adapter process). */
export function createSimulator(options: {
  config: Config;
  instruments: readonly Instrument[];
  publisher: BusPublisher;
  clock: Clock;
  logger: Logger;
  feed: string;
}): SimulatorAdapter {
  const { config, clock } = options;
  const seed = config.simulator.seed ?? Math.floor(Math.random() * 2 ** 32);
  return new SimulatorAdapter({
    feed: options.feed,
    broker: SIMULATOR_BROKER,
    market: new SimulatedMarket({ instruments: options.instruments, rng: createRng(seed), now: () => clock.now() }),
    publisher: options.publisher,
    ratePerSymbol: config.simulator.rate,
    clock,
    logger: options.logger.child({ feed: options.feed }),
  });
}

/**
 * Claims an adapter process's feed id in the registry, released at teardown; INSTANCE_RUNNING
 * naming the holder when another process has it.
 */
export async function claimAdapter(options: { config: Config; feedId: string; registry: Registry; teardown: Teardown; clock: Clock; logger: Logger }): Promise<Registration> {
  const { config, feedId, registry, clock, logger } = options;
  const claim = await Registration.claim({ registry, instance: config.instance, role: 'adapter', name: feedId, resources: [], ttlMs: config.registry.ttlMs, clock, logger });
  if (!claim.ok) {
    throw new TickcastError(ErrorCode.INSTANCE_RUNNING, `adapter "${feedId}" of instance "${config.instance}" is already running: ${describeHolder(claim.holder)}`);
  }
  const { registration } = claim;
  options.teardown.add(() => registration.release());
  return registration;
}

/** The simulator an adapter process serves on `publisher`, started; it and the publisher are closed at teardown. */
export async function startAdapterSimulator(options: { config: Config; feedId: string; publisher: BusPublisher; teardown: Teardown; clock: Clock; logger: Logger }): Promise<SimulatorAdapter> {
  const { config, feedId, publisher, teardown, clock, logger } = options;
  teardown.add(() => publisher.close());
  const adapter = createSimulator({ config, instruments: configuredInstruments(config.simulator.symbols), publisher, clock, logger, feed: feedId });
  await adapter.start();
  teardown.add(() => adapter.stop());
  return adapter;
}
