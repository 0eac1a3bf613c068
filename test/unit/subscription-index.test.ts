import { describe, expect, it } from 'vitest';
import { SubscriptionIndex, deliveryMode, streamKey } from '../../src/gateway/subscription-index.js';

describe('deliveryMode (spec §2.10 mode fan-out)', () => {
  // mask bits: 1 = LTP, 2 = Quote, 4 = Depth
  it.each([
    [0b001, 1, 1], [0b001, 2, 1], [0b001, 3, 1],
    [0b010, 1, 0], [0b010, 2, 2], [0b010, 3, 2],
    [0b100, 1, 0], [0b100, 2, 0], [0b100, 3, 3],
    [0b011, 3, 2], [0b101, 2, 1], [0b111, 3, 3], [0b110, 1, 0],
  ] as const)('mask %i, tick mode %i → %i', (mask, tick, expected) => {
    expect(deliveryMode(mask, tick)).toBe(expected);
  });
});

describe('SubscriptionIndex', () => {
  it('tracks modes per subscriber and the wanted mode per stream', () => {
    const index = new SubscriptionIndex<string>();
    expect(index.add('f', 'NSE', 'TCS', 1, 'a')).toBe(true);
    expect(index.add('f', 'NSE', 'TCS', 1, 'a')).toBe(false);
    expect(index.add('f', 'NSE', 'TCS', 3, 'b')).toBe(true);
    expect(index.wantedMode('f', 'NSE', 'TCS')).toBe(3);
    expect(index.subscribers('f', streamKey('NSE', 'TCS'))).toEqual(new Map([['a', 1], ['b', 4]]));
    expect(index.remove('f', 'NSE', 'TCS', 3, 'b')).toBe(true);
    expect(index.wantedMode('f', 'NSE', 'TCS')).toBe(1);
    expect(index.remove('f', 'NSE', 'TCS', 3, 'b')).toBe(false);
    expect(index.remove('f', 'NSE', 'TCS', 1, 'a')).toBe(true);
    expect(index.wantedMode('f', 'NSE', 'TCS')).toBe(0);
    expect(index.streamCount).toBe(0);
    expect(index.subscriberCount).toBe(0);
    expect([...index.feeds()]).toEqual([]);
  });

  it('keeps feeds apart', () => {
    const index = new SubscriptionIndex<string>();
    index.add('x', 'NSE', 'TCS', 2, 'a');
    index.add('y', 'NSE', 'TCS', 1, 'b');
    expect(index.subscribers('x', streamKey('NSE', 'TCS'))).toEqual(new Map([['a', 2]]));
    expect(index.subscribers('y', streamKey('NSE', 'TCS'))).toEqual(new Map([['b', 1]]));
    expect(index.wantedMode('x', 'NSE', 'TCS')).toBe(2);
    expect([...index.feeds()].sort()).toEqual(['x', 'y']);
  });

  it('removeAll returns what the subscriber held and leaves others alone', () => {
    const index = new SubscriptionIndex<string>();
    index.add('f', 'NSE', 'TCS', 1, 'a');
    index.add('f', 'NSE', 'TCS', 2, 'a');
    index.add('f', 'NSE_INDEX', 'NIFTY', 3, 'a');
    index.add('f', 'NSE', 'TCS', 2, 'b');
    expect(index.held('a')).toEqual([
      { feed: 'f', exchange: 'NSE', symbol: 'TCS', modes: [1, 2] },
      { feed: 'f', exchange: 'NSE_INDEX', symbol: 'NIFTY', modes: [3] },
    ]);
    expect(index.removeAll('a')).toEqual([
      { feed: 'f', exchange: 'NSE', symbol: 'TCS', modes: [1, 2] },
      { feed: 'f', exchange: 'NSE_INDEX', symbol: 'NIFTY', modes: [3] },
    ]);
    expect(index.held('a')).toEqual([]);
    expect(index.wantedMode('f', 'NSE', 'TCS')).toBe(2);
    expect(index.wantedMode('f', 'NSE_INDEX', 'NIFTY')).toBe(0);
    expect([...index.wanted('f')]).toEqual([{ exchange: 'NSE', symbol: 'TCS', mode: 2 }]);
  });
});
