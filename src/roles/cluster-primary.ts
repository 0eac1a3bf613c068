/**
 * The cluster primary role (`--workers N`): the instance's registry entry, bus proxy, adapters
 * and control channel in this process, and N gateway worker processes (cluster-worker.ts) that
 * share the WebSocket port. The pool of workers and the hub are in cluster/.
 */
import cluster from 'node:cluster';
import { fileURLToPath } from 'node:url';
import { systemClock } from '../clock.js';
import type { Config } from '../config/options.js';
import { ZmqBusProxy } from '../bus/zmq-proxy.js';
import { createFanoutDir } from '../cluster/fanout-dir.js';
import { Hub } from '../cluster/hub.js';
import { InstanceLimits } from '../cluster/instance-limits.js';
import { WorkerPool } from '../cluster/primary.js';
import { UserFeeds } from '../gateway/user-feeds.js';
import { Teardown } from '../teardown.js';
import { ZmqSubscriber } from '../bus/zeromq.js';
import { RecordingTap } from '../history/tap.js';
import { type InstanceSummary, type StartOptions, bindControl, createAdapters, explainBindFailure, openInstance, publishEndpoints, startRecorder, superviseBridge, writeOpenAlgoStats } from '../wiring.js';

/** Starts the primary of an instance with `config.workers` gateway workers. */
export async function startCluster(config: Config, options: StartOptions): Promise<InstanceSummary> {
  const { logger, clock = systemClock } = options;
  const teardown = new Teardown(logger);
  try {
    const base = await openInstance(config, teardown, options);
    const { plan, registry, registration } = base;

    // A socket file in a 0700 directory: an abstract name would let any local process read the bus.
    const { fanout, removedStale } = createFanoutDir();
    teardown.add(() => fanout.remove());
    if (removedStale.length > 0) logger.info({ dirs: removedStale }, 'removed fan-out directories left by primaries that were killed');
    const bus = await ZmqBusProxy.bind({
      endpoint: plan.bus,
      fanout: fanout.endpoint,
      onError: (error) => logger.error({ err: error.message }, 'bus proxy failed; workers receive no ticks'),
    }).catch((error) => explainBindFailure(error, 'bus', plan.bus, config, registry, registration));
    teardown.add(() => bus.close());
    logger.info({ fanout: bus.fanout }, "bus fan-out to the workers bound");

    // The recorder hears the fan-out as a worker does, once for the instance (workers record nothing).
    const recorder = startRecorder(config, teardown, { clock, logger });
    if (recorder) {
      const tap = ZmqSubscriber.connect({ endpoint: bus.fanout, onError: (error) => logger.error({ err: error.message }, 'the recorder stopped hearing the bus') });
      teardown.add(() => tap.close());
      tap.onMessage(new RecordingTap(recorder).handle);
    }

    const { adapters, instruments, brokerAdapters, bridge } = createAdapters(config, bus.endpoint, base, teardown, { logger, clock });
    // Assigned right below; status changes are only reported once adapters start.
    let pool: WorkerPool | undefined;
    const hub = new Hub({
      adapters,
      logger,
      // The primary holds what the recorder names, so the tap above hears it without a client.
      ...(recorder ? { holds: recorder.holds } : {}),
      onStatus: (feed, status, message) => {
        logger.info({ feed, status, message }, 'feed status changed');
        pool?.broadcast(message === undefined ? { type: 'status', feed, status } : { type: 'status', feed, status, message });
      },
    });
    const userFeeds = new UserFeeds(brokerAdapters, (adapter) => hub.add({ adapter, brokers: [] }, false), logger, clock);

    cluster.setupPrimary({ exec: fileURLToPath(new URL('./cluster-worker.js', import.meta.url)), args: [] });
    // One count for the instance: each worker alone would allow every key the whole budget.
    const limits = new InstanceLimits({ maxConnectionsPerKey: config.limits.maxConnectionsPerKey, authFailures: config.limits.authFailures, clock });
    pool = new WorkerPool({ count: config.workers, config, hub, userFeeds, limits, fanout: bus.fanout, port: plan.wsPort, clock, logger, ...(recorder ? { recorder } : {}) });
    const control = await bindControl(config, base, pool, teardown, { logger, clock, bridge });
    teardown.add(() => pool.stop());
    const port = await pool.start().catch((error) => explainBindFailure(error, 'ws', base.wsEndpoint, config, registry, registration));
    const url = await publishEndpoints(config, base, port, bus.endpoint, control.endpoint);
    await superviseBridge(bridge, { control: control.endpoint, bus: bus.endpoint }, teardown, { config, registry, clock, logger });
    writeOpenAlgoStats(config, () => pool.proxyFigures(), teardown, { logger, clock });

    return {
      config,
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
