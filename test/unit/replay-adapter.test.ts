/**
 * The replay adapter with an injected clock: it publishes the recorded payloads of the streams
 * subscribed (and only those), on its own feed's topics at each tick's recorded mode, begins once
 * subscriptions settle, refuses streams and modes the range does not hold, ends `down` with
 * "replay finished: …", and delivers the same ticks in the same order on every run over a
 * history store.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { streamKey } from '../../src/feed.js';
import { type RecordedTick, TickStore } from '../../src/history/tick-store.js';
import type { StreamSummary } from '../../src/history/store.js';
import { silentLogger } from '../../src/observability/logger.js';
import type { FeedStatusEvent } from '../../src/feed.js';
import { ReplayAdapter } from '../../src/adapters/replay/replay-adapter.js';
import { type Scheduler, survey } from '../../src/adapters/replay/replay-source.js';
import { MemoryPublisher } from '../helpers/broker-kit.js';
import { makeTempDir, removeDir } from '../helpers/cli.js';

/** A clock moved by the test: sleeps wait until `run` reaches them. */
class ManualScheduler implements Scheduler {
  time = 0;
  private timers: Array<{ at: number; resolve: () => void }> = [];
  now(): number {
    return this.time;
  }
  sleep(ms: number): Promise<void> {
    return new Promise((resolve) => this.timers.push({ at: this.time + Math.max(0, ms), resolve }));
  }
  /** Runs timers in time order until none is left, or until `until` ms. */
  async run(until = Infinity): Promise<void> {
    for (;;) {
      await new Promise((resolve) => setImmediate(resolve));
      this.timers.sort((a, b) => a.at - b.at);
      const next = this.timers[0];
      if (!next || next.at > until) return;
      this.timers.shift();
      this.time = Math.max(this.time, next.at);
      next.resolve();
    }
  }
}

const T0 = Date.UTC(2024, 0, 2, 3, 45);
const RANGE = { from: Date.UTC(2024, 0, 2), to: Date.UTC(2024, 0, 3) };

function payload(symbol: string, n: number, mode: number): string {
  return `{"symbol":"${symbol}","exchange":"NSE","mode":${mode},"ltp":${100 + n},"timestamp":${T0 + n * 100}}`;
}

/** A: Depth ticks; B: Quote ticks; C: LTP ticks; interleaved. */
function recording(count = 30): RecordedTick[] {
  const ticks: RecordedTick[] = [];
  for (let n = 0; n < count; n++) {
    const [symbol, mode] = ([['A', 3], ['B', 2], ['C', 1]] as const)[n % 3]!;
    ticks.push({ feed: 'simulator', exchange: 'NSE', symbol, mode, receivedAt: T0 + n * 100, exchangeTs: null, payload: payload(symbol, n, mode) });
  }
  return ticks;
}

/** What a store's `streams` would answer for these ticks (one feed per stream here). */
function summarize(ticks: readonly RecordedTick[]): StreamSummary[] {
  const byStream = new Map<string, StreamSummary>();
  for (const t of ticks) {
    const key = `${t.feed}/${t.exchange}:${t.symbol}`;
    const s = byStream.get(key);
    if (!s) byStream.set(key, { feed: t.feed, exchange: t.exchange, symbol: t.symbol, ticks: 1, first: t.receivedAt, last: t.receivedAt, maxMode: t.mode });
    else {
      s.ticks++;
      s.last = t.receivedAt;
      if (t.mode > s.maxMode) s.maxMode = t.mode;
    }
  }
  return [...byStream.values()];
}

function replayOf(ticks: readonly RecordedTick[], options: { scheduler?: ManualScheduler; read?: () => Iterable<RecordedTick>; speed?: number | 'max'; loop?: boolean } = {}) {
  const publisher = new MemoryPublisher();
  const scheduler = options.scheduler ?? new ManualScheduler();
  const statuses: FeedStatusEvent[] = [];
  const adapter = new ReplayAdapter({
    feed: 'replay',
    broker: 'simulator',
    publisher,
    read: options.read ?? (() => ticks),
    recorded: survey(summarize([...(options.read?.() ?? ticks)]), streamKey),
    range: RANGE,
    speed: options.speed ?? 'max',
    scheduler,
    logger: silentLogger(),
    settleMs: 500,
    drainMs: 100,
    loop: options.loop ?? false,
  });
  adapter.onStatus((event) => statuses.push(event));
  return { adapter, publisher, scheduler, statuses };
}

describe('ReplayAdapter', () => {
  it('publishes the recorded payloads of the subscribed streams only, at their recorded modes, then says it finished', async () => {
    const ticks = recording();
    const { adapter, publisher, scheduler, statuses } = replayOf(ticks);
    await adapter.start();
    expect(adapter.status()).toBe('live');
    expect(await adapter.subscribe({ exchange: 'NSE', symbol: 'A' }, 1, 5)).toEqual({ ok: true });
    await scheduler.run(300);
    expect(adapter.running).toBe(false);
    expect(await adapter.subscribe({ exchange: 'NSE', symbol: 'B' }, 2, 5)).toEqual({ ok: true });
    // Quiet for 500 ms after the last subscription: it begins, with both streams from the first tick.
    await scheduler.run();
    const outcome = await adapter.finished;
    const expected = ticks.filter((t) => t.symbol !== 'C');
    expect(publisher.messages).toEqual(expected.map((t) => ({ topic: `replay|NSE_${t.symbol}_${t.symbol === 'A' ? 'DEPTH' : 'QUOTE'}`, payload: t.payload })));
    expect(outcome).toMatchObject({ passes: 1, read: 30, sent: 20, first: T0, last: T0 + 2900 });
    expect(adapter.status()).toBe('down');
    expect(statuses.at(-1)).toEqual({
      feed: 'replay',
      status: 'down',
      message: 'replay finished: 20 ticks from 2024-01-02T03:45:00.000Z to 2024-01-02T03:45:02.900Z (30 ticks read; the rest were of streams no client had subscribed)',
    });
  });

  it('refuses a stream the range does not hold, and a mode above the highest recorded', async () => {
    const { adapter } = replayOf(recording());
    await adapter.start();
    expect(await adapter.subscribe({ exchange: 'NSE', symbol: 'ZZZ' }, 1, 5)).toEqual({
      ok: false,
      message: 'NSE:ZZZ has no recorded ticks from 2024-01-02T00:00:00.000Z to 2024-01-03T00:00:00.000Z',
    });
    expect(await adapter.subscribe({ exchange: 'NSE', symbol: 'C' }, 3, 5)).toEqual({
      ok: false,
      message: 'NSE:C was recorded at LTP mode at most from 2024-01-02T00:00:00.000Z to 2024-01-03T00:00:00.000Z: there are no Depth ticks to replay',
    });
    expect(adapter.running).toBe(false);
    await adapter.stop();
  });

  it('stops publishing a stream unsubscribed mid-way, and publishes one subscribed mid-way from then on', async () => {
    const ticks = recording(300);
    const scheduler = new ManualScheduler();
    const { adapter, publisher } = replayOf(ticks, { scheduler, speed: 1 });
    await adapter.start();
    await adapter.subscribe({ exchange: 'NSE', symbol: 'A' }, 3, 5);
    await scheduler.run(500 + 10_000); // the settle, then 10 s of the 30 s recorded
    await adapter.unsubscribe({ exchange: 'NSE', symbol: 'A' });
    await adapter.subscribe({ exchange: 'NSE', symbol: 'C' }, 1, 5);
    await scheduler.run();
    await adapter.finished;
    const symbols = publisher.messages.map((m) => m.topic);
    const lastA = symbols.lastIndexOf('replay|NSE_A_DEPTH');
    const firstC = symbols.indexOf('replay|NSE_C_LTP');
    expect(lastA).toBeGreaterThan(0);
    expect(firstC).toBe(lastA + 1);
    expect(JSON.parse(publisher.messages[lastA]!.payload).timestamp).toBeLessThanOrEqual(T0 + 10_000);
    expect(publisher.messages.at(-1)!.payload).toBe(ticks.at(-1)!.payload);
  });

  it('with loop, starts the range again until stopped', async () => {
    const ticks = recording(6);
    const { adapter, publisher, scheduler } = replayOf(ticks, { loop: true });
    await adapter.start();
    await adapter.subscribe({ exchange: 'NSE', symbol: 'A' }, 1, 5);
    // Passes follow one another (each yielding to the event loop) until it is stopped.
    const running = scheduler.run();
    await new Promise((resolve) => setTimeout(resolve, 20));
    await adapter.stop();
    await running;
    expect(publisher.messages.length).toBeGreaterThan(2);
    expect(publisher.messages.length % 2).toBe(0);
    expect(adapter.status()).toBe('down');
  });
});

describe('replaying from a history store', () => {
  let dir: string | undefined;
  afterEach(() => {
    if (dir) removeDir(dir);
    dir = undefined;
  });

  it('delivers the same ticks in the same order on every run', async () => {
    dir = makeTempDir('tickcast-replay-');
    const writer = new TickStore({ dir });
    const ticks = recording(600).map((t, i) => ({ ...t, receivedAt: T0 + Math.floor(i / 4) * 7 })); // several ticks per instant
    writer.append(ticks.slice(0, 250));
    writer.append(ticks.slice(250));
    writer.close();
    const store = new TickStore({ dir, readonly: true });
    const query = { from: RANGE.from, to: RANGE.to };

    const run = async (): Promise<Array<{ topic: string; payload: string }>> => {
      const { adapter, publisher, scheduler } = replayOf([], { read: () => store.read(query) });
      await adapter.start();
      await adapter.subscribe({ exchange: 'NSE', symbol: 'A' }, 3, 5);
      await adapter.subscribe({ exchange: 'NSE', symbol: 'C' }, 1, 5);
      await scheduler.run();
      await adapter.finished;
      return publisher.messages;
    };
    const first = await run();
    expect(first).toHaveLength(400);
    expect(first.map((m) => m.payload)).toEqual(ticks.filter((t) => t.symbol !== 'B').map((t) => t.payload));
    expect(await run()).toEqual(first);
    store.close();
  });
});
