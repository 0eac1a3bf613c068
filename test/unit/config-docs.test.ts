import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { configurationDoc } from '../../src/config/docs.js';
import { OPTIONS } from '../../src/config/options.js';

describe('docs/configuration.md', () => {
  it('is the table generated from the options (run `npm run docs` after changing an option)', () => {
    const committed = readFileSync(new URL('../../docs/configuration.md', import.meta.url), 'utf8');
    expect(committed).toBe(configurationDoc());
    for (const option of OPTIONS) expect(committed).toContain(`\`${option.env}\``);
  });
});
