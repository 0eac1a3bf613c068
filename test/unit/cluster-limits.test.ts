/** The instance's limits kept by the `--workers` primary, and the fan-out directory it binds in. */
import { existsSync, mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createFanoutDir } from '../../src/cluster/fanout-dir.js';
import { InstanceLimits } from '../../src/cluster/instance-limits.js';

describe('InstanceLimits', () => {
  it("counts a key's connections across workers, gives back released ones and a dead worker's", () => {
    const limits = new InstanceLimits({ maxConnectionsPerKey: 2, clock: { now: () => 0 } });
    expect(limits.reserve(1, 'u')).toBe(0);
    expect(limits.reserve(2, 'u')).toBe(1);
    expect(limits.reserve(1, 'u')).toBe(2); // refused, and not counted
    expect(limits.reserve(2, 'u')).toBe(2);
    expect(limits.held('u')).toBe(2);
    expect(limits.reserve(1, 'v')).toBe(0); // per key
    limits.release(1, 'u');
    expect(limits.reserve(2, 'u')).toBe(1);
    limits.release(1, 'u'); // nothing of u left on worker 1: no change
    expect(limits.held('u')).toBe(2);
    limits.dropWorker(2);
    expect(limits.held('u')).toBe(0);
    expect(limits.held('v')).toBe(1);
  });

  it("counts wrong keys of an address from every worker, one check at a time past the allowance; a dead worker's check is settled", () => {
    const limits = new InstanceLimits({ authFailures: 1, clock: { now: () => 0 } });
    const first = limits.admit(1, 'a');
    if (!first.admitted) throw new Error('refused');
    expect(limits.settle(1, first.ticket, 'invalid')).toBe(0);
    const second = limits.admit(2, 'a');
    if (!second.admitted) throw new Error('refused');
    expect(limits.admit(1, 'a')).toEqual({ admitted: false, retryInMs: 1000 });
    expect(limits.settle(1, second.ticket, 'invalid')).toBe(0); // another worker's ticket: ignored
    limits.dropWorker(2);
    const third = limits.admit(1, 'a');
    if (!third.admitted) throw new Error('refused');
    expect(limits.settle(1, third.ticket, 'invalid')).toBe(1000);
    expect(limits.admit(1, 'b').admitted).toBe(true);
  });

  it('admits every key when failed keys are not tracked', () => {
    const limits = new InstanceLimits({ clock: { now: () => 0 } });
    for (let i = 0; i < 10; i++) expect(limits.admit(1, 'a')).toEqual({ admitted: true, ticket: 0 });
    expect(limits.settle(1, 0, 'invalid')).toBe(0);
  });
});

describe('createFanoutDir', () => {
  it('makes a 0700 directory for the socket and removes those of primaries no longer running, only', () => {
    const base = mkdtempSync(join(tmpdir(), 'fanout-test-'));
    try {
      const stale = join(base, 'tickcast-fanout-2147483646-abc');
      const live = join(base, `tickcast-fanout-${process.pid}-def`);
      const other = join(base, 'something-else');
      for (const dir of [stale, live, other]) mkdirSync(dir);
      const { fanout, removedStale } = createFanoutDir(base, 4242);
      expect(removedStale).toEqual([stale]);
      expect([existsSync(stale), existsSync(live), existsSync(other)]).toEqual([false, true, true]);
      expect(fanout.dir.startsWith(join(base, 'tickcast-fanout-4242-'))).toBe(true);
      expect(statSync(fanout.dir).mode & 0o777).toBe(0o700);
      expect(fanout.endpoint).toBe(`ipc://${join(fanout.dir, 'fanout.sock')}`);
      fanout.remove();
      fanout.remove();
      expect(existsSync(fanout.dir)).toBe(false);
    } finally {
      rmSync(base, { recursive: true, force: true });
    }
  });

  it('refuses a temp dir too long for a socket path', () => {
    const base = mkdtempSync(join(tmpdir(), 'fanout-test-'));
    try {
      const long = join(base, 'x'.repeat(100));
      mkdirSync(long);
      expect(() => createFanoutDir(long)).toThrow(/longer than 107 bytes/);
    } finally {
      rmSync(base, { recursive: true, force: true });
    }
  });
});
