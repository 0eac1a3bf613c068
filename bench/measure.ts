/**
 * One measurement: start a server with the workload's tick source, connect the clients from
 * load-generator worker processes, let it settle, measure a window, and turn what the workers
 * and /proc saw into figures. Ticks are attributed to the window by their publish timestamp,
 * so every process agrees on which ticks count, wherever they were received.
 */
import { type ChildProcess, fork } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { trackChild } from './cleanup.js';
import { Histogram } from './histogram.js';
import type { FromWorker, ToWorker } from './messages.js';
import { WindowSampler, type WindowStats, treeRssBytes } from './proc-stats.js';
import { type ServerKind, type ServerUnderTest, type TickSource, startServer } from './servers.js';
import { type Workload, symbolList } from './workload.js';

export interface MeasureSettings {
  workers: number;
  warmupS: number;
  durationS: number;
  seed: number;
  maxBufferedBytes: number | undefined;
  /** Clients ask for per-stream sequence numbers, so loss is counted exactly. */
  seq: boolean;
  /** tickcast's `--workers`: gateway processes sharing the port (1: the single-process gateway). */
  gatewayWorkers: number;
  /** Run tickcast as this many gateway nodes on a NATS bus (bench/fleet.ts); unset: one gateway on ZeroMQ. */
  natsNodes?: number;
}

/** tickcast's `tickcast_conflated_total` from its /metrics; null for a server without one. */
async function conflatedTotal(kind: string, url: string): Promise<number | null> {
  if (kind !== 'tickcast') return null;
  try {
    const text = await (await fetch(`${url.replace(/^ws/, 'http')}/metrics`)).text();
    const value = /^tickcast_conflated_total (\S+)$/m.exec(text)?.[1];
    return value === undefined ? null : Number(value);
  } catch {
    return null;
  }
}

/** The conflated total over every node of the server. */
async function conflatedOf(kind: string, server: ServerUnderTest): Promise<number | null> {
  const totals = await Promise.all((server.urls ?? [server.url]).map((url) => conflatedTotal(kind, url)));
  return totals.some((t) => t === null) ? null : totals.reduce((a, b) => a! + b!, 0);
}

export interface Measurement {
  /** Messages the server conflated during the window (tickcast's /metrics), or null. */
  conflated: number | null;
  server: ServerKind;
  clientsConnected: number;
  clientsFailed: number;
  connectErrors: string[];
  windowS: number;
  /** How long after the window the clients took to catch up (capped at DRAIN_MAX_MS). */
  drainS: number;
  /** Market data received by all clients, ticks stamped in the window. */
  deliveries: number;
  deliveriesPerS: number;
  fastLatency: Histogram;
  slowLatency: Histogram;
  /** Fast clients: ticks of their streams stamped in the window that they did not receive. */
  lost: number;
  /** `seq`: counted from tickcast's per-stream sequence numbers (exact); `relative`: see lossFigures. */
  lostMethod: 'seq' | 'relative';
  /** Σ over streams of the window's ticks (as counted for `lost`) ÷ Σ (rate × window). */
  seenPct: number;
  slowClients: number;
  /** Slow clients: ticks read during the window ÷ ticks their streams carried in it. */
  slowReceivedPct: number | null;
  stats: WindowStats;
  rssIdleBytes: number;
  /** Server CPU per delivered message (µs). */
  cpuUsPerDelivery: number | null;
  memoryPerClientBytes: number | null;
  /** Clients whose connection ended during the run, and why (a few). */
  disconnected: number;
  disconnectReasons: string[];
  unexpectedFrames: number;
  /** The baseline's own count of ticks it published in the window and market data it skipped. */
  serverCounted: { published: number; dropped: number } | null;
  warnings: string[];
}

/**
 * After the window, wait until every fast client has received a tick stamped after it (so the
 * window's ticks that are coming have come), but at most this long: later ones count as lost.
 */
export const DRAIN_MAX_MS = 10_000;
const DRAIN_POLL_MS = 200;
const CONNECT_CONCURRENCY = 64;
/** A slow reader takes at most this many bytes per read, then pauses: 10 KiB/s. */
export const SLOW_READ_BYTES = 1024;
export const SLOW_PAUSE_MS = 100;

export async function measure(kind: ServerKind, workload: Workload, settings: MeasureSettings): Promise<Measurement> {
  const source: TickSource = {
    symbols: symbolList(workload.streams),
    ratePerStream: workload.ratePerStream,
    seed: settings.seed,
    maxBufferedBytes: settings.maxBufferedBytes,
    gatewayWorkers: settings.gatewayWorkers,
    ...(settings.natsNodes ? { natsNodes: settings.natsNodes } : {}),
  };
  const server = await startServer(kind, source);
  const workers: ChildProcess[] = [];
  try {
    await sleep(300);
    const rssIdleBytes = treeRssBytes(server.pid) ?? 0;

    // Client c goes to worker c mod k, so slow clients and modes spread evenly.
    const k = Math.max(1, Math.min(settings.workers, workload.clients.length));
    for (let w = 0; w < k; w++) workers.push(forkWorker());
    await Promise.all(workers.map((worker) => request(worker, null, 'hello', 20_000)));
    const setup = await setUpClients(workers, workload, server, settings);
    if (setup.connected === 0) throw new Error(`${kind}: no client could connect and subscribe: ${setup.errors.join('; ')}`);

    await sleep(settings.warmupS * 1000);
    const t0 = Date.now() + 200; // time for the window to reach every process first
    const t1 = t0 + windowMs(settings.durationS, workload.ratePerStream);
    for (const worker of workers) send(worker, { type: 'window', t0, t1 });
    server.window(t0, t1);
    const sampler = new WindowSampler(server.pid, workers.map((w) => w.pid!));
    await sleep(t0 - Date.now());
    sampler.start();
    const conflatedBefore = await conflatedOf(kind, server);
    await sleep(t1 - Date.now());
    const stats = sampler.stop();
    const conflatedAfter = await conflatedOf(kind, server);
    const drainS = await drain(workers);

    const reports = await Promise.all(workers.map((worker) => request(worker, { type: 'report' }, 'report', 15_000)));
    const serverCounted = await server.report();

    const received = inClientOrder(reports);
    const withoutSeq = reports.reduce((sum, r) => sum + r.withoutSeq, 0);
    const lostMethod = settings.seq && withoutSeq === 0 ? 'seq' : 'relative';
    const fastLatency = new Histogram();
    const slowLatency = new Histogram();
    for (const report of reports) {
      fastLatency.add(report.fast);
      slowLatency.add(report.slow);
    }
    const windowS = (t1 - t0) / 1000;
    const loss = lossFigures(workload, received, windowS, lostMethod === 'seq');
    const cpuUsPerDelivery = loss.deliveries > 0 ? (stats.serverCpuSeconds * 1e6) / loss.deliveries : null;
    return {
      server: kind,
      conflated: conflatedBefore === null || conflatedAfter === null ? null : conflatedAfter - conflatedBefore,
      clientsConnected: setup.connected,
      clientsFailed: setup.failed,
      connectErrors: setup.errors,
      windowS,
      drainS,
      deliveries: loss.deliveries,
      deliveriesPerS: loss.deliveries / windowS,
      fastLatency,
      slowLatency,
      lost: loss.lost,
      lostMethod,
      seenPct: loss.seenPct,
      slowClients: workload.clients.filter((c) => c.slow).length,
      slowReceivedPct: loss.slowReceivedPct,
      stats,
      rssIdleBytes,
      cpuUsPerDelivery,
      memoryPerClientBytes: setup.connected > 0 ? (stats.serverRssMeanBytes - rssIdleBytes) / setup.connected : null,
      disconnected: reports.reduce((n, r) => n + r.closed, 0),
      disconnectReasons: [...new Set(reports.flatMap((r) => r.closeReasons))].slice(0, 5),
      unexpectedFrames: reports.reduce((n, r) => n + r.unexpected, 0),
      serverCounted,
      warnings: server.warnings().slice(0, 20),
    };
  } finally {
    for (const worker of workers) worker.kill('SIGKILL');
    await server.stop();
  }
}

/**
 * The window is a whole number of tick periods of a stream, so it holds the same number of each
 * stream's ticks whatever their phase: the simulator's streams can fall into step (after a stall,
 * every stream's credit saturates at once), and then a window of 2.4 periods holds 2 ticks of
 * every stream or 3 of every stream, not 2.4 on average.
 */
export function windowMs(durationS: number, ratePerStream: number): number {
  const periods = Math.max(1, Math.round(durationS * ratePerStream));
  return Math.round((periods / ratePerStream) * 1000);
}

/** What the workers counted, per client in plan order, per subscribed stream in plan order. */
interface Received {
  counts: number[][];
  firstSeq: number[][];
  lastSeq: number[][];
}

/**
 * How many of each stream's window ticks every fast client missed, per stream and mode. With
 * tickcast's `seq` extension this is exact: the sequence numbers of a stream's messages at a mode
 * run from the lowest first `seq` any client saw to the highest last one, so their count is known
 * even if every client missed some. Without `seq` (the baseline does not number ticks unless asked; an old
 * gateway cannot), a stream's count is the most any fast subscriber received: exact when one of
 * them got every tick, a lower bound otherwise. The source's health is checked against rate × window.
 */
function lossFigures(workload: Workload, received: Received, windowS: number, useSeq: boolean) {
  const n = workload.streams.length;
  // Counted per stream and mode: tickcast numbers each mode's messages of a stream apart.
  const key = (id: number, mode: number): number => id * 3 + mode - 1;
  const best = new Array<number>(n * 3).fill(-1);
  const bestAny = new Array<number>(n * 3).fill(0);
  const firstSeq = new Array<number>(n * 3).fill(Infinity);
  const lastSeq = new Array<number>(n * 3).fill(0);
  workload.clients.forEach((plan, c) =>
    plan.streams.forEach((id, slot) => {
      const k = key(id, plan.mode);
      const count = received.counts[c]?.[slot] ?? 0;
      if (count > bestAny[k]!) bestAny[k] = count;
      if (plan.slow) return;
      if (count > best[k]!) best[k] = count;
      const first = received.firstSeq[c]?.[slot] ?? 0;
      if (first > 0 && first < firstSeq[k]!) firstSeq[k] = first;
      lastSeq[k] = Math.max(lastSeq[k]!, received.lastSeq[c]?.[slot] ?? 0);
    }),
  );
  const expected = best.map((b, k) => {
    if (useSeq && lastSeq[k]! > 0) return lastSeq[k]! - firstSeq[k]! + 1;
    return b >= 0 ? b : bestAny[k]!; // a stream only slow clients hold is judged by them
  });
  // A stream's ticks: the most any of its modes was sent (each mode's messages are one per tick).
  const streamTicks = new Array<number>(n).fill(0);
  expected.forEach((count, k) => (streamTicks[Math.floor(k / 3)] = Math.max(streamTicks[Math.floor(k / 3)]!, count)));

  let deliveries = 0;
  let lost = 0;
  let slowReceived = 0;
  let slowExpected = 0;
  workload.clients.forEach((plan, c) =>
    plan.streams.forEach((id, slot) => {
      const count = received.counts[c]?.[slot] ?? 0;
      const k = key(id, plan.mode);
      deliveries += count;
      if (plan.slow) {
        slowReceived += count;
        slowExpected += expected[k]!;
      } else {
        lost += Math.max(0, expected[k]! - count);
      }
    }),
  );
  const nominal = workload.ratePerStream * windowS * n;
  const seen = streamTicks.reduce((a, b) => a + b, 0);
  return {
    deliveries,
    lost,
    seenPct: nominal > 0 ? (seen / nominal) * 100 : 0,
    slowReceivedPct: slowExpected > 0 ? (slowReceived / slowExpected) * 100 : null,
  };
}

/**
 * Connects and authenticates every client (client c on worker c mod k), then subscribes them:
 * ticks start with the first subscription, and would otherwise slow the remaining handshakes.
 */
export async function setUpClients(workers: ChildProcess[], workload: Workload, server: ServerUnderTest, settings: Pick<MeasureSettings, 'seq'>) {
  const k = workers.length;
  const timeoutMs = 30_000 + workload.clients.length * 10;
  const connected = await Promise.all(
    workers.map((worker, w) =>
      request(
        worker,
        {
          type: 'connect',
          // Several gateway nodes: each worker's clients go to one, so the nodes share the clients.
          url: server.urls?.[w % server.urls.length] ?? server.url,
          apiKey: server.apiKey,
          streams: workload.streams,
          clients: workload.clients.filter((_plan, c) => c % k === w),
          concurrency: CONNECT_CONCURRENCY,
          slowPauseMs: SLOW_PAUSE_MS,
          slowReadBytes: SLOW_READ_BYTES,
          seq: settings.seq,
        },
        'connected',
        timeoutMs,
      ),
    ),
  );
  const subscribed = await Promise.all(workers.map((worker) => request(worker, { type: 'subscribe' }, 'ready', timeoutMs)));
  const replies = [...connected, ...subscribed];
  return {
    connected: subscribed.reduce((n, r) => n + r.ok, 0),
    failed: replies.reduce((n, r) => n + r.failed, 0),
    errors: replies.flatMap((r) => r.errors).slice(0, 5),
  };
}

/** The workers' counts back in client order (the inverse of the round-robin split). */
function inClientOrder(reports: Array<Extract<FromWorker, { type: 'report' }>>): Received {
  const k = reports.length;
  const received: Received = { counts: [], firstSeq: [], lastSeq: [] };
  reports.forEach((report, w) =>
    report.counts.forEach((list, i) => {
      received.counts[i * k + w] = list;
      received.firstSeq[i * k + w] = report.firstSeq[i]!;
      received.lastSeq[i * k + w] = report.lastSeq[i]!;
    }),
  );
  return received;
}

/** Waits until every worker's fast clients have caught up past the window; returns the seconds waited. */
async function drain(workers: ChildProcess[]): Promise<number> {
  const started = performance.now();
  while (performance.now() - started < DRAIN_MAX_MS) {
    await sleep(DRAIN_POLL_MS);
    const progress = await Promise.all(workers.map((worker) => request(worker, { type: 'progress' }, 'progress', DRAIN_MAX_MS)));
    if (progress.every((p) => p.caughtUp)) break;
  }
  return (performance.now() - started) / 1000;
}

export function forkWorker(): ChildProcess {
  // execArgv carries tsx's loader, so the worker runs TypeScript like this process does.
  const worker = fork(new URL('./load-client.ts', import.meta.url), [], {
    execArgv: process.execArgv,
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  trackChild(worker);
  return worker;
}

export function send(worker: ChildProcess, message: ToWorker): void {
  if (worker.connected) worker.send(message);
}

/** Sends `message` (if any) and waits for the worker's reply of type `type`. */
export function request<T extends FromWorker['type']>(
  worker: ChildProcess,
  message: ToWorker | null,
  type: T,
  timeoutMs: number,
): Promise<Extract<FromWorker, { type: T }>> {
  return new Promise((resolve, reject) => {
    const done = (): void => {
      clearTimeout(timer);
      worker.off('message', onMessage).off('exit', onExit);
    };
    const onMessage = (reply: FromWorker): void => {
      if (reply.type === 'fatal') {
        done();
        reject(new Error(`load worker failed: ${reply.message}`));
      } else if (reply.type === type) {
        done();
        resolve(reply as Extract<FromWorker, { type: T }>);
      }
    };
    const onExit = (code: number | null, signal: string | null): void => {
      done();
      reject(new Error(`load worker exited (code ${code}, signal ${signal}) while waiting for '${type}'`));
    };
    const timer = setTimeout(() => {
      done();
      reject(new Error(`load worker sent no '${type}' within ${timeoutMs} ms`));
    }, timeoutMs);
    worker.on('message', onMessage).on('exit', onExit);
    if (message) send(worker, message);
  });
}
