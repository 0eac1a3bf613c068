/**
 * The `tickcast` command line. Every command loads the configuration the same way (flags over
 * environment over `.env` over defaults) and reports bad input in one clear line per problem.
 *
 * Exit codes: 0 success, 1 runtime failure (e.g. a port in use), 2 bad usage or configuration.
 */
import { Command, CommanderError } from 'commander';
import { CONFIGURATION_CODES, ErrorCode, TickcastError } from '../errors.js';
import { storageProblem } from '../store/storage-advice.js';
import { registerAdapterCommand } from './adapter.js';
import { registerBridgeCommand } from './openalgo-bridge.js';
import { registerDecodeCommand } from './decode.js';
import { registerFramesCommand } from './frames.js';
import { registerInstanceCommands } from './instances.js';
import { registerCredentialCommands } from './credentials.js';
import { registerKeyCommands } from './keys.js';
import { registerReplayCommand } from './replay.js';
import { registerSymbolCommands } from './symbols.js';
import { registerWatchCommand } from './watch.js';
import { runStart } from './start.js';
import { EXIT_FAILURE, EXIT_OK, EXIT_USAGE, type Io, UsageError, addConfigFlags, loadedConfig } from './common.js';

const processIo: Io = {
  out: (text) => process.stdout.write(text),
  err: (text) => process.stderr.write(text),
};

export function buildProgram(io: Io, setExit: (code: number) => void): Command {
  const program = new Command('tickcast')
    .description('Real-time market-data gateway, compatible with OpenAlgo clients')
    .version(process.env.npm_package_version ?? '0.1.0')
    .exitOverride()
    .configureOutput({ writeOut: io.out, writeErr: io.err })
    .showHelpAfterError(false);

  addConfigFlags(
    program
      .command('start')
      .description('Run the gateway (with the simulated market unless --feed none)')
      .action(async (flags: Record<string, unknown>) => {
        const { config, openalgo } = loadedConfig(flags);
        setExit(await runStart(config, io, openalgo));
      }),
  );

  registerAdapterCommand(program, io, setExit);
  registerBridgeCommand(program, io, setExit);
  registerDecodeCommand(program, io, setExit);
  registerFramesCommand(program, io, setExit);
  registerInstanceCommands(program, io);
  registerKeyCommands(program, io, setExit);
  registerReplayCommand(program, io, setExit);
  registerSymbolCommands(program, io, setExit);
  registerCredentialCommands(program, io, setExit);
  registerWatchCommand(program, io, setExit);
  return program;
}

export async function main(argv: string[], io: Io = processIo): Promise<number> {
  let exitCode = EXIT_OK;
  const program = buildProgram(io, (code) => (exitCode = code));
  try {
    await program.parseAsync(argv);
    return exitCode;
  } catch (error) {
    if (error instanceof CommanderError) {
      // Help and version exit 0; commander has already printed what went wrong otherwise.
      return error.exitCode === 0 ? EXIT_OK : EXIT_USAGE;
    }
    if (error instanceof UsageError) {
      io.err(`tickcast: ${error.message}\n`);
      return EXIT_USAGE;
    }
    if (error instanceof TickcastError) {
      io.err(`tickcast: ${error.message} [${error.code}]\n`);
      return CONFIGURATION_CODES.has(error.code) ? EXIT_USAGE : EXIT_FAILURE;
    }
    // A storage failure no command named a file for still gets one line saying what to do, not a stack trace.
    const problem = storageProblem(error);
    if (problem === 'full') {
      io.err(`tickcast: ${(error as Error).message}; disk full: free space on the disk holding the data directory (TICKCAST_DATA_DIR), then try again [${ErrorCode.DISK_FULL}]\n`);
      return EXIT_FAILURE;
    }
    io.err(`tickcast: ${(error as Error).stack ?? String(error)}\n`);
    return EXIT_FAILURE;
  }
}
