import { describe, expect, it } from 'vitest';
import { type AuthAdmission, type AuthOutcome, FailedAuths, type SharedAdmission, TokenBucket, failedAuthsFor, verifyLimited } from '../../src/gateway/limits.js';

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

/** Admits one check from `address` and settles it at once; the answer's hold-back, or 'refused'. */
function attempt(auths: FailedAuths, address: string, outcome: AuthOutcome): number | 'refused' {
  const admission = auths.admit(address);
  return admission.admitted ? admission.settle(outcome) : 'refused';
}

function admitted(admission: AuthAdmission): Extract<AuthAdmission, { admitted: true }> {
  if (!admission.admitted) throw new Error(`refused (retry in ${admission.retryInMs} ms)`);
  return admission;
}

describe('FailedAuths', () => {
  it('answers `allowed` failures at once, then holds each further one back, doubling up to the cap', () => {
    let now = 0;
    const auths = new FailedAuths({ allowed: 2, windowMs: 60_000, maxBlockMs: 4000, clock: { now: () => now } });
    expect([1, 2, 3, 4, 5, 6].map(() => attempt(auths, 'a', 'invalid'))).toEqual([0, 0, 1000, 2000, 4000, 4000]);
    expect(auths.failures('a')).toBe(6);
    expect(attempt(auths, 'b', 'invalid')).toBe(0); // other addresses unaffected
  });

  it('lets a valid key through at once from an address over its allowance, without clearing its failures', () => {
    let now = 0;
    const auths = new FailedAuths({ allowed: 2, windowMs: 60_000, maxBlockMs: 60_000, clock: { now: () => now } });
    for (let i = 0; i < 3; i++) attempt(auths, 'a', 'invalid');
    expect(attempt(auths, 'a', 'valid')).toBe(0);
    expect(attempt(auths, 'a', 'valid')).toBe(0);
    // One valid key interleaved must not give a guesser a fresh allowance.
    expect(auths.failures('a')).toBe(3);
    expect(attempt(auths, 'a', 'invalid')).toBe(2000);
    // A check that itself failed is no verdict: not counted.
    expect(attempt(auths, 'a', 'error')).toBe(0);
    expect(auths.failures('a')).toBe(4);
  });

  it('past the allowance, checks one key at a time per address and refuses the rest with a retry hint', () => {
    let now = 0;
    const auths = new FailedAuths({ allowed: 2, windowMs: 60_000, maxBlockMs: 60_000, clock: { now: () => now } });
    // Within the allowance any number may be checked at once (a proxy's clients reconnecting).
    const within = [auths.admit('a'), auths.admit('a'), auths.admit('a')].map(admitted);
    expect(within.map((a) => a.settle('invalid'))).toEqual([0, 0, 1000]);

    const first = admitted(auths.admit('a'));
    expect(auths.admit('a')).toEqual({ admitted: false, retryInMs: 1000 });
    expect(auths.admit('b').admitted).toBe(true); // per address
    now += 200;
    expect(auths.admit('a')).toEqual({ admitted: false, retryInMs: 1000 }); // never less than 1 s
    expect(first.settle('invalid')).toBe(2000);
    expect(first.settle('invalid')).toBe(0); // settling twice counts once
    expect(auths.failures('a')).toBe(4);
    // Free again as soon as the check is done, whatever its answer waits: a valid key is not kept out.
    const next = admitted(auths.admit('a'));
    expect(auths.admit('a')).toEqual({ admitted: false, retryInMs: 2000 });
    expect(next.settle('valid')).toBe(0);
    expect(admitted(auths.admit('a')).settle('error')).toBe(0);
    expect(auths.admit('a').admitted).toBe(true);
  });

  it('forgets failures older than the window and bounds the addresses it tracks', () => {
    let now = 0;
    const auths = new FailedAuths({ allowed: 1, windowMs: 1000, maxBlockMs: 60_000, clock: { now: () => now }, maxAddresses: 2 });
    expect([attempt(auths, 'a', 'invalid'), attempt(auths, 'a', 'invalid')]).toEqual([0, 1000]);
    now += 2000;
    expect(attempt(auths, 'a', 'invalid')).toBe(0); // a new window: the first failure again
    attempt(auths, 'b', 'invalid');
    attempt(auths, 'c', 'invalid'); // evicts the oldest address
    expect(auths.failures('a')).toBe(0);
    expect(attempt(auths, 'a', 'invalid')).toBe(0);
  });
});

describe('verifyLimited', () => {
  const options = { allowed: 1, windowMs: 60_000, maxBlockMs: 60_000 };

  it('holds back only the answers of wrong keys past the allowance, and checks every key', async () => {
    const auths = new FailedAuths({ ...options, clock: { now: () => 0 } });
    const slept: number[] = [];
    const sleep = async (ms: number): Promise<void> => void slept.push(ms);
    const checked: string[] = [];
    const verify = (key: string) => async () => (checked.push(key), key === 'good' ? { user: 'u' } : null);
    expect(await verifyLimited(auths, 'a', verify('bad1'), sleep)).toEqual({ identity: null });
    expect(await verifyLimited(auths, 'a', verify('bad2'), sleep)).toEqual({ identity: null });
    expect(await verifyLimited(auths, 'a', verify('good'), sleep)).toEqual({ identity: { user: 'u' } });
    expect(await verifyLimited(auths, 'a', verify('bad3'), sleep)).toEqual({ identity: null });
    expect(checked).toEqual(['bad1', 'bad2', 'good', 'bad3']);
    expect(slept).toEqual([1000, 2000]);
    expect(await verifyLimited(undefined, 'a', verify('bad4'), sleep)).toEqual({ identity: null });
  });

  it('refuses a second key while one is being checked for an address past its allowance', async () => {
    const auths = new FailedAuths({ ...options, clock: { now: () => 0 } });
    const sleep = async (): Promise<void> => undefined;
    await verifyLimited(auths, 'a', async () => null, sleep);
    let finish: (identity: { user: string } | null) => void = () => undefined;
    const slow = verifyLimited(auths, 'a', () => new Promise<{ user: string } | null>((resolve) => (finish = resolve)), sleep);
    let calls = 0;
    expect(await verifyLimited(auths, 'a', async () => (calls++, null), sleep)).toEqual({ refusedForMs: 1000 });
    expect(calls).toBe(0); // refused unchecked: no Argon2 run for it
    finish({ user: 'u' });
    expect(await slow).toEqual({ identity: { user: 'u' } });
    expect(await verifyLimited(auths, 'a', async () => ({ user: 'v' }), sleep)).toEqual({ identity: { user: 'v' } });
  });

  it('frees the address when the check throws, without counting a failure', async () => {
    const auths = new FailedAuths({ ...options, clock: { now: () => 0 } });
    await verifyLimited(auths, 'a', async () => null);
    await expect(verifyLimited(auths, 'a', async () => Promise.reject(new Error('store down')))).rejects.toThrow('store down');
    expect(auths.failures('a')).toBe(1);
    expect(auths.admit('a').admitted).toBe(true);
  });
});

describe('failedAuthsFor', () => {
  it('allows `allowed` failures per address in a one-minute window, holding back at most a minute', () => {
    let now = 0;
    const auths = failedAuthsFor(2, { now: () => now });
    expect([attempt(auths, 'a', 'invalid'), attempt(auths, 'a', 'invalid'), attempt(auths, 'a', 'invalid')]).toEqual([0, 0, 1000]);
    for (let i = 0; i < 10; i++) attempt(auths, 'a', 'invalid');
    expect(attempt(auths, 'a', 'invalid')).toBe(60_000);
    now += 60_001;
    expect(auths.failures('a')).toBe(0);
  });

  it('asks the shared counts when given them, not its own', async () => {
    const asked: string[] = [];
    const shared = { admit: async (address: string): Promise<SharedAdmission> => (asked.push(address), { admitted: false, retryInMs: 5000 }) };
    const auths = failedAuthsFor(1, { now: () => 0 }, shared);
    expect(await verifyLimited(auths, 'a', async () => ({ user: 'u' }))).toEqual({ refusedForMs: 5000 });
    expect(asked).toEqual(['a']);
    expect(auths.failures('a')).toBe(0);
  });
});
