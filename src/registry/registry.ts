/**
 * The instance registry: every gateway and adapter on a host (or a fleet, with Redis) records
 * who it is, where it listens and that it is alive, so parts find each other without fixed
 * ports and conflicts are reported by name. Implementations: SQLite (embedded default, one file
 * per user per host) and Redis.
 */

export type Role = 'gateway' | 'adapter';

/** Where a part can be reached, as URLs (`ws://…`, `tcp://…`, `ipc://@…`). */
export interface Endpoints {
  ws?: string;
  bus?: string;
  control?: string;
}

export interface RegistryEntry {
  /** Unique per registration (a random id; a restarted process registers anew). */
  id: string;
  instance: string;
  role: Role;
  /** Unique within (instance, role): the instance name for a gateway, the feed id for an adapter. */
  name: string;
  pid: number;
  /** `os.hostname()` of the process. */
  host: string;
  endpoints: Endpoints;
  /**
   * Resources this entry holds exclusively while alive, e.g. `tcp:127.0.0.1:8765` for a pinned
   * port, claimed before binding so two processes racing for it cannot both win.
   */
  resources: string[];
  /** Epoch ms. */
  startedAt: number;
  heartbeatAt: number;
}

export type NewEntry = Omit<RegistryEntry, 'heartbeatAt'>;

export interface ListedEntry extends RegistryEntry {
  /** False when stale: its pid is dead on this host, or its heartbeat is older than the TTL. */
  alive: boolean;
}

export type ClaimResult =
  | { ok: true; entry: RegistryEntry }
  /** A live entry already holds the (instance, role, name) or one of the resources. */
  | { ok: false; holder: RegistryEntry; conflict: 'name' | 'resource'; resource?: string };

export interface Registry {
  /** Where it lives, for messages (`sqlite:/path/registry.db`, `redis://host:port/0`). */
  readonly url: string;
  /**
   * Atomically registers `entry` unless a live entry holds its (instance, role, name) or any of
   * its resources. Stale holders are reaped first, so a crashed process never blocks a restart.
   */
  claim(entry: NewEntry): Promise<ClaimResult>;
  /** Records endpoints bound after the claim (auto ports) and extra resources; false if the entry is gone. */
  update(id: string, change: { endpoints?: Endpoints; resources?: string[] }): Promise<boolean>;
  /**
   * Refreshes the heartbeat; false if the entry is gone (reaped): the caller should re-claim.
   * With `entry` (the owner's own copy, same id) the stored entry is rewritten from it as well,
   * endpoints and resources included, so whoever edited the stored entry behind its owner's back
   * (a hand-made `HSET` in a shared Redis) is undone by the next heartbeat.
   */
  heartbeat(id: string, entry?: RegistryEntry): Promise<boolean>;
  release(id: string): Promise<void>;
  /** Every entry, live or stale, oldest first. */
  list(): Promise<ListedEntry[]>;
  /** Live entries of an instance (optionally one role). */
  find(instance: string, role?: Role): Promise<RegistryEntry[]>;
  /** Live entry holding a resource on this host, if any (a port is a port of one machine). */
  holderOf(resource: string): Promise<RegistryEntry | undefined>;
  /** Removes stale entries and returns them. */
  prune(): Promise<RegistryEntry[]>;
  close(): Promise<void>;
}

/** The resource name of a TCP port on a host (`tcp:127.0.0.1:8765`). */
export const tcpResource = (host: string, port: number): string => `tcp:${host}:${port}`;
