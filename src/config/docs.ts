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
