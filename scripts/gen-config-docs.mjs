// Regenerates docs/configuration.md, and the configuration table between the markers in
// docs/operations.md, from the options table (run after `npm run build`).
// test/unit/config-docs.test.ts fails when either committed file is out of date.
import { readFileSync, writeFileSync } from 'node:fs';
import { configurationDoc, withConfigTable } from '../dist/config/docs.js';

writeFileSync(new URL('../docs/configuration.md', import.meta.url), configurationDoc());

const operations = new URL('../docs/operations.md', import.meta.url);
writeFileSync(operations, withConfigTable(readFileSync(operations, 'utf8')));
