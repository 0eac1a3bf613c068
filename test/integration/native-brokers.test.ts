/**
 * Dhan, Upstox, Shoonya and Flattrade feeds end to end: a gateway whose user has the broker's
 * credentials in the instance's store and an imported symbol master, the broker's fake server
 * sending the vectors' frames, and a simulator user on the same symbol beside them. The broker
 * user's client gets the vectors' values with OpenAlgo's field names for that broker (what the
 * broker's payload module makes of the decoded vector, checked against what the official library
 * decoded), the two users' ticks never mix, the fake saw the stored credentials, and the status
 * page counts the feed without naming the user. Then the same under `--workers 2`, a Shoonya user
 * of OpenAlgo's own database whose user id comes from BROKER_API_KEY, and users without
 * credentials, who are told how to store them.
 */
import crypto from 'node:crypto';
import { createReadStream, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { BrokerCredentials, BrokerTick } from '../../src/adapters/broker.js';
import { decodeDhanFeed } from '../../src/adapters/dhan/decoder.js';
import { dhanPayload } from '../../src/adapters/dhan/payload.js';
import { NorenBook, decodeNorenText } from '../../src/adapters/noren/decoder.js';
import { norenPayload } from '../../src/adapters/noren/payload.js';
import { decodeUpstoxFeed } from '../../src/adapters/upstox/decoder.js';
import { upstoxPayload } from '../../src/adapters/upstox/payload.js';
import { CredentialStore } from '../../src/auth/credentials.js';
import { silentLogger } from '../../src/observability/logger.js';
import { projectPayload } from '../../src/protocol/mode-payload.js';
import type { Mode } from '../../src/protocol/modes.js';
import { type RunningInstance, startGateway } from '../../src/roles/gateway.js';
import type { Database } from '../../src/store/database.js';
import { importDhanCsv } from '../../src/symbols/import-dhan.js';
import { type NorenFile, importNorenFiles, norenFileKind } from '../../src/symbols/import-noren.js';
import { importUpstoxJson } from '../../src/symbols/import-upstox.js';
import { openKeys } from '../../src/wiring.js';
import { killSpawnedProcesses, makeTempDir, removeDir, startGatewayProcess } from '../helpers/cli.js';
import { type Message, TestClient, waitUntil } from '../helpers/client.js';
import { FakeDhan, dhanVectorFrame, loadDhanVectors } from '../helpers/fake-dhan.js';
import { FakeNoren, loadNorenVectors } from '../helpers/fake-noren.js';
import { FakeUpstox, loadUpstoxVectors, upstoxVectorFrame } from '../helpers/fake-upstox.js';
import { TEST_PEPPER, startTestInstance, testConfig } from '../helpers/instance.js';
import { OpenAlgoWriter } from '../helpers/openalgo-db.js';

const SYMBOL = 'RELIANCE';
const EXCHANGE = 'NSE';
const RELIANCE = [{ symbol: SYMBOL, exchange: EXCHANGE }];
/** Hang bound for anything that crosses the gateway and a fake broker. */
const WAIT_MS = 15_000;

type NativeBroker = 'dhan' | 'upstox' | 'shoonya' | 'flattrade';
type Json = Record<string, any>;

/** One mode a client adds, and what it must receive for the frames the fake sends. */
interface Step {
  mode: Mode;
  /** Sent in order, again and again, until the message arrives. */
  frames: Array<Buffer | string>;
  /** The client's `data`: the broker's payload module on the decoded vector (as the gateway hands it to this mode). */
  expected: Json;
  /** Values as the broker's official library decoded the vector. */
  official: Json;
}

/** A fake broker server as the tests here need it. */
interface Upstream {
  url: string;
  send(frame: Buffer | string): void;
  /** Whether an open connection, let in by the fake, has RELIANCE subscribed (the broker sends it nothing before). */
  holding(): boolean;
  /** Checks every authentication the fake saw carried the stored credentials, and one was let in. */
  expectAuthenticated(): void;
  close(): Promise<void>;
}

interface BrokerCase {
  broker: NativeBroker;
  urlEnv: string;
  credentials: BrokerCredentials;
  start(): Promise<Upstream>;
  importSymbols(db: Database): Promise<unknown>;
  /** LTP first, then Quote and Depth as far as the vectors (of an instrument in the fixture) allow. */
  steps: Step[];
}

const num = (value: unknown): number => Number(value);
const fixture = (name: string): URL => new URL(`../fixtures/${name}`, import.meta.url);

/** The payload published at `published` as a client holding `mode` gets it (the gateway makes lower modes' messages). */
function asReceived(payload: string, published: Mode, mode: Mode, broker: NativeBroker): Json {
  const text = mode < published ? projectPayload(payload, published, mode, broker) : payload;
  if (text === undefined) throw new Error(`no mode ${mode} projection of ${payload}`);
  return JSON.parse(text) as Json;
}

// ---- Dhan: RELIANCE is NSE_EQ 2885 in dhan-scrip-master.csv ------------------------------------

const dhanVectors = loadDhanVectors();

function dhanStep(mode: Mode, name: string, official: (decoded: Json) => Json): Step {
  const frame = dhanVectorFrame(dhanVectors, name);
  const packet = decodeDhanFeed(frame).find((p) => p.kind === 'tick');
  if (packet?.kind !== 'tick') throw new Error(`${name} decodes to no tick`);
  const published = ({ ltp: 1, quote: 2, full: 3, depth20: 3 } as const)[packet.tick.mode];
  const decoded = dhanVectors.find((v) => v.name === `dhan/${name}`)!.decoded as Json;
  expect(decoded).toMatchObject({ exchange_segment: 1, security_id: 2885 }); // the fixture's RELIANCE
  return { mode, frames: [frame], expected: asReceived(dhanPayload(packet.tick, SYMBOL, EXCHANGE, published, 0), published, mode, 'dhan'), official: official(decoded) };
}

const dhanQuote = (d: Json): Json => ({
  ltp: num(d.LTP), volume: d.volume, open: num(d.open), high: num(d.high), low: num(d.low), close: num(d.close),
  last_quantity: d.LTQ, average_price: num(d.avg_price), total_buy_quantity: d.total_buy_quantity, total_sell_quantity: d.total_sell_quantity,
});

const DHAN: BrokerCase = {
  broker: 'dhan',
  urlEnv: 'TICKCAST_DHAN_URL',
  credentials: { apiKey: '', accessToken: 'dhan-token-1', clientCode: '1100012345' },
  async start() {
    const fake = await FakeDhan.start({ accessToken: 'dhan-token-1', clientId: '1100012345' });
    return {
      url: fake.url,
      send: (frame) => fake.send(frame as Buffer),
      holding: () => fake.openConnections().some((c) => (fake.held(c).get('NSE_EQ:2885')?.modes.size ?? 0) > 0),
      expectAuthenticated() {
        expect(fake.upgrades.length).toBeGreaterThan(0);
        for (const upgrade of fake.upgrades) {
          expect(upgrade).toMatchObject({ version: '2', authType: '2', token: 'dhan-token-1', clientId: '1100012345', accepted: true });
        }
        expect(fake.problems).toEqual([]);
      },
      close: () => fake.close(),
    };
  },
  importSymbols: (db) => importDhanCsv(db, createReadStream(fixture('dhan-scrip-master.csv'))),
  get steps() {
    return [
      dhanStep(1, 'ticker_nse_eq_reliance', (d) => ({ ltp: num(d.LTP) })),
      dhanStep(2, 'quote_nse_eq_reliance', dhanQuote),
      dhanStep(3, 'full_nse_eq_partial_book', (d) => ({
        ...dhanQuote(d),
        oi: d.OI,
        depth: {
          buy: (d.depth as Json[]).map((l) => ({ price: num(l.bid_price), quantity: l.bid_quantity, orders: l.bid_orders })),
          sell: (d.depth as Json[]).map((l) => ({ price: num(l.ask_price), quantity: l.ask_quantity, orders: l.ask_orders })),
        },
      })),
    ];
  },
};

// ---- Upstox: RELIANCE is NSE_EQ|INE002A01018 in upstox-instruments.json ------------------------

const upstoxVectors = loadUpstoxVectors();
const UPSTOX_KEY = 'NSE_EQ|INE002A01018';

function upstoxStep(mode: Mode, name: string, official: (feed: Json, decoded: Json) => Json): Step {
  const frame = upstoxVectorFrame(upstoxVectors, name);
  const decodedFrame = decodeUpstoxFeed(frame);
  if (decodedFrame.kind !== 'feed' || decodedFrame.ticks.length !== 1) throw new Error(`${name} decodes to no single tick`);
  const tick: BrokerTick = decodedFrame.ticks[0]!.tick;
  expect(tick.token).toBe(UPSTOX_KEY); // the fixture's RELIANCE
  const published = ({ ltp: 1, quote: 2, full: 3, depth20: 3 } as const)[tick.mode];
  const decoded = upstoxVectors.find((v) => v.name === name)!.decoded as Json;
  return {
    mode,
    frames: [frame],
    expected: asReceived(upstoxPayload(tick, SYMBOL, EXCHANGE, published, 0), published, mode, 'upstox'),
    official: official(decoded.feeds[UPSTOX_KEY] as Json, decoded),
  };
}

const upstoxFull = (feed: Json): Json => {
  const ff = feed.fullFeed.marketFF as Json;
  const day = (ff.marketOHLC.ohlc as Json[]).find((c) => c.interval === '1d')!;
  return {
    ltp: ff.ltpc.ltp, ltq: num(ff.ltpc.ltq), ltt: num(ff.ltpc.ltt), cp: ff.ltpc.cp, close: ff.ltpc.cp,
    open: day.open, high: day.high, low: day.low, volume: num(ff.vtt), average_price: ff.atp,
    total_buy_quantity: ff.tbq, total_sell_quantity: ff.tsq, last_trade_quantity: num(ff.ltpc.ltq),
  };
};

const UPSTOX: BrokerCase = {
  broker: 'upstox',
  urlEnv: 'TICKCAST_UPSTOX_URL',
  credentials: { apiKey: '', accessToken: 'upstox-token-1' },
  async start() {
    const fake = await FakeUpstox.start({ accessToken: 'upstox-token-1' });
    return {
      url: fake.url,
      send: (frame) => fake.push(frame as Buffer),
      holding: () => fake.open > 0 && fake.held(fake.connections).has(UPSTOX_KEY),
      expectAuthenticated() {
        expect(fake.attempts.length).toBeGreaterThan(0);
        for (const attempt of fake.attempts) expect(attempt).toMatchObject({ token: 'upstox-token-1', authorization: 'Bearer upstox-token-1', accepted: true });
      },
      close: () => fake.close(),
    };
  },
  importSymbols: (db) => importUpstoxJson(db, createReadStream(fixture('upstox-instruments.json'))),
  get steps() {
    return [
      upstoxStep(1, 'upstox/ltpc_nse_eq_reliance', (feed, decoded) => ({
        ltp: feed.ltpc.ltp, ltq: num(feed.ltpc.ltq), ltt: num(feed.ltpc.ltt), cp: feed.ltpc.cp, timestamp: num(decoded.currentTs),
      })),
      upstoxStep(2, 'upstox/full_nse_eq_depth5', upstoxFull),
      upstoxStep(3, 'upstox/full_nse_eq_depth5', (feed) => {
        const book = feed.fullFeed.marketFF.marketLevel.bidAskQuote as Json[];
        return {
          ...upstoxFull(feed),
          // Upstox sends no order counts.
          depth: {
            buy: book.map((q) => expect.objectContaining({ price: q.bidP, quantity: num(q.bidQ) })),
            sell: book.map((q) => expect.objectContaining({ price: q.askP, quantity: num(q.askQ) })),
          },
        };
      }),
    ];
  },
};

// ---- Shoonya and Flattrade: RELIANCE is NSE|2885 in noren-symbols/ --------------------------------
// The vectors' depth messages are for SBIN (3045), which the fixture does not have: LTP and Quote.

const norenVectors = loadNorenVectors();
const norenVector = (name: string) => norenVectors.find((v) => v.name === `noren/${name}`)!;
const NOREN_USER = 'FA12345';

/** An acknowledgement and an update, as the adapter merges them, published at the mode the client holds. */
function norenStep(broker: 'shoonya' | 'flattrade', mode: Mode, update: string): Step {
  const names = ['tk_nse_equity_reliance', update];
  const book = new NorenBook({ broker, isIndex: () => false });
  let tick: BrokerTick | undefined;
  for (const name of names) {
    const decoded = decodeNorenText(norenVector(name).text);
    if (decoded.kind !== 'market') throw new Error(`${name} is no market message`);
    expect({ e: decoded.exchange, tk: decoded.token }).toEqual({ e: 'NSE', tk: '2885' }); // the fixture's RELIANCE
    const applied = book.apply(decoded);
    if (applied.kind === 'tick') tick = applied.tick;
  }
  const published = Math.min(mode, tick!.mode === 'full' ? 3 : 2) as Mode;
  const merged = norenVector(update).merged as Record<string, string>;
  const official: Json = { ltp: num(merged.lp), [`${broker}_timestamp`]: num(merged.ft) };
  if (mode >= 2) {
    Object.assign(official, {
      volume: num(merged.v), open: num(merged.o), high: num(merged.h), low: num(merged.l), close: num(merged.c), average_price: num(merged.ap),
      last_quantity: num(merged.ltq), total_buy_quantity: num(merged.tbq), total_sell_quantity: num(merged.tsq), last_trade_time: merged.ltt,
    });
  }
  return {
    mode,
    frames: names.map((name) => norenVector(name).text),
    expected: asReceived(norenPayload(tick!, SYMBOL, EXCHANGE, published, 0, broker), published, mode, broker),
    official,
  };
}

function noren(broker: 'shoonya' | 'flattrade', files: string[]): BrokerCase {
  const token = `${broker}-session-token-1`;
  return {
    broker,
    urlEnv: broker === 'shoonya' ? 'TICKCAST_SHOONYA_URL' : 'TICKCAST_FLATTRADE_URL',
    credentials: { apiKey: '', accessToken: token, clientCode: NOREN_USER },
    start: async () => norenUpstream(await FakeNoren.start({ connect: 'a', uid: NOREN_USER, token }), NOREN_USER, token),
    importSymbols: (db) =>
      importNorenFiles(
        db,
        broker,
        files.map((name): NorenFile => ({ kind: norenFileKind(name)!, input: createReadStream(fixture(`noren-symbols/${name}`)), source: name })),
      ),
    get steps() {
      return [norenStep(broker, 1, 'tf_nse_equity_reliance_ltp'), norenStep(broker, 2, 'tf_nse_equity_reliance_trade')];
    },
  };
}

function norenUpstream(fake: FakeNoren, uid: string, token: string): Upstream {
  return {
    url: fake.url,
    send: (frame) => fake.send(frame as string),
    holding: () => fake.openConnections().some((c) => fake.logins.some((l) => l.connection === c && l.accepted) && fake.held(c).has('NSE|2885')),
    expectAuthenticated() {
      expect(fake.logins.length).toBeGreaterThan(0);
      for (const login of fake.logins) expect(login).toMatchObject({ t: 'a', uid, actid: uid, token, source: 'API', accepted: true });
    },
    close: () => fake.close(),
  };
}

const BROKERS: BrokerCase[] = [
  DHAN,
  UPSTOX,
  noren('shoonya', ['NSE_symbols.txt', 'BSE_symbols.txt', 'NFO_symbols.txt', 'MCX_symbols.txt']),
  noren('flattrade', ['NSE_Equity.csv', 'BSE_Equity.csv', 'Bfo_Index_Derivatives.csv']),
];

// ---- helpers -----------------------------------------------------------------------------------

/** Sends `frames` every 50 ms until `arrived` settles. */
async function sendUntil<T>(upstream: Upstream, frames: Array<Buffer | string>, arrived: Promise<T>): Promise<T> {
  const timer = setInterval(() => {
    for (const frame of frames) upstream.send(frame);
  }, 50);
  try {
    return await arrived;
  } finally {
    clearInterval(timer);
  }
}

/** The step's message on `client`: its mode, from the broker, with the step's last price. */
function stepMessage(client: TestClient, broker: NativeBroker, step: Step): Promise<Message> {
  return client.next((m) => m.type === 'market_data' && m.mode === step.mode && m.broker === broker && m.data?.ltp === step.expected.ltp, WAIT_MS);
}

/** What a message of the step must be: the expected payload, field for field (the timestamp is the gateway's clock). */
function expectStep(message: Message, broker: NativeBroker, step: Step): void {
  expect(message).toMatchObject({ type: 'market_data', symbol: SYMBOL, exchange: EXCHANGE, mode: step.mode, broker });
  // Computed with a clock at 0: a timestamp of 0 is the clock's (any number here), another the feed's own.
  const { timestamp, ...expected } = step.expected;
  expect(message.data).toEqual({ ...expected, timestamp: timestamp === 0 ? expect.any(Number) : timestamp });
  expect(message.data).toMatchObject(step.official);
}

const marketData = (client: TestClient): Message[] => client.messages.filter((m) => m.type === 'market_data');

/** Authenticates and returns the client with the feed_status that followed the auth reply, if any. */
async function join(url: string, apiKey: string): Promise<{ client: TestClient; status: Message | undefined }> {
  const client = await TestClient.authenticated(url, apiKey);
  // The status, when there is one, is written right after the auth reply: a ping's pong follows it.
  await client.request({ action: 'ping' });
  const index = client.messages.findIndex((m) => m.type === 'feed_status');
  return { client, status: index >= 0 ? client.messages.splice(index, 1)[0] : undefined };
}

// ---- one gateway per broker ----------------------------------------------------------------------

describe.each(BROKERS)('$broker feed', (b) => {
  const user = `${b.broker}user`;
  let upstream: Upstream;
  let gw: Awaited<ReturnType<typeof startTestInstance>>;
  let keys: { broker: string; sim: string; none: string };

  beforeAll(async () => {
    upstream = await b.start();
    gw = await startTestInstance({ [b.urlEnv]: upstream.url });
    keys = { broker: await gw.createKey(user, b.broker), sim: await gw.createKey('simuser'), none: await gw.createKey('nocreds', b.broker) };
    // What `tickcast symbols import` and `tickcast credentials set` do, on the instance's database.
    const { db, fernetKey } = await openKeys(gw.config);
    try {
      await b.importSymbols(db);
      new CredentialStore({ db, fernetKey }).set(user, b.broker, b.credentials);
    } finally {
      db.close();
    }
  });

  afterAll(async () => {
    await gw?.stop();
    await upstream?.close();
  });

  it("delivers the vectors' values with OpenAlgo's field names; the simulator user's ticks and the broker's never mix; /api/status counts the feed", async () => {
    const client = await TestClient.authenticated(gw.url, keys.broker);
    const simClient = await TestClient.authenticated(gw.url, keys.sim);
    try {
      const reply = await client.request({ action: 'subscribe', symbols: [...RELIANCE, { symbol: 'NOPE', exchange: EXCHANGE }], mode: 1 });
      expect(reply.subscriptions.map((s: Message) => s.status)).toEqual(['success', 'error']);
      expect(reply.subscriptions[1].message).toBe(`Token not found for NOPE on ${EXCHANGE}`);
      expect(await simClient.request({ action: 'subscribe', symbols: RELIANCE, mode: 1 })).toMatchObject({ status: 'success' });
      await waitUntil(() => upstream.holding(), `RELIANCE subscribed upstream`, WAIT_MS);

      for (const [i, step] of b.steps.entries()) {
        if (i > 0) expect(await client.request({ action: 'subscribe', symbols: RELIANCE, mode: step.mode })).toMatchObject({ status: 'success' });
        const message = await sendUntil(upstream, step.frames, stepMessage(client, b.broker, step));
        expectStep(message, b.broker, step);
      }

      // The figures anyone can read on the port count the user's feed without naming the user.
      const http = gw.url.replace('ws://', 'http://');
      const status = (await (await fetch(`${http}/api/status`)).json()) as Json;
      expect(status.user_feeds).toEqual({ [b.broker]: { live: 1 } });
      expect(status.ticks_out_by_feed[`${b.broker}.users`]).toBeGreaterThan(0);
      const metrics = await (await fetch(`${http}/metrics`)).text();
      expect(metrics).toMatch(new RegExp(`^tickcast_user_feeds\\{broker="${b.broker}",status="live"\\} 1$`, 'm'));
      for (const text of [JSON.stringify(status), metrics]) expect(text).not.toContain(user);

      // The simulator user is served throughout, by the simulator only; the broker user by the broker only.
      await simClient.marketData(SYMBOL, EXCHANGE);
      const brokerPrices = new Set(b.steps.map((s) => s.expected.ltp));
      for (const m of marketData(simClient)) {
        expect(m.broker).toBe('simulator');
        expect(brokerPrices.has(m.data.ltp)).toBe(false);
      }
      for (const m of marketData(client)) expect(m).toMatchObject({ broker: b.broker, symbol: SYMBOL, exchange: EXCHANGE });
    } finally {
      await simClient.close();
      await client.close();
    }
  });

  it('authenticates upstream with the credentials stored for the user', async () => {
    const client = await TestClient.authenticated(gw.url, keys.broker);
    try {
      expect(await client.request({ action: 'subscribe', symbols: RELIANCE, mode: 1 })).toMatchObject({ status: 'success' });
      await waitUntil(() => upstream.holding(), `RELIANCE subscribed upstream`, WAIT_MS);
      upstream.expectAuthenticated();
    } finally {
      await client.close();
    }
  });

  it('a user without stored credentials is told how to store them, and gets a per-symbol error and no ticks', async () => {
    const { client, status } = await join(gw.url, keys.none);
    try {
      expect(status).toMatchObject({ type: 'feed_status', feed: 'none', broker: b.broker, status: 'unavailable' });
      expect(status!.message).toContain(`tickcast credentials set --user nocreds --broker ${b.broker}`);
      const refused = await client.request({ action: 'subscribe', symbols: RELIANCE, mode: 1 });
      expect(refused.subscriptions).toEqual([expect.objectContaining({ symbol: SYMBOL, exchange: EXCHANGE, status: 'error', message: status!.message })]);
      // The broker user's feed is not theirs: its ticks never reach them.
      const holder = await TestClient.authenticated(gw.url, keys.broker);
      try {
        expect(await holder.request({ action: 'subscribe', symbols: RELIANCE, mode: 1 })).toMatchObject({ status: 'success' });
        const step = b.steps[0]!;
        await sendUntil(upstream, step.frames, stepMessage(holder, b.broker, step));
      } finally {
        await holder.close();
      }
      await client.request({ action: 'ping' });
      expect(marketData(client)).toEqual([]);
    } finally {
      await client.close();
    }
  });
});

// ---- --workers 2 ------------------------------------------------------------------------------------

describe('--workers 2', () => {
  afterEach(() => killSpawnedProcesses());

  it("every native broker's user gets the broker's ticks, the simulator user the simulator's", async () => {
    const dir = makeTempDir();
    const upstreams = new Map<NativeBroker, Upstream>();
    try {
      for (const b of BROKERS) upstreams.set(b.broker, await b.start());
      const env: Record<string, string> = { API_KEY_PEPPER: TEST_PEPPER, TICKCAST_DEV_KEY: 'false', TICKCAST_SIM_RATE: '20' };
      for (const b of BROKERS) env[b.urlEnv] = upstreams.get(b.broker)!.url;
      // The gateway process's store, filled beforehand as `tickcast keys create`, `symbols import` and `credentials set` would.
      const apiKeys = new Map<string, string>();
      const { db, keys, fernetKey } = await openKeys(testConfig(dir, env));
      try {
        const credentials = new CredentialStore({ db, fernetKey });
        for (const b of BROKERS) {
          apiKeys.set(b.broker, (await keys.create(`${b.broker}user`, b.broker)).apiKey);
          await b.importSymbols(db);
          credentials.set(`${b.broker}user`, b.broker, b.credentials);
        }
        apiKeys.set('simulator', (await keys.create('simuser', 'simulator')).apiKey);
      } finally {
        db.close();
      }
      const gw = await startGatewayProcess({ dataDir: dir, env, args: ['--workers', '2'] });

      const simClient = await TestClient.authenticated(gw.url, apiKeys.get('simulator')!);
      expect(await simClient.request({ action: 'subscribe', symbols: RELIANCE, mode: 1 })).toMatchObject({ status: 'success' });
      for (const b of BROKERS) {
        const upstream = upstreams.get(b.broker)!;
        const client = await TestClient.authenticated(gw.url, apiKeys.get(b.broker)!);
        try {
          expect(await client.request({ action: 'subscribe', symbols: RELIANCE, mode: 1 })).toMatchObject({ status: 'success' });
          await waitUntil(() => upstream.holding(), `RELIANCE subscribed upstream`, WAIT_MS);
          const step = b.steps[0]!;
          expectStep(await sendUntil(upstream, step.frames, stepMessage(client, b.broker, step)), b.broker, step);
          upstream.expectAuthenticated();
          for (const m of marketData(client)) expect(m.broker).toBe(b.broker);
        } finally {
          await client.close();
        }
      }
      await simClient.marketData(SYMBOL, EXCHANGE);
      const brokerPrices = new Set(BROKERS.flatMap((b) => b.steps.map((s) => s.expected.ltp)));
      for (const m of marketData(simClient)) {
        expect(m.broker).toBe('simulator');
        expect(brokerPrices.has(m.data.ltp)).toBe(false);
      }
      await simClient.close();
    } finally {
      await killSpawnedProcesses();
      for (const upstream of upstreams.values()) await upstream.close();
      removeDir(dir);
    }
  });
});

// ---- OpenAlgo's database: the user id from BROKER_API_KEY ---------------------------------------------

describe("OpenAlgo's database (DATABASE_URL)", () => {
  it("a Shoonya user whose auth row has no user_id connects with BROKER_API_KEY's, as OpenAlgo's adapter does", async () => {
    const pepper = crypto.randomBytes(32).toString('hex');
    const fernetSalt = crypto.randomBytes(32).toString('hex');
    const openalgoDir = mkdtempSync(path.join(tmpdir(), 'tickcast-openalgo-'));
    const dataDir = mkdtempSync(path.join(tmpdir(), 'tickcast-test-'));
    const token = 'shoonya-openalgo-session';
    const fake = await FakeNoren.start({ connect: 'a', uid: NOREN_USER, token });
    let gw: RunningInstance | undefined;
    try {
      mkdirSync(path.join(openalgoDir, 'db'));
      const file = path.join(openalgoDir, 'db', 'openalgo.db');
      const openalgo = new OpenAlgoWriter('sqlite', file, pepper, fernetSalt);
      openalgo.createSchema();
      openalgo.apply([
        { op: 'auth', user: 'shoonyauser', broker: 'shoonya', token }, // no userId: OpenAlgo leaves it NULL for Shoonya
        { op: 'symtoken', rows: [{ symbol: SYMBOL, brsymbol: 'RELIANCE-EQ', exchange: EXCHANGE, brexchange: 'NSE', token: '2885' }] },
      ]);
      const apiKey = openalgo.newKey('shoonyauser');
      gw = await startGateway(
        testConfig(dataDir, {
          DATABASE_URL: `sqlite:///${file}`,
          API_KEY_PEPPER: pepper,
          FERNET_SALT: fernetSalt,
          BROKER_API_KEY: `${NOREN_USER}:::key`,
          TICKCAST_SHOONYA_URL: fake.url,
        }),
        { logger: silentLogger() },
      );
      const client = await TestClient.authenticated(gw.url, apiKey);
      try {
        expect(await client.request({ action: 'subscribe', symbols: RELIANCE, mode: 1 })).toMatchObject({ status: 'success' });
        const upstream = norenUpstream(fake, NOREN_USER, token);
        await waitUntil(() => upstream.holding(), 'RELIANCE subscribed upstream', WAIT_MS);
        upstream.expectAuthenticated();
        const step = norenStep('shoonya', 1, 'tf_nse_equity_reliance_ltp');
        expectStep(await sendUntil(upstream, step.frames, stepMessage(client, 'shoonya', step)), 'shoonya', step);
      } finally {
        await client.close();
      }
    } finally {
      await gw?.stop();
      await fake.close();
      rmSync(openalgoDir, { recursive: true, force: true });
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
