/**
 * What an instance gives the dashboard's endpoints: the instruments its users can search (the
 * simulator's list, when it runs one, and the symbol master) and the registry's entries.
 */
import { configuredInstruments } from '../adapters/simulator/instruments.js';
import type { Config } from '../config/options.js';
import type { Registry } from '../registry/registry.js';
import type { Database } from '../store/database.js';
import type { DashboardSources } from './dashboard-routes.js';
import { SymbolCatalog } from './symbol-catalog.js';

/**
 * `simulatorBroker` is the broker name the in-process simulator's feed carries; `db` is the
 * instance's own store (absent with DATABASE_URL, where the search covers the simulator's list).
 */
export function dashboardSources(config: Config, db: Database | undefined, registry: Registry, simulatorBroker: string): DashboardSources {
  // The configuration was validated at start, so the list parses; it is tiny, so parsing it again is free.
  const instruments = config.feed !== 'simulator' ? [] : configuredInstruments(config.simulator.symbols);
  return {
    symbols: new SymbolCatalog({ ...(db ? { db } : {}), simulator: { broker: simulatorBroker, instruments } }),
    instances: () => registry.list(),
  };
}
