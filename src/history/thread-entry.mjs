// A history thread's entry when tickcast runs from its TypeScript sources (tests): Node 20's
// worker threads do not inherit tsx's loader, so the thread loads its module through tsx's API.
// `workerData.module` names the module (`./reader-thread.ts`), one of this directory's. Built
// installs start the module's .js directly (threads.ts).
import { workerData } from 'node:worker_threads';
import { tsImport } from 'tsx/esm/api';

const module = workerData?.module;
if (typeof module !== 'string' || !/^\.\/[a-z][a-z-]*\.ts$/.test(module)) throw new Error(`not a history thread module: ${String(module)}`);
await tsImport(module, import.meta.url);
