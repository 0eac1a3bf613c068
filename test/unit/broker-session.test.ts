/** The broker session layer's pure parts: subscription diff, schedules, status, auth errors, log throttle. */
import { describe, expect, it } from 'vitest';
import type { FeedStatusEvent } from '../../src/feed.js';
import { authErrorPattern } from '../../src/adapters/session/auth-error.js';
import { FeedStatusBoard, LogThrottle, type SessionView, aggregateStatus } from '../../src/adapters/session/feed-status.js';
import { lossDelay, refusalDelay, resolveSchedule } from '../../src/adapters/session/schedule.js';
import { SubscriptionBook, chunks } from '../../src/adapters/session/subscriptions.js';
import { ErrorCode, TickcastError } from '../../src/errors.js';
import { silentLogger } from '../../src/observability/logger.js';

describe('SubscriptionBook', () => {
  it('has nothing to send until something is wanted', () => {
    const book = new SubscriptionBook<string, number>();
    expect(book.take()).toBeUndefined();
    book.want('a', undefined);
    expect(book.take()).toBeUndefined();
  });

  it('sends new entries once, then only what changed, gone entries in the order told', () => {
    const book = new SubscriptionBook<string, number>();
    book.want('a', 1);
    book.want('b', 2);
    book.want('c', 1);
    expect(book.take()).toEqual({
      stale: [],
      fresh: [
        { key: 'a', value: 1, before: undefined },
        { key: 'b', value: 2, before: undefined },
        { key: 'c', value: 1, before: undefined },
      ],
    });
    expect(book.take()).toBeUndefined();
    book.want('c', undefined);
    book.want('a', 3);
    book.want('b', 2); // unchanged: nothing to send for it
    expect(book.take()).toEqual({
      stale: [
        { key: 'a', value: 1, changed: true },
        { key: 'c', value: 1, changed: false },
      ],
      fresh: [{ key: 'a', value: 3, before: 1 }],
    });
  });

  it('sends only the net result of changes made between takes', () => {
    const book = new SubscriptionBook<string, number>();
    book.want('a', 1);
    book.take();
    book.want('a', 2);
    book.want('a', 1);
    book.want('b', 1);
    book.want('b', undefined);
    expect(book.take()).toBeUndefined();
  });

  it('after forget() (a new socket) sends the whole wanted set again', () => {
    const book = new SubscriptionBook<string, number>();
    book.want('a', 1);
    book.want('b', 2);
    book.take();
    book.want('b', undefined);
    book.forget();
    expect(book.take()).toEqual({ stale: [], fresh: [{ key: 'a', value: 1, before: undefined }] });
    expect(book.size).toBe(1);
  });

  it('compares values with the given equality', () => {
    const book = new SubscriptionBook<string, { mode: number; note: string }>((x, y) => x.mode === y.mode);
    book.want('a', { mode: 1, note: 'first' });
    book.take();
    book.want('a', { mode: 1, note: 'second' });
    expect(book.take()).toBeUndefined();
  });
});

describe('chunks', () => {
  it('splits at the per-message limit, keeping order', () => {
    expect([...chunks([1, 2, 3, 4, 5], 2)]).toEqual([[1, 2], [3, 4], [5]]);
    expect([...chunks([], 200)]).toEqual([]);
  });
});

describe('reconnect schedules', () => {
  const fixed = (value: number) => () => value;

  it('backs off exponentially up to the cap, spread by the jitter', () => {
    const schedule = resolveSchedule('Test', { backoff: { initialMs: 100, maxMs: 1000, jitter: 0.2 }, random: fixed(0.5) });
    expect([0, 1, 2, 3, 4, 10].map((failures) => lossDelay(schedule, failures))).toEqual([100, 200, 400, 800, 1000, 1000]);
    const low = resolveSchedule('Test', { backoff: { initialMs: 100, maxMs: 1000, jitter: 0.2 }, random: fixed(0) });
    const high = resolveSchedule('Test', { backoff: { initialMs: 100, maxMs: 1000, jitter: 0.2 }, random: fixed(0.9999) });
    expect(lossDelay(low, 0)).toBe(80);
    expect(lossDelay(high, 0)).toBe(120);
    expect(lossDelay(high, 10)).toBe(1000); // never above the cap
  });

  it('retries a refusal on the slow period, with the same jitter', () => {
    expect(refusalDelay(resolveSchedule('Test', { authRetryMs: 60_000, random: fixed(0) }))).toBe(48_000);
    expect(refusalDelay(resolveSchedule('Test', { authRetryMs: 60_000, random: fixed(0.5) }))).toBe(60_000);
  });

  it('defaults to 1 s .. 60 s with ±20 %, and a 60 s refusal period', () => {
    expect(resolveSchedule('Test', {})).toMatchObject({ initialMs: 1000, maxMs: 60_000, jitter: 0.2, authRetryMs: 60_000 });
  });

  it('refuses bad settings with CONFIG_INVALID, naming the broker', () => {
    for (const options of [{ backoff: { jitter: 1 } }, { backoff: { initialMs: 0 } }, { authRetryMs: Number.NaN }]) {
      let error: unknown;
      try {
        resolveSchedule('Zerodha', options);
      } catch (err) {
        error = err;
      }
      expect(error).toBeInstanceOf(TickcastError);
      expect(error).toMatchObject({ code: ErrorCode.CONFIG_INVALID, message: expect.stringMatching(/^Zerodha adapter /) });
    }
  });
});

describe('feed status', () => {
  const view = (state: SessionView['state'], extra: Partial<SessionView> = {}): SessionView => ({
    state, message: undefined, everOpened: false, failures: 0, ...extra,
  });

  it('is down if any socket is refused, reconnecting while one is out, else live', () => {
    expect(aggregateStatus([view('open'), view('down', { message: 'refused' })], 'X')).toEqual({ status: 'down', message: 'refused' });
    expect(aggregateStatus([view('connecting')], 'X')).toEqual({ status: 'reconnecting', message: 'connecting to X' });
    expect(aggregateStatus([view('open'), view('retrying', { everOpened: true, message: 'lost' })], 'X')).toEqual({ status: 'reconnecting', message: 'lost' });
    expect(aggregateStatus([view('open'), view('open')], 'X')).toEqual({ status: 'live', message: undefined });
  });

  it('does not count a socket opened for capacity as an outage until it failed once', () => {
    expect(aggregateStatus([view('open'), view('connecting')], 'X').status).toBe('live');
    expect(aggregateStatus([view('open'), view('retrying', { failures: 1 })], 'X').status).toBe('reconnecting');
  });

  it('tells listeners of changes only, and a throwing listener stops no other', () => {
    const board = new FeedStatusBoard('kite.alice', silentLogger());
    const seen: FeedStatusEvent[] = [];
    board.listen(() => {
      throw new Error('listener bug');
    });
    board.listen((event) => seen.push(event));
    board.set('reconnecting', 'connecting');
    board.set('reconnecting', 'still connecting');
    board.set('live', undefined);
    expect(seen).toEqual([
      { feed: 'kite.alice', status: 'reconnecting', message: 'connecting' },
      { feed: 'kite.alice', status: 'live' },
    ]);
    expect(board.status).toBe('live');
    board.set('down', 'stopped');
    expect(board.message).toBe('stopped');
  });
});

describe('auth errors', () => {
  it('recognises OpenAlgo’s list for every broker and each broker’s own wording', () => {
    const common = authErrorPattern();
    for (const text of ['HTTP 403', 'Unauthorized', 'Token expired', 'Session expired', 'invalid credentials']) expect(common.test(text)).toBe(true);
    for (const text of ['Subscription Limit Exceeded', 'Invalid Request', 'error 4031']) expect(common.test(text)).toBe(false);
    expect(common.test('Invalid access token.')).toBe(false);
    expect(authErrorPattern(/access[ _]token/).test('Incorrect `api_key` or `access_token`.')).toBe(true);
  });
});

describe('LogThrottle', () => {
  it('logs once per interval with the count it skipped', () => {
    let now = 0;
    const lines: Array<Record<string, unknown>> = [];
    const logger = { warn: (fields: Record<string, unknown>) => lines.push(fields) } as unknown as Parameters<LogThrottle['log']>[0];
    const throttle = new LogThrottle(() => now, 1000);
    for (let i = 0; i < 5; i++) throttle.log(logger, 'warn', { i }, 'garbage');
    now = 1000;
    throttle.log(logger, 'warn', { i: 5 }, 'garbage');
    expect(lines).toEqual([{ i: 0, suppressed: 0 }, { i: 5, suppressed: 4 }]);
  });
});
