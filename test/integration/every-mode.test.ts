/**
 * Every mode a client holds, on every path a tick can take: the same scenario — a client holding
 * LTP, Quote and Depth of one symbol (as OpenAlgo's SDK subscribes), a MessagePack + batch + seq
 * client holding LTP and Depth, and a late Quote subscriber — over the in-process simulator, a
 * user's own Zerodha feed, external ZeroMQ publishers (one topic per tick, and OpenAlgo's
 * adapters' topic per mode), an out-of-process adapter, `--workers 2` and a NATS node.
 */
import { createReadStream } from 'node:fs';
import { unpack } from 'msgpackr';
import WebSocket from 'ws';
import { afterEach, describe, expect, it } from 'vitest';
import { CredentialStore } from '../../src/auth/credentials.js';
import { ZmqPublisher } from '../../src/bus/zeromq.js';
import { openKeys } from '../../src/wiring.js';
import { importZerodhaCsv } from '../../src/symbols/import-zerodha.js';
import { killSpawnedProcesses, makeTempDir, removeDir, startAdapterCliProcess, startGatewayProcess } from '../helpers/cli.js';
import { type Message, TestClient, waitUntil } from '../helpers/client.js';
import { FakeKite, kiteFrame, kitePacket } from '../helpers/fake-kite.js';
import { type TestInstance, startTestInstance } from '../helpers/instance.js';
import { createKeyWithCli, startSimAdapter, useNatsFleet } from '../helpers/nats-fleet.js';

const LTP_KEYS = ['exchange', 'ltp', 'ltt', 'mode', 'symbol', 'timestamp'];
const WAIT_MS = 20_000;

interface Target {
  url: string;
  apiKey: string;
  exchange: string;
  symbol: string;
  /** The broker the envelopes name. */
  broker: string;
}

/** A client that negotiates MessagePack, batches and seq, and flattens what it receives. */
class PackedClient {
  readonly messages: Message[] = [];
  private replies: Array<(m: Message) => void> = [];

  private constructor(private readonly socket: WebSocket) {
    socket.on('message', (data: Buffer, binary: boolean) => {
      const decoded = binary ? unpack(data) : JSON.parse(data.toString());
      for (const message of Array.isArray(decoded) ? decoded : [decoded]) {
        if (message.type === 'market_data' || message.type === 'feed_status') this.messages.push(message);
        else this.replies.shift()?.(message);
      }
    });
  }

  static async connect(url: string, apiKey: string): Promise<PackedClient> {
    const socket = new WebSocket(url);
    await new Promise((resolve, reject) => socket.once('open', resolve).once('error', reject));
    const client = new PackedClient(socket);
    const reply = await client.request({ action: 'authenticate', api_key: apiKey, encoding: 'msgpack', batch: true, seq: true });
    expect(reply).toMatchObject({ type: 'auth', status: 'success' });
    return client;
  }

  request(message: object): Promise<Message> {
    return new Promise((resolve) => {
      this.replies.push(resolve);
      this.socket.send(JSON.stringify(message));
    });
  }

  close(): void {
    this.socket.terminate();
  }
}

const ofMode = (messages: readonly Message[], mode: number): Message[] => messages.filter((m) => m.type === 'market_data' && m.mode === mode);

/** The scenario every path runs. */
async function everyMode(target: Target): Promise<void> {
  const { exchange, symbol } = target;
  const symbols = [{ exchange, symbol }];
  const sdk = await TestClient.authenticated(target.url, target.apiKey);
  const packed = await PackedClient.connect(target.url, target.apiKey);
  try {
    // As OpenAlgo's SDK does: one subscribe per mode, the same symbol in each.
    for (const mode of [1, 2, 3]) expect(await sdk.request({ action: 'subscribe', symbols, mode })).toMatchObject({ status: 'success' });
    for (const mode of [1, 3]) expect(await packed.request({ action: 'subscribe', symbols, mode })).toMatchObject({ status: 'success' });

    await waitUntil(
      () => [1, 2, 3].every((m) => ofMode(sdk.messages, m).length >= 4) && [1, 3].every((m) => ofMode(packed.messages, m).length >= 4),
      `every mode's messages on both clients (JSON ${[1, 2, 3].map((m) => ofMode(sdk.messages, m).length)}, packed ${[1, 3].map((m) => ofMode(packed.messages, m).length)})`,
      WAIT_MS,
    );
    const [ltp, quote, depth] = [1, 2, 3].map((m) => ofMode(sdk.messages, m));
    for (const message of sdk.messages.filter((m) => m.type === 'market_data')) {
      expect(message).toMatchObject({ exchange, symbol, broker: target.broker });
    }
    // Each mode's message carries that mode's fields: an LTP message has what an LTP tick has.
    for (const message of ltp!) expect(Object.keys(message.data).sort()).toEqual(LTP_KEYS);
    for (const message of quote!) {
      expect(message.data).not.toHaveProperty('depth');
      expect(message.data).toHaveProperty('volume');
    }
    for (const message of depth!) expect(message.data.depth.buy.length).toBeGreaterThan(0);
    // One LTP per tick, never two, and the same price the Depth message of that tick has.
    const ltpAt = new Map<number, number>();
    for (const message of ltp!) {
      expect(ltpAt.has(message.data.timestamp), `two LTP messages stamped ${message.data.timestamp}`).toBe(false);
      ltpAt.set(message.data.timestamp, message.data.ltp);
    }
    const matched = depth!.filter((message) => ltpAt.has(message.data.timestamp));
    expect(matched.length).toBeGreaterThanOrEqual(depth!.length - 2); // the first and last may straddle the window
    for (const message of matched) expect(ltpAt.get(message.data.timestamp)).toBe(message.data.ltp);

    // MessagePack, batched, seq: both modes, each numbered on its own without a gap.
    for (const mode of [1, 3]) {
      const seqs = ofMode(packed.messages, mode).map((m) => m.seq as number);
      for (let i = 1; i < seqs.length; i++) expect(seqs[i]! - seqs[i - 1]!, `mode ${mode} seq ${seqs.join(',')}`).toBeLessThanOrEqual(1);
      expect(seqs.at(-1)! - seqs[0]!).toBeGreaterThanOrEqual(2);
    }
    for (const message of ofMode(packed.messages, 1)) expect(Object.keys(message.data).sort()).toEqual(LTP_KEYS);

    // A late Quote subscriber: its first message (the snapshot, or the next tick) is a Quote.
    const late = await TestClient.authenticated(target.url, target.apiKey);
    expect(await late.request({ action: 'subscribe', symbols, mode: 2 })).toMatchObject({ status: 'success' });
    const first = await late.next((m) => m.type === 'market_data', WAIT_MS);
    expect(first.mode).toBe(2);
    expect(first.data).not.toHaveProperty('depth');
    await late.close();
  } finally {
    packed.close();
    await sdk.close();
  }
}

/** Kite-shaped payloads for a tick (what OpenAlgo's Zerodha adapter publishes per topic). */
function kiteStylePayloads(n: number): { ltp: string; quote: string; depth: string } {
  const ltp = (1400 + (n % 50) / 4).toFixed(2);
  const head = `{"symbol":"RELIANCE","exchange":"NSE","mode":"%MODE%","ltp":${ltp},"ltt":${1_700_000_000_000 + n},"timestamp":${1_700_000_000_000 + n}`;
  const quote = `,"volume":${1000 + n},"open":1400.0,"high":1415.0,"low":1395.0,"close":1398.0`;
  const book = ',"depth":{"buy":[{"price":1399.95,"quantity":10,"orders":1}],"sell":[{"price":1400.05,"quantity":5,"orders":2}]}';
  return {
    ltp: head.replace('%MODE%', 'ltp') + '}',
    quote: head.replace('%MODE%', 'quote') + quote + '}',
    depth: head.replace('%MODE%', 'full') + quote + book + '}',
  };
}

/** Publishes a tick every 40 ms until stopped: Depth only, or each mode's topic (LTP first). */
function publishTicks(endpoint: string, everyModesTopic: boolean): () => Promise<void> {
  const publisher = new ZmqPublisher({ endpoint, batch: false });
  let n = 0;
  const timer = setInterval(() => {
    const payloads = kiteStylePayloads(n++);
    if (everyModesTopic) {
      publisher.publish('NSE_RELIANCE_LTP', payloads.ltp);
      publisher.publish('NSE_RELIANCE_QUOTE', payloads.quote);
    }
    publisher.publish('NSE_RELIANCE_DEPTH', payloads.depth);
  }, 40);
  return async () => {
    clearInterval(timer);
    await publisher.close();
  };
}

afterEach(() => killSpawnedProcesses());

describe('every mode a client holds', () => {
  it('in-process simulator', async () => {
    const gw = await startTestInstance();
    try {
      await everyMode({ url: gw.url, apiKey: await gw.createKey('trader'), exchange: 'NSE', symbol: 'RELIANCE', broker: 'simulator' });
    } finally {
      await gw.stop();
    }
  });

  it("in-process broker feed (a user's own Zerodha session)", async () => {
    const kite = await FakeKite.start({ apiKey: 'kite-app-key', accessToken: 'kite-token-1' });
    const gw = await startTestInstance({ TICKCAST_KITE_URL: kite.url });
    let n = 0;
    const timer = setInterval(() => {
      n++;
      const price = 295_000 + (n % 40) * 5; // paise
      const packet = kitePacket(184, {
        instrument_token: 738561,
        last_price: price,
        last_traded_quantity: 3,
        average_traded_price: 294_900,
        volume_traded: 10_000 + n,
        total_buy_quantity: 500,
        total_sell_quantity: 600,
        open: 294_000,
        high: 296_000,
        low: 293_000,
        close: 292_115,
        last_trade_time: 1_700_000_000 + n,
        exchange_timestamp: 1_700_000_000 + n,
        depth: { buy: [{ quantity: 10, price: price - 5, orders: 1 }], sell: [{ quantity: 20, price: price + 5, orders: 2 }] },
      });
      kite.send(kiteFrame([packet]));
    }, 40);
    try {
      const apiKey = await gw.createKey('kiteuser', 'zerodha');
      const { db, fernetKey } = await openKeys(gw.config);
      await importZerodhaCsv(db, createReadStream(new URL('../fixtures/kite-instruments.csv', import.meta.url)));
      new CredentialStore({ db, fernetKey }).set('kiteuser', 'zerodha', { apiKey: 'kite-app-key', accessToken: 'kite-token-1' });
      db.close();
      await everyMode({ url: gw.url, apiKey, exchange: 'NSE', symbol: 'RELIANCE', broker: 'zerodha' });
    } finally {
      clearInterval(timer);
      await gw.stop();
      await kite.close();
    }
  });

  for (const everyModesTopic of [false, true]) {
    it(`external ZeroMQ publisher, ${everyModesTopic ? "every mode's topic (OpenAlgo's adapters)" : 'one topic per tick'}`, async () => {
      const gw: TestInstance = await startTestInstance({ TICKCAST_FEED: 'none' });
      const stop = publishTicks(gw.busEndpoint, everyModesTopic);
      try {
        await everyMode({ url: gw.url, apiKey: await gw.createKey('trader', 'fyers'), exchange: 'NSE', symbol: 'RELIANCE', broker: 'fyers' });
      } finally {
        await stop();
        await gw.stop();
      }
    });
  }

  it('out-of-process adapter', async () => {
    const dir = makeTempDir();
    try {
      const gw = await startGatewayProcess({ dataDir: dir, args: ['--feed', 'none'] });
      const adapter = startAdapterCliProcess({ dataDir: dir, args: ['--sim-rate', '20'] });
      await adapter.ready;
      await everyMode({ url: gw.url, apiKey: gw.devKey!, exchange: 'NSE', symbol: 'RELIANCE', broker: 'simulator' });
    } finally {
      await killSpawnedProcesses();
      removeDir(dir);
    }
  });

  it('--workers 2', async () => {
    const dir = makeTempDir();
    try {
      const gw = await startGatewayProcess({ dataDir: dir, args: ['--workers', '2', '--sim-rate', '20'] });
      await everyMode({ url: gw.url, apiKey: gw.devKey!, exchange: 'NSE', symbol: 'RELIANCE', broker: 'simulator' });
    } finally {
      await killSpawnedProcesses();
      removeDir(dir);
    }
  });

  describe('on a NATS bus', () => {
    const fleet = useNatsFleet();

    it('a gateway node fed by an adapter process', async () => {
      const dir = makeTempDir();
      const env = fleet().env('modes', { TICKCAST_SIM_RATE: '20' });
      try {
        const apiKey = await createKeyWithCli(dir, env);
        await startSimAdapter(dir, env);
        const gw = await startGatewayProcess({ dataDir: dir, env });
        await everyMode({ url: gw.url, apiKey, exchange: 'NSE', symbol: 'RELIANCE', broker: 'simulator' });
      } finally {
        await killSpawnedProcesses();
        removeDir(dir);
      }
    });
  });
});
