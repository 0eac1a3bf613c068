/**
 * What an instance gives the dashboard's endpoints: the instruments its users can search (the
 * simulator's list, when it runs one, and the symbol master), the instance's own registry entries,
 * and the host names the routes answer to.
 */
import { configuredInstruments } from '../adapters/simulator/instruments.js';
import type { Config } from '../config/options.js';
import { allowedHostsOf } from './allowed-hosts.js';
import type { Registry } from '../registry/registry.js';
import type { Database } from '../store/database.js';
import type { DashboardSources } from './dashboard-routes.js';
import type { OpenAlgoDb } from '../store/openalgo-db.js';
import { OpenAlgoSymbolCatalog, SymbolCatalog } from './symbol-catalog.js';

/**
 * `simulatorBroker` is the broker name the in-process simulator's feed carries; the symbol master
 * searched is the instance's own store's, or OpenAlgo's with DATABASE_URL.
 */
export function dashboardSources(
  config: Config,
  stores: { own: Database | undefined; openalgo: OpenAlgoDb | undefined },
  registry: Registry,
  simulatorBroker: string,
): DashboardSources {
  // The configuration was validated at start, so the list parses; it is tiny, so parsing it again is free.
  const instruments = config.feed !== 'simulator' ? [] : configuredInstruments(config.simulator.symbols);
  const simulator = { broker: simulatorBroker, instruments };
  return {
    symbols: stores.openalgo ? new OpenAlgoSymbolCatalog(stores.openalgo, simulator) : new SymbolCatalog({ ...(stores.own ? { db: stores.own } : {}), simulator }),
    // The registry may hold every instance of the host or fleet; a key holder sees only their own.
    instances: async () => (await registry.list()).filter((e) => e.instance === config.instance),
    hosts: allowedHostsOf(config),
    origins: config.ws.allowedOrigins,
  };
}
