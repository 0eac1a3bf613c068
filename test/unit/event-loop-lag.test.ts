/** Event-loop lag over a window: what a blocked loop shows, and when the window turns over. */
import { afterEach, describe, expect, it } from 'vitest';
import { EventLoopLag } from '../../src/observability/event-loop-lag.js';

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

function block(ms: number): void {
  const until = performance.now() + ms;
  while (performance.now() < until);
}

let lag: EventLoopLag | undefined;
afterEach(() => lag?.close());

describe('EventLoopLag', () => {
  it('reads zeros before the timer has fired', () => {
    lag = new EventLoopLag({ now: () => 0 });
    expect(lag.read()).toEqual({ p50: 0, p99: 0, max: 0 });
  });

  it('sees a blocked loop, keeps the figures of the last window, then starts afresh', async () => {
    let now = 0;
    lag = new EventLoopLag({ windowMs: 1000, now: () => now });
    await sleep(50);
    block(200);
    await sleep(50);
    // The timer due during the block fired at least ~200 ms late (a lower bound, not a timing).
    const first = lag.read();
    expect(first.max).toBeGreaterThanOrEqual(150);
    expect(first.max).toBeGreaterThanOrEqual(first.p99);
    expect(first.p99).toBeGreaterThanOrEqual(first.p50);

    // The window ends at this read: same figures, and they stay until the next window ends.
    now = 1000;
    expect(lag.read()).toEqual(first);
    await sleep(100);
    now = 1500;
    expect(lag.read()).toEqual(first);

    // The next window held no block.
    now = 2000;
    expect(lag.read().max).toBeLessThan(150);
  });
});
