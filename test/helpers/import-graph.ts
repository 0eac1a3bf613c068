/**
 * The import graph of src/, read from the TypeScript sources themselves (relative imports and
 * re-exports, type-only ones included: a cycle of types is still two modules that cannot be
 * understood apart). Used by test/unit/import-graph.test.ts to refuse cycles and imports that
 * break the layering docs/architecture.md states.
 */
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';

/** module (path relative to the root, `/`-separated) → the modules it imports. */
export type ImportGraph = Map<string, Set<string>>;

// `import … from '…'`, `export … from '…'`, `import '…'` and `import('…')`; comments are
// stripped first so an example in a doc comment is not an import.
const SPECIFIER = /\b(?:from|import)\s*\(?\s*['"]([^'"]+)['"]/g;

function stripComments(source: string): string {
  return source.replace(/\/\*[\s\S]*?\*\//g, '').replace(/(^|[^:'"`\\])\/\/.*$/gm, '$1');
}

function sourceFiles(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out.push(...sourceFiles(path));
    else if (name.endsWith('.ts') && !name.endsWith('.d.ts')) out.push(path);
  }
  return out;
}

/** Relative specifiers only: packages and node: built-ins are outside the graph. */
export function importsOf(source: string): string[] {
  const found: string[] = [];
  for (const match of stripComments(source).matchAll(SPECIFIER)) {
    if (match[1]!.startsWith('.')) found.push(match[1]!);
  }
  return found;
}

export function readImportGraph(root: string): ImportGraph {
  const graph: ImportGraph = new Map();
  const base = resolve(root);
  for (const file of sourceFiles(base)) {
    const from = relative(base, file).split('\\').join('/');
    const targets = new Set<string>();
    for (const spec of importsOf(readFileSync(file, 'utf8'))) {
      // NodeNext style: `./x.js` names `./x.ts`.
      const target = relative(base, resolve(dirname(file), spec.replace(/\.js$/, '.ts'))).split('\\').join('/');
      if (target !== from) targets.add(target);
    }
    graph.set(from, targets);
  }
  return graph;
}

/**
 * Every import cycle, one per strongly connected component of two or more modules, each shown
 * as one closed path through it (`a.ts → b.ts → a.ts`). Tarjan's algorithm, iterative.
 */
export function findCycles(graph: ImportGraph): string[][] {
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const onStack = new Set<string>();
  const stack: string[] = [];
  const components: string[][] = [];
  let next = 0;
  for (const start of [...graph.keys()].sort()) {
    if (index.has(start)) continue;
    const work: Array<{ node: string; edges: string[]; i: number }> = [];
    const visit = (node: string): void => {
      index.set(node, next);
      low.set(node, next++);
      stack.push(node);
      onStack.add(node);
      work.push({ node, edges: [...(graph.get(node) ?? [])].filter((n) => graph.has(n)).sort(), i: 0 });
    };
    visit(start);
    while (work.length > 0) {
      const frame = work[work.length - 1]!;
      if (frame.i < frame.edges.length) {
        const target = frame.edges[frame.i++]!;
        if (!index.has(target)) visit(target);
        else if (onStack.has(target)) low.set(frame.node, Math.min(low.get(frame.node)!, index.get(target)!));
        continue;
      }
      work.pop();
      const parent = work[work.length - 1];
      if (parent) low.set(parent.node, Math.min(low.get(parent.node)!, low.get(frame.node)!));
      if (low.get(frame.node) === index.get(frame.node)) {
        const component: string[] = [];
        let member: string;
        do {
          member = stack.pop()!;
          onStack.delete(member);
          component.push(member);
        } while (member !== frame.node);
        if (component.length > 1) components.push(component.sort());
      }
    }
  }
  return components.map((component) => closedPath(graph, component));
}

/** A shortest path from the component's first module back to itself, within the component. */
function closedPath(graph: ImportGraph, component: string[]): string[] {
  const members = new Set(component);
  const start = component[0]!;
  const previous = new Map<string, string>();
  const queue = [start];
  while (queue.length > 0) {
    const node = queue.shift()!;
    for (const target of [...(graph.get(node) ?? [])].sort()) {
      if (!members.has(target)) continue;
      if (target === start) {
        const path = [start];
        for (let at: string | undefined = node; at !== undefined && at !== start; at = previous.get(at)) path.splice(1, 0, at);
        return [...path, start];
      }
      if (!previous.has(target)) {
        previous.set(target, node);
        queue.push(target);
      }
    }
  }
  return component;
}
