// The writer thread's entry when tickcast runs from its TypeScript sources (tests): Node 20's
// worker threads do not inherit tsx's loader, so the thread loads its module through tsx's API.
// Built installs start writer-thread.js directly.
import { tsImport } from 'tsx/esm/api';

await tsImport('./writer-thread.ts', import.meta.url);
