/**
 * A few facts tickcast keeps about its own store (today: the fingerprint of the pepper its keys
 * were made with), in a small key → value table of the store's database. Created when first
 * needed rather than by a migration: older tickcast versions ignore the table instead of refusing
 * a database whose schema version they do not know.
 */
import type { Database } from './database.js';

const TABLE = `CREATE TABLE IF NOT EXISTS tickcast_meta (
  key TEXT PRIMARY KEY,
  value TEXT NOT NULL,
  updated_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP
)`;

export class StoreMetadata {
  readonly #get;
  readonly #set;
  readonly #delete;

  constructor(db: Database) {
    db.exec(TABLE);
    this.#get = db.prepare('SELECT value FROM tickcast_meta WHERE key = ?');
    this.#set = db.prepare(
      `INSERT INTO tickcast_meta (key, value) VALUES (?, ?)
       ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = CURRENT_TIMESTAMP`,
    );
    this.#delete = db.prepare('DELETE FROM tickcast_meta WHERE key = ?');
  }

  get(key: string): string | undefined {
    return (this.#get.get(key) as { value: string } | undefined)?.value;
  }

  set(key: string, value: string): void {
    this.#set.run(key, value);
  }

  delete(key: string): void {
    this.#delete.run(key);
  }
}
