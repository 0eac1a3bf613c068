import { describe, expect, it } from 'vitest';
import { feedStreamKey, streamKey } from '../../src/feed.js';

describe('feed contract: stream keys', () => {
  it('keeps streams apart whose parts would run together with a printable separator', () => {
    expect(streamKey('NSE:X', 'Y')).not.toBe(streamKey('NSE', 'X:Y'));
    expect(streamKey('NSE', 'TCS')).toBe(streamKey('NSE', 'TCS'));
    expect(streamKey('NSE', 'TCS')).not.toBe(streamKey('BSE', 'TCS'));
  });

  it('scopes a stream by feed: the same stream on two feeds has two keys', () => {
    expect(feedStreamKey('simulator', 'NSE', 'TCS')).not.toBe(feedStreamKey('zerodha.alice', 'NSE', 'TCS'));
    expect(feedStreamKey('f', 'NSE', 'TCS')).not.toBe(feedStreamKey('f', 'NSE', 'INFY'));
    // The feed-scoped key ends with the stream key, so a feed's streams share a prefix.
    expect(feedStreamKey('f', 'NSE', 'TCS').endsWith(streamKey('NSE', 'TCS'))).toBe(true);
    expect(feedStreamKey('f', 'NSE', 'TCS').startsWith('f\u0000')).toBe(true);
  });
});
