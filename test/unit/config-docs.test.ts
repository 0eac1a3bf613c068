import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { CONFIG_TABLE_END, CONFIG_TABLE_START, configurationDoc, renderConfigTable, withConfigTable } from '../../src/config/docs.js';
import { OPTIONS } from '../../src/config/options.js';

const read = (doc: string): string => readFileSync(new URL(`../../docs/${doc}`, import.meta.url), 'utf8');

describe('docs/configuration.md', () => {
  it('is the table generated from the options (run `npm run docs` after changing an option)', () => {
    const committed = read('configuration.md');
    expect(committed).toBe(configurationDoc());
    for (const option of OPTIONS) expect(committed).toContain(`\`${option.env}\``);
  });
});

describe('docs/operations.md', () => {
  it('holds the same generated table between its markers (run `npm run docs` after changing an option)', () => {
    const committed = read('operations.md');
    expect(committed).toBe(withConfigTable(committed));
    const table = committed.slice(committed.indexOf(CONFIG_TABLE_START) + CONFIG_TABLE_START.length, committed.indexOf(CONFIG_TABLE_END));
    expect(table.trim()).toBe(renderConfigTable());
    for (const option of OPTIONS) expect(table).toContain(`| \`${option.env}\` |`);
  });
});

describe('withConfigTable', () => {
  it('replaces only what is between the markers', () => {
    const doc = `# Title\n\nBefore.\n\n${CONFIG_TABLE_START}\nstale table\n${CONFIG_TABLE_END}\n\nAfter.\n`;
    const updated = withConfigTable(doc);
    expect(updated).toBe(`# Title\n\nBefore.\n\n${CONFIG_TABLE_START}\n${renderConfigTable()}\n${CONFIG_TABLE_END}\n\nAfter.\n`);
    expect(withConfigTable(updated)).toBe(updated);
  });

  it('refuses a document whose markers are missing, repeated or reversed', () => {
    expect(() => withConfigTable('# no markers')).toThrow(/expected one/);
    expect(() => withConfigTable(`${CONFIG_TABLE_END}\n${CONFIG_TABLE_START}`)).toThrow(/expected one/);
    expect(() => withConfigTable(`${CONFIG_TABLE_START}\n${CONFIG_TABLE_END}\n${CONFIG_TABLE_START}\n${CONFIG_TABLE_END}`)).toThrow(/expected one/);
  });
});
