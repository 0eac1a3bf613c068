/**
 * The `tickcast` command line. Every command loads the configuration the same way (flags over
 * environment over `.env` over defaults) and reports bad input in one clear line per problem.
 *
 * Exit codes: 0 success, 1 runtime failure (e.g. a port in use), 2 bad usage or configuration.
 */
import { Command, CommanderError, Option as CliOption } from 'commander';
import { type OpenAlgoEnvReport, loadConfig } from '../config/load.js';
import { OPTIONS, type Config } from '../config/options.js';
import { CONFIGURATION_CODES, TickcastError } from '../errors.js';
import { registerAdapterCommand } from './adapter.js';
import { registerDecodeCommand } from './decode.js';
import { registerInstanceCommands } from './instances.js';
import { registerCredentialCommands } from './credentials.js';
import { registerKeyCommands } from './keys.js';
import { registerSymbolCommands } from './symbols.js';
import { registerWatchCommand } from './watch.js';
import { runStart } from './start.js';

export const EXIT_OK = 0;
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;

export interface Io {
  out: (text: string) => void;
  err: (text: string) => void;
}

const processIo: Io = {
  out: (text) => process.stdout.write(text),
  err: (text) => process.stderr.write(text),
};

/** Adds the flags of the configuration options named (all of them when `keys` is omitted). */
export function addConfigFlags(command: Command, keys?: readonly string[]): Command {
  for (const option of OPTIONS) {
    if (!option.flag || (keys && !keys.includes(option.key))) continue;
    const description = `${option.description} [${option.env}${option.default !== undefined && !option.secret ? `, default ${option.default}` : ''}]`;
    command.addOption(new CliOption(option.flag, description));
  }
  return command;
}

/** Loads the configuration for a command, or throws a usage error listing every problem. */
export function configFrom(flags: Record<string, unknown>, env: NodeJS.ProcessEnv = process.env): Config {
  return loadedConfig(flags, env).config;
}

/** As configFrom, with what was read from an OpenAlgo directory (for `start`'s summary). */
function loadedConfig(flags: Record<string, unknown>, env: NodeJS.ProcessEnv = process.env): { config: Config; openalgo?: OpenAlgoEnvReport } {
  const result = loadConfig({ env, flags });
  if (!result.ok) throw new UsageError(`invalid configuration:\n  ${result.errors.join('\n  ')}`);
  return result;
}

export class UsageError extends Error {}

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
  registerDecodeCommand(program, io, setExit);
  registerInstanceCommands(program, io);
  registerKeyCommands(program, io, setExit);
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
    io.err(`tickcast: ${(error as Error).stack ?? String(error)}\n`);
    return EXIT_FAILURE;
  }
}
