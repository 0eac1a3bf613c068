import { describe, expect, it } from 'vitest';
import { Outbox } from '../../src/gateway/outbox.js';

function harness(budget = 100) {
  let now = 0;
  let buffered = 0;
  const written: string[] = [];
  const backlogged: boolean[] = [];
  const outbox = new Outbox(
    {
      buffered: () => buffered,
      write: (frame) => void written.push(frame.toString()),
      backlogged: (waiting) => void backlogged.push(waiting),
    },
    { budgetBytes: budget, slowConsumerMs: 1000, clock: { now: () => now }, maxUnconflatable: 2 },
  );
  return {
    outbox,
    written,
    backlogged,
    setBuffered: (n: number) => (buffered = n),
    advance: (ms: number) => (now += ms),
  };
}

const f = (s: string): Buffer => Buffer.from(s);

describe('Outbox', () => {
  it("never sends a stream's newer LTP before an older Quote of it (one slot per stream and mode)", () => {
    const h = harness();
    h.setBuffered(500);
    // Tick 1 makes an LTP and a Quote message; tick 2 only an LTP (an LTP topic of its own).
    h.outbox.push(f('ltp1'), 'X|1');
    h.outbox.push(f('quote1'), 'X|2');
    h.outbox.push(f('ltp2'), 'X|1');
    h.setBuffered(0);
    h.outbox.flush();
    expect(h.written).toEqual(['quote1', 'ltp2']);
  });

  it('writes straight through while under budget', () => {
    const h = harness();
    h.outbox.push(f('a1'), 'A');
    h.outbox.push(f('b1'), 'B');
    expect(h.written).toEqual(['a1', 'b1']);
    expect(h.outbox.sent).toBe(2);
  });

  it('conflates per slot while congested and flushes in the order the waiting values arrived', () => {
    const h = harness();
    h.setBuffered(500);
    h.outbox.push(f('a1'), 'A');
    h.outbox.push(f('b1'), 'B');
    h.outbox.push(f('a2'), 'A');
    h.outbox.push(f('a3'), 'A');
    expect(h.written).toEqual([]);
    expect(h.outbox.conflated).toBe(2);
    expect(h.outbox.backlog).toBe(2);
    h.setBuffered(0);
    h.outbox.flush();
    expect(h.written).toEqual(['b1', 'a3']);
    expect(h.outbox.backlog).toBe(0);
  });

  it('never writes a newer tick past an older waiting one of the same stream', () => {
    const h = harness();
    h.setBuffered(500);
    h.outbox.push(f('a1'), 'A');
    h.setBuffered(0); // drained, but the flush has not run yet
    h.outbox.push(f('a2'), 'A'); // replaces a1 instead of overtaking it
    h.outbox.push(f('b1'), 'B'); // waits behind the backlog too
    h.outbox.flush();
    expect(h.written).toEqual(['a2', 'b1']);
  });

  it('stops flushing when the budget fills again', () => {
    const h = harness();
    h.setBuffered(500);
    h.outbox.push(f('a'), 'A');
    h.outbox.push(f('b'), 'B');
    let writes = 0;
    const sink = h.written;
    h.setBuffered(0);
    // After one write the socket is over budget again.
    const push = sink.push.bind(sink);
    sink.push = (...items: string[]) => {
      writes++;
      h.setBuffered(500);
      return push(...items);
    };
    h.outbox.flush();
    expect(writes).toBe(1);
    expect(h.outbox.backlog).toBe(1);
  });

  it('flags a slow consumer after the period without progress, or too many unconflatable frames', () => {
    const h = harness();
    h.setBuffered(500);
    h.outbox.push(f('a'), 'A');
    h.advance(900);
    expect(h.outbox.isSlowConsumer()).toBe(false);
    h.outbox.flush(); // progress (a drain) restarts the clock even if nothing could be written
    h.advance(900);
    expect(h.outbox.isSlowConsumer()).toBe(false);
    h.advance(200);
    expect(h.outbox.isSlowConsumer()).toBe(true);

    const g = harness();
    g.setBuffered(500);
    g.outbox.push(f('o1'), undefined);
    g.outbox.push(f('o2'), undefined);
    expect(g.outbox.isSlowConsumer()).toBe(false);
    g.outbox.push(f('o3'), undefined);
    expect(g.outbox.isSlowConsumer()).toBe(true);
    g.outbox.discard();
    expect(g.outbox.dropped).toBe(3);
    expect(g.outbox.isSlowConsumer()).toBe(false);
  });

  it('admits replies up to twice the budget unsent; a refused reply makes the client a slow consumer', () => {
    const h = harness(100);
    h.setBuffered(200);
    expect(h.outbox.admitReply()).toBe(true);
    expect(h.outbox.isSlowConsumer()).toBe(false);
    h.setBuffered(201);
    expect(h.outbox.admitReply()).toBe(false);
    expect(h.outbox.isSlowConsumer()).toBe(true);
    // Reading again does not undo it: replies were lost, the client is given up on.
    h.setBuffered(0);
    expect(h.outbox.isSlowConsumer()).toBe(true);
  });

  it('tells its sink when a backlog starts and when it is gone, once each', () => {
    const h = harness();
    h.outbox.push(f('a1'), 'A');
    expect(h.backlogged).toEqual([]);
    h.setBuffered(500);
    h.outbox.push(f('a2'), 'A');
    h.outbox.push(f('b1'), 'B');
    h.outbox.push(f('a3'), 'A');
    expect(h.backlogged).toEqual([true]);
    h.outbox.flush(); // still over budget: the backlog stays
    expect(h.backlogged).toEqual([true]);
    h.setBuffered(0);
    h.outbox.flush();
    expect(h.backlogged).toEqual([true, false]);
    h.outbox.flush();
    h.outbox.discard(); // nothing waiting: nothing to tell
    expect(h.backlogged).toEqual([true, false]);

    h.setBuffered(500);
    h.outbox.push(f('o1'), undefined);
    h.outbox.discard();
    expect(h.backlogged).toEqual([true, false, true, false]);
    expect(h.outbox.dropped).toBe(1);
  });
});
