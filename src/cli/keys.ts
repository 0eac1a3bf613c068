/** `tickcast keys create|list|revoke`: manage API keys in the instance's database. */
import type { Command } from 'commander';
import { openKeys } from '../instance.js';
import { addConfigFlags, configFrom, EXIT_FAILURE, EXIT_OK, type Io } from './main.js';

const STORE_FLAGS = ['envFile', 'instance', 'dataDir'];

export function registerKeyCommands(program: Command, io: Io, setExit: (code: number) => void): void {
  const keys = program.command('keys').description('Create, list and revoke API keys');

  addConfigFlags(
    keys
      .command('create')
      .description('Create an API key for a user (replacing the user\'s previous key) and print it once')
      .requiredOption('--user <user>', 'user the key belongs to (OpenAlgo username)')
      .option('--broker <broker>', 'broker whose feed the user receives', 'simulator')
      .option('--json', 'print {"api_key","user","broker","created_at","replaced"}')
      .action(async (flags: Record<string, unknown>) => {
        const { db, keys: store } = await openKeys(configFrom(flags));
        try {
          const created = await store.create(String(flags.user), String(flags.broker));
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
        const { db, keys: store } = await openKeys(configFrom(flags));
        try {
          const rows = store.list();
          if (flags.json) {
            io.out(JSON.stringify(rows.map((r) => ({ user: r.user, broker: r.broker, created_at: r.createdAt, key_preview: r.keyPreview }))) + '\n');
            return;
          }
          if (rows.length === 0) {
            io.out('no API keys (create one with `tickcast keys create --user NAME`)\n');
            return;
          }
          const table = [['USER', 'BROKER', 'CREATED', 'KEY'], ...rows.map((r) => [r.user, r.broker ?? '-', String(r.createdAt ?? '-'), r.keyPreview ?? '-'])];
          const widths = table[0]!.map((_, i) => Math.max(...table.map((row) => row[i]!.length)));
          io.out(table.map((row) => row.map((cell, i) => cell.padEnd(widths[i]!)).join('  ').trimEnd()).join('\n') + '\n');
        } finally {
          db.close();
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
        const { db, keys: store } = await openKeys(configFrom(flags));
        try {
          if (store.revoke(String(flags.user))) {
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
}
