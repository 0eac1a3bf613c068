/**
 * The cluster worker role: the main of a gateway worker process, forked by the cluster primary
 * (cluster-primary.ts). It waits for its init message, serves clients until the primary says stop
 * or goes away, then exits. Signals are the primary's business: a Ctrl-C reaches the whole
 * process group, and the primary then stops its workers in order.
 */
import { systemClock } from '../clock.js';
import { ErrorCode, TickcastError } from '../errors.js';
import { tuneHeap } from '../gateway/heap-tuning.js';
import { tolerateClosedStdio } from '../observability/closed-output.js';
import { createLogger } from '../observability/logger.js';
import { PrimaryChannel } from '../cluster/channel.js';
import type { WorkerMessage } from '../cluster/messages.js';
import { type RunningWorker, startWorker } from '../cluster/worker.js';

const send = (message: WorkerMessage): void => {
  if (process.connected) process.send!(message);
};
const channel = new PrimaryChannel({ send });
let running: RunningWorker | undefined;
let stopping = false;

async function stop(code: number): Promise<never> {
  if (!stopping) {
    stopping = true;
    channel.close();
    await running?.stop();
  }
  process.exit(code);
}

// This process runs one gateway: its V8 heap settings are set here, for the whole process.
tuneHeap();
process.on('SIGINT', () => {});
process.on('SIGTERM', () => {});
// Workers write to the primary's stdout and stderr: when their reader goes, as the primary does.
tolerateClosedStdio();
process.on('disconnect', () => void stop(0));

process.on('message', (message: unknown) => {
  if (!channel.receive(message)) return;
  const { type } = message as { type: string };
  if (type === 'stop') void stop(0);
});

send({ type: 'ready' });

channel.onMessage((message) => {
  if (message.type !== 'init' || running || stopping) return;
  const { init } = message;
  const logger = createLogger(init.config.logLevel, process.stderr).child({ worker: init.worker });
  // Later messages (feeds, statuses) go to the worker's own listener, set in startWorker.
  startWorker(init, { channel, clock: systemClock, logger }).then(
    (worker) => {
      running = worker;
      send({ type: 'listening', port: worker.port });
    },
    (error: Error) => {
      const code = error instanceof TickcastError ? error.code : ErrorCode.WORKER_FAILED;
      send({ type: 'failed', code, message: error.message });
      logger.error({ err: error.message }, 'gateway worker failed to start');
      setTimeout(() => process.exit(1), 100);
    },
  );
});
