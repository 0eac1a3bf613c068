// Regenerates docs/configuration.md from the options table (run after `npm run build`).
// test/unit/config-docs.test.ts fails when the committed file is out of date.
import { writeFileSync } from 'node:fs';
import { configurationDoc } from '../dist/config/docs.js';

writeFileSync(new URL('../docs/configuration.md', import.meta.url), configurationDoc());
