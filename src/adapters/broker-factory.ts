/**
 * Builds a user's own native broker adapter (gateway/user-feeds.ts decides when): symbols
 * from the instance's symbol master, credentials read afresh from its store before every
 * connect, ticks published on the instance's bus. The store is tickcast's own, or OpenAlgo's
 * database in place (DATABASE_URL), whose symbol master is read per subscribe.
 */
import type { BusPublisher } from '../bus/bus.js';
import type { Clock } from '../clock.js';
import type { CredentialReader } from '../auth/credentials.js';
import type { Logger } from '../observability/logger.js';
import type { SymbolMaster } from '../symbols/master.js';
import type { AsyncSymbolLookup } from '../symbols/openalgo-master.js';
import type { Adapter, BrokerAdapterFactory } from '../feed.js';
import { AngelAdapter } from './angel/angel-adapter.js';
import type { BrokerFeedOptions, BrokerInstrument, BrokerName, SymbolLookup } from './broker.js';
import { DhanAdapter } from './dhan/dhan-adapter.js';
import type { SessionOptions } from './session/broker-feed.js';
import type { FrameSink } from './session/frame-sink.js';
import { NorenAdapter } from './noren/noren-adapter.js';
import { UpstoxAdapter } from './upstox/upstox-adapter.js';
import { KiteAdapter } from './zerodha/kite-adapter.js';

export interface BrokerFactoryOptions {
  /** tickcast's own master (in memory, refreshed after imports), or OpenAlgo's (read per subscribe). */
  symbols: SymbolMaster | AsyncSymbolLookup;
  credentials: CredentialReader;
  publisher: BusPublisher;
  clock: Clock;
  logger: Logger;
  /** Broker WebSocket URLs (tests point them at local fakes); each adapter's own default otherwise. */
  urls?: BrokerUrls;
  /** Set when the users' broker sessions are OpenAlgo's (DATABASE_URL): says so in messages. */
  managedByOpenAlgo?: boolean;
  /** Where the feeds' raw broker messages are recorded (TICKCAST_RECORD_FRAMES); none by default. */
  frames?: FrameSink;
}

/** Each broker's feed URL, and Dhan's second socket (its 20-level depth feed). */
export type BrokerUrls = Partial<Record<BrokerName, string>> & { dhanDepth?: string };

/** Each native broker's adapter (`url`, when given, replaces the adapter's default). */
const NATIVE_FEEDS: Readonly<Record<BrokerName, (options: BrokerFeedOptions & SessionOptions, urls: BrokerUrls) => Adapter>> = {
  zerodha: (options) => new KiteAdapter(options),
  angel: (options) => new AngelAdapter(options),
  dhan: (options, urls) => new DhanAdapter({ ...options, ...(urls.dhanDepth ? { depthUrl: urls.dhanDepth } : {}) }),
  upstox: (options) => new UpstoxAdapter(options),
  shoonya: (options) => new NorenAdapter({ ...options, dialect: 'shoonya' }),
  flattrade: (options) => new NorenAdapter({ ...options, dialect: 'flattrade' }),
};

/** Brokers a user's own feed can be built for (src/brokers.ts NATIVE_BROKERS names the same). */
export const BROKER_FEED_BROKERS = Object.keys(NATIVE_FEEDS) as readonly BrokerName[];

/** Whether `user` has usable credentials stored for `broker` (read from the store each time). */
export async function hasBrokerCredentials(credentials: CredentialReader, user: string, broker: string): Promise<boolean> {
  return (await credentialVerdict(credentials, user, broker, false)).usable;
}

/**
 * Whether `user` has usable credentials for `broker`, and if not, the sentence that tells them
 * why (undefined for tickcast's usual "none stored", which the gateway words itself).
 */
export async function credentialVerdict(
  credentials: CredentialReader,
  user: string,
  broker: string,
  managedByOpenAlgo: boolean,
): Promise<{ usable: boolean; reason?: string }> {
  const stored = await credentials.describe(user);
  if (stored !== undefined && !stored.revoked && stored.broker === broker && stored.accessToken && stored.readable) return { usable: true };
  const lead = `No market data feed for ${broker} user ${user}:`;
  if (stored !== undefined && stored.broker === broker && stored.accessToken && !stored.readable) {
    return {
      usable: false,
      reason: `${lead} their ${broker} session tokens do not decrypt with this API_KEY_PEPPER and FERNET_SALT (they were stored under another one); ${credentials.remedy}.`,
    };
  }
  if (!managedByOpenAlgo) return { usable: false };
  const state = stored?.revoked ? 'their broker session was ended (logged out)' : `OpenAlgo holds no ${broker} session for them`;
  return { usable: false, reason: `${lead} ${state}. Log in to the broker in OpenAlgo; the feed starts at their next authentication.` };
}

/**
 * hasCredentials and whyNot over one store: the reason of each user's last failed check is kept
 * (one entry per such user) for the feed status and per-symbol errors that follow it.
 */
export function credentialChecks(
  credentials: CredentialReader,
  managedByOpenAlgo: boolean,
): Pick<BrokerAdapterFactory, 'hasCredentials' | 'whyNot'> {
  const reasons = new Map<string, string>();
  const key = (user: string, broker: string): string => `${broker}\u0000${user}`;
  return {
    async hasCredentials(user, broker) {
      const verdict = await credentialVerdict(credentials, user, broker, managedByOpenAlgo);
      if (verdict.reason === undefined) reasons.delete(key(user, broker));
      else reasons.set(key(user, broker), verdict.reason);
      return verdict.usable;
    },
    whyNot: (user, broker) => reasons.get(key(user, broker)),
  };
}

export function brokerAdapterFactory(options: BrokerFactoryOptions): BrokerAdapterFactory {
  const { symbols, credentials, publisher, clock, logger, urls = {}, frames } = options;
  const perSubscribe = 'lookupAsync' in symbols ? symbols : undefined;
  // Subscribes are rare: checking for an import made since (`tickcast symbols import` in another
  // process) costs one small query each.
  const freshSymbols: SymbolLookup = {
    lookup(broker, exchange, symbol) {
      const master = symbols as SymbolMaster;
      master.refresh();
      return master.lookup(broker, exchange, symbol);
    },
  };
  return {
    brokers: BROKER_FEED_BROKERS,
    ...credentialChecks(credentials, options.managedByOpenAlgo ?? false),
    create(user, broker, feed): Adapter {
      if (!Object.hasOwn(NATIVE_FEEDS, broker)) throw new Error(`no native adapter for broker ${broker}`); // the gateway asks only for `brokers`
      const native = NATIVE_FEEDS[broker as BrokerName];
      const url = urls[broker as BrokerName];
      const build = (lookup: SymbolLookup): Adapter =>
        native(
          {
            feed,
            user,
            ...(url ? { url } : {}),
            symbols: lookup,
            credentials: credentials.sourceFor(user, broker as BrokerName),
            publisher,
            clock,
            logger: logger.child({ feed }),
            ...(frames ? { frames } : {}),
          },
          urls,
        );
      return perSubscribe ? lookingUpPerSubscribe(build, perSubscribe, logger.child({ feed })) : build(freshSymbols);
    },
  };
}

/**
 * An adapter whose symbol lookups are fetched from an asynchronous master before each subscribe
 * and handed to its (synchronous) lookup, which the adapters call at the start of subscribe.
 * The hand-off holds one entry, for the subscribe running now: nothing else is cached.
 */
export function lookingUpPerSubscribe(build: (lookup: SymbolLookup) => Adapter, master: AsyncSymbolLookup, logger: Logger): Adapter {
  let handOff: { broker: string; exchange: string; symbol: string; found: BrokerInstrument | undefined } | undefined;
  const adapter = build({
    lookup: (broker, exchange, symbol) =>
      handOff && handOff.broker === broker && handOff.exchange === exchange && handOff.symbol === symbol ? handOff.found : undefined,
  });
  const wrapped: Adapter = {
    feed: adapter.feed,
    broker: adapter.broker,
    start: () => adapter.start(),
    stop: () => adapter.stop(),
    async subscribe(stream, mode, depth) {
      let found: BrokerInstrument | undefined;
      try {
        found = await master.lookupAsync(adapter.broker as BrokerName, stream.exchange, stream.symbol);
      } catch (error) {
        logger.error({ err: (error as Error).message, exchange: stream.exchange, symbol: stream.symbol }, 'symbol master lookup failed');
        return { ok: false, message: `Symbol master unavailable: ${stream.symbol} on ${stream.exchange} cannot be looked up now (OpenAlgo's database cannot be read); try again` };
      }
      handOff = { broker: adapter.broker, exchange: stream.exchange, symbol: stream.symbol, found };
      try {
        return adapter.subscribe(stream, mode, depth); // reads the hand-off before its first await
      } finally {
        handOff = undefined;
      }
    },
    unsubscribe: (stream) => adapter.unsubscribe(stream),
    status: () => adapter.status(),
    onStatus: (listener) => adapter.onStatus(listener),
  };
  if (adapter.credentialsChanged) wrapped.credentialsChanged = () => adapter.credentialsChanged!();
  return wrapped;
}
