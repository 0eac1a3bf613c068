/**
 * What starting an out-of-process adapter takes and gives back, shared by its two roles
 * (adapter.ts over ZeroMQ, nats-adapter.ts over NATS, each adding its own bus options) so neither
 * imports the other. Types only: it is no role itself.
 */
import type { BusPublisher } from '../bus/bus.js';
import type { Clock } from '../clock.js';
import type { Config } from '../config/options.js';
import type { Adapter } from '../feed.js';
import type { Logger } from '../observability/logger.js';
import type { Registry } from '../registry/registry.js';
import type { Teardown } from '../teardown.js';

export interface AdapterOptions {
  config: Config;
  /** Feed id for the ticks and the registry (default: the feed kind, e.g. `simulator`). */
  feedId: string;
  clock: Clock;
  logger: Logger;
  /** Called when the gateway refuses this adapter after it was running; the process should exit. */
  onRefused?(message: string): void;
  registry?: Registry;
  /**
   * Builds and starts the adapter this process serves, publishing on `publisher`; it adds the
   * steps that stop it and close the publisher to `teardown`. Default: the configured simulator.
   */
  serve?(publisher: BusPublisher, teardown: Teardown): Promise<Adapter>;
  /** Brokers whose users it serves. Default: the simulated brokers (TICKCAST_SIM_BROKERS). */
  brokers?: readonly string[];
}

export interface RunningAdapter {
  feedId: string;
  bus: string;
  control: string;
  stop(): Promise<void>;
}
