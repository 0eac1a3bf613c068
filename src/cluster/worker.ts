/**
 * One gateway worker of `--workers N` (see primary.ts): the client listener, sessions,
 * subscriptions and fan-out of a normal gateway, with the primary's adapters seen through
 * WorkerAdapter and ticks from the primary's bus fan-out.
 */
import { credentialChecks } from '../adapters/broker-factory.js';
import { ZmqSubscriber } from '../bus/zeromq.js';
import type { Clock } from '../clock.js';
import { Gateway } from '../gateway/gateway.js';
import { failedAuthsFor } from '../gateway/limits.js';
import type { BrokerAdapterFactory } from '../feed.js';
import { dashboardSources } from '../http/dashboard-sources.js';
import { gatewayHttp } from '../http/routes.js';
import { SIMULATOR_BROKER, gatewaySettings, openConfiguredRegistry, openStores, tickHistory, verifierFor } from '../wiring.js';
import type { Logger } from '../observability/logger.js';
import { Teardown } from '../teardown.js';
import type { PrimaryChannel } from './channel.js';
import type { FeedInfo, WorkerInit } from './messages.js';
import { WorkerAdapter } from './worker-adapter.js';
import { primaryConnectionLedger, primaryFailedAuths } from './worker-limits.js';

export interface RunningWorker {
  gateway: Gateway;
  port: number;
  stop(): Promise<void>;
}

export async function startWorker(init: WorkerInit, { channel, clock, logger }: { channel: PrimaryChannel; clock: Clock; logger: Logger }): Promise<RunningWorker> {
  const { config } = init;
  const teardown = new Teardown(logger);
  try {
    const stores = await openStores(config);
    teardown.add(() => stores.close());
    const verifier = verifierFor(config, stores, clock, logger);
    // Read only, for the dashboard's instance list (the primary holds the instance's entry).
    const registry = await openConfiguredRegistry(config, clock);
    teardown.add(() => registry.close());

    const bus = ZmqSubscriber.connect({
      endpoint: init.fanout,
      onError: (error) => logger.error({ err: error.message }, 'bus receive loop failed'),
    });
    teardown.add(() => bus.close());

    const proxies = new Map<string, WorkerAdapter>();
    const proxy = (info: FeedInfo): WorkerAdapter => {
      const adapter = new WorkerAdapter({ feed: info.feed, broker: info.broker, status: info.status, channel });
      proxies.set(info.feed, adapter);
      return adapter;
    };
    const brokerAdapters: BrokerAdapterFactory = {
      brokers: init.userFeedBrokers,
      ...credentialChecks(stores.credentials, stores.openalgo !== undefined),
      create: (user, broker, feed) => {
        const adapter = new WorkerAdapter({ feed, broker, status: 'reconnecting', channel, user });
        proxies.set(feed, adapter);
        return adapter;
      },
    };

    const gateway: Gateway = new Gateway({
      ...gatewaySettings(config, init.port),
      bus,
      adapters: init.feeds.map((info) => ({ adapter: proxy(info), brokers: info.brokers })),
      verifier,
      brokerAdapters,
      cluster: { worker: init.worker },
      // The limits count the whole instance: the primary keeps the counts for every worker.
      shared: {
        connections: primaryConnectionLedger(channel),
        ...(config.limits.authFailures
          ? { failedAuths: failedAuthsFor(config.limits.authFailures, clock, primaryFailedAuths(channel)) }
          : {}),
      },
      http: (gateway) =>
        gatewayHttp(gateway, {
          verifier,
          dashboard: dashboardSources(config, stores, registry, SIMULATOR_BROKER),
          // The primary records; the workers read what it wrote.
          history: tickHistory(config),
          // `/metrics` and `/api/status` describe the whole instance: the primary gathers every worker's.
          collect: async (what) => {
            const result = await channel.request({ type: 'collect', what });
            if (!result.ok || typeof result.body !== 'string') throw new Error(result.ok ? 'the gateway primary sent no figures' : result.message);
            return { contentType: what === 'metrics' ? gateway.metrics.contentType : 'application/json', body: result.body };
          },
          logger,
        }),
      clock,
      logger,
    });
    channel.onMessage((message) => {
      switch (message.type) {
        case 'feed': {
          if (proxies.has(message.info.feed)) return;
          const refusal = gateway.addAdapter({ adapter: proxy(message.info), brokers: message.info.brokers });
          if (refusal) logger.warn({ feed: message.info.feed, reason: refusal }, 'could not add a feed the primary announced');
          return;
        }
        case 'status':
          proxies.get(message.feed)?.setStatus(message.status, message.message);
          return;
        case 'report_request': {
          const report =
            message.what === 'metrics' ? gateway.metrics.registry.getMetricsAsJSON()
            : message.what === 'proxy' ? Promise.resolve(gateway.proxyFigures())
            : Promise.resolve(gateway.status());
          (report as Promise<unknown>).then(
            (body) => channel.send({ type: 'report', id: message.id, body }),
            (error: Error) => logger.warn({ err: error.message }, 'could not report figures to the primary'),
          );
          return;
        }
        default:
          return;
      }
    });
    // The worker made the bus: it closes right after the gateway has stopped its adapters.
    teardown.add(() => bus.close());
    teardown.add(() => gateway.stop());
    const port = await gateway.start();
    return { gateway, port, stop: () => teardown.run() };
  } catch (error) {
    await teardown.run();
    throw error;
  }
}
