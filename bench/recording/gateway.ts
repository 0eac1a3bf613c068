/**
 * The gateway under test for bench/recording.ts: `node bin/tickcast start` with the simulator as
 * the feed (bench/servers.ts's startTickcastGateway) and TICKCAST_RECORD set, its history store
 * in its own temporary data directory; and its `/api/status` figures.
 */
import { join } from 'node:path';
import { DEFAULT_INSTANCE } from '../../src/endpoints.js';
import type { GatewayProcess } from '../../test/helpers/cli.js';
import { removeDirNow } from '../cleanup.js';
import { type ServerUnderTest, startTickcastGateway } from '../servers.js';
import { type Workload, symbolList } from '../workload.js';

export interface RecordingGateway {
  gateway: GatewayProcess;
  pid: number;
  /** The history store's directory (TICKCAST_HISTORY_DIR). */
  historyDir: string;
  /** For the load workers (bench/measure.ts's setUpClients). */
  server: ServerUnderTest;
  status(): Promise<Status>;
  /** Removes the data directory (after the process has exited). */
  remove(): void;
}

/** The part of `/api/status` this bench reads. */
export interface Status {
  bus: { ticks: number };
  history?: { state: string; ticks: { recorded: number; written: number; shed: number; failed: number; queued: number } };
}

export async function startRecordingGateway(workload: Workload, record: string, seed: number): Promise<RecordingGateway> {
  const source = { symbols: symbolList(workload.streams), ratePerStream: workload.ratePerStream, seed, maxBufferedBytes: undefined };
  // The data directory outlives the stop: the bench reads the history the gateway left there, then removes it.
  const { gateway, dataDir, server } = await startTickcastGateway(source, { env: { TICKCAST_RECORD: record }, keepDataDir: true, stopTimeoutMs: 15_000 });
  const statusUrl = `${gateway.url.replace(/^ws/, 'http')}/api/status`;
  return {
    gateway,
    pid: gateway.child.pid!,
    // TICKCAST_HISTORY_DIR's default: `history` in the instance's directory.
    historyDir: join(dataDir, DEFAULT_INSTANCE, 'history'),
    server,
    status: async () => (await (await fetch(statusUrl)).json()) as Status,
    remove: () => removeDirNow(dataDir),
  };
}
