/**
 * `tickcast credentials set|show|remove`: a user's broker credentials, encrypted in the
 * instance's database. Every secret can come from an environment variable instead of the
 * command line (`--access-token-env NAME`), which keeps it out of shell history and `ps`.
 */
import { Option, type Command } from 'commander';
import type { BrokerCredentials, BrokerName } from '../adapters/broker.js';
import { CREDENTIAL_BROKERS, CREDENTIAL_NEEDS, type CredentialNeeds, type CredentialPresence, CredentialStore, SESSIONS_MANAGED_BY_OPENALGO } from '../auth/credentials.js';
import type { Config } from '../config/options.js';
import { ErrorCode, TickcastError } from '../errors.js';
import { databaseFile, openKeys } from '../wiring.js';
import { openOpenAlgoStores } from '../store/openalgo-stores.js';
import { addConfigFlags, configFrom, EXIT_FAILURE, EXIT_OK, type Io, writing } from './common.js';

const STORE_FLAGS = ['envFile', 'instance', 'dataDir'];

/** Each secret: its flag, the flag naming a variable that holds it, and how messages call it. */
const SECRETS = [
  { key: 'apiKey', flag: 'api-key', what: 'the broker app API key' },
  { key: 'accessToken', flag: 'access-token', what: 'the access token (the JWT for Angel, the session token for Shoonya and Flattrade)' },
  { key: 'feedToken', flag: 'feed-token', what: 'the Angel feed token' },
] as const;

export function registerCredentialCommands(program: Command, io: Io, setExit: (code: number) => void, env: NodeJS.ProcessEnv = process.env): void {
  const credentials = program.command('credentials').description("Store, show and remove users' broker credentials (encrypted)");

  const set = credentials
    .command('set')
    .description("Store a user's broker credentials (replacing any), encrypted with the instance's key; the broker becomes the user's broker")
    .requiredOption('--user <user>', 'OpenAlgo username (the user of the API key)')
    .addOption(new Option('--broker <broker>', 'the broker').choices(CREDENTIAL_BROKERS).makeOptionMandatory());
  const HINTS: Record<string, string> = {
    apiKey: ' (required for Zerodha and Angel)',
    feedToken: ' (Angel only, required there)',
  };
  for (const secret of SECRETS) {
    set.option(`--${secret.flag} <value>`, `${secret.what}${HINTS[secret.key] ?? ''}`);
    set.option(`--${secret.flag}-env <name>`, `read ${secret.what} from this environment variable instead`);
  }
  set.option('--client-code <code>', "broker client code: Angel's client code, Dhan's client id, Shoonya's or Flattrade's user id (required for those)");
  addConfigFlags(
    set.action(async (flags: Record<string, unknown>) => {
      const creds = credentialsFrom(flags, env);
      const broker = flags.broker as BrokerName;
      const needs: CredentialNeeds = CREDENTIAL_NEEDS[broker as keyof typeof CREDENTIAL_NEEDS];
      const missing = [
        needs.apiKey && creds.apiKey === '' ? '--api-key (or --api-key-env)' : '',
        needs.feedToken && creds.feedToken === undefined ? '--feed-token (or --feed-token-env)' : '',
        needs.clientCode && creds.clientCode === undefined ? `--client-code (the ${needs.clientCode})` : '',
      ].filter(Boolean);
      if (missing.length > 0) throw new TickcastError(ErrorCode.USAGE, `${needs.label} needs ${missing.join(' and ')}`);
      const user = String(flags.user);
      const config = configFrom(flags, env);
      refuseWithOpenAlgoDb(config);
      const file = databaseFile(config);
      const { db, fernetKey } = await writing(file, () => openKeys(config));
      try {
        const store = new CredentialStore({ db, fernetKey });
        const before = store.describe(user)?.broker;
        await writing(file, () => store.set(user, broker, creds));
        const parts = ['access token', ...(creds.apiKey ? ['API key'] : []), ...(creds.feedToken ? ['feed token'] : []), ...(creds.clientCode ? ['client code'] : [])];
        io.out(`stored ${broker} credentials for user "${user}" (${parts.join(', ')}; secrets encrypted)\n`);
        if (before !== undefined && before !== broker) {
          io.err(`note: user "${user}" now uses broker ${broker} (was ${before}); their clients get ${broker}'s feed\n`);
        }
        if (SECRETS.some((s) => flags[camel(s.flag)] !== undefined)) {
          io.err(`tip: --${SECRETS[1].flag}-env NAME (and the other -env flags) keep secrets out of shell history\n`);
        }
        setExit(EXIT_OK);
      } finally {
        db.close();
      }
    }),
    STORE_FLAGS,
  );

  addConfigFlags(
    credentials
      .command('show')
      .description("Show which broker credentials a user has (never their values)")
      .requiredOption('--user <user>', 'OpenAlgo username')
      .option('--json', 'print {"user","broker","access_token","api_key","feed_token","client_code","revoked","readable"}')
      .action(async (flags: Record<string, unknown>) => {
        const user = String(flags.user);
        const config = configFrom(flags, env);
        const { presence, close } = await describeUser(config, user);
        try {
          if (!presence || !(presence.accessToken || presence.apiKey || presence.feedToken || presence.clientCode)) {
            io.err(`tickcast: user "${user}" has no broker credentials\n`);
            setExit(EXIT_FAILURE);
            return;
          }
          if (flags.json) {
            const { accessToken, apiKey, feedToken, clientCode, revoked, readable, broker } = presence;
            io.out(`${JSON.stringify({ user, broker, access_token: accessToken, api_key: apiKey, feed_token: feedToken, client_code: clientCode, revoked, readable })}\n`);
          } else {
            const mark = (present: boolean): string => (present ? 'set' : '-');
            const rows: [string, string][] = [
              ['user', user],
              ['broker', presence.broker],
              ['access token', mark(presence.accessToken)],
              ['API key', mark(presence.apiKey)],
              ['feed token', mark(presence.feedToken)],
              ['client code', mark(presence.clientCode)],
            ];
            if (presence.revoked) rows.push(['revoked', 'yes (logged out in OpenAlgo; not used)']);
            const again = config.database ? 'log in to the broker again in OpenAlgo' : 'set them again';
            if (!presence.readable) rows.push(['readable', `no: stored with another API_KEY_PEPPER or FERNET_SALT; ${again}`]);
            io.out(rows.map(([k, v]) => `${k.padEnd(14)}${v}`).join('\n') + '\n');
          }
          setExit(EXIT_OK);
        } finally {
          await close();
        }
      }),
    STORE_FLAGS,
  );

  addConfigFlags(
    credentials
      .command('remove')
      .description("Remove a user's broker credentials (the user's API key and broker stay)")
      .requiredOption('--user <user>', 'OpenAlgo username')
      .action(async (flags: Record<string, unknown>) => {
        const user = String(flags.user);
        const config = configFrom(flags, env);
        refuseWithOpenAlgoDb(config);
        const file = databaseFile(config);
        const { db, fernetKey } = await writing(file, () => openKeys(config));
        try {
          if (!(await writing(file, () => new CredentialStore({ db, fernetKey }).remove(user)))) {
            io.err(`tickcast: user "${user}" has no broker credentials\n`);
            setExit(EXIT_FAILURE);
            return;
          }
          io.out(`removed the broker credentials of user "${user}"\n`);
          setExit(EXIT_OK);
        } finally {
          db.close();
        }
      }),
    STORE_FLAGS,
  );
}

/** The credentials the flags give (each secret from its flag or its -env variable, not both). */
function credentialsFrom(flags: Record<string, unknown>, env: NodeJS.ProcessEnv): BrokerCredentials {
  const values: Partial<Record<(typeof SECRETS)[number]['key'], string>> = {};
  for (const secret of SECRETS) {
    const direct = flags[camel(secret.flag)] as string | undefined;
    const variable = flags[camel(`${secret.flag}-env`)] as string | undefined;
    if (direct !== undefined && variable !== undefined) {
      throw new TickcastError(ErrorCode.USAGE, `give --${secret.flag} or --${secret.flag}-env, not both`);
    }
    if (variable !== undefined) {
      const value = env[variable];
      if (value === undefined || value === '') {
        throw new TickcastError(ErrorCode.USAGE, `--${secret.flag}-env: environment variable ${variable} is not set`);
      }
      values[secret.key] = value.trim();
    } else if (direct !== undefined) {
      values[secret.key] = direct;
    }
  }
  const token = SECRETS[1];
  if (values.accessToken === undefined) {
    throw new TickcastError(ErrorCode.USAGE, `${token.what} is required: give --${token.flag} or --${token.flag}-env`);
  }
  const creds: BrokerCredentials = { apiKey: values.apiKey ?? '', accessToken: values.accessToken };
  if (values.feedToken !== undefined) creds.feedToken = values.feedToken;
  if (flags.clientCode !== undefined) creds.clientCode = String(flags.clientCode);
  return creds;
}

/** Commander's attribute for a flag name: `access-token-env` → `accessTokenEnv`. */
function camel(flag: string): string {
  return flag.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
}

/** With DATABASE_URL the broker sessions are OpenAlgo's, which tickcast never writes (exit 2). */
function refuseWithOpenAlgoDb(config: Config): void {
  if (config.database) throw new TickcastError(ErrorCode.MANAGED_BY_OPENALGO, SESSIONS_MANAGED_BY_OPENALGO);
}

/** What a user has stored: in the instance's own store, or in OpenAlgo's database (read-only). */
async function describeUser(config: Config, user: string): Promise<{ presence: CredentialPresence | undefined; close: () => Promise<void> }> {
  if (config.database) {
    const oa = await openOpenAlgoStores({ url: config.database, pepper: config.auth.pepper, fernetSalt: config.auth.fernetSalt });
    try {
      return { presence: await oa.credentials.describe(user), close: () => oa.db.close() };
    } catch (error) {
      await oa.db.close();
      throw error;
    }
  }
  const { db, fernetKey } = await openKeys(config);
  try {
    return { presence: new CredentialStore({ db, fernetKey }).describe(user), close: async () => void db.close() };
  } catch (error) {
    db.close();
    throw error;
  }
}
