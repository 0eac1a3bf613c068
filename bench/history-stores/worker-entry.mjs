// A worker thread's entry: on Node 20 tsx's loader does not reach worker threads, so the worker
// loads its TypeScript through tsx's API.
import { tsImport } from 'tsx/esm/api';

await tsImport('./worker.ts', import.meta.url);
