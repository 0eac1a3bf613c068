import { describe, expect, it } from 'vitest';
import { PrimaryChannel } from '../../src/cluster/channel.js';
import { Hub } from '../../src/cluster/hub.js';
import { isPrimaryMessage, isWorkerMessage, type WorkerMessage } from '../../src/cluster/messages.js';
import { WorkerAdapter } from '../../src/cluster/worker-adapter.js';
import { silentLogger } from '../../src/observability/logger.js';
import { KeepingAdapter } from '../helpers/keeping-adapter.js';

function hub(): { hub: Hub; adapter: KeepingAdapter; statuses: string[] } {
  const adapter = new KeepingAdapter('sim');
  const statuses: string[] = [];
  const h = new Hub({ adapters: [{ adapter, brokers: '*' }], logger: silentLogger(), onStatus: (feed, status) => statuses.push(`${feed} ${status}`) });
  return { hub: h, adapter, statuses };
}

describe('Hub: upstream interest as the union of the workers', () => {
  it('subscribes upstream once per stream at the highest mode any worker wants', async () => {
    const { hub: h, adapter } = hub();
    expect(await h.setInterest(1, 'sim', 'NSE', 'INFY', 1, 5)).toEqual({ ok: true, depth: 5 });
    expect(await h.setInterest(2, 'sim', 'NSE', 'INFY', 1, 5)).toEqual({ ok: true, depth: 5 });
    await h.setInterest(2, 'sim', 'NSE', 'INFY', 3, 5);
    expect(adapter.calls).toEqual(['sub INFY 1', 'sub INFY 3']);
    expect(adapter.held.get('INFY')).toBe(3);
  });

  it('lowers upstream when the worker holding the highest mode lowers or leaves', async () => {
    const { hub: h, adapter } = hub();
    await h.setInterest(1, 'sim', 'NSE', 'INFY', 2, 5);
    await h.setInterest(2, 'sim', 'NSE', 'INFY', 3, 5);
    await h.setInterest(2, 'sim', 'NSE', 'INFY', 1, 5);
    expect(adapter.held.get('INFY')).toBe(2);
    await h.setInterest(1, 'sim', 'NSE', 'INFY', 0, 0);
    expect(adapter.held.get('INFY')).toBe(1);
    await h.setInterest(2, 'sim', 'NSE', 'INFY', 0, 0);
    expect(adapter.held.has('INFY')).toBe(false);
    expect(adapter.calls.at(-1)).toBe('unsub INFY');
  });

  it("releases a dead worker's interest and keeps what others still want", async () => {
    const { hub: h, adapter } = hub();
    await h.setInterest(1, 'sim', 'NSE', 'INFY', 3, 5);
    await h.setInterest(1, 'sim', 'NSE', 'TCS', 1, 5);
    await h.setInterest(2, 'sim', 'NSE', 'INFY', 1, 5);
    expect(await h.dropWorker(1)).toBe(2);
    expect(adapter.held.get('INFY')).toBe(1);
    expect(adapter.held.has('TCS')).toBe(false);
    expect(await h.dropWorker(1)).toBe(0);
  });

  it('passes a refusal back and records nothing for it', async () => {
    const { hub: h, adapter } = hub();
    expect(await h.setInterest(1, 'sim', 'NSE', 'BAD', 1, 5)).toEqual({ ok: false, message: 'unknown symbol' });
    expect(h.index.wantedMode('sim', 'NSE', 'BAD')).toBe(0);
    expect(await h.dropWorker(1)).toBe(0);
    expect(adapter.held.size).toBe(0);
  });

  it('replays the union to an adapter that restarted holding nothing', async () => {
    const { hub: h, adapter } = hub();
    await h.setInterest(1, 'sim', 'NSE', 'INFY', 1, 5);
    await h.setInterest(2, 'sim', 'NSE', 'TCS', 2, 5);
    adapter.held.clear();
    await h.replay('sim');
    expect(Object.fromEntries(adapter.held)).toEqual({ INFY: 1, TCS: 2 });
  });

  it('lists feeds for workers, refuses a second feed with the same id, and reports status changes', () => {
    const { hub: h, adapter, statuses } = hub();
    expect(h.feedInfo()).toEqual([{ feed: 'sim', broker: 'simulator', brokers: '*', status: 'live' }]);
    expect(h.add({ adapter: new KeepingAdapter('sim'), brokers: ['x'] })).toMatch(/already in use/);
    expect(h.add({ adapter: new KeepingAdapter('zerodha.alice'), brokers: [] }, false)).toBeUndefined();
    expect(h.feedInfo().map((f) => f.feed)).toEqual(['sim']);
    adapter.emit('reconnecting');
    expect(statuses).toEqual(['sim reconnecting']);
  });
});

describe('PrimaryChannel and WorkerAdapter: a worker talking to its primary', () => {
  it('turns subscribe and unsubscribe into interest requests answered by id', async () => {
    const sent: WorkerMessage[] = [];
    const channel = new PrimaryChannel({ send: (message) => sent.push(message) });
    const adapter = new WorkerAdapter({ feed: 'sim', broker: 'simulator', status: 'live', channel });
    const pending = adapter.subscribe({ exchange: 'NSE', symbol: 'INFY' }, 2, 5);
    expect(sent).toEqual([{ type: 'interest', id: 1, feed: 'sim', exchange: 'NSE', symbol: 'INFY', mode: 2, depth: 5 }]);
    expect(channel.receive({ type: 'result', id: 1, result: { ok: true, depth: 5 } })).toBe(true);
    expect(await pending).toEqual({ ok: true, depth: 5 });
    const leaving = adapter.unsubscribe({ exchange: 'NSE', symbol: 'INFY' });
    expect(sent[1]).toMatchObject({ type: 'interest', id: 2, mode: 0 });
    channel.receive({ type: 'result', id: 2, result: { ok: true } });
    await leaving;
  });

  it('fails requests that get no answer, and all waiting ones when the primary is gone', async () => {
    const channel = new PrimaryChannel({ send: () => {}, timeoutMs: 20 });
    expect(await channel.request({ type: 'interest', feed: 'sim', exchange: 'NSE', symbol: 'X', mode: 1, depth: 5 })).toMatchObject({ ok: false, message: /did not answer/ });
    const slow = new PrimaryChannel({ send: () => {}, timeoutMs: 60_000 });
    const waiting = slow.request({ type: 'user_feed', user: 'alice', broker: 'zerodha', feed: 'zerodha.alice' });
    slow.close();
    expect(await waiting).toMatchObject({ ok: false, message: /gone/ });
  });

  it('starts a user feed through the primary and surfaces its refusal', async () => {
    const channel = new PrimaryChannel({ send: (message) => queueMicrotask(() => channel.receive({ type: 'result', id: (message as { id: number }).id, result: { ok: false, message: 'no credentials' } })) });
    const adapter = new WorkerAdapter({ feed: 'zerodha.alice', broker: 'zerodha', status: 'reconnecting', channel, user: 'alice' });
    await expect(adapter.start()).rejects.toThrow('no credentials');
  });

  it('applies status changes from the primary', () => {
    const channel = new PrimaryChannel({ send: () => {} });
    const adapter = new WorkerAdapter({ feed: 'sim', broker: 'simulator', status: 'live', channel });
    const events: string[] = [];
    adapter.onStatus((event) => events.push(`${event.status} ${event.message ?? ''}`));
    adapter.setStatus('down', 'adapter process exited');
    expect(adapter.status()).toBe('down');
    expect(events).toEqual(['down adapter process exited']);
  });

  it('checks the shape of every message crossing the channel', () => {
    expect(isWorkerMessage({ type: 'interest', id: 1, feed: 'f', exchange: 'NSE', symbol: 'A', mode: 4, depth: 5 })).toBe(false);
    expect(isWorkerMessage({ type: 'interest', id: 1, feed: 'f', exchange: 'NSE', symbol: 'A', mode: 0, depth: 5 })).toBe(true);
    expect(isWorkerMessage({ type: 'listening' })).toBe(false);
    expect(isWorkerMessage(null)).toBe(false);
    expect(isPrimaryMessage({ type: 'result', id: 1, result: {} })).toBe(false);
    expect(isPrimaryMessage({ type: 'stop' })).toBe(true);
    const channel = new PrimaryChannel({ send: () => {} });
    expect(channel.receive({ type: 'nonsense' })).toBe(false);
  });
});
