/** Users' broker feeds over OpenAlgo's database: symbols fetched per subscribe, and why a user has no feed. */
import { describe, expect, it } from 'vitest';
import type { Adapter, FeedStatusEvent, StreamRef, SubscribeResult } from '../../src/feed.js';
import type { BrokerInstrument, SymbolLookup } from '../../src/adapters/broker.js';
import { BROKER_FEED_BROKERS, brokerAdapterFactory, credentialChecks, lookingUpPerSubscribe } from '../../src/adapters/broker-factory.js';
import { CREDENTIAL_BROKERS, type CredentialPresence, type CredentialReader } from '../../src/auth/credentials.js';
import { NATIVE_BROKERS } from '../../src/brokers.js';
import type { BusPublisher } from '../../src/bus/bus.js';
import { systemClock } from '../../src/clock.js';
import type { SymbolMaster } from '../../src/symbols/master.js';
import { silentLogger } from '../../src/observability/logger.js';

/** An adapter that, as the Kite and Angel ones, looks its symbol up first thing in subscribe. */
function fakeAdapter(lookup: SymbolLookup, seen: Array<BrokerInstrument | undefined>): Adapter {
  const listeners: Array<(e: FeedStatusEvent) => void> = [];
  return {
    feed: 'zerodha.alice',
    broker: 'zerodha',
    start: async () => undefined,
    stop: async () => undefined,
    async subscribe(stream: StreamRef): Promise<SubscribeResult> {
      const found = lookup.lookup('zerodha', stream.exchange, stream.symbol);
      seen.push(found);
      await new Promise((resolve) => setImmediate(resolve));
      return found ? { ok: true } : { ok: false, message: `Token not found for ${stream.symbol} on ${stream.exchange}` };
    },
    unsubscribe: async () => undefined,
    status: () => 'live',
    onStatus: (l) => void listeners.push(l),
    credentialsChanged: () => undefined,
  };
}

describe('lookingUpPerSubscribe', () => {
  it('hands each subscribe the row read for it, and nothing outside a subscribe', async () => {
    const master = new Map<string, BrokerInstrument>([['NSE:RELIANCE', { token: '738561', brexchange: 'NSE' }]]);
    const reads: string[] = [];
    const seen: Array<BrokerInstrument | undefined> = [];
    let lookup: SymbolLookup | undefined;
    const adapter = lookingUpPerSubscribe(
      (l) => fakeAdapter((lookup = l), seen),
      {
        lookupAsync: async (_broker, exchange, symbol) => {
          reads.push(`${exchange}:${symbol}`);
          await new Promise((resolve) => setImmediate(resolve));
          return master.get(`${exchange}:${symbol}`);
        },
      },
      silentLogger(),
    );
    expect(adapter).toMatchObject({ feed: 'zerodha.alice', broker: 'zerodha' });
    expect(typeof adapter.credentialsChanged).toBe('function');

    const [reliance, nope] = await Promise.all([
      adapter.subscribe({ exchange: 'NSE', symbol: 'RELIANCE' }, 1, 5),
      adapter.subscribe({ exchange: 'NSE', symbol: 'NOPE' }, 1, 5),
    ]);
    expect(reliance).toEqual({ ok: true });
    expect(nope).toEqual({ ok: false, message: 'Token not found for NOPE on NSE' });
    expect(seen).toEqual([{ token: '738561', brexchange: 'NSE' }, undefined]);
    expect(lookup!.lookup('zerodha', 'NSE', 'RELIANCE')).toBeUndefined(); // nothing is kept

    master.set('NSE:RELIANCE', { token: '999', brexchange: 'NSE' }); // the master changed meanwhile
    await adapter.subscribe({ exchange: 'NSE', symbol: 'RELIANCE' }, 2, 5);
    expect(seen.at(-1)).toEqual({ token: '999', brexchange: 'NSE' });
    expect(reads).toEqual(['NSE:RELIANCE', 'NSE:NOPE', 'NSE:RELIANCE']);
  });

  it('answers a per-symbol error when the master cannot be read, and the adapter is not asked', async () => {
    const seen: Array<BrokerInstrument | undefined> = [];
    const adapter = lookingUpPerSubscribe((l) => fakeAdapter(l, seen), { lookupAsync: () => Promise.reject(new Error('server closed the connection')) }, silentLogger());
    expect(await adapter.subscribe({ exchange: 'NSE', symbol: 'RELIANCE' }, 1, 5)).toEqual({
      ok: false,
      message: "Symbol master unavailable: RELIANCE on NSE cannot be looked up now (OpenAlgo's database cannot be read); try again",
    });
    expect(seen).toEqual([]);
  });
});

describe('credentialChecks', () => {
  const presence = (p: Partial<CredentialPresence>): CredentialPresence => ({
    user: 'alice',
    broker: 'zerodha',
    accessToken: true,
    apiKey: true,
    feedToken: false,
    clientCode: true,
    revoked: false,
    readable: true,
    ...p,
  });
  const reader = (rows: Record<string, CredentialPresence | undefined>, remedy: string): CredentialReader => ({
    describe: async (user) => rows[user],
    sourceFor: () => ({ load: async () => undefined }),
    remedy,
  });

  it("names what is wrong with a user's session on OpenAlgo's database", async () => {
    const checks = credentialChecks(
      reader(
        {
          alice: presence({}),
          bob: presence({ user: 'bob', readable: false }),
          carol: presence({ user: 'carol', accessToken: false }),
          dave: presence({ user: 'dave', revoked: true }),
        },
        'log in to the broker again in OpenAlgo, which stores them afresh',
      ),
      true,
    );
    expect(await checks.hasCredentials('alice', 'zerodha')).toBe(true);
    expect(checks.whyNot!('alice', 'zerodha')).toBeUndefined();
    expect(await checks.hasCredentials('bob', 'zerodha')).toBe(false);
    expect(checks.whyNot!('bob', 'zerodha')).toBe(
      'No market data feed for zerodha user bob: their zerodha session tokens do not decrypt with this API_KEY_PEPPER and FERNET_SALT (they were stored under another one); log in to the broker again in OpenAlgo, which stores them afresh.',
    );
    expect(await checks.hasCredentials('carol', 'zerodha')).toBe(false);
    expect(checks.whyNot!('carol', 'zerodha')).toMatch(/^No market data feed for zerodha user carol: OpenAlgo holds no zerodha session for them\. Log in to the broker in OpenAlgo/);
    expect(await checks.hasCredentials('dave', 'zerodha')).toBe(false);
    expect(checks.whyNot!('dave', 'zerodha')).toMatch(/their broker session was ended \(logged out\)/);
    expect(await checks.hasCredentials('erin', 'zerodha')).toBe(false);
    expect(checks.whyNot!('erin', 'zerodha')).toMatch(/OpenAlgo holds no zerodha session/);
  });

  it("leaves tickcast's own wording for credentials not stored in its own store, and forgets a reason once usable", async () => {
    const rows: Record<string, CredentialPresence | undefined> = { bob: presence({ user: 'bob', readable: false }) };
    const checks = credentialChecks(reader(rows, 'store the credentials again (`tickcast credentials set`)'), false);
    expect(await checks.hasCredentials('carol', 'zerodha')).toBe(false);
    expect(checks.whyNot!('carol', 'zerodha')).toBeUndefined();
    expect(await checks.hasCredentials('bob', 'zerodha')).toBe(false);
    expect(checks.whyNot!('bob', 'zerodha')).toMatch(/store the credentials again/);
    rows.bob = presence({ user: 'bob' });
    expect(await checks.hasCredentials('bob', 'zerodha')).toBe(true);
    expect(checks.whyNot!('bob', 'zerodha')).toBeUndefined();
  });
});

describe('brokerAdapterFactory', () => {
  const none: CredentialReader = {
    describe: () => undefined,
    sourceFor: () => ({ load: async () => undefined }),
    remedy: 'store them',
  };
  const options = {
    symbols: { lookup: () => undefined, refresh: () => undefined } as unknown as SymbolMaster,
    credentials: none,
    publisher: { publish: () => undefined } as unknown as BusPublisher,
    clock: systemClock,
    logger: silentLogger(),
  };

  it('builds a native adapter for every native broker, the same list users are routed by and credentials are stored for', () => {
    expect([...BROKER_FEED_BROKERS].sort()).toEqual([...NATIVE_BROKERS].sort());
    expect([...CREDENTIAL_BROKERS].sort()).toEqual([...NATIVE_BROKERS].sort());
    const factory = brokerAdapterFactory(options);
    expect(factory.brokers).toEqual(BROKER_FEED_BROKERS);
    const expected: Record<string, string> = {
      zerodha: 'KiteAdapter', angel: 'AngelAdapter', dhan: 'DhanAdapter', upstox: 'UpstoxAdapter', shoonya: 'NorenAdapter', flattrade: 'NorenAdapter',
    };
    for (const broker of NATIVE_BROKERS) {
      const adapter = factory.create('alice', broker, `${broker}.alice`);
      expect(adapter).toMatchObject({ feed: `${broker}.alice`, broker });
      expect(adapter.constructor.name).toBe(expected[broker]);
    }
    expect(() => factory.create('alice', 'fyers', 'fyers.alice')).toThrow(/no native adapter for broker fyers/);
    expect(() => factory.create('alice', '__proto__', 'x.alice')).toThrow(/no native adapter/);
  });
});
