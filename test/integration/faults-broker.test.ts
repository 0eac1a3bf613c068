/**
 * A broker feed that goes silent or drops, end to end with the real `tickcast start` and a fake
 * Kite ticker: the gateway's Zerodha adapter notices the silence (no frame, not even a heartbeat,
 * for 5 s), logs it, tells the user's clients `reconnecting`, reconnects with backoff, resubscribes
 * everything on the new socket, and ticks flow again. The adapter-level tests (the broker
 * contract suite, broker-contract.test.ts, for every broker; kite-adapter.test.ts and
 * angel-adapter.test.ts for what is each broker's own) cover the backoff curve, refusals, re-logins
 * and silence with short timings; this one covers the default timings and what clients and the
 * operator see.
 */
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { type GatewayProcess, REPO_ROOT, killSpawnedProcesses, makeTempDir, removeDir, runCli, startGatewayProcess } from '../helpers/cli.js';
import { TestClient, sleep } from '../helpers/client.js';
import { FakeKite, kiteFrame, kitePacket } from '../helpers/fake-kite.js';
import { LEVEL, linesWith, waitForLog, waitForMessage } from '../helpers/logs.js';

const RELIANCE = 738561;
const KITE = { apiKey: 'kite-app-key', accessToken: 'kite-token-1' };

let dataDir: string;
let kite: FakeKite;
let gw: GatewayProcess;
let apiKey: string;

beforeAll(async () => {
  dataDir = makeTempDir('tickcast-faults-');
  // Kite's heartbeat is about a second; the adapter's silence watchdog is 5 s.
  kite = await FakeKite.start({ ...KITE, heartbeatMs: 1000 });
  const cli = async (args: string[]): Promise<string> => {
    const result = await runCli([...args, '--instance', 'broker'], { dataDir });
    expect(result.code, result.stderr).toBe(0);
    return result.stdout;
  };
  apiKey = JSON.parse(await cli(['keys', 'create', '--user', 'kiteuser', '--broker', 'zerodha', '--json'])).api_key;
  await cli(['symbols', 'import', '--broker', 'zerodha', `${REPO_ROOT}test/fixtures/kite-instruments.csv`]);
  await cli(['credentials', 'set', '--user', 'kiteuser', '--broker', 'zerodha', '--api-key', KITE.apiKey, '--access-token', KITE.accessToken]);
  gw = await startGatewayProcess({ dataDir, args: ['--instance', 'broker', '--feed', 'none'], env: { TICKCAST_KITE_URL: kite.url, TICKCAST_LOG_LEVEL: 'info' } });
});

afterAll(async () => {
  await killSpawnedProcesses();
  await kite?.close();
  removeDir(dataDir);
});

/** Sends RELIANCE ticks (ltp 2950.55) on every open Kite connection until `done` resolves. */
async function tickUntil<T>(done: Promise<T>): Promise<T> {
  const timer = setInterval(() => kite.send(kiteFrame([kitePacket(8, { instrument_token: RELIANCE, last_price: 295055 })])), 100);
  try {
    return await done;
  } finally {
    clearInterval(timer);
  }
}

/** Kite connection numbers that were sent a subscribe for RELIANCE. */
function subscribedOn(): number[] {
  return kite.sent('subscribe').filter((m) => (m.v as number[]).includes(RELIANCE)).map((m) => m.connection);
}

describe('a Zerodha feed', () => {
  it('that goes silent: detected after 5 s, logged, clients told; reconnected, resubscribed, ticking again', async () => {
    const client = await TestClient.authenticated(gw.url, apiKey);
    expect((await client.request({ action: 'subscribe', symbols: [{ symbol: 'RELIANCE', exchange: 'NSE' }], mode: 1 })).status).toBe('success');
    await kite.waitFor(() => subscribedOn().length > 0, 10_000, 'the subscribe upstream');
    await tickUntil(client.next((m) => m.type === 'market_data' && m.data.ltp === 2950.55));
    const connection = kite.connections;

    client.drain(); // the feed's first "live", sent when it connected for this user
    kite.goSilent(); // no heartbeat, no tick: a half-open connection as a broker outage leaves it
    onTestFinished(() => kite.resume());
    const lost = await client.next((m) => m.type === 'feed_status', 15_000);
    expect(lost).toMatchObject({ type: 'feed_status', feed: 'zerodha.kiteuser', broker: 'zerodha', status: 'reconnecting' });
    expect(lost.message).toMatch(/^no data from Zerodha for 5000 ms; reconnecting in \d+(\.\d+)? m?s$/); // 1 s ± 20 %
    expect(await waitForMessage(gw.stderr, 'Zerodha ticker silent; reconnecting', LEVEL.warn)).toMatchObject({ feed: 'zerodha.kiteuser', silenceMs: 5000 });
    const retry = await waitForMessage(gw.stderr, 'Zerodha ticker reconnecting', LEVEL.warn);
    expect(retry).toMatchObject({ reason: 'no data from Zerodha for 5000 ms', attempt: 1 });
    expect(retry.delayMs).toBeGreaterThanOrEqual(800); // the first backoff step: 1 s ± 20 %
    expect(retry.delayMs).toBeLessThanOrEqual(1200);

    kite.resume();
    expect(await client.next((m) => m.type === 'feed_status', 15_000)).toMatchObject({ status: 'live' });
    expect(kite.connections).toBeGreaterThan(connection);
    await kite.waitFor(() => subscribedOn().some((c) => c > connection), 10_000, 'the resubscription on the new socket');
    client.drain();
    await tickUntil(client.next((m) => m.type === 'market_data' && m.data.ltp === 2950.55));
    expect(gw.child.exitCode).toBeNull();
    await client.close();
  });

  it('that drops: reconnected with backoff, resubscribed, ticking again; a second drop too', async () => {
    const client = await TestClient.authenticated(gw.url, apiKey);
    expect((await client.request({ action: 'subscribe', symbols: [{ symbol: 'RELIANCE', exchange: 'NSE' }], mode: 1 })).status).toBe('success');
    await tickUntil(client.marketData('RELIANCE'));

    for (let round = 0; round < 2; round++) {
      const connection = kite.connections;
      const retries = linesWith(gw.stderr(), 'Zerodha ticker reconnecting').length;
      client.drain();
      kite.drop();
      expect(await client.next((m) => m.type === 'feed_status' && m.status !== 'live', 15_000)).toMatchObject({ status: 'reconnecting' });
      await waitForLog(gw.stderr, () => linesWith(gw.stderr(), 'Zerodha ticker reconnecting').length > retries, 'a reconnect log line');
      const retry = linesWith(gw.stderr(), 'Zerodha ticker reconnecting').at(-1)!;
      expect(retry).toMatchObject({ level: LEVEL.warn, feed: 'zerodha.kiteuser', reason: expect.stringMatching(/^Zerodha closed the connection \(code \d+\)$/) });
      expect(retry.delayMs).toBeGreaterThan(0);
      expect(await client.next((m) => m.type === 'feed_status', 15_000)).toMatchObject({ status: 'live' });
      await kite.waitFor(() => subscribedOn().some((c) => c > connection), 10_000, 'the resubscription');
      client.drain();
      await tickUntil(client.marketData('RELIANCE'));
    }
    expect(await client.request({ action: 'ping' })).toMatchObject({ type: 'pong' });
    await sleep(100);
    expect(gw.child.exitCode).toBeNull();
    await client.close();
  });
});
