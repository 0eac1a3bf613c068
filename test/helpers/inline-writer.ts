/**
 * A recorder's writer thread on the calling thread, for faults a real disk cannot show: each
 * request is kept and answered by `handle` on the next microtask, as the thread's reply would
 * come later.
 */
import type { WriterThreadPort } from '../../src/history/writer-link.js';

export function inlineWriter<Request, Reply>(handle: (request: Request) => Reply): WriterThreadPort<Request, Reply> & { requests: Request[] } {
  const listeners: Array<(reply: Reply) => void> = [];
  const requests: Request[] = [];
  return {
    requests,
    postMessage(message: Request) {
      requests.push(message);
      const reply = handle(message);
      queueMicrotask(() => listeners.forEach((listener) => listener(reply)));
    },
    on(event: string, listener: never) {
      if (event === 'message') listeners.push(listener);
    },
    terminate: async () => 0,
  } as WriterThreadPort<Request, Reply> & { requests: Request[] };
}
