/** A gateway node's name on a NATS bus (apart from roles/nats-node.ts, so naming it loads no NATS client). */
import { hostname } from 'node:os';
import type { Config } from '../config/options.js';

/** The node's name in the registry and logs: TICKCAST_NODE, or `<host>-<pid>`. */
export function natsNodeName(config: Config): string {
  return config.node ?? `${hostname()}-${process.pid}`;
}
