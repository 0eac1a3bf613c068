/**
 * One run of the cost measurement: a gateway recording `record` (or not) under the load of
 * `workload`, clients set up by bench/measure.ts's machinery, a window timed by the ticks'
 * publish timestamps; the gateway's CPU per delivery from /proc (whole process, main thread,
 * writer thread), deliveries and loss from the clients, the recorder's counts from /api/status
 * at both ends of the window; then, with the gateway stopped, the store's bytes and ticks.
 */
import type { ChildProcess } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { DRAIN_MAX_MS, forkWorker, request, send, setUpClients, windowMs } from '../measure.js';
import type { FromWorker } from '../messages.js';
import { WindowSampler } from '../proc-stats.js';
import type { Workload } from '../workload.js';
import { startRecordingGateway } from './gateway.js';
import { type StoreContents, storeContents } from './store.js';
import { findWriterThread, threadCpuSeconds } from './threads.js';

export interface CostSettings {
  workers: number;
  warmupS: number;
  durationS: number;
  seed: number;
}

export interface CostRun {
  record: string;
  windowS: number;
  clients: number;
  deliveries: number;
  deliveriesPerS: number;
  /** Fast clients' missed ticks (from the `seq` numbers, as bench/measure.ts counts them). */
  lost: number;
  /** Ticks on the gateway's bus per second (what the simulator published). */
  busTicksPerS: number;
  cpuPct: number;
  cpuUsPerDelivery: number;
  mainCpuUsPerDelivery: number | null;
  /** The history writer's thread (null when off, or not identified). */
  writerCpuPct: number | null;
  writerCpuUsPerDelivery: number | null;
  writerUsPerTick: number | null;
  /** Everything but the main and writer threads (GC threads, libuv's pool, ZeroMQ). */
  otherCpuUsPerDelivery: number | null;
  recordedPerS: number | null;
  writtenPerS: number | null;
  shed: number | null;
  failed: number | null;
  hostBusyPct: number;
  /** After the gateway stopped (recording runs). */
  store: StoreContents | null;
  warnings: string[];
}

export async function costRun(record: string, workload: Workload, settings: CostSettings): Promise<CostRun> {
  const gw = await startRecordingGateway(workload, record, settings.seed);
  const workers: ChildProcess[] = [];
  let stopped = false;
  try {
    await sleep(300);
    const writerTid = record === 'off' ? null : await findWriterThread(gw.pid);
    const k = Math.max(1, Math.min(settings.workers, workload.clients.length));
    for (let w = 0; w < k; w++) workers.push(forkWorker());
    await Promise.all(workers.map((worker) => request(worker, null, 'hello', 20_000)));
    const setup = await setUpClients(workers, workload, gw.server, { seq: true });
    if (setup.connected === 0) throw new Error(`no client could connect and subscribe: ${setup.errors.join('; ')}`);

    await sleep(settings.warmupS * 1000);
    const t0 = Date.now() + 200;
    const t1 = t0 + windowMs(settings.durationS, workload.ratePerStream);
    for (const worker of workers) send(worker, { type: 'window', t0, t1 });
    const sampler = new WindowSampler(gw.pid, workers.map((w) => w.pid!));
    await sleep(t0 - Date.now());
    sampler.start();
    const main0 = threadCpuSeconds(gw.pid, gw.pid);
    const writer0 = writerTid === null ? null : threadCpuSeconds(gw.pid, writerTid);
    const status0 = await gw.status();
    await sleep(t1 - Date.now());
    const stats = sampler.stop();
    const main1 = threadCpuSeconds(gw.pid, gw.pid);
    const writer1 = writerTid === null ? null : threadCpuSeconds(gw.pid, writerTid);
    const status1 = await gw.status();
    await drain(workers);
    const reports = await Promise.all(workers.map((worker) => request(worker, { type: 'report' }, 'report', 15_000)));
    for (const worker of workers) worker.kill('SIGKILL');
    await gw.server.stop();
    stopped = true;
    const store = record === 'off' ? null : storeContents(gw.historyDir);

    const windowS = (t1 - t0) / 1000;
    const { deliveries, lost } = loss(workload, reports);
    const cpuUs = stats.serverCpuSeconds * 1e6;
    const mainUs = main0 !== null && main1 !== null ? (main1 - main0) * 1e6 : null;
    const writerUs = writer0 !== null && writer1 !== null ? (writer1 - writer0) * 1e6 : null;
    const h0 = status0.history?.ticks;
    const h1 = status1.history?.ticks;
    const written = h0 && h1 ? h1.written - h0.written : null;
    const perDelivery = (us: number | null): number | null => (us === null || deliveries === 0 ? null : us / deliveries);
    return {
      record,
      windowS,
      clients: setup.connected,
      deliveries,
      deliveriesPerS: deliveries / windowS,
      lost,
      busTicksPerS: (status1.bus.ticks - status0.bus.ticks) / windowS,
      cpuPct: stats.serverCpuPct,
      cpuUsPerDelivery: cpuUs / Math.max(1, deliveries),
      mainCpuUsPerDelivery: perDelivery(mainUs),
      writerCpuPct: writerUs === null ? null : writerUs / 1e4 / windowS,
      writerCpuUsPerDelivery: perDelivery(writerUs),
      writerUsPerTick: writerUs === null || !written ? null : writerUs / written,
      otherCpuUsPerDelivery: mainUs === null ? null : perDelivery(cpuUs - mainUs - (writerUs ?? 0)),
      recordedPerS: h0 && h1 ? (h1.recorded - h0.recorded) / windowS : null,
      writtenPerS: written === null ? null : written / windowS,
      shed: h1 ? h1.shed : null,
      failed: h1 ? h1.failed : null,
      hostBusyPct: stats.hostBusyPct,
      store,
      warnings: gw.server.warnings().slice(0, 10),
    };
  } finally {
    for (const worker of workers) worker.kill('SIGKILL');
    if (!stopped) await gw.server.stop().catch(() => {});
    gw.remove();
  }
}

/** Waits until every worker's fast clients have caught up past the window (at most DRAIN_MAX_MS). */
async function drain(workers: ChildProcess[]): Promise<void> {
  const started = performance.now();
  while (performance.now() - started < DRAIN_MAX_MS) {
    await sleep(200);
    const progress = await Promise.all(workers.map((worker) => request(worker, { type: 'progress' }, 'progress', DRAIN_MAX_MS)));
    if (progress.every((p) => p.caughtUp)) break;
  }
}

/**
 * Deliveries in the window, and what fast clients missed: per stream and mode, the window's
 * ticks run from the lowest first `seq` any client saw to the highest last one (bench/measure.ts).
 * Client c is worker c mod k's (c div k)-th.
 */
function loss(workload: Workload, reports: Array<Extract<FromWorker, { type: 'report' }>>): { deliveries: number; lost: number } {
  const k = reports.length;
  const at = (c: number) => ({ report: reports[c % k]!, i: Math.floor(c / k) });
  const first = new Map<number, number>();
  const last = new Map<number, number>();
  const key = (id: number, mode: number): number => id * 3 + mode - 1;
  workload.clients.forEach((plan, c) => {
    if (plan.slow) return;
    const { report, i } = at(c);
    plan.streams.forEach((id, slot) => {
      const f = report.firstSeq[i]?.[slot] ?? 0;
      const l = report.lastSeq[i]?.[slot] ?? 0;
      const kk = key(id, plan.mode);
      if (f > 0 && f < (first.get(kk) ?? Infinity)) first.set(kk, f);
      if (l > (last.get(kk) ?? 0)) last.set(kk, l);
    });
  });
  let deliveries = 0;
  let lost = 0;
  workload.clients.forEach((plan, c) => {
    const { report, i } = at(c);
    plan.streams.forEach((id, slot) => {
      const count = report.counts[i]?.[slot] ?? 0;
      deliveries += count;
      if (plan.slow) return;
      const kk = key(id, plan.mode);
      const expected = last.has(kk) ? last.get(kk)! - first.get(kk)! + 1 : 0;
      lost += Math.max(0, expected - count);
    });
  });
  return { deliveries, lost };
}
