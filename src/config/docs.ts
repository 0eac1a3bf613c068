/**
 * The configuration reference for users (docs/configuration.md, and the table in
 * docs/operations.md), generated from the options table so it cannot drift from what the loader
 * accepts.
 */
import { OPTIONS, type Option } from './options.js';

/** A markdown table: variable | flag | default | description, one row per option. */
export function renderConfigTable(): string {
  const rows = OPTIONS.map((option: Option) => [
    code(option.env),
    option.flag === undefined ? '' : code(option.flag),
    renderDefault(option.default),
    cell(option.description),
  ]);
  return [
    '| Variable | Flag | Default | Description |',
    '|---|---|---|---|',
    ...rows.map((row) => `| ${row.join(' | ')} |`),
  ].join('\n');
}

function renderDefault(value: string | undefined): string {
  if (value === undefined) return '(unset)';
  if (value === '') return '(empty)';
  return code(value);
}

function code(text: string): string {
  return `\`${cell(text)}\``;
}

/** Text safe inside a table cell. */
function cell(text: string): string {
  return text.replace(/\|/g, '\\|').replace(/\n/g, ' ');
}

/** The whole of docs/configuration.md (kept in sync by a test; regenerate with `npm run docs`). */
export function configurationDoc(): string {
  return [
    '# Configuration',
    '',
    'Generated from `src/config/options.ts` by `npm run docs`; do not edit by hand.',
    '',
    'Precedence, highest first: command-line flags, the process environment, an OpenAlgo',
    "directory's `.env` (with `TICKCAST_OPENALGO_DIR`: read as OpenAlgo reads it, for OpenAlgo's",
    'variables, relative paths taken from that directory), the env file (`.env` in the working',
    'directory unless `TICKCAST_ENV_FILE` names another), the defaults.',
    'Every value is validated at start; a bad one stops the start with exit code 2 and a message',
    'naming the variable (and flag), the value given (never a secret) and what is allowed.',
    '',
    renderConfigTable(),
  ].join('\n');
}

/** Marker lines around the generated table in a hand-written document (docs/operations.md). */
export const CONFIG_TABLE_START = '<!-- configuration table: generated from src/config/options.ts by `npm run docs`; do not edit by hand -->';
export const CONFIG_TABLE_END = '<!-- end of configuration table -->';

/**
 * `doc` with everything between the marker lines replaced by the current table. Throws if the
 * markers are missing, repeated or out of order, rather than guess where the table goes.
 */
export function withConfigTable(doc: string): string {
  const start = doc.indexOf(CONFIG_TABLE_START);
  const end = doc.indexOf(CONFIG_TABLE_END);
  if (start < 0 || end < 0 || end < start || doc.indexOf(CONFIG_TABLE_START, start + 1) >= 0 || doc.indexOf(CONFIG_TABLE_END, end + 1) >= 0) {
    throw new Error(`expected one "${CONFIG_TABLE_START}" line followed by one "${CONFIG_TABLE_END}" line`);
  }
  return `${doc.slice(0, start)}${CONFIG_TABLE_START}\n${renderConfigTable()}\n${doc.slice(end)}`;
}
