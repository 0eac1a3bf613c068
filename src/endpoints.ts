/**
 * Endpoint policy: which ports and socket names an instance uses, and how a conflict is
 * reported. A pinned port (a number the user configured, or OpenAlgo's default for the instance
 * named `default`) must be free or the start stops, naming who holds it; an unpinned one is
 * picked free by the OS and registered so others can find it.
 */
import type { Config } from './config/options.js';
import type { RegistryEntry } from './registry/registry.js';

/** OpenAlgo's ports, used by the instance named `default` when none is configured. */
export const OPENALGO_WS_PORT = 8765;
export const OPENALGO_ZMQ_PORT = 5555;
export const DEFAULT_INSTANCE = 'default';

/** A port to bind: a pinned number, or 0 (any free port). */
export function resolvePort(configured: number | 'auto' | undefined, instance: string, openAlgoDefault: number): number {
  if (configured === 'auto') return 0;
  if (configured !== undefined) return configured;
  return instance === DEFAULT_INSTANCE ? openAlgoDefault : 0;
}

/** Linux abstract-namespace names: no file to go stale, and a second bind fails. */
export const ipcEndpoint = (instance: string, part: 'bus' | 'control'): string => `ipc://@tickcast-${instance}-${part}`;

export interface PlannedEndpoints {
  wsPort: number;
  /** ZeroMQ endpoints to bind (`tcp://host:0` means any free port). */
  bus: string;
  control: string;
}

export function planEndpoints(config: Config): PlannedEndpoints {
  const { instance } = config;
  const wsPort = resolvePort(config.ws.port, instance, OPENALGO_WS_PORT);
  if (config.bus.transport === 'ipc') {
    return { wsPort, bus: ipcEndpoint(instance, 'bus'), control: ipcEndpoint(instance, 'control') };
  }
  const busPort = resolvePort(config.bus.port, instance, OPENALGO_ZMQ_PORT);
  const controlPort = config.control.port === 'auto' ? 0 : config.control.port;
  return {
    wsPort,
    bus: `tcp://${config.bus.host}:${busPort}`,
    control: `tcp://${config.bus.host}:${controlPort}`,
  };
}

/** The registry resource of a bound or pinned endpoint (`tcp:127.0.0.1:5555`, `ipc:@tickcast-x-bus`). */
export function endpointResource(endpoint: string): string | undefined {
  const tcp = /^tcp:\/\/(.+):(\d+)$/.exec(endpoint);
  if (tcp) return tcp[2] === '0' ? undefined : `tcp:${tcp[1]}:${tcp[2]}`;
  const ipc = /^ipc:\/\/(.+)$/.exec(endpoint);
  return ipc ? `ipc:${ipc[1]}` : undefined;
}

/** "instance "x" (gateway, pid 123 on host h)" or "a process outside tickcast". */
export function describeHolder(holder: RegistryEntry | undefined): string {
  if (!holder) return 'a process outside tickcast';
  const what = holder.role === 'adapter' ? `adapter "${holder.name}"` : holder.name === holder.instance ? 'gateway' : `gateway node "${holder.name}"`;
  return `tickcast instance "${holder.instance}" (${what}, pid ${holder.pid} on ${holder.host})`;
}
