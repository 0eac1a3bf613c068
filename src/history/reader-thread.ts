/**
 * The history reader's thread: runs one read (read-job.ts) for `GET /api/ticks`, started by
 * reader.ts with the request as `workerData`. It sends a chunk, then waits for the gateway to ask
 * for the next one (after the HTTP response has taken the last), so a slow client holds the read
 * back instead of letting it pile up; `cancel` stops it. The thread ends after the end message.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { ReadJob, type ReadRequest, type ReaderMessage, type ReaderRequest } from './read-job.js';
import { faultField } from './store.js';

const port = parentPort;
if (!port) throw new Error('the history reader runs as a worker thread');

let job: ReadJob | undefined;
const send = (message: ReaderMessage): void => {
  port.postMessage(message);
  if (message.type !== 'chunk') port.close();
};
const step = async (): Promise<void> => {
  try {
    job ??= await ReadJob.start(workerData as ReadRequest);
    send(await job.next());
  } catch (error) {
    await job?.cancel().catch(() => {});
    send({ type: 'error', message: (error as Error).message, ...faultField(error) });
  }
};

// The gateway asks for one chunk at a time, after the last was sent: steps never overlap.
port.on('message', (request: ReaderRequest) => {
  if (request.type === 'more') return void step();
  void job?.cancel().catch(() => {});
  port.close();
});
void step();
