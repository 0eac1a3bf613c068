/**
 * The layering docs/architecture.md states, checked on src/'s import graph: no import cycles,
 * and the few rules of who may import whom that keep the feed contract, the gateway, the control
 * channel, the adapters and the symbol master apart.
 */
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { type ImportGraph, findCycles, importsOf, readImportGraph } from '../helpers/import-graph.js';

const SRC = fileURLToPath(new URL('../../src', import.meta.url));

/** `from` (a folder ending in `/`, a file, or `''` for every module) may not import any module under `never`. */
interface Rule {
  from: string;
  never: readonly string[];
  why: string;
  /** Modules under `from` not yet brought under the rule. */
  except?: readonly string[];
  /** Folders (or files) under `from` the rule does not bind: the layers it does not speak of. */
  besides?: readonly string[];
  /** Modules under `never` that may still be imported, the rule's `why` saying why. */
  allow?: readonly string[];
}

const RULES: readonly Rule[] = [
  { from: 'feed.ts', never: ['adapters/', 'gateway/', 'http/', 'control/', 'cluster/', 'nats/', 'bus/', 'symbols/'], why: 'the feed contract depends on the protocol alone' },
  { from: 'adapters/', never: ['gateway/', 'http/', 'control/', 'cluster/', 'nats/', 'cli/', 'roles/', 'wiring.ts'], why: 'adapters know the gateway only through feed.ts' },
  { from: 'symbols/', never: ['adapters/'], why: 'adapters read the symbol master, not the other way round' },
  { from: 'gateway/', never: ['adapters/', 'control/', 'cluster/', 'nats/', 'http/', 'cli/', 'roles/', 'wiring.ts'], why: 'the gateway knows feeds only through feed.ts, and HTTP routes are handed requests, not imported by it' },
  { from: 'http/', never: ['control/', 'cluster/', 'nats/', 'cli/', 'roles/', 'wiring.ts'], why: 'HTTP routes answer from what the gateway and the stores show them, whoever wired them' },
  { from: 'control/', never: ['gateway/', 'adapters/', 'cluster/', 'nats/', 'http/', 'cli/', 'roles/', 'wiring.ts'], why: 'the control channel carries the feed contract between processes and knows neither end' },
  { from: 'bus/', never: ['gateway/', 'adapters/', 'control/', 'cluster/', 'nats/', 'http/', 'cli/', 'roles/', 'wiring.ts'], why: 'the bus moves topics and payloads, whoever publishes or reads them' },
  { from: 'protocol/', never: ['feed.ts', 'gateway/', 'adapters/', 'control/', 'bus/', 'http/'], why: 'the client protocol is pure' },
  { from: 'client/', never: ['gateway/', 'adapters/', 'control/', 'bus/', 'http/', 'protocol/', 'feed.ts'], why: 'the client SDK ships alone (Node and browsers)' },
  { from: '', besides: ['cli/', 'roles/'], never: ['roles/'], why: 'a process role is started by the CLI, which chooses it; nothing below the roles starts one' },
  {
    from: 'roles/',
    never: ['roles/'],
    allow: ['roles/adapter-options.ts'],
    why: 'each process role stands alone; the two adapter roles share only the types of their options (adapter-options.ts, no role)',
  },
];

const under = (module: string, prefix: string): boolean => prefix === '' || (prefix.endsWith('/') ? module.startsWith(prefix) : module === prefix);
const underAny = (module: string, prefixes: readonly string[] | undefined): boolean => (prefixes ?? []).some((prefix) => under(module, prefix));

function violations(graph: ImportGraph, rules: readonly Rule[]): string[] {
  const found: string[] = [];
  for (const [module, imports] of graph) {
    for (const rule of rules) {
      if (!under(module, rule.from) || rule.except?.includes(module) || underAny(module, rule.besides)) continue;
      for (const target of imports) {
        if (underAny(target, rule.never) && !rule.allow?.includes(target)) found.push(`${module} imports ${target}: ${rule.why}`);
      }
    }
  }
  return found.sort();
}

describe('import graph of src/', () => {
  const graph = readImportGraph(SRC);

  it('reads the whole tree', () => {
    expect(graph.size).toBeGreaterThan(100);
    expect(graph.get('gateway/gateway.ts')).toContain('feed.ts');
  });

  it('has no import cycle', () => {
    expect(findCycles(graph).map((cycle) => cycle.join(' → '))).toEqual([]);
  });

  it('keeps the layering rules', () => {
    expect(violations(graph, RULES)).toEqual([]);
  });

  it('has no exception left that the rules no longer need', () => {
    for (const rule of RULES) for (const module of [...(rule.except ?? []), ...(rule.allow ?? [])]) expect(graph.has(module), `${module} no longer exists`).toBe(true);
  });

  it('has one file per process role, imported only by the CLI', () => {
    const roles = [...graph.keys()].filter((module) => module.startsWith('roles/')).sort();
    expect(roles).toEqual(['roles/adapter-options.ts', 'roles/adapter.ts', 'roles/cluster-primary.ts', 'roles/cluster-worker.ts', 'roles/gateway.ts', 'roles/nats-adapter.ts', 'roles/nats-node.ts', 'roles/openalgo-bridge.ts']);
    const importers = [...graph].filter(([module, imports]) => !module.startsWith('roles/') && [...imports].some((target) => target.startsWith('roles/')));
    expect(importers.map(([module]) => module).sort()).toEqual(['cli/adapter.ts', 'cli/openalgo-bridge.ts', 'cli/replay.ts', 'cli/start.ts']);
  });
});

describe('the checks themselves', () => {
  const graphOf = (edges: Record<string, string[]>): ImportGraph => new Map(Object.entries(edges).map(([k, v]) => [k, new Set(v)]));

  it('finds a cycle, direct or through several modules, and shows it as a closed path', () => {
    expect(findCycles(graphOf({ 'a.ts': ['b.ts'], 'b.ts': ['a.ts'] }))).toEqual([['a.ts', 'b.ts', 'a.ts']]);
    const long = findCycles(graphOf({ 'a.ts': ['b.ts'], 'b.ts': ['c.ts'], 'c.ts': ['a.ts'], 'd.ts': ['a.ts'] }));
    expect(long).toEqual([['a.ts', 'b.ts', 'c.ts', 'a.ts']]);
    expect(findCycles(graphOf({ 'a.ts': ['b.ts'], 'b.ts': ['c.ts'], 'c.ts': [] }))).toEqual([]);
  });

  it('reports a forbidden import with its reason', () => {
    const graph = graphOf({ 'adapters/x.ts': ['gateway/gateway.ts'], 'gateway/gateway.ts': [] });
    expect(violations(graph, RULES)).toEqual(['adapters/x.ts imports gateway/gateway.ts: adapters know the gateway only through feed.ts']);
  });

  it('applies a rule for every module but the layers it leaves out, and lets through what it allows', () => {
    const graph = graphOf({
      'wiring.ts': ['roles/gateway.ts'],
      'cli/start.ts': ['roles/gateway.ts'],
      'roles/gateway.ts': ['roles/nats-node.ts'],
      'roles/adapter.ts': ['roles/adapter-options.ts'],
    });
    expect(violations(graph, RULES)).toEqual([
      'roles/gateway.ts imports roles/nats-node.ts: each process role stands alone; the two adapter roles share only the types of their options (adapter-options.ts, no role)',
      'wiring.ts imports roles/gateway.ts: a process role is started by the CLI, which chooses it; nothing below the roles starts one',
    ]);
  });

  it('reads imports, re-exports and dynamic imports, not packages or comments', () => {
    const source = [
      "import type { A } from './a.js';",
      "export { B } from '../b.js';",
      "const c = await import('./c.js');",
      "import { readFileSync } from 'node:fs';",
      "// import { D } from './d.js';",
      "/* export * from './e.js'; */",
    ].join('\n');
    expect(importsOf(source)).toEqual(['./a.js', '../b.js', './c.js']);
  });
});
