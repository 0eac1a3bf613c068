/**
 * OpenAlgo's side of a shared database, for tests: the `auth`, `api_keys` and `symtoken` tables
 * as OpenAlgo's SQLAlchemy models define them (database/auth_db.py, database/symbol.py; the DDL
 * below is written out by hand from those models, for SQLite and PostgreSQL), and rows written
 * the way OpenAlgo writes them, by OpenAlgo's own libraries through Debian's /usr/bin/python3:
 * argon2-cffi (python3-argon2) for the key hash, cryptography's Fernet (python3-cryptography) for
 * the encrypted copies and broker tokens, the sqlite3 module for SQLite and `psql` for PostgreSQL.
 *
 * Also the PostgreSQL administration the tests need (a fresh database per test, a role that may
 * only SELECT), against the machine's server: TICKCAST_TEST_POSTGRES, default
 * postgresql://postgres@127.0.0.1:5432/postgres (trust authentication).
 */
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import pg from 'pg';

export const PYTHON = '/usr/bin/python3';
export const PG_ADMIN_URL = process.env.TICKCAST_TEST_POSTGRES ?? 'postgresql://postgres@127.0.0.1:5432/postgres';

export type Dialect = 'sqlite' | 'postgresql';

export interface SymtokenRow {
  symbol: string;
  brsymbol?: string;
  name?: string;
  exchange: string;
  brexchange: string;
  token: string;
  expiry?: string;
  strike?: number;
  lotsize?: number;
  instrumenttype?: string;
  tick_size?: number;
}

export interface AuthSpec {
  broker: string;
  /** The decrypted `auth` column (Zerodha: `api_key:access_token`); '' as after a logout. */
  token: string;
  feedToken?: string;
  userId?: string;
  revoked?: boolean;
  /** Encrypt the tokens under a key this pepper does not give (a row left by a salt rotation). */
  undecryptable?: boolean;
}

/** OpenAlgo's tables as `Base.metadata.create_all` makes them on SQLite. */
const SQLITE_DDL = `
CREATE TABLE auth (
  id INTEGER NOT NULL, name VARCHAR(255) NOT NULL, auth TEXT NOT NULL, feed_token TEXT,
  broker VARCHAR(20) NOT NULL, user_id VARCHAR(255), is_revoked BOOLEAN, secret_api_key TEXT,
  primary_ip VARCHAR(45), secondary_ip VARCHAR(45), ip_updated_at DATETIME,
  aux_param1 TEXT, aux_param2 TEXT, aux_param3 TEXT, aux_param4 TEXT,
  PRIMARY KEY (id), UNIQUE (name)
);
CREATE INDEX idx_auth_broker ON auth (broker);
CREATE INDEX idx_auth_user_id ON auth (user_id);
CREATE INDEX idx_auth_is_revoked ON auth (is_revoked);
CREATE TABLE api_keys (
  id INTEGER NOT NULL, user_id VARCHAR NOT NULL, api_key_hash TEXT NOT NULL, api_key_encrypted TEXT NOT NULL,
  created_at DATETIME, order_mode VARCHAR(20),
  PRIMARY KEY (id), UNIQUE (user_id)
);
CREATE INDEX idx_api_keys_order_mode ON api_keys (order_mode);
CREATE INDEX idx_api_keys_created_at ON api_keys (created_at);
CREATE TABLE symtoken (
  id INTEGER NOT NULL, symbol VARCHAR NOT NULL, brsymbol VARCHAR NOT NULL, name VARCHAR, exchange VARCHAR,
  brexchange VARCHAR, token VARCHAR, expiry VARCHAR, strike FLOAT, lotsize INTEGER, instrumenttype VARCHAR,
  tick_size FLOAT, contract_value REAL DEFAULT 1.0,
  PRIMARY KEY (id)
);
CREATE INDEX ix_symtoken_symbol ON symtoken (symbol);
CREATE INDEX ix_symtoken_brsymbol ON symtoken (brsymbol);
CREATE INDEX ix_symtoken_exchange ON symtoken (exchange);
CREATE INDEX ix_symtoken_brexchange ON symtoken (brexchange);
CREATE INDEX ix_symtoken_token ON symtoken (token);
CREATE INDEX idx_symbol_exchange ON symtoken (symbol, exchange);
CREATE INDEX idx_symbol_name ON symtoken (symbol, name);
CREATE INDEX idx_brsymbol_exchange ON symtoken (brsymbol, exchange);
`;

/** The same on PostgreSQL: SERIAL keys, real booleans and time zones, and symtoken's explicit
 * sequence (SQLAlchemy's Sequence("symtoken_id_seq"), which it calls itself on insert). */
const POSTGRES_DDL = `
CREATE TABLE auth (
  id SERIAL NOT NULL, name VARCHAR(255) NOT NULL, auth TEXT NOT NULL, feed_token TEXT,
  broker VARCHAR(20) NOT NULL, user_id VARCHAR(255), is_revoked BOOLEAN, secret_api_key TEXT,
  primary_ip VARCHAR(45), secondary_ip VARCHAR(45), ip_updated_at TIMESTAMP WITHOUT TIME ZONE,
  aux_param1 TEXT, aux_param2 TEXT, aux_param3 TEXT, aux_param4 TEXT,
  PRIMARY KEY (id), UNIQUE (name)
);
CREATE INDEX idx_auth_broker ON auth (broker);
CREATE INDEX idx_auth_user_id ON auth (user_id);
CREATE INDEX idx_auth_is_revoked ON auth (is_revoked);
CREATE TABLE api_keys (
  id SERIAL NOT NULL, user_id VARCHAR NOT NULL, api_key_hash TEXT NOT NULL, api_key_encrypted TEXT NOT NULL,
  created_at TIMESTAMP WITH TIME ZONE DEFAULT now(), order_mode VARCHAR(20),
  PRIMARY KEY (id), UNIQUE (user_id)
);
CREATE INDEX idx_api_keys_order_mode ON api_keys (order_mode);
CREATE INDEX idx_api_keys_created_at ON api_keys (created_at);
CREATE SEQUENCE symtoken_id_seq;
CREATE TABLE symtoken (
  id INTEGER NOT NULL, symbol VARCHAR NOT NULL, brsymbol VARCHAR NOT NULL, name VARCHAR, exchange VARCHAR,
  brexchange VARCHAR, token VARCHAR, expiry VARCHAR, strike FLOAT, lotsize INTEGER, instrumenttype VARCHAR,
  tick_size FLOAT, contract_value REAL DEFAULT 1.0,
  PRIMARY KEY (id)
);
CREATE INDEX ix_symtoken_symbol ON symtoken (symbol);
CREATE INDEX ix_symtoken_brsymbol ON symtoken (brsymbol);
CREATE INDEX ix_symtoken_exchange ON symtoken (exchange);
CREATE INDEX ix_symtoken_brexchange ON symtoken (brexchange);
CREATE INDEX ix_symtoken_token ON symtoken (token);
CREATE INDEX idx_symbol_exchange ON symtoken (symbol, exchange);
CREATE INDEX idx_symbol_name ON symtoken (symbol, name);
CREATE INDEX idx_brsymbol_exchange ON symtoken (brsymbol, exchange);
`;

/**
 * OpenAlgo's key material in Python, for scripts that write or check its rows: its KDF salt choice
 * (FERNET_SALT when ≥ 32 hex characters, else its legacy salt), Fernet(urlsafe_b64(PBKDF2(pepper)))
 * and argon2-cffi's PasswordHasher with the defaults OpenAlgo's PasswordHasher() has from 21.2 on
 * (Debian ships 21.1, whose defaults differ: t=2, m=102400, p=8, 16-byte hash).
 */
export const PY_OPENALGO_KEY_MATERIAL = String.raw`
import base64
from argon2 import PasswordHasher
from cryptography.fernet import Fernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC

def kdf_salt(fernet_salt):
    raw = (fernet_salt or "").strip()
    if len(raw) >= 32:
        try:
            return bytes.fromhex(raw)
        except ValueError:
            pass
    return b"openalgo_static_salt"

def fernet_for(pepper, fernet_salt):
    kdf = PBKDF2HMAC(algorithm=hashes.SHA256(), length=32, salt=kdf_salt(fernet_salt), iterations=100000)
    return Fernet(base64.urlsafe_b64encode(kdf.derive(pepper.encode())))

OPENALGO_HASHER = PasswordHasher(time_cost=3, memory_cost=65536, parallelism=4, hash_len=32, salt_len=16)
`;

/**
 * Reads {dialect, target, pepper, fernetSalt, ddl, ops} on stdin and applies the ops in one
 * transaction, making every secret with OpenAlgo's libraries: upsert_api_key's Argon2 hash and
 * Fernet copy, upsert_auth's encrypted tokens, a master-contract download's delete-and-insert.
 */
const PY_OPENALGO_WRITER = String.raw`${PY_OPENALGO_KEY_MATERIAL}
import json, os, subprocess, sys

req = json.load(sys.stdin)

fernet = fernet_for(req["pepper"], req.get("fernetSalt"))
stranger = Fernet(Fernet.generate_key())
pg = req["dialect"] == "postgresql"

def encrypt(f, text):
    return f.encrypt(text.encode()).decode() if text else ""

statements = []  # (sql with ? placeholders, params)
if req.get("ddl"):
    statements.append((req["ddl"], None))
for op in req["ops"]:
    kind = op["op"]
    if kind == "key":
        statements.append((
            "INSERT INTO api_keys (user_id, api_key_hash, api_key_encrypted, created_at, order_mode) VALUES (?, ?, ?, CURRENT_TIMESTAMP, 'auto')"
            " ON CONFLICT (user_id) DO UPDATE SET api_key_hash = excluded.api_key_hash, api_key_encrypted = excluded.api_key_encrypted",
            [op["user"], OPENALGO_HASHER.hash(op["apiKey"] + req["pepper"]), encrypt(fernet, op["apiKey"])]))
    elif kind == "delete_key":
        statements.append(("DELETE FROM api_keys WHERE user_id = ?", [op["user"]]))
    elif kind == "auth":
        f = stranger if op.get("undecryptable") else fernet
        feed = encrypt(f, op.get("feedToken")) or None
        statements.append((
            "INSERT INTO auth (name, auth, feed_token, broker, user_id, is_revoked) VALUES (?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (name) DO UPDATE SET auth = excluded.auth, feed_token = excluded.feed_token, broker = excluded.broker,"
            " user_id = excluded.user_id, is_revoked = excluded.is_revoked",
            [op["user"], encrypt(f, op["token"]), feed, op["broker"], op.get("userId"), bool(op.get("revoked"))]))
    elif kind == "symtoken":
        statements.append(("DELETE FROM symtoken", []))
        for r in op["rows"]:
            cols = ["symbol", "brsymbol", "name", "exchange", "brexchange", "token", "expiry", "strike", "lotsize", "instrumenttype", "tick_size"]
            vals = [r.get("symbol"), r.get("brsymbol", r.get("symbol")), r.get("name", r.get("symbol")), r.get("exchange"), r.get("brexchange"),
                    r.get("token"), r.get("expiry", ""), r.get("strike", -1.0), r.get("lotsize", 1), r.get("instrumenttype", "EQ"), r.get("tick_size", 0.05)]
            if pg:
                statements.append(("INSERT INTO symtoken (id, " + ", ".join(cols) + ") VALUES (nextval('symtoken_id_seq'), " + ", ".join("?" * len(cols)) + ")", vals))
            else:
                statements.append(("INSERT INTO symtoken (" + ", ".join(cols) + ") VALUES (" + ", ".join("?" * len(cols)) + ")", vals))
    elif kind == "sql":
        statements.append((op["sql"], None))
    else:
        raise SystemExit("unknown op " + kind)

def literal(v):
    if v is None:
        return "NULL"
    if isinstance(v, bool):
        return "TRUE" if v else "FALSE"
    if isinstance(v, (int, float)):
        return repr(v)
    return "'" + str(v).replace("'", "''") + "'"

if pg:
    parts = ["BEGIN;"]
    for sql, params in statements:
        if params:
            pieces = sql.split("?")
            sql = pieces[0] + "".join(literal(p) + rest for p, rest in zip(params, pieces[1:]))
        parts.append(sql.rstrip().rstrip(";") + ";")
    parts.append("COMMIT;")
    done = subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", req["target"]], input="\n".join(parts),
                          text=True, capture_output=True)
    if done.returncode != 0:
        raise SystemExit("psql failed: " + done.stderr.strip())
else:
    import sqlite3
    db = sqlite3.connect(req["target"])
    for sql, params in statements:
        if params is None:
            db.executescript(sql)
        else:
            db.execute(sql, params)
    db.commit()
    db.close()
print(json.dumps({"applied": len(statements)}))
`;

export type WriterOp =
  | { op: 'key'; user: string; apiKey: string }
  | { op: 'delete_key'; user: string }
  | ({ op: 'auth'; user: string } & AuthSpec)
  | { op: 'symtoken'; rows: SymtokenRow[] }
  | { op: 'sql'; sql: string };

/** OpenAlgo writing its database (for one test). */
export class OpenAlgoWriter {
  constructor(
    readonly dialect: Dialect,
    /** A SQLite file, or a libpq URL of a role that owns the database. */
    readonly target: string,
    readonly pepper: string,
    readonly fernetSalt?: string,
  ) {}

  /** OpenAlgo's first start: its tables, empty. */
  createSchema(): void {
    this.apply([], this.dialect === 'postgresql' ? POSTGRES_DDL : SQLITE_DDL);
  }

  apply(ops: WriterOp[], ddl?: string): void {
    let out: string;
    try {
      out = execFileSync(PYTHON, ['-c', PY_OPENALGO_WRITER], {
        input: JSON.stringify({ dialect: this.dialect, target: this.target, pepper: this.pepper, fernetSalt: this.fernetSalt, ddl, ops }),
        encoding: 'utf8',
        timeout: 60_000,
        stdio: ['pipe', 'pipe', 'pipe'],
      });
    } catch (err) {
      const stderr = String((err as { stderr?: unknown }).stderr ?? '').trim();
      throw new Error(
        `${PYTHON} could not write OpenAlgo's rows (it needs python3-argon2, python3-cryptography and, for PostgreSQL, psql): ${stderr.split('\n').at(-1) || (err as Error).message}`,
      );
    }
    JSON.parse(out);
  }

  /** A key as OpenAlgo's API key page makes it (secrets.token_hex(32)), stored for `user`. */
  newKey(user: string): string {
    const apiKey = crypto.randomBytes(32).toString('hex');
    this.apply([{ op: 'key', user, apiKey }]);
    return apiKey;
  }
}

/** Runs `fn` with an admin connection to the test PostgreSQL server; a clear error if it is down. */
export async function withPgAdmin<T>(fn: (client: pg.Client) => Promise<T>, url = PG_ADMIN_URL): Promise<T> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5000 });
  try {
    await client.connect();
  } catch (err) {
    throw new Error(
      `PostgreSQL is not reachable at ${url.replace(/:[^:@/]*@/, ':***@')} (${(err as Error).message}). These tests need the machine's PostgreSQL ` +
        '(Debian: postgresql, running on 127.0.0.1:5432, the postgres role allowed in without a password), or TICKCAST_TEST_POSTGRES naming another server',
    );
  }
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

/** A URL of the admin server with another database (and optionally another role). */
export function pgUrl(database: string, role?: { user: string; password?: string }): string {
  const url = new URL(PG_ADMIN_URL);
  url.pathname = `/${database}`;
  if (role) {
    url.username = role.user;
    url.password = role.password ?? '';
  }
  return url.toString();
}

/**
 * A fresh database for one test, built by OpenAlgo's side as its owner, and a role that may only
 * SELECT its three tables (what tickcast is run as). `drop()` removes both.
 */
export interface PgTestDatabase {
  name: string;
  owner: string;
  reader: { user: string; password: string };
  /** The DATABASE_URL tickcast gets: the SELECT-only role, with a password. */
  readerUrl: string;
  drop(): Promise<void>;
}

export async function createPgTestDatabase(): Promise<PgTestDatabase> {
  const suffix = crypto.randomBytes(5).toString('hex');
  const name = `tickcast_test_${suffix}`;
  const reader = { user: `tickcast_ro_${suffix}`, password: `pw-${crypto.randomBytes(6).toString('hex')}` };
  await withPgAdmin(async (admin) => {
    await admin.query(`CREATE DATABASE ${name}`);
    await admin.query(`CREATE ROLE ${reader.user} LOGIN PASSWORD '${reader.password}'`);
  });
  return {
    name,
    owner: pgUrl(name),
    reader,
    readerUrl: pgUrl(name, reader),
    drop: () =>
      withPgAdmin(async (admin) => {
        await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
        await admin.query(`DROP ROLE IF EXISTS ${reader.user}`);
      }),
  };
}

/** Lets the reader role connect and SELECT the three tables, and nothing else. */
export function grantSelectOnly(db: PgTestDatabase): WriterOp {
  return {
    op: 'sql',
    sql: `GRANT CONNECT ON DATABASE ${db.name} TO ${db.reader.user}; GRANT USAGE ON SCHEMA public TO ${db.reader.user}; GRANT SELECT ON api_keys, auth, symtoken TO ${db.reader.user}`,
  };
}
