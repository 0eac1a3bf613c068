/**
 * OpenAlgo's DATABASE_URL, read as SQLAlchemy reads it (OpenAlgo hands the value to
 * `create_engine` unchanged), into a typed value. Pure: no I/O.
 *
 * - `sqlite:///relative/openalgo.db`: three slashes, then a path relative to the working
 *   directory; `sqlite:////abs/openalgo.db`: four slashes for an absolute path. A driver suffix
 *   (`sqlite+pysqlite`) and a query string (driver options) change nothing about the file.
 * - `postgresql://user:password@host:port/database`, also with a driver suffix as OpenAlgo's
 *   `.env` may have it (`postgresql+psycopg2://`). User and password are percent-decoded, as
 *   SQLAlchemy does; `sslmode`, `connect_timeout` and `host` (a socket directory) are understood.
 * - `mysql+pymysql://` and `mariadb://` are refused with the reason: OpenAlgo's models declare
 *   VARCHAR columns without a length (`api_keys.user_id`, `symtoken.symbol`), which SQLAlchemy
 *   cannot create on MySQL, so there is no OpenAlgo database on MySQL to read.
 *
 * The password never appears in `display` or in any message made here.
 */
import { isAbsolute, resolve } from 'node:path';

export type DatabaseKind = 'sqlite' | 'postgresql';

export interface SqliteDatabaseUrl {
  readonly kind: 'sqlite';
  /** Absolute path of the database file. */
  readonly file: string;
  /** `sqlite:////abs/path.db`: the URL with the path made absolute, for messages. */
  readonly display: string;
}

export type SslMode = 'disable' | 'allow' | 'prefer' | 'require' | 'verify-ca' | 'verify-full';

export interface ServerDatabaseUrl {
  readonly kind: 'postgresql';
  /** A host name or address; for PostgreSQL also a socket directory (starting with '/'). */
  readonly host: string;
  readonly port: number;
  readonly user: string | undefined;
  readonly password: string | undefined;
  readonly database: string;
  readonly sslmode: SslMode | undefined;
  /** Seconds, from `connect_timeout`. */
  readonly connectTimeoutSeconds: number | undefined;
  /** `postgresql://user@host:port/db`, without the password, for messages and logs. */
  readonly display: string;
}

export type DatabaseUrl = SqliteDatabaseUrl | ServerDatabaseUrl;

export type DatabaseUrlResult = { ok: true; value: DatabaseUrl } | { ok: false; expected: string; detail?: string };

export const DATABASE_URL_FORMS =
  'sqlite:///relative/path.db (relative to the working directory), sqlite:////absolute/path.db, or postgresql://user:password@host:port/database (also postgresql+psycopg2://)';

const DEFAULT_PORT = 5432;
/** Where Debian's libpq looks for the server's socket when a URL names no host, as psycopg2 does. */
const DEFAULT_PG_SOCKET_DIR = '/var/run/postgresql';
const SSL_MODES: readonly SslMode[] = ['disable', 'allow', 'prefer', 'require', 'verify-ca', 'verify-full'];

/** SQLAlchemy's URL pattern (sqlalchemy/engine/url.py, `_parse_url`), written out again here. */
const URL_PATTERN =
  /^(?<scheme>[\w+]+):\/\/(?:(?<user>[^:/]*)(?::(?<password>[^@]*))?@)?(?:(?:\[(?<ipv6>[^/?]+)\]|(?<host>[^/:?]+))?(?::(?<port>[^/?]*))?)?(?:\/(?<database>[^?]*))?(?:\?(?<query>.*))?$/s;

const fail = (detail: string): DatabaseUrlResult => ({ ok: false, expected: DATABASE_URL_FORMS, detail });

/** Parses DATABASE_URL; relative SQLite paths are resolved against `cwd` (and nothing else). */
export function parseDatabaseUrl(raw: string, cwd: string): DatabaseUrlResult {
  const text = raw.trim();
  const match = URL_PATTERN.exec(text);
  if (!match?.groups) return fail('the value is not a URL of the form scheme://…');
  const g = match.groups;
  const scheme = g.scheme!.toLowerCase();
  const [dialect] = scheme.split('+');

  if (dialect === 'sqlite') {
    const path = g.database;
    if (g.user !== undefined || g.host !== undefined || g.ipv6 !== undefined || g.port !== undefined) {
      return fail('a sqlite URL names no host: sqlite:///relative.db or sqlite:////absolute/path.db (three or four slashes)');
    }
    if (path === undefined || path === '' || path === ':memory:') {
      return fail('a sqlite URL must name a database file (an in-memory database holds no OpenAlgo data)');
    }
    const file = isAbsolute(path) ? resolve(path) : resolve(cwd, path);
    return { ok: true, value: { kind: 'sqlite', file, display: `sqlite:///${file}` } };
  }

  if (dialect === 'postgres') {
    return fail('SQLAlchemy, and so OpenAlgo, reads postgresql://, not postgres://');
  }
  if (dialect === 'mysql' || dialect === 'mariadb') {
    return fail(
      "MySQL/MariaDB is not supported: OpenAlgo's models declare VARCHAR columns without a length, which SQLAlchemy cannot create on MySQL, so OpenAlgo keeps its database on SQLite or PostgreSQL",
    );
  }
  if (dialect !== 'postgresql') return fail(`the scheme "${scheme}" is not one tickcast reads`);
  const kind = 'postgresql';

  let user: string | undefined;
  let password: string | undefined;
  try {
    user = g.user === undefined || g.user === '' ? undefined : decodeURIComponent(g.user);
    password = g.password === undefined ? undefined : decodeURIComponent(g.password);
  } catch {
    return fail('the user or password has a malformed %-escape');
  }
  let port = DEFAULT_PORT;
  if (g.port !== undefined && g.port !== '') {
    if (!/^[0-9]{1,5}$/.test(g.port) || Number(g.port) < 1 || Number(g.port) > 65535) return fail(`the port "${g.port}" is not a number from 1 to 65535`);
    port = Number(g.port);
  }
  const database = g.database ?? '';
  if (database === '') return fail(`the URL names no database (…@host:port/DATABASE)`);

  let host = g.ipv6 ?? g.host ?? '';
  let sslmode: SslMode | undefined;
  let connectTimeoutSeconds: number | undefined;
  for (const [name, value] of new URLSearchParams(g.query ?? '')) {
    if (name === 'sslmode') {
      if (!(SSL_MODES as readonly string[]).includes(value)) return fail(`sslmode must be one of ${SSL_MODES.join(', ')} (got "${value}")`);
      sslmode = value as SslMode;
    } else if (name === 'connect_timeout') {
      if (!/^[0-9]{1,4}$/.test(value) || Number(value) < 1) return fail(`connect_timeout must be whole seconds, at least 1 (got "${value}")`);
      connectTimeoutSeconds = Number(value);
    } else if (name === 'host' && host === '') {
      host = value;
    } else if (name === 'application_name') {
      // a label only
    } else {
      return fail(`the URL option "${name}" is not one tickcast understands (it reads sslmode, connect_timeout, host)`);
    }
  }
  if (host === '') host = DEFAULT_PG_SOCKET_DIR;
  const shownHost = host.includes(':') ? `[${host}]` : host;
  const display = `${kind}://${user === undefined ? '' : `${encodeURIComponent(user)}@`}${host.startsWith('/') ? `/${database}?host=${host}` : `${shownHost}:${port}/${database}`}`;
  return { ok: true, value: { kind, host, port, user, password, database, sslmode, connectTimeoutSeconds, display } };
}

/** `host:port` (or the socket directory) of a server URL, for messages. */
export function serverAddress(url: ServerDatabaseUrl): string {
  if (url.host.startsWith('/')) return `${url.host}/.s.PGSQL.${url.port}`;
  return `${url.host.includes(':') ? `[${url.host}]` : url.host}:${url.port}`;
}

/** The URL with any password replaced by `***`, for messages about a value that did not parse. */
export function redactDatabaseUrl(raw: string): string {
  return raw.replace(/^([\w+]+:\/\/[^:/@]*):[^@]*@/s, '$1:***@');
}
