/** The instance's limits kept by the `--workers` primary, and the fan-out directory it binds in. */
import { existsSync, mkdirSync, mkdtempSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { PrimaryChannel } from '../../src/cluster/channel.js';
import { createFanoutDir, removeStaleFanoutDirs } from '../../src/cluster/fanout-dir.js';
import { InstanceLimits } from '../../src/cluster/instance-limits.js';
import { type WorkerMessage, isWorkerMessage } from '../../src/cluster/messages.js';
import { primaryConnectionLedger } from '../../src/cluster/worker-limits.js';

describe('InstanceLimits', () => {
  it("counts a key's connections across workers, gives back released ones and a dead worker's", () => {
    const limits = new InstanceLimits({ maxConnectionsPerKey: 2, clock: { now: () => 0 } });
    expect(limits.reserve(1, 1, 'u')).toEqual({ held: 0, counted: true });
    expect(limits.reserve(2, 1, 'u')).toEqual({ held: 1, counted: true });
    expect(limits.reserve(1, 2, 'u')).toEqual({ held: 2, counted: false });
    expect(limits.reserve(2, 2, 'u')).toEqual({ held: 2, counted: false });
    expect(limits.held('u')).toBe(2);
    expect(limits.reserve(1, 3, 'v')).toEqual({ held: 0, counted: true }); // per key
    limits.release(1, 1);
    expect(limits.reserve(2, 3, 'u')).toEqual({ held: 1, counted: true });
    limits.release(1, 1); // given back already: no change
    limits.release(1, 2); // never counted: no change
    expect(limits.held('u')).toBe(2);
    limits.dropWorker(2);
    expect(limits.held('u')).toBe(0);
    expect(limits.held('v')).toBe(1);
  });

  it('undoes a reservation it counted after its worker gave up waiting, and only that one', () => {
    const limits = new InstanceLimits({ maxConnectionsPerKey: 3, clock: { now: () => 0 } });
    expect(limits.reserve(1, 1, 'u').counted).toBe(true);
    // Counted late: the worker timed out on reservation 2 and released it.
    expect(limits.reserve(1, 2, 'u').counted).toBe(true);
    expect(limits.reserve(2, 2, 'u').counted).toBe(true); // another worker's id 2
    limits.release(1, 2);
    expect(limits.held('u')).toBe(2);
    limits.release(1, 2);
    expect(limits.held('u')).toBe(2);
    expect(limits.reserve(1, 1, 'u')).toEqual({ held: 2, counted: false }); // an id in use is never counted twice
    limits.release(1, 1);
    limits.release(2, 2);
    expect(limits.held('u')).toBe(0);
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

describe('primaryConnectionLedger', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  /** A worker's channel whose primary is `limits`, answering only when `deliver` is called. */
  function linked(limits: InstanceLimits, worker: number) {
    const queued: WorkerMessage[] = [];
    const channel = new PrimaryChannel({ send: (message) => void queued.push(message), timeoutMs: 10_000 });
    const deliver = (): void => {
      for (const message of queued.splice(0)) {
        expect(isWorkerMessage(message)).toBe(true);
        if (message.type === 'key_reserve') {
          const { held, counted } = limits.reserve(worker, message.reservation, message.user);
          channel.receive({ type: 'result', id: message.id, result: { ok: true, held, counted } });
        } else if (message.type === 'key_release') {
          limits.release(worker, message.reservation);
        }
      }
    };
    return { ledger: primaryConnectionLedger(channel), deliver };
  }

  it('refuses a reservation the primary does not answer in time, and gives back the count the primary makes late', async () => {
    vi.useFakeTimers();
    const limits = new InstanceLimits({ maxConnectionsPerKey: 2, clock: { now: () => 0 } });
    const { ledger, deliver } = linked(limits, 1);
    const late = ledger.reserve('u');
    await vi.advanceTimersByTimeAsync(10_000);
    await expect(late).resolves.toBe(Infinity);
    // The primary reaches the request only now: it counts it, then reads the release after it.
    deliver();
    expect(limits.held('u')).toBe(0);
  });

  it('gives back, on release, the reservations the primary counted, and none it refused', async () => {
    const limits = new InstanceLimits({ maxConnectionsPerKey: 1, clock: { now: () => 0 } });
    const { ledger, deliver } = linked(limits, 1);
    const answered = (reserving: Promise<number>): Promise<number> => (deliver(), reserving);
    await expect(answered(ledger.reserve('u'))).resolves.toBe(0);
    await expect(answered(ledger.reserve('u'))).resolves.toBe(1); // refused: not counted
    expect(limits.held('u')).toBe(1);
    ledger.release('u');
    deliver();
    expect(limits.held('u')).toBe(0);
    ledger.release('u'); // nothing counted left for u: nothing sent
    deliver();
    await expect(answered(ledger.reserve('u'))).resolves.toBe(0);
    expect(limits.held('u')).toBe(1);
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

  it('skips a symlink named like a stale directory, leaving it and what it points at', () => {
    const base = mkdtempSync(join(tmpdir(), 'fanout-test-'));
    try {
      const target = join(base, 'precious');
      mkdirSync(target);
      writeFileSync(join(target, 'keep'), 'x');
      const link = join(base, 'tickcast-fanout-2147483646-lnk');
      symlinkSync(target, link);
      expect(removeStaleFanoutDirs(base)).toEqual([]);
      expect([existsSync(link), existsSync(join(target, 'keep'))]).toEqual([true, true]);
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
