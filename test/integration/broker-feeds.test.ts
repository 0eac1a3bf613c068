/**
 * Broker feeds end to end: a gateway whose users have Zerodha and Angel credentials and an
 * imported symbol master, fake Kite and SmartStream servers sending the vectors' frames, and
 * clients receiving the right values — through drops and garbage, with the gateway up throughout.
 */
import { createReadStream, readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CredentialStore } from '../../src/auth/credentials.js';
import { ZmqPublisher } from '../../src/bus/zeromq.js';
import { openKeys } from '../../src/wiring.js';
import { importAngelJson } from '../../src/symbols/import-angel.js';
import { importZerodhaCsv } from '../../src/symbols/import-zerodha.js';
import { TestClient, sleep, waitFor, waitUntil } from '../helpers/client.js';
import { FakeAngel } from '../helpers/fake-angel.js';
import { FakeKite } from '../helpers/fake-kite.js';
import { type TestInstance, startTestInstance } from '../helpers/instance.js';

const vector = (broker: string, name: string): string =>
  (JSON.parse(readFileSync(new URL(`../fixtures/vectors/${broker}.json`, import.meta.url), 'utf8')) as Array<{ name: string; hex: string }>).find(
    (v) => v.name === name,
  )!.hex;

let kite: FakeKite;
let angel: FakeAngel;
let gw: TestInstance;
let keys: { kite: string; angel: string; sim: string };

beforeAll(async () => {
  kite = await FakeKite.start({ apiKey: 'kite-app-key', accessToken: 'kite-token-1' });
  angel = await FakeAngel.start({ authorization: 'Bearer angel-jwt', apiKey: 'angel-app-key', clientCode: 'A123', feedToken: 'feed-1' });
  gw = await startTestInstance({ TICKCAST_KITE_URL: kite.url, TICKCAST_ANGEL_URL: angel.url });
  keys = {
    kite: await gw.createKey('kiteuser', 'zerodha'),
    angel: await gw.createKey('angeluser', 'angel'),
    sim: await gw.createKey('simuser'),
  };
  // What `tickcast symbols import` and `tickcast credentials set` do, on the instance's database.
  const { db, fernetKey } = await openKeys(gw.config);
  await importZerodhaCsv(db, createReadStream(new URL('../fixtures/kite-instruments.csv', import.meta.url)));
  await importAngelJson(db, createReadStream(new URL('../fixtures/angel-scrip-master.json', import.meta.url)));
  const credentials = new CredentialStore({ db, fernetKey });
  credentials.set('kiteuser', 'zerodha', { apiKey: 'kite-app-key', accessToken: 'kite-token-1' });
  credentials.set('angeluser', 'angel', { apiKey: 'angel-app-key', accessToken: 'angel-jwt', feedToken: 'feed-1', clientCode: 'A123' });
  db.close();
});

afterAll(async () => {
  await gw.stop();
  await kite.close();
  await angel.close();
});

/** OpenAlgo's CACHE_INVALIDATE after a re-login of `user`, as topic and payload. */
const invalidation = (user: string): [string, string] => [
  `CACHE_INVALIDATE_AUTH_${user}`,
  JSON.stringify({ action: 'invalidate', user_id: user, cache_type: 'AUTH' }),
];

/**
 * ZeroMQ drops what is sent before the subscription reaches the publisher: another user's
 * invalidation, repeated until the gateway counts one, shows the bus is through.
 */
async function busThrough(publisher: ZmqPublisher): Promise<void> {
  const counters = gw.gateway.busListener.counters;
  const seen = counters.cacheInvalidations;
  await waitUntil(() => {
    publisher.publish(...invalidation('nobody'));
    return counters.cacheInvalidations > seen;
  }, 'the bus to carry an invalidation');
}

describe('Zerodha feed', () => {
  it('subscribes upstream with the token and delivers Kite ticks with OpenAlgo field names', async () => {
    const client = await TestClient.authenticated(gw.url, keys.kite);
    const reply = await client.request({ action: 'subscribe', symbols: [{ symbol: 'RELIANCE', exchange: 'NSE' }, { symbol: 'NOPE', exchange: 'NSE' }], mode: 1 });
    expect(reply.subscriptions.map((s: { status: string }) => s.status)).toEqual(['success', 'error']);
    expect(reply.subscriptions[1].message).toBe('Token not found for NOPE on NSE');
    await waitFor(() => kite.sent('subscribe').some((m) => (m.v as number[]).includes(738561)));

    const simClient = await TestClient.authenticated(gw.url, keys.sim);
    await simClient.request({ action: 'subscribe', symbols: [{ symbol: 'RELIANCE', exchange: 'NSE' }], mode: 1 });

    const arrived = client.next((m) => m.type === 'market_data' && m.data.ltp === 2950.55);
    const timer = setInterval(() => kite.sendHex(vector('zerodha', 'kite/nse_eq_ltp_reliance')), 50);
    const tick = await arrived.finally(() => clearInterval(timer));
    expect(tick).toMatchObject({ type: 'market_data', symbol: 'RELIANCE', exchange: 'NSE', mode: 1, broker: 'zerodha', data: { symbol: 'RELIANCE', exchange: 'NSE', mode: 'ltp', ltp: 2950.55 } });
    // The Kite user's ticks never reach a user on another feed.
    expect(simClient.messages.some((m) => m.type === 'market_data' && m.data.ltp === 2950.55)).toBe(false);
    // The figures anyone can read on the port count the user's feed without naming the user.
    const http = gw.url.replace('ws://', 'http://');
    const status = (await (await fetch(`${http}/api/status`)).json()) as Record<string, any>;
    expect(status.user_feeds).toEqual({ zerodha: { live: 1 } });
    expect(status.ticks_out_by_feed['zerodha.users']).toBeGreaterThan(0);
    const metrics = await (await fetch(`${http}/metrics`)).text();
    expect(metrics).toMatch(/^tickcast_user_feeds\{broker="zerodha",status="live"\} 1$/m);
    for (const text of [JSON.stringify(status), metrics]) expect(text).not.toContain('kiteuser');
    await simClient.close();
    await client.close();
  });

  it('reconnects after a drop, resubscribes, and keeps delivering; garbage changes nothing', async () => {
    const client = await TestClient.authenticated(gw.url, keys.kite);
    await client.request({ action: 'subscribe', symbols: [{ symbol: 'RELIANCE', exchange: 'NSE' }], mode: 3 });
    await waitFor(() => kite.openConnections().length > 0);
    const before = kite.connections;
    kite.drop();
    // The user hears about it instead of waiting in silence.
    expect(await client.next((m) => m.type === 'feed_status', 15_000)).toMatchObject({ feed: 'zerodha.kiteuser', broker: 'zerodha', status: 'reconnecting' });
    expect(await client.next((m) => m.type === 'feed_status', 15_000)).toMatchObject({ status: 'live' });
    await waitFor(() => kite.connections > before && kite.openConnections().length > 0, 15_000);
    await waitFor(() => kite.sent('mode').some((m) => m.connection > before && JSON.stringify(m.v).includes('full')), 15_000);
    kite.send(Buffer.from([0xde, 0xad, 0xbe, 0xef, 0x00]));
    const arrived = client.next((m) => m.type === 'market_data' && m.mode === 3 && Array.isArray(m.data.depth?.buy));
    const timer = setInterval(() => kite.sendHex(vector('zerodha', 'kite/nse_eq_full_reliance')), 50);
    const tick = await arrived.finally(() => clearInterval(timer));
    expect(tick.data.depth.buy).toHaveLength(5);
    expect(typeof tick.data.oi).toBe('number');
    expect(await client.request({ action: 'ping' })).toMatchObject({ type: 'pong' });
    await client.close();
  });

  it("reconnects at once with the new access token when OpenAlgo publishes the user's CACHE_INVALIDATE", async () => {
    const client = await TestClient.authenticated(gw.url, keys.kite);
    await client.request({ action: 'subscribe', symbols: [{ symbol: 'RELIANCE', exchange: 'NSE' }], mode: 1 });
    await waitFor(() => kite.openConnections().length > 0 && kite.sent('mode').some((m) => m.connection === kite.connections));
    const before = kite.connections;

    // The re-login as OpenAlgo does it: the new token in the auth table, then the invalidation on
    // the bus. Kite takes only the new token from now on; the open socket is not dropped, so only
    // the invalidation can bring the feed onto the new token (a retry would be a minute away).
    const { db, fernetKey } = await openKeys(gw.config);
    new CredentialStore({ db, fernetKey }).set('kiteuser', 'zerodha', { apiKey: 'kite-app-key', accessToken: 'kite-token-2' });
    db.close();
    kite.accessToken = 'kite-token-2';
    const publisher = new ZmqPublisher({ endpoint: gw.busEndpoint });
    try {
      await busThrough(publisher);
      publisher.publish(...invalidation('kiteuser'));
      await waitUntil(
        () => kite.upgrades.some((u) => u.accessToken === 'kite-token-2' && u.accepted) && kite.openConnections().some((c) => c > before),
        'a connection with the new token',
        15_000,
      );
    } finally {
      await publisher.close();
    }
    await waitUntil(() => kite.openConnections().every((c) => c > before), 'the old connection to close', 15_000);
    expect(kite.upgrades.filter((u) => u.accepted).at(-1)).toMatchObject({ accessToken: 'kite-token-2' });
    // The user's subscription came along, and ticks flow on the new connection.
    await waitUntil(() => kite.held(kite.connections).get(738561) === 'ltp', 'the resubscription', 15_000);
    const arrived = client.next((m) => m.type === 'market_data' && m.data.ltp === 2950.55);
    const timer = setInterval(() => kite.sendHex(vector('zerodha', 'kite/nse_eq_ltp_reliance'), kite.connections), 50);
    await arrived.finally(() => clearInterval(timer));
    await client.close();
  });

  it("a flood of the user's CACHE_INVALIDATE from any publisher logs in again at most twice, not once per message", async () => {
    const client = await TestClient.authenticated(gw.url, keys.kite);
    await client.request({ action: 'subscribe', symbols: [{ symbol: 'RELIANCE', exchange: 'NSE' }], mode: 1 });
    await waitFor(() => kite.openConnections().length > 0);
    const publisher = new ZmqPublisher({ endpoint: gw.busEndpoint });
    try {
      await busThrough(publisher);
      const counters = gw.gateway.busListener.counters;
      const before = kite.upgrades.length;
      const heard = counters.cacheInvalidations;
      for (let i = 0; i < 50; i++) {
        publisher.publish(...invalidation('kiteuser'));
      }
      await waitUntil(() => counters.cacheInvalidations >= heard + 50, 'the 50 invalidations to arrive');
      // Past the 2 s window: the one at once, and at most one for all the rest.
      await sleep(2500);
      expect(kite.upgrades.length - before).toBeGreaterThanOrEqual(1);
      expect(kite.upgrades.length - before).toBeLessThanOrEqual(2);
    } finally {
      await publisher.close();
    }
    await client.close();
  });
});

describe('Angel feed', () => {
  it('authenticates with the four headers and delivers SnapQuote depth with real OHLC', async () => {
    const client = await TestClient.authenticated(gw.url, keys.angel);
    expect((await client.request({ action: 'subscribe', symbols: [{ symbol: 'RELIANCE', exchange: 'NSE' }], mode: 3 })).status).toBe('success');
    await waitFor(() => angel.requests.some((r) => r.action === 1 && r.params.mode === 3));
    expect(angel.attempts.at(-1)).toMatchObject({ authorization: 'Bearer angel-jwt', apiKey: 'angel-app-key', clientCode: 'A123', feedToken: 'feed-1' });
    const arrived = client.next((m) => m.type === 'market_data' && m.mode === 3);
    const timer = setInterval(() => angel.push(Buffer.from(vector('angel', 'angel/snapquote_nse_cm_reliance'), 'hex')), 50);
    const tick = await arrived.finally(() => clearInterval(timer));
    expect(tick).toMatchObject({ symbol: 'RELIANCE', exchange: 'NSE', broker: 'angel' });
    expect(tick.data.open).toBeGreaterThan(0); // OpenAlgo's Angel adapter always sent 0 here
    expect(tick.data.depth.buy[0].price).toBeGreaterThan(0);
    await client.close();
  });

  it('re-reads credentials before reconnecting (a re-login takes effect)', async () => {
    const { db, fernetKey } = await openKeys(gw.config);
    new CredentialStore({ db, fernetKey }).set('angeluser', 'angel', { apiKey: 'angel-app-key', accessToken: 'angel-jwt', feedToken: 'feed-2', clientCode: 'A123' });
    db.close();
    angel.expect({ feedToken: 'feed-2' });
    const client = await TestClient.authenticated(gw.url, keys.angel);
    await client.request({ action: 'subscribe', symbols: [{ symbol: 'RELIANCE', exchange: 'NSE' }], mode: 1 });
    angel.drop();
    await waitFor(() => angel.attempts.some((a) => a.feedToken === 'feed-2') && angel.open > 0, 15_000);
    await sleep(100);
    expect(await client.request({ action: 'ping' })).toMatchObject({ type: 'pong' });
    await client.close();
  });
});
