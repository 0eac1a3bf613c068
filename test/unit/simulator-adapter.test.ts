import { describe, it, expect } from 'vitest';
import type { FeedStatusEvent } from '../../src/feed.js';
import { DEFAULT_INSTRUMENTS } from '../../src/adapters/simulator/instruments.js';
import { SimulatedMarket, createRng } from '../../src/adapters/simulator/market.js';
import { SimulatorAdapter } from '../../src/adapters/simulator/simulator-adapter.js';
import { createLogger, silentLogger } from '../../src/observability/logger.js';
import { MemoryPublisher } from '../helpers/broker-kit.js';

function setup(options: { rate?: number; random?: () => number; intervalMs?: number } = {}) {
  const clock = { t: 1_700_000_000_000, now() { return this.t; } };
  const market = new SimulatedMarket({ instruments: DEFAULT_INSTRUMENTS, rng: createRng(1), now: () => clock.t });
  const publisher = new MemoryPublisher();
  const logLines: string[] = [];
  const adapter = new SimulatorAdapter({
    feed: 'sim',
    broker: 'simulator',
    market,
    publisher,
    ratePerSymbol: options.rate ?? 10,
    clock,
    logger: createLogger('error', { write: (line: string) => void logLines.push(line) }),
    intervalMs: options.intervalMs,
    random: options.random,
  });
  /** Moves the fake clock forward in timer-sized steps, as the interval would. */
  const advance = (ms: number, stepMs = 20) => {
    for (let elapsed = 0; elapsed < ms; elapsed += stepMs) {
      clock.t += stepMs;
      adapter.emitDue(clock.t);
    }
  };
  return { clock, market, publisher, adapter, advance, logLines };
}

const RELIANCE = { exchange: 'NSE', symbol: 'RELIANCE' };
const NIFTY = { exchange: 'NSE_INDEX', symbol: 'NIFTY' };
const INFY = { exchange: 'NSE', symbol: 'INFY' };

describe('SimulatorAdapter', () => {
  it('publishes only subscribed streams, at the configured rate', async () => {
    const { adapter, publisher, advance } = setup({ rate: 10 });
    advance(1000);
    expect(publisher.messages).toHaveLength(0);

    expect(await adapter.subscribe(RELIANCE, 2, 5)).toEqual({ ok: true, depth: 5 });
    expect(await adapter.subscribe(NIFTY, 1, 5)).toEqual({ ok: true, depth: 5 });
    advance(10_000);

    const topics = new Set(publisher.messages.map((m) => m.topic));
    expect([...topics].sort()).toEqual(['sim|NSE_INDEX_NIFTY_LTP', 'sim|NSE_RELIANCE_QUOTE']);
    for (const topic of topics) {
      expect(Math.abs(publisher.count(topic) - 100)).toBeLessThanOrEqual(2);
    }
  });

  it('handles fractional and high rates', async () => {
    const slow = setup({ rate: 0.5 });
    await slow.adapter.subscribe(RELIANCE, 1, 5);
    slow.advance(20_000);
    expect(Math.abs(slow.publisher.messages.length - 10)).toBeLessThanOrEqual(1);

    const fast = setup({ rate: 2000 });
    await fast.adapter.subscribe(RELIANCE, 1, 5);
    fast.advance(2_000);
    expect(Math.abs(fast.publisher.messages.length - 4000)).toBeLessThanOrEqual(2);
  });

  it('publishes the market payload for the subscribed mode, stamped at publish time', async () => {
    const { adapter, publisher, advance, clock } = setup({ rate: 50 });
    await adapter.subscribe(RELIANCE, 3, 5);
    advance(100);
    const last = publisher.messages.at(-1)!;
    expect(last.topic).toBe('sim|NSE_RELIANCE_DEPTH');
    const data = JSON.parse(last.payload) as Record<string, unknown>;
    expect(data).toMatchObject({ symbol: 'RELIANCE', exchange: 'NSE', mode: 'full', timestamp: clock.t });
    expect(data).toHaveProperty('depth');
  });

  it('switches the topic suffix when the mode changes', async () => {
    const { adapter, publisher, advance } = setup({ rate: 10 });
    await adapter.subscribe(INFY, 1, 5);
    advance(2_000);
    await adapter.subscribe(INFY, 3, 5);
    const before = publisher.messages.length;
    advance(2_000);
    const after = publisher.messages.slice(before);
    expect(after.length).toBeGreaterThanOrEqual(19);
    expect(new Set(after.map((m) => m.topic))).toEqual(new Set(['sim|NSE_INFY_DEPTH']));
    await adapter.subscribe(INFY, 2, 5);
    publisher.messages.length = 0;
    advance(1_000);
    expect(new Set(publisher.messages.map((m) => m.topic))).toEqual(new Set(['sim|NSE_INFY_QUOTE']));
  });

  it('stops publishing an unsubscribed stream and ignores unknown ones', async () => {
    const { adapter, publisher, advance } = setup({ rate: 10 });
    await adapter.subscribe(RELIANCE, 1, 5);
    await adapter.subscribe(INFY, 1, 5);
    advance(1_000);
    await adapter.unsubscribe(RELIANCE);
    await adapter.unsubscribe({ exchange: 'NSE', symbol: 'NOPE' });
    publisher.messages.length = 0;
    advance(2_000);
    expect(publisher.count('sim|NSE_RELIANCE_LTP')).toBe(0);
    expect(publisher.count('sim|NSE_INFY_LTP')).toBeGreaterThanOrEqual(19);
  });

  it('refuses unknown symbols with OpenAlgo-style text', async () => {
    const { adapter } = setup();
    expect(await adapter.subscribe({ exchange: 'NSE', symbol: 'NOPE' }, 1, 5)).toEqual({
      ok: false,
      message: 'Token not found for NOPE on NSE',
    });
    expect(await adapter.subscribe({ exchange: 'nse', symbol: 'RELIANCE' }, 1, 5)).toMatchObject({ ok: false });
  });

  it('starts each stream at its own phase', async () => {
    const phases = [0.0, 0.5];
    const { adapter, publisher, advance } = setup({ rate: 1, random: () => phases.shift() ?? 0 });
    await adapter.subscribe(RELIANCE, 1, 5);
    await adapter.subscribe(INFY, 1, 5);
    advance(600);
    expect(publisher.messages.map((m) => m.topic)).toEqual(['sim|NSE_INFY_LTP']);
    advance(500);
    expect(publisher.messages.map((m) => m.topic)).toEqual(['sim|NSE_INFY_LTP', 'sim|NSE_RELIANCE_LTP']);
  });

  it('caps the backlog after a stall at one second of ticks', async () => {
    const { adapter, publisher, clock } = setup({ rate: 100, random: () => 0 });
    await adapter.subscribe(RELIANCE, 1, 5);
    clock.t += 60_000;
    adapter.emitDue(clock.t);
    expect(publisher.messages).toHaveLength(100);
    // Time going backwards earns nothing and breaks nothing.
    adapter.emitDue(clock.t - 5_000);
    expect(publisher.messages).toHaveLength(100);
  });

  it('logs a failing tick and keeps the other streams going', async () => {
    const { adapter, market, publisher, advance, logLines } = setup({ rate: 10 });
    await adapter.subscribe(RELIANCE, 1, 5);
    await adapter.subscribe(INFY, 1, 5);
    const payload = market.payload.bind(market);
    market.payload = (exchange, symbol, mode, nowMs) => {
      if (symbol === 'RELIANCE') throw new Error('boom');
      return payload(exchange, symbol, mode, nowMs);
    };
    advance(2_000);
    expect(publisher.count('sim|NSE_RELIANCE_LTP')).toBe(0);
    expect(publisher.count('sim|NSE_INFY_LTP')).toBeGreaterThanOrEqual(19);
    // Logged, but not once per failure.
    expect(logLines).toHaveLength(1);
    expect(JSON.parse(logLines[0]!)).toMatchObject({ symbol: 'RELIANCE', err: { message: 'boom' } });

    market.payload = payload;
    publisher.messages.length = 0;
    advance(1_000);
    expect(publisher.count('sim|NSE_RELIANCE_LTP')).toBeGreaterThanOrEqual(9);
  });

  it('reports status on start and stop', async () => {
    const { adapter } = setup();
    const events: FeedStatusEvent[] = [];
    adapter.onStatus((e) => events.push(e));
    adapter.onStatus(() => {
      throw new Error('a bad listener does not stop the others');
    });
    expect(adapter.status()).toBe('down');
    await adapter.start();
    expect(adapter.status()).toBe('live');
    await adapter.start();
    await adapter.stop();
    expect(adapter.status()).toBe('down');
    expect(events).toEqual([
      { feed: 'sim', status: 'live' },
      { feed: 'sim', status: 'down' },
    ]);
  });

  it('ticks from its own timer once started', async () => {
    const market = new SimulatedMarket({ instruments: DEFAULT_INSTRUMENTS, rng: createRng(2), now: Date.now });
    const publisher = new MemoryPublisher();
    const adapter = new SimulatorAdapter({
      feed: 'sim', broker: 'simulator', market, publisher, ratePerSymbol: 200,
      clock: { now: Date.now }, logger: silentLogger(), intervalMs: 5,
    });
    await adapter.subscribe(RELIANCE, 1, 5);
    await adapter.start();
    await new Promise((resolve) => setTimeout(resolve, 150));
    await adapter.stop();
    const count = publisher.messages.length;
    expect(count).toBeGreaterThan(5);
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(publisher.messages.length).toBe(count);
  });

  it('rejects a rate that is not positive', () => {
    const market = new SimulatedMarket({ instruments: DEFAULT_INSTRUMENTS, rng: createRng(1), now: Date.now });
    const base = {
      feed: 'sim', broker: 'simulator', market, publisher: new MemoryPublisher(),
      clock: { now: Date.now }, logger: silentLogger(),
    };
    expect(() => new SimulatorAdapter({ ...base, ratePerSymbol: 0 })).toThrow(/rate/);
    expect(() => new SimulatorAdapter({ ...base, ratePerSymbol: Number.NaN })).toThrow(/rate/);
    expect(() => new SimulatorAdapter({ ...base, ratePerSymbol: 1, intervalMs: 0 })).toThrow(/interval/);
  });
});
