/**
 * Command-line options of `npm run bench`: a scenario name and overrides of its numbers.
 */
import { parseArgs } from 'node:util';
import { SCENARIOS, type Scenario } from './scenarios.js';
import type { ServerKind } from './servers.js';

export const USAGE = `usage: npm run bench -- --scenario NAME [options]

scenarios:
${Object.values(SCENARIOS)
  .map((s) => `  ${s.name.padEnd(6)} ${s.summary}`)
  .join('\n')}

options (each overrides the scenario's value):
  --clients N          WebSocket clients
  --rate R             ticks per second into the server (max: the first step)
  --duration S         measurement window in seconds (max: per step)
  --json FILE          also write the results as JSON
  --warmup S           seconds between the last subscription and the window
  --symbols N          size of the symbol universe clients draw from
  --per-client N       symbols per client
  --modes L,Q,D        weights of LTP, Quote and Depth clients (e.g. 50,30,20)
  --slow-fraction F    share of clients that read slowly (0–1)
  --max-buffered B     TICKCAST_MAX_BUFFERED_BYTES (and the baseline's budget)
  --steps N            max: at most N rate steps (default 10)
  --workers K          load-generator processes (default 2)
  --gateway-workers N  tickcast's --workers: gateway processes sharing the port (default 1)
  --seed N             seed of the client plan and of the simulated market (default 1)
  --only SERVER        run only tickcast or only baseline
  --no-seq             clients do not ask for per-stream sequence numbers (tickcast's \`seq\`
                       extension, which the baseline mirrors): plain OpenAlgo frames, loss
                       then judged by comparing clients
  --no-build           do not rebuild dist/ when it is older than src/
`;

export interface BenchOptions {
  scenario: Scenario;
  jsonFile: string | undefined;
  workers: number;
  gatewayWorkers: number;
  seed: number;
  servers: ServerKind[];
  build: boolean;
  seq: boolean;
}

export function parseOptions(argv: string[]): BenchOptions {
  const { values } = parseArgs({
    args: argv,
    options: {
      scenario: { type: 'string' },
      clients: { type: 'string' },
      rate: { type: 'string' },
      duration: { type: 'string' },
      json: { type: 'string' },
      warmup: { type: 'string' },
      symbols: { type: 'string' },
      'per-client': { type: 'string' },
      modes: { type: 'string' },
      'slow-fraction': { type: 'string' },
      'max-buffered': { type: 'string' },
      workers: { type: 'string' },
      'gateway-workers': { type: 'string' },
      steps: { type: 'string' },
      seed: { type: 'string' },
      only: { type: 'string' },
      'no-build': { type: 'boolean' },
      'no-seq': { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) throw new UsageError('');
  const base = values.scenario === undefined ? undefined : SCENARIOS[values.scenario];
  if (!base) throw new UsageError(values.scenario === undefined ? '--scenario is required' : `unknown scenario "${values.scenario}"`);

  const scenario: Scenario = { ...base, modes: [...base.modes] };
  const num = (name: string, text: string | undefined, min: number, integer: boolean): number | undefined => {
    if (text === undefined) return undefined;
    const value = Number(text);
    if (!Number.isFinite(value) || value < min || (integer && !Number.isInteger(value))) {
      throw new UsageError(`--${name} must be ${integer ? 'an integer' : 'a number'} ≥ ${min}, got "${text}"`);
    }
    return value;
  };
  scenario.clients = num('clients', values.clients, 1, true) ?? scenario.clients;
  scenario.rate = num('rate', values.rate, 0.001, false) ?? scenario.rate;
  scenario.durationS = num('duration', values.duration, 0.5, false) ?? scenario.durationS;
  scenario.warmupS = num('warmup', values.warmup, 0, false) ?? scenario.warmupS;
  scenario.universe = num('symbols', values.symbols, 1, true) ?? scenario.universe;
  scenario.symbolsPerClient = num('per-client', values['per-client'], 1, true) ?? scenario.symbolsPerClient;
  scenario.slowFraction = num('slow-fraction', values['slow-fraction'], 0, false) ?? scenario.slowFraction;
  if (scenario.slowFraction > 1) throw new UsageError('--slow-fraction must be between 0 and 1');
  // The gateway refuses budgets under 64 KiB.
  scenario.maxBufferedBytes = num('max-buffered', values['max-buffered'], 65536, true) ?? scenario.maxBufferedBytes;
  const steps = num('steps', values.steps, 1, true);
  if (steps !== undefined) {
    if (!scenario.steps) throw new UsageError('--steps applies to the max scenario only');
    scenario.steps = { ...scenario.steps, maxSteps: steps };
  }
  if (values.modes !== undefined) {
    const weights = values.modes.split(',').map(Number);
    if (weights.length !== 3 || weights.some((w) => !(w >= 0)) || weights.every((w) => w === 0)) {
      throw new UsageError(`--modes must be three non-negative weights like 50,30,20, got "${values.modes}"`);
    }
    scenario.modes = weights as [number, number, number];
  }
  if (values.only !== undefined && values.only !== 'tickcast' && values.only !== 'baseline') {
    throw new UsageError(`--only must be tickcast or baseline, got "${values.only}"`);
  }
  return {
    scenario,
    jsonFile: values.json,
    workers: num('workers', values.workers, 1, true) ?? 2,
    gatewayWorkers: num('gateway-workers', values['gateway-workers'], 1, true) ?? 1,
    seed: num('seed', values.seed, 0, true) ?? 1,
    servers: values.only === undefined ? ['tickcast', 'baseline'] : [values.only as ServerKind],
    build: !values['no-build'],
    seq: !values['no-seq'],
  };
}

export class UsageError extends Error {}
