/**
 * `tickcast adapter`: runs an adapter in its own process for an instance's gateway, found
 * through the registry (or given with --bus and --control). Stops on SIGINT/SIGTERM.
 */
import type { Command } from 'commander';
import { systemClock } from '../clock.js';
import { isValidFeedId } from '../protocol/topics.js';
import { type AdapterOptions, type RunningAdapter, startAdapter } from '../roles/adapter.js';
import { tolerateClosedStdio } from '../observability/closed-output.js';
import { createLogger } from '../observability/logger.js';
import type { Config } from '../config/options.js';
import { addConfigFlags, configFrom, EXIT_FAILURE, type Io, UsageError } from './common.js';

const ADAPTER_FLAGS = [
  'envFile', 'instance', 'dataDir', 'controlKeyFile', 'registry.url', 'registry.ttlMs', 'simulator.rate', 'simulator.symbols', 'simulator.seed', 'simulator.brokers',
  'bus.natsCredsFile', 'bus.natsNkeySeedFile', 'bus.natsTokenFile', 'bus.natsCaFile', 'bus.natsCertFile', 'bus.natsKeyFile', 'logLevel',
];

export function registerAdapterCommand(program: Command, io: Io, setExit: (code: number) => void): void {
  addConfigFlags(
    program
      .command('adapter')
      .description("Run an adapter in its own process, feeding an instance's gateway (found through the registry)")
      .option('--source <source>', 'where the ticks come from: simulator', 'simulator')
      .option('--feed-id <id>', 'feed id of this adapter, unique within the instance (default: the source name)')
      .option('--bus <endpoint>', "the gateway's bus endpoint, instead of looking it up in the registry; nats://HOST:PORT[,…] serves every gateway node of the instance over NATS [TICKCAST_BUS]")
      .option('--control <endpoint>', "the gateway's control endpoint, instead of looking it up in the registry")
      .option('--wait <seconds>', 'give up if no gateway appears within this many seconds (default: wait)')
      .action(async (flags: Record<string, unknown>) => {
        const target = gatewayTarget(flags);
        const { config, nats } = target;
        if (flags.source !== 'simulator') throw new UsageError(`--source "${String(flags.source)}" is not available: expected simulator`);
        const feedId = checkFeedId(String(flags.feedId ?? flags.source));

        // As `start`: a reader that went away with the Ctrl-C must not stop the graceful stop.
        tolerateClosedStdio();
        const logger = createLogger(config.logLevel, process.stderr);
        const stop = new AdapterStop();
        const common: AdapterOptions = { config, feedId, clock: systemClock, logger, onRefused: stop.onRefused };
        const adapter = await runAdapterRole(common, target);
        io.out(`tickcast: adapter "${feedId}" is running for instance "${config.instance}"\n  Bus        ${adapter.bus}${nats ? '  (NATS)' : ''}\n  Control    ${adapter.control}\n`);
        logger.info({ instance: config.instance, feed: feedId }, 'adapter started');

        await stop.until();
        await adapter.stop();
        if (stop.refused) {
          io.err(`tickcast: the gateway refused this adapter: ${stop.refused}\n`);
          setExit(EXIT_FAILURE);
        }
      }),
    ADAPTER_FLAGS,
  );
}

/**
 * What an adapter process waits on once it runs (`tickcast adapter`, `tickcast replay`): its
 * gateway's refusal (`onRefused`, given to the role), SIGINT or SIGTERM, or the work being done
 * (a replay's end), whichever comes first.
 */
export class AdapterStop {
  /** The gateway's refusal, if it refused the adapter. */
  refused: string | undefined;
  private wake: () => void = () => {};

  readonly onRefused = (message: string): void => {
    this.refused = message;
    this.wake();
  };

  /** Resolves with what `done` gives, or undefined once refused or signalled. */
  until<T>(done?: Promise<T>): Promise<T | undefined> {
    return new Promise((resolve) => {
      this.wake = () => resolve(undefined);
      if (this.refused !== undefined) return resolve(undefined);
      process.once('SIGINT', () => resolve(undefined));
      process.once('SIGTERM', () => resolve(undefined));
      void done?.then(resolve);
    });
  }
}

/** Where an adapter process finds its gateway (what `tickcast adapter` and `tickcast replay` share). */
export interface GatewayTarget {
  config: Config;
  /** NATS servers: the adapter serves every gateway node of the instance. */
  nats: readonly string[] | undefined;
  /** The gateway's ZeroMQ endpoints, when given instead of looked up in the registry. */
  bus: string | undefined;
  control: string | undefined;
  waitMs: number | undefined;
}

/** The configuration and gateway of an adapter process, from its flags; UsageError for flags that cannot go together. */
export function gatewayTarget(flags: Record<string, unknown>): GatewayTarget {
  // --bus here is the gateway's ZeroMQ endpoint or NATS servers, not only TICKCAST_BUS's NATS URLs.
  const busFlag = flags.bus === undefined ? undefined : String(flags.bus);
  const natsFlag = busFlag !== undefined && /^(nats|tls):\/\//i.test(busFlag);
  // TICKCAST_FEED is the gateway's in-process feed; this process is the feed, so it does not apply.
  const config = configFrom({ ...flags, bus: natsFlag ? busFlag : undefined, feed: 'none' });
  const nats = config.bus.nats;
  if (nats && busFlag !== undefined && !natsFlag) throw new UsageError('--bus names a ZeroMQ endpoint but TICKCAST_BUS is a NATS URL: use one bus');
  if (nats && flags.control !== undefined) throw new UsageError('--control is for the ZeroMQ bus; on a NATS bus adapters and gateway nodes find each other by subject');
  if (!nats && (flags.bus === undefined) !== (flags.control === undefined)) throw new UsageError('--bus and --control go together');
  const waitSeconds = flags.wait === undefined ? undefined : Number(flags.wait);
  if (waitSeconds !== undefined && !(waitSeconds > 0)) throw new UsageError(`--wait "${String(flags.wait)}" is not valid: expected a number of seconds greater than 0`);
  return {
    config,
    nats,
    bus: natsFlag ? undefined : busFlag,
    control: flags.control === undefined ? undefined : String(flags.control),
    waitMs: waitSeconds === undefined ? undefined : waitSeconds * 1000,
  };
}

export function checkFeedId(feedId: string): string {
  if (!isValidFeedId(feedId)) throw new UsageError(`--feed-id "${feedId}" is not valid: expected 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit`);
  return feedId;
}

/**
 * The adapter role: on a NATS bus it serves every gateway node (loaded only then, so a ZeroMQ
 * adapter never loads the NATS client); else it feeds the one gateway over ZeroMQ.
 */
export async function runAdapterRole(common: AdapterOptions, { nats, bus, control, waitMs }: GatewayTarget): Promise<RunningAdapter> {
  if (nats) return (await import('../roles/nats-adapter.js')).startNatsAdapter({ ...common, nats });
  return startAdapter({ ...common, bus, control, waitMs });
}
