import { describe, expect, it } from 'vitest';
import { LastValues } from '../../src/gateway/last-values.js';
import { modeBit } from '../../src/protocol/modes.js';

const all = modeBit(1) | modeBit(2) | modeBit(3);

describe('LastValues', () => {
  it('a tick makes messages for its mode and each lower mode not published on its own', () => {
    const values = new LastValues();
    expect(values.record('f', 'A', 3, '{"d":1}', 1000).modes).toBe(all);
    // An LTP tick since the last Depth tick: from now on LTP serves itself.
    expect(values.record('f', 'A', 1, '{"l":1}', 1100).modes).toBe(modeBit(1));
    expect(values.record('f', 'A', 3, '{"d":2}', 1200).modes).toBe(modeBit(2) | modeBit(3));
    // No LTP tick between two Depth ticks: the Depth tick serves LTP again.
    expect(values.record('f', 'A', 3, '{"d":3}', 1300).modes).toBe(all);
    expect(values.last('f', 'A', 1)).toEqual({ payload: '{"d":3}', source: 3, seq: 3, at: 1300 });
    expect(values.last('f', 'A', 3)?.seq).toBe(3);
  });

  it('keeps at most the configured bytes of payloads, forgetting the least recently updated streams', () => {
    const values = new LastValues({ bytes: 10_000 });
    const payload = (n: number): string => `{"v":"${'x'.repeat(990)}${String(n).padStart(3, '0')}"}`;
    for (let i = 0; i < 50; i++) values.record('f', `S${i}`, 3, payload(i), i);
    expect(values.bytes).toBeLessThanOrEqual(10_000);
    expect(values.size).toBeLessThan(11);
    expect(values.last('f', 'S49', 3)?.payload).toBe(payload(49));
    expect(values.last('f', 'S0', 3)).toBeUndefined();
    // A stream that keeps ticking stays, and its own updates do not grow what is held.
    for (let i = 0; i < 100; i++) values.record('f', 'S49', 3, payload(i), 100 + i);
    expect(values.bytes).toBeLessThanOrEqual(10_000);
    expect(values.last('f', 'S49', 1)?.payload).toBe(payload(99));
  });

  it('numbers but does not keep a payload over the value limit', () => {
    const values = new LastValues({ valueBytes: 100 });
    const big = `{"v":"${'x'.repeat(200)}"}`;
    expect(values.record('f', 'A', 2, big, 1).stream.seq).toEqual([1, 1, 0]);
    expect(values.last('f', 'A', 2)).toBeUndefined();
    expect(values.bytes).toBe(0);
    values.record('f', 'A', 2, '{"v":1}', 2);
    expect(values.last('f', 'A', 2)).toMatchObject({ payload: '{"v":1}', seq: 2 });
    expect(values.bytes).toBe('{"v":1}'.length);
  });

  it('forgets the oldest stream past the stream limit', () => {
    const values = new LastValues({ streams: 3 });
    for (const id of ['A', 'B', 'C', 'D']) values.record('f', id, 1, '{"l":1}', 0);
    expect(values.size).toBe(3);
    expect(values.last('f', 'A', 1)).toBeUndefined();
    expect(values.bytes).toBe(3 * '{"l":1}'.length);
  });
});
