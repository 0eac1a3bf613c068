/**
 * The summary thread: keeps the history store open read-only with a SummaryCache (summary.ts)
 * and answers each `summarise` with what the store holds per stream, one at a time, so the
 * store's synchronous work (SQLite) never runs on the gateway's event loop. Started by
 * summaries.ts with the store's location as `workerData`; `close` closes the store and ends it.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { type HistoryLocation, type HistoryStore, faultField } from './store.js';
import { openHistoryStore } from './open-store.js';
import { SummaryCache, type SummaryMessage, type SummaryRequest } from './summary.js';

const port = parentPort;
if (!port) throw new Error('the history summary runs as a worker thread');

const { location } = workerData as { location: HistoryLocation };
let opened: Promise<{ store: HistoryStore; cache: SummaryCache }> | undefined;
const open = (): Promise<{ store: HistoryStore; cache: SummaryCache }> => {
  opened ??= openHistoryStore(location, { readonly: true }).then((store) => ({ store, cache: new SummaryCache(store) }));
  // A store that could not be opened (PostgreSQL away) is tried again on the next request.
  opened.catch(() => (opened = undefined));
  return opened;
};

// Requests come one at a time (the gateway's side waits for each answer); chained all the same.
let queue: Promise<void> = Promise.resolve();
port.on('message', (request: SummaryRequest) => {
  queue = queue.then(async () => {
    if (request.type === 'close') {
      if (opened) await (await opened.catch(() => undefined))?.store.close();
      port.close();
      return;
    }
    let message: SummaryMessage;
    try {
      const { cache } = await open();
      message = { type: 'summary', summary: await cache.summarise(request.now) };
    } catch (error) {
      message = { type: 'error', message: (error as Error).message, ...faultField(error) };
    }
    port.postMessage(message);
  });
});
