/**
 * Replacing OpenAlgo's proxy, as docs/openalgo.md tells a user to: an OpenAlgo directory (its
 * .env, its database made by OpenAlgo's own libraries), `tickcast start --openalgo-dir DIR` and
 * nothing else, then OpenAlgo's SDK (its feed client's semantics) with the key OpenAlgo made, a
 * Zerodha user's own broker session from OpenAlgo's auth row, and the Health Monitor's file.
 */
import crypto from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { killSpawnedProcesses, makeTempDir, removeDir, runProcess, startGatewayProcess } from '../helpers/cli.js';
import { waitUntil } from '../helpers/client.js';
import { FakeKite, kiteFrame, kitePacket } from '../helpers/fake-kite.js';
import { freePort } from '../helpers/nats-server.js';
import { OpenAlgoWriter, PYTHON } from '../helpers/openalgo-db.js';

const SDK_CLIENT = fileURLToPath(new URL('../python/openalgo_sdk_client.py', import.meta.url));
const PEPPER = crypto.randomBytes(32).toString('hex');
const FERNET_SALT = crypto.randomBytes(32).toString('hex');
const KITE = { apiKey: 'kite-app-key', accessToken: 'kite-token-1' };

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  await killSpawnedProcesses();
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

const sha256 = (file: string): string => crypto.createHash('sha256').update(readFileSync(file)).digest('hex');

describe("replacing OpenAlgo's proxy with tickcast start --openalgo-dir", () => {
  it("serves OpenAlgo's users with their keys and broker sessions, every mode to its SDK, and keeps the Health Monitor's file", async () => {
    const root = makeTempDir('tickcast-switch-');
    cleanups.push(() => removeDir(root));
    const kite = await FakeKite.start(KITE);
    cleanups.push(() => kite.close());

    // OpenAlgo's install: its database, written by its own libraries, and its .env.
    const dir = join(root, 'openalgo');
    mkdirSync(join(dir, 'db'), { recursive: true });
    const database = join(dir, 'db', 'openalgo.db');
    const openalgo = new OpenAlgoWriter('sqlite', database, PEPPER, FERNET_SALT);
    openalgo.createSchema();
    openalgo.apply([
      { op: 'auth', user: 'trader', broker: 'zerodha', token: `${KITE.apiKey}:${KITE.accessToken}`, userId: 'ZX1234' },
      { op: 'symtoken', rows: [{ symbol: 'RELIANCE', exchange: 'NSE', brexchange: 'NSE', token: '738561::::2885' }] },
    ]);
    const apiKey = openalgo.newKey('trader');
    const [wsPort, zmqPort] = [await freePort(), await freePort()];
    writeFileSync(
      join(dir, '.env'),
      [
        '# as OpenAlgo keeps it',
        `API_KEY_PEPPER = '${PEPPER}'`,
        `FERNET_SALT = '${FERNET_SALT}'`,
        "DATABASE_URL = 'sqlite:///db/openalgo.db'",
        // Step 1 of docs/openalgo.md: OpenAlgo no longer starts its own proxy.
        "APP_MODE = 'standalone'",
        "WEBSOCKET_HOST = '127.0.0.1'",
        `WEBSOCKET_PORT = '${wsPort}'`,
        `WEBSOCKET_URL = 'ws://127.0.0.1:${wsPort}'`,
        "ZMQ_HOST = '127.0.0.1'",
        `ZMQ_PORT = '${zmqPort}'`,
        '',
      ].join('\n'),
    );
    const before = sha256(database);

    // Step 2: one command. Only the fake broker's address is not OpenAlgo's.
    const gw = await startGatewayProcess({
      dataDir: join(root, 'data'),
      args: ['--openalgo-dir', dir],
      env: { WEBSOCKET_PORT: undefined, ZMQ_PORT: undefined, TICKCAST_KITE_URL: kite.url },
    });
    expect(gw.url).toBe(`ws://127.0.0.1:${wsPort}`);
    expect(gw.busPort).toBe(zmqPort);

    // The broker streams RELIANCE in full while the SDK collects.
    let n = 0;
    const timer = setInterval(() => {
      const price = 295_000 + (n++ % 40) * 5;
      kite.send(
        kiteFrame([
          kitePacket(184, {
            instrument_token: 738561, last_price: price, last_traded_quantity: 3, average_traded_price: 294_900, volume_traded: 10_000 + n,
            total_buy_quantity: 500, total_sell_quantity: 600, open: 294_000, high: 296_000, low: 293_000, close: 292_115,
            last_trade_time: 1_700_000_000 + n, exchange_timestamp: 1_700_000_000 + n,
            depth: { buy: [{ quantity: 10, price: price - 5, orders: 1 }], sell: [{ quantity: 20, price: price + 5, orders: 2 }] },
          }),
        ]),
      );
    }, 50);
    cleanups.push(() => clearInterval(timer));

    // Step 3: OpenAlgo's SDK, unchanged, with the key OpenAlgo made.
    const sdk = await runProcess(
      PYTHON,
      [SDK_CLIENT, '--url', gw.url, '--api-key', apiKey, '--sub', '1', 'NSE:RELIANCE', '--sub', '2', 'NSE:RELIANCE', '--sub', '3', 'NSE:RELIANCE', '--min-ticks', '3', '--collect-timeout', '20'],
      { env: { ...process.env, PYTHONDONTWRITEBYTECODE: '1' }, timeoutMs: 40_000 },
    );
    expect(sdk.code, sdk.stderr + sdk.stdout).toBe(0);
    const summary = JSON.parse(sdk.stdout);
    expect(summary.auth).toMatchObject({ ok: true, user_id: 'trader', broker: 'zerodha' });
    expect(summary.violations).toEqual([]);
    expect(summary.collected_all).toBe(true);
    for (const mode of ['1', '2', '3']) expect(summary.symbols['NSE:RELIANCE'][mode].handled).toBeGreaterThanOrEqual(3);
    expect(summary.caches.ltp['NSE:RELIANCE'].price).toBeGreaterThan(2900);
    expect(summary.caches.quotes['NSE:RELIANCE'].open).toBe(2940);
    expect(summary.caches.depth['NSE:RELIANCE'].depth.buy[0].quantity).toBe(10);
    // The ticks came from the user's own Kite session, opened with OpenAlgo's stored token.
    expect(kite.sent('subscribe').some((m) => (m.v as number[]).includes(738561))).toBe(true);

    // OpenAlgo's Health Monitor reads its proxy's stats file: tickcast writes the same one.
    const statsFile = join(dir, 'log', 'ws_proxy_stats.json');
    await waitUntil(() => existsSync(statsFile), "the Health Monitor's stats file", 15_000);
    const stats = JSON.parse(readFileSync(statsFile, 'utf8')) as Record<string, unknown>;
    expect(Object.keys(stats).sort()).toEqual(['brokers', 'clients_connected', 'timestamp', 'total_connections', 'total_symbols']);

    expect(await gw.stop('SIGTERM')).toBe(0);
    // OpenAlgo's database was only read.
    expect(sha256(database)).toBe(before);
    expect(statSync(database).size).toBeGreaterThan(0);
  });
});
