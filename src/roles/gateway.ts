/**
 * The gateway role: one tickcast instance in a single gateway process on a ZeroMQ bus (store, API
 * keys, bus, adapters, gateway, control channel). The CLI's `start` runs it when the instance has
 * one worker and no NATS bus (a NATS bus runs nats-node.ts, --workers cluster-primary.ts); the
 * integration tests start it directly.
 */
import { systemClock } from '../clock.js';
import type { Config } from '../config/options.js';
import { LocalPublishing } from '../bus/local.js';
import { ZmqSubscriber } from '../bus/zeromq.js';
import { Gateway } from '../gateway/gateway.js';
import { tuneHeap } from '../gateway/heap-tuning.js';
import { dashboardSources } from '../http/dashboard-sources.js';
import { gatewayHttp } from '../http/routes.js';
import { Teardown } from '../teardown.js';
import {
  SIMULATOR_BROKER,
  type RunningInstance,
  type StartOptions,
  bindControl,
  createAdapters,
  explainBindFailure,
  gatewaySettings,
  startRecorder,
  tickHistory,
  openInstance,
  publishEndpoints,
  superviseBridge,
  writeOpenAlgoStats,
} from '../wiring.js';

export type { InstanceSummary, RunningInstance, StartOptions } from '../wiring.js';

export async function startGateway(config: Config, options: StartOptions): Promise<RunningInstance> {
  const { logger, clock = systemClock } = options;
  // A process-wide setting, so it belongs to the process that runs the gateway, set before it starts.
  tuneHeap();
  const teardown = new Teardown(logger);

  try {
    const base = await openInstance(config, teardown, options);
    const { plan, registry, registration } = base;

    const bus = new LocalPublishing(
      await ZmqSubscriber.bind({
        endpoint: plan.bus,
        onError: (error) => logger.error({ err: error.message }, 'bus receive loop failed'),
      }).catch((error) => explainBindFailure(error, 'bus', plan.bus, config, registry, registration)),
    );
    teardown.add(() => bus.close());

    // In-process adapters hand their ticks straight to this gateway (bus/local.ts).
    const { adapters, instruments, brokerAdapters, bridge, frames } = createAdapters(config, () => bus.publisher(), base, teardown, { logger, clock });

    // Closed after the gateway has stopped (teardown runs backwards), so its last ticks are written.
    const recorder = startRecorder(config, teardown, { clock, logger });
    const gateway: Gateway = new Gateway({
      ...gatewaySettings(config, plan.wsPort),
      ...(recorder ? { recorder } : {}),
      ...(frames ? { frames } : {}),
      bus,
      adapters,
      verifier: base.verifier,
      brokerAdapters,
      http: (gateway) => gatewayHttp(gateway, { verifier: base.verifier, dashboard: dashboardSources(config, base.stores, registry, SIMULATOR_BROKER), history: tickHistory(config), logger }),
      clock,
      logger,
    });

    const control = await bindControl(config, base, gateway, teardown, { logger, clock, bridge });

    // The bus closes right after the gateway has stopped its adapters (the step above covers a failed start).
    teardown.add(() => bus.close());
    teardown.add(() => gateway.stop());
    const port = await gateway.start().catch((error) => explainBindFailure(error, 'ws', base.wsEndpoint, config, registry, registration));
    const url = await publishEndpoints(config, base, port, bus.endpoint, control.endpoint);
    await superviseBridge(bridge, { control: control.endpoint, bus: bus.endpoint }, teardown, { config, registry, clock, logger });
    writeOpenAlgoStats(config, () => gateway.proxyFigures(), teardown, { logger, clock, ticker: options.ticker });

    return {
      config,
      gateway,
      url,
      busEndpoint: bus.endpoint,
      controlEndpoint: control.endpoint,
      keys: base.keys,
      devKey: base.devKey,
      instruments,
      registryUrl: registry.url,
      stop: () => teardown.run(),
    };
  } catch (error) {
    await teardown.run();
    throw error;
  }
}
