/**
 * The long fuzz run: the properties of test/fuzz/properties.ts (the same ones `npm test` runs a
 * few hundred times each), as many times as asked.
 *
 *   npm run fuzz                              every target, 10 000 runs per property
 *   npm run fuzz -- --runs 100000             more runs
 *   npm run fuzz -- --target zerodha --target angel
 *   npm run fuzz -- --seed 42                 replay a run (fast-check prints the seed of a failure)
 *
 * Properties that build a 64 KiB input per run get a share of the runs (the table shows how many
 * ran). Prints a table of targets, runs, failures and time, then each failure's report; exits 1
 * on any failure.
 */
import { parseArgs } from 'node:util';
import { TARGETS, type CaseResult } from '../test/fuzz/properties.js';

const USAGE = 'usage: npm run fuzz -- [--runs N] [--target NAME]... [--seed N]';

function options(): { runs: number; targets: string[]; seed?: number } {
  const { values } = parseArgs({
    options: {
      runs: { type: 'string', default: '10000' },
      target: { type: 'string', multiple: true },
      seed: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    console.log(`${USAGE}\ntargets: ${Object.keys(TARGETS).join(', ')}`);
    process.exit(0);
  }
  const runs = Number(values.runs);
  if (!Number.isSafeInteger(runs) || runs < 1) throw new Error(`--runs must be a positive integer, got ${values.runs}`);
  const targets = values.target ?? Object.keys(TARGETS);
  for (const target of targets) {
    if (!Object.hasOwn(TARGETS, target)) throw new Error(`unknown target ${target}; targets: ${Object.keys(TARGETS).join(', ')}`);
  }
  const seed = values.seed === undefined ? undefined : Number(values.seed);
  if (seed !== undefined && !Number.isSafeInteger(seed)) throw new Error(`--seed must be an integer, got ${values.seed}`);
  return seed === undefined ? { runs, targets } : { runs, targets, seed };
}

interface Row {
  target: string;
  properties: number;
  runs: number;
  failures: number;
  seconds: number;
}

function table(rows: readonly Row[]): string {
  const header = ['target', 'properties', 'runs', 'failures', 'seconds'];
  const cells = rows.map((r) => [r.target, String(r.properties), String(r.runs), String(r.failures), r.seconds.toFixed(1)]);
  const widths = header.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i]!.length)));
  const line = (c: readonly string[]) => c.map((v, i) => (i === 0 ? v.padEnd(widths[i]!) : v.padStart(widths[i]!))).join('  ');
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...cells.map(line)].join('\n');
}

function main(): number {
  let parsed: ReturnType<typeof options>;
  try {
    parsed = options();
  } catch (error) {
    console.error(`${(error as Error).message}\n${USAGE}`);
    return 2;
  }
  const { runs, targets, seed } = parsed;
  console.log(`fuzzing ${targets.join(', ')}: ${runs} runs per property${seed === undefined ? '' : `, seed ${seed}`}`);
  const rows: Row[] = [];
  const failures: Array<{ target: string; name: string; result: CaseResult }> = [];
  for (const target of targets) {
    const { cases } = TARGETS[target]!;
    const row: Row = { target, properties: cases.length, runs: 0, failures: 0, seconds: 0 };
    const start = performance.now();
    for (const fuzz of cases) {
      const result = fuzz.check(runs, seed);
      row.runs += result.runs;
      if (result.failed) {
        row.failures++;
        failures.push({ target, name: fuzz.name, result });
      }
    }
    row.seconds = (performance.now() - start) / 1000;
    rows.push(row);
    console.log(`  ${target}: ${row.runs} runs, ${row.failures} failed, ${row.seconds.toFixed(1)} s`);
  }
  const total: Row = {
    target: 'total',
    properties: rows.reduce((n, r) => n + r.properties, 0),
    runs: rows.reduce((n, r) => n + r.runs, 0),
    failures: rows.reduce((n, r) => n + r.failures, 0),
    seconds: rows.reduce((n, r) => n + r.seconds, 0),
  };
  console.log(`\n${table([...rows, total])}`);
  for (const { target, name, result } of failures) {
    // Counterexamples can be large (a 64 KiB frame is printed as its description, others may not be).
    const report = result.report.length > 4000 ? `${result.report.slice(0, 4000)}… (${result.report.length} chars)` : result.report;
    console.error(`\nFAILED ${target}: ${name}\n${report}`);
  }
  return failures.length === 0 ? 0 : 1;
}

process.exitCode = main();
