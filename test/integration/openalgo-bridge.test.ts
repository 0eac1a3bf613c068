/**
 * The OpenAlgo bridge, end to end: `tickcast start --openalgo-dir DIR` alone, with DIR an
 * OpenAlgo-shaped tree (helpers/openalgo-tree.ts: OpenAlgo's websocket_proxy interface with fake
 * broker adapters for dhan and fyers) run by Debian's /usr/bin/python3, and a native Kite user
 * beside them. Each user gets only their own adapter's ticks; subscribes reach the adapters
 * once, at the highest mode; and every fault of an adapter or of the bridge itself is told to the
 * feed's clients and costs no other user anything.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { type GatewayProcess, killSpawnedProcesses, makeTempDir, removeDir, runCli, startGatewayProcess } from '../helpers/cli.js';
import { type Message, TestClient, sleep, waitUntil } from '../helpers/client.js';
import { FakeKite, kiteFrame, kitePacket } from '../helpers/fake-kite.js';
import { FakeOpenAlgo, type OpenAlgoUser } from '../helpers/openalgo-tree.js';
import { ZmqPublisher } from '../../src/bus/zeromq.js';

const KITE = { apiKey: 'kite-app-key', accessToken: 'kite-token-1' };
const USERS: OpenAlgoUser[] = [
  { user: 'alice', broker: 'dhan', token: 'dhan-token-alice' },
  { user: 'bob', broker: 'fyers', token: 'fyers-token-bob' },
  { user: 'carol', broker: 'zerodha', token: `${KITE.apiKey}:${KITE.accessToken}` },
];
const RELIANCE = { symbol: 'RELIANCE', exchange: 'NSE' };

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  await killSpawnedProcesses();
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

interface Setup {
  dataDir: string;
  openalgo: FakeOpenAlgo;
  gw: GatewayProcess;
  kite: FakeKite;
}

async function setup(args: readonly string[] = [], users: readonly OpenAlgoUser[] = USERS): Promise<Setup> {
  const root = makeTempDir('tickcast-bridge-');
  cleanups.push(() => removeDir(root));
  const kite = await FakeKite.start(KITE);
  cleanups.push(() => kite.close());
  const openalgo = new FakeOpenAlgo(root, users, [{ symbol: 'RELIANCE', exchange: 'NSE', brexchange: 'NSE', token: '738561::::2885' }]);
  const dataDir = join(root, 'data');
  const gw = await startGatewayProcess({ dataDir, args: ['--openalgo-dir', openalgo.dir, ...args], env: openalgo.env({ TICKCAST_KITE_URL: kite.url }) });
  cleanups.push(async () => void (await gw.stop('SIGKILL').catch(() => undefined)));
  // The native user's broker streams RELIANCE whenever asked.
  let n = 0;
  const timer = setInterval(() => {
    const price = 250_000 + (n++ % 10);
    kite.send(kiteFrame([kitePacket(184, { instrument_token: 738561, last_price: price, last_traded_quantity: 1, average_traded_price: price, volume_traded: 1000 + n, total_buy_quantity: 1, total_sell_quantity: 1, open: price, high: price, low: price, close: price, last_trade_time: 1_700_000_000 + n, exchange_timestamp: 1_700_000_000 + n, depth: { buy: [], sell: [] } })]));
  }, 50);
  cleanups.push(() => clearInterval(timer));
  return { dataDir, openalgo, gw, kite };
}

/** A client of `user`, subscribed to `symbols` at `mode`; returns it with the subscribe reply. */
async function subscribed(gw: GatewayProcess, openalgo: FakeOpenAlgo, user: string, mode: number, symbols = [RELIANCE]): Promise<{ client: TestClient; reply: Message }> {
  const client = await TestClient.authenticated(gw.url, openalgo.key(user));
  cleanups.push(() => void client.close());
  const reply = await client.request({ action: 'subscribe', symbols, mode });
  return { client, reply };
}

/** The next `count` market_data messages of a client. */
async function ticks(client: TestClient, count: number, timeoutMs = 15_000): Promise<Message[]> {
  const got: Message[] = [];
  while (got.length < count) got.push(await client.next((m) => m.type === 'market_data', timeoutMs));
  return got;
}

/** The next feed_status of `status` (queued or to come); drain the client first to wait for a new one. */
/** Pids of the running processes whose parent is `parent` and whose command line holds `holding`. */
function children(parent: number, holding: string): number[] {
  const pids: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === parent && readFileSync(`/proc/${name}/cmdline`, 'utf8').includes(holding)) pids.push(Number(name));
    } catch {
      // gone meanwhile
    }
  }
  return pids;
}

const isRunning = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

const feedStatus = (client: TestClient, status: string, timeoutMs = 15_000): Promise<Message> => client.next((m) => m.type === 'feed_status' && m.status === status, timeoutMs);

describe.each([
  ['one gateway process', []],
  ['--workers 2', ['--workers', '2']],
])('OpenAlgo bridge (%s)', (_name, args) => {
  it('gives two users on two bridged brokers and a native Kite user on the same symbol each only their own ticks', async () => {
    const { dataDir, openalgo, gw } = await setup(args);
    const alice = await subscribed(gw, openalgo, 'alice', 2);
    const bob = await subscribed(gw, openalgo, 'bob', 2);
    const carol = await subscribed(gw, openalgo, 'carol', 2);
    for (const { reply } of [alice, bob, carol]) expect(reply.subscriptions[0].status, JSON.stringify(reply)).toBe('success');
    expect(alice.reply.broker).toBe('dhan');
    expect(bob.reply.broker).toBe('fyers');

    const [fromAlice, fromBob, fromCarol] = await Promise.all([ticks(alice.client, 20), ticks(bob.client, 20), ticks(carol.client, 20)]);
    for (const m of fromAlice) expect([m.data.fake_user, m.data.fake_broker, m.data.fake_token]).toEqual(['alice', 'dhan', 'dhan-tok']);
    for (const m of fromBob) expect([m.data.fake_user, m.data.fake_broker, m.data.fake_token]).toEqual(['bob', 'fyers', 'fyers-to']);
    // Carol's come from her own Kite session: no fake adapter's fields, Kite's price.
    for (const m of fromCarol) {
      expect(m.data.fake_user).toBeUndefined();
      expect(m.data.ltp).toBeGreaterThanOrEqual(2500);
    }
    for (const m of [...fromAlice, ...fromBob, ...fromCarol]) expect([m.symbol, m.exchange, m.mode]).toEqual(['RELIANCE', 'NSE', 2]);

    // Where an operator sees the bridge: /api/status (no user named) and `tickcast instances`.
    const status = (await (await fetch(`http://127.0.0.1:${gw.wsPort}/api/status`)).json()) as Record<string, any>;
    expect(status.adapters).toContainEqual({ feed: 'openalgo', broker: 'openalgo', status: 'live' });
    expect(status.user_feeds).toMatchObject({ dhan: { live: 1 }, fyers: { live: 1 }, zerodha: { live: 1 } });
    expect(JSON.stringify(status)).not.toMatch(/alice|bob/);
    const listed = JSON.parse((await runCli(['instances', '--json'], { dataDir })).stdout) as Array<{ role: string; name: string }>;
    expect(listed.filter((e) => e.role === 'adapter').map((e) => e.name)).toEqual(['openalgo']);
  });

  it('reaches the adapter once per subscribe at the highest mode any client holds, and unsubscribes when the last client leaves', async () => {
    const { openalgo, gw } = await setup(args);
    const streamCalls = () => openalgo.calls().filter((c) => c.user === 'alice' && (c.call === 'subscribe' || c.call === 'unsubscribe')).map((c) => `${c.call} ${c.symbol} ${c.mode}`);

    const ltp = await subscribed(gw, openalgo, 'alice', 1);
    await ticks(ltp.client, 2);
    const quote = await subscribed(gw, openalgo, 'alice', 2);
    await ticks(quote.client, 2);
    const sameMode = await subscribed(gw, openalgo, 'alice', 2);
    await ticks(sameMode.client, 2);
    const depth = await subscribed(gw, openalgo, 'alice', 3);
    await ticks(depth.client, 2);
    expect(streamCalls()).toEqual(['subscribe RELIANCE 1', 'subscribe RELIANCE 2', 'subscribe RELIANCE 3']);

    // Lower modes are served from the higher one's ticks: a downgrade calls nothing.
    await depth.client.request({ action: 'unsubscribe', symbols: [RELIANCE], mode: 3 });
    const ltpTick = await ltp.client.next((m) => m.type === 'market_data');
    expect(ltpTick.mode).toBe(1);
    for (const { client } of [ltp, quote, sameMode]) await client.close();
    await waitUntil(() => streamCalls().some((call) => call.startsWith('unsubscribe')), 'the unsubscribe to reach the adapter', 15_000);
    await sleep(500);
    // OpenAlgo's connection pool drops the lower modes it tracks and unsubscribes the broker once.
    expect(streamCalls()).toEqual(['subscribe RELIANCE 1', 'subscribe RELIANCE 2', 'subscribe RELIANCE 3', 'unsubscribe RELIANCE 3']);
  });
});

describe('OpenAlgo bridge faults', () => {
  it("tells a user whose adapter fails to open why, in the feed status and per symbol, while another user is served", async () => {
    const { openalgo, gw } = await setup();
    openalgo.behave({ 'dhan:alice': { initialize: 'error' }, 'fyers:bob': { connect: 'raise' } });
    const carol = await subscribed(gw, openalgo, 'carol', 1);
    const alice = await TestClient.authenticated(gw.url, openalgo.key('alice'));
    const bob = await TestClient.authenticated(gw.url, openalgo.key('bob'));
    cleanups.push(() => void alice.close(), () => void bob.close());
    const aliceDown = await feedStatus(alice, 'down');
    expect(aliceDown.message).toMatch(/^dhan: initialize failed: .+; retrying in \d+ s$/);
    const bobDown = await feedStatus(bob, 'down');
    expect(bobDown.message).toMatch(/^fyers: connect .*raised/);
    const reply = await alice.request({ action: 'subscribe', symbols: [RELIANCE], mode: 2 });
    expect(reply.subscriptions[0].status).toBe('error');
    expect(reply.subscriptions[0].message).toMatch(/initialize failed/);
    expect((await ticks(carol.client, 5)).every((m) => m.data.fake_user === undefined)).toBe(true);

    // Fixed in the broker (here: the fake behaves again): the bridge's retry brings the feed up.
    openalgo.behave({});
    await feedStatus(alice, 'live');
    const again = await alice.request({ action: 'subscribe', symbols: [RELIANCE], mode: 2 });
    expect(again.subscriptions[0].status).toBe('success');
    expect((await ticks(alice, 3)).every((m) => m.data.fake_user === 'alice')).toBe(true);
  });

  it("answers a symbol the broker does not know with the adapter's error, and serves the others", async () => {
    const { openalgo, gw } = await setup();
    openalgo.behave({ dhan: { unknown_symbols: ['NOSUCH'] } });
    const { client, reply } = await subscribed(gw, openalgo, 'alice', 1, [RELIANCE, { symbol: 'NOSUCH', exchange: 'NSE' }]);
    expect(reply.subscriptions.map((s: Message) => s.status)).toEqual(['success', 'error']);
    expect(reply.subscriptions[1].message).toBe('Symbol NOSUCH not found for exchange NSE');
    expect((await ticks(client, 3)).every((m) => m.symbol === 'RELIANCE')).toBe(true);
  });

  it('reports a connect that hangs as down, opens a fresh adapter, and keeps serving the other users meanwhile', async () => {
    const { openalgo, gw } = await setup();
    openalgo.behave({ 'dhan:alice': { connect: 'hang' } });
    const bob = await subscribed(gw, openalgo, 'bob', 2);
    const alice = await TestClient.authenticated(gw.url, openalgo.key('alice'));
    cleanups.push(() => void alice.close());
    const down = await feedStatus(alice, 'down');
    expect(down.message).toMatch(/connect\(\) did not return within 2 s/);
    // Bob's feed never paused.
    expect((await ticks(bob.client, 10)).every((m) => m.data.fake_user === 'bob')).toBe(true);
    openalgo.behave({});
    await feedStatus(alice, 'live');
    const reply = await alice.request({ action: 'subscribe', symbols: [RELIANCE], mode: 2 });
    expect(reply.subscriptions[0].status).toBe('success');
    await ticks(alice, 2);
  });

  it('reports an adapter that stops sending as stale and one that dies as reconnecting, then live again', async () => {
    const { openalgo, gw } = await setup();
    const { client } = await subscribed(gw, openalgo, 'alice', 2);
    await ticks(client, 2);
    openalgo.behave({ dhan: { ticks: 'stop' } });
    client.drain();
    const stale = await feedStatus(client, 'stale');
    expect(stale.message).toMatch(/no tick/);
    openalgo.behave({});
    await feedStatus(client, 'live');
    await ticks(client, 2);
    client.drain();
    openalgo.behave({ dhan: { die: true } });
    const reconnecting = await feedStatus(client, 'reconnecting');
    expect(reconnecting.message).toMatch(/disconnected/);
  });

  it("drops ticks an adapter publishes around its user's publisher: nobody receives them", async () => {
    const { openalgo, gw } = await setup();
    const bystander = await subscribed(gw, openalgo, 'bob', 2);
    const { client } = await subscribed(gw, openalgo, 'alice', 2);
    await ticks(client, 2);
    openalgo.behave({ 'dhan:alice': { raw_socket: true } });
    await sleep(300);
    client.drain();
    bystander.client.drain();
    await sleep(1500);
    expect(client.messages.filter((m) => m.type === 'market_data')).toEqual([]);
    expect(bystander.client.messages.filter((m) => m.type === 'market_data').every((m) => m.data.fake_user === 'bob')).toBe(true);
    expect(bystander.client.messages.some((m) => m.type === 'market_data')).toBe(true);
  });
});

describe.each([
  ['one gateway process', []],
  ['--workers 2', ['--workers', '2']],
])('OpenAlgo bridge lifecycle (%s)', (_name, args) => {
  it('notices the bridge killed, restarts it, replays every stream, and serves the native user throughout', async () => {
    const { openalgo, gw } = await setup(args);
    const alice = await subscribed(gw, openalgo, 'alice', 2);
    const bob = await subscribed(gw, openalgo, 'bob', 1);
    const carol = await subscribed(gw, openalgo, 'carol', 2);
    await Promise.all([ticks(alice.client, 2), ticks(bob.client, 2), ticks(carol.client, 2)]);
    const pid = openalgo.calls().at(-1)!.pid;

    const killedAt = Date.now();
    alice.client.drain();
    process.kill(pid, 'SIGKILL');
    // Told as the gateway notices the silence, or (if the restarted bridge announces first and
    // takes the old one's place at once) as the new bridge opens the feed again.
    const lost = await feedStatus(alice.client, 'reconnecting');
    expect(lost.message).toMatch(/OpenAlgo bridge is not connected|opening the dhan adapter for alice/);
    // Carol's own Kite feed does not notice.
    expect((await ticks(carol.client, 10)).every((m) => m.data.fake_user === undefined)).toBe(true);
    alice.client.drain();
    bob.client.drain();

    await feedStatus(alice.client, 'live', 20_000);
    const [fromAlice, fromBob] = await Promise.all([ticks(alice.client, 3), ticks(bob.client, 3)]);
    expect(fromAlice.every((m) => m.data.fake_user === 'alice' && m.mode === 2)).toBe(true);
    expect(fromBob.every((m) => m.data.fake_user === 'bob' && m.mode === 1)).toBe(true);
    // A hang guard, not a timing test: the outage is seconds.
    expect(Date.now() - killedAt).toBeLessThan(20_000);
    const restarted = openalgo.calls().filter((c) => c.pid !== pid);
    expect(restarted.filter((c) => c.call === 'subscribe').map((c) => `${c.user} ${c.symbol} ${c.mode}`).sort()).toEqual(['alice RELIANCE 2', 'bob RELIANCE 1']);
  });

  it("recreates a user's adapter with the new broker session when OpenAlgo publishes the user's CACHE_INVALIDATE", async () => {
    const { openalgo, gw } = await setup(args);
    const { client } = await subscribed(gw, openalgo, 'alice', 2);
    expect((await ticks(client, 2)).every((m) => m.data.fake_token === 'dhan-tok')).toBe(true);

    // A re-login in OpenAlgo: a new token in its auth row, then its invalidation on the bus.
    openalgo.writer.apply([{ op: 'auth', user: 'alice', broker: 'dhan', token: 'NEWTOKEN-alice' }]);
    const publisher = new ZmqPublisher({ endpoint: gw.busEndpoint });
    cleanups.push(() => publisher.close());
    const announce = setInterval(() => publisher.publish('CACHE_INVALIDATE_AUTH_alice', JSON.stringify({ action: 'invalidate', user_id: 'alice', cache_type: 'AUTH' })), 200);
    cleanups.push(() => clearInterval(announce));
    await client.next((m) => m.type === 'market_data' && m.data.fake_token === 'NEWTOKEN', 20_000);
    clearInterval(announce);
    const initializes = openalgo.calls().filter((c) => c.user === 'alice' && c.call === 'initialize');
    expect(initializes.length).toBeGreaterThanOrEqual(2);
    expect(openalgo.calls().some((c) => c.user === 'alice' && c.call === 'disconnect')).toBe(true);
  });

  it('leaves no bridge behind when the gateway is killed outright', async () => {
    const { gw } = await setup(args);
    let bridges: number[] = [];
    await waitUntil(() => (bridges = children(gw.child.pid!, 'openalgo_bridge.py')).length === 1, 'the bridge to start', 15_000);
    await gw.stop('SIGKILL');
    await waitUntil(() => !isRunning(bridges[0]!), 'the orphaned bridge to stop', 15_000);
  });
});
