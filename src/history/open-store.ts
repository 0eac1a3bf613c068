/**
 * Opens the history store at a location: the one place a store is chosen (store.ts). PostgreSQL's
 * module, and with it the `pg` client, is loaded only when it is used.
 */
import type { HistoryLocation, HistoryStore, OpenOptions } from './store.js';

export async function openHistoryStore(location: HistoryLocation, options: OpenOptions = {}): Promise<HistoryStore> {
  if (location.kind === 'postgres') {
    const { PgHistoryStore } = await import('./pg-store.js');
    return PgHistoryStore.open(location.url, options);
  }
  const { SqliteHistoryStore } = await import('./sqlite-store.js');
  return new SqliteHistoryStore(location.dir, options);
}
