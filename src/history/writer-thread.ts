/**
 * The history writer's thread: takes the recorder's messages and answers each (writer.ts does
 * the work). Started by recorder.ts with `workerData.dir`.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { HistoryWriter, type WriterRequest } from './writer.js';

const port = parentPort;
if (!port) throw new Error('the history writer runs as a worker thread');
const writer = new HistoryWriter(String((workerData as { dir: string }).dir));
port.on('message', (request: WriterRequest) => {
  let reply;
  try {
    reply = writer.handle(request);
  } catch (error) {
    // Opening a day file can fail too (a damaged one, a full disk): the recorder is told, never left waiting.
    reply = request.type === 'batch'
      ? { type: 'failed', id: request.batch.id, ticks: request.batch.count, full: false, message: (error as Error).message }
      : { type: 'error', message: (error as Error).message };
  }
  port.postMessage(reply);
  if (request.type === 'close') port.close();
});
