/** `tickcast instances [--json]` and `tickcast instances prune`: what the registry knows. */
import type { Command } from 'commander';
import { systemClock } from '../clock.js';
import { openConfiguredRegistry } from '../wiring.js';
import type { ListedEntry } from '../registry/registry.js';
import { addConfigFlags, configFrom, type Io } from './common.js';

const REGISTRY_FLAGS = ['envFile', 'registry.url', 'registry.ttlMs'];

/** The `--json` shape: one object per registered part. */
export function instanceJson(entry: ListedEntry): Record<string, unknown> {
  return {
    instance: entry.instance,
    role: entry.role,
    name: entry.name,
    pid: entry.pid,
    host: entry.host,
    alive: entry.alive,
    endpoints: { ws: entry.endpoints.ws ?? null, bus: entry.endpoints.bus ?? null, control: entry.endpoints.control ?? null },
    started_at: new Date(entry.startedAt).toISOString(),
    heartbeat_at: new Date(entry.heartbeatAt).toISOString(),
  };
}

/** A gateway node of an instance on a NATS bus is registered under its node name, not the instance's. */
const isNode = (entry: ListedEntry): boolean => entry.role === 'gateway' && entry.name !== entry.instance;

const plural = (n: number, word: string): string => `${n} ${word}${n === 1 ? '' : 's'}`;

/**
 * One line per instance that runs gateway nodes: how many, on how many hosts, and which live
 * where (`default: 3 gateway nodes on 2 hosts (host-a: n1, n2; host-b: n3); adapters: sim on host-a`).
 */
export function nodeSummary(entries: readonly ListedEntry[]): string[] {
  const lines: string[] = [];
  const instances = [...new Set(entries.filter((e) => e.alive && isNode(e)).map((e) => e.instance))].sort();
  for (const instance of instances) {
    const live = entries.filter((e) => e.alive && e.instance === instance);
    const byHost = new Map<string, string[]>();
    for (const node of live.filter(isNode)) byHost.set(node.host, [...(byHost.get(node.host) ?? []), node.name]);
    const nodes = [...byHost.values()].reduce((n, names) => n + names.length, 0);
    const hosts = [...byHost.keys()].sort().map((host) => `${host}: ${byHost.get(host)!.sort().join(', ')}`);
    const adapters = live.filter((e) => e.role === 'adapter').map((e) => `${e.name} on ${e.host}`);
    lines.push(
      `${instance}: ${plural(nodes, 'gateway node')} on ${plural(byHost.size, 'host')} (${hosts.join('; ')}); ` +
        (adapters.length ? `adapters: ${adapters.join(', ')}` : 'no adapter'),
    );
  }
  return lines;
}

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((row) => row[i]!.length)));
  return rows.map((row) => row.map((cell, i) => cell.padEnd(widths[i]!)).join('  ').trimEnd()).join('\n') + '\n';
}

export function registerInstanceCommands(program: Command, io: Io): void {
  const instances = addConfigFlags(
    program
      .command('instances')
      .description('List the instances on this host (or fleet) and their parts: gateways (or gateway nodes, per host) and adapters')
      .option('--json', 'print a JSON array')
      .action(async (flags: Record<string, unknown>) => {
        const registry = await openConfiguredRegistry(configFrom(flags), systemClock);
        try {
          const entries = await registry.list();
          entries.sort((a, b) => a.instance.localeCompare(b.instance) || a.role.localeCompare(b.role) || a.host.localeCompare(b.host) || a.startedAt - b.startedAt);
          if (flags.json) {
            io.out(JSON.stringify(entries.map(instanceJson)) + '\n');
            return;
          }
          if (entries.length === 0) {
            io.out(`no instances registered in ${registry.url}\n`);
            return;
          }
          io.out(
            table([
              ['INSTANCE', 'ROLE', 'NAME', 'PID', 'HOST', 'STATE', 'WEBSOCKET', 'BUS', 'CONTROL'],
              ...entries.map((e) => [
                e.instance,
                e.role,
                e.role === 'adapter' || isNode(e) ? e.name : '-',
                String(e.pid),
                e.host,
                e.alive ? 'alive' : 'stale',
                e.endpoints.ws ?? '-',
                e.endpoints.bus ?? '-',
                e.endpoints.control ?? '-',
              ]),
            ]),
          );
          const summary = nodeSummary(entries);
          if (summary.length > 0) io.out(`\n${summary.join('\n')}\n`);
          if (entries.some((e) => !e.alive)) io.out('stale entries are reaped automatically; `tickcast instances prune` removes them now\n');
        } finally {
          await registry.close();
        }
      }),
    REGISTRY_FLAGS,
  );

  addConfigFlags(
    instances
      .command('prune')
      .description('Remove stale entries (dead processes, expired heartbeats) from the registry')
      .option('--json', 'print the removed entries as a JSON array')
      .action(async (flags: Record<string, unknown>) => {
        const registry = await openConfiguredRegistry(configFrom(flags), systemClock);
        try {
          const removed = await registry.prune();
          if (flags.json) io.out(JSON.stringify(removed.map((e) => instanceJson({ ...e, alive: false }))) + '\n');
          else io.out(`removed ${removed.length} stale ${removed.length === 1 ? 'entry' : 'entries'} from ${registry.url}\n`);
        } finally {
          await registry.close();
        }
      }),
    REGISTRY_FLAGS,
  );
}
