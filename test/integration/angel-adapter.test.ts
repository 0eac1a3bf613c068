import { afterEach, describe, it, expect } from 'vitest';
import type { FeedStatusEvent } from '../../src/feed.js';
import { AngelAdapter, type AngelAdapterOptions } from '../../src/adapters/angel/angel-adapter.js';
import type { BrokerCredentials, BrokerInstrument, SymbolLookup } from '../../src/adapters/broker.js';
import { systemClock } from '../../src/clock.js';
import { createLogger } from '../../src/observability/logger.js';
import { FakeAngel, encodeAngelPacket, loadAngelVectors, vectorFrame, type AngelRequest } from '../helpers/fake-angel.js';
import { MemoryPublisher } from '../helpers/broker-kit.js';

const vectors = loadAngelVectors();
const FEED = 'angel.alice';

const GOOD: BrokerCredentials = { apiKey: 'angel-api-key', accessToken: 'jwt-1', clientCode: 'A123456', feedToken: 'feed-1' };
const EXPECTED = { authorization: 'Bearer jwt-1', apiKey: 'angel-api-key', clientCode: 'A123456', feedToken: 'feed-1' };

const SYMBOLS: Record<string, BrokerInstrument> = {
  'NSE:RELIANCE': { token: '2885', brexchange: 'NSE' },
  'BSE:RELIANCE': { token: '500325', brexchange: 'BSE' },
  'NSE_INDEX:NIFTY': { token: '26000', brexchange: 'NSE_INDEX' },
  'NSE_INDEX:BANKNIFTY': { token: '26009', brexchange: 'NSE_INDEX' },
  'BSE_INDEX:SENSEX': { token: '99919000', brexchange: 'BSE_INDEX' },
  'NFO:NIFTY24JUNFUT': { token: '35001', brexchange: 'NFO' },
  'MCX:CRUDEOIL24JUNFUT': { token: '430106', brexchange: 'MCX' },
  'CDS:USDINR24JUNFUT': { token: '1167', brexchange: 'CDS' },
  // Same token as NSE RELIANCE on another exchange type: tokens are unique per type only.
  'BSE:TWIN': { token: '2885', brexchange: 'BSE' },
  'NSE:ODD': { token: '1', brexchange: 'XYZ' },
};

const symbols: SymbolLookup = {
  lookup: (broker, exchange, symbol) => (broker === 'angel' ? SYMBOLS[`${exchange}:${symbol}`] : undefined),
};

/** Requests without their correlation ids, which are ours to choose. */
function plain(requests: Array<AngelRequest & { connection?: number }>): Array<Omit<AngelRequest, 'correlationID'>> {
  return requests.map(({ correlationID: _id, connection: _c, ...rest }) => rest);
}

function sub(action: 0 | 1, mode: number, ...groups: Array<[number, ...string[]]>) {
  return { action, params: { mode, tokenList: groups.map(([exchangeType, ...tokens]) => ({ exchangeType, tokens })) } };
}

const running: Array<{ adapter: AngelAdapter; fake: FakeAngel }> = [];

afterEach(async () => {
  for (const { adapter, fake } of running.splice(0)) {
    await adapter.stop();
    await fake.close();
  }
});

/** `initial` null: the store has no credentials for the user. */
async function setup(overrides: Partial<AngelAdapterOptions> = {}, initial: BrokerCredentials | null = GOOD) {
  const fake = await FakeAngel.start(EXPECTED);
  const creds: { current: BrokerCredentials | undefined; loads: number; fail: boolean } = {
    current: initial ?? undefined,
    loads: 0,
    fail: false,
  };
  const publisher = new MemoryPublisher();
  const statuses: FeedStatusEvent[] = [];
  const logLines: string[] = [];
  const adapter = new AngelAdapter({
    feed: FEED,
    user: 'alice',
    url: fake.url,
    symbols,
    credentials: {
      load: async () => {
        creds.loads++;
        if (creds.fail) throw new Error('store unavailable');
        return creds.current;
      },
    },
    publisher,
    clock: systemClock,
    logger: createLogger('warn', { write: (line: string) => void logLines.push(line) }),
    pingMs: 100,
    silenceMs: 400,
    backoff: { initialMs: 50, maxMs: 200, jitter: 0.2 },
    authRetryMs: 300,
    batchDelayMs: 20,
    ...overrides,
  });
  adapter.onStatus((event) => statuses.push(event));
  running.push({ adapter, fake });
  /** Waits for `status` to be reported after the first `from` events. */
  const waitStatus = (status: string, from = 0) =>
    fake.waitFor(() => statuses.slice(from).some((e) => e.status === status), `status ${status}`).then(
      () => statuses.slice(from).find((e) => e.status === status)!,
    );
  const live = async () => {
    await adapter.start();
    await waitStatus('live');
  };
  return { fake, adapter, publisher, statuses, creds, logLines, waitStatus, live };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('AngelAdapter: session', () => {
  it('connects with the four SmartStream headers and goes live', async () => {
    const { fake, adapter, statuses, live } = await setup();
    await live();
    expect(fake.attempts).toHaveLength(1);
    expect(fake.attempts[0]).toMatchObject(EXPECTED);
    expect(statuses.map((e) => e.status)).toEqual(['reconnecting', 'live']);
    expect(adapter.status()).toBe('live');
    expect(adapter.stats().connects).toBe(1);
  });

  it('does not double a Bearer prefix the login already added', async () => {
    const { fake, live } = await setup({}, { ...GOOD, accessToken: 'Bearer jwt-1' });
    await live();
    expect(fake.attempts[0]!.authorization).toBe('Bearer jwt-1');
  });

  it('sends a text ping every pingMs; pongs keep a quiet feed alive', async () => {
    const { fake, adapter, live } = await setup();
    await live();
    await sleep(650); // longer than silenceMs: only the pongs keep it from redialling
    expect(fake.pings).toBeGreaterThanOrEqual(4);
    expect(adapter.stats().pongs).toBeGreaterThanOrEqual(3);
    expect(fake.connections).toBe(1);
    expect(adapter.status()).toBe('live');
  });

  // Stop, and a restart after it: the broker contract suite (broker-contract.test.ts).
});

describe('AngelAdapter: subscriptions', () => {
  it('coalesces subscriptions into one request per mode, grouped by exchange type', async () => {
    const { fake, adapter, live } = await setup();
    await live();
    const results = await Promise.all([
      adapter.subscribe({ exchange: 'NSE', symbol: 'RELIANCE' }, 1, 5),
      adapter.subscribe({ exchange: 'NSE_INDEX', symbol: 'NIFTY' }, 1, 5),
      adapter.subscribe({ exchange: 'MCX', symbol: 'CRUDEOIL24JUNFUT' }, 1, 5),
      adapter.subscribe({ exchange: 'BSE', symbol: 'RELIANCE' }, 2, 5),
      adapter.subscribe({ exchange: 'NFO', symbol: 'NIFTY24JUNFUT' }, 2, 5),
      adapter.subscribe({ exchange: 'CDS', symbol: 'USDINR24JUNFUT' }, 3, 20),
    ]);
    expect(results.map((r) => r.ok)).toEqual([true, true, true, true, true, true]);
    expect(results[5]).toEqual({ ok: true, depth: 5 }); // Angel's book is five levels
    await fake.waitFor(() => fake.requests.length >= 3, 'three requests');
    await sleep(60);
    const sent = fake.requestsOn(1);
    expect(plain(sent)).toEqual([
      sub(1, 1, [1, '2885', '26000'], [5, '430106']),
      sub(1, 2, [2, '35001'], [3, '500325']),
      sub(1, 3, [13, '1167']),
    ]);
    // The LTP request is the one the official client sends (vector), ids aside.
    const { correlationID: _id, ...official } = vectors.find((v) => v.name === 'angel/request_subscribe_ltp')!.decoded;
    expect(plain(sent)[0]).toEqual(official);
    for (const request of sent) expect(request.correlationID).toMatch(/^[A-Za-z0-9]{1,10}$/);
    expect(new Set(sent.map((r) => r.correlationID)).size).toBe(3);
  });

  it('sends what was subscribed before the socket opened once it opens', async () => {
    const { fake, adapter, live } = await setup();
    await adapter.subscribe({ exchange: 'NSE', symbol: 'RELIANCE' }, 2, 5);
    await live();
    await fake.waitFor(() => fake.requests.length >= 1, 'request');
    expect(plain(fake.requestsOn(1))).toEqual([sub(1, 2, [1, '2885'])]);
  });

  it('changes mode by unsubscribing the old mode and subscribing the new one', async () => {
    const { fake, adapter, live } = await setup();
    await live();
    const reliance = { exchange: 'NSE', symbol: 'RELIANCE' };
    await adapter.subscribe(reliance, 1, 5);
    await fake.waitFor(() => fake.requests.length === 1, 'subscribe');
    await adapter.subscribe(reliance, 3, 5); // upgrade
    await fake.waitFor(() => fake.requests.length === 3, 'upgrade');
    await adapter.subscribe(reliance, 2, 5); // downgrade
    await fake.waitFor(() => fake.requests.length === 5, 'downgrade');
    await adapter.subscribe(reliance, 2, 5); // no change: nothing sent
    await sleep(80);
    expect(plain(fake.requests)).toEqual([
      sub(1, 1, [1, '2885']),
      sub(0, 1, [1, '2885']),
      sub(1, 3, [1, '2885']),
      sub(0, 3, [1, '2885']),
      sub(1, 2, [1, '2885']),
    ]);
  });

  it('a quick change within the batch window sends only the net result', async () => {
    const { fake, adapter, live } = await setup();
    await live();
    const nifty = { exchange: 'NSE_INDEX', symbol: 'NIFTY' };
    await adapter.subscribe(nifty, 1, 5);
    await adapter.subscribe(nifty, 3, 5);
    await adapter.subscribe({ exchange: 'NSE', symbol: 'RELIANCE' }, 1, 5);
    await adapter.unsubscribe({ exchange: 'NSE', symbol: 'RELIANCE' });
    await fake.waitFor(() => fake.requests.length >= 1, 'request');
    await sleep(60);
    expect(plain(fake.requests)).toEqual([sub(1, 3, [1, '26000'])]);
  });

  it('unsubscribes at the mode held and stops publishing', async () => {
    const { fake, adapter, publisher, live } = await setup();
    await live();
    await adapter.subscribe({ exchange: 'NSE_INDEX', symbol: 'NIFTY' }, 1, 5);
    await adapter.subscribe({ exchange: 'NSE', symbol: 'RELIANCE' }, 1, 5);
    await fake.waitFor(() => fake.requests.length === 1, 'subscribe');
    await adapter.unsubscribe({ exchange: 'NSE_INDEX', symbol: 'NIFTY' });
    await adapter.unsubscribe({ exchange: 'NSE', symbol: 'UNKNOWN' }); // ignored
    await fake.waitFor(() => fake.requests.length === 2, 'unsubscribe');
    // The request the official client sends (vector), ids aside.
    const { correlationID: _id, ...official } = vectors.find((v) => v.name === 'angel/request_unsubscribe')!.decoded;
    expect(plain(fake.requests)[1]).toEqual(official);

    fake.push(vectorFrame(vectors, 'angel/ltp_nse_cm_index_nifty50'));
    fake.push(vectorFrame(vectors, 'angel/ltp_nse_cm_reliance'));
    await fake.waitFor(() => publisher.messages.length === 1, 'reliance tick');
    await sleep(30);
    expect(publisher.messages.map((m) => m.topic)).toEqual([`${FEED}|NSE_RELIANCE_LTP`]);
    expect(adapter.stats().unrouted).toBe(1);
  });

  it('refuses unknown symbols and unsupported exchanges per symbol', async () => {
    const { fake, adapter, live } = await setup();
    await live();
    expect(await adapter.subscribe({ exchange: 'NSE', symbol: 'NOPE' }, 1, 5)).toEqual({
      ok: false,
      message: 'Token not found for NOPE on NSE',
    });
    expect(await adapter.subscribe({ exchange: 'NSE', symbol: 'ODD' }, 1, 5)).toEqual({
      ok: false,
      message: 'Exchange XYZ of ODD is not supported by the Angel feed',
    });
    await sleep(60);
    expect(fake.requests).toEqual([]);
  });
});

describe('AngelAdapter: ticks', () => {
  it('publishes vector frames on the right topics with OpenAlgo payloads', async () => {
    const { fake, adapter, publisher, live } = await setup();
    await live();
    const streams: Array<[string, string, 1 | 2 | 3]> = [
      ['NSE', 'RELIANCE', 3],
      ['BSE', 'RELIANCE', 1],
      ['NSE_INDEX', 'NIFTY', 1],
      ['NSE_INDEX', 'BANKNIFTY', 2],
      ['BSE_INDEX', 'SENSEX', 1],
      ['NFO', 'NIFTY24JUNFUT', 3],
      ['MCX', 'CRUDEOIL24JUNFUT', 1],
      ['CDS', 'USDINR24JUNFUT', 1],
    ];
    for (const [exchange, symbol, mode] of streams) await adapter.subscribe({ exchange, symbol }, mode, 5);
    await fake.waitFor(() => fake.requests.length === 3, 'subscriptions');

    const before = Date.now();
    const binary = vectors.filter((v) => v.frame === 'binary');
    for (const vector of binary) fake.push(vector.hex!);
    // Every packet but depth-20 (never subscribed) reaches exactly one stream.
    await fake.waitFor(() => adapter.stats().ticks === binary.length, 'all packets');
    const after = Date.now();
    expect(publisher.messages).toHaveLength(binary.length - 1);
    expect(adapter.stats()).toMatchObject({ unrouted: 1, invalid: 0 });

    // The topic mode is the packet's own: the LTP packet for a Depth stream goes to _LTP.
    const [ltp] = publisher.on(`${FEED}|NSE_RELIANCE_LTP`);
    expect(ltp).toEqual({ symbol: 'RELIANCE', exchange: 'NSE', mode: 1, ltp: 2950.55, ltt: 1718178369123, timestamp: ltp.timestamp });
    expect(ltp.timestamp).toBeGreaterThanOrEqual(before);
    expect(ltp.timestamp).toBeLessThanOrEqual(after);
    expect(publisher.on(`${FEED}|NSE_INDEX_NIFTY_LTP`)[0]).toMatchObject({ ltp: 23322.95 });
    expect(publisher.on(`${FEED}|BSE_INDEX_SENSEX_LTP`)[0]).toMatchObject({ exchange: 'BSE_INDEX', ltp: 76606.57 });
    expect(publisher.on(`${FEED}|BSE_RELIANCE_LTP`)[0]).toMatchObject({ ltp: 2950.9 });
    expect(publisher.on(`${FEED}|NFO_NIFTY24JUNFUT_LTP`)[0]).toMatchObject({ ltp: 23390 });
    expect(publisher.on(`${FEED}|MCX_CRUDEOIL24JUNFUT_LTP`)[0]).toMatchObject({ ltp: 6512 });
    expect(publisher.messages.find((m) => m.topic === `${FEED}|MCX_CRUDEOIL24JUNFUT_LTP`)!.payload).toContain('"ltp":6512.0,');
    expect(publisher.on(`${FEED}|CDS_USDINR24JUNFUT_LTP`)[0]).toMatchObject({ ltp: 83.4525 });

    expect(publisher.on(`${FEED}|NSE_RELIANCE_QUOTE`)[0]).toMatchObject({
      mode: 2, ltp: 2950.55, volume: 4817234, open: 2925, high: 2962.4, low: 2918.1, close: 2921.15,
      last_trade_quantity: 5, average_price: 2941.37, total_buy_quantity: 412345, total_sell_quantity: 598812,
      change: 29.4, change_percent: 1.01,
    });
    expect(publisher.on(`${FEED}|NSE_INDEX_BANKNIFTY_QUOTE`)[0]).toMatchObject({ ltp: 49895.75, volume: 0, close: 49705.85, change: 189.9 });

    // SnapQuote → DEPTH with the real OHLC (OpenAlgo sent zeros) and depth by position.
    const depth = publisher.on(`${FEED}|NSE_RELIANCE_DEPTH`)[0];
    expect(depth).toMatchObject({
      mode: 3, ltp: 2950.55, open: 2925, high: 2962.4, low: 2918.1, close: 2921.15,
      last_quantity: 5, oi: 0, upper_circuit: 3213.25, lower_circuit: 2629.05,
    });
    expect(depth.depth.buy[0]).toEqual({ price: 2950.5, quantity: 120, orders: 3 });
    expect(depth.depth.buy[4]).toEqual({ price: 2950.3, quantity: 2300, orders: 19 });
    expect(depth.depth.sell[0]).toEqual({ price: 2950.6, quantity: 64, orders: 1 });
    expect(publisher.on(`${FEED}|NFO_NIFTY24JUNFUT_DEPTH`)[0]).toMatchObject({ oi: 12845325, open: 23410 });
  });

  it('routes by exchange type and token together', async () => {
    const { fake, adapter, publisher, live } = await setup();
    await live();
    await adapter.subscribe({ exchange: 'NSE', symbol: 'RELIANCE' }, 1, 5);
    await adapter.subscribe({ exchange: 'BSE', symbol: 'TWIN' }, 1, 5);
    await fake.waitFor(() => fake.requests.length === 1, 'subscribe');
    expect(plain(fake.requests)).toEqual([sub(1, 1, [1, '2885'], [3, '2885'])]);
    fake.push(encodeAngelPacket({ mode: 1, exchangeType: 3, token: '2885', ltp: 12345, exchangeTimestamp: 1718178369000 }));
    await fake.waitFor(() => publisher.messages.length === 1, 'tick');
    await sleep(30);
    expect(publisher.messages.map((m) => m.topic)).toEqual([`${FEED}|BSE_TWIN_LTP`]);
    expect(publisher.on(`${FEED}|BSE_TWIN_LTP`)[0]).toMatchObject({ ltp: 123.45 });
  });

  it('counts garbage, logs it at a bounded rate, and keeps working', async () => {
    const { fake, adapter, publisher, logLines, live } = await setup();
    await live();
    await adapter.subscribe({ exchange: 'NSE', symbol: 'RELIANCE' }, 1, 5);
    await fake.waitFor(() => fake.requests.length === 1, 'subscribe');
    const good = vectorFrame(vectors, 'angel/ltp_nse_cm_reliance');
    const garbage = [
      Buffer.alloc(0),
      Buffer.from([1]),
      good.subarray(0, 50),
      Buffer.concat([good, Buffer.from([0])]),
      Buffer.from('ff'.repeat(51), 'hex'),
      Buffer.from([9, 1, 0x32]),
    ];
    for (let round = 0; round < 5; round++) for (const frame of garbage) fake.push(frame);
    fake.sendText('not json at all');
    fake.sendText('{"correlationID":"x","errorCode":"E1002","errorMessage":"Invalid Request. Subscription Limit Exceeded"}');
    fake.push(good);
    await fake.waitFor(() => publisher.messages.length === 1, 'good tick after garbage');
    expect(adapter.stats()).toMatchObject({ invalid: garbage.length * 5, texts: 2, ticks: 1, published: 1 });
    expect(adapter.status()).toBe('live');
    expect(fake.connections).toBe(1);
    const invalidLogs = logLines.filter((l) => l.includes('invalid Angel frames'));
    expect(invalidLogs).toHaveLength(1);
    expect(logLines.some((l) => l.includes('Angel sent a text message') && l.includes('not json at all'))).toBe(true);
  });
});

describe('AngelAdapter: reconnection', () => {
  it('reconnects after a drop with backoff, fresh credentials and the full subscription set', async () => {
    const { fake, adapter, statuses, creds, waitStatus, live } = await setup();
    await live();
    await adapter.subscribe({ exchange: 'NSE', symbol: 'RELIANCE' }, 1, 5);
    await adapter.subscribe({ exchange: 'NSE_INDEX', symbol: 'NIFTY' }, 1, 5);
    await adapter.subscribe({ exchange: 'MCX', symbol: 'CRUDEOIL24JUNFUT' }, 1, 5);
    await adapter.subscribe({ exchange: 'NSE_INDEX', symbol: 'BANKNIFTY' }, 2, 5);
    await adapter.subscribe({ exchange: 'CDS', symbol: 'USDINR24JUNFUT' }, 3, 5);
    await adapter.subscribe({ exchange: 'NFO', symbol: 'NIFTY24JUNFUT' }, 3, 5);
    await fake.waitFor(() => fake.requests.length === 3, 'subscriptions');
    // Unsubscribed streams stay gone after a reconnect (the official client re-sends them).
    await adapter.unsubscribe({ exchange: 'NSE_INDEX', symbol: 'NIFTY' });
    await fake.waitFor(() => fake.requests.length === 4, 'unsubscribe');

    // The user logs in again: a new feed token, which the server now insists on.
    creds.current = { ...GOOD, feedToken: 'feed-2' };
    fake.expect({ feedToken: 'feed-2' });
    const loadsBefore = creds.loads;
    const mark = statuses.length;
    const droppedAt = Date.now();
    fake.drop();
    const lost = await waitStatus('reconnecting', mark);
    expect(lost.message).toMatch(/Angel connection lost .*retrying in \d+ ms/);
    await waitStatus('live', mark);
    expect(Date.now() - droppedAt).toBeGreaterThanOrEqual(35); // initial backoff 50 ms ± 20 %
    expect(fake.connections).toBe(2);
    expect(creds.loads).toBe(loadsBefore + 1);
    expect(fake.attempts.at(-1)).toMatchObject({ ...EXPECTED, feedToken: 'feed-2' });

    await fake.waitFor(() => fake.requestsOn(2).length === 3, 'resubscription');
    expect(plain(fake.requestsOn(2))).toEqual([
      sub(1, 1, [1, '2885'], [5, '430106']),
      sub(1, 2, [1, '26009']),
      sub(1, 3, [2, '35001'], [13, '1167']),
    ]);

    // And ticks flow on the new connection.
    fake.push(vectorFrame(vectors, 'angel/ltp_nse_cm_reliance'));
    await fake.waitFor(() => adapter.stats().published === 1, 'tick after reconnect');
  });

  it('backs off exponentially up to the cap while the server refuses', async () => {
    const { fake, statuses, adapter } = await setup({ random: () => 0.5, backoff: { initialMs: 50, maxMs: 200, jitter: 0.2 } });
    fake.refuseWith = 503;
    await adapter.start();
    await fake.waitFor(() => fake.attempts.length >= 5, 'five attempts');
    const gaps = fake.attempts.slice(1, 5).map((a, i) => a.at - fake.attempts[i]!.at);
    // 50, 100, 200, 200 ms (no jitter with random 0.5), plus connection overhead: the lower
    // bounds show the growth, the last upper bound the cap; the others leave room for a busy CI.
    expect(gaps[0]).toBeGreaterThanOrEqual(45);
    expect(gaps[0]).toBeLessThan(150);
    expect(gaps[1]).toBeGreaterThanOrEqual(95);
    expect(gaps[2]).toBeGreaterThanOrEqual(195);
    expect(gaps[3]).toBeGreaterThanOrEqual(195);
    expect(gaps[3]).toBeLessThan(390);
    expect(statuses.map((e) => e.status)).toEqual(['reconnecting']);
    expect(adapter.status()).toBe('reconnecting');

    fake.refuseWith = undefined;
    await fake.waitFor(() => adapter.status() === 'live', 'live once the server accepts');
  });

  it('redials when the feed goes silent', async () => {
    const { fake, adapter, statuses, waitStatus, live } = await setup();
    await live();
    await adapter.subscribe({ exchange: 'NSE', symbol: 'RELIANCE' }, 2, 5);
    await fake.waitFor(() => fake.requests.length === 1, 'subscribe');
    const mark = statuses.length;
    const silentAt = Date.now();
    fake.silent = true;
    const lost = await waitStatus('reconnecting', mark);
    expect(Date.now() - silentAt).toBeGreaterThanOrEqual(300);
    expect(lost.message).toMatch(/no frame from Angel for \d+ ms/);
    fake.silent = false;
    await waitStatus('live', mark);
    expect(fake.connections).toBe(2);
    await fake.waitFor(() => fake.requestsOn(2).length === 1, 'resubscription');
    expect(plain(fake.requestsOn(2))).toEqual([sub(1, 2, [1, '2885'])]);
  });

  it('goes down with a clear message on HTTP 401, retries slowly, and recovers with good credentials', async () => {
    const { fake, adapter, creds, waitStatus } = await setup({ authRetryMs: 300 }, { ...GOOD, apiKey: 'api_key' });
    await adapter.start();
    const down = await waitStatus('down');
    expect(down.message).toMatch(/Angel refused the login for client A123456 \(HTTP 401\)/);
    expect(fake.attempts[0]).toMatchObject({ apiKey: 'api_key' });
    await sleep(200); // well past the reconnect backoff, short of the auth retry
    expect(fake.attempts).toHaveLength(1);
    creds.current = GOOD;
    await waitStatus('live');
    expect(fake.attempts).toHaveLength(2);
    expect(adapter.status()).toBe('live');
  });

  // A re-login after a refusal and while live: the broker contract suite (broker-contract.test.ts).

  it('goes down when there are no credentials', async () => {
    const { fake, adapter, creds, waitStatus } = await setup({}, null);
    await adapter.start();
    const down = await waitStatus('down');
    expect(down.message).toMatch(/No Angel credentials for user alice/);
    expect(fake.attempts).toHaveLength(0);
    creds.current = { ...GOOD, feedToken: undefined };
    adapter.credentialsChanged();
    await sleep(50);
    expect(adapter.status()).toBe('down');
    creds.current = GOOD;
    adapter.credentialsChanged();
    await waitStatus('live');
  });

  it('treats a credentials store failure as transient', async () => {
    const { adapter, creds, waitStatus, statuses } = await setup();
    creds.fail = true;
    await adapter.start();
    await waitUntil(() => creds.loads >= 2);
    expect(statuses.map((e) => e.status)).toEqual(['reconnecting']);
    creds.fail = false;
    await waitStatus('live');
  });

  it('goes down when the server answers with an auth error text', async () => {
    const { fake, adapter, waitStatus, live, statuses } = await setup({ authRetryMs: 60_000 });
    await live();
    const mark = statuses.length;
    fake.sendText('{"errorCode":"401","errorMessage":"Unauthorized: invalid feed token"}');
    const down = await waitStatus('down', mark);
    expect(down.message).toMatch(/Angel refused the session: .*invalid feed token/);
    await fake.waitFor(() => fake.open === 0, 'socket closed');
    expect(adapter.status()).toBe('down');
  });
});

async function waitUntil(predicate: () => boolean): Promise<void> {
  const deadline = Date.now() + 5000;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error('timed out');
    await sleep(5);
  }
}
