/**
 * `tickcast start`: runs one instance until SIGINT/SIGTERM, then shuts down gracefully (clients
 * are told the server is going away). A second signal exits at once. Signals are taken from the
 * first moment: one that arrives while the instance starts stops it as soon as it is up.
 */
import type { OpenAlgoEnvReport } from '../config/load.js';
import type { Config } from '../config/options.js';
import { startCluster } from '../roles/cluster-primary.js';
import { startGateway } from '../roles/gateway.js';
import { type InstanceSummary, type StartOptions, instanceDir } from '../wiring.js';
import { natsNodeName } from '../nats/node-name.js';
import { tolerateClosedStdio } from '../observability/closed-output.js';
import { createLogger } from '../observability/logger.js';
import { statsFileOf } from '../observability/openalgo-stats.js';
import type { Io } from './common.js';

export async function runStart(config: Config, io: Io, openalgo?: OpenAlgoEnvReport): Promise<number> {
  // Piped output whose reader has gone (Ctrl-C on `tickcast start | tee log` stops tee too) must
  // not stop the graceful shutdown: its writes are dropped.
  tolerateClosedStdio();
  // Logs are JSON lines on stderr; stdout carries the human summary below.
  const logger = createLogger(config.logLevel, process.stderr);
  // Handlers go in before anything else: until they are, a SIGTERM kills the process outright,
  // however soon after the summary it comes.
  let signals = 0;
  let stopRequested: ((signal: NodeJS.Signals) => void) | undefined;
  let early: NodeJS.Signals | undefined;
  const onSignal = (signal: NodeJS.Signals): void => {
    signals++;
    if (signals > 1) {
      logger.warn({ signal }, 'second signal: exiting now');
      process.exit(1);
    }
    if (stopRequested) stopRequested(signal);
    else early = signal;
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  // The configuration has been checked (TICKCAST_WORKERS is 1 on a NATS bus, whose feed is none).
  const instance = await startRole(config, { logger });

  const lines = [
    `tickcast: instance "${config.instance}" is running`,
    `  WebSocket  ${instance.url}`,
    ...(config.workers > 1 ? [`  Workers    ${config.workers} gateway processes share the port`] : []),
    ...(config.bus.nats
      ? [
          `  Bus        ${instance.busEndpoint}  (NATS; this is gateway node "${natsNodeName(config)}" of the instance)`,
          `  Adapters   \`tickcast adapter --instance ${config.instance} --bus ${instance.busEndpoint}\` (found over NATS, on any host)`,
        ]
      : [
          `  Bus        ${instance.busEndpoint}  (ZeroMQ; publishers connect here with [topic, JSON] frames)`,
          `  Control    ${instance.controlEndpoint}  (out-of-process adapters: \`tickcast adapter --instance ${config.instance}\`)`,
        ]),
    config.feed === 'simulator'
      ? `  Feed       simulator: ${instance.instruments} instruments, ${config.simulator.rate} ticks/s per subscribed symbol`
      : '  Feed       none: external publishers only',
    config.database ? `  Data       ${config.database.display}  (OpenAlgo's database, read-only)` : `  Data       ${instanceDir(config)}`,
    `  Registry   ${instance.registryUrl}`,
    ...openAlgoLines(config, openalgo),
  ];
  if (instance.devKey) {
    lines.push(
      `  Dev key    ${instance.devKey.apiKey}`,
      `             (user "${instance.devKey.user}", broker "${instance.devKey.broker}"; shown only now — \`tickcast keys create\` makes more)`,
    );
  } else {
    lines.push(
      config.database
        ? `  API keys   ${instance.keys.count()} in OpenAlgo's database (made on OpenAlgo's API key page; \`tickcast keys list\`)`
        : `  API keys   ${instance.keys.count()} stored (\`tickcast keys list\`, \`tickcast keys create --user NAME\`)`,
    );
  }
  io.out(lines.join('\n') + '\n');
  logger.info({ instance: config.instance, url: instance.url, bus: instance.busEndpoint, feed: config.feed }, 'gateway started');

  return new Promise<number>((resolve) => {
    stopRequested = (signal) => {
      logger.info({ signal }, 'shutting down');
      const force = setTimeout(() => {
        logger.error('shutdown took longer than 10 s; exiting');
        process.exit(1);
      }, 10_000);
      force.unref();
      instance.stop().then(
        () => {
          logger.info('stopped');
          resolve(0);
        },
        (error: Error) => {
          logger.error({ err: error.message }, 'shutdown failed');
          resolve(1);
        },
      );
    };
    if (early) stopRequested(early);
  });
}

/**
 * The process role `start` runs: the cluster primary under --workers, a gateway node on a NATS
 * bus, or else one gateway process. The NATS node is loaded only for a NATS bus, so a ZeroMQ
 * gateway never loads the NATS client.
 */
async function startRole(config: Config, options: StartOptions): Promise<InstanceSummary> {
  if (config.workers > 1) return startCluster(config, options);
  if (config.bus.nats) return (await import('../roles/nats-node.js')).startNatsNode(config, options);
  return startGateway(config, options);
}

/**
 * The summary's lines about an OpenAlgo directory: its .env, the stats file, and (once, in one
 * line) the proxy settings set there for OpenAlgo's proxy that have no effect here.
 */
function openAlgoLines(config: Config, openalgo: OpenAlgoEnvReport | undefined): string[] {
  const lines: string[] = [];
  if (openalgo) lines.push(`  OpenAlgo   ${openalgo.file} read`);
  const stats = statsFileOf(config);
  if (stats) lines.push(`  Stats      ${stats}  (every 10 s, for OpenAlgo's Health Monitor)`);
  if (openalgo && openalgo.unused.length > 0) lines.push(`  Not used   OpenAlgo settings not used by tickcast: ${openalgo.unused.join(', ')}`);
  return lines;
}
