/**
 * The history writer's thread: takes the recorder's messages and answers each, one at a time in
 * the order sent (writer.ts does the work). Started by recorder.ts with `workerData.location`.
 */
import { parentPort, workerData } from 'node:worker_threads';
import type { HistoryLocation } from './store.js';
import { HistoryWriter, type WriterReply, type WriterRequest } from './writer.js';

const port = parentPort;
if (!port) throw new Error('the history writer runs as a worker thread');
const writer = new HistoryWriter((workerData as { location: HistoryLocation }).location);

const answer = async (request: WriterRequest): Promise<void> => {
  let reply: WriterReply | { type: 'error'; message: string };
  try {
    reply = await writer.handle(request);
  } catch (error) {
    // Opening the store can fail too (a damaged day, a full disk, a server away): the recorder is told, never left waiting.
    reply = request.type === 'batch'
      ? { type: 'failed', id: request.batch.id, ticks: request.batch.count, message: (error as Error).message }
      : { type: 'error', message: (error as Error).message };
  }
  port.postMessage(reply);
  if (request.type === 'close') port.close();
};

// Requests are answered in order: a batch is never written before the one sent ahead of it.
let queue = Promise.resolve();
port.on('message', (request: WriterRequest) => {
  queue = queue.then(() => answer(request));
});
