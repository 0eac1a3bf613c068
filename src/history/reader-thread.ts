/**
 * The history reader's thread: runs one read (read-job.ts) for `GET /api/ticks`, started by
 * reader.ts with the request as `workerData`. It sends a chunk, then waits for the gateway to ask
 * for the next one (after the HTTP response has taken the last), so a slow client holds the read
 * back instead of letting it pile up; `cancel` stops it. The thread ends after the end message.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { ReadJob, type ReadRequest, type ReaderMessage, type ReaderRequest } from './read-job.js';

const port = parentPort;
if (!port) throw new Error('the history reader runs as a worker thread');

let job: ReadJob | undefined;
const send = (message: ReaderMessage): void => {
  port.postMessage(message);
  if (message.type !== 'chunk') port.close();
};
const step = (): void => {
  try {
    job ??= new ReadJob(workerData as ReadRequest);
    send(job.next());
  } catch (error) {
    job?.cancel();
    send({ type: 'error', message: (error as Error).message });
  }
};

port.on('message', (request: ReaderRequest) => {
  if (request.type === 'more') return step();
  job?.cancel();
  port.close();
});
step();
