/**
 * `--workers N`: one instance served by N gateway processes sharing the WebSocket port (Node's
 * cluster module hands each new connection to a worker in turn). The primary keeps everything
 * there must be one of — the registry entry, the bus endpoint, the adapters and their control
 * channel, upstream interest — and workers keep clients: sessions, subscriptions, fan-out.
 *
 * Ticks: publishers → bus endpoint (XSUB) → libzmq proxy → fan-out endpoint (XPUB) → every
 * worker's SUB. Interest: each worker tells the primary the highest mode its clients want per
 * stream (messages.ts) and the hub (hub.ts) subscribes adapters to the union. A worker that dies
 * has its interest released and is replaced; its clients reconnect to the others.
 *
 * This file holds the primary's worker pool; roles/cluster-primary.ts starts the primary with it,
 * and roles/cluster-worker.ts is each worker process's main.
 */
import cluster, { type Worker } from 'node:cluster';
import type { Clock } from '../clock.js';
import type { Config } from '../config/options.js';
import type { AdapterRoute } from '../gateway/feeds.js';
import type { UserFeeds } from '../gateway/user-feeds.js';
import type { AdapterHost } from '../wiring.js';
import type { Logger } from '../observability/logger.js';
import { type ProxyFigures, mergeProxyFigures } from '../observability/openalgo-stats.js';
import { ErrorCode, TickcastError } from '../errors.js';
import type { Hub } from './hub.js';
import type { InstanceLimits } from './instance-limits.js';
import { Registry } from 'prom-client';
import { historyStatus } from '../history/figures.js';
import type { Recorder } from '../history/recorder.js';
import { registerHistoryMetrics } from '../observability/metrics.js';
import { combineMetrics, combineStatus } from './figures.js';
import { type PrimaryMessage, type Report, type WorkerInit, type WorkerMessage, isWorkerMessage } from './messages.js';

/** How long workers get to close their clients on shutdown before they are killed. */
const STOP_GRACE_MS = 8000;
/** How long a starting worker may take to listen. */
const START_TIMEOUT_MS = 30_000;
/** Restart delay after a worker dies, doubled per death in a row up to the maximum. */
const RESTART_DELAY_MS = 500;
const MAX_RESTART_DELAY_MS = 30_000;
/** How long gathering the workers' figures waits for a worker that does not answer. */
const REPORT_TIMEOUT_MS = 2000;

interface Slot {
  id: number;
  worker: Worker | undefined;
  /** Its worker has been sent its init message (and so takes broadcasts). */
  ready: boolean;
  /** Deaths in a row without a successful start in between. */
  failures: number;
}

/** The primary's worker processes: starting, replacing and stopping them, and their messages. */
export class WorkerPool implements AdapterHost {
  private readonly slots: Slot[] = [];
  /** The port workers listen on, once known (the requested one may be 0). */
  private port: number;
  private stopping = false;
  private readonly restarts = new Set<NodeJS.Timeout>();
  private nextReport = 1;
  private readonly reports = new Map<number, { bodies: unknown[]; expected: number; finish: () => void }>();
  private readonly startedAt: number;
  /** What only the primary measures, in Prometheus text after the workers' (the recorder's figures). */
  private readonly registry = new Registry();

  constructor(
    private readonly options: {
      count: number;
      config: Config;
      hub: Hub;
      userFeeds: UserFeeds;
      limits: InstanceLimits;
      fanout: string;
      port: number;
      clock: Clock;
      logger: Logger;
      /** The instance's recorder (the primary runs it): its figures join the workers'. */
      recorder?: Recorder;
    },
  ) {
    this.port = options.port;
    this.startedAt = options.clock.now();
    const recorder = options.recorder;
    if (recorder) registerHistoryMetrics(this.registry, () => recorder.snapshot());
    for (let id = 1; id <= options.count; id++) this.slots.push({ id, worker: undefined, ready: false, failures: 0 });
  }

  private async primaryMetrics(): Promise<string> {
    return this.options.recorder ? this.registry.metrics() : '';
  }

  addAdapter(route: AdapterRoute): string | undefined {
    const refusal = this.options.hub.add(route);
    if (refusal) return refusal;
    const info = this.options.hub.info(route.adapter.feed);
    if (info) this.broadcast({ type: 'feed', info });
    return undefined;
  }

  replay(feed: string): Promise<void> {
    return this.options.hub.replay(feed);
  }

  broadcast(message: PrimaryMessage): void {
    for (const slot of this.slots) if (slot.ready && slot.worker?.isConnected()) slot.worker.send(message);
  }

  /** Starts the adapters, then the workers one by one (the first fixes the port when it was 0). */
  async start(): Promise<number> {
    for (const adapter of this.options.hub.feeds.adapters()) await adapter.start();
    this.options.hub.startHolds();
    for (const slot of this.slots) this.port = await this.fork(slot);
    return this.port;
  }

  /** Forks the slot's worker; resolves with its port once it listens, rejects if it exits first. */
  private fork(slot: Slot): Promise<number> {
    const { logger, config, hub } = this.options;
    const worker = cluster.fork();
    slot.worker = worker;
    slot.ready = false;
    let listening = false;
    let failure: Error | undefined;
    return new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(new TickcastError(ErrorCode.WORKER_FAILED, `gateway worker ${slot.id} did not start listening within ${START_TIMEOUT_MS / 1000} s`));
        worker.kill('SIGKILL');
      }, START_TIMEOUT_MS);
      worker.on('message', (message: unknown) => {
        if (!isWorkerMessage(message)) {
          logger.warn({ worker: slot.id }, 'ignored a malformed message from a gateway worker');
          return;
        }
        if (message.type === 'ready') {
          const init: WorkerInit = { worker: slot.id, config, port: this.options.port, fanout: this.options.fanout, feeds: hub.feedInfo(), userFeedBrokers: [...this.options.userFeeds.brokers] };
          worker.send({ type: 'init', init } satisfies PrimaryMessage);
          slot.ready = true;
          return;
        }
        if (message.type === 'listening') {
          listening = true;
          slot.failures = 0;
          clearTimeout(timer);
          logger.info({ worker: slot.id, workerPid: worker.process.pid, port: message.port }, 'gateway worker listening');
          resolve(message.port);
          return;
        }
        if (message.type === 'failed') {
          failure = new TickcastError(message.code as ErrorCode, message.message);
          return;
        }
        void this.handle(slot, worker, message);
      });
      worker.on('exit', (code, signal) => {
        clearTimeout(timer);
        // Its clients are gone: their connections no longer count against their keys.
        this.options.limits.dropWorker(slot.id);
        void hub.dropWorker(slot.id).then((released) => {
          if (released > 0) logger.info({ worker: slot.id, streams: released }, "released a gateway worker's upstream interest");
        });
        if (slot.worker === worker) {
          slot.worker = undefined;
          slot.ready = false;
        }
        if (!listening) {
          reject(failure ?? new TickcastError(ErrorCode.WORKER_FAILED, `gateway worker ${slot.id} exited before listening (code ${code ?? signal})`));
          return;
        }
        if (this.stopping) return;
        slot.failures++;
        const delay = restartDelayMs(slot.failures);
        logger.error({ worker: slot.id, code, signal, restartInMs: delay }, 'gateway worker exited; its clients reconnect to the others; starting a new one');
        const restart = setTimeout(() => {
          this.restarts.delete(restart);
          if (this.stopping) return;
          this.fork(slot).catch((error: Error) => logger.error({ worker: slot.id, err: error.message }, 'gateway worker failed to start again'));
        }, delay);
        this.restarts.add(restart);
      });
    });
  }

  private async handle(slot: Slot, worker: Worker, message: WorkerMessage): Promise<void> {
    const { hub, userFeeds, clock, limits } = this.options;
    switch (message.type) {
      case 'interest': {
        const result = await hub.setInterest(slot.id, message.feed, message.exchange, message.symbol, message.mode, message.depth);
        if (worker.isConnected()) worker.send({ type: 'result', id: message.id, result } satisfies PrimaryMessage);
        return;
      }
      case 'user_feed': {
        let result: { ok: true } | { ok: false; message: string };
        try {
          const feed = await userFeeds.feedFor(message.user, message.broker);
          result = feed === message.feed ? { ok: true } : { ok: false, message: `no broker feed for this user at ${message.broker}` };
        } catch (error) {
          result = { ok: false, message: (error as Error).message };
        }
        if (worker.isConnected()) worker.send({ type: 'result', id: message.id, result } satisfies PrimaryMessage);
        return;
      }
      case 'credentials_changed': {
        // Every worker hears the bus and asks; UserFeeds acts on a user's re-login once per window.
        userFeeds.credentialsChanged(message.user);
        return;
      }
      case 'collect': {
        const reports = await this.gather(message.what);
        const body =
          message.what === 'metrics'
            ? (await combineMetrics(reports)) + (await this.primaryMetrics())
            : JSON.stringify(
                combineStatus(
                  {
                    uptime_s: Math.round((clock.now() - this.startedAt) / 1000),
                    workers: this.slots.length,
                    // The port needs no key: users' own feeds are counted, never named.
                    adapters: hub.feedInfo().filter(({ feed }) => !userFeeds.has(feed)).map(({ feed, broker, status }) => ({ feed, broker, status })),
                    user_feeds: userFeeds.counts(),
                    upstream_streams: hub.upstream.size,
                    rss_mb: Math.round(process.memoryUsage.rss() / 104857.6) / 10,
                    ...(this.options.recorder ? { history: historyStatus(this.options.recorder.snapshot()) } : {}),
                  },
                  reports,
                ),
              );
        if (worker.isConnected()) worker.send({ type: 'result', id: message.id, result: { ok: true, body } } satisfies PrimaryMessage);
        return;
      }
      case 'key_reserve': {
        const { held, counted } = limits.reserve(slot.id, message.reservation, message.user);
        if (worker.isConnected()) worker.send({ type: 'result', id: message.id, result: { ok: true, held, counted } } satisfies PrimaryMessage);
        return;
      }
      case 'key_release':
        limits.release(slot.id, message.reservation);
        return;
      case 'auth_admit': {
        const admission = limits.admit(slot.id, message.address);
        if (worker.isConnected()) worker.send({ type: 'result', id: message.id, result: { ok: true, admission } } satisfies PrimaryMessage);
        return;
      }
      case 'auth_settle': {
        const wait = limits.settle(slot.id, message.ticket, message.outcome);
        if (worker.isConnected()) worker.send({ type: 'result', id: message.id, result: { ok: true, wait } } satisfies PrimaryMessage);
        return;
      }
      case 'report': {
        const gathering = this.reports.get(message.id);
        if (!gathering) return;
        gathering.bodies.push(message.body);
        if (gathering.bodies.length === gathering.expected) gathering.finish();
        return;
      }
      case 'ready':
      case 'listening':
      case 'failed':
        return;
    }
  }

  /** The instance's figures for OpenAlgo's stats file: every worker's, combined. */
  async proxyFigures(): Promise<ProxyFigures> {
    const reports = await this.gather('proxy');
    return mergeProxyFigures(reports.filter(isProxyFigures));
  }

  /** Every running worker's own figures (those that answer within REPORT_TIMEOUT_MS). */
  private gather(what: Report): Promise<unknown[]> {
    const workers = this.slots.filter((slot) => slot.ready && slot.worker?.isConnected()).map((slot) => slot.worker!);
    const id = this.nextReport++;
    return new Promise((resolve) => {
      const bodies: unknown[] = [];
      const finish = (): void => {
        clearTimeout(timer);
        this.reports.delete(id);
        resolve(bodies);
      };
      const timer = setTimeout(finish, REPORT_TIMEOUT_MS);
      this.reports.set(id, { bodies, expected: workers.length, finish });
      for (const worker of workers) worker.send({ type: 'report_request', id, what } satisfies PrimaryMessage);
      if (workers.length === 0) finish();
    });
  }

  /** Asks every worker to close its clients (going away) and exit; kills those that do not. */
  async stop(): Promise<void> {
    this.stopping = true;
    for (const timer of this.restarts) clearTimeout(timer);
    const running = this.slots.map((slot) => slot.worker).filter((worker): worker is Worker => worker !== undefined && !worker.isDead());
    await Promise.all(
      running.map(
        (worker) =>
          new Promise<void>((resolve) => {
            if (worker.isDead()) return resolve();
            const kill = setTimeout(() => worker.kill('SIGKILL'), STOP_GRACE_MS);
            worker.once('exit', () => {
              clearTimeout(kill);
              resolve();
            });
            if (worker.isConnected()) worker.send({ type: 'stop' } satisfies PrimaryMessage);
            else worker.kill('SIGTERM');
          }),
      ),
    );
    await this.options.hub.stop(this.options.logger);
  }
}

/** How long to wait before forking a worker again after its `failures`-th death in a row (1, 2, …). */
export function restartDelayMs(failures: number): number {
  return Math.min(RESTART_DELAY_MS * 2 ** (failures - 1), MAX_RESTART_DELAY_MS);
}

/** A worker's `proxy` report, checked: it crossed a process boundary. */
export function isProxyFigures(value: unknown): value is ProxyFigures {
  if (typeof value !== 'object' || value === null) return false;
  const figures = value as Record<string, unknown>;
  return typeof figures.clients === 'number' && typeof figures.users === 'object' && figures.users !== null && Array.isArray(figures.subscriptions);
}
