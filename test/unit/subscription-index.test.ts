import { describe, expect, it } from 'vitest';
import { streamKey } from '../../src/feed.js';
import { SubscriptionIndex, highestMode } from '../../src/gateway/subscription-index.js';

describe('highestMode', () => {
  // mask bits: 1 = LTP, 2 = Quote, 4 = Depth
  it.each([[0, 0], [0b001, 1], [0b010, 2], [0b011, 2], [0b100, 3], [0b101, 3], [0b111, 3]] as const)('mask %i → %i', (mask, expected) => {
    expect(highestMode(mask)).toBe(expected);
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

  it('lists a subscriber\'s streams in subscription order; another mode keeps a stream\'s place', () => {
    const index = new SubscriptionIndex<string>();
    index.add('f', 'NSE', 'TCS', 1, 'a');
    index.add('f', 'NSE', 'INFY', 2, 'a');
    index.add('f', 'NSE', 'TCS', 3, 'a');
    expect(index.held('a').map((h) => [h.symbol, h.modes])).toEqual([['TCS', [1, 3]], ['INFY', [2]]]);
    expect(index.heldBy('a')).toBe(2);
    expect(index.heldCount).toBe(2);
    index.remove('f', 'NSE', 'TCS', 1, 'a');
    index.remove('f', 'NSE', 'TCS', 3, 'a');
    index.add('f', 'NSE', 'TCS', 1, 'a'); // dropped and taken again: now the newest
    expect(index.held('a').map((h) => h.symbol)).toEqual(['INFY', 'TCS']);
  });

  it('forgets a stream nobody holds, and starts it afresh for the next subscriber', () => {
    const index = new SubscriptionIndex<string>();
    index.add('f', 'NSE', 'TCS', 2, 'a');
    const before = index.subscribers('f', streamKey('NSE', 'TCS'));
    expect(index.removeAll('a')).toEqual([{ feed: 'f', exchange: 'NSE', symbol: 'TCS', modes: [2] }]);
    expect(index.subscribers('f', streamKey('NSE', 'TCS'))).toBeUndefined();
    expect(index.holds('f', 'NSE', 'TCS', 'a')).toBe(false);
    expect(index.streamCount).toBe(0);
    expect(index.removeAll('a')).toEqual([]);

    index.add('f', 'NSE', 'TCS', 1, 'b');
    expect(index.subscribers('f', streamKey('NSE', 'TCS'))).not.toBe(before);
    expect(index.subscribers('f', streamKey('NSE', 'TCS'))).toEqual(new Map([['b', 1]]));
    expect(before).toEqual(new Map()); // the old stream's map is not reused behind anyone's back
    expect(index.holds('f', 'NSE', 'TCS', 'b')).toBe(true);
    expect(index.holds('f', 'NSE', 'TCS', 'a')).toBe(false);
    expect([...index.wanted('f')]).toEqual([{ exchange: 'NSE', symbol: 'TCS', mode: 1 }]);
    expect(index.subscriberCount).toBe(1);
  });
});
