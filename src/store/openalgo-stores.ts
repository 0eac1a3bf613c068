/**
 * Everything an instance reads from OpenAlgo's own database when DATABASE_URL names it: API keys
 * (`api_keys`), users' brokers and broker sessions (`auth`) and the symbol master (`symtoken`).
 * Opened once at start, checked (reachable, OpenAlgo's schema, a pepper that opens what is
 * stored), and never written: tickcast keeps no state of its own there.
 */
import { OpenAlgoCredentials } from '../auth/credentials.js';
import { deriveFernetKey } from '../auth/fernet.js';
import { OpenAlgoKeyStore } from '../auth/openalgo-keys.js';
import { checkOpenAlgoPepper } from '../auth/store-pepper.js';
import type { DatabaseUrl } from '../config/database-url.js';
import { ErrorCode, TickcastError } from '../errors.js';
import { OpenAlgoSymbols } from '../symbols/openalgo-master.js';
import { type OpenAlgoDb, checkOpenAlgoSchema, openOpenAlgoDb } from './openalgo-db.js';

export interface OpenAlgoStores {
  db: OpenAlgoDb;
  keys: OpenAlgoKeyStore;
  credentials: OpenAlgoCredentials;
  symbols: OpenAlgoSymbols;
  pepper: string;
  fernetKey: Buffer;
}

export interface OpenAlgoStoreSettings {
  url: DatabaseUrl;
  /** API_KEY_PEPPER: OpenAlgo's, required (there is no pepper file to fall back on). */
  pepper: string | undefined;
  fernetSalt: string | undefined;
  /** OpenAlgo's BROKER_API_KEY, for what users' auth rows lack (OpenAlgoCredentials). */
  brokerApiKey?: string | undefined;
}

/**
 * Opens OpenAlgo's database read-only and checks it. Throws TickcastErrors naming the setting to
 * fix: DATABASE_UNREACHABLE (exit 1), CONFIG_INVALID, DATABASE_SCHEMA, PEPPER_MISMATCH (exit 2).
 */
export async function openOpenAlgoStores({ url, pepper, fernetSalt, brokerApiKey }: OpenAlgoStoreSettings): Promise<OpenAlgoStores> {
  if (pepper === undefined || pepper === '') {
    throw new TickcastError(ErrorCode.CONFIG_INVALID, "DATABASE_URL needs API_KEY_PEPPER set to OpenAlgo's pepper (from OpenAlgo's .env)");
  }
  const fernetKey = await deriveFernetKey(pepper, fernetSalt);
  const db = await openOpenAlgoDb(url);
  try {
    const schema = await checkOpenAlgoSchema(db);
    await checkOpenAlgoPepper(db, pepper, fernetKey, fernetSalt !== undefined && fernetSalt !== '');
    const keys = new OpenAlgoKeyStore({ db, fernetKey });
    await keys.refreshCount();
    return {
      db,
      keys,
      credentials: new OpenAlgoCredentials({
        db,
        fernetKey,
        hasSecretApiKey: schema.columns.auth.has('secret_api_key'),
        ...(brokerApiKey ? { brokerApiKey } : {}),
      }),
      symbols: new OpenAlgoSymbols(db),
      pepper,
      fernetKey,
    };
  } catch (error) {
    await db.close();
    throw error;
  }
}
