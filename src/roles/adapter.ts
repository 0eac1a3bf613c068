/**
 * The adapter role on a ZeroMQ bus: an out-of-process adapter (`tickcast adapter`; on a NATS bus
 * the CLI runs nats-adapter.ts instead). It finds its instance's gateway through
 * the registry (waiting for it if it is not up yet), publishes ticks on the gateway's bus, takes
 * subscribe commands over the control protocol (proving it holds the instance's control key), and follows the gateway if it restarts on other
 * endpoints.
 */
import { ZmqPublisher } from '../bus/zeromq.js';
import { AdapterControl } from '../control/adapter-control.js';
import { ZmqAdapterTransport } from '../control/transport-zmq.js';
import { ErrorCode, TickcastError } from '../errors.js';
import { type GatewayEndpoints, claimAdapter, findGateway, instanceControlKey, openConfiguredRegistry, startAdapterSimulator, waitForGateway } from '../wiring.js';
import { Teardown } from '../teardown.js';
import type { AdapterOptions, RunningAdapter } from './adapter-options.js';

export type { AdapterOptions, RunningAdapter } from './adapter-options.js';

export interface ZmqAdapterOptions extends AdapterOptions {
  /** Explicit endpoints instead of the registry's. */
  bus?: string;
  control?: string;
  /** Give up waiting for the gateway after this long (default: wait forever). */
  waitMs?: number;
}

/** How long an adapter waits for its first registration before it says what may be wrong. */
const REGISTRATION_HINT_MS = 10_000;

export async function startAdapter(options: ZmqAdapterOptions): Promise<RunningAdapter> {
  const { config, feedId, clock, logger } = options;
  const teardown = new Teardown(logger);

  try {
    const registry = options.registry ?? (await openConfiguredRegistry(config, clock));
    if (!options.registry) teardown.add(() => registry.close());
    const pollMs = Math.max(100, Math.min(1000, config.registry.ttlMs / 3));

    const endpoints: GatewayEndpoints =
      options.bus && options.control ? { bus: options.bus, control: options.control } : await waitForGateway(registry, config, { waitMs: options.waitMs, clock, logger });

    const registration = await claimAdapter({ config, feedId, registry, teardown, clock, logger });
    const publisher = new ZmqPublisher({
      endpoint: endpoints.bus,
      batch: config.bus.batch,
      onDropped: (count) => logger.warn({ count }, 'dropped ticks: bus queue full'),
    });
    const adapter = options.serve ? await options.serve(publisher, teardown) : await startAdapterSimulator({ config, feedId, publisher, teardown, clock, logger });

    // The first registration (or refusal) decides whether this adapter is running.
    let settle: (refusal: string | undefined) => void = () => {};
    const registered = new Promise<string | undefined>((resolve) => (settle = resolve));
    const key = instanceControlKey(config);
    const transport = new ZmqAdapterTransport(endpoints.control, logger);
    teardown.add(() => transport.close());
    const control = new AdapterControl({
      transport,
      key,
      adapter,
      brokers: [...(options.brokers ?? config.simulator.brokers)],
      instance: config.instance,
      clock,
      logger: logger.child({ part: 'control' }),
      onRefused: (message) => {
        settle(message);
        options.onRefused?.(message);
      },
      onGatewayLost: (reason) => logger.warn({ instance: config.instance, reason }, 'gateway lost; waiting for it to come back'),
      onGatewayFound: () => {
        settle(undefined);
        logger.info({ instance: config.instance }, 'connected to the gateway');
      },
    });
    control.start();
    teardown.add(() => control.stop());
    // A gateway that never registers us usually means another control key: say so, not nothing.
    const hint = setTimeout(
      () => logger.warn({ instance: config.instance, control: endpoints!.control }, "not registered by the gateway yet: if it logs 'control frame refused', this adapter's control key is not the instance's (TICKCAST_CONTROL_KEY_FILE)"),
      REGISTRATION_HINT_MS,
    );
    hint.unref();
    teardown.add(() => clearTimeout(hint));
    const refusal = await registered;
    clearTimeout(hint);
    if (refusal !== undefined) {
      throw new TickcastError(ErrorCode.INSTANCE_RUNNING, `the gateway of instance "${config.instance}" refused adapter "${feedId}": ${refusal}`);
    }
    await registration.publish({ bus: endpoints.bus, control: endpoints.control }, []);

    // A gateway restarted on other (auto) ports: follow it.
    if (!options.bus) {
      let current = endpoints;
      // A registry that keeps failing is logged once, and again when it works, not every poll.
      let lookupFailing = false;
      const follow = setInterval(() => {
        void findGateway(registry, config.instance).then(
          (found) => {
            if (lookupFailing) logger.info({ registry: registry.url }, 'registry lookup works again');
            lookupFailing = false;
            if (!found || (found.bus === current.bus && found.control === current.control)) return;
            logger.info({ bus: found.bus, control: found.control }, 'gateway moved; reconnecting');
            publisher.reconnect(found.bus);
            transport.reconnect(found.control);
            control.dropGateways(`moving to the gateway at ${found.control}`);
            current = found;
            registration.publish({ bus: found.bus, control: found.control }, []).catch((error: Error) =>
              logger.warn({ err: error.message }, 'could not record the new endpoints in the registry; still serving'),
            );
          },
          (error: Error) => {
            if (!lookupFailing) logger.warn({ err: error.message }, 'registry lookup failed; still serving the current gateway, retrying');
            lookupFailing = true;
          },
        );
      }, pollMs);
      follow.unref();
      teardown.add(() => clearInterval(follow));
    }

    return { feedId, bus: endpoints.bus, control: endpoints.control, stop: () => teardown.run() };
  } catch (error) {
    await teardown.run();
    throw error;
  }
}
