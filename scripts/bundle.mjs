#!/usr/bin/env node
// Bundle velo with esbuild into dist/bundle/, straight from the TypeScript
// sources: velo (the bin: a shell script, cli/velo.sh, that runs the native launcher for `velo uv` when
// it is installed), start.cjs (what it runs otherwise: CommonJS, --version, the no-op velo npm ci, compile cache),
// velo.js (the command), ingestWorker.js (the store's ingest worker
// thread) and tarballWorker.js (npm's download-and-ingest worker thread), plus the chunks they share. Every dynamic import() stays
// a split point, so a command loads its own chunk only, and Ink, React and
// the dashboard only load for the commands that draw on a terminal. Ink,
// React, tar and smol-toml are bundled; left outside are Node's own modules,
// @napi-rs/blake-hash (a native addon, required at run time) and the user's
// npm, which velo loads from wherever npm is installed.
//
// This is what ships (scripts/pack.sh) and what the CLI tests run
// (test/support/globalSetup.ts bundles after tsc); bin/velo runs tsc's
// dist/cli/velo.js, so a `tsc` after an edit is enough while working.
// Usage: node scripts/bundle.mjs [--outdir DIR] [--metafile FILE] [--clean (remove every earlier chunk now)]
import { build } from 'esbuild';
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const repo = join(dirname(fileURLToPath(import.meta.url)), '..');
const { values } = parseArgs({ options: { outdir: { type: 'string' }, metafile: { type: 'string' }, clean: { type: 'boolean' } } });
const outdir = values.outdir ?? join(repo, 'dist', 'bundle');
const pkg = JSON.parse(readFileSync(join(repo, 'package.json'), 'utf8'));

// One flat directory: code in any chunk finds velo.js and ingestWorker.js
// beside itself (import.meta.url). A velo already running from it (another
// test run) keeps working: chunk names carry a content hash, the entries are
// renamed into place last, and only chunks unused for 10 minutes are removed.
mkdirSync(outdir, { recursive: true });
const staging = `${outdir}.${process.pid}.tmp`;
rmSync(staging, { recursive: true, force: true });

const result = await build({
  absWorkingDir: repo,
  entryPoints: { velo: 'cli/velo.ts', ingestWorker: 'src/store/ingestWorker.ts', tarballWorker: 'src/npm/tarballWorker.ts', lazyFetcher: 'src/remote/lazyFetcher.ts' },
  outdir: staging,
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node22',
  minifySyntax: true,
  legalComments: 'eof',
  jsx: 'automatic',
  // the production builds of React and its reconciler (the code behind process.env.NODE_ENV checks is dropped;
  // the dashboard's own NODE_ENV=production for the unbundled build becomes a no-op, hence the silenced warning)
  logOverride: { 'assign-to-define': 'silent' },
  define: { 'process.env.NODE_ENV': '"production"', VELO_VERSION: JSON.stringify(pkg.version) },
  external: ['@napi-rs/blake-hash', '@napi-rs/blake-hash-*', 'react-devtools-core'],
  // CommonJS parts of the bundle (React) call require() for Node's modules
  banner: { js: "import { createRequire as __veloCreateRequire } from 'node:module'; const require = __veloCreateRequire(import.meta.url);" },
  metafile: Boolean(values.metafile),
  logLevel: 'warning',
});
// the bin: CommonJS and standalone (velo.js stays a dynamic import), see cli/start.cts
await build({
  absWorkingDir: repo,
  entryPoints: { start: 'cli/start.cts' },
  outdir: staging,
  outExtension: { '.js': '.cjs' },
  bundle: true,
  format: 'cjs',
  platform: 'node',
  target: 'node22',
  minifySyntax: true,
  define: { VELO_VERSION: JSON.stringify(pkg.version) },
  external: ['./velo.js'],
  logLevel: 'warning',
});
// the bin itself: a shell script that runs the native launcher when it is installed, else Node on start.cjs (cli/velo.sh)
writeFileSync(join(staging, 'velo'), readFileSync(join(repo, 'cli', 'velo.sh')), { mode: 0o755 });
const ENTRIES = new Set(['velo', 'start.cjs', 'velo.js', 'ingestWorker.js', 'tarballWorker.js', 'lazyFetcher.js']);
const made = readdirSync(staging);
for (const f of made.filter((f) => !ENTRIES.has(f))) renameSync(join(staging, f), join(outdir, f));
for (const f of made.filter((f) => ENTRIES.has(f))) renameSync(join(staging, f), join(outdir, f));
rmSync(staging, { recursive: true, force: true });
const keep = new Set(made);
for (const f of readdirSync(outdir)) {
  if (!keep.has(f) && (values.clean || Date.now() - statSync(join(outdir, f)).mtimeMs > 10 * 60_000)) rmSync(join(outdir, f), { force: true });
}
if (values.metafile) writeFileSync(values.metafile, JSON.stringify(result.metafile));
process.stdout.write(`velo bundle: wrote ${outdir}/start.cjs, velo.js, ingestWorker.js, tarballWorker.js, lazyFetcher.js and ${made.length - ENTRIES.size} chunks\n`);
