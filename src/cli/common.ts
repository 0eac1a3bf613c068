/**
 * What every command shares: exit codes, the output channel, configuration flags and loading,
 * and the usage error. Its own module so the commands and main.ts, which registers them, do not
 * import each other.
 */
import { type Command, Option as CliOption } from 'commander';
import { type OpenAlgoEnvReport, loadConfig } from '../config/load.js';
import { OPTIONS, type Config } from '../config/options.js';
import { asStorageError } from '../store/storage-advice.js';

export const EXIT_OK = 0;
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;

export interface Io {
  out: (text: string) => void;
  err: (text: string) => void;
}


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
export function loadedConfig(flags: Record<string, unknown>, env: NodeJS.ProcessEnv = process.env): { config: Config; openalgo?: OpenAlgoEnvReport } {
  const result = loadConfig({ env, flags });
  if (!result.ok) throw new UsageError(`invalid configuration:\n  ${result.errors.join('\n  ')}`);
  return result;
}

export class UsageError extends Error {}

/**
 * Runs `work`, which writes the store `file`: a storage failure it throws raw (SQLITE_FULL from
 * an insert on a full disk) becomes the operator's error naming the file (DISK_FULL: where to free
 * space), printed as one line instead of a stack trace.
 */
export async function writing<T>(file: string, work: () => T | Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    throw asStorageError(error, 'store', file);
  }
}
