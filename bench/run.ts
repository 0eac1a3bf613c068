/**
 * The benchmark harness: runs a scenario's load against the real gateway and against a minimal
 * raw-`ws` broadcast server (the practical ceiling on this machine), one after the other, each
 * in its own process and driven by the same load-generator processes; prints a markdown table
 * and, with --json, writes the results.
 *
 *   npm run bench -- --scenario NAME [--clients N] [--rate TICKS_PER_S] [--duration S] [--json FILE]
 *
 * How it measures: bench/README.md.
 */
import { writeFileSync } from 'node:fs';
import { ensureBuilt } from './build.js';
import { installCleanupHandlers, runMain } from './cleanup.js';
import { progress, runOnce } from './compare.js';
import { runMax } from './max.js';
import { type BenchOptions, USAGE, UsageError, parseOptions } from './options.js';

async function main(): Promise<number> {
  let options: BenchOptions;
  try {
    options = parseOptions(process.argv.slice(2));
  } catch (error) {
    if (error instanceof UsageError || (error as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      if ((error as Error).message) process.stderr.write(`bench: ${(error as Error).message}\n\n`);
      process.stderr.write(USAGE);
      return (error as Error).message ? 2 : 0;
    }
    throw error;
  }
  installCleanupHandlers();
  ensureBuilt(options.build);
  const started = performance.now();
  const { text, json } = options.scenario.steps ? await runMax(options) : await runOnce(options);
  const elapsedS = (performance.now() - started) / 1000;
  process.stdout.write(`${text}\n\n_${options.scenario.name} took ${elapsedS.toFixed(1)} s_\n`);
  if (options.jsonFile) {
    writeFileSync(options.jsonFile, JSON.stringify({ ...json, elapsed_s: Number(elapsedS.toFixed(1)) }, null, 2) + '\n');
    progress(`wrote ${options.jsonFile}`);
  }
  return 0;
}

runMain('bench', main);
