/**
 * The configuration reference for users (docs/operations.md), generated from the options table
 * so it cannot drift from what the loader accepts.
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
    'Precedence, highest first: command-line flags, the process environment, the env file',
    '(`.env` in the working directory unless `TICKCAST_ENV_FILE` names another), the defaults.',
    'Every value is validated at start; a bad one stops the start with exit code 2 and a message',
    'naming the variable (and flag), the value given (never a secret) and what is allowed.',
    '',
    renderConfigTable(),
  ].join('\n');
}
