/**
 * Builds a benchmark's load: the symbol universe, each client's symbols and mode, which clients
 * read slowly, and the per-symbol tick rate. Seeded, so tickcast and the baseline (and reruns)
 * get exactly the same load.
 */
import { DEFAULT_INSTRUMENTS } from '../src/adapters/simulator/instruments.js';
import { createRng } from '../src/adapters/simulator/market.js';
import type { ClientPlan, StreamName } from './messages.js';

export interface WorkloadSpec {
  clients: number;
  /** Symbols each client subscribes to (all of the universe if it is larger). */
  symbolsPerClient: number;
  /** Symbols the clients draw from. */
  universe: number;
  /** Relative weights of LTP, Quote and Depth clients. */
  modes: [number, number, number];
  /** Total ticks per second into the server, spread evenly over the subscribed symbols. */
  totalRate: number;
  /** Share of clients that read slowly (0–1). */
  slowFraction: number;
  seed: number;
}

export interface Workload {
  /** The symbols at least one client subscribes to; plans refer to them by index. */
  streams: StreamName[];
  clients: ClientPlan[];
  /** TICKCAST_SIM_RATE: the simulator ticks each subscribed symbol at this rate. */
  ratePerStream: number;
  /** Deliveries per second if every tick reaches every subscriber. */
  nominalDeliveriesPerS: number;
  /** Subscribers per stream (index as `streams`). */
  subscribers: number[];
}

/** The simulator's own instruments first (real names, real prices), then made-up NSE names. */
function universeNames(size: number): StreamName[] {
  const names: StreamName[] = DEFAULT_INSTRUMENTS.slice(0, size).map(({ exchange, symbol }) => ({ exchange, symbol }));
  for (let i = names.length; i < size; i++) names.push({ exchange: 'NSE', symbol: `BENCH${String(i).padStart(5, '0')}` });
  return names;
}

export function buildWorkload(spec: WorkloadSpec): Workload {
  const rng = createRng(spec.seed);
  const universe = universeNames(spec.universe);
  const perClient = Math.min(spec.symbolsPerClient, universe.length);
  // Every symbol gets at least one subscriber when there are enough slots, so the universe
  // really is what the source ticks: each client first takes the next uncovered symbols.
  const cover = Math.min(perClient, Math.ceil(universe.length / spec.clients));
  let cursor = 0;
  const totalWeight = spec.modes[0] + spec.modes[1] + spec.modes[2];
  const slowCount = Math.round(spec.clients * spec.slowFraction);

  const picked: number[][] = [];
  const modes: Array<1 | 2 | 3> = [];
  for (let c = 0; c < spec.clients; c++) {
    const chosen = new Set<number>();
    for (let i = 0; i < cover && cursor < universe.length; i++) chosen.add(cursor++);
    while (chosen.size < perClient) chosen.add(Math.floor(rng() * universe.length));
    picked.push([...chosen]);
    const draw = rng() * totalWeight;
    modes.push(draw < spec.modes[0] ? 1 : draw < spec.modes[0] + spec.modes[1] ? 2 : 3);
  }

  // Renumber to the subscribed set (smaller than the universe only for tiny loads).
  const used = [...new Set(picked.flat())].sort((a, b) => a - b);
  const index = new Map(used.map((u, i) => [u, i]));
  const streams = used.map((u) => universe[u]!);
  const subscribers = new Array<number>(streams.length).fill(0);
  const clients: ClientPlan[] = picked.map((list, c) => {
    const ids = list.map((u) => index.get(u)!);
    for (const id of ids) subscribers[id]!++;
    // Spread slow clients evenly: client c is slow when c·f crosses a whole number.
    const slow = Math.floor(((c + 1) * slowCount) / spec.clients) > Math.floor((c * slowCount) / spec.clients);
    return { streams: ids, mode: modes[c]!, slow };
  });

  const ratePerStream = spec.totalRate / streams.length;
  const nominalDeliveriesPerS = subscribers.reduce((sum, n) => sum + n * ratePerStream, 0);
  return { streams, clients, ratePerStream, nominalDeliveriesPerS, subscribers };
}

/** TICKCAST_SIM_SYMBOLS for the subscribed set. */
export function symbolList(streams: readonly StreamName[]): string {
  return streams.map(({ exchange, symbol }) => `${exchange}:${symbol}`).join(',');
}
