/** The SDK's subscription bookkeeping, its sync with the gateway, and its event emitter. Pure. */
import { describe, expect, it, vi } from 'vitest';
import { Emitter } from '../../src/client/emitter.js';
import { Subscriptions } from '../../src/client/subscriptions.js';
import { SubscriptionSync } from '../../src/client/sync.js';
import type { MarketData } from '../../src/client/types.js';

const A = { exchange: 'NSE', symbol: 'A' };
const B = { exchange: 'NSE', symbol: 'B' };
const never = (): boolean => false;
const tick = (symbol: string, mode: 1 | 2 | 3): MarketData => ({ type: 'market_data', exchange: 'NSE', symbol, mode, data: { ltp: 1 }, broker: 'x' });

describe('subscriptions', () => {
  it('a (stream, mode) is newly held by its first handle and released by its last', () => {
    const subs = new Subscriptions();
    const one = subs.add([A, B], 1, undefined, never);
    expect(one.added.map((h) => `${h.key}@${h.mode}`)).toEqual(['NSE:A@1', 'NSE:B@1']);
    const two = subs.add([A], 1, undefined, never);
    expect(two.added).toEqual([]);
    const three = subs.add([A], 3, undefined, never);
    expect(three.added.map((h) => `${h.key}@${h.mode}`)).toEqual(['NSE:A@3']);

    expect(subs.removeHandle(one.id, 'gone')).toEqual({ released: [{ key: 'NSE:B', instrument: B, mode: 1 }], dropped: ['NSE:B'] });
    expect(subs.removeHandle(two.id)).toEqual({ released: [{ key: 'NSE:A', instrument: A, mode: 1 }], dropped: [] });
    expect(subs.holds('NSE:A', 3)).toBe(true);
    expect(subs.removeInstruments([A], 3)).toEqual({ released: [{ key: 'NSE:A', instrument: A, mode: 3 }], dropped: ['NSE:A'] });
    expect(subs.held()).toEqual([]);
    expect(subs.removeHandle(one.id)).toEqual({ released: [], dropped: [] });
  });

  it('a tick tagged m reaches the callbacks of handles at modes ≤ m of that stream only', () => {
    const subs = new Subscriptions();
    const ltp = vi.fn();
    const quote = vi.fn();
    const depth = vi.fn();
    subs.add([A], 1, ltp, never);
    subs.add([A], 2, quote, never);
    subs.add([A, B], 3, depth, never);
    subs.add([B], 1, undefined, never); // cache only: no callback
    expect(subs.callbacks('NSE:A', 1)).toEqual([ltp]);
    expect(subs.callbacks('NSE:A', 2)).toEqual([ltp, quote]);
    expect(subs.callbacks('NSE:A', 3)).toEqual([ltp, quote, depth]);
    expect(subs.callbacks('NSE:B', 3)).toEqual([depth]);
    expect(subs.callbacks('NSE:C', 3)).toEqual([]);
    subs.callbacks('NSE:A', 3).forEach((cb) => cb(tick('A', 3)));
    expect(ltp).toHaveBeenCalledWith(tick('A', 3));
  });

  it('ready settles once the gateway answered for every instrument; refused ones leave the handle', async () => {
    const subs = new Subscriptions();
    const handle = subs.add([A, B], 2, undefined, never);
    const other = subs.add([B], 2, undefined, never);
    expect(subs.settle('NSE:A', 2, { ok: true, depth: 5 })).toEqual({ released: [], dropped: [] });
    const removal = subs.settle('NSE:B', 2, { ok: false, message: 'Token not found for B on NSE' });
    expect(removal).toEqual({ released: [{ key: 'NSE:B', instrument: B, mode: 2 }], dropped: ['NSE:B'] });
    expect(await handle.ready).toEqual([
      { instrument: A, ok: true, depth: 5 },
      { instrument: B, ok: false, message: 'Token not found for B on NSE' },
    ]);
    expect(await other.ready).toEqual([{ instrument: B, ok: false, message: 'Token not found for B on NSE' }]);
    expect(subs.instrumentsOf(handle.id)).toEqual([A]);
    expect(subs.instrumentsOf(other.id)).toEqual([]);
  });

  it('already acknowledged pairs settle at once; closing fails what is still waiting', async () => {
    const subs = new Subscriptions();
    const acked = subs.add([A], 1, undefined, (key, mode) => key === 'NSE:A' && mode === 1);
    expect(await acked.ready).toEqual([{ instrument: A, ok: true }]);
    const waiting = subs.add([A, B], 1, undefined, (key) => key === 'NSE:A');
    subs.failAllPending('closed');
    expect(await waiting.ready).toEqual([{ instrument: A, ok: true }, { instrument: B, ok: false, message: 'closed' }]);
    const dropped = subs.add([B], 3, undefined, never);
    subs.removeHandle(dropped.id, 'gone');
    expect(await dropped.ready).toEqual([{ instrument: B, ok: false, message: 'gone' }]);
  });
});

describe('sync with the gateway', () => {
  const held = (instrument: typeof A, mode: 1 | 2 | 3) => ({ key: `${instrument.exchange}:${instrument.symbol}`, instrument, mode });

  it('sends what is wanted and not sent, withdraws what is sent and not wanted, nothing for churn within a turn', () => {
    const sync = new SubscriptionSync();
    const wanted = new Set(['NSE:A@1', 'NSE:B@2']);
    const holds = (key: string, mode: number): boolean => wanted.has(`${key}@${mode}`);
    sync.reset([held(A, 1), held(B, 2)]);
    let plan = sync.plan(holds);
    expect([...plan.subscribe]).toEqual([[1, [A]], [2, [B]]]);
    expect(plan.unsubscribe.size).toBe(0);
    expect(sync.hasWork).toBe(false);

    sync.answered('NSE:A', 1, true);
    expect(sync.isAcknowledged('NSE:A', 1)).toBe(true);
    sync.answered('NSE:B', 2, false); // refused: no longer held by the gateway
    expect(sync.isAcknowledged('NSE:B', 2)).toBe(false);

    // Removed and re-added in the same turn: nothing to send.
    sync.markDirty(held(A, 1));
    expect(sync.plan(holds).subscribe.size + sync.plan(holds).unsubscribe.size).toBe(0);

    wanted.delete('NSE:A@1');
    sync.markDirty(held(A, 1));
    plan = sync.plan(holds);
    expect([...plan.unsubscribe]).toEqual([[1, [A]]]);
    expect(sync.isAcknowledged('NSE:A', 1)).toBe(false);
  });

  it('a refused request is planned again; a new connection resends everything', () => {
    const sync = new SubscriptionSync();
    const holds = (): boolean => true;
    sync.reset([held(A, 1)]);
    sync.plan(holds);
    sync.retry([held(A, 1)]);
    expect([...sync.plan(holds).subscribe]).toEqual([[1, [A]]]);
    sync.answered('NSE:A', 1, true);
    sync.reset([held(A, 1), held(B, 3)]);
    expect(sync.isAcknowledged('NSE:A', 1)).toBe(false);
    expect([...sync.plan(holds).subscribe]).toEqual([[1, [A]], [3, [B]]]);

    sync.retryUnsubscribe([held(B, 3)]);
    expect([...sync.plan(() => false).unsubscribe]).toEqual([[3, [B]]]);
  });
});

describe('emitter', () => {
  it('delivers to listeners in order; a throwing listener does not stop the others', () => {
    const failures: unknown[] = [];
    const emitter = new Emitter<{ ping: number; other: string }>((event, error) => failures.push([event, (error as Error).message]));
    const seen: string[] = [];
    emitter.on('ping', (n) => seen.push(`a${n}`));
    emitter.on('ping', () => {
      throw new Error('boom');
    });
    const off = emitter.on('ping', (n) => seen.push(`c${n}`));
    emitter.once('ping', (n) => seen.push(`once${n}`));
    emitter.emit('ping', 1);
    off();
    emitter.emit('ping', 2);
    emitter.emit('other', 'x');
    expect(seen).toEqual(['a1', 'c1', 'once1', 'a2']);
    expect(failures).toEqual([['ping', 'boom'], ['ping', 'boom']]);
    expect(emitter.listenerCount('ping')).toBe(2);
  });
});
