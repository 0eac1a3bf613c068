/**
 * KiteAdapter against a fake Kite ticker on 127.0.0.1, with in-memory symbols, credentials and
 * bus. Timings are small (silence 300 ms, backoff 50–200 ms); waits time out only to catch hangs.
 */
import { readFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import type { FeedStatusEvent } from '../../src/feed.js';
import type { BrokerCredentials, BrokerInstrument, BrokerName, CredentialSource, SymbolLookup } from '../../src/adapters/broker.js';
import { backoffDelay } from '../../src/adapters/backoff.js';
import { KiteAdapter, type KiteAdapterOptions, parseKiteToken } from '../../src/adapters/zerodha/kite-adapter.js';
import { systemClock } from '../../src/clock.js';
import { createLogger, silentLogger } from '../../src/observability/logger.js';
import { FakeKite, kiteFrame, kitePacket } from '../helpers/fake-kite.js';
import { MemoryPublisher, SLOW } from '../helpers/broker-kit.js';

interface Vector {
  name: string;
  hex: string;
  text?: string;
}

const VECTORS = JSON.parse(
  readFileSync(new URL('../fixtures/vectors/zerodha.json', import.meta.url), 'utf8'),
) as Vector[];

function vector(name: string): Vector {
  const found = VECTORS.find((v) => v.name === name);
  if (!found) throw new Error(`no vector ${name}`);
  return found;
}

const API_KEY = 'kite-app-key';
const ACCESS_TOKEN = 'access-token-day-1';

const RELIANCE = 738561;
const NIFTY = 256265;
const USDINR_CDS = 552195;
const NIFTY_FUT = 3388930;
const INFY = 408065;

class MemorySymbols implements SymbolLookup {
  private readonly map = new Map<string, BrokerInstrument>();
  add(exchange: string, symbol: string, token: string, brexchange = exchange): this {
    this.map.set(`${exchange}:${symbol}`, { token, brexchange });
    return this;
  }
  lookup(broker: BrokerName, exchange: string, symbol: string): BrokerInstrument | undefined {
    return broker === 'zerodha' ? this.map.get(`${exchange}:${symbol}`) : undefined;
  }
}

class MemoryCredentials implements CredentialSource {
  loads = 0;
  /** Reads that have returned. */
  settled = 0;
  /** While set, a read waits for it, then returns what was stored when the read began. */
  hold: Promise<void> | undefined;
  constructor(public current: BrokerCredentials | undefined) {}
  async load(): Promise<BrokerCredentials | undefined> {
    this.loads += 1;
    const stored = this.current && { ...this.current };
    if (this.hold) await this.hold;
    this.settled += 1;
    return stored;
  }
}

function symbols(): MemorySymbols {
  return new MemorySymbols()
    // OpenAlgo stores Zerodha tokens as instrument_token::::exchange_token.
    .add('NSE', 'RELIANCE', `${RELIANCE}::::2885`, 'NSE')
    .add('NSE_INDEX', 'NIFTY', String(NIFTY), 'NSE')
    .add('NSE_INDEX', 'NIFTY50', String(NIFTY), 'NSE')
    .add('CDS', 'USDINR24JUNFUT', String(USDINR_CDS))
    .add('NFO', 'NIFTY24JUNFUT', String(NIFTY_FUT))
    .add('NSE', 'INFY', String(INFY))
    .add('NSE', 'BROKEN', 'not-a-token');
}

interface Harness {
  fake: FakeKite;
  adapter: KiteAdapter;
  publisher: MemoryPublisher;
  credentials: MemoryCredentials;
  statuses: FeedStatusEvent[];
}

const running: Harness[] = [];

afterEach(async () => {
  for (const h of running.splice(0)) {
    await h.adapter.stop();
    await h.fake.close();
  }
});

type SetupOptions = Omit<Partial<KiteAdapterOptions>, 'credentials'> & {
  /** What the credential source returns (default: the fake's accepted pair). */
  credentials?: BrokerCredentials | undefined;
  /** Start and wait for 'live' (default true). */
  start?: boolean;
};

async function setup(setupOptions: SetupOptions = {}): Promise<Harness> {
  const { credentials: initial, start, ...options } = setupOptions;
  const fake = await FakeKite.start({ apiKey: API_KEY, accessToken: ACCESS_TOKEN, heartbeatMs: 50 });
  const publisher = new MemoryPublisher();
  const credentials = new MemoryCredentials(
    'credentials' in setupOptions ? initial : { apiKey: API_KEY, accessToken: ACCESS_TOKEN },
  );
  const adapter = new KiteAdapter({
    feed: 'kite',
    user: 'alice',
    url: fake.url,
    symbols: symbols(),
    credentials,
    publisher,
    clock: systemClock,
    logger: silentLogger(),
    silenceMs: 300,
    backoff: { initialMs: 50, maxMs: 200, jitter: 0.1 },
    authRetryMs: 200,
    batchDelayMs: 20,
    ...options,
  });
  const statuses: FeedStatusEvent[] = [];
  adapter.onStatus((event) => statuses.push(event));
  const harness: Harness = { fake, adapter, publisher, credentials, statuses };
  running.push(harness);
  if (start !== false) {
    await adapter.start();
    await adapterStatus(statuses, fake, 'live', 0);
  }
  return harness;
}

/** The client messages of one connection as plain {a, v} objects. */
function sentOn(fake: FakeKite, connection: number): Array<{ a: string; v: unknown }> {
  return fake.messages.filter((m) => m.connection === connection).map(({ a, v }) => ({ a, v }));
}

function parsedVector(name: string): unknown {
  return JSON.parse(vector(name).text!);
}

describe('KiteAdapter', () => {
  it('authenticates with api_key and access_token in the query and X-Kite-Version 3', async () => {
    const { fake, adapter, statuses } = await setup();
    expect(fake.upgrades).toHaveLength(1);
    expect(fake.upgrades[0]).toMatchObject({ apiKey: API_KEY, accessToken: ACCESS_TOKEN, version: '3', accepted: true });
    expect(adapter.status()).toBe('live');
    expect(statuses.map((s) => s.status)).toEqual(['reconnecting', 'live']);
    expect(statuses[1]).toEqual({ feed: 'kite', status: 'live' });
  });

  it('subscribes with subscribe + mode messages, grouped by mode, as pykiteconnect does', async () => {
    const { fake, adapter } = await setup();
    expect(await adapter.subscribe({ exchange: 'NSE', symbol: 'RELIANCE' }, 3, 5)).toEqual({ ok: true, depth: 5 });
    expect(await adapter.subscribe({ exchange: 'NSE_INDEX', symbol: 'NIFTY' }, 1, 5)).toEqual({ ok: true, depth: 5 });
    await fake.waitFor(() => fake.messages.length >= 4, 5000, 'subscription messages');
    // Exactly the messages the vectors captured from pykiteconnect (whitespace aside).
    expect(sentOn(fake, 1)).toEqual([0, 1, 2, 3].map((i) => parsedVector(`kite/request_resubscribe_after_reconnect#${i}`)));
  });

  it('answers unknown symbols with OpenAlgo’s message', async () => {
    const { adapter, fake } = await setup();
    expect(await adapter.subscribe({ exchange: 'NSE', symbol: 'NOPE' }, 2, 5)).toEqual({
      ok: false, message: 'Token not found for NOPE on NSE',
    });
    expect(await adapter.subscribe({ exchange: 'BSE', symbol: 'RELIANCE' }, 2, 5)).toMatchObject({ ok: false });
    expect(await adapter.subscribe({ exchange: 'NSE', symbol: 'BROKEN' }, 2, 5)).toEqual({
      ok: false, message: 'Token not found for BROKEN on NSE',
    });
    await new Promise((resolve) => setTimeout(resolve, 60));
    expect(fake.messages).toEqual([]);
  });

  it('sends 450 symbols in chunks of at most 200 tokens', async () => {
    const lookup = new MemorySymbols();
    for (let i = 0; i < 450; i++) lookup.add('NSE', `SYM${i}`, String(((1000 + i) << 8) | 1));
    const { fake, adapter } = await setup({ symbols: lookup });
    const results = await Promise.all(
      Array.from({ length: 450 }, (_, i) => adapter.subscribe({ exchange: 'NSE', symbol: `SYM${i}` }, 2, 5)),
    );
    expect(results.every((r) => r.ok)).toBe(true);
    await fake.waitFor(() => fake.held(1).size === 450 && fake.sent('mode').length === 3, 5000, '450 tokens held');
    expect(fake.sent('subscribe').map((m) => (m.v as number[]).length)).toEqual([200, 200, 50]);
    expect(fake.sent('mode').map((m) => (m.v as [string, number[]])[1].length)).toEqual([200, 200, 50]);
    expect([...fake.held(1).values()].every((mode) => mode === 'quote')).toBe(true);
    expect(fake.connections).toBe(1);
  });

  it('opens another connection when one is full, and refuses beyond the last', async () => {
    const lookup = new MemorySymbols();
    for (let i = 0; i < 130; i++) lookup.add('NFO', `F${i}`, String(((2000 + i) << 8) | 2));
    const { fake, adapter, statuses } = await setup({ symbols: lookup, maxTokensPerConnection: 50, maxConnections: 2 });
    const subscribe = (i: number) => adapter.subscribe({ exchange: 'NFO', symbol: `F${i}` }, 1, 5);
    for (let i = 0; i < 80; i++) expect(await subscribe(i)).toMatchObject({ ok: true });
    await fake.waitFor(() => fake.held(1).size === 50 && fake.held(2).size === 30, 5000, 'two connections');
    expect(fake.upgrades.every((u) => u.accepted && u.accessToken === ACCESS_TOKEN)).toBe(true);

    for (let i = 80; i < 100; i++) expect(await subscribe(i)).toMatchObject({ ok: true });
    const refused = await subscribe(100);
    expect(refused).toEqual({
      ok: false,
      message: 'Zerodha subscription limit reached (2 connections × 50 instruments); cannot add F100 on NFO',
    });
    await fake.waitFor(() => fake.held(2).size === 50, 5000, 'second connection full');
    // Growing capacity is not an outage.
    expect(statuses.map((s) => s.status)).toEqual(['reconnecting', 'live']);

    // Emptying the extra connection closes it; its room comes back.
    for (let i = 50; i < 100; i++) await adapter.unsubscribe({ exchange: 'NFO', symbol: `F${i}` });
    await fake.waitFor(() => fake.openConnections().length === 1, 5000, 'extra connection closed');
    expect(adapter.stats().connections).toBe(1);
    expect(await subscribe(100)).toMatchObject({ ok: true });
    await fake.waitFor(() => fake.connections === 3 && fake.held(3).size === 1, 5000, 'a fresh second connection');
  });

  it('upgrades and downgrades by re-sending mode, and unsubscribes', async () => {
    const { fake, adapter } = await setup();
    const stream = { exchange: 'NSE', symbol: 'RELIANCE' };
    await adapter.subscribe(stream, 1, 5);
    await fake.waitFor(() => fake.messages.length === 2, 5000, 'subscribe');
    await adapter.subscribe(stream, 3, 5);
    await fake.waitFor(() => fake.messages.length === 3, 5000, 'upgrade');
    await adapter.subscribe(stream, 2, 5);
    await fake.waitFor(() => fake.messages.length === 4, 5000, 'downgrade');
    await adapter.unsubscribe(stream);
    await fake.waitFor(() => fake.messages.length === 5, 5000, 'unsubscribe');
    expect(sentOn(fake, 1)).toEqual([
      { a: 'subscribe', v: [RELIANCE] },
      { a: 'mode', v: ['ltp', [RELIANCE]] },
      { a: 'mode', v: ['full', [RELIANCE]] },
      { a: 'mode', v: ['quote', [RELIANCE]] },
      { a: 'unsubscribe', v: [RELIANCE] },
    ]);

    // A subscribe undone within one batch never reaches Kite; unknown unsubscribes are ignored.
    await adapter.subscribe({ exchange: 'NSE', symbol: 'INFY' }, 2, 5);
    await adapter.unsubscribe({ exchange: 'NSE', symbol: 'INFY' });
    await adapter.unsubscribe({ exchange: 'NSE', symbol: 'NOPE' });
    await new Promise((resolve) => setTimeout(resolve, 80));
    expect(fake.messages).toHaveLength(5);
  });

  it('asks Kite for the highest mode of the streams sharing a token', async () => {
    const { fake, adapter } = await setup();
    await adapter.subscribe({ exchange: 'NSE_INDEX', symbol: 'NIFTY' }, 1, 5);
    await adapter.subscribe({ exchange: 'NSE_INDEX', symbol: 'NIFTY50' }, 2, 5);
    await fake.waitFor(() => fake.held(1).get(NIFTY) === 'quote', 5000, 'quote for the shared token');
    await adapter.unsubscribe({ exchange: 'NSE_INDEX', symbol: 'NIFTY50' });
    await fake.waitFor(() => fake.held(1).get(NIFTY) === 'ltp', 5000, 'back to ltp');
    expect(fake.sent('unsubscribe')).toHaveLength(0);
  });

  it('publishes each tick on its stream’s topic with OpenAlgo’s payload', async () => {
    const { fake, adapter, publisher } = await setup();
    await adapter.subscribe({ exchange: 'NSE', symbol: 'RELIANCE' }, 3, 5);
    await adapter.subscribe({ exchange: 'CDS', symbol: 'USDINR24JUNFUT' }, 3, 5);
    await adapter.subscribe({ exchange: 'NFO', symbol: 'NIFTY24JUNFUT' }, 3, 5);
    await adapter.subscribe({ exchange: 'NSE_INDEX', symbol: 'NIFTY' }, 2, 5);
    await adapter.subscribe({ exchange: 'NSE_INDEX', symbol: 'NIFTY50' }, 2, 5);
    await fake.waitFor(() => fake.held(1).size === 4, 5000, 'subscriptions');

    fake.sendHex(vector('kite/nse_eq_ltp_reliance').hex);
    fake.sendHex(vector('kite/cds_ltp_usdinr').hex);
    fake.sendHex(vector('kite/nfo_full_nifty_fut').hex);
    fake.sendHex(vector('kite/nse_index_quote_nifty50').hex);
    fake.send(kiteFrame([kitePacket(184, {
      instrument_token: USDINR_CDS, last_price: 834525000, close: 834100000, last_trade_time: 1718178368, oi: 4242,
      depth: { buy: [{ quantity: 10, price: 834520000, orders: 2 }], sell: [{ quantity: 20, price: 834530000, orders: 3 }] },
    })]));
    fake.sendHex(vector('kite/nse_eq_ltp_infy').hex); // nobody holds INFY
    await fake.waitFor(() => publisher.messages.length >= 6, 5000, 'published ticks');
    await new Promise((resolve) => setTimeout(resolve, 30));

    expect(publisher.messages.map((m) => m.topic).sort()).toEqual([
      'kite|CDS_USDINR24JUNFUT_DEPTH',
      'kite|CDS_USDINR24JUNFUT_LTP',
      'kite|NFO_NIFTY24JUNFUT_DEPTH',
      'kite|NSE_INDEX_NIFTY50_QUOTE',
      'kite|NSE_INDEX_NIFTY_QUOTE',
      'kite|NSE_RELIANCE_LTP',
    ].sort());
    expect(publisher.last('kite|NSE_RELIANCE_LTP')).toMatchObject({ symbol: 'RELIANCE', exchange: 'NSE', mode: 'ltp', ltp: 2950.55 });
    expect(publisher.last('kite|CDS_USDINR24JUNFUT_LTP')).toMatchObject({ ltp: 83.4525 });
    expect(publisher.last('kite|NFO_NIFTY24JUNFUT_DEPTH')).toMatchObject({
      mode: 'full', ltp: 23390, oi: 12845325, open_interest: 12845325, ltt: 1718178368000,
    });
    const cdsDepth = publisher.last('kite|CDS_USDINR24JUNFUT_DEPTH')!;
    expect(cdsDepth).toMatchObject({ ltp: 83.4525, close: 83.41, change: 0.0425, oi: 4242 });
    expect(cdsDepth.depth.buy[0]).toEqual({ price: 83.452, quantity: 10, orders: 2 });
    expect(cdsDepth.depth.sell[0]).toEqual({ price: 83.453, quantity: 20, orders: 3 });
    expect(publisher.last('kite|NSE_INDEX_NIFTY_QUOTE')).toMatchObject({
      exchange: 'NSE_INDEX', symbol: 'NIFTY', open: 23344.45, close: 23264.85, change: 58.1, change_percent: 0.25,
    });
    expect(publisher.last('kite|NSE_INDEX_NIFTY50_QUOTE')).toMatchObject({ symbol: 'NIFTY50', ltp: 23322.95 });
    expect(adapter.stats()).toMatchObject({ ticks: 6, published: 6, unroutedTicks: 1, invalidFrames: 0 });
  });

  it('reconnects after a drop with backoff, fresh credentials and a full resubscription', async () => {
    const { fake, adapter, credentials, statuses } = await setup();
    await adapter.subscribe({ exchange: 'NSE', symbol: 'RELIANCE' }, 3, 5);
    await adapter.subscribe({ exchange: 'NSE_INDEX', symbol: 'NIFTY' }, 1, 5);
    await fake.waitFor(() => fake.held(1).size === 2, 5000, 'subscriptions');
    const loadsBefore = credentials.loads;

    // The user logs in again: a new access token, and Kite stops taking the old one.
    credentials.current = { apiKey: API_KEY, accessToken: 'access-token-day-2' };
    fake.accessToken = 'access-token-day-2';
    const from = statuses.length;
    const droppedAt = Date.now();
    fake.drop();

    expect((await adapterStatus(statuses, fake, 'reconnecting', from)).message).toMatch(/reconnecting in/);
    await adapterStatus(statuses, fake, 'live', from);
    expect(fake.connections).toBe(2);
    const upgrade = fake.upgrades.at(-1)!;
    expect(upgrade).toMatchObject({ accessToken: 'access-token-day-2', accepted: true });
    // First retry after initialMs 50 ± 10 %.
    expect(upgrade.at - droppedAt).toBeGreaterThanOrEqual(40);
    expect(credentials.loads).toBe(loadsBefore + 1);
    await fake.waitFor(() => sentOn(fake, 2).length === 4, 5000, 'resubscription');
    expect(sentOn(fake, 2)).toEqual([0, 1, 2, 3].map((i) => parsedVector(`kite/request_resubscribe_after_reconnect#${i}`)));
  });

  it('backs off exponentially, with jitter, up to the cap', () => {
    const settings = { initialMs: 1000, maxMs: 60_000, jitter: 0.2 };
    const at = (random: number) => (n: number) => backoffDelay(n, { ...settings, random: () => random });
    expect([0, 1, 2, 3, 4, 5, 6, 7, 30, 1000].map(at(0.5))).toEqual([1000, 2000, 4000, 8000, 16000, 32000, 60000, 60000, 60000, 60000]);
    expect(at(0)(0)).toBe(800);
    expect(at(0.9999)(0)).toBe(1200);
    expect(at(0.9999)(10)).toBe(60000);
  });

  it('reconnects a silent connection after silenceMs', async () => {
    const { fake, adapter, statuses } = await setup();
    await adapter.subscribe({ exchange: 'NSE', symbol: 'RELIANCE' }, 2, 5);
    await fake.waitFor(() => fake.held(1).size === 1, 5000, 'subscription');
    const from = statuses.length;
    const silentAt = Date.now();
    fake.goSilent();
    const lost = await adapterStatus(statuses, fake, 'reconnecting', from);
    expect(lost.message).toMatch(/no data from Zerodha for 300 ms/);
    expect(Date.now() - silentAt).toBeGreaterThanOrEqual(250);
    fake.resume();
    await adapterStatus(statuses, fake, 'live', from);
    await fake.waitFor(() => fake.held(fake.connections).get(RELIANCE) === 'quote', 5000, 'resubscribed');
    expect(fake.connections).toBeGreaterThanOrEqual(2);
  });

  it('reports a refused access token (HTTP 403) as down, and recovers after a re-login', async () => {
    const logLines: string[] = [];
    const { fake, adapter, credentials, statuses } = await setup({
      credentials: { apiKey: API_KEY, accessToken: 'expired-token' },
      start: false,
      logger: createLogger('trace', { write: (line: string) => void logLines.push(line) }),
    });
    await adapter.start();
    const down = await adapterStatus(statuses, fake, 'down', 0);
    expect(down.message).toMatch(/^Zerodha refused the access token \(HTTP 403\)/);
    expect(adapter.status()).toBe('down');
    expect(fake.upgrades[0]).toMatchObject({ accessToken: 'expired-token', accepted: false });

    // Retries keep it down (no flapping), until the new token arrives.
    await fake.waitFor(() => fake.upgrades.length >= 2, 5000, 'a retry');
    credentials.current = { apiKey: API_KEY, accessToken: ACCESS_TOKEN };
    await adapterStatus(statuses, fake, 'live', 0);
    expect(statuses.map((s) => s.status)).toEqual(['reconnecting', 'down', 'live']);

    // The refusal is logged, the secrets never are.
    fake.drop();
    await adapterStatus(statuses, fake, 'reconnecting', 3);
    await adapterStatus(statuses, fake, 'live', 3);
    expect(logLines.some((line) => line.includes('Zerodha refused the access token'))).toBe(true);
    for (const secret of ['expired-token', ACCESS_TOKEN, API_KEY]) {
      expect(logLines.filter((line) => line.includes(secret))).toEqual([]);
    }
  });

  it('treats a Kite text error about the token as a refusal', async () => {
    const { fake, statuses } = await setup();
    const from = statuses.length;
    fake.sendText(vector('kite/text_error').text!);
    const down = await adapterStatus(statuses, fake, 'down', from);
    expect(down.message).toMatch(/^Zerodha refused the access token \(Kite said "Invalid access token\."\)/);
    // The credentials are fine for the fake, so the slow retry brings it back.
    await adapterStatus(statuses, fake, 'live', from);
  });

  it('is down without credentials, and connects once they appear', async () => {
    const { fake, adapter, credentials, statuses } = await setup({ credentials: undefined, start: false });
    await adapter.start();
    const down = await adapterStatus(statuses, fake, 'down', 0);
    expect(down.message).toMatch(/No Zerodha credentials/);
    expect(fake.upgrades).toHaveLength(0);
    credentials.current = { apiKey: API_KEY, accessToken: ACCESS_TOKEN };
    await adapterStatus(statuses, fake, 'live', 0);
  });

  it('counts garbage frames and keeps working', async () => {
    const { fake, adapter, publisher } = await setup();
    await adapter.subscribe({ exchange: 'NSE', symbol: 'RELIANCE' }, 1, 5);
    await fake.waitFor(() => fake.held(1).size === 1, 5000, 'subscription');

    fake.send(Buffer.alloc(0));
    fake.send(Buffer.from('ffff0008', 'hex'));
    fake.send(Buffer.from('0001ffff00000000', 'hex'));
    fake.send(Buffer.from('deadbeefcafebabe0102030405', 'hex'));
    fake.sendHex(vector('kite/unknown_length_packet_skipped').hex);
    fake.sendText('this is not json');
    fake.sendText({ type: 'message', data: 'Broker message / alert text' });
    fake.sendText(vector('kite/text_order_update').text!);
    fake.sendHex(vector('kite/nse_eq_ltp_reliance').hex);

    await fake.waitFor(() => publisher.messages.length >= 2, 5000, 'ticks after garbage');
    const stats = adapter.stats();
    expect(stats.invalidFrames).toBeGreaterThanOrEqual(4);
    expect(stats.rejectedPackets).toBeGreaterThanOrEqual(1);
    expect(stats.textFrames).toBe(3);
    expect(publisher.messages.map((m) => m.topic)).toEqual(['kite|NSE_RELIANCE_LTP', 'kite|NSE_RELIANCE_LTP']);
    expect(adapter.status()).toBe('live');
    expect(fake.connections).toBe(1);
  });

  // Subscribing before start, stop and a restart: the broker contract suite (broker-contract.test.ts).
});

describe('KiteAdapter after a re-login (credentialsChanged)', () => {
  // Every retry is a minute away here (SLOW), so reconnecting within the 5 s hang bound of the
  // waits proves the reconnect came at once rather than from a backoff or the slow retry.

  // A re-login after a refusal and while open: the broker contract suite (broker-contract.test.ts).

  it('never dials with credentials read before the change', async () => {
    const { fake, adapter, credentials, publisher, statuses } = await setup({ ...SLOW, credentials: { apiKey: API_KEY, accessToken: 'expired-token' }, start: false });
    let release!: () => void;
    credentials.hold = new Promise<void>((resolve) => (release = resolve));
    await adapter.subscribe({ exchange: 'NSE', symbol: 'RELIANCE' }, 1, 5);
    await adapter.start();
    await fake.waitFor(() => credentials.loads === 1, 5000, 'the first read');

    // The re-login lands while that read is still in flight; the new read is not held.
    credentials.hold = undefined;
    credentials.current = { apiKey: API_KEY, accessToken: ACCESS_TOKEN };
    adapter.credentialsChanged();
    await adapterStatus(statuses, fake, 'live', 0);
    await fake.waitFor(() => fake.held(1).get(RELIANCE) === 'ltp', 5000, 'subscription');

    // Now the stale read returns the old token. Dialing with it would take the connection's
    // place, and the ticks of the good socket would be dropped as a stale socket's.
    release();
    await fake.waitFor(() => credentials.settled === 2, 5000, 'the stale read to return');
    fake.sendHex(vector('kite/nse_eq_ltp_reliance').hex, 1);
    await fake.waitFor(() => publisher.last('kite|NSE_RELIANCE_LTP'), 5000, 'a tick from the connection');
    expect(adapter.status()).toBe('live');
    expect(fake.upgrades.map((u) => u.accessToken)).toEqual([ACCESS_TOKEN]);
  });

  it('does nothing before start or after stop', async () => {
    const { adapter, credentials, fake, statuses } = await setup({ start: false });
    adapter.credentialsChanged();
    expect(credentials.loads).toBe(0);
    await adapter.start();
    await adapterStatus(statuses, fake, 'live', 0);
    await adapter.stop();
    const loads = credentials.loads;
    adapter.credentialsChanged();
    expect(credentials.loads).toBe(loads);
    expect(adapter.status()).toBe('down');
  });
});

describe('parseKiteToken', () => {
  it('takes the instrument token from OpenAlgo’s stored form', () => {
    expect(parseKiteToken('738561::::2885')).toBe(738561);
    expect(parseKiteToken('256265')).toBe(256265);
    for (const bad of ['', 'abc', '::::2885', '-1', '0', '4294967296', '1.5']) expect(parseKiteToken(bad)).toBeUndefined();
  });
});

/** Resolves with the first `status` event at or after index `from`. */
function adapterStatus(statuses: FeedStatusEvent[], fake: FakeKite, status: FeedStatusEvent['status'], from: number): Promise<FeedStatusEvent> {
  return fake.waitFor(() => statuses.slice(from).find((e) => e.status === status), 5000, `status ${status}`);
}
