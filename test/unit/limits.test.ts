import { describe, expect, it } from 'vitest';
import { FailedAuths, TokenBucket } from '../../src/gateway/limits.js';

describe('TokenBucket', () => {
  it('allows a burst, then the rate', () => {
    let now = 0;
    const bucket = new TokenBucket(2, 4, { now: () => now });
    expect([1, 2, 3, 4, 5].map(() => bucket.take())).toEqual([true, true, true, true, false]);
    now += 500; // one token back at 2/s
    expect([bucket.take(), bucket.take()]).toEqual([true, false]);
    now += 10_000; // refills up to the burst only
    expect([1, 2, 3, 4, 5].map(() => bucket.take())).toEqual([true, true, true, true, false]);
  });
});

describe('FailedAuths', () => {
  it('lets `allowed` failures pass, then doubles the wait up to the cap; success clears it', () => {
    let now = 0;
    const auths = new FailedAuths({ allowed: 2, windowMs: 60_000, maxBlockMs: 4000, clock: { now: () => now } });
    auths.fail('a');
    auths.fail('a');
    expect(auths.blockedFor('a')).toBe(0);
    auths.fail('a');
    expect(auths.blockedFor('a')).toBe(1000);
    auths.fail('a');
    expect(auths.blockedFor('a')).toBe(2000);
    auths.fail('a');
    auths.fail('a');
    expect(auths.blockedFor('a')).toBe(4000); // capped
    expect(auths.blockedFor('b')).toBe(0); // other addresses unaffected
    now += 4000;
    expect(auths.blockedFor('a')).toBe(0);
    auths.succeed('a');
    auths.fail('a');
    expect(auths.blockedFor('a')).toBe(0);
  });

  it('forgets failures older than the window and bounds the addresses it tracks', () => {
    let now = 0;
    const auths = new FailedAuths({ allowed: 1, windowMs: 1000, maxBlockMs: 60_000, clock: { now: () => now }, maxAddresses: 2 });
    auths.fail('a');
    now += 2000;
    auths.fail('a'); // a new window: the first failure again
    expect(auths.blockedFor('a')).toBe(0);
    auths.fail('b');
    auths.fail('c'); // evicts the oldest address
    auths.fail('a');
    expect(auths.blockedFor('a')).toBe(0);
  });
});
