/**
 * The repository tests itself: no tracked source, test, benchmark, script or CI file may point at
 * a path outside the checkout. The broker vectors once lived in a folder beside the repository,
 * so a fresh clone could not pass its own tests; this scan keeps that from coming back. It reads
 * the text of every tracked file under the folders below, nothing cleverer.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, isAbsolute, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = resolve(fileURLToPath(new URL('../..', import.meta.url)));
const FOLDERS = ['src', 'test', 'bench', 'scripts', '.ci'];

/**
 * The folder beside the repository the vectors came from, as a path or as join() parts. Only a
 * path that starts there counts: one inside another path (`a/..` then that folder) or inside a
 * URL (`sqlite:///..` then that folder) is not a file the tree reads.
 */
const SIBLING_SHARED = /(?<![\w./\\])\.\.(?:[/\\]|['"]\s*,\s*['"])shared\b/;
/** A relative path that starts by climbing (`../x`, `../../x`); not `a/../b` nor an ellipsis. */
const CLIMBING = /(?<![\w./\\])((?:\.\.\/)+)([\w.@-][\w.@/-]*)?/g;

/** Where `text` (the content of `file`, relative to the root) refers outside the repository. */
function outsideReferences(file: string, text: string): string[] {
  const found: string[] = [];
  text.split('\n').forEach((line, index) => {
    const where = `${file}:${index + 1}: ${line.trim().slice(0, 160)}`;
    if (SIBLING_SHARED.test(line)) {
      found.push(where);
      return;
    }
    for (const match of line.matchAll(CLIMBING)) {
      // Resolved from the file's own folder, as import specifiers and `new URL(…, import.meta.url)` are.
      const target = resolve(ROOT, dirname(file), match[0]);
      const inside = relative(ROOT, target);
      if (inside === '..' || inside.startsWith('../') || isAbsolute(inside)) {
        found.push(where);
        return;
      }
    }
  });
  return found;
}

function walk(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return entry.name === 'node_modules' ? [] : walk(path);
    return entry.isFile() ? [path] : [];
  });
}

/** Tracked files under FOLDERS, relative to the root (every file there when this is no git checkout). */
function trackedFiles(): string[] {
  let listed: string[];
  try {
    listed = execFileSync('git', ['ls-files', '-z', '--', ...FOLDERS], { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] })
      .split('\0')
      .filter(Boolean);
  } catch {
    listed = FOLDERS.flatMap((folder) => walk(join(ROOT, folder))).map((path) => relative(ROOT, path));
  }
  // A file deleted in the working tree but not yet in the index has nothing to read.
  return listed.filter((file) => existsSync(join(ROOT, file)));
}

describe('the repository refers to nothing outside itself', () => {
  it('recognises references that leave the repository, and leaves the ones inside alone', () => {
    // Spelled in pieces, so this file does not trip its own scan.
    const up = (n: number): string => '../'.repeat(n);
    const shared = `${'..'}/shared/vectors/zerodha.json`;
    expect(outsideReferences('test/unit/x.test.ts', `new URL('${up(3)}shared/vectors/zerodha.json', import.meta.url)`)).toHaveLength(1);
    expect(outsideReferences('test/fuzz/targets/x.ts', `new URL('${up(4)}elsewhere/a.json', import.meta.url)`)).toHaveLength(1);
    expect(outsideReferences('.ci/run', `cp ${shared} .`)).toHaveLength(1);
    const dots = '..';
    expect(outsideReferences('scripts/x.ts', `join(root, '${dots}', 'shared', 'spec.md')`)).toHaveLength(1);
    expect(outsideReferences('src/a.ts', `import x from '${up(2)}outside.js';`)).toHaveLength(1);

    expect(outsideReferences('test/unit/x.test.ts', `new URL('${up(1)}fixtures/vectors/zerodha.json', import.meta.url)`)).toEqual([]);
    expect(outsideReferences('test/fuzz/targets/x.ts', `import '${up(3)}src/clock.js'; new URL('${up(2)}fixtures/a.csv', import.meta.url)`)).toEqual([]);
    expect(outsideReferences('test/unit/x.test.ts', `new URL('${up(2).slice(0, -1)}', import.meta.url) // the root`)).toEqual([]);
    expect(outsideReferences('test/unit/x.test.ts', `'/static/${up(3)}etc/passwd' and 'wait...' and '${'.'.repeat(4)}/x'`)).toEqual([]);
    expect(outsideReferences('test/unit/x.test.ts', `parse('sqlite:///${shared}')`)).toEqual([]);
  });

  it(`has no tracked file under ${FOLDERS.join(', ')} that refers to a path outside the repository`, () => {
    const files = trackedFiles();
    // The scan must really look at the tree, not pass on an empty list.
    expect(files).toContain('src/adapters/zerodha/kite-adapter.ts');
    expect(files.length).toBeGreaterThan(100);
    const found: string[] = [];
    for (const file of files) {
      const content = readFileSync(join(ROOT, file));
      if (content.includes(0)) continue; // binary
      found.push(...outsideReferences(file, content.toString('utf8')));
    }
    expect(found).toEqual([]);
  });
});
