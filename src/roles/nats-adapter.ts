/**
 * The NATS adapter role: an out-of-process adapter on a NATS bus (`tickcast adapter --bus
 * nats://…`). It publishes ticks on the stream subjects and serves every gateway node of its
 * instance over the NATS control plane, wherever they run. No gateway needs to exist first: nodes
 * find it when they come.
 */
import { NatsLink, NatsPublisher } from '../bus/nats.js';
import { Subjects } from '../bus/subjects.js';
import type { AdapterOptions, RunningAdapter } from './adapter-options.js';
import { AdapterControl } from '../control/adapter-control.js';
import { NatsAdapterTransport } from '../control/transport-nats.js';
import { ErrorCode, TickcastError } from '../errors.js';
import { claimAdapter, instanceControlKey, openConfiguredRegistry, startAdapterSimulator } from '../wiring.js';
import { Teardown } from '../teardown.js';
import { natsSecurity } from '../nats/security.js';

/** How long a starting adapter waits for a node to refuse it (its feed id taken) before it counts as running. */
const REFUSAL_WAIT_MS = 2500;
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms).unref());

export interface NatsAdapterOptions extends AdapterOptions {
  /** The NATS servers: the adapter serves every gateway node of the instance over them. */
  nats: readonly string[];
}

export async function startNatsAdapter(options: NatsAdapterOptions): Promise<RunningAdapter> {
  const { config, feedId, clock, logger } = options;
  const teardown = new Teardown(logger);
  try {
    const registry = options.registry ?? (await openConfiguredRegistry(config, clock));
    if (!options.registry) teardown.add(() => registry.close());
    const registration = await claimAdapter({ config, feedId, registry, teardown, clock, logger });

    const link = await NatsLink.connect({ servers: options.nats, security: natsSecurity(config), name: `tickcast adapter ${config.instance}/${feedId}`, logger });
    teardown.add(() => link.close());
    const subjects = new Subjects(config.instance);
    const publisher = new NatsPublisher(link, subjects, {
      batch: config.bus.batch,
      onDropped: (count) => logger.warn({ count }, 'dropped ticks: the NATS bus is unreachable'),
    });
    const adapter = options.serve ? await options.serve(publisher, teardown) : await startAdapterSimulator({ config, feedId, publisher, teardown, clock, logger });

    const transport = new NatsAdapterTransport(link, subjects);
    teardown.add(() => transport.close());
    // A gateway node that already serves this feed id from another process refuses this one.
    let refuse: (message: string) => void = () => {};
    const refused = new Promise<string>((resolve) => (refuse = resolve));
    const control = new AdapterControl({
      transport,
      key: instanceControlKey(config),
      adapter,
      brokers: [...(options.brokers ?? config.simulator.brokers)],
      instance: config.instance,
      clock,
      logger: logger.child({ part: 'control' }),
      onRefused: (message) => {
        refuse(message);
        options.onRefused?.(message);
      },
    });
    control.start();
    teardown.add(() => control.stop());
    // No node needs to exist yet; but one that is there answers within a few heartbeats.
    const refusal = await Promise.race([refused, sleep(REFUSAL_WAIT_MS).then(() => undefined)]);
    if (refusal !== undefined) {
      throw new TickcastError(ErrorCode.INSTANCE_RUNNING, `adapter "${feedId}" of instance "${config.instance}" was refused on the NATS bus ${link.servers}: ${refusal}`);
    }
    await registration.publish({ bus: link.servers }, []);
    return { feedId, bus: link.servers, control: transport.inbox, stop: () => teardown.run() };
  } catch (error) {
    await teardown.run();
    throw error;
  }
}
