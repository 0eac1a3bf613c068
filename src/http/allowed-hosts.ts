/**
 * Which `Host` headers the gateway's HTTP routes answer to, against DNS rebinding: a page on
 * another site can point its own name at 127.0.0.1 and then read the gateway as that name, but
 * its requests still carry that name in `Host`. Answered:
 *
 * - loopback names and addresses (`localhost`, `127.0.0.1`, `[::1]`) and the configured listen
 *   host (`WEBSOCKET_HOST`), at the port the request arrived on;
 * - any IP address literal, at any port: a page can only send one when the user browsed to the
 *   address itself, so no name of an attacker's is involved;
 * - names the operator allows (`names`, e.g. the public name a reverse proxy passes on), at any
 *   port (`name:port` for one port only), since a proxy's public port is not the gateway's.
 */
import type { IncomingMessage } from 'node:http';
import { isIP } from 'node:net';
import type { Config } from '../config/options.js';

/** The setting that lists extra names, for messages and docs. */
export const ALLOWED_HOSTS_SETTING = 'TICKCAST_ALLOWED_HOSTS';

export interface AllowedHostsOptions {
  /** The address or name the gateway listens on (`ws.host`). */
  listenHost?: string;
  /** Extra names the operator allows: `name` (any port) or `name:port`. */
  names?: readonly string[];
}

const LOOPBACK_NAMES: readonly string[] = ['localhost'];

/** `host` or `host:port`, the host a name or a bracketed IPv6 literal; nothing else (no user info, no path). */
const HOST_HEADER = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+)(?::(\d{1,5}))?$/;

interface ParsedHost {
  /** Lower case, without brackets or a trailing dot. */
  host: string;
  port: number | undefined;
}

function parseHost(value: string): ParsedHost | undefined {
  const match = HOST_HEADER.exec(value);
  if (!match) return undefined;
  let host = match[1]!.toLowerCase();
  if (host.startsWith('[')) host = host.slice(1, -1);
  // `localhost.` is the same name as `localhost` (the absolute form).
  else if (host.endsWith('.')) host = host.slice(0, -1);
  const port = match[2] === undefined ? undefined : Number(match[2]);
  if (port !== undefined && port > 65535) return undefined;
  return { host, port };
}

export class AllowedHosts {
  /** Names accepted at the gateway's own port. */
  private readonly ownNames: ReadonlySet<string>;
  /** Operator's names: `undefined` port for any. */
  private readonly extra: readonly ParsedHost[];

  constructor(options: AllowedHostsOptions = {}) {
    const own = new Set(LOOPBACK_NAMES);
    const listenHost = options.listenHost;
    // The setting spells an IPv6 address bare (`::1`), a Host header in brackets.
    const listen = listenHost === undefined ? undefined : parseHost(listenHost.includes(':') && !listenHost.startsWith('[') ? `[${listenHost}]` : listenHost);
    if (listen) own.add(listen.host);
    this.ownNames = own;
    this.extra = (options.names ?? []).flatMap((name) => {
      const parsed = parseHost(name.trim());
      return parsed ? [parsed] : [];
    });
  }

  /** Why the request's `Host` is refused, or `undefined` when the gateway answers to it. */
  refusal(request: IncomingMessage): string | undefined {
    const header = request.headers.host;
    if (header === undefined || header === '') return 'The request has no Host header';
    const parsed = parseHost(header);
    const shown = JSON.stringify(header.slice(0, 100));
    if (!parsed) return `Host ${shown} is not a valid host name`;
    if (this.allows(parsed, request)) return undefined;
    return `Host ${shown} is not a name this gateway answers to (loopback names at its port, its listen host, IP addresses, or names listed in ${ALLOWED_HOSTS_SETTING})`;
  }

  private allows({ host, port }: ParsedHost, request: IncomingMessage): boolean {
    if (isIP(host) !== 0) return true;
    if (this.extra.some((e) => e.host === host && (e.port === undefined || e.port === port))) return true;
    if (!this.ownNames.has(host)) return false;
    // Without a port the browser means the scheme's default one.
    const encrypted = (request.socket as { encrypted?: boolean }).encrypted === true;
    return (port ?? (encrypted ? 443 : 80)) === request.socket.localPort;
  }
}

/**
 * The allowed hosts of an instance's configuration: its listen host, and the operator's names
 * (`TICKCAST_ALLOWED_HOSTS`).
 */
export function allowedHostsOf(config: Config): AllowedHostsOptions {
  const names = config.ws.allowedHosts;
  return { listenHost: config.ws.host, ...(names ? { names } : {}) };
}
