/**
 * Broker credentials per user, in the user's row of OpenAlgo's `auth` table (name = user),
 * Fernet-encrypted with the pepper-derived key exactly as OpenAlgo encrypts `auth.auth` and
 * `auth.feed_token`, so either program reads what the other wrote:
 *
 * | column           | holds                                                                    |
 * |------------------|--------------------------------------------------------------------------|
 * | `broker`         | one of CREDENTIAL_BROKERS (also what routes the user's clients to a feed) |
 * | `auth`           | encrypted; Zerodha: `api_key:access_token` (OpenAlgo's form), Angel: JWT, |
 * |                  | Dhan and Upstox: access token, Shoonya and Flattrade: session token       |
 * | `feed_token`     | encrypted Angel feed token; NULL for the others                          |
 * | `user_id`        | the broker client code, plain (as OpenAlgo keeps it)                     |
 * | `secret_api_key` | encrypted broker app API key (OpenAlgo uses this column only for Samco;  |
 * |                  | for the others it reads BROKER_API_KEY from its environment)              |
 *
 * The same rows are read from OpenAlgo's own database (DATABASE_URL) by OpenAlgoCredentials,
 * read-only: there OpenAlgo writes them at each broker login, and what a row lacks is taken
 * from OpenAlgo's BROKER_API_KEY as OpenAlgo's adapters take it (openAlgoBrokerKey).
 *
 * Plaintext secrets leave this module only from get() and sources' load(); nothing here logs.
 */
import type { BrokerCredentials, BrokerName, CredentialSource } from '../adapters/broker.js';
import { ErrorCode, TickcastError } from '../errors.js';
import { type Database, migrate, STORE_MIGRATIONS } from '../store/database.js';
import { type OpenAlgoDb, isTrue } from '../store/openalgo-db.js';
import { fernetDecrypt, fernetEncrypt } from './fernet.js';

/** What a broker's feed needs besides the access token; anything else given is refused. */
export interface CredentialNeeds {
  /** The broker as users know it, in messages. */
  label: string;
  apiKey: boolean;
  feedToken: boolean;
  /** What the broker calls the client code when the feed needs one (Dhan's client id). */
  clientCode?: string;
  /** What the access token is, for help texts. */
  token: string;
}

/** The brokers whose credentials tickcast stores and reads, with what each feed needs. */
export const CREDENTIAL_NEEDS = {
  zerodha: { label: 'Zerodha', apiKey: true, feedToken: false, token: 'the access token' },
  angel: { label: 'Angel', apiKey: true, feedToken: true, clientCode: 'client code', token: 'the JWT of the SmartAPI login' },
  dhan: { label: 'Dhan', apiKey: false, feedToken: false, clientCode: 'client id', token: 'the access token' },
  upstox: { label: 'Upstox', apiKey: false, feedToken: false, token: 'the access token' },
  shoonya: { label: 'Shoonya', apiKey: false, feedToken: false, clientCode: 'user id', token: 'the session token (susertoken)' },
  flattrade: { label: 'Flattrade', apiKey: false, feedToken: false, clientCode: 'user id', token: 'the session token' },
} as const satisfies Record<BrokerName, CredentialNeeds>;

export const CREDENTIAL_BROKERS = Object.keys(CREDENTIAL_NEEDS) as readonly BrokerName[];

function needsOf(broker: string): CredentialNeeds | undefined {
  return Object.hasOwn(CREDENTIAL_NEEDS, broker) ? (CREDENTIAL_NEEDS as Record<string, CredentialNeeds>)[broker] : undefined;
}

/**
 * OpenAlgo's BROKER_API_KEY as its streaming adapters read it: `first:::second` gives the client
 * code (Dhan's client id, Shoonya's and Flattrade's user id) and the app key; a plain value is
 * the app key (Angel's SmartAPI key). Pure.
 */
export function openAlgoBrokerKey(value: string | undefined): { apiKey?: string; clientCode?: string } {
  if (!value) return {};
  const at = value.indexOf(':::');
  if (at < 0) return { apiKey: value };
  const clientCode = value.slice(0, at);
  const apiKey = value.slice(at + 3);
  return { ...(clientCode ? { clientCode } : {}), ...(apiKey ? { apiKey } : {}) };
}

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

/** What the broker feeds read: whichever store holds the users' broker sessions. */
export interface CredentialReader {
  /** Which credentials the user has, never their values; undefined without an auth row. */
  describe(user: string): CredentialPresence | undefined | Promise<CredentialPresence | undefined>;
  /** Credentials read afresh at every load (see CredentialStore.sourceFor). */
  sourceFor(user: string, broker?: BrokerName): CredentialSource;
  /** What a user with unreadable credentials should do, for messages. */
  readonly remedy: string;
}

/** A user's `auth` row, as either database returns it. */
export interface AuthRow {
  auth: string | null;
  feed_token: string | null;
  broker: string;
  user_id: string | null;
  secret_api_key?: string | null;
  is_revoked: unknown;
}

/** What `credentials set` and `remove` are told with DATABASE_URL (exit 2). */
export const SESSIONS_MANAGED_BY_OPENALGO =
  "broker sessions are managed by OpenAlgo while DATABASE_URL points at its database: log in to (or out of) the broker in OpenAlgo, which stores them in its auth table (tickcast reads them from there, never writes them)";

const OWN_REMEDY = 'store the credentials again (`tickcast credentials set`)';
const OPENALGO_REMEDY = 'log in to the broker again in OpenAlgo, which stores them afresh';

const USER_MAX = 255;
const SECRET_MAX = 8192; // a JWT is ~1 KB
const PRINTABLE = /^[\u0021-\u007e]+$/; // tokens and keys are printable ASCII without spaces

export class CredentialStore implements CredentialReader {
  readonly #fernetKey: Buffer;
  readonly #sql;
  readonly remedy = OWN_REMEDY;

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
      apiKey: creds.apiKey ? this.#encrypt(creds.apiKey) : null,
    });
  }

  /**
   * The user's credentials, read and decrypted now; undefined when there are none (no row, an
   * empty token, revoked, or a broker tickcast has no adapter for). Throws STORE_FAILED when they
   * do not decrypt with this instance's key.
   */
  get(user: string): StoredCredentials | undefined {
    return credentialsFromRow(user, this.#sql.row.get(user) as AuthRow | undefined, this.#fernetKey, OWN_REMEDY);
  }

  /** Which credentials the user has, never their values; undefined without an auth row. */
  describe(user: string): CredentialPresence | undefined {
    return presenceFromRow(user, this.#sql.row.get(user) as AuthRow | undefined, this.#fernetKey);
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
}

export interface OpenAlgoCredentialsOptions {
  db: OpenAlgoDb;
  fernetKey: Buffer;
  /** Whether OpenAlgo's auth table has its secret_api_key column (older installations lack it). */
  hasSecretApiKey: boolean;
  /**
   * OpenAlgo's BROKER_API_KEY: the app key and client code its adapters take from the
   * environment rather than from the `auth` row (see openAlgoBrokerKey); a row's own values win.
   */
  brokerApiKey?: string;
}

/**
 * Users' broker sessions from OpenAlgo's own `auth` table, read at each use (OpenAlgo rewrites
 * the row at every broker login, and sets is_revoked at logout); never written.
 */
export class OpenAlgoCredentials implements CredentialReader {
  readonly #db: OpenAlgoDb;
  readonly #fernetKey: Buffer;
  readonly #select: string;
  readonly #fromEnvironment: { apiKey?: string; clientCode?: string };
  readonly remedy = OPENALGO_REMEDY;

  constructor({ db, fernetKey, hasSecretApiKey, brokerApiKey }: OpenAlgoCredentialsOptions) {
    this.#db = db;
    this.#fernetKey = fernetKey;
    this.#fromEnvironment = openAlgoBrokerKey(brokerApiKey);
    this.#select = `SELECT auth, feed_token, broker, user_id, is_revoked${hasSecretApiKey ? ', secret_api_key' : ''} FROM auth WHERE name = ?`;
  }

  async #row(user: string): Promise<AuthRow | undefined> {
    const [row] = await this.#db.all<AuthRow>(this.#select, [user]);
    return row;
  }

  /** As CredentialStore.get: undefined when there are none, STORE_FAILED when they do not decrypt. */
  async get(user: string): Promise<StoredCredentials | undefined> {
    return credentialsFromRow(user, await this.#row(user), this.#fernetKey, OPENALGO_REMEDY, this.#fromEnvironment);
  }

  async describe(user: string): Promise<CredentialPresence | undefined> {
    return presenceFromRow(user, await this.#row(user), this.#fernetKey);
  }

  sourceFor(user: string, broker?: BrokerName): CredentialSource {
    return {
      load: async () => {
        const stored = await this.get(user);
        if (!stored || (broker !== undefined && stored.broker !== broker)) return undefined;
        return stored.credentials;
      },
    };
  }
}

/**
 * A user's credentials from their auth row: undefined when there are none (no row, an empty
 * token, revoked, or a broker tickcast has no adapter for); STORE_FAILED when they do not decrypt.
 * `fallback` fills what the row lacks (OpenAlgo's BROKER_API_KEY).
 */
export function credentialsFromRow(
  user: string,
  row: AuthRow | undefined,
  fernetKey: Buffer,
  remedy: string,
  fallback: { apiKey?: string; clientCode?: string } = {},
): StoredCredentials | undefined {
  if (!row || isTrue(row.is_revoked) || !row.auth) return undefined;
  const broker = row.broker as BrokerName;
  if (!needsOf(broker)) return undefined;

  const decrypt = (token: string, what: string): string => {
    const text = fernetDecrypt(fernetKey, token);
    if (text === null) {
      throw new TickcastError(
        ErrorCode.STORE_FAILED,
        `the ${what} of user "${user}" does not decrypt with this instance's key: it was stored with another API_KEY_PEPPER or FERNET_SALT; ${remedy}`,
      );
    }
    return text;
  };
  const auth = decrypt(row.auth, 'access token');
  const storedKey = row.secret_api_key ? decrypt(row.secret_api_key, 'API key') : '';
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
  const credentials: BrokerCredentials = { apiKey: apiKey || (fallback.apiKey ?? ''), accessToken };
  if (row.feed_token) credentials.feedToken = decrypt(row.feed_token, 'feed token');
  const clientCode = row.user_id || fallback.clientCode;
  if (clientCode) credentials.clientCode = clientCode;
  return { broker, credentials };
}

/** Which credentials an auth row holds, never their values. */
export function presenceFromRow(user: string, row: AuthRow | undefined, fernetKey: Buffer): CredentialPresence | undefined {
  if (!row) return undefined;
  const tryDecrypt = (token: string): string | null => fernetDecrypt(fernetKey, token);
  const secrets = [row.auth, row.feed_token, row.secret_api_key].filter((s): s is string => !!s);
  return {
    user,
    broker: row.broker,
    accessToken: !!row.auth,
    apiKey: !!row.secret_api_key || (row.broker === 'zerodha' && !!row.auth && (tryDecrypt(row.auth) ?? '').includes(':')),
    feedToken: !!row.feed_token,
    clientCode: !!row.user_id,
    revoked: isTrue(row.is_revoked),
    readable: secrets.every((s) => tryDecrypt(s) !== null),
  };
}

function checkUser(user: string): void {
  if (typeof user !== 'string' || user.trim() === '' || user.length > USER_MAX || /[\u0000-\u001f\u007f]/.test(user)) {
    throw new TickcastError(ErrorCode.USAGE, `user must be 1-${USER_MAX} printable characters`);
  }
}

function checkCredentials(broker: BrokerName, creds: BrokerCredentials): void {
  const needs = needsOf(broker);
  if (!needs) {
    throw new TickcastError(ErrorCode.USAGE, `broker must be one of ${CREDENTIAL_BROKERS.join(', ')} (got "${String(broker)}")`);
  }
  if (needs.apiKey || creds.apiKey !== '') checkSecret('API key', creds.apiKey);
  checkSecret('access token', creds.accessToken);
  if (creds.feedToken !== undefined) checkSecret('feed token', creds.feedToken);
  if (creds.clientCode !== undefined) checkSecret('client code', creds.clientCode);
  if (broker === 'zerodha' && creds.apiKey.includes(':')) {
    throw new TickcastError(ErrorCode.USAGE, "a Kite API key has no ':' (OpenAlgo stores api_key:access_token)");
  }
  if (!needs.feedToken && creds.feedToken !== undefined) {
    throw new TickcastError(ErrorCode.USAGE, `${needs.label} has no feed token (${needs.token} is what its feed needs)`);
  }
  const missing = [
    needs.feedToken && creds.feedToken === undefined ? 'feed token' : '',
    needs.clientCode && creds.clientCode === undefined ? needs.clientCode : '',
  ].filter(Boolean);
  if (missing.length > 0) throw new TickcastError(ErrorCode.USAGE, `${needs.label} needs a ${missing.join(' and a ')} too`);
}

function checkSecret(what: string, value: unknown): void {
  if (typeof value !== 'string' || value === '') throw new TickcastError(ErrorCode.USAGE, `the ${what} is empty`);
  if (value.length > SECRET_MAX) throw new TickcastError(ErrorCode.USAGE, `the ${what} is longer than ${SECRET_MAX} characters`);
  // Angel's JWT may come as "Bearer <jwt>", the Authorization header's form: allow that one space.
  const bare = what === 'access token' ? value.replace(/^Bearer /, '') : value;
  if (!PRINTABLE.test(bare)) throw new TickcastError(ErrorCode.USAGE, `the ${what} must be printable ASCII without spaces`);
}
