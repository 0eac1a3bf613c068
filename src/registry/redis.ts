/**
 * The Redis registry, for hosts that share state. Keys, under a prefix (`tickcast:`):
 *   entry:<id>                           hash: the entry (endpoints as `endpoint:<kind>` fields,
 *                                        resources as a JSON array, its own name key)
 *   name:["<instance>","<role>","<name>"] → id of the entry holding that name
 *   res:<host>/<resource>                → id of the entry holding that resource on that host
 * A name or resource key whose entry is gone is free: pointers may dangle, they never block.
 * Resources are ports and socket names, which belong to one machine: the same port on two hosts
 * is two resources, so gateway nodes on different hosts may all pin 8765.
 *
 * Atomicity: every change that checks and writes (claim, update, release, reap) is one Lua script,
 * which Redis runs with nothing interleaved, so two processes racing cannot both win. Staleness
 * needs the pid check only the host can make, so it is judged in JavaScript before the script;
 * stale holders are then deleted by a compare-and-delete script that gives up if the entry
 * heartbeated meanwhile. Every key expires after twice the TTL unless heartbeated, so entries
 * nobody reaps still go away. The scripts touch keys derived from stored ids, which is fine on a
 * single Redis (or a primary with replicas), not on Redis Cluster.
 */
import os from 'node:os';
import { Redis } from 'ioredis';
import { ErrorCode, TickcastError } from '../errors.js';
import { describeEntry, liveness, storedEntry, type Liveness, type RegistryOptions } from './liveness.js';
import type { ClaimResult, Endpoints, ListedEntry, NewEntry, Registry, RegistryEntry, Role } from './registry.js';

export interface RedisRegistryOptions extends RegistryOptions {
  /** Prefix of every key (tests use their own). Default `tickcast:`. */
  prefix?: string;
  /** How long opening may take before it fails. Default 5000 ms. */
  connectTimeoutMs?: number;
}

/** Keys live this many TTLs past the last heartbeat: long enough that a stale entry can still be listed. */
const EXPIRY_TTLS = 2;
/** Claims retried after reaping a holder that turned out stale; more means something keeps racing us. */
const MAX_CLAIM_ATTEMPTS = 5;
const ENDPOINT_KINDS = ['ws', 'bus', 'control'] as const;
const ROLES: readonly string[] = ['gateway', 'adapter'] satisfies Role[];

/** The keys an entry owns: its name key and its resource keys, read from the entry itself. */
const OWNED_KEYS_LUA = `
local function ownedKeys(entryKey, prefix)
  local keys = {}
  local nameKey = redis.call('HGET', entryKey, 'nameKey')
  if nameKey and string.sub(nameKey, 1, #prefix + 5) == prefix .. 'name:' then keys[#keys + 1] = nameKey end
  local host = redis.call('HGET', entryKey, 'host') or ''
  local raw = redis.call('HGET', entryKey, 'resources')
  if raw then
    local ok, list = pcall(cjson.decode, raw)
    if ok and type(list) == 'table' then
      for _, r in ipairs(list) do
        if type(r) == 'string' then keys[#keys + 1] = prefix .. 'res:' .. host .. '/' .. r end
      end
    end
  end
  return keys
end
local function heldBy(key, prefix)
  local holder = redis.call('GET', key)
  if holder and redis.call('EXISTS', prefix .. 'entry:' .. holder) == 1 then return holder end
  return nil
end
`;

/** KEYS: entry, name, resources…  ARGV: id, px, prefix, hash field/value pairs… */
const CLAIM_LUA = `${OWNED_KEYS_LUA}
if redis.call('EXISTS', KEYS[1]) == 1 then return {'duplicate'} end
local holder = heldBy(KEYS[2], ARGV[3])
if holder then return {'name', holder} end
for i = 3, #KEYS do
  holder = heldBy(KEYS[i], ARGV[3])
  if holder then return {'resource', holder, tostring(i - 2)} end
end
redis.call('HSET', KEYS[1], unpack(ARGV, 4))
redis.call('PEXPIRE', KEYS[1], ARGV[2])
for i = 2, #KEYS do redis.call('SET', KEYS[i], ARGV[1], 'PX', ARGV[2]) end
return {'ok'}
`;

/** KEYS: entry, resources to add…  ARGV: id, px, prefix, endpoint count n, n kind/url pairs, resource names… */
const UPDATE_LUA = `${OWNED_KEYS_LUA}
local id, prefix, n = ARGV[1], ARGV[3], tonumber(ARGV[4])
if redis.call('EXISTS', KEYS[1]) == 0 then return {'gone'} end
for i = 2, #KEYS do
  local holder = heldBy(KEYS[i], prefix)
  if holder and holder ~= id then return {'resource', holder, tostring(i - 1)} end
end
if #KEYS > 1 then
  local px = redis.call('PTTL', KEYS[1])
  if px < 1 then px = tonumber(ARGV[2]) end
  local list = {}
  local ok, stored = pcall(cjson.decode, redis.call('HGET', KEYS[1], 'resources') or '[]')
  if ok and type(stored) == 'table' then list = stored end
  local have = {}
  for _, r in ipairs(list) do have[r] = true end
  for i = 2, #KEYS do
    local r = ARGV[4 + 2 * n + i - 1]
    if not have[r] then
      list[#list + 1] = r
      have[r] = true
    end
    redis.call('SET', KEYS[i], id, 'PX', px)
  end
  redis.call('HSET', KEYS[1], 'resources', cjson.encode(list))
end
for j = 1, n do
  redis.call('HSET', KEYS[1], 'endpoint:' .. ARGV[3 + 2 * j], ARGV[4 + 2 * j])
end
return {'ok'}
`;

/**
 * KEYS: entry.  ARGV: id, heartbeatAt, px, prefix, then (a re-asserting heartbeat) the whole
 * entry's hash field/value pairs, which replace whatever the hash holds: an edit made behind the
 * owner's back (an `HSET` of another endpoint) lasts until the next heartbeat at most.
 */
const HEARTBEAT_LUA = `${OWNED_KEYS_LUA}
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if #ARGV > 4 then
  redis.call('DEL', KEYS[1])
  redis.call('HSET', KEYS[1], unpack(ARGV, 5))
end
redis.call('HSET', KEYS[1], 'heartbeatAt', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
for _, key in ipairs(ownedKeys(KEYS[1], ARGV[4])) do
  if redis.call('GET', key) == ARGV[1] then redis.call('PEXPIRE', key, ARGV[3]) end
end
return 1
`;

/**
 * KEYS: entry.  ARGV: id, prefix, expected heartbeatAt ('*': any). Deletes the entry and the keys
 * still pointing at it, unless it heartbeated since it was judged stale.
 */
const REMOVE_LUA = `${OWNED_KEYS_LUA}
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if ARGV[3] ~= '*' and (redis.call('HGET', KEYS[1], 'heartbeatAt') or '') ~= ARGV[3] then return 0 end
for _, key in ipairs(ownedKeys(KEYS[1], ARGV[2])) do
  if redis.call('GET', key) == ARGV[1] then redis.call('DEL', key) end
end
redis.call('DEL', KEYS[1])
return 1
`;

interface Stored {
  entry: RegistryEntry;
  /** False when the hash is not what we write (hand-edited, another version): treated as stale. */
  valid: boolean;
  /** The heartbeat exactly as stored, for compare-and-delete. */
  rawHeartbeat: string;
}

function parseResources(text: string | undefined): string[] | undefined {
  if (text === undefined) return undefined;
  try {
    const value: unknown = JSON.parse(text);
    return Array.isArray(value) && value.every((r) => typeof r === 'string') ? value : undefined;
  } catch {
    return undefined;
  }
}

function parseHash(hash: Record<string, string>): Stored | undefined {
  if (Object.keys(hash).length === 0) return undefined; // gone (expired or removed)
  const endpoints: Endpoints = {};
  for (const kind of ENDPOINT_KINDS) {
    const url = hash[`endpoint:${kind}`];
    if (url !== undefined) endpoints[kind] = url;
  }
  const resources = parseResources(hash.resources);
  const entry: RegistryEntry = {
    id: hash.id ?? '',
    instance: hash.instance ?? '',
    role: (hash.role ?? '') as Role,
    name: hash.name ?? '',
    pid: Number(hash.pid),
    host: hash.host ?? '',
    endpoints,
    resources: resources ?? [],
    startedAt: Number(hash.startedAt),
    heartbeatAt: Number(hash.heartbeatAt),
  };
  const valid =
    resources !== undefined && entry.id !== '' && ROLES.includes(entry.role) && Number.isSafeInteger(entry.pid) && Number.isFinite(entry.heartbeatAt);
  return { entry, valid, rawHeartbeat: hash.heartbeatAt ?? '' };
}

/** SCAN's MATCH is a glob: a prefix with glob characters must match only itself. */
const escapeGlob = (text: string): string => text.replace(/[*?[\]\\]/g, '\\$&');

function causeOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** `redis://host:port/db` without credentials, for messages. */
export function redactRedisUrl(url: string): string {
  try {
    const parsed = new URL(url);
    return `${parsed.protocol}//${parsed.host}${parsed.pathname.length > 1 ? parsed.pathname : '/0'}`;
  } catch {
    return 'redis://(unparseable url)';
  }
}

/** What to check, for the refusals an operator can fix in the registry URL. */
function advice(cause: string): string {
  if (/WRONGPASS|NOAUTH|invalid password|invalid username/i.test(cause)) {
    return '; check the user name and password in the registry URL (redis://USER:PASSWORD@HOST:PORT/DB, TICKCAST_REGISTRY)';
  }
  if (/NOPERM/.test(cause)) return "; the registry URL's Redis user lacks a permission the registry needs (docs/scale-out.md lists them)";
  return '';
}

function withTimeout<T>(promise: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(message)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

export class RedisRegistry implements Registry {
  private readonly px: number;

  private constructor(
    private readonly client: Redis,
    readonly url: string,
    private readonly prefix: string,
    private readonly live: Liveness,
    /** The host `holderOf` asks about. */
    private readonly localHost: string,
  ) {
    this.px = Math.ceil(live.ttlMs * EXPIRY_TTLS);
  }

  /** Connects (bounded by `connectTimeoutMs`); an unreachable server is STORE_FAILED naming the URL. */
  static async open(url: string, options: RedisRegistryOptions): Promise<RedisRegistry> {
    const shown = redactRedisUrl(url);
    const live = liveness(options);
    const timeoutMs = options.connectTimeoutMs ?? 5000;
    let lastError: Error | undefined;
    const client = new Redis(url, {
      lazyConnect: true,
      connectTimeout: timeoutMs,
      // A command fails after one reconnection attempt instead of queueing forever; the caller
      // (a heartbeat) tries again later.
      maxRetriesPerRequest: 1,
      retryStrategy: (times) => Math.min(times * 200, 2000),
    });
    // Without a listener ioredis prints every connection error; they surface through commands.
    client.on('error', (err: Error) => {
      lastError = err;
    });
    try {
      const connected = async (): Promise<void> => {
        await client.connect();
        // ioredis ignores a failed SELECT at connect and stays on database 0: select again, loudly.
        await client.select(client.options.db ?? 0);
      };
      await withTimeout(connected(), timeoutMs, `no answer within ${timeoutMs} ms`);
    } catch (err) {
      client.disconnect();
      const cause = lastError && lastError.message !== causeOf(err) ? `${causeOf(err)} (${lastError.message})` : causeOf(err);
      throw new TickcastError(ErrorCode.STORE_FAILED, `cannot connect to registry ${shown}: ${cause}${advice(cause)}`);
    }
    return new RedisRegistry(client, shown, options.prefix ?? 'tickcast:', live, options.localHost ?? os.hostname());
  }

  claim(entry: NewEntry): Promise<ClaimResult> {
    return this.run('claim', () => this.claimOnce(entry));
  }

  update(id: string, change: { endpoints?: Endpoints; resources?: string[] }): Promise<boolean> {
    return this.run('update', () => this.updateOnce(id, change));
  }

  heartbeat(id: string, entry?: RegistryEntry): Promise<boolean> {
    // An entry still present owns its name and resources (claims reap before they take), so a
    // late heartbeat simply revives it; only a reaped entry has to be claimed again.
    return this.run('heartbeat', async () => {
      const now = this.live.clock.now();
      const fields = entry === undefined || entry.id !== id ? [] : this.hashFields({ ...entry, heartbeatAt: now }, this.nameKey(entry));
      const done = await this.client.eval(HEARTBEAT_LUA, 1, this.entryKey(id), id, String(now), String(this.px), this.prefix, ...fields);
      return done === 1;
    });
  }

  release(id: string): Promise<void> {
    return this.run('release', async () => {
      await this.remove(id, '*');
    });
  }

  list(): Promise<ListedEntry[]> {
    return this.run('list', async () => (await this.readAll()).map(({ entry, valid }) => ({ ...entry, alive: valid && this.live.isAlive(entry) })));
  }

  async find(instance: string, role?: Role): Promise<RegistryEntry[]> {
    const all = await this.list();
    return all.filter((e) => e.alive && e.instance === instance && (role === undefined || e.role === role)).map(({ alive: _alive, ...entry }) => entry);
  }

  holderOf(resource: string): Promise<RegistryEntry | undefined> {
    return this.run('holderOf', async () => {
      const id = await this.client.get(this.resourceKey(this.localHost, resource));
      const stored = id === null ? undefined : await this.read(id);
      return stored && this.isLive(stored) ? stored.entry : undefined;
    });
  }

  prune(): Promise<RegistryEntry[]> {
    return this.run('prune', async () => {
      const reaped: RegistryEntry[] = [];
      for (const stored of await this.readAll()) {
        if (!this.isLive(stored) && (await this.remove(stored.entry.id, stored.rawHeartbeat))) reaped.push(stored.entry);
      }
      return reaped;
    });
  }

  async close(): Promise<void> {
    try {
      await this.client.quit();
    } catch {
      this.client.disconnect(); // already closed or unreachable: nothing left to flush
    }
  }

  private async claimOnce(entry: NewEntry): Promise<ClaimResult> {
    const resources = [...new Set(entry.resources)];
    const nameKey = this.nameKey(entry);
    const resourceKeys = resources.map((r) => this.resourceKey(entry.host, r));
    for (let attempt = 1; ; attempt++) {
      await this.reapStaleHolders([nameKey, ...resourceKeys]);
      const stored = storedEntry(entry, resources, this.live.clock.now());
      const reply = await this.client.eval(
        CLAIM_LUA,
        2 + resourceKeys.length,
        this.entryKey(entry.id),
        nameKey,
        ...resourceKeys,
        entry.id,
        String(this.px),
        this.prefix,
        ...this.hashFields(stored, nameKey),
      );
      const [outcome, holderId, index] = reply as [string, string?, string?];
      if (outcome === 'ok') return { ok: true, entry: stored };
      if (outcome === 'duplicate') {
        throw new TickcastError(ErrorCode.STORE_FAILED, `registry ${this.url}: an entry with id ${entry.id} is already registered`);
      }
      const holder = holderId === undefined ? undefined : await this.read(holderId);
      // A holder that went stale (or vanished) since the reaping pass: reap again and retry.
      if (holder && this.isLive(holder)) {
        if (outcome === 'name') return { ok: false, conflict: 'name', holder: holder.entry };
        return { ok: false, conflict: 'resource', resource: resources[Number(index) - 1], holder: holder.entry };
      }
      if (attempt >= MAX_CLAIM_ATTEMPTS) {
        throw new TickcastError(ErrorCode.STORE_FAILED, `registry ${this.url}: claim of ${entry.instance}/${entry.role}/${entry.name} kept racing other writers`);
      }
    }
  }

  /**
   * Merges `endpoints` into the entry's and adds `resources` (ones it already holds are kept). A
   * resource held by another live entry aborts the whole update with PORT_IN_USE naming the
   * holder; a stale holder is reaped first, as in claim.
   */
  private async updateOnce(id: string, change: { endpoints?: Endpoints; resources?: string[] }): Promise<boolean> {
    const resources = [...new Set(change.resources ?? [])];
    // Resources are the entry's host's: read which host that is (a gone entry has none).
    const host = resources.length === 0 ? '' : await this.client.hget(this.entryKey(id), 'host');
    if (host === null) return false;
    const resourceKeys = resources.map((r) => this.resourceKey(host, r));
    const endpointPairs = Object.entries(change.endpoints ?? {}).filter((pair): pair is [string, string] => typeof pair[1] === 'string');
    for (let attempt = 1; ; attempt++) {
      await this.reapStaleHolders(resourceKeys, id);
      const reply = await this.client.eval(
        UPDATE_LUA,
        1 + resourceKeys.length,
        this.entryKey(id),
        ...resourceKeys,
        id,
        String(this.px),
        this.prefix,
        String(endpointPairs.length),
        ...endpointPairs.flat(),
        ...resources,
      );
      const [outcome, holderId, index] = reply as [string, string?, string?];
      if (outcome === 'ok') return true;
      if (outcome === 'gone') return false;
      const holder = holderId === undefined ? undefined : await this.read(holderId);
      if (holder && this.isLive(holder)) {
        throw new TickcastError(ErrorCode.PORT_IN_USE, `${resources[Number(index) - 1]} is already held by ${describeEntry(holder.entry)}`);
      }
      if (attempt >= MAX_CLAIM_ATTEMPTS) {
        throw new TickcastError(ErrorCode.STORE_FAILED, `registry ${this.url}: update of ${id} kept racing other writers`);
      }
    }
  }

  /** Removes the stale entries that the given name/resource keys point at (never `except`). */
  private async reapStaleHolders(keys: string[], except?: string): Promise<void> {
    if (keys.length === 0) return;
    const ids = new Set((await this.client.mget(...keys)).filter((id): id is string => id !== null && id !== except));
    for (const id of ids) {
      const stored = await this.read(id);
      if (stored && !this.isLive(stored)) await this.remove(id, stored.rawHeartbeat);
    }
  }

  private async remove(id: string, expectedHeartbeat: string): Promise<boolean> {
    return (await this.client.eval(REMOVE_LUA, 1, this.entryKey(id), id, this.prefix, expectedHeartbeat)) === 1;
  }

  private async read(id: string): Promise<Stored | undefined> {
    return parseHash(await this.client.hgetall(this.entryKey(id)));
  }

  /** Every entry, oldest first. SCAN, not KEYS: it does not block a shared Redis. */
  private async readAll(): Promise<Stored[]> {
    const keys = new Set<string>();
    const match = `${escapeGlob(this.prefix)}entry:*`;
    let cursor = '0';
    do {
      const [next, batch] = await this.client.scan(cursor, 'MATCH', match, 'COUNT', 200);
      for (const key of batch) keys.add(key);
      cursor = next;
    } while (cursor !== '0');
    const pipeline = this.client.pipeline();
    for (const key of keys) pipeline.hgetall(key);
    const replies = (await pipeline.exec()) ?? [];
    const all: Stored[] = [];
    for (const [err, hash] of replies) {
      if (err) continue; // not a hash: not ours to read
      const stored = parseHash(hash as Record<string, string>);
      if (stored) all.push(stored);
    }
    return all.sort((a, b) => a.entry.startedAt - b.entry.startedAt || (a.entry.id < b.entry.id ? -1 : 1));
  }

  private isLive(stored: Stored): boolean {
    return stored.valid && this.live.isAlive(stored.entry);
  }

  private hashFields(entry: RegistryEntry, nameKey: string): string[] {
    const fields = [
      ['id', entry.id],
      ['instance', entry.instance],
      ['role', entry.role],
      ['name', entry.name],
      ['pid', String(entry.pid)],
      ['host', entry.host],
      ['resources', JSON.stringify(entry.resources)],
      ['startedAt', String(entry.startedAt)],
      ['heartbeatAt', String(entry.heartbeatAt)],
      ['nameKey', nameKey],
    ];
    for (const kind of ENDPOINT_KINDS) {
      const url = entry.endpoints[kind];
      if (url !== undefined) fields.push([`endpoint:${kind}`, url]);
    }
    return fields.flat();
  }

  private entryKey(id: string): string {
    return `${this.prefix}entry:${id}`;
  }

  private nameKey(entry: Pick<RegistryEntry, 'instance' | 'role' | 'name'>): string {
    return `${this.prefix}name:${JSON.stringify([entry.instance, entry.role, entry.name])}`;
  }

  /** Host names hold no `/`, so `<host>/<resource>` is unambiguous. */
  private resourceKey(host: string, resource: string): string {
    return `${this.prefix}res:${host}/${resource}`;
  }

  /** Runs one operation, turning any Redis failure into STORE_FAILED naming the server. */
  private async run<T>(operation: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      if (err instanceof TickcastError) throw err;
      throw new TickcastError(ErrorCode.STORE_FAILED, `registry ${this.url}: ${operation} failed: ${causeOf(err)}${advice(causeOf(err))}`);
    }
  }
}
