/**
 * Builds the validated `Config` from five sources, lowest to highest precedence:
 * built-in defaults < tickcast's env file < an OpenAlgo directory's `.env` < the process
 * environment < CLI flags.
 *
 * - The env file is `<cwd>/.env`, or the one named by `envFile` / `--env-file` /
 *   `TICKCAST_ENV_FILE`. A missing default file is fine; a missing named one is an error. It is
 *   parsed with Node's `util.parseEnv`; `process.env` is never modified.
 * - With `TICKCAST_OPENALGO_DIR` (`--openalgo-dir`, or set in tickcast's env file), `<dir>/.env`
 *   is read as OpenAlgo reads it (dotenv.ts) for OpenAlgo's variables; relative paths in it are
 *   taken from `<dir>`. The directory must exist and hold a `.env`, and every statement in it
 *   must be readable. Its proxy settings tickcast has no option for are listed in `openalgo`.
 * - A blank value (empty or only spaces) counts as not set, so the next source down applies.
 * - Values are trimmed, except secrets, which are used exactly as given.
 * - Every problem is collected, and each message names the variable (and the flag, when the value
 *   came from one), shows the value given (never a secret's) and says what is allowed.
 * - An unknown `TICKCAST_*` variable in the environment or the env file is an error (a typo would
 *   otherwise be silently ignored); other unknown variables are none of tickcast's business.
 */
import { readFileSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseEnv } from 'node:util';
import { ErrorCode, TickcastError } from '../errors.js';
import { parseDotenv } from './dotenv.js';
import { unusedProxySettings } from './openalgo-env.js';
import {
  CONSTRAINTS,
  ENV_FILE_VAR,
  OPTIONS,
  OWN_PREFIX,
  flagAttribute,
  flagName,
  type Config,
  type ConfigKey,
  type FlatConfig,
  type Option,
} from './options.js';

export type ConfigSource = 'default' | 'env-file' | 'openalgo-env' | 'env' | 'flag';

export interface LoadConfigInput {
  /** Environment variables (default: `process.env`, which is only read). */
  env?: Record<string, string | undefined>;
  /**
   * CLI options keyed by commander's attribute names (`port`, `simRate`, `envFile`). Keys that
   * name no configuration flag are ignored: commands have flags of their own.
   */
  flags?: Record<string, unknown>;
  /** Directory for relative paths and the default `.env` (default: `process.cwd()`). */
  cwd?: string;
  /** Env file to read instead of `<cwd>/.env`, as `--env-file` (it must exist). */
  envFile?: string;
}

/** What was read from an OpenAlgo directory, for the start summary. */
export interface OpenAlgoEnvReport {
  /** The `.env` file read. */
  readonly file: string;
  /** Proxy settings set there that tickcast does not use (openalgo-env.ts), in file order. */
  readonly unused: readonly string[];
}

export type LoadConfigResult =
  | { ok: true; config: Config; sources: Record<ConfigKey, ConfigSource>; openalgo?: OpenAlgoEnvReport }
  | { ok: false; errors: string[] };

/** One source's values, by variable name. */
interface Layer {
  readonly source: ConfigSource;
  readonly values: ReadonlyMap<string, string>;
  /** The env file's path, for messages. */
  readonly file?: string;
  /** Directory relative paths in this source are taken from (default: the working directory). */
  readonly cwd?: string;
}

/** The value an option takes and where it came from. */
interface Setting {
  readonly raw: string;
  readonly source: ConfigSource;
  readonly file?: string;
  readonly cwd?: string;
}

type AnyOption = (typeof OPTIONS)[number];

export function loadConfig(input: LoadConfigInput = {}): LoadConfigResult {
  const cwd = resolve(input.cwd ?? process.cwd());
  const errors: string[] = [];

  const flagLayer = readFlags(input.flags ?? {}, input.envFile, errors);
  const envLayer: Layer = { source: 'env', values: definedEntries(input.env ?? process.env) };

  const envFileOption = optionFor('envFile');
  const envFileSetting = choose(envFileOption, [flagLayer, envLayer]);
  const envFilePath = resolve(cwd, (envFileSetting ?? defaultSetting(envFileOption))?.raw.trim() ?? '.env');
  const fileLayer = readEnvFile(envFilePath, envFileSetting, envFileOption, errors);

  // The OpenAlgo directory may itself come from tickcast's env file.
  const openalgoOption = optionFor('openalgo.dir');
  const openalgoSetting = choose(openalgoOption, fileLayer ? [flagLayer, envLayer, fileLayer] : [flagLayer, envLayer]);
  const openalgo = openalgoSetting ? readOpenAlgoEnv(resolve(cwd, openalgoSetting.raw.trim()), openalgoSetting, openalgoOption, input.env ?? process.env, errors) : undefined;

  const layers = [flagLayer, envLayer, openalgo?.layer, fileLayer].filter((layer): layer is Layer => layer !== undefined);
  checkUnknownVariables(envLayer, errors);
  if (fileLayer) checkUnknownVariables(fileLayer, errors);

  const flat: Record<string, unknown> = { envFile: fileLayer ? envFilePath : undefined };
  const sources: Partial<Record<ConfigKey, ConfigSource>> = { envFile: envFileSetting?.source ?? 'default' };
  const invalid = new Set<ConfigKey>();
  const settings = new Map<ConfigKey, Setting>();

  for (const option of OPTIONS) {
    if (option.key === 'envFile') continue;
    const setting = choose(option, layers) ?? defaultSetting(option);
    sources[option.key] = setting?.source ?? 'default';
    if (setting === undefined) {
      flat[option.key] = undefined;
      continue;
    }
    settings.set(option.key, setting);
    const parsed = option.parse(option.secret ? setting.raw : setting.raw.trim(), { cwd: setting.cwd ?? cwd });
    if (parsed.ok) {
      flat[option.key] = parsed.value;
    } else {
      invalid.add(option.key);
      const detail = parsed.detail === undefined ? '' : `; ${parsed.detail}`;
      errors.push(`${describe(option, setting)} is not valid: expected ${parsed.expected}${detail}`);
    }
  }

  for (const rule of CONSTRAINTS) {
    if ([rule.key, ...rule.against].some((key) => invalid.has(key))) continue;
    const expected = rule.check(flat as FlatConfig);
    const setting = settings.get(rule.key);
    if (expected !== undefined && setting !== undefined) {
      errors.push(`${describe(optionFor(rule.key), setting)} is not valid: expected ${expected}`);
    }
  }

  if (errors.length > 0) return { ok: false, errors };
  return {
    ok: true,
    config: nest(flat) as Config,
    sources: Object.freeze(sources) as Record<ConfigKey, ConfigSource>,
    ...(openalgo ? { openalgo: openalgo.report } : {}),
  };
}

/** As loadConfig, but throws TickcastError(CONFIG_INVALID) carrying every message, one a line. */
export function loadConfigOrThrow(input: LoadConfigInput = {}): Config {
  const result = loadConfig(input);
  if (!result.ok) throw new TickcastError(ErrorCode.CONFIG_INVALID, result.errors.join('\n'));
  return result.config;
}

// ---------------------------------------------------------------------------------------------

function optionFor(key: ConfigKey): AnyOption {
  const option = OPTIONS.find((o) => o.key === key);
  if (option === undefined) throw new Error(`no option ${key}`);
  return option;
}

/** Flag values by variable name. `envFile` (the argument) outranks the `envFile` flag. */
function readFlags(flags: Record<string, unknown>, envFile: string | undefined, errors: string[]): Layer {
  const values = new Map<string, string>();
  for (const option of OPTIONS) {
    if (option.flag === undefined) continue;
    const given = option.key === 'envFile' ? envFile : undefined;
    const value = given ?? flags[flagAttribute(option.flag)];
    if (value === undefined || value === null) continue;
    if (typeof value === 'string') values.set(option.env, value);
    else if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') {
      values.set(option.env, String(value));
    } else {
      const name = `${option.env} (${flagName(option.flag)})`;
      errors.push(`${name} is not valid: expected a single value, got ${kindOf(value)}`);
    }
  }
  return { source: 'flag', values };
}

function kindOf(value: unknown): string {
  return Array.isArray(value) ? 'a list' : `a ${typeof value}`;
}

function definedEntries(record: Record<string, string | undefined>): Map<string, string> {
  const values = new Map<string, string>();
  for (const [name, value] of Object.entries(record)) if (value !== undefined) values.set(name, value);
  return values;
}

/** The highest-precedence non-blank value for `option`, if any source sets it. */
function choose(option: Option, layers: readonly Layer[]): Setting | undefined {
  for (const layer of layers) {
    const raw = layer.values.get(option.env);
    if (raw !== undefined && raw.trim() !== '') {
      return { raw, source: layer.source, ...(layer.file === undefined ? {} : { file: layer.file }), ...(layer.cwd === undefined ? {} : { cwd: layer.cwd }) };
    }
  }
  return undefined;
}

function defaultSetting(option: Option): Setting | undefined {
  return option.default === undefined ? undefined : { raw: option.default, source: 'default' };
}

/**
 * The env file's variables, or undefined when there is no file to read. A missing file is an
 * error only when it was named (`named` is the setting that named it).
 */
function readEnvFile(
  path: string,
  named: Setting | undefined,
  option: Option,
  errors: string[],
): Layer | undefined {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' && named === undefined) return undefined;
    const subject = describe(option, named ?? defaultSetting(option) ?? { raw: path, source: 'default' });
    errors.push(
      code === 'ENOENT'
        ? `${subject} is not valid: expected an existing file (${path} does not exist)`
        : `${subject} is not valid: expected a readable file (${path}: ${(error as Error).message})`,
    );
    return undefined;
  }
  const values = definedEntries(parseEnv(text));
  if (values.has(ENV_FILE_VAR)) {
    errors.push(
      `${ENV_FILE_VAR} (in ${path}) has no effect inside an env file: ` +
        'set it in the environment or pass --env-file',
    );
    values.delete(ENV_FILE_VAR);
  }
  return { source: 'env-file', values, file: path };
}

/**
 * An OpenAlgo directory's `.env`, read as OpenAlgo's proxy reads it (python-dotenv, the
 * environment not overridden). Only OpenAlgo's variables are taken from it: tickcast's own
 * (`TICKCAST_*`) there are refused, so which file sets what stays plain. Problems are added to
 * `errors`, each naming the file (and the variable or line).
 */
function readOpenAlgoEnv(
  dir: string,
  named: Setting,
  option: Option,
  env: Record<string, string | undefined>,
  errors: string[],
): { layer: Layer; report: OpenAlgoEnvReport } | undefined {
  const file = resolve(dir, '.env');
  const subject = describe(option, named);
  let text: string;
  try {
    if (!statSync(dir).isDirectory()) {
      errors.push(`${subject} is not valid: expected an OpenAlgo directory (${dir} is not a directory)`);
      return undefined;
    }
    text = readFileSync(file, 'utf8');
  } catch (error) {
    const { code, message } = error as NodeJS.ErrnoException;
    const missing = code === 'ENOENT' || code === 'ENOTDIR';
    errors.push(
      !missing ? `${subject} is not valid: expected a readable OpenAlgo .env (${message})`
      : existsDir(dir) ? `${subject} is not valid: expected an OpenAlgo directory holding a .env file (${file} does not exist)`
      : `${subject} is not valid: expected an existing OpenAlgo directory (${dir} does not exist)`,
    );
    return undefined;
  }
  const parsed = parseDotenv(text, env);
  for (const { line, key } of parsed.unreadable) {
    errors.push(
      `${key ?? 'a statement'} (line ${line} of ${file}) is not valid: expected KEY=value, KEY='value' or KEY="value" ` +
        "(OpenAlgo's python-dotenv would skip it with a warning)",
    );
  }
  const values = new Map<string, string>();
  for (const [name, value] of parsed.values) {
    if (name.startsWith(OWN_PREFIX)) {
      errors.push(`${name} (in ${file}) is not read from OpenAlgo's .env: set tickcast's own variables in the environment, a flag or tickcast's .env`);
    } else {
      values.set(name, value);
    }
  }
  const honoured = new Set(OPTIONS.map((o) => o.env));
  const set = [...values].filter(([, value]) => value.trim() !== '').map(([name]) => name);
  return {
    layer: { source: 'openalgo-env', values, file, cwd: dir },
    report: { file, unused: unusedProxySettings(set, honoured) },
  };
}

function existsDir(dir: string): boolean {
  try {
    return statSync(dir).isDirectory();
  } catch {
    return false;
  }
}

/** `WEBSOCKET_PORT (--port)="abc"`, `WEBSOCKET_PORT="abc" (in /srv/.env)`, secrets hidden. */
function describe(option: Option, setting: Setting): string {
  const fromFlag = setting.source === 'flag' && option.flag !== undefined;
  const name = fromFlag ? `${option.env} (${flagName(option.flag as string)})` : option.env;
  const value = option.secret
    ? ` (value hidden, ${setting.raw.length} characters)`
    : `=${quote(setting.raw)}`;
  const where =
    setting.source === 'env-file' || setting.source === 'openalgo-env' ? ` (in ${setting.file})`
    : setting.source === 'default' ? ' (the default)'
    : '';
  return `${name}${value}${where}`;
}

const MAX_SHOWN = 80;

function quote(raw: string): string {
  return raw.length <= MAX_SHOWN
    ? JSON.stringify(raw)
    : `${JSON.stringify(raw.slice(0, MAX_SHOWN))}… (${raw.length} characters)`;
}

function checkUnknownVariables(layer: Layer, errors: string[]): void {
  const known = OPTIONS.map((o) => o.env).filter((name) => name.startsWith(OWN_PREFIX));
  const where = layer.file === undefined ? 'in the environment' : `in ${layer.file}`;
  for (const name of layer.values.keys()) {
    if (!name.startsWith(OWN_PREFIX) || known.includes(name)) continue;
    const guess = closest(name, known);
    errors.push(
      guess === undefined
        ? `${name} (${where}) is not a tickcast setting; tickcast's own variables are ${known.join(', ')}`
        : `${name} (${where}) is not a tickcast setting: did you mean ${guess}?`,
    );
  }
}

/** The known name nearest to `name` by edit distance, if it is close enough to be a typo. */
function closest(name: string, known: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Math.max(2, Math.floor(name.length / 5)) + 1;
  for (const candidate of known) {
    const distance = editDistance(name, candidate);
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  return best;
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const substitution = (previous[j - 1] ?? 0) + (a[i - 1] === b[j - 1] ? 0 : 1);
      current[j] = Math.min((previous[j] ?? 0) + 1, (current[j - 1] ?? 0) + 1, substitution);
    }
    previous = current;
  }
  return previous[b.length] ?? 0;
}

/** `{ 'ws.port': 1 }` → `{ ws: { port: 1 } }`, frozen all the way down. */
function nest(flat: Record<string, unknown>): Record<string, unknown> {
  const root: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(flat)) {
    const parts = key.split('.');
    const last = parts.pop() as string;
    let node = root;
    for (const part of parts) node = (node[part] ??= {}) as Record<string, unknown>;
    node[last] = value;
  }
  return deepFreeze(root);
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null) {
    for (const child of Object.values(value)) deepFreeze(child);
    Object.freeze(value);
  }
  return value;
}
