import { describe, expect, it } from 'vitest';
import { FanOut, type TickRoute } from '../../src/gateway/fan-out.js';
import type { Session } from '../../src/gateway/session.js';
import { SubscriptionIndex, streamKey } from '../../src/gateway/subscription-index.js';

function fakeSession(broker: string): Session & { frames: Buffer[] } {
  const frames: Buffer[] = [];
  return { broker, frames, ordersSubscribed: false, deliver: (frame: Buffer) => frames.push(frame) } as unknown as Session & { frames: Buffer[] };
}

const tick = (feed: string, mode: 1 | 2 | 3, payload = '{"ltp":1.0}'): [TickRoute, string] => [
  { feed, exchange: 'NSE', symbol: 'TCS', key: streamKey('NSE', 'TCS'), mode },
  payload,
];

describe('FanOut', () => {
  it('delivers a tagged feed only to that feed, the shared feed to all', () => {
    const index = new SubscriptionIndex<Session>();
    const onA = fakeSession('zerodha');
    const onB = fakeSession('angel');
    const shared = fakeSession('fyers');
    index.add('a', 'NSE', 'TCS', 1, onA);
    index.add('b', 'NSE', 'TCS', 1, onB);
    index.add('', 'NSE', 'TCS', 1, shared);
    const fanOut = new FanOut(index);

    fanOut.deliver(...tick('a', 1));
    expect([onA.frames.length, onB.frames.length, shared.frames.length]).toEqual([1, 0, 0]);
    fanOut.deliver(...tick('c', 1));
    expect([onA.frames.length, onB.frames.length, shared.frames.length]).toEqual([1, 0, 0]);
    fanOut.deliver(...tick('', 1));
    expect([onA.frames.length, onB.frames.length, shared.frames.length]).toEqual([2, 1, 1]);
    expect(JSON.parse(onB.frames[0]!.toString()).broker).toBe('angel');
  });

  it('tags each subscriber with its highest mode ≤ the tick, and serialises once per (mode, broker)', () => {
    const index = new SubscriptionIndex<Session>();
    const ltp1 = fakeSession('zerodha');
    const ltp2 = fakeSession('zerodha');
    const quoteAndLtp = fakeSession('zerodha');
    const depthOnly = fakeSession('zerodha');
    index.add('', 'NSE', 'TCS', 1, ltp1);
    index.add('', 'NSE', 'TCS', 1, ltp2);
    index.add('', 'NSE', 'TCS', 1, quoteAndLtp);
    index.add('', 'NSE', 'TCS', 2, quoteAndLtp);
    index.add('', 'NSE', 'TCS', 3, depthOnly);
    const fanOut = new FanOut(index);

    fanOut.deliver(...tick('', 2, '{"ltp": 1418.0}'));
    expect(JSON.parse(ltp1.frames[0]!.toString())).toStrictEqual({ type: 'market_data', symbol: 'TCS', exchange: 'NSE', mode: 1, data: { ltp: 1418 }, broker: 'zerodha' });
    expect(ltp1.frames[0]).toBe(ltp2.frames[0]); // the same bytes, not a copy per client
    expect(quoteAndLtp.frames).toHaveLength(1); // one message, tagged with the higher mode
    expect(JSON.parse(quoteAndLtp.frames[0]!.toString()).mode).toBe(2);
    expect(depthOnly.frames).toHaveLength(0); // a Quote tick is not delivered to a Depth-only subscriber
    expect(fanOut.deliveries).toBe(3);
  });
});
