/**
 * The OpenAlgo bridge role (`tickcast openalgo-bridge`): runs and supervises the bridge for an
 * instance's gateway, found through the registry (or given with --bus and --control), for a
 * gateway started with TICKCAST_OPENALGO_BRIDGE=external. `tickcast start --openalgo-dir` runs
 * the same supervisor itself (wiring.ts superviseBridge).
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Clock } from '../clock.js';
import type { Config } from '../config/options.js';
import { ErrorCode, TickcastError } from '../errors.js';
import { BRIDGE_FEED, BridgeSupervisor, OPENALGO_FACTORY, bridgePython, bridgeTimings } from '../bridge/supervisor.js';
import type { Logger } from '../observability/logger.js';
import { Teardown } from '../teardown.js';
import { type GatewayEndpoints, claimAdapter, controlKeyFile, openConfiguredRegistry, waitForGateway } from '../wiring.js';

export interface BridgeRoleOptions {
  config: Config;
  /** Explicit endpoints instead of the registry's. */
  endpoints?: GatewayEndpoints;
  /** Give up waiting for the gateway after this long (default: wait forever). */
  waitMs?: number;
  clock: Clock;
  logger: Logger;
}

export interface RunningBridge {
  endpoints: GatewayEndpoints;
  supervisor: BridgeSupervisor;
  /** Resolves with the reason when the bridge has failed for good. */
  failed: Promise<string>;
  stop(): Promise<void>;
}

export async function startBridge(options: BridgeRoleOptions): Promise<RunningBridge> {
  const { config, clock, logger } = options;
  const dir = config.openalgo.dir;
  if (dir === undefined) throw new TickcastError(ErrorCode.CONFIG_INVALID, 'the OpenAlgo bridge runs OpenAlgo\'s adapters: give the OpenAlgo directory with --openalgo-dir (TICKCAST_OPENALGO_DIR)');
  if (!existsSync(join(dir, OPENALGO_FACTORY))) {
    throw new TickcastError(ErrorCode.CONFIG_INVALID, `${join(dir, OPENALGO_FACTORY)} does not exist: --openalgo-dir must be an OpenAlgo installation with its websocket_proxy`);
  }
  const teardown = new Teardown(logger);
  try {
    const registry = await openConfiguredRegistry(config, clock);
    teardown.add(() => registry.close());
    const endpoints = options.endpoints ?? (await waitForGateway(registry, config, { waitMs: options.waitMs, clock, logger }));
    // One bridge per instance: a second is refused here, naming the first (`tickcast instances` lists it).
    const registration = await claimAdapter({ config, feedId: BRIDGE_FEED, registry, teardown, clock, logger });
    await registration.publish({ bus: endpoints.bus, control: endpoints.control }, []);
    const supervisor = new BridgeSupervisor({ openalgoDir: dir, python: bridgePython(dir, config.openalgo.python), timings: bridgeTimings(config), keyFile: controlKeyFile(config), instance: config.instance, clock, logger });
    const failed = new Promise<string>((resolve) => supervisor.onFailed(resolve));
    supervisor.start(endpoints);
    teardown.add(() => supervisor.stop());
    return { endpoints, supervisor, failed, stop: () => teardown.run() };
  } catch (error) {
    await teardown.run();
    throw error;
  }
}
