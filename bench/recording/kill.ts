/**
 * One kill -9 run: a gateway recording `all` under a small load, its `/api/status` read back to
 * back until SIGKILL comes at a random moment; then the store is opened read-only and counted.
 * Ticks lost = recorded at the last status read before the kill − ticks in the store. The last
 * read was answered a little before the kill, and ticks recorded in between are lost too (they
 * were unflushed) but not counted by that difference: an estimate of them, the recording rate ×
 * the time from sending that read to the kill, gives the upper figure.
 */
import type { ChildProcess } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { forkWorker, request, setUpClients } from '../measure.js';
import type { Workload } from '../workload.js';
import { type Status, startRecordingGateway } from './gateway.js';
import { storedTicks } from './store.js';

export interface KillRun {
  /** Seconds from recording's first written batch to the kill. */
  recordingS: number;
  /** Ticks recorded per second over the status reads. */
  ratePerS: number;
  reads: number;
  /** From sending the last answered status read to the kill, ms. */
  lastReadAgeMs: number;
  recorded: number;
  written: number;
  stored: number;
  /** max(0, recorded − stored): ticks known lost. */
  lost: number;
  /** + rate × lastReadAgeMs: the estimate including ticks recorded after the last read. */
  lostHigh: number;
  /** Written (acknowledged) at the last read but not in the store: must be 0. */
  writtenMissing: number;
  storeOk: boolean;
}

/** Between status reads: short, so the last read is close to the kill, without keeping the gateway's loop busy. */
export const READ_GAP_MS = 5;

interface Reading {
  sentAt: number;
  receivedAt: number;
  recorded: number;
  written: number;
}

export async function killRun(workload: Workload, seed: number, delayMs: number): Promise<KillRun> {
  const gw = await startRecordingGateway(workload, 'all', seed);
  const workers: ChildProcess[] = [];
  try {
    workers.push(forkWorker());
    await request(workers[0]!, null, 'hello', 20_000);
    const setup = await setUpClients(workers, workload, gw.server, { seq: false });
    if (setup.connected === 0) throw new Error(`no client could connect and subscribe: ${setup.errors.join('; ')}`);
    const ticks = (status: Status) => status.history!.ticks;

    // Recording is under way once a first batch is written.
    const deadline = performance.now() + 10_000;
    while (ticks(await gw.status()).written === 0) {
      if (performance.now() > deadline) throw new Error('no batch was written within 10 s');
      await sleep(20);
    }
    const startedAt = performance.now();
    let killedAt = Infinity;
    const killed = new Promise<void>((resolve) =>
      setTimeout(() => {
        gw.gateway.child.kill('SIGKILL');
        killedAt = performance.now();
        resolve();
      }, delayMs),
    );
    const readings: Reading[] = [];
    const poll = (async () => {
      while (killedAt === Infinity) {
        const sentAt = performance.now();
        try {
          const t = ticks(await gw.status());
          // An answer that arrives after the kill was still made before it.
          readings.push({ sentAt, receivedAt: performance.now(), recorded: t.recorded, written: t.written });
        } catch {
          // the connection died with the process
        }
        await sleep(READ_GAP_MS);
      }
    })();
    await killed;
    await Promise.all([poll, gw.gateway.exited]);
    for (const worker of workers) worker.kill('SIGKILL');

    const first = readings[0]!;
    const last = readings.at(-1)!;
    const ratePerS = (last.recorded - first.recorded) / ((last.receivedAt - first.receivedAt) / 1000);
    const { ticks: stored, ok } = storedTicks(gw.historyDir);
    const lastReadAgeMs = killedAt - last.sentAt;
    const lost = Math.max(0, last.recorded - stored);
    return {
      recordingS: (killedAt - startedAt) / 1000,
      ratePerS,
      reads: readings.length,
      lastReadAgeMs,
      recorded: last.recorded,
      written: last.written,
      stored,
      lost,
      lostHigh: Math.max(0, last.recorded + (ratePerS * lastReadAgeMs) / 1000 - stored),
      writtenMissing: Math.max(0, last.written - stored),
      storeOk: ok,
    };
  } finally {
    for (const worker of workers) worker.kill('SIGKILL');
    if (gw.gateway.child.exitCode === null && gw.gateway.child.signalCode === null) gw.gateway.child.kill('SIGKILL');
    await gw.gateway.exited;
    gw.remove();
  }
}
