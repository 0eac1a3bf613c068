/**
 * The named benchmark scenarios (issue: seed, max, wide, hot, slow, smoke). Each is a load
 * shape; `--clients`, `--rate`, `--duration` and the other flags override its numbers.
 */

export interface Scenario {
  name: string;
  summary: string;
  clients: number;
  symbolsPerClient: number;
  universe: number;
  /** Weights of LTP, Quote and Depth clients. */
  modes: [number, number, number];
  /** Ticks per second into the server (for `max`: the first step's rate). */
  rate: number;
  durationS: number;
  warmupS: number;
  slowFraction: number;
  /** TICKCAST_MAX_BUFFERED_BYTES for the run; undefined keeps the gateway's default (4 MiB). */
  maxBufferedBytes: number | undefined;
  /** `max` only: multiply the rate by `factor` per step, at most `maxSteps` steps. */
  steps?: { factor: number; maxSteps: number };
}

const SEED_MIX = { symbolsPerClient: 20, universe: 500, modes: [50, 30, 20] as [number, number, number] };

export const SCENARIOS: Record<string, Scenario> = {
  seed: {
    name: 'seed',
    summary: '1000 clients × 20 of 500 symbols, mixed LTP/Quote/Depth, 2,000 ticks/s in',
    clients: 1000,
    ...SEED_MIX,
    rate: 2000,
    durationS: 10,
    warmupS: 3,
    slowFraction: 0,
    maxBufferedBytes: undefined,
  },
  max: {
    name: 'max',
    summary: 'the seed mix, rate ×1.5 per step until p99 > 50 ms or ticks are lost; highest sustained deliveries/s',
    clients: 1000,
    ...SEED_MIX,
    // 1.5 ticks/s per symbol: below about 1/s the simulator's credit cap (one tick) discards
    // the overshoot of late timer callbacks, so the source itself falls short of the rate.
    rate: 750,
    durationS: 4,
    warmupS: 2,
    slowFraction: 0,
    maxBufferedBytes: undefined,
    steps: { factor: 1.5, maxSteps: 10 },
  },
  wide: {
    name: 'wide',
    // The seed's 2,000 ticks/s would be 400,000 deliveries/s to 5000 clients, far past what two
    // cores can receive; 400 ticks/s keeps the seed's 80,000 deliveries/s, so this isolates the
    // cost of 5× the connections. `--rate 2000` runs the literal load.
    summary: '5000 clients × 20 of 500 symbols, mixed modes, 400 ticks/s in (the seed\'s deliveries/s over 5× the connections)',
    clients: 5000,
    ...SEED_MIX,
    rate: 400,
    durationS: 10,
    warmupS: 3,
    slowFraction: 0,
    maxBufferedBytes: undefined,
  },
  hot: {
    name: 'hot',
    summary: '100 clients all on the same 10 symbols, mixed modes, 20,000 ticks/s in (2 M deliveries/s offered: a conflation test)',
    clients: 100,
    symbolsPerClient: 10,
    universe: 10,
    modes: [50, 30, 20],
    rate: 20_000,
    durationS: 10,
    warmupS: 2,
    slowFraction: 0,
    maxBufferedBytes: undefined,
  },
  slow: {
    name: 'slow',
    // Loopback sockets buffer about 4 MB in the kernel before a server sees any backlog, so at
    // seed rates a slow reader reaches the gateway's budget only after minutes: this run shows
    // that fast clients are unaffected and how stale slow readers' data gets. `hot` exercises
    // conflation; or run this with --duration 120 --max-buffered 262144.
    summary: 'the seed load with 10 % of clients reading slowly (1 KiB per 100 ms)',
    clients: 1000,
    ...SEED_MIX,
    rate: 2000,
    durationS: 15,
    warmupS: 5,
    slowFraction: 0.1,
    maxBufferedBytes: undefined,
  },
  smoke: {
    name: 'smoke',
    summary: 'a quick check: 40 clients × 5 of 20 symbols, mixed modes, 200 ticks/s in',
    clients: 40,
    symbolsPerClient: 5,
    universe: 20,
    modes: [50, 30, 20],
    rate: 200,
    durationS: 3,
    warmupS: 1,
    slowFraction: 0,
    maxBufferedBytes: undefined,
  },
};
