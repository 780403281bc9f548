#!/usr/bin/env node
// velo npm ci beside its peers on a real 1207-package lockfile (bench/npm-1207),
// in one run, medians of N, node_modules removed (and `sync`) before each run; the
// warm cases interleaved round by round, in an order rotated every round:
//   npm ci --offline (warm npm cache), pnpm install --offline --frozen-lockfile
//   (warm store), bun install --frozen-lockfile (warm cache), velo npm ci with an
//   empty store, with a warm store, the no-op; npm ci with an empty cache (the
//   peer of velo's empty store); disk used by five copies under npm vs velo.
// --mount-only: just bun's warm install and `velo npm ci --projection mount` (warm
//   store), interleaved, velo run as it ships (node dist/bundle/start.cjs), and their ratio.
// --velo-only: just velo's warm cases (link and mount); --base DIR adds them for another built checkout
//   (DIR/bin/velo on the same store, e.g. main's), interleaved in the same rounds.
// Usage: node bench/npm-bench.mjs [--runs N] [--cold-runs M] [--work DIR] [--skip-peers] [--mount-only] [--velo-only] [--base DIR]
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { peerTools } from './lib/peers.mjs';
import { Measurements, benchSetup, repo, rmNm, time, velo, veloBundle } from './lib/npm1207.mjs';

const { values } = parseArgs({
  options: { runs: { type: 'string', default: '5' }, 'cold-runs': { type: 'string', default: '2' }, work: { type: 'string' }, 'skip-peers': { type: 'boolean' }, 'mount-only': { type: 'boolean' }, 'velo-only': { type: 'boolean' }, base: { type: 'string' } },
});
const runs = Number(values.runs);
const coldRuns = Number(values['cold-runs']);
const { work, env, project } = benchSetup('npm', values.work);
const m = new Measurements();
const measure = (...a) => m.measure(...a);
const measureInterleaved = (...a) => m.interleaved(...a);
const results = m.results;

if (values['mount-only']) {
  const tools = peerTools(repo);
  const pBun = project('bun');
  const benv = { ...env, BUN_INSTALL_CACHE_DIR: join(work, 'bun-cache') };
  time(tools.bun, ['install', '--ignore-scripts'], { cwd: pBun, env: benv });
  const venv = { ...env, VELO_HOME: join(work, 'velo-store') };
  const bundled = (args, cwd) => time(process.execPath, [veloBundle, ...args], { cwd, env: venv });
  const pMount = project('velo-mount');
  const unmount = () => spawnSync(process.execPath, [veloBundle, 'umount', join(pMount, 'node_modules')], { env: venv });
  bundled(['npm', 'ci', '--ignore-scripts', '--projection', 'mount'], pMount); // fills the store
  measureInterleaved([
    { label: 'bun install --frozen-lockfile (warm cache)', before: () => rmNm(pBun), run: () => time(tools.bun, ['install', '--frozen-lockfile', '--ignore-scripts'], { cwd: pBun, env: benv }) },
    { label: 'velo npm ci --projection mount (warm store, bundle)', before: () => { unmount(); rmNm(pMount); }, run: () => bundled(['npm', 'ci', '--ignore-scripts', '--projection', 'mount'], pMount) },
  ], runs);
  unmount();
  console.log(`\nvelo mount / bun warm: ${(results[1].median / results[0].median).toFixed(2)}x`);
  process.exit(0);
}

const veloOnly = values['velo-only'];
// baseline: node start-up, for the no-op comparison
if (!veloOnly) measure('node -e 0', runs, null, () => time(process.execPath, ['-e', '0'], { env }));

// Set-up of every warm case first, then the warm cases measured interleaved
// (one run of each per round), so that a noisy machine hits them alike.
const npmCache = join(work, 'npm-cache');
const pNpm = project('npm');
if (!veloOnly) time('npm', ['ci', '--ignore-scripts', '--cache', npmCache], { cwd: pNpm, env }); // warm the cache
const warmCases = veloOnly ? [] : [
  { label: 'npm ci --offline (warm npm cache)', before: () => rmNm(pNpm), run: () => time('npm', ['ci', '--offline', '--ignore-scripts', '--cache', npmCache], { cwd: pNpm, env }) },
];
if (!values['skip-peers'] && !veloOnly) {
  const tools = peerTools(repo);
  const pPnpm = project('pnpm');
  const pnpmStore = join(work, 'pnpm-store');
  time(tools.pnpm, ['import'], { cwd: pPnpm, env });
  time(tools.pnpm, ['install', '--frozen-lockfile', '--ignore-scripts', '--store-dir', pnpmStore], { cwd: pPnpm, env });
  warmCases.push({ label: 'pnpm install --offline --frozen-lockfile (warm store)', before: () => rmNm(pPnpm),
    run: () => time(tools.pnpm, ['install', '--offline', '--frozen-lockfile', '--ignore-scripts', '--store-dir', pnpmStore], { cwd: pPnpm, env }) });
  const pBun = project('bun');
  const bunCache = join(work, 'bun-cache');
  const benv = { ...env, BUN_INSTALL_CACHE_DIR: bunCache };
  time(tools.bun, ['install', '--ignore-scripts'], { cwd: pBun, env: benv });
  warmCases.push({ label: 'bun install --frozen-lockfile (warm cache)', before: () => rmNm(pBun), run: () => time(tools.bun, ['install', '--frozen-lockfile', '--ignore-scripts'], { cwd: pBun, env: benv }) });
}
const cpal = join(work, 'cp-al');
if (!veloOnly) warmCases.push({ label: 'cp -al of an installed node_modules (floor)', before: () => rmSync(cpal, { recursive: true, force: true }), run: () => time('cp', ['-al', join(pNpm, 'node_modules'), cpal], {}) });

const home = join(work, 'velo-store');
const venv = { ...env, VELO_HOME: home };
const pVelo = project('velo');
time(velo, ['npm', 'ci', '--ignore-scripts'], { cwd: pVelo, env: venv });
const pVelo2 = project('velo2');
warmCases.push({ label: 'velo npm ci (warm store, another project)', before: () => rmNm(pVelo2), run: () => time(velo, ['npm', 'ci', '--ignore-scripts'], { cwd: pVelo2, env: venv }) });
const fuse = spawnSync(velo, ['mounts'], { env: venv, encoding: 'utf8' });
const pMount = project('velo-mount');
if (fuse.status === 0 && existsSync('/dev/fuse')) {
  warmCases.push({ label: 'velo npm ci --projection mount (warm store)', before: () => {
    spawnSync(velo, ['umount', join(pMount, 'node_modules')], { env: venv });
    rmNm(pMount);
  }, run: () => time(velo, ['npm', 'ci', '--ignore-scripts', '--projection', 'mount'], { cwd: pMount, env: venv }) });
}
const base = values.base && join(values.base, 'bin', 'velo');
if (base) {
  const pBase = project('velo-base');
  warmCases.push({ label: `velo npm ci (warm store, another project), ${values.base}`, before: () => rmNm(pBase), run: () => time(base, ['npm', 'ci', '--ignore-scripts'], { cwd: pBase, env: venv }) });
  if (warmCases.some((c) => c.label.startsWith('velo npm ci --projection mount'))) {
    const pBaseMount = project('velo-base-mount');
    warmCases.push({ label: `velo npm ci --projection mount (warm store), ${values.base}`, before: () => {
      spawnSync(base, ['umount', join(pBaseMount, 'node_modules')], { env: venv });
      rmNm(pBaseMount);
    }, run: () => time(base, ['npm', 'ci', '--ignore-scripts', '--projection', 'mount'], { cwd: pBaseMount, env: venv }) });
    process.on('exit', () => spawnSync(base, ['umount', join(pBaseMount, 'node_modules')], { env: venv }));
  }
}
measureInterleaved(warmCases, runs);
spawnSync(velo, ['umount', join(pMount, 'node_modules')], { env: venv });
if (veloOnly) {
  console.log(`\nload ${loadavg()[0].toFixed(1)} at the end`);
  process.exit(0);
}
measure('velo npm ci (no-op: nothing changed)', runs, null, () => time(velo, ['npm', 'ci', '--ignore-scripts'], { cwd: pVelo2, env: venv }));

// empty caches/stores last: they download
measure('npm ci (empty npm cache)', coldRuns, (i) => { rmNm(pNpm); rmSync(join(work, `npm-cold-${i}`), { recursive: true, force: true }); },
  (i) => time('npm', ['ci', '--ignore-scripts', '--cache', join(work, `npm-cold-${i}`)], { cwd: pNpm, env }));
measure('velo npm ci (empty store)', coldRuns, (i) => { rmNm(pVelo); rmSync(join(work, `velo-cold-${i}`), { recursive: true, force: true }); },
  (i) => time(velo, ['npm', 'ci', '--ignore-scripts'], { cwd: pVelo, env: { ...env, VELO_HOME: join(work, `velo-cold-${i}`) } }));

// disk: five copies
const du = (paths) => Number(execFileSync('du', ['-sbc', ...paths], { encoding: 'utf8' }).trim().split('\n').pop().split('\t')[0]);
const npmCopies = [];
for (let i = 0; i < 5; i++) {
  const d = project(`five-npm-${i}`);
  time('npm', ['ci', '--offline', '--ignore-scripts', '--cache', npmCache], { cwd: d, env });
  npmCopies.push(join(d, 'node_modules'));
}
const veloCopies = [];
for (let i = 0; i < 5; i++) {
  const d = project(`five-velo-${i}`);
  time(velo, ['npm', 'ci', '--ignore-scripts'], { cwd: d, env: venv });
  veloCopies.push(join(d, 'node_modules'));
}
const oneNpm = du([npmCopies[0]]);
const fiveNpm = du(npmCopies);
const fiveVelo = du([...veloCopies, join(home, 'objects')]);

const get = (label) => results.find((r) => r.label.startsWith(label))?.median;
const warm = get('velo npm ci (warm');
console.log('\n| case | median ms | ratio to velo warm |\n|---|---|---|');
for (const r of results) console.log(`| ${r.label} | ${r.median.toFixed(0)} | ${(r.median / warm).toFixed(2)} |`);
console.log(`\nno-op minus node -e 0: ${(get('velo npm ci (no-op') - get('node -e 0')).toFixed(0)} ms`);
console.log(`velo empty store / npm ci empty cache: ${(get('velo npm ci (empty') / get('npm ci (empty')).toFixed(2)}`);
console.log(`\ndisk: one npm node_modules ${(oneNpm / 1e6).toFixed(0)} MB; five npm copies ${(fiveNpm / 1e6).toFixed(0)} MB (${(fiveNpm / oneNpm).toFixed(2)}x); five velo projects + store ${(fiveVelo / 1e6).toFixed(0)} MB (${(fiveVelo / oneNpm).toFixed(2)}x)`);
