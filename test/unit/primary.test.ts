/** The cluster primary's pure parts: the restart schedule of dying workers, and the check of their reports. */
import { describe, expect, it } from 'vitest';
import { isProxyFigures, restartDelayMs } from '../../src/cluster/primary.js';

describe('cluster primary', () => {
  it('restarts a dead worker after 0.5 s, doubling per death in a row up to 30 s', () => {
    expect([1, 2, 3, 4, 5, 6, 7].map(restartDelayMs)).toEqual([500, 1000, 2000, 4000, 8000, 16_000, 30_000]);
    expect(restartDelayMs(50)).toBe(30_000);
  });

  it("takes a worker's proxy report only when it has the fields the stats file needs", () => {
    expect(isProxyFigures({ clients: 2, users: { dev: 2 }, subscriptions: [] })).toBe(true);
    expect(isProxyFigures({ clients: '2', users: {}, subscriptions: [] })).toBe(false);
    expect(isProxyFigures({ clients: 2, users: null, subscriptions: [] })).toBe(false);
    expect(isProxyFigures({ clients: 2, users: {}, subscriptions: {} })).toBe(false);
    expect(isProxyFigures(null)).toBe(false);
    expect(isProxyFigures('figures')).toBe(false);
  });
});
