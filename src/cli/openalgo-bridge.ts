/**
 * `tickcast openalgo-bridge`: runs OpenAlgo's broker adapters for an instance's gateway (the
 * OpenAlgo bridge, docs/openalgo.md), restarting the bridge if it dies. Stops on SIGINT/SIGTERM.
 */
import type { Command } from 'commander';
import { systemClock } from '../clock.js';
import { tolerateClosedStdio } from '../observability/closed-output.js';
import { createLogger } from '../observability/logger.js';
import { startBridge } from '../roles/openalgo-bridge.js';
import { addConfigFlags, configFrom, EXIT_FAILURE, type Io, UsageError } from './common.js';

const BRIDGE_FLAGS = ['envFile', 'instance', 'dataDir', 'controlKeyFile', 'registry.url', 'registry.ttlMs', 'openalgo.dir', 'openalgo.python', 'openalgo.bridgeStaleMs', 'openalgo.bridgeCallTimeoutMs', 'openalgo.bridgeRetryMs', 'logLevel'];

export function registerBridgeCommand(program: Command, io: Io, setExit: (code: number) => void): void {
  addConfigFlags(
    program
      .command('openalgo-bridge')
      .description("Run OpenAlgo's own broker adapters (one per user, in OpenAlgo's Python) for an instance's gateway started with TICKCAST_OPENALGO_BRIDGE=external")
      .option('--bus <endpoint>', "the gateway's bus endpoint, instead of looking it up in the registry")
      .option('--control <endpoint>', "the gateway's control endpoint, instead of looking it up in the registry")
      .option('--wait <seconds>', 'give up if no gateway appears within this many seconds (default: wait)')
      .action(async (flags: Record<string, unknown>) => {
        const config = configFrom({ ...flags, bus: undefined, feed: 'none' });
        if ((flags.bus === undefined) !== (flags.control === undefined)) throw new UsageError('--bus and --control go together');
        const waitSeconds = flags.wait === undefined ? undefined : Number(flags.wait);
        if (waitSeconds !== undefined && !(waitSeconds > 0)) throw new UsageError(`--wait "${String(flags.wait)}" is not valid: expected a number of seconds greater than 0`);
        tolerateClosedStdio();
        const logger = createLogger(config.logLevel, process.stderr);
        const bridge = await startBridge({
          config,
          ...(flags.bus === undefined ? {} : { endpoints: { bus: String(flags.bus), control: String(flags.control) } }),
          ...(waitSeconds === undefined ? {} : { waitMs: waitSeconds * 1000 }),
          clock: systemClock,
          logger,
        });
        io.out(`tickcast: OpenAlgo bridge is running for instance "${config.instance}"\n  OpenAlgo   ${config.openalgo.dir}\n  Bus        ${bridge.endpoints.bus}\n  Control    ${bridge.endpoints.control}\n`);
        const failure = await new Promise<string | undefined>((resolve) => {
          void bridge.failed.then(resolve);
          process.once('SIGINT', () => resolve(undefined));
          process.once('SIGTERM', () => resolve(undefined));
        });
        await bridge.stop();
        if (failure !== undefined) {
          io.err(`tickcast: the OpenAlgo bridge cannot run: ${failure}\n`);
          setExit(EXIT_FAILURE);
        }
      }),
    BRIDGE_FLAGS,
  );
}
