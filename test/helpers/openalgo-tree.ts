/**
 * An OpenAlgo installation for the bridge's tests: the OpenAlgo-shaped Python tree of
 * test/python/openalgo_tree (its websocket_proxy package and fake broker adapters, which log
 * every call and switch behaviour from a JSON file), copied into a fresh directory with a .env
 * and an OpenAlgo database written by OpenAlgo's own libraries (helpers/openalgo-db.ts).
 */
import crypto from 'node:crypto';
import { cpSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Env } from './cli.js';
import { OpenAlgoWriter, PYTHON, type SymtokenRow } from './openalgo-db.js';

export const OPENALGO_TREE = fileURLToPath(new URL('../python/openalgo_tree/', import.meta.url));

/** One call into a fake broker adapter, as it logged it. */
export interface AdapterCall {
  broker: string;
  user: string;
  call: 'initialize' | 'connect' | 'subscribe' | 'unsubscribe' | 'disconnect';
  symbol?: string;
  exchange?: string;
  mode?: number;
  depth?: number;
  pid: number;
}

/** Per broker (`dhan`) or per broker and user (`dhan:alice`): how its fake adapter behaves. */
export type Behaviour = Record<
  string,
  {
    initialize?: 'ok' | 'error' | 'raise' | 'hang';
    connect?: 'ok' | 'error' | 'raise' | 'hang';
    subscribe?: 'ok' | 'error' | 'raise' | 'hang';
    ticks?: 'on' | 'stop';
    die?: boolean;
    raw_socket?: boolean;
    unknown_symbols?: string[];
  }
>;

export interface OpenAlgoUser {
  user: string;
  broker: string;
  /** The decrypted `auth` column. */
  token: string;
}

export class FakeOpenAlgo {
  readonly dir: string;
  readonly writer: OpenAlgoWriter;
  readonly callsFile: string;
  readonly behaviourFile: string;
  private readonly keys = new Map<string, string>();

  constructor(root: string, users: readonly OpenAlgoUser[], symtoken: readonly SymtokenRow[] = []) {
    const pepper = crypto.randomBytes(32).toString('hex');
    const salt = crypto.randomBytes(32).toString('hex');
    this.dir = join(root, 'openalgo');
    cpSync(OPENALGO_TREE, this.dir, { recursive: true, filter: (source) => !source.includes('__pycache__') });
    mkdirSync(join(this.dir, 'db'), { recursive: true });
    this.writer = new OpenAlgoWriter('sqlite', join(this.dir, 'db', 'openalgo.db'), pepper, salt);
    this.writer.createSchema();
    this.writer.apply([...users.map(({ user, broker, token }) => ({ op: 'auth' as const, user, broker, token })), ...(symtoken.length ? [{ op: 'symtoken' as const, rows: [...symtoken] }] : [])]);
    for (const { user } of users) this.keys.set(user, this.writer.newKey(user));
    writeFileSync(
      join(this.dir, '.env'),
      [`API_KEY_PEPPER = '${pepper}'`, `FERNET_SALT = '${salt}'`, "DATABASE_URL = 'sqlite:///db/openalgo.db'", "APP_MODE = 'standalone'", "WEBSOCKET_HOST = '127.0.0.1'", "ZMQ_HOST = '127.0.0.1'", ''].join('\n'),
    );
    this.callsFile = join(root, 'adapter-calls.jsonl');
    this.behaviourFile = join(root, 'behaviour.json');
  }

  /** The API key OpenAlgo made for `user`. */
  key(user: string): string {
    const key = this.keys.get(user);
    if (key === undefined) throw new Error(`no user ${user}`);
    return key;
  }

  /** The environment a gateway (and so its bridge) needs: Debian's Python, the fakes' files, short bridge timers. */
  env(extra: Env = {}): Env {
    return {
      TICKCAST_OPENALGO_PYTHON: PYTHON,
      FAKE_OPENALGO_CALLS: this.callsFile,
      FAKE_OPENALGO_BEHAVIOUR: this.behaviourFile,
      FAKE_TICK_MS: '50',
      PYTHONDONTWRITEBYTECODE: '1',
      TICKCAST_BRIDGE_STALE: '1.5',
      TICKCAST_BRIDGE_CALL_TIMEOUT: '2',
      TICKCAST_BRIDGE_RETRY: '1',
      // Dhan is native in tickcast; its users go to the bridge as for a user who keeps OpenAlgo's adapter.
      TICKCAST_BRIDGE_BROKERS: 'dhan',
      ...extra,
    };
  }

  behave(behaviour: Behaviour): void {
    writeFileSync(this.behaviourFile, JSON.stringify(behaviour));
  }

  /** Every call the fake adapters logged, in order. */
  calls(): AdapterCall[] {
    if (!existsSync(this.callsFile)) return [];
    return readFileSync(this.callsFile, 'utf8').split('\n').filter(Boolean).map((line) => JSON.parse(line) as AdapterCall);
  }
}
