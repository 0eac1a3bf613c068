/**
 * The gateway under test for bench/recording.ts: `node bin/tickcast start` with the simulator as
 * the feed (as bench/servers.ts starts it) and TICKCAST_RECORD set, its history store in its
 * own temporary data directory; and its `/api/status` figures.
 */
import { join } from 'node:path';
import { type GatewayProcess, makeTempDir, startGatewayProcess } from '../../test/helpers/cli.js';
import { removeDirNow, trackChild, trackDir } from '../cleanup.js';
import type { ServerUnderTest } from '../servers.js';
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
  const dataDir = makeTempDir('tickcast-bench-rec-');
  trackDir(dataDir);
  const historyDir = join(dataDir, 'history');
  let gateway: GatewayProcess;
  try {
    gateway = await startGatewayProcess({
      dataDir,
      env: {
        TICKCAST_SIM_SYMBOLS: symbolList(workload.streams),
        TICKCAST_SIM_RATE: String(workload.ratePerStream),
        TICKCAST_SIM_SEED: String(seed),
        TICKCAST_LOG_LEVEL: 'warn',
        TICKCAST_MAX_CONNECTIONS_PER_KEY: '100000',
        TICKCAST_MAX_CONNECTIONS: '100000',
        TICKCAST_MAX_PENDING_AUTH: '100000',
        TICKCAST_RECORD: record,
        TICKCAST_HISTORY_DIR: historyDir,
      },
    });
  } catch (error) {
    removeDirNow(dataDir);
    throw error;
  }
  trackChild(gateway.child);
  if (!gateway.devKey) throw new Error('tickcast start printed no dev key');
  const statusUrl = `${gateway.url.replace(/^ws/, 'http')}/api/status`;
  return {
    gateway,
    pid: gateway.child.pid!,
    historyDir,
    server: {
      kind: 'tickcast',
      url: gateway.url,
      apiKey: gateway.devKey,
      pid: gateway.child.pid!,
      window: () => {},
      report: async () => null,
      warnings: () => gateway.stderr().split('\n').filter((line) => line.trim() !== ''),
      stop: async () => {
        await gateway.stop('SIGTERM', 15_000);
      },
    },
    status: async () => (await (await fetch(statusUrl)).json()) as Status,
    remove: () => removeDirNow(dataDir),
  };
}
