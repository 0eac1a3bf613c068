/**
 * The frame writer's thread: takes the frame recorder's messages and answers each, in the order
 * sent (frame-writer.ts does the work). Started by frame-recorder.ts with `workerData.dir`.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { FrameWriter, type FrameWriterReply, type FrameWriterRequest } from './frame-writer.js';

const port = parentPort;
if (!port) throw new Error('the frame writer runs as a worker thread');
const writer = new FrameWriter((workerData as { dir: string }).dir);

// The writer is synchronous: each message is answered before the next is taken, so in order.
port.on('message', (request: FrameWriterRequest) => {
  let reply: FrameWriterReply | { type: 'error'; message: string };
  try {
    reply = writer.handle(request);
  } catch (error) {
    // Opening the store can fail too (a full disk, a directory that cannot be made): the recorder is told, never left waiting.
    reply = { type: 'error', message: (error as Error).message };
  }
  port.postMessage(reply);
  if (request.type === 'close') port.close();
});
