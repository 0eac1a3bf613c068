/**
 * No price without its feed, and nothing stale shown as live: the simulator serves only
 * simulated brokers, a user whose broker has no feed is told so and never gets ticks, a client
 * joining a feed that is not live hears its status at once, and snapshots come only from the
 * feed's live session and only while young.
 */
import { createReadStream } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { CredentialStore } from '../../src/auth/credentials.js';
import { ZmqPublisher } from '../../src/bus/zeromq.js';
import { loadConfig } from '../../src/config/load.js';
import { openKeys } from '../../src/wiring.js';
import { importZerodhaCsv } from '../../src/symbols/import-zerodha.js';
import { killSpawnedProcesses, makeTempDir, removeDir, startAdapterCliProcess, startGatewayProcess } from '../helpers/cli.js';
import { TestClient, sleep, waitUntil } from '../helpers/client.js';
import { FakeKite, kiteFrame, kitePacket } from '../helpers/fake-kite.js';
import { type TestInstance, startTestInstance } from '../helpers/instance.js';

const RELIANCE = [{ exchange: 'NSE', symbol: 'RELIANCE' }];
const stops: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const stop of stops.splice(0).reverse()) await stop();
  await killSpawnedProcesses();
});

async function instance(env: Record<string, string> = {}): Promise<TestInstance> {
  const gw = await startTestInstance(env);
  stops.push(() => gw.stop());
  return gw;
}

/** Authenticates and returns the client with the feed_status that followed the auth reply, if any. */
async function join(url: string, apiKey: string): Promise<{ client: TestClient; status: Record<string, any> | undefined }> {
  const client = await TestClient.authenticated(url, apiKey);
  // The status, when there is one, is written right after the auth reply: a ping's pong follows it.
  await client.request({ action: 'ping' });
  const index = client.messages.findIndex((m) => m.type === 'feed_status');
  return { client, status: index >= 0 ? client.messages.splice(index, 1)[0] : undefined };
}

describe('no price without its feed', () => {
  it('the default gateway: a simulator user gets the simulator; a fyers user and a zerodha user without credentials are told what is missing and get nothing', async () => {
    const gw = await instance();
    const sim = await join(gw.url, await gw.createKey('simuser', 'simulator'));
    expect(sim.status).toBeUndefined(); // a live feed says nothing
    expect(await sim.client.request({ action: 'subscribe', symbols: RELIANCE, mode: 1 })).toMatchObject({ status: 'success' });
    expect(await sim.client.marketData('RELIANCE')).toMatchObject({ broker: 'simulator' });

    const fyers = await join(gw.url, await gw.createKey('fyersuser', 'fyers'));
    expect(fyers.status).toMatchObject({ type: 'feed_status', feed: 'none', broker: 'fyers', status: 'unavailable' });
    expect(fyers.status!.message).toContain('No market data feed for broker fyers');
    expect(fyers.status!.message).toContain('TICKCAST_BUS_BROKERS=fyers');
    const refused = await fyers.client.request({ action: 'subscribe', symbols: [...RELIANCE, { exchange: 'NSE', symbol: 'INFY' }], mode: 2 });
    expect(refused.status).toBe('partial'); // OpenAlgo's word when every symbol failed
    for (const item of refused.subscriptions) expect(item).toMatchObject({ status: 'error', message: fyers.status!.message });
    expect(await fyers.client.request({ action: 'get_broker_info' })).toMatchObject({ broker: 'fyers', adapter_status: 'unavailable' });

    const kite = await join(gw.url, await gw.createKey('kiteuser', 'zerodha'));
    expect(kite.status).toMatchObject({ feed: 'none', broker: 'zerodha', status: 'unavailable' });
    expect(kite.status!.message).toContain('tickcast credentials set --user kiteuser --broker zerodha');
    expect((await kite.client.request({ action: 'subscribe', symbols: RELIANCE, mode: 1 })).subscriptions[0].status).toBe('error');

    // Order updates still reach them: only market data needs a feed.
    expect(await kite.client.request({ action: 'subscribe_orders' })).toMatchObject({ status: 'success' });

    // While the simulator ticks away, neither of them ever receives a price.
    await sim.client.marketData('RELIANCE');
    await sim.client.marketData('RELIANCE');
    for (const { client } of [fyers, kite]) expect(client.messages.filter((m) => m.type === 'market_data')).toEqual([]);
    // Nor do bare-topic ticks of external publishers reach anyone but the shared feed's users.
    const publisher = new ZmqPublisher({ endpoint: gw.busEndpoint, batch: false });
    stops.push(() => publisher.close());
    for (let i = 0; i < 10; i++) {
      publisher.publish('NSE_RELIANCE_LTP', '{"ltp":9999.5}');
      await sleep(20);
    }
    await sim.client.marketData('RELIANCE');
    for (const { client } of [sim, fyers, kite]) expect(client.messages.some((m) => m.type === 'market_data' && m.data.ltp === 9999.5)).toBe(false);
    for (const { client } of [sim, fyers, kite]) await client.close();
  });

  it("--feed none is OpenAlgo's proxy: every broker's users are on the shared feed", async () => {
    const gw = await instance({ TICKCAST_FEED: 'none' });
    const fyers = await join(gw.url, await gw.createKey('fyersuser', 'fyers'));
    expect(fyers.status).toBeUndefined();
    expect(await fyers.client.request({ action: 'subscribe', symbols: RELIANCE, mode: 1 })).toMatchObject({ status: 'success' });
    const publisher = new ZmqPublisher({ endpoint: gw.busEndpoint, batch: false });
    stops.push(() => publisher.close());
    const arrived = fyers.client.next((m) => m.type === 'market_data', 10_000);
    const timer = setInterval(() => publisher.publish('NSE_RELIANCE_LTP', '{"ltp":1418.5}'), 50);
    expect(await arrived.finally(() => clearInterval(timer))).toMatchObject({ mode: 1, broker: 'fyers', data: { ltp: 1418.5 } });
    await fyers.client.close();
  });

  it('TICKCAST_BUS_BROKERS names the brokers the shared feed serves beside the simulator', async () => {
    const gw = await instance({ TICKCAST_BUS_BROKERS: 'fyers' });
    expect((await join(gw.url, await gw.createKey('f', 'fyers'))).status).toBeUndefined();
    expect((await join(gw.url, await gw.createKey('d', 'dhan'))).status).toMatchObject({ status: 'unavailable', broker: 'dhan' });
  });

  it('the simulator never serves a real broker: --sim-brokers zerodha and * are refused at start', () => {
    for (const value of ['zerodha', '*', 'simulator,fyers']) {
      const result = loadConfig({ cwd: '/', env: { TICKCAST_SIM_BROKERS: value } });
      expect(result.ok, value).toBe(false);
      if (!result.ok) expect(result.errors.join('\n')).toMatch(/TICKCAST_SIM_BROKERS/);
    }
    const zerodha = loadConfig({ cwd: '/', env: { TICKCAST_SIM_BROKERS: 'zerodha' } });
    if (!zerodha.ok) expect(zerodha.errors.join('\n')).toContain('zerodha is a real broker');
    const paper = loadConfig({ cwd: '/', env: { TICKCAST_SIM_BROKERS: 'simulator,paper' } });
    expect(paper.ok && paper.config.simulator.brokers).toEqual(['simulator', 'paper']);
  });

  it('a user with no feed is moved to an adapter serving their broker when it joins, and told', async () => {
    const dir = makeTempDir();
    stops.push(async () => removeDir(dir));
    const gw = await startGatewayProcess({ dataDir: dir, args: ['--feed', 'none', '--bus-brokers', 'none'] });
    const waiting = await join(gw.url, gw.devKey!);
    expect(waiting.status).toMatchObject({ feed: 'none', broker: 'simulator', status: 'unavailable' });
    expect(waiting.status!.message).toContain('the simulator is not running');
    const adapter = startAdapterCliProcess({ dataDir: dir });
    await adapter.ready;
    expect(await waiting.client.next((m) => m.type === 'feed_status', 15_000)).toMatchObject({ feed: 'simulator', status: 'live' });
    expect(await waiting.client.request({ action: 'subscribe', symbols: RELIANCE, mode: 1 })).toMatchObject({ status: 'success' });
    expect(await waiting.client.marketData('RELIANCE', 'NSE')).toMatchObject({ broker: 'simulator' });
    await waiting.client.close();
  });
});

describe('nothing stale shown as live', () => {
  it('a client joining a feed that is down hears it at once; snapshots only from its live session', async () => {
    const kite = await FakeKite.start({ apiKey: 'kite-app-key', accessToken: 'kite-token-1' });
    stops.push(() => kite.close());
    const gw = await instance({ TICKCAST_KITE_URL: kite.url });
    const apiKey = await gw.createKey('kiteuser', 'zerodha');
    const { db, fernetKey } = await openKeys(gw.config);
    await importZerodhaCsv(db, createReadStream(new URL('../fixtures/kite-instruments.csv', import.meta.url)));
    new CredentialStore({ db, fernetKey }).set('kiteuser', 'zerodha', { apiKey: 'kite-app-key', accessToken: 'kite-token-1' });
    db.close();
    const tick = (paise: number): void => kite.send(kiteFrame([kitePacket(8, { instrument_token: 738561, last_price: paise })]));

    const first = await join(gw.url, apiKey);
    expect(await first.client.request({ action: 'subscribe', symbols: RELIANCE, mode: 1 })).toMatchObject({ status: 'success' });
    await waitUntil(() => kite.openConnections().length > 0 && kite.sent('subscribe').length > 0, 'the feed subscribed upstream', 10_000);
    const arrived = first.client.next((m) => m.type === 'market_data', 10_000);
    const timer = setInterval(() => tick(295_055), 50);
    expect((await arrived.finally(() => clearInterval(timer))).data.ltp).toBe(2950.55);

    // While the feed is live and the value young, a new subscriber gets it as a snapshot.
    const young = await join(gw.url, apiKey);
    await young.client.request({ action: 'subscribe', symbols: RELIANCE, mode: 1 });
    expect((await young.client.marketData('RELIANCE')).data.ltp).toBe(2950.55);

    // The broker goes silent and drops: a client joining now is told the feed is not live.
    kite.goSilent();
    kite.drop();
    await first.client.next((m) => m.type === 'feed_status' && m.status === 'reconnecting', 15_000);
    kite.resume();
    const late = await join(gw.url, apiKey);
    if (late.status === undefined) {
      // It reconnected between the two: then it said "live" to the others.
      expect(first.client.messages.some((m) => m.type === 'feed_status' && m.status === 'live')).toBe(true);
    } else {
      expect(late.status).toMatchObject({ feed: 'zerodha.kiteuser', status: 'reconnecting' });
    }
    await first.client.next((m) => m.type === 'feed_status' && m.status === 'live', 15_000);

    // Live again, but the last value is from the session before the drop: no snapshot.
    expect(await late.client.request({ action: 'subscribe', symbols: RELIANCE, mode: 1 })).toMatchObject({ status: 'success' });
    await late.client.request({ action: 'ping' });
    expect(late.client.messages.filter((m) => m.type === 'market_data')).toEqual([]);
    // The next tick of the new session is delivered, and snapshots come from it.
    const next = late.client.next((m) => m.type === 'market_data', 10_000);
    const again = setInterval(() => tick(295_105), 50);
    expect((await next.finally(() => clearInterval(again))).data.ltp).toBe(2951.05);
    const fresh = await join(gw.url, apiKey);
    await fresh.client.request({ action: 'subscribe', symbols: RELIANCE, mode: 1 });
    expect((await fresh.client.marketData('RELIANCE')).data.ltp).toBe(2951.05);
    for (const { client } of [first, young, late, fresh]) await client.close();
  });

  it('a snapshot older than TICKCAST_SNAPSHOT_MAX_AGE_SECONDS is not sent', async () => {
    const gw = await instance({ TICKCAST_FEED: 'none', TICKCAST_SNAPSHOT_MAX_AGE_SECONDS: '0.5' });
    const apiKey = await gw.createKey('trader', 'fyers');
    const holder = await TestClient.authenticated(gw.url, apiKey);
    await holder.request({ action: 'subscribe', symbols: RELIANCE, mode: 1 });
    const publisher = new ZmqPublisher({ endpoint: gw.busEndpoint, batch: false });
    stops.push(() => publisher.close());
    const arrived = holder.next((m) => m.type === 'market_data', 10_000);
    const timer = setInterval(() => publisher.publish('NSE_RELIANCE_LTP', '{"ltp":1418.5}'), 50);
    await arrived.finally(() => clearInterval(timer));

    const soon = await TestClient.authenticated(gw.url, apiKey);
    await soon.request({ action: 'subscribe', symbols: RELIANCE, mode: 1 });
    expect((await soon.marketData('RELIANCE')).data.ltp).toBe(1418.5);
    await sleep(700);
    const later = await TestClient.authenticated(gw.url, apiKey);
    await later.request({ action: 'subscribe', symbols: RELIANCE, mode: 1 });
    await later.request({ action: 'ping' });
    expect(later.messages.filter((m) => m.type === 'market_data')).toEqual([]);
    for (const client of [holder, soon, later]) await client.close();
  });
});
