/**
 * `tickcast symbols …` and `tickcast credentials …`: in process (a commander program holding just
 * these commands, errors mapped to exit codes as main() maps them), and end to end through
 * `node bin/tickcast`.
 */
import fs from 'node:fs';
import { devNull } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command, CommanderError } from 'commander';
import { afterEach, describe, expect, it } from 'vitest';
import { CredentialStore } from '../../src/auth/credentials.js';
import { registerCredentialCommands } from '../../src/cli/credentials.js';
import { configFrom, EXIT_FAILURE, EXIT_OK, EXIT_USAGE, type Io, UsageError } from '../../src/cli/common.js';
import { registerSymbolCommands } from '../../src/cli/symbols.js';
import { TickcastError } from '../../src/errors.js';
import { openKeys } from '../../src/wiring.js';
import { killSpawnedProcesses, makeTempDir, removeDir, runCli, runProcess, TICKCAST_BIN, tickcastEnv } from '../helpers/cli.js';

const FIXTURES = fileURLToPath(new URL('../fixtures/', import.meta.url));
const KITE_CSV = path.join(FIXTURES, 'kite-instruments.csv');
const ANGEL_JSON = path.join(FIXTURES, 'angel-scrip-master.json');
const KITE_TOKEN = 'kiteAccessTokenSecret0123456789';
const ANGEL_JWT = 'eyJhbGciOiJIUzUxMiJ9.eyJzdWIiOiJBMTIzNCJ9.angelJwtSecret';
const ANGEL_FEED = 'angelFeedTokenSecret';

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

const dirs: string[] = [];
function dataDir(): string {
  const dir = makeTempDir('tickcast-symbols-cli-');
  dirs.push(dir);
  return dir;
}
afterEach(async () => {
  await killSpawnedProcesses();
  for (const dir of dirs.splice(0)) removeDir(dir);
});

/** The environment a command sees: only this test's data directory and no .env file. */
function envFor(dir: string, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return { TICKCAST_DATA_DIR: dir, TICKCAST_ENV_FILE: devNull, ...extra };
}

/** Runs `tickcast <args>` in process with these commands only. */
async function run(args: string[], dir: string, extraEnv: Record<string, string> = {}): Promise<Result> {
  let stdout = '';
  let stderr = '';
  const io: Io = { out: (t) => (stdout += t), err: (t) => (stderr += t) };
  let code = EXIT_OK;
  const setExit = (c: number): void => {
    code = c;
  };
  const env = envFor(dir, extraEnv);
  const program = new Command('tickcast').exitOverride().configureOutput({ writeOut: io.out, writeErr: io.err });
  registerSymbolCommands(program, io, setExit, env);
  registerCredentialCommands(program, io, setExit, env);
  try {
    await program.parseAsync(['node', 'tickcast', ...args]);
  } catch (error) {
    // As main() does.
    if (error instanceof CommanderError) code = error.exitCode === 0 ? EXIT_OK : EXIT_USAGE;
    else if (error instanceof UsageError) {
      stderr += `tickcast: ${error.message}\n`;
      code = EXIT_USAGE;
    } else if (error instanceof TickcastError) {
      stderr += `tickcast: ${error.message} [${error.code}]\n`;
      code = error.code === 'USAGE' || error.code === 'CONFIG_INVALID' ? EXIT_USAGE : EXIT_FAILURE;
    } else throw error;
  }
  return { code, stdout, stderr };
}

describe('tickcast symbols (in process)', () => {
  it('imports a Kite CSV, reporting counts and rejected rows, and is idempotent', async () => {
    const dir = dataDir();
    const first = await run(['symbols', 'import', '--broker', 'zerodha', KITE_CSV], dir);
    expect(first.code, first.stderr).toBe(EXIT_OK);
    expect(first.stdout).toContain(`imported 13 zerodha symbols from ${KITE_CSV} (13 added, 0 updated, 0 removed)`);
    expect(first.stdout).toContain('skipped 2 rows:');
    expect(first.stdout).toContain('1  exchange NCO has no OpenAlgo exchange');
    expect(first.stdout).toContain('rejected 4 rows:');
    expect(first.stdout).toContain('  line 17: instrument_token "abc" is not a 32-bit unsigned integer');
    expect(fs.existsSync(path.join(dir, 'default', 'tickcast.db'))).toBe(true);

    const again = await run(['symbols', 'import', '--broker', 'zerodha', KITE_CSV, '--json'], dir);
    expect(again.code).toBe(EXIT_OK);
    expect(JSON.parse(again.stdout)).toMatchObject({ broker: 'zerodha', imported: 13, added: 0, updated: 0, removed: 0, rejectedCount: 4 });
  });

  it('imports an Angel scrip master into the same database', async () => {
    const dir = dataDir();
    expect((await run(['symbols', 'import', '--broker', 'zerodha', KITE_CSV], dir)).code).toBe(EXIT_OK);
    const angel = await run(['symbols', 'import', '--broker', 'angel', ANGEL_JSON, '--instance', 'default'], dir);
    expect(angel.code, angel.stderr).toBe(EXIT_OK);
    expect(angel.stdout).toContain('imported 12 angel symbols');
    expect(angel.stdout).toContain('  element 12: missing token');
    const lookup = await run(['symbols', 'lookup', '--broker', 'angel', '--exchange', 'NSE_INDEX', 'NIFTY'], dir);
    expect(lookup.stdout).toMatch(/^token\s+99926000$/m);
    expect(lookup.stdout).toMatch(/^brexchange\s+NSE$/m);
  });

  it('looks symbols up: the feed token, the stored token and brexchange, or exit 1', async () => {
    const dir = dataDir();
    await run(['symbols', 'import', '--broker', 'zerodha', KITE_CSV], dir);
    const found = await run(['symbols', 'lookup', '--broker', 'zerodha', '--exchange', 'NSE_INDEX', 'NIFTY'], dir);
    expect(found.code).toBe(EXIT_OK);
    expect(found.stdout).toMatch(/^token\s+256265$/m);
    expect(found.stdout).toMatch(/^stored token\s+256265::::1001$/m);
    expect(found.stdout).toMatch(/^brexchange\s+NSE_INDEX$/m);
    expect(found.stdout).toMatch(/^brsymbol\s+NIFTY 50$/m);
    const json = await run(['symbols', 'lookup', '--broker', 'zerodha', '--exchange', 'NFO', '--json', 'NIFTY28MAR2420800CE'], dir);
    expect(JSON.parse(json.stdout)).toMatchObject({ feed_token: '11229698', token: '11229698::::43866', expiry: '28-MAR-24', strike: 20800 });
    const missing = await run(['symbols', 'lookup', '--broker', 'zerodha', '--exchange', 'NSE_INDEX', 'nifty'], dir);
    expect(missing.code).toBe(EXIT_FAILURE);
    expect(missing.stderr).toBe('tickcast: NSE_INDEX:nifty not found in the zerodha symbols\n');
  });

  it('exits 2 with a clear message for a wrong format, a missing file or a bad broker', async () => {
    const dir = dataDir();
    const wrong = await run(['symbols', 'import', '--broker', 'zerodha', ANGEL_JSON], dir);
    expect(wrong.code).toBe(EXIT_USAGE);
    expect(wrong.stderr).toContain('looks like JSON, not Kite');
    const wrong2 = await run(['symbols', 'import', '--broker', 'angel', KITE_CSV], dir);
    expect(wrong2.code).toBe(EXIT_USAGE);
    expect(wrong2.stderr).toContain("is not Angel's OpenAPIScripMaster.json");
    const missing = await run(['symbols', 'import', '--broker', 'angel', path.join(dir, 'nope.json')], dir);
    expect(missing.code).toBe(EXIT_USAGE);
    expect(missing.stderr).toBe(`tickcast: cannot read ${path.join(dir, 'nope.json')}: no such file [USAGE]\n`);
    const directory = await run(['symbols', 'import', '--broker', 'angel', dir], dir);
    expect(directory.code).toBe(EXIT_USAGE);
    expect(directory.stderr).toContain('is a directory');
    const broker = await run(['symbols', 'import', '--broker', 'fyers', KITE_CSV], dir);
    expect(broker.code).toBe(EXIT_USAGE);
    expect(broker.stderr).toContain("argument 'fyers' is invalid");
    const noBroker = await run(['symbols', 'import', KITE_CSV], dir);
    expect(noBroker.code).toBe(EXIT_USAGE);
  });
});

describe('tickcast credentials (in process)', () => {
  it('sets, shows (presence only) and removes Zerodha credentials', async () => {
    const dir = dataDir();
    const set = await run(['credentials', 'set', '--user', 'alice', '--broker', 'zerodha', '--api-key', 'kiteapp', '--access-token', KITE_TOKEN], dir);
    expect(set.code, set.stderr).toBe(EXIT_OK);
    expect(set.stdout).toBe('stored zerodha credentials for user "alice" (access token, API key; secrets encrypted)\n');
    expect(set.stderr).toContain('--access-token-env NAME');

    const show = await run(['credentials', 'show', '--user', 'alice'], dir);
    expect(show.code).toBe(EXIT_OK);
    expect(show.stdout).toMatch(/^broker\s+zerodha$/m);
    expect(show.stdout).toMatch(/^access token\s+set$/m);
    expect(show.stdout).toMatch(/^API key\s+set$/m);
    expect(show.stdout).toMatch(/^feed token\s+-$/m);
    const json = await run(['credentials', 'show', '--user', 'alice', '--json'], dir);
    expect(JSON.parse(json.stdout)).toEqual({ user: 'alice', broker: 'zerodha', access_token: true, api_key: true, feed_token: false, client_code: false, revoked: false, readable: true });
    for (const out of [show.stdout, show.stderr, json.stdout, set.stdout, set.stderr]) {
      expect(out).not.toContain(KITE_TOKEN);
      expect(out).not.toContain('kiteapp');
    }

    // Stored encrypted with the instance's own key: readable through openKeys, not in the file.
    const { db, fernetKey } = await openKeys(configFrom({}, envFor(dir)));
    try {
      expect(new CredentialStore({ db, fernetKey }).get('alice')).toEqual({ broker: 'zerodha', credentials: { apiKey: 'kiteapp', accessToken: KITE_TOKEN } });
    } finally {
      db.close();
    }
    expect(fs.readFileSync(path.join(dir, 'default', 'tickcast.db')).toString('latin1')).not.toContain(KITE_TOKEN);

    const removed = await run(['credentials', 'remove', '--user', 'alice'], dir);
    expect(removed.code).toBe(EXIT_OK);
    expect(removed.stdout).toBe('removed the broker credentials of user "alice"\n');
    const again = await run(['credentials', 'remove', '--user', 'alice'], dir);
    expect(again.code).toBe(EXIT_FAILURE);
    const gone = await run(['credentials', 'show', '--user', 'alice'], dir);
    expect(gone.code).toBe(EXIT_FAILURE);
    expect(gone.stderr).toBe('tickcast: user "alice" has no broker credentials\n');
  });

  it('stores what Dhan, Upstox, Shoonya and Flattrade feeds need, and names what is missing', async () => {
    const dir = dataDir();
    const secrets = { TOKEN: 'brokerSessionToken0123' };
    const cases: Array<{ broker: string; args: string[]; stored: string; credentials: Record<string, string> }> = [
      { broker: 'dhan', args: ['--client-code', '1000000123'], stored: 'access token, client code', credentials: { apiKey: '', accessToken: secrets.TOKEN, clientCode: '1000000123' } },
      { broker: 'upstox', args: [], stored: 'access token', credentials: { apiKey: '', accessToken: secrets.TOKEN } },
      { broker: 'shoonya', args: ['--client-code', 'FA12345'], stored: 'access token, client code', credentials: { apiKey: '', accessToken: secrets.TOKEN, clientCode: 'FA12345' } },
      { broker: 'flattrade', args: ['--client-code', 'FT123', '--api-key', 'ftapp'], stored: 'access token, API key, client code', credentials: { apiKey: 'ftapp', accessToken: secrets.TOKEN, clientCode: 'FT123' } },
    ];
    for (const { broker, args, stored, credentials } of cases) {
      const user = `${broker}user`;
      const set = await run(['credentials', 'set', '--user', user, '--broker', broker, '--access-token-env', 'TOKEN', ...args], dir, secrets);
      expect(set.code, set.stderr).toBe(EXIT_OK);
      expect(set.stdout).toBe(`stored ${broker} credentials for user "${user}" (${stored}; secrets encrypted)\n`);
      const { db, fernetKey } = await openKeys(configFrom({}, envFor(dir)));
      try {
        expect(new CredentialStore({ db, fernetKey }).get(user)).toEqual({ broker, credentials });
      } finally {
        db.close();
      }
    }
    const noId = await run(['credentials', 'set', '--user', 'x', '--broker', 'dhan', '--access-token-env', 'TOKEN'], dir, secrets);
    expect(noId.code).toBe(EXIT_USAGE);
    expect(noId.stderr).toContain('Dhan needs --client-code (the client id)');
    const noUser = await run(['credentials', 'set', '--user', 'x', '--broker', 'shoonya', '--access-token-env', 'TOKEN'], dir, secrets);
    expect(noUser.stderr).toContain('Shoonya needs --client-code (the user id)');
    const feedToken = await run(['credentials', 'set', '--user', 'x', '--broker', 'upstox', '--access-token-env', 'TOKEN', '--feed-token', 'f'], dir, secrets);
    expect(feedToken.code).toBe(EXIT_USAGE);
    expect(feedToken.stderr).toContain('Upstox has no feed token');
    const unknown = await run(['credentials', 'set', '--user', 'x', '--broker', 'fyers', '--access-token-env', 'TOKEN'], dir, secrets);
    expect(unknown.code).toBe(EXIT_USAGE);
    expect(unknown.stderr).toContain('zerodha, angel, dhan, upstox, shoonya, flattrade');
    const show = await run(['credentials', 'show', '--user', 'x'], dir);
    expect(show.code).toBe(EXIT_FAILURE); // nothing was stored for the refused ones
  });

  it('reads secrets from environment variables and requires what Angel needs', async () => {
    const dir = dataDir();
    const secrets = { APP_KEY: 'angelapp', JWT: ANGEL_JWT, FEED: ANGEL_FEED };
    const partial = await run(['credentials', 'set', '--user', 'bob', '--broker', 'angel', '--api-key-env', 'APP_KEY', '--access-token-env', 'JWT'], dir, secrets);
    expect(partial.code).toBe(EXIT_USAGE);
    expect(partial.stderr).toContain('Angel needs --feed-token (or --feed-token-env) and --client-code');
    const set = await run(
      ['credentials', 'set', '--user', 'bob', '--broker', 'angel', '--api-key-env', 'APP_KEY', '--access-token-env', 'JWT', '--feed-token-env', 'FEED', '--client-code', 'A1234'],
      dir,
      secrets,
    );
    expect(set.code, set.stderr).toBe(EXIT_OK);
    expect(set.stdout).toContain('stored angel credentials for user "bob" (access token, API key, feed token, client code; secrets encrypted)');
    expect(set.stderr).toBe(''); // no shell-history tip: nothing secret was on the command line
    const show = await run(['credentials', 'show', '--user', 'bob', '--json'], dir);
    expect(JSON.parse(show.stdout)).toMatchObject({ broker: 'angel', access_token: true, feed_token: true, client_code: true, readable: true });
    expect(show.stdout).not.toContain(ANGEL_JWT);

    const unset = await run(['credentials', 'set', '--user', 'bob', '--broker', 'zerodha', '--api-key', 'k', '--access-token-env', 'NOT_SET_ANYWHERE'], dir);
    expect(unset.code).toBe(EXIT_USAGE);
    expect(unset.stderr).toContain('environment variable NOT_SET_ANYWHERE is not set');
    const both = await run(['credentials', 'set', '--user', 'bob', '--broker', 'zerodha', '--api-key', 'k', '--access-token', 't', '--access-token-env', 'JWT'], dir, secrets);
    expect(both.code).toBe(EXIT_USAGE);
    expect(both.stderr).toContain('give --access-token or --access-token-env, not both');
    const none = await run(['credentials', 'set', '--user', 'bob', '--broker', 'zerodha', '--api-key', 'k'], dir);
    expect(none.code).toBe(EXIT_USAGE);
    expect(none.stderr).toContain('is required: give --access-token or --access-token-env');
  });

  it("notes when set changes the user's broker", async () => {
    const dir = dataDir();
    await run(['credentials', 'set', '--user', 'carol', '--broker', 'zerodha', '--api-key', 'k', '--access-token', 't'], dir);
    const switched = await run(['credentials', 'set', '--user', 'carol', '--broker', 'angel', '--api-key', 'k', '--access-token', 't', '--feed-token', 'f', '--client-code', 'C1'], dir);
    expect(switched.code).toBe(EXIT_OK);
    expect(switched.stderr).toContain('note: user "carol" now uses broker angel (was zerodha)');
  });
});

describe('tickcast symbols and credentials (node bin/tickcast)', () => {
  it('imports from a file and from stdin, looks up, and exits 2 on a wrong format', async () => {
    const dir = dataDir();
    const imported = await runCli(['symbols', 'import', '--broker', 'zerodha', KITE_CSV], { dataDir: dir });
    expect(imported.code, imported.stderr).toBe(0);
    expect(imported.stdout).toContain('imported 13 zerodha symbols');
    const piped = await runProcess(process.execPath, [TICKCAST_BIN, 'symbols', 'import', '--broker', 'angel', '-'], {
      env: tickcastEnv(dir),
      input: fs.readFileSync(ANGEL_JSON, 'utf8'),
    });
    expect(piped.code, piped.stderr).toBe(0);
    expect(piped.stdout).toContain('imported 12 angel symbols from stdin');
    const found = await runCli(['symbols', 'lookup', '--broker', 'zerodha', '--exchange', 'NSE', 'RELIANCE'], { dataDir: dir });
    expect(found.code).toBe(0);
    expect(found.stdout).toMatch(/^token\s+738561$/m);
    const missing = await runCli(['symbols', 'lookup', '--broker', 'zerodha', '--exchange', 'NSE', 'NOPE'], { dataDir: dir });
    expect(missing.code).toBe(1);
    const wrong = await runCli(['symbols', 'import', '--broker', 'zerodha', ANGEL_JSON], { dataDir: dir });
    expect(wrong.code).toBe(2);
    expect(wrong.stderr).toContain('looks like JSON');
    const absent = await runCli(['symbols', 'import', '--broker', 'zerodha', path.join(dir, 'absent.csv')], { dataDir: dir });
    expect(absent.code).toBe(2);
    expect(absent.stderr).toContain('no such file');
  });

  it("imports Dhan's, Upstox's and the Noren brokers' masters (all of a Noren broker's files at once)", async () => {
    const dir = dataDir();
    const lookup = async (broker: string, exchange: string, symbol: string): Promise<string> => {
      const found = await runCli(['symbols', 'lookup', '--broker', broker, '--exchange', exchange, symbol], { dataDir: dir });
      expect(found.code, found.stderr).toBe(0);
      return /^token\s+(\S+)$/m.exec(found.stdout)![1]!;
    };
    for (const [broker, file] of [['dhan', 'dhan-scrip-master.csv'], ['upstox', 'upstox-instruments.json']]) {
      const imported = await runCli(['symbols', 'import', '--broker', broker!, path.join(FIXTURES, file!)], { dataDir: dir });
      expect(imported.code, imported.stderr).toBe(0);
      expect(imported.stdout).toMatch(new RegExp(`imported \\d+ ${broker} symbols`));
    }
    expect(await lookup('dhan', 'NSE', 'RELIANCE')).toBe('2885');
    expect(await lookup('upstox', 'NSE', 'RELIANCE')).toBe('NSE_EQ|INE002A01018');

    const norenFiles = (names: string[]): string[] => names.map((name) => path.join(FIXTURES, 'noren-symbols', name));
    const shoonya = await runCli(['symbols', 'import', '--broker', 'shoonya', ...norenFiles(['NFO_symbols.txt', 'NSE_symbols.txt', 'BSE_symbols.txt', 'MCX_symbols.txt'])], { dataDir: dir });
    expect(shoonya.code, shoonya.stderr).toBe(0);
    expect(await lookup('shoonya', 'NSE', 'RELIANCE')).toBe('2885');
    expect(await lookup('shoonya', 'NFO', 'NIFTY28MAR2422000CE')).toBe('43120');
    const flattrade = await runCli(['symbols', 'import', '--broker', 'flattrade', ...norenFiles(['NSE_Equity.csv', 'BSE_Equity.csv', 'Bfo_Index_Derivatives.csv'])], { dataDir: dir });
    expect(flattrade.code, flattrade.stderr).toBe(0);
    expect(await lookup('flattrade', 'NSE_INDEX', 'NIFTY')).toBe('26000');

    // A file that is none of a Noren broker's, or two files for a one-file master: refused, nothing changed.
    const stranger = await runCli(['symbols', 'import', '--broker', 'shoonya', path.join(FIXTURES, 'dhan-scrip-master.csv')], { dataDir: dir });
    expect(stranger.code).toBe(2);
    expect(stranger.stderr).toContain("is not one of shoonya's symbol files");
    const two = await runCli(['symbols', 'import', '--broker', 'dhan', path.join(FIXTURES, 'dhan-scrip-master.csv'), KITE_CSV], { dataDir: dir });
    expect(two.code).toBe(2);
    expect(two.stderr).toContain('the dhan master is one file; got 2');
    expect(await lookup('shoonya', 'NSE', 'RELIANCE')).toBe('2885');
  });

  it('sets credentials from the environment, shows presence only, removes them', async () => {
    const dir = dataDir();
    const env = { KITE_TOKEN, KITE_APP: 'kiteapp' };
    const set = await runCli(['credentials', 'set', '--user', 'alice', '--broker', 'zerodha', '--api-key-env', 'KITE_APP', '--access-token-env', 'KITE_TOKEN'], { dataDir: dir, env });
    expect(set.code, set.stderr).toBe(0);
    const show = await runCli(['credentials', 'show', '--user', 'alice'], { dataDir: dir });
    expect(show.code).toBe(0);
    expect(show.stdout).toMatch(/^access token\s+set$/m);
    expect(show.stdout + show.stderr + set.stdout + set.stderr).not.toContain(KITE_TOKEN);
    expect((await runCli(['credentials', 'remove', '--user', 'alice'], { dataDir: dir })).code).toBe(0);
    expect((await runCli(['credentials', 'show', '--user', 'alice'], { dataDir: dir })).code).toBe(1);
    const angel = await runCli(['credentials', 'set', '--user', 'bob', '--broker', 'angel', '--api-key', 'k', '--access-token', 't'], { dataDir: dir });
    expect(angel.code).toBe(2);
    expect(angel.stderr).toContain('Angel needs');
  });
});
