/**
 * Recovery after reconnect at scale: 1000 clients (seq negotiated, 5 streams each) lose their
 * connections together for 5 s while the gateway keeps ticking, then reconnect and subscribe with
 * `since` and the epoch (48 at a time: they all come from one address). Measures the time from the reconnections until every client has its
 * `recovered` (or `gap`) answer for every stream (beside the time the same clients took to
 * connect and subscribe without recovery), the messages resent, and checks each client's
 * numbers run on with no hole and no duplicate for a second after. Three rounds; medians.
 *
 *   npm run bench:recovery [-- --clients N --outage S --rounds R --rate TICKS_PER_S]
 */
import { parseArgs } from 'node:util';
import WebSocket from 'ws';
import { ensureBuilt } from './build.js';
import { installCleanupHandlers, runMain } from './cleanup.js';
import { startTickcast } from './servers.js';

const SYMBOLS = Array.from({ length: 20 }, (_, i) => `BENCH${i}`);
const STREAMS_PER_CLIENT = 5;
const WAIT_MS = 60_000;
/** Reconnections in flight at once (see `pool`). */
const CONCURRENCY = 48;

type Message = Record<string, unknown>;

class BenchClient {
  ws!: WebSocket;
  epoch: string | undefined;
  readonly last = new Map<string, number>();
  answers = 0;
  resent = 0;
  gaps = 0;
  holes = 0;
  duplicates = 0;
  private waiting: ((message: Message) => void) | undefined;

  constructor(
    readonly symbols: string[],
    readonly mode: 1 | 2 | 3,
  ) {}

  async open(url: string, key: string): Promise<void> {
    this.answers = 0;
    this.ws = new WebSocket(url);
    this.ws.on('message', (data) => this.receive(JSON.parse(data.toString()) as Message));
    this.ws.on('error', () => {});
    await new Promise<void>((resolve, reject) => {
      this.ws.once('open', () => resolve());
      this.ws.once('error', reject);
    });
    const auth = await this.request({ action: 'authenticate', api_key: key, seq: true, snapshot: false });
    if (auth.status !== 'success') throw new Error(`auth failed: ${JSON.stringify(auth)}`);
    const previous = this.epoch;
    this.epoch = auth.seq_epoch as string;
    const resume = previous !== undefined && this.last.size > 0;
    const symbols = this.symbols.map((symbol) => {
      const since = this.last.get(symbol);
      return resume && since !== undefined ? { exchange: 'NSE', symbol, since } : { exchange: 'NSE', symbol };
    });
    const reply = await this.request({ action: 'subscribe', symbols, mode: this.mode, ...(resume ? { epoch: previous } : {}) });
    if (reply.status !== 'success') throw new Error(`subscribe failed: ${JSON.stringify(reply)}`);
  }

  private request(message: Message): Promise<Message> {
    return new Promise((resolve) => {
      this.waiting = resolve;
      this.ws.send(JSON.stringify(message));
    });
  }

  private receive(message: Message): void {
    if (message.type === 'market_data') {
      const symbol = message.symbol as string;
      const seq = message.seq as number;
      const last = this.last.get(symbol);
      if (last !== undefined && seq > last + 1) this.holes++;
      if (last !== undefined && seq <= last) this.duplicates++;
      this.last.set(symbol, seq);
      if (message.recovered === true) this.resent++;
    } else if (message.type === 'recovered') {
      this.answers++;
    } else if (message.type === 'gap') {
      this.answers++;
      this.gaps++;
      // Live messages continue from `next`: not a hole of the client's own.
      this.last.set(message.symbol as string, (message.next as number) - 1);
    } else if (this.waiting && message.type !== 'feed_status') {
      const waiting = this.waiting;
      this.waiting = undefined;
      waiting(message);
    }
  }

  get ticking(): boolean {
    return this.last.size === this.symbols.length;
  }
}

async function until(condition: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + WAIT_MS;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
const median = (values: number[]): number => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

/**
 * Runs `run` over `items` with at most `size` in flight: the gateway closes handshakes past 64
 * pending from one address, and every bench client comes from this one.
 */
async function pool<T>(items: T[], size: number, run: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) await run(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(size, items.length) }, worker));
}

/** The gateway's count of conflated messages (flow control), from /metrics; NaN if unreadable. */
async function conflated(url: string): Promise<number> {
  try {
    const text = await (await fetch(`${url.replace(/^ws/, 'http')}/metrics`)).text();
    const line = text.split('\n').find((l) => l.startsWith('tickcast_conflated_total'));
    return line ? Number(line.split(/\s+/)[1]) : Number.NaN;
  } catch {
    return Number.NaN;
  }
}

async function main(): Promise<number> {
  const { values } = parseArgs({ options: { clients: { type: 'string', default: '1000' }, outage: { type: 'string', default: '5' }, rounds: { type: 'string', default: '3' }, rate: { type: 'string', default: '2' } } });
  const RATE = Number(values.rate);
  const clients = Number(values.clients);
  const outageMs = Number(values.outage) * 1000;
  const rounds = Number(values.rounds);
  installCleanupHandlers();
  ensureBuilt(true);
  const server = await startTickcast({ symbols: SYMBOLS.map((s) => `NSE:${s}`).join(','), ratePerStream: RATE, seed: 7, maxBufferedBytes: undefined });
  const results: Array<{ connectMs: number; recoverMs: number; resent: number; gaps: number; holes: number; duplicates: number; conflated: number }> = [];
  try {
    // Holds every stream while the clients are away, so they keep ticking.
    const keeper = new BenchClient(SYMBOLS, 3);
    await keeper.open(server.url, server.apiKey);
    for (let round = 1; round <= rounds; round++) {
      const fleet = Array.from({ length: clients }, (_, i) => new BenchClient(Array.from({ length: STREAMS_PER_CLIENT }, (_, k) => SYMBOLS[(i + k * 3) % SYMBOLS.length]!), (1 + (i % 3)) as 1 | 2 | 3));
      // The same connections without recovery first: what a reconnection costs anyway.
      const connecting = performance.now();
      await pool(fleet, CONCURRENCY, (c) => c.open(server.url, server.apiKey));
      const connectMs = performance.now() - connecting;
      await until(() => fleet.every((c) => c.ticking), 'every client to tick');
      for (const c of fleet) c.ws.terminate();
      await sleep(outageMs);
      const conflatedBefore = await conflated(server.url);
      const started = performance.now();
      await pool(fleet, CONCURRENCY, (c) => c.open(server.url, server.apiKey));
      await until(() => fleet.every((c) => c.answers === STREAMS_PER_CLIENT), 'every recovery answer');
      const recoverMs = performance.now() - started;
      await sleep(1000);
      const conflatedDuring = (await conflated(server.url)) - conflatedBefore;
      const sum = (f: (c: BenchClient) => number): number => fleet.reduce((n, c) => n + f(c), 0);
      const result = { connectMs, recoverMs, resent: sum((c) => c.resent), gaps: sum((c) => c.gaps), holes: sum((c) => c.holes), duplicates: sum((c) => c.duplicates), conflated: conflatedDuring };
      results.push(result);
      process.stderr.write(`round ${round}: ${JSON.stringify({ ...result, connectMs: Math.round(connectMs), recoverMs: Math.round(recoverMs) })}\n`);
      for (const c of fleet) c.ws.close();
      await sleep(500);
    }
    keeper.ws.close();
  } catch (error) {
    process.stderr.write(`gateway said: ${server.warnings().join('\n')}\n`);
    throw error;
  } finally {
    await server.stop();
  }
  const pick = (f: (r: (typeof results)[number]) => number): number => median(results.map(f));
  process.stdout.write(
    [
      `| clients × streams | outage | rounds | connect + subscribe, no recovery (median) | reconnect + all recovered (median) | messages resent (median) | gaps | seq jumps | duplicates | conflated by flow control |`,
      `|---|---|---|---|---|---|---|---|---|---|`,
      `| ${clients} × ${STREAMS_PER_CLIENT} (${SYMBOLS.length} symbols at ${RATE} ticks/s) | ${outageMs / 1000} s | ${rounds} | ${Math.round(pick((r) => r.connectMs))} ms | ${Math.round(pick((r) => r.recoverMs))} ms | ${pick((r) => r.resent)} | ${pick((r) => r.gaps)} | ${pick((r) => r.holes)} | ${pick((r) => r.duplicates)} | ${pick((r) => r.conflated)} |`,
    ].join('\n') + '\n',
  );
  return 0;
}

runMain('bench:recovery', main);
