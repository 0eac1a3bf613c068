/**
 * The NATS node role: one gateway node of an instance whose bus is NATS (`tickcast start --bus
 * nats://…`), the same gateway as ever, fed by a NatsTickSubscriber that subscribes to the
 * streams its clients want, with out-of-process adapters reached over the NATS control plane. Any
 * number of nodes of one instance run side by side, on one host or many, each registered under
 * its own node name.
 */
import { randomBytes } from 'node:crypto';
import { NatsLink, NatsTickSubscriber } from '../bus/nats.js';
import { Subjects } from '../bus/subjects.js';
import { systemClock } from '../clock.js';
import type { Config } from '../config/options.js';
import { GatewayControl } from '../control/gateway-control.js';
import { NatsGatewayTransport } from '../control/transport-nats.js';
import { endpointResource } from '../endpoints.js';
import { tuneHeap } from '../gateway/heap-tuning.js';
import { dashboardSources } from '../http/dashboard-sources.js';
import { gatewayHttp } from '../http/routes.js';
import { Gateway } from '../gateway/gateway.js';
import { SIMULATOR_BROKER, type RunningInstance, type StartOptions, acceptAdapters, explainBindFailure, gatewaySettings, instanceControlKey, openInstance, startFrameRecorder, startRecorder, tickHistory, writeOpenAlgoStats, userBrokerFeeds } from '../wiring.js';
import { Teardown } from '../teardown.js';
import { natsSecurity } from '../nats/security.js';
import { natsNodeName } from '../nats/node-name.js';

export async function startNatsNode(config: Config, options: StartOptions): Promise<RunningInstance> {
  const { logger, clock = systemClock } = options;
  const servers = config.bus.nats;
  if (!servers) throw new Error('startNatsNode needs TICKCAST_BUS');
  // A process-wide setting, so it belongs to the process that runs the gateway, set before it starts.
  tuneHeap();
  const teardown = new Teardown(logger);
  try {
    const base = await openInstance(config, teardown, options);
    const name = natsNodeName(config);
    const link = await NatsLink.connect({ servers, security: natsSecurity(config), name: `tickcast gateway ${config.instance}/${name}`, logger });
    teardown.add(() => link.close());
    const subjects = new Subjects(config.instance);
    const bus = new NatsTickSubscriber(link, subjects, logger);

    // A user's own broker session feeds only this node's clients: other nodes start their own.
    const frames = startFrameRecorder(config, teardown, { clock, logger });
    const brokerAdapters = userBrokerFeeds(config, base.stores, bus.localPublisher(), { logger, clock, frames });

    // Each node records what reaches it (set TICKCAST_RECORD on the nodes that should); closed after the gateway stops.
    const recorder = startRecorder(config, teardown, { clock, logger });
    const gateway = new Gateway({
      ...gatewaySettings(config, base.plan.wsPort),
      ...(recorder ? { recorder } : {}),
      ...(frames ? { frames } : {}),
      bus,
      adapters: [],
      verifier: base.verifier,
      brokerAdapters,
      http: (gateway) => gatewayHttp(gateway, { verifier: base.verifier, dashboard: dashboardSources(config, base.stores, base.registry, SIMULATOR_BROKER), history: tickHistory(config), logger }),
      clock,
      logger,
    });

    const transport = new NatsGatewayTransport(link, subjects);
    teardown.add(() => transport.close());
    const control = new GatewayControl({
      transport,
      key: instanceControlKey(config),
      instance: config.instance,
      // Unique per process: a restarted node is a new node to the adapters, whatever its name.
      gateway: `${name}/${randomBytes(4).toString('hex')}`,
      clock,
      logger: logger.child({ part: 'control' }),
    });
    teardown.add(() => control.close());
    acceptAdapters(control, gateway, logger);

    // This node made the bus: it closes right after the gateway has stopped its adapters.
    teardown.add(() => bus.close());
    teardown.add(() => gateway.stop());
    const port = await gateway.start().catch((error) => explainBindFailure(error, 'ws', base.wsEndpoint, config, base.registry, base.registration));
    const host = config.ws.host.includes(':') ? `[${config.ws.host}]` : config.ws.host;
    const url = `${config.ws.tlsCert ? 'wss' : 'ws'}://${host}:${port}`;
    const wsResource = endpointResource(`tcp://${config.ws.host}:${port}`);
    await base.registration.publish({ ws: url, bus: link.servers }, wsResource ? [wsResource] : []);
    // This node's own figures: each node of the instance serves its own clients.
    writeOpenAlgoStats(config, () => gateway.proxyFigures(), teardown, { logger, clock });

    return {
      config,
      gateway,
      url,
      busEndpoint: link.servers,
      controlEndpoint: control.endpoint,
      keys: base.keys,
      devKey: base.devKey,
      instruments: 0,
      registryUrl: base.registry.url,
      stop: () => teardown.run(),
    };
  } catch (error) {
    await teardown.run();
    throw error;
  }
}
