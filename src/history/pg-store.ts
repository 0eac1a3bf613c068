/** PostgreSQL history store: being built. */
import type { HistoryStore, OpenOptions } from './store.js';

export class PgHistoryStore {
  static async open(_url: string, _options: OpenOptions): Promise<HistoryStore> {
    throw new Error('the PostgreSQL history store is not built yet');
  }
}
