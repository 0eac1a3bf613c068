import { describe, expect, it } from 'vitest';
import { LastValues, type StreamState } from '../../src/gateway/last-values.js';
import { RecentTicks } from '../../src/gateway/recent-ticks.js';
import type { Mode } from '../../src/protocol/modes.js';

/** A stream with LastValues' numbering and a ring, fed as fan-out feeds them. */
function feeder(limits: ConstructorParameters<typeof RecentTicks>[0] = {}, lastValuesLimits: ConstructorParameters<typeof LastValues>[0] = {}) {
  const recent = new RecentTicks(limits);
  const lastValues = new LastValues(lastValuesLimits, (stream) => recent.forget(stream));
  let now = 1_000_000;
  return {
    recent,
    lastValues,
    advance: (ms: number) => void (now += ms),
    now: () => now,
    tick(key: string, mode: Mode, payload: string): StreamState {
      const { stream, modes } = lastValues.record('f', key, mode, payload, now);
      recent.push(stream, payload, mode, modes, now);
      return stream;
    },
  };
}

const seqsOf = (plan: ReturnType<RecentTicks['plan']>, mode: Mode): number[] => (plan.ok ? plan.ticks.map((t) => t.seqs[mode - 1]!) : []);

describe('RecentTicks', () => {
  it('resends every message after since, in order, with from and to', () => {
    const f = feeder();
    let stream!: StreamState;
    for (let i = 1; i <= 10; i++) stream = f.tick('NSE:A', 2, `{"ltp":${i}}`);
    const plan = f.recent.plan(stream, 2, 6, f.now());
    expect(plan).toMatchObject({ ok: true, from: 7, to: 10 });
    expect(seqsOf(plan, 2)).toEqual([7, 8, 9, 10]);
    if (plan.ok) expect(plan.ticks.map((t) => t.payload)).toEqual(['{"ltp":7}', '{"ltp":8}', '{"ltp":9}', '{"ltp":10}']);
    // Nothing missed: recovered with none; beyond the last: ahead.
    expect(f.recent.plan(stream, 2, 10, f.now())).toEqual({ ok: true, from: 11, to: 10, ticks: [] });
    expect(f.recent.plan(stream, 2, 11, f.now())).toEqual({ ok: false, reason: 'ahead', last: 10 });
    expect(f.recent.plan(undefined, 2, 0, f.now())).toEqual({ ok: true, from: 1, to: 0, ticks: [] });
    expect(f.recent.plan(undefined, 2, 3, f.now())).toMatchObject({ ok: false, reason: 'ahead', last: 0 });
  });

  it('keeps at most `ticks` per stream: older ones are history, saying from which seq it holds', () => {
    const f = feeder({ ticks: 5 });
    let stream!: StreamState;
    for (let i = 1; i <= 20; i++) stream = f.tick('NSE:A', 1, `{"ltp":${i}}`);
    expect(stream.ring!.length).toBe(5);
    expect(f.recent.plan(stream, 1, 14, f.now())).toEqual({ ok: false, reason: 'history', last: 20, oldest: 16 });
    expect(seqsOf(f.recent.plan(stream, 1, 15, f.now()), 1)).toEqual([16, 17, 18, 19, 20]);
  });

  it('does not resend ticks older than maxAgeMs, and drops them at the next tick', () => {
    const f = feeder({ maxAgeMs: 1000 });
    let stream = f.tick('NSE:A', 1, '{"ltp":1}');
    f.tick('NSE:A', 1, '{"ltp":2}');
    f.advance(800);
    f.tick('NSE:A', 1, '{"ltp":3}');
    f.advance(300);
    expect(f.recent.plan(stream, 1, 0, f.now())).toMatchObject({ ok: false, reason: 'history', oldest: 3 });
    expect(seqsOf(f.recent.plan(stream, 1, 2, f.now()), 1)).toEqual([3]);
    stream = f.tick('NSE:A', 1, '{"ltp":4}');
    expect(stream.ring!.length).toBe(2);
  });

  it('bounds all rings by payload characters: the least recently updated streams lose their oldest first', () => {
    const payload = 'x'.repeat(100);
    const f = feeder({ bytes: 1000 });
    const a = f.tick('NSE:A', 1, payload);
    for (let i = 0; i < 4; i++) f.tick('NSE:A', 1, payload);
    const b = f.tick('NSE:B', 1, payload);
    for (let i = 0; i < 4; i++) f.tick('NSE:B', 1, payload);
    expect(f.recent.bytes).toBe(1000);
    f.tick('NSE:B', 1, payload);
    // A was updated least recently: its oldest tick went.
    expect([a.ring!.length, b.ring!.length]).toEqual([4, 6]);
    for (let i = 0; i < 4; i++) f.tick('NSE:B', 1, payload);
    expect(a.ring).toBeUndefined();
    expect(b.ring!.length).toBe(10);
    expect(f.recent.bytes).toBe(1000);
    expect(f.recent.streams).toBe(1);
  });

  it('forgets a ring with the stream LastValues forgets (its seq restarts)', () => {
    const f = feeder({}, { streams: 2 });
    const a = f.tick('NSE:A', 1, '{"ltp":1}');
    f.tick('NSE:B', 1, '{"ltp":1}');
    f.tick('NSE:C', 1, '{"ltp":1}');
    expect(a.ring).toBeUndefined();
    expect(f.lastValues.stream('f', 'NSE:A')).toBeUndefined();
    expect(f.recent.streams).toBe(2);
    expect(f.recent.bytes).toBe(2 * '{"ltp":1}'.length);
    const again = f.tick('NSE:A', 1, '{"ltp":2}');
    expect(again.seq[0]).toBe(1);
    expect(f.recent.plan(again, 1, 5, f.now())).toMatchObject({ ok: false, reason: 'ahead' });
  });

  it("keeps each tick's modes: a Depth tick that made LTP and Quote messages is resent at each", () => {
    const f = feeder();
    let stream = f.tick('NSE:A', 3, '{"ltp":1,"depth":{}}');
    stream = f.tick('NSE:A', 3, '{"ltp":2,"depth":{}}');
    expect(stream.seq).toEqual([2, 2, 2]);
    const ltp = f.recent.plan(stream, 1, 0, f.now());
    expect(ltp).toMatchObject({ ok: true, from: 1, to: 2 });
    if (ltp.ok) expect(ltp.ticks.map((t) => [t.source, t.modes])).toEqual([[3, 7], [3, 7]]);
  });

  it('counts each mode apart when a publisher sends a topic per mode', () => {
    const f = feeder();
    // One trade published as LTP then Depth (OpenAlgo's adapters): the Depth tick makes no LTP message.
    for (let i = 1; i <= 3; i++) {
      f.tick('NSE:A', 1, `{"ltp":${i}}`);
      f.advance(10);
      f.tick('NSE:A', 3, `{"ltp":${i},"depth":{}}`);
      f.advance(10);
    }
    const stream = f.lastValues.stream('f', 'NSE:A')!;
    expect(stream.seq).toEqual([3, 3, 3]);
    const ltp = f.recent.plan(stream, 1, 1, f.now());
    expect(seqsOf(ltp, 1)).toEqual([2, 3]);
    if (ltp.ok) expect(ltp.ticks.map((t) => t.source)).toEqual([1, 1]);
    const depth = f.recent.plan(stream, 3, 1, f.now());
    expect(seqsOf(depth, 3)).toEqual([2, 3]);
    if (depth.ok) expect(depth.ticks.map((t) => t.source)).toEqual([3, 3]);
    // Whatever is held after a seq, for the messages held back during a recovery that failed.
    expect(f.recent.after(stream, 1, 2, f.now()).map((t) => t.seqs[0])).toEqual([3]);
  });

  it('grows its ring past the initial capacity and wraps around without losing order', () => {
    const f = feeder({ ticks: 50 });
    let stream!: StreamState;
    for (let i = 1; i <= 137; i++) stream = f.tick('NSE:A', 1, `{"ltp":${i}}`);
    const plan = f.recent.plan(stream, 1, 87, f.now());
    expect(seqsOf(plan, 1)).toEqual(Array.from({ length: 50 }, (_, i) => 88 + i));
    if (plan.ok) expect(plan.ticks.map((t) => t.payload)).toEqual(Array.from({ length: 50 }, (_, i) => `{"ltp":${88 + i}}`));
  });
});
