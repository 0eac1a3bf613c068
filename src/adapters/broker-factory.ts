/**
 * Builds a user's own Zerodha or Angel adapter (gateway/user-feeds.ts decides when): symbols
 * from the instance's symbol master, credentials read afresh from its store before every
 * connect, ticks published on the instance's bus.
 */
import type { BusPublisher } from '../bus/bus.js';
import type { Clock } from '../clock.js';
import type { CredentialStore } from '../auth/credentials.js';
import type { BrokerAdapterFactory } from '../gateway/user-feeds.js';
import type { Logger } from '../observability/logger.js';
import type { SymbolMaster } from '../symbols/master.js';
import type { Adapter } from './adapter.js';
import { AngelAdapter } from './angel/angel-adapter.js';
import type { BrokerName, SymbolLookup } from './broker.js';
import { KiteAdapter } from './zerodha/kite-adapter.js';

export interface BrokerFactoryOptions {
  symbols: SymbolMaster;
  credentials: CredentialStore;
  publisher: BusPublisher;
  clock: Clock;
  logger: Logger;
  /** Broker WebSocket URLs (tests point them at local fakes). */
  urls?: Partial<Record<BrokerName, string>>;
}

/** Brokers a user's own feed can be built for. */
export const BROKER_FEED_BROKERS: readonly BrokerName[] = ['zerodha', 'angel'];

/** Whether `user` has usable credentials stored for `broker` (read from the store each time). */
export function hasBrokerCredentials(credentials: CredentialStore, user: string, broker: string): boolean {
  const stored = credentials.describe(user);
  return stored !== undefined && !stored.revoked && stored.broker === broker && Boolean(stored.accessToken) && stored.readable;
}

export function brokerAdapterFactory(options: BrokerFactoryOptions): BrokerAdapterFactory {
  const { symbols, credentials, publisher, clock, logger, urls = {} } = options;
  // Subscribes are rare: checking for an import made since (`tickcast symbols import` in another
  // process) costs one small query each.
  const freshSymbols: SymbolLookup = {
    lookup(broker, exchange, symbol) {
      symbols.refresh();
      return symbols.lookup(broker, exchange, symbol);
    },
  };
  return {
    brokers: BROKER_FEED_BROKERS,
    hasCredentials: (user, broker) => hasBrokerCredentials(credentials, user, broker),
    create(user, broker, feed): Adapter {
      const common = {
        feed,
        user,
        symbols: freshSymbols,
        credentials: credentials.sourceFor(user, broker as BrokerName),
        publisher,
        clock,
        logger: logger.child({ feed }),
      };
      if (broker === 'zerodha') return new KiteAdapter({ ...common, ...(urls.zerodha ? { url: urls.zerodha } : {}) });
      return new AngelAdapter({ ...common, ...(urls.angel ? { url: urls.angel } : {}) });
    },
  };
}
