// Bundles the dashboard (src/dashboard) into dist/dashboard: index.html plus content-hashed
// assets/app-HASH.js and .css, which the gateway serves at `/` (src/http/static-files.ts).
// Run by `npm run build` after the TypeScript build; type-checking is `tsc -p src/dashboard`.
import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const source = join(root, 'src', 'dashboard');
const out = join(root, 'dist', 'dashboard');

rmSync(join(out, 'assets.tmp'), { recursive: true, force: true });
const result = await build({
  entryPoints: { app: join(source, 'main.ts') },
  bundle: true,
  format: 'esm',
  platform: 'browser',
  target: ['es2022', 'chrome110', 'firefox110', 'safari16'],
  minify: true,
  sourcemap: 'linked',
  entryNames: '[name]-[hash]',
  // The client SDK loads `ws` only in Node, where there is no global WebSocket; browsers never do.
  external: ['ws'],
  outdir: join(out, 'assets.tmp'),
  metafile: true,
  write: true,
  logLevel: 'warning',
});

const outputs = Object.keys(result.metafile.outputs).map((file) => basename(file));
const js = outputs.find((name) => name.endsWith('.js'));
const css = outputs.find((name) => name.endsWith('.css'));
if (!js || !css) throw new Error(`dashboard bundle incomplete: ${outputs.join(', ')}`);

// Swap in the new assets only once the bundle succeeded, so a failed build leaves the old one.
rmSync(join(out, 'assets'), { recursive: true, force: true });
mkdirSync(out, { recursive: true });
renameSync(join(out, 'assets.tmp'), join(out, 'assets'));

const page = readFileSync(join(source, 'index.html'), 'utf8').replace('%APP_JS%', `assets/${js}`).replace('%APP_CSS%', `assets/${css}`);
writeFileSync(join(out, 'index.html'), page);
