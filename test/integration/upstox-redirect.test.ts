/**
 * Upstox's feed URL answers the upgrade with a 302 to a single-use URL (`…/feeds?requestId=…&code=…`),
 * as the fake does by default: the adapter follows it, redeems a fresh code on every connect,
 * treats a refusal at either hop as a refusal, ends a loop or a bad target as an ordinary failed
 * attempt, and never shows a code in a status message or a log line. Waits time out only to
 * catch hangs.
 */
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import type { BrokerFeedOptions } from '../../src/adapters/broker.js';
import type { SessionOptions } from '../../src/adapters/session/broker-feed.js';
import { UPSTOX_MAX_REDIRECTS, UpstoxAdapter, type UpstoxAdapterOptions } from '../../src/adapters/upstox/upstox-adapter.js';
import { systemClock } from '../../src/clock.js';
import type { FeedStatusEvent } from '../../src/feed.js';
import { createLogger } from '../../src/observability/logger.js';
import { formatTopic } from '../../src/protocol/topics.js';
import { FakeUpstox, UPSTOX_FEEDS_PATH, UPSTOX_PATH, ltpcFrame } from '../helpers/fake-upstox.js';
import { MemoryPublisher, until } from '../helpers/broker-kit.js';

const FEED = 'upstox.alice';
const TOKEN = 'upstox-token';
const RELIANCE = { exchange: 'NSE', symbol: 'RELIANCE' };
const RELIANCE_KEY = 'NSE_EQ|INE002A01018';
const LTP_TOPIC = formatTopic(FEED, 'NSE', 'RELIANCE', 1);

const escape = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

describe('Upstox: following the feed URL’s redirect', () => {
  const running: Array<{ adapter: UpstoxAdapter; fake: FakeUpstox }> = [];
  afterEach(async () => {
    for (const { adapter, fake } of running.splice(0)) {
      await adapter.stop();
      await fake.close();
    }
  });

  async function setup(options: Partial<UpstoxAdapterOptions> = {}, token = TOKEN, prepare: (fake: FakeUpstox) => void = () => {}) {
    const fake = await FakeUpstox.start({ accessToken: TOKEN, pingMs: 50 });
    prepare(fake);
    const publisher = new MemoryPublisher();
    const statuses: FeedStatusEvent[] = [];
    const logLines: string[] = [];
    const adapter = new UpstoxAdapter({
      feed: FEED,
      user: 'alice',
      url: fake.url,
      symbols: { lookup: (broker, exchange, symbol) => (broker === 'upstox' && exchange === 'NSE' && symbol === 'RELIANCE' ? { token: RELIANCE_KEY, brexchange: 'NSE' } : undefined) },
      credentials: { load: async () => ({ apiKey: 'upstox-app-key', accessToken: token }) },
      publisher,
      clock: systemClock,
      logger: createLogger('debug', { write: (line: string) => void logLines.push(line) }),
      silenceMs: 2000,
      backoff: { initialMs: 50, maxMs: 200, jitter: 0 },
      authRetryMs: 60_000,
      batchDelayMs: 20,
      ...options,
    } satisfies BrokerFeedOptions & SessionOptions);
    adapter.onStatus((event) => statuses.push(event));
    running.push({ adapter, fake });
    await adapter.start();
    /** Every message a client or an operator could have seen: no issued code, no query of the single-use URL. */
    const expectNoCode = () => {
      const seen = [...statuses.map((e) => e.message ?? ''), adapter.statusMessage() ?? '', ...logLines];
      expect(fake.codes.length).toBeGreaterThan(0);
      for (const text of seen) {
        for (const code of fake.codes) expect(text).not.toContain(code);
        expect(text).not.toMatch(/requestId|code=/);
      }
    };
    return { fake, publisher, adapter, statuses, logLines, expectNoCode };
  }

  const live = (adapter: UpstoxAdapter) => until(() => adapter.status() === 'live', 'live');

  it('opens the feed URL with the bearer header, follows the 302 to the single-use URL and streams ticks through it', async () => {
    const { fake, adapter, publisher, expectNoCode } = await setup();
    await live(adapter);
    expect(fake.attempts).toEqual([{ token: TOKEN, authorization: `Bearer ${TOKEN}`, path: UPSTOX_PATH, accepted: true }]);
    expect(fake.codes).toHaveLength(1);
    expect(fake.redeemed.map(({ code, accepted }) => ({ code, accepted }))).toEqual([{ code: fake.codes[0], accepted: true }]);
    expect(fake.connections).toBe(1);

    await adapter.subscribe(RELIANCE, 1, 5);
    await until(() => fake.held(1).get(RELIANCE_KEY) === 'ltpc', 'subscribed through the redirected socket');
    fake.push(ltpcFrame(RELIANCE_KEY, 2950.55));
    await until(() => publisher.on(LTP_TOPIC).length === 1, 'the tick');
    expect(publisher.on(LTP_TOPIC)[0]).toMatchObject({ symbol: 'RELIANCE', ltp: 2950.55 });
    expectNoCode();
  });

  it('a reconnect after a drop redirects again and redeems a fresh code (the fake refuses a used one)', async () => {
    const { fake, adapter, publisher, expectNoCode } = await setup();
    await live(adapter);
    await adapter.subscribe(RELIANCE, 1, 5);
    await until(() => fake.held(1).size === 1, 'subscribed');

    fake.drop();
    await until(() => fake.connections === 2 && adapter.status() === 'live', 'reconnected');
    await until(() => fake.held(2).get(RELIANCE_KEY) === 'ltpc', 'resubscribed');
    expect(fake.codes).toHaveLength(2);
    expect(new Set(fake.codes).size).toBe(2);
    expect(fake.redeemed.map(({ code, accepted }) => ({ code, accepted }))).toEqual([
      { code: fake.codes[0], accepted: true },
      { code: fake.codes[1], accepted: true },
    ]);
    fake.push(ltpcFrame(RELIANCE_KEY, 2951));
    await until(() => publisher.on(LTP_TOPIC).length === 1, 'a tick on the new socket');

    // The first code again: refused, so the adapter could not have reconnected by reusing it.
    const port = new URL(fake.url).port;
    const reused = new WebSocket(`ws://127.0.0.1:${port}${UPSTOX_FEEDS_PATH}?requestId=x&code=${fake.codes[0]}`);
    reused.on('error', () => {});
    const status = await new Promise<number | undefined>((resolve) => {
      reused.on('unexpected-response', (_req, res) => {
        resolve(res.statusCode);
        res.resume();
        reused.terminate();
      });
      reused.on('open', () => resolve(undefined));
    });
    expect(status).toBe(403);
    expect(fake.redeemed.at(-1)).toMatchObject({ code: fake.codes[0], accepted: false });
    expectNoCode();
  });

  it('a bad token refused at the first hop is a refusal: down with Upstox’s message, retried on the slow schedule', async () => {
    const { fake, adapter, statuses } = await setup({ authRetryMs: 100 }, 'stale-token');
    await until(() => fake.attempts.length >= 3, 'three slow retries');
    expect(adapter.status()).toBe('down');
    expect(adapter.statusMessage()).toMatch(/^Upstox refused the access token \(HTTP 401\): log in to Upstox again/);
    expect(fake.attempts.every((a) => a.token === 'stale-token' && !a.accepted)).toBe(true);
    expect(fake.codes).toEqual([]);
    // Down and staying down: no flapping through 'reconnecting' on every slow retry.
    expect(statuses.map((e) => e.status)).toEqual(['reconnecting', 'down']);

    fake.accessToken = 'stale-token'; // the next slow retry is let in
    await live(adapter);
    expect(fake.redeemed.at(-1)).toMatchObject({ accepted: true });
  });

  it('a refusal at the redirected hop is a refusal too', async () => {
    const { fake, adapter, expectNoCode } = await setup({}, TOKEN, (f) => {
      f.redirectTo = (codeUrl) => codeUrl.replace(/code=[^&]+/, 'code=forged');
    });
    await until(() => adapter.status() === 'down', 'down');
    expect(adapter.statusMessage()).toMatch(/^Upstox refused the access token \(HTTP 403\)/);
    expect(fake.attempts).toHaveLength(1);
    expect(fake.redeemed).toEqual([expect.objectContaining({ code: 'forged', accepted: false })]);
    expectNoCode();
  });

  it('a redirect loop ends as a failed attempt with a clear message, and the adapter keeps retrying', async () => {
    const { fake, adapter, statuses, expectNoCode } = await setup({}, TOKEN, (f) => {
      f.loop = true;
    });
    // feed → code → feed → code → … : each attempt gives up after UPSTOX_MAX_REDIRECTS redirects.
    await until(() => fake.redeemed.length >= 3 * Math.ceil(UPSTOX_MAX_REDIRECTS / 2), 'three attempts');
    expect(adapter.status()).toBe('reconnecting');
    expect(adapter.statusMessage()).toMatch(
      new RegExp(`^Upstox redirected the upgrade more than ${UPSTOX_MAX_REDIRECTS} times \\(last to ${escape(`ws://127.0.0.1:${new URL(fake.url).port}${UPSTOX_FEEDS_PATH}`)}\\); reconnecting in `),
    );
    expect(fake.connections).toBe(0);
    expect(statuses.every((e) => e.status === 'reconnecting')).toBe(true);

    fake.loop = false;
    await live(adapter);
    expect(fake.connections).toBe(1);
    expectNoCode();
  });

  it('a redirect to a URL that is not ws: or wss: is a failed attempt, retried', async () => {
    const { fake, adapter, expectNoCode } = await setup({}, TOKEN, (f) => {
      f.redirectTo = (codeUrl) => codeUrl.replace(/^ws:/, 'ftp:');
    });
    await until(() => fake.attempts.length >= 3, 'three attempts');
    expect(adapter.status()).toBe('reconnecting');
    expect(adapter.statusMessage()).toMatch(
      new RegExp(`^Upstox redirected the upgrade to ${escape(`ftp://127.0.0.1:${new URL(fake.url).port}${UPSTOX_FEEDS_PATH}`)}, not a ws: or wss: URL`),
    );
    expect(fake.redeemed).toEqual([]);

    fake.redirectTo = undefined;
    await live(adapter);
    expectNoCode();
  });

  it('the direct switch opens the feed at the first hop (no redirect), which the adapter takes as well', async () => {
    const fake = await FakeUpstox.start({ accessToken: TOKEN, redirect: false });
    const adapter = new UpstoxAdapter({
      feed: FEED, user: 'alice', url: fake.url, symbols: { lookup: () => undefined },
      credentials: { load: async () => ({ apiKey: 'k', accessToken: TOKEN }) },
      publisher: new MemoryPublisher(), clock: systemClock, logger: createLogger('silent'),
    });
    running.push({ adapter, fake });
    await adapter.start();
    await live(adapter);
    expect(fake.codes).toEqual([]);
    expect(fake.connections).toBe(1);
  });
});
