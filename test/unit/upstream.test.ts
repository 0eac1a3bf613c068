/**
 * Upstream: each adapter subscribed to exactly the streams clients hold, at the highest mode held,
 * with operations on one stream serialised; the bus told which streams to deliver.
 */
import { describe, expect, it } from 'vitest';
import type { Adapter, FeedStatus, FeedStatusEvent, StreamRef, SubscribeResult } from '../../src/feed.js';
import { Feeds } from '../../src/gateway/feeds.js';
import { SubscriptionIndex } from '../../src/gateway/subscription-index.js';
import { Upstream } from '../../src/gateway/upstream.js';
import { silentLogger } from '../../src/observability/logger.js';
import type { Mode } from '../../src/protocol/modes.js';

/** Records calls; refuses BAD; subscribes to SLOW only when `release()` is called. */
class FakeAdapter implements Adapter {
  readonly broker = 'simulator';
  readonly calls: string[] = [];
  private gate: (() => void) | undefined;
  throwOn: string | undefined;
  constructor(readonly feed: string) {}
  async start(): Promise<void> {}
  async stop(): Promise<void> {}
  async subscribe(stream: StreamRef, mode: Mode, depth: number): Promise<SubscribeResult> {
    this.calls.push(`sub ${stream.symbol} ${mode} ${depth}`);
    if (stream.symbol === this.throwOn) throw new Error('socket closed');
    if (stream.symbol === 'SLOW') await new Promise<void>((resolve) => (this.gate = resolve));
    if (stream.symbol === 'BAD') return { ok: false, message: 'Token not found for BAD on NSE' };
    return { ok: true, depth: Math.min(depth, 5) };
  }
  async unsubscribe(stream: StreamRef): Promise<void> {
    this.calls.push(`unsub ${stream.symbol}`);
  }
  release(): void {
    this.gate?.();
  }
  status(): FeedStatus {
    return 'live';
  }
  onStatus(_listener: (event: FeedStatusEvent) => void): void {}
}

function setup(): { upstream: Upstream; index: SubscriptionIndex<string>; adapter: FakeAdapter; interest: string[] } {
  const adapter = new FakeAdapter('sim');
  const index = new SubscriptionIndex<string>();
  const interest: string[] = [];
  const upstream = new Upstream(new Feeds([{ adapter, brokers: '*' }]), index as SubscriptionIndex<unknown>, silentLogger(), {
    want: (feed, exchange, symbol) => interest.push(`want ${feed} ${exchange} ${symbol}`),
    drop: (feed, exchange, symbol) => interest.push(`drop ${feed} ${exchange} ${symbol}`),
  });
  return { upstream, index, adapter, interest };
}

/** A client subscribing as the request handler does: the index changes inside acquire's commit. */
const subscribe = (s: ReturnType<typeof setup>, client: string, symbol: string, mode: Mode, depth = 5): Promise<SubscribeResult> =>
  s.upstream.acquire('sim', 'NSE', symbol, mode, depth, () => void s.index.add('sim', 'NSE', symbol, mode, client));

const unsubscribe = (s: ReturnType<typeof setup>, client: string, symbol: string, mode: Mode): Promise<void> => {
  s.index.remove('sim', 'NSE', symbol, mode, client);
  return s.upstream.release('sim', 'NSE', symbol);
};

describe('Upstream', () => {
  it('asks the adapter once per stream, raising the mode only when a client wants more', async () => {
    const s = setup();
    expect(await subscribe(s, 'a', 'TCS', 1)).toEqual({ ok: true, depth: 5 });
    expect(await subscribe(s, 'b', 'TCS', 1)).toEqual({ ok: true, depth: 5 });
    expect(await subscribe(s, 'b', 'TCS', 3, 20)).toEqual({ ok: true, depth: 5 });
    expect(await subscribe(s, 'c', 'TCS', 2)).toEqual({ ok: true, depth: 5 });
    expect(s.adapter.calls).toEqual(['sub TCS 1 5', 'sub TCS 3 20']);
    expect(s.upstream.mode('sim', 'NSE', 'TCS')).toBe(3);
    expect(s.upstream.size).toBe(1);
  });

  it('brings the adapter down to the highest mode still held, then unsubscribes, keeping the depth asked', async () => {
    const s = setup();
    await subscribe(s, 'a', 'TCS', 1);
    await subscribe(s, 'b', 'TCS', 3, 20);
    await unsubscribe(s, 'b', 'TCS', 3);
    expect(s.adapter.calls.at(-1)).toBe('sub TCS 1 20');
    expect(s.upstream.mode('sim', 'NSE', 'TCS')).toBe(1);
    await unsubscribe(s, 'a', 'TCS', 1);
    expect(s.adapter.calls.at(-1)).toBe('unsub TCS');
    expect(s.upstream.mode('sim', 'NSE', 'TCS')).toBe(0);
    expect(s.upstream.size).toBe(0);
  });

  it('adds no subscriber when the adapter refuses or fails, and passes the reason on', async () => {
    const s = setup();
    expect(await subscribe(s, 'a', 'BAD', 1)).toEqual({ ok: false, message: 'Token not found for BAD on NSE' });
    s.adapter.throwOn = 'INFY';
    expect(await subscribe(s, 'a', 'INFY', 1)).toEqual({ ok: false, message: 'socket closed' });
    expect(s.index.wantedMode('sim', 'NSE', 'BAD')).toBe(0);
    expect(s.index.wantedMode('sim', 'NSE', 'INFY')).toBe(0);
    expect(s.upstream.size).toBe(0);
    // The bus was told to deliver each before the adapter was asked, and to stop after the refusal.
    expect(s.interest).toEqual(['want sim NSE BAD', 'drop sim NSE BAD', 'want sim NSE INFY', 'drop sim NSE INFY']);
  });

  it('serialises one stream: a second subscribe waits for the first answer, then raises the mode', async () => {
    const s = setup();
    const first = subscribe(s, 'a', 'SLOW', 2);
    const second = subscribe(s, 'b', 'SLOW', 3);
    await new Promise((resolve) => setImmediate(resolve));
    // The adapter has not answered the first: the second is not sent yet.
    expect(s.adapter.calls).toEqual(['sub SLOW 2 5']);
    s.adapter.release();
    await first;
    await new Promise((resolve) => setImmediate(resolve));
    s.adapter.release();
    expect(await second).toEqual({ ok: true, depth: 5 });
    expect(s.adapter.calls).toEqual(['sub SLOW 2 5', 'sub SLOW 3 5']);
    expect(s.index.wantedMode('sim', 'NSE', 'SLOW')).toBe(3);
  });

  it('accepts any stream of a feed without an adapter (the shared feed) and only tells the bus', async () => {
    const s = setup();
    let committed = false;
    expect(await s.upstream.acquire('other', 'NSE', 'TCS', 2, 5, () => (committed = true))).toEqual({ ok: true });
    expect(committed).toBe(true);
    await s.upstream.release('other', 'NSE', 'TCS');
    expect(s.interest).toEqual(['want other NSE TCS', 'drop other NSE TCS']);
    expect(s.adapter.calls).toEqual([]);
  });

  it('replays every wanted stream of a feed at its mode and depth after the adapter restarted', async () => {
    const s = setup();
    await subscribe(s, 'a', 'TCS', 2, 20);
    await subscribe(s, 'b', 'INFY', 1);
    await subscribe(s, 'c', 'INFY', 3);
    s.adapter.calls.length = 0;
    await s.upstream.replay('sim');
    expect(s.adapter.calls.sort()).toEqual(['sub INFY 3 5', 'sub TCS 2 20']);
    expect(s.upstream.mode('sim', 'NSE', 'INFY')).toBe(3);
    await s.upstream.replay('nobody');
    expect(s.adapter.calls).toHaveLength(2);
  });
});
