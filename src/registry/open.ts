/**
 * Opens the registry a URL names: `sqlite:PATH` or a plain path (one host), `redis://…` (hosts
 * that share state). The default is a per-user SQLite file in the XDG state directory, the same
 * for every tickcast process of the user, so instances find each other without configuration.
 */
import os from 'node:os';
import path from 'node:path';
import { ErrorCode, TickcastError } from '../errors.js';
import type { RegistryOptions } from './liveness.js';
import { RedisRegistry } from './redis.js';
import type { Registry } from './registry.js';
import { SqliteRegistry } from './sqlite.js';

export interface OpenRegistryOptions extends RegistryOptions {
  /** Against which relative SQLite paths resolve. Default `process.cwd()`. */
  cwd?: string;
  /** Redis key prefix. Default `tickcast:`. */
  redisPrefix?: string;
  /** How long connecting to Redis may take. Default 5000 ms. */
  connectTimeoutMs?: number;
  /** How long SQLite waits for another process's write lock. Default 5000 ms. */
  busyTimeoutMs?: number;
}

const ACCEPTED = 'sqlite:/abs/path.db, sqlite:relative/path.db, a plain file path, or redis://[user:password@]host[:port][/db] (rediss:// for TLS)';

export type RegistryLocation = { kind: 'sqlite'; file: string } | { kind: 'redis'; url: string };

function invalid(url: string, why: string): TickcastError {
  return new TickcastError(ErrorCode.CONFIG_INVALID, `registry URL "${url}" ${why}; expected ${ACCEPTED}`);
}

/** What a registry URL names, without opening it. */
export function parseRegistryUrl(url: string, cwd: string = process.cwd()): RegistryLocation {
  const trimmed = url.trim();
  if (trimmed === '') throw invalid(url, 'is empty');
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(trimmed)?.[1]?.toLowerCase();
  if (scheme === undefined) return { kind: 'sqlite', file: path.resolve(cwd, trimmed) };
  if (scheme === 'sqlite') {
    let file = trimmed.slice('sqlite:'.length);
    // sqlite:///abs/path is the URL spelling of sqlite:/abs/path (an empty authority).
    if (file.startsWith('//')) {
      if (!file.startsWith('///')) throw invalid(url, 'names a host; a SQLite registry is a local file');
      file = file.slice(2);
    }
    if (file === '') throw invalid(url, 'has no file path');
    return { kind: 'sqlite', file: path.resolve(cwd, file) };
  }
  if (scheme === 'redis' || scheme === 'rediss') {
    let parsed: URL;
    try {
      parsed = new URL(trimmed);
    } catch {
      throw invalid(url, 'is not a valid URL');
    }
    if (parsed.hostname === '') throw invalid(url, 'has no host');
    const db = parsed.pathname.replace(/^\//, '');
    if (db !== '' && !/^\d+$/.test(db)) throw invalid(url, `has database "${db}", which is not a number`);
    return { kind: 'redis', url: trimmed };
  }
  throw invalid(url, `has unknown scheme "${scheme}:"`);
}

export async function openRegistry(url: string, options: OpenRegistryOptions): Promise<Registry> {
  const location = parseRegistryUrl(url, options.cwd);
  if (location.kind === 'sqlite') return SqliteRegistry.open(location.file, options);
  return RedisRegistry.open(location.url, { ...options, prefix: options.redisPrefix });
}

/**
 * `sqlite:$XDG_STATE_HOME/tickcast/registry.db`, or `sqlite:~/.local/state/tickcast/registry.db`
 * when XDG_STATE_HOME is unset or relative (the XDG spec says to ignore a relative one).
 */
export function defaultRegistryUrl(env: NodeJS.ProcessEnv = process.env, homedir: () => string = os.homedir): string {
  const xdg = env.XDG_STATE_HOME;
  const stateHome = xdg && path.isAbsolute(xdg) ? xdg : path.join(homedir(), '.local', 'state');
  return `sqlite:${path.join(stateHome, 'tickcast', 'registry.db')}`;
}
