/** `tickcast keys create|list|revoke|reset`: manage API keys in the instance's database. */
import type { Command } from 'commander';
import type { ApiKeyListing } from '../auth/api-keys.js';
import { deletePepperedSecrets, pepperedSecrets } from '../auth/store-pepper.js';
import { NATIVE_BROKERS, OPENALGO_BROKERS, SIMULATOR_BROKER, isKnownBroker, knownBrokers } from '../brokers.js';
import { ErrorCode, TickcastError } from '../errors.js';
import { KEYS_MANAGED_BY_OPENALGO } from '../auth/openalgo-keys.js';
import type { Config } from '../config/options.js';
import { databaseFile, instanceDir, openKeys } from '../wiring.js';
import { openOpenAlgoStores } from '../store/openalgo-stores.js';
import { openDatabase } from '../store/database.js';
import { ensureDataDir } from '../store/data-dir.js';
import { addConfigFlags, configFrom, EXIT_FAILURE, EXIT_OK, type Io, writing } from './common.js';

const STORE_FLAGS = ['envFile', 'instance', 'dataDir'];

export function registerKeyCommands(program: Command, io: Io, setExit: (code: number) => void): void {
  const keys = program.command('keys').description('Create, list and revoke API keys');

  addConfigFlags(
    keys
      .command('create')
      .description('Create an API key for a user (replacing the user\'s previous key) and print it once')
      .requiredOption('--user <user>', 'user the key belongs to (OpenAlgo username)')
      .option(
        '--broker <broker>',
        `broker whose feed the user receives: simulator (or a simulated broker named in TICKCAST_SIM_BROKERS), a native one (${NATIVE_BROKERS.join(', ')}) or one of OpenAlgo's (${OPENALGO_BROKERS.join(', ')})`,
        SIMULATOR_BROKER,
      )
      .option('--json', 'print {"api_key","user","broker","created_at","replaced"}')
      .action(async (flags: Record<string, unknown>) => {
        const config = configFrom(flags);
        refuseWithOpenAlgoDb(config);
        // Checked before the store is opened: a misspelt broker would give a key that gets no feed.
        const broker = knownBroker(String(flags.broker), config.simulator.brokers);
        const file = databaseFile(config);
        const { db, keys: store } = await writing(file, () => openKeys(config));
        try {
          const created = await writing(file, () => store.create(String(flags.user), broker));
          if (flags.json) {
            io.out(
              JSON.stringify({
                api_key: created.apiKey,
                user: created.user,
                broker: created.broker,
                created_at: created.createdAt,
                replaced: created.replaced,
              }) + '\n',
            );
          } else {
            io.out(`${created.apiKey}\n`);
            io.err(
              `API key for user "${created.user}" (broker "${created.broker}")` +
                `${created.replaced ? '; it replaces the previous key, which no longer works' : ''}. It is not shown again.\n`,
            );
          }
        } finally {
          db.close();
        }
      }),
    STORE_FLAGS,
  );

  addConfigFlags(
    keys
      .command('list')
      .description('List users with API keys (keys are never shown in full)')
      .option('--json', 'print a JSON array')
      .action(async (flags: Record<string, unknown>) => {
        const config = configFrom(flags);
        const { rows, close } = await listKeys(config);
        try {
          if (flags.json) {
            io.out(JSON.stringify(rows.map((r) => ({ user: r.user, broker: r.broker, created_at: r.createdAt, key_preview: r.keyPreview }))) + '\n');
            return;
          }
          if (rows.length === 0) {
            io.out(config.database ? "no API keys in OpenAlgo's database (create one on OpenAlgo's API key page)\n" : 'no API keys (create one with `tickcast keys create --user NAME`)\n');
            return;
          }
          const table = [['USER', 'BROKER', 'CREATED', 'KEY'], ...rows.map((r) => [r.user, r.broker ?? '-', String(r.createdAt ?? '-'), r.keyPreview ?? '-'])];
          const widths = table[0]!.map((_, i) => Math.max(...table.map((row) => row[i]!.length)));
          io.out(table.map((row) => row.map((cell, i) => cell.padEnd(widths[i]!)).join('  ').trimEnd()).join('\n') + '\n');
        } finally {
          await close();
        }
      }),
    STORE_FLAGS,
  );

  addConfigFlags(
    keys
      .command('revoke')
      .description("Revoke a user's API key")
      .requiredOption('--user <user>', 'user whose key to revoke')
      .action(async (flags: Record<string, unknown>) => {
        const config = configFrom(flags);
        refuseWithOpenAlgoDb(config);
        const file = databaseFile(config);
        const { db, keys: store } = await writing(file, () => openKeys(config));
        try {
          if (await writing(file, () => store.revoke(String(flags.user)))) {
            io.out(`revoked the API key of user "${String(flags.user)}"\n`);
          } else {
            io.err(`tickcast: user "${String(flags.user)}" has no API key\n`);
            setExit(EXIT_FAILURE);
            return;
          }
          setExit(EXIT_OK);
        } finally {
          db.close();
        }
      }),
    STORE_FLAGS,
  );

  addConfigFlags(
    keys
      .command('reset')
      .description(
        "Delete every API key and all broker credentials of the instance, to start over when the pepper they were made with is lost (users then need new keys)",
      )
      .option('--yes', 'really delete them')
      .action(async (flags: Record<string, unknown>) => {
        const config = configFrom(flags);
        refuseWithOpenAlgoDb(config);
        // Not through openKeys: that refuses a store whose pepper is lost, which is why this exists.
        ensureDataDir(instanceDir(config));
        const db = openDatabase(databaseFile(config));
        let deleted;
        try {
          if (!flags.yes) {
            const held = pepperedSecrets(db);
            throw new TickcastError(
              ErrorCode.USAGE,
              `this deletes ${describeSecrets(held)} of instance "${config.instance}" for good; run it again with --yes to do so`,
            );
          }
          deleted = await writing(databaseFile(config), () => deletePepperedSecrets(db));
        } finally {
          db.close();
        }
        // Records the pepper in use from now on (creating the pepper file if none is configured).
        (await writing(databaseFile(config), () => openKeys(config))).db.close();
        io.out(`deleted ${describeSecrets(deleted)}; create new keys with \`tickcast keys create --user NAME\`\n`);
        setExit(EXIT_OK);
      }),
    STORE_FLAGS,
  );
}

function describeSecrets(held: { keys: number; credentials: number }): string {
  const plural = (n: number, word: string): string => `${n} ${word}${n === 1 ? '' : 's'}`;
  return `${plural(held.keys, 'API key')} and the broker credentials of ${plural(held.credentials, 'user')}`;
}

/**
 * The broker name as stored (lower case, as OpenAlgo's), if tickcast knows it: a real broker, the
 * simulator, or a simulated broker the configuration names; else a usage error listing them.
 */
function knownBroker(given: string, simulated: readonly string[]): string {
  const broker = given.toLowerCase();
  if (isKnownBroker(broker) || simulated.includes(broker)) return broker;
  const extra = simulated.filter((name) => !isKnownBroker(name));
  throw new TickcastError(
    ErrorCode.USAGE,
    `unknown broker "${given}": tickcast knows its native brokers (${NATIVE_BROKERS.join(', ')}), OpenAlgo's brokers and ${SIMULATOR_BROKER}` +
      `${extra.length > 0 ? `, and the simulated ${extra.join(', ')} (TICKCAST_SIM_BROKERS)` : ''}: ${knownBrokers().join(', ')}` +
      `; a simulated broker of another name must be listed in TICKCAST_SIM_BROKERS (see \`tickcast keys create --help\`)`,
  );
}

/** With DATABASE_URL the keys are OpenAlgo's, which tickcast never writes: exit 2 saying where to manage them. */
function refuseWithOpenAlgoDb(config: Config): void {
  if (config.database) throw new TickcastError(ErrorCode.MANAGED_BY_OPENALGO, KEYS_MANAGED_BY_OPENALGO);
}

/** The keys of the instance's own store, or of OpenAlgo's database with DATABASE_URL (read-only). */
async function listKeys(config: Config): Promise<{ rows: ApiKeyListing[]; close: () => Promise<void> }> {
  if (config.database) {
    const oa = await openOpenAlgoStores({ url: config.database, pepper: config.auth.pepper, fernetSalt: config.auth.fernetSalt });
    try {
      return { rows: await oa.keys.list(), close: () => oa.db.close() };
    } catch (error) {
      await oa.db.close();
      throw error;
    }
  }
  const { db, keys } = await openKeys(config);
  try {
    return { rows: keys.list(), close: async () => void db.close() };
  } catch (error) {
    db.close();
    throw error;
  }
}
