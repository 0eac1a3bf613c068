/**
 * What starting an out-of-process adapter takes and gives back, shared by its two wirings
 * (adapter-process.ts over ZeroMQ, nats/adapter-process.ts over NATS) so neither imports the other's module.
 */
import type { Clock } from './clock.js';
import type { Config } from './config/options.js';
import type { Logger } from './observability/logger.js';
import type { Registry } from './registry/registry.js';

export interface AdapterProcessOptions {
  config: Config;
  /** Feed id for the ticks and the registry (default: the feed kind, e.g. `simulator`). */
  feedId: string;
  /** Explicit endpoints instead of the registry's. */
  bus?: string;
  control?: string;
  /** NATS servers: serve every gateway node of the instance over NATS instead (nats/adapter-process.ts). */
  nats?: readonly string[];
  /** Give up waiting for the gateway after this long (default: wait forever). */
  waitMs?: number;
  clock: Clock;
  logger: Logger;
  /** Called when the gateway refuses this adapter after it was running; the process should exit. */
  onRefused?(message: string): void;
  registry?: Registry;
}

export interface RunningAdapter {
  feedId: string;
  bus: string;
  control: string;
  stop(): Promise<void>;
}
