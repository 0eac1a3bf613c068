/**
 * Broker credentials per user, in the user's row of OpenAlgo's `auth` table (name = user),
 * Fernet-encrypted with the pepper-derived key exactly as OpenAlgo encrypts `auth.auth` and
 * `auth.feed_token`, so either program reads what the other wrote:
 *
 * | column           | holds                                                                    |
 * |------------------|--------------------------------------------------------------------------|
 * | `broker`         | `zerodha` / `angel` (also what routes the user's clients to a feed)      |
 * | `auth`           | encrypted; Zerodha: `api_key:access_token` (OpenAlgo's form), Angel: JWT |
 * | `feed_token`     | encrypted Angel feed token; NULL for Zerodha                             |
 * | `user_id`        | the broker client code, plain (as OpenAlgo keeps it)                     |
 * | `secret_api_key` | encrypted broker app API key (OpenAlgo uses this column only for Samco;  |
 * |                  | for Zerodha/Angel it reads the app key from its environment)              |
 *
 * Plaintext secrets leave this module only from get() and sources' load(); nothing here logs.
 */
import type { BrokerCredentials, BrokerName, CredentialSource } from '../adapters/broker.js';
import { ErrorCode, TickcastError } from '../errors.js';
import { type Database, migrate, STORE_MIGRATIONS } from '../store/database.js';
import { fernetDecrypt, fernetEncrypt } from './fernet.js';

export const CREDENTIAL_BROKERS: readonly BrokerName[] = ['zerodha', 'angel'];

export interface StoredCredentials {
  broker: BrokerName;
  credentials: BrokerCredentials;
}

/** What a user has stored, without any value: for `credentials show`. */
export interface CredentialPresence {
  user: string;
  broker: string;
  accessToken: boolean;
  apiKey: boolean;
  feedToken: boolean;
  clientCode: boolean;
  /** OpenAlgo's logout flag: revoked credentials are never handed out. */
  revoked: boolean;
  /** Whether the stored secrets decrypt with this instance's key (false: another pepper or salt). */
  readable: boolean;
}

export interface CredentialStoreOptions {
  db: Database;
  /** From deriveFernetKey(pepper, FERNET_SALT). */
  fernetKey: Buffer;
}

interface AuthRow {
  auth: string | null;
  feed_token: string | null;
  broker: string;
  user_id: string | null;
  secret_api_key: string | null;
  is_revoked: number | null;
}

const USER_MAX = 255;
const SECRET_MAX = 8192; // a JWT is ~1 KB
const PRINTABLE = /^[\u0021-\u007e]+$/; // tokens and keys are printable ASCII without spaces

export class CredentialStore {
  readonly #fernetKey: Buffer;
  readonly #sql;

  constructor({ db, fernetKey }: CredentialStoreOptions) {
    migrate(db, 'store', STORE_MIGRATIONS); // the auth table (a no-op on a database openDatabase opened)
    this.#fernetKey = fernetKey;
    this.#sql = {
      row: db.prepare('SELECT auth, feed_token, broker, user_id, secret_api_key, is_revoked FROM auth WHERE name = ?'),
      upsert: db.prepare(
        `INSERT INTO auth (name, auth, feed_token, broker, user_id, secret_api_key, is_revoked)
         VALUES (@name, @auth, @feedToken, @broker, @userId, @apiKey, 0)
         ON CONFLICT (name) DO UPDATE SET auth = excluded.auth, feed_token = excluded.feed_token,
           broker = excluded.broker, user_id = excluded.user_id, secret_api_key = excluded.secret_api_key, is_revoked = 0`,
      ),
      // The row stays: it also maps the user's API key to a broker (keys created with `tickcast keys`).
      clear: db.prepare(
        `UPDATE auth SET auth = '', feed_token = NULL, user_id = NULL, secret_api_key = NULL
         WHERE name = ? AND (auth <> '' OR feed_token IS NOT NULL OR user_id IS NOT NULL OR secret_api_key IS NOT NULL)`,
      ),
    };
  }

  /** Stores (replacing) the user's credentials for `broker`, which becomes the user's broker. */
  set(user: string, broker: BrokerName, creds: BrokerCredentials): void {
    checkUser(user);
    checkCredentials(broker, creds);
    const auth = broker === 'zerodha' ? `${creds.apiKey}:${creds.accessToken}` : creds.accessToken;
    this.#sql.upsert.run({
      name: user,
      auth: this.#encrypt(auth),
      feedToken: creds.feedToken ? this.#encrypt(creds.feedToken) : null,
      broker,
      userId: creds.clientCode ?? null,
      apiKey: this.#encrypt(creds.apiKey),
    });
  }

  /**
   * The user's credentials, read and decrypted now; undefined when there are none (no row, an
   * empty token, revoked, or a broker tickcast has no adapter for). Throws STORE_FAILED when they
   * do not decrypt with this instance's key.
   */
  get(user: string): StoredCredentials | undefined {
    const row = this.#sql.row.get(user) as AuthRow | undefined;
    if (!row || row.is_revoked || !row.auth) return undefined;
    const broker = row.broker as BrokerName;
    if (!CREDENTIAL_BROKERS.includes(broker)) return undefined;

    const auth = this.#decrypt(user, row.auth, 'access token');
    const storedKey = row.secret_api_key ? this.#decrypt(user, row.secret_api_key, 'API key') : '';
    let accessToken = auth;
    let apiKey = storedKey;
    if (broker === 'zerodha') {
      // OpenAlgo keeps `api_key:access_token`; its adapter takes the part after the colon.
      const colon = auth.indexOf(':');
      if (colon >= 0) {
        accessToken = auth.slice(colon + 1);
        apiKey ||= auth.slice(0, colon);
      }
    }
    const credentials: BrokerCredentials = { apiKey, accessToken };
    if (row.feed_token) credentials.feedToken = this.#decrypt(user, row.feed_token, 'feed token');
    if (row.user_id) credentials.clientCode = row.user_id;
    return { broker, credentials };
  }

  /** Which credentials the user has, never their values; undefined without an auth row. */
  describe(user: string): CredentialPresence | undefined {
    const row = this.#sql.row.get(user) as AuthRow | undefined;
    if (!row) return undefined;
    const secrets = [row.auth, row.feed_token, row.secret_api_key].filter((s): s is string => !!s);
    return {
      user,
      broker: row.broker,
      accessToken: !!row.auth,
      apiKey: !!row.secret_api_key || (row.broker === 'zerodha' && !!row.auth && (this.#tryDecrypt(row.auth) ?? '').includes(':')),
      feedToken: !!row.feed_token,
      clientCode: !!row.user_id,
      revoked: !!row.is_revoked,
      readable: secrets.every((s) => this.#tryDecrypt(s) !== null),
    };
  }

  /** Clears the user's credentials (the auth row and its broker stay). False if there were none. */
  remove(user: string): boolean {
    return this.#sql.clear.run(user).changes > 0;
  }

  /**
   * A source that reads the database on every load(), so a re-login stored by another process
   * is used at the next (re)connect. With `broker`, credentials for another broker read as none:
   * an adapter never sends one broker's token to another.
   */
  sourceFor(user: string, broker?: BrokerName): CredentialSource {
    return {
      load: async () => {
        const stored = this.get(user);
        if (!stored || (broker !== undefined && stored.broker !== broker)) return undefined;
        return stored.credentials;
      },
    };
  }

  #encrypt(text: string): string {
    return fernetEncrypt(this.#fernetKey, text);
  }

  #tryDecrypt(token: string): string | null {
    return fernetDecrypt(this.#fernetKey, token);
  }

  #decrypt(user: string, token: string, what: string): string {
    const text = this.#tryDecrypt(token);
    if (text === null) {
      throw new TickcastError(
        ErrorCode.STORE_FAILED,
        `the ${what} of user "${user}" does not decrypt with this instance's key: it was stored with another API_KEY_PEPPER or FERNET_SALT; store the credentials again`,
      );
    }
    return text;
  }
}

function checkUser(user: string): void {
  if (typeof user !== 'string' || user.trim() === '' || user.length > USER_MAX || /[\u0000-\u001f\u007f]/.test(user)) {
    throw new TickcastError(ErrorCode.USAGE, `user must be 1-${USER_MAX} printable characters`);
  }
}

function checkCredentials(broker: BrokerName, creds: BrokerCredentials): void {
  if (!CREDENTIAL_BROKERS.includes(broker)) {
    throw new TickcastError(ErrorCode.USAGE, `broker must be one of ${CREDENTIAL_BROKERS.join(', ')} (got "${String(broker)}")`);
  }
  checkSecret('API key', creds.apiKey);
  checkSecret('access token', creds.accessToken);
  if (creds.feedToken !== undefined) checkSecret('feed token', creds.feedToken);
  if (creds.clientCode !== undefined) checkSecret('client code', creds.clientCode);
  if (broker === 'zerodha') {
    if (creds.apiKey.includes(':')) throw new TickcastError(ErrorCode.USAGE, "a Kite API key has no ':' (OpenAlgo stores api_key:access_token)");
    if (creds.feedToken !== undefined) throw new TickcastError(ErrorCode.USAGE, 'Zerodha has no feed token (the access token is all Kite needs)');
  } else {
    const missing = [creds.feedToken === undefined ? 'feed token' : '', creds.clientCode === undefined ? 'client code' : ''].filter(Boolean);
    if (missing.length > 0) {
      throw new TickcastError(ErrorCode.USAGE, `Angel needs a ${missing.join(' and a ')} too (the feedToken and client code of the SmartAPI login)`);
    }
  }
}

function checkSecret(what: string, value: unknown): void {
  if (typeof value !== 'string' || value === '') throw new TickcastError(ErrorCode.USAGE, `the ${what} is empty`);
  if (value.length > SECRET_MAX) throw new TickcastError(ErrorCode.USAGE, `the ${what} is longer than ${SECRET_MAX} characters`);
  // Angel's JWT may come as "Bearer <jwt>", the Authorization header's form: allow that one space.
  const bare = what === 'access token' ? value.replace(/^Bearer /, '') : value;
  if (!PRINTABLE.test(bare)) throw new TickcastError(ErrorCode.USAGE, `the ${what} must be printable ASCII without spaces`);
}
