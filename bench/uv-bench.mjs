#!/usr/bin/env node
// velo uv sync vs uv sync on a real project (bench/uv-pandas: pandas, numpy,
// scipy, pyarrow, matplotlib and company, ~65 distributions from PyPI).
//
//   npx tsc -p tsconfig.json && node scripts/bundle.mjs && scripts/install-uv.sh &&
//   node bench/uv-bench.mjs [--runs N] [--import-rounds N] [--keep-store] [--no-disk]
//
// Measures, in one run (scenarios interleaved so machine load hits all alike):
//   - `uv sync` into a fresh .venv with a warm uv cache, with and without
//     --compile-bytecode,
//   - `velo uv sync` with an empty store (uv cache warm); with a warm store
//     into a fresh .venv of a project velo synced before (the recorded
//     environment: one projection, uv does not run), by link and by mount;
//     with a warm store into a project velo never synced (uv plans, every
//     distribution comes from the store); and the no-op against `node -e 0`
//     (through the bin, dist/bundle/velo, and through `node start.cjs`),
//   - the first and the tenth `python -c "import pandas, …"` in each
//     environment, with a warm page cache and after dropping the environment's
//     and the interpreter's files from the page cache (posix_fadvise DONTNEED
//     on every file: targeted, so the rest of the machine keeps its cache).
// Install times are wall time and CPU time (user + sys of the process and its
// children, from /usr/bin/time): on a shared machine CPU time is the steadier.
// The install scenarios rotate (each round starts at the next one) and each
// starts after `sync`, so no scenario pays for another's writeback.
// velo's environments get bytecode the way velo gives it by default: python
// compiles what gets imported, and the next velo sync harvests it into the store
// (the disk section measures before and after; the first import is timed in an
// environment synced after an earlier one imported the same modules).
// Needs PyPI once (uv lock, and filling the uv cache). Work happens in
// bench/work/uv-pandas; results go to bench/work/uv-results.json and stdout.
import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { evictFromPageCache } from './lib/evictCache.mjs';
import { systemPython, uvBenchEnv } from './lib/uvBenchEnv.mjs';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const WORK = join(ROOT, 'bench', 'work', 'uv-pandas');
const UV = process.env.VELO_UV ?? join(ROOT, '.tools', 'uv', 'bin', 'uv');
// velo as it ships: the bundle (scripts/bundle.mjs), not tsc's dist/cli/velo.js
const VELO = join(ROOT, 'dist', 'bundle', 'start.cjs');
// its bin (cli/velo.sh): for the no-op, which native/build/velo-launch answers without Node when built
const VELO_BIN = join(ROOT, 'dist', 'bundle', 'velo');
const arg = (name, dflt) => {
  const v = Number(process.argv.includes(name) ? process.argv[process.argv.indexOf(name) + 1] : NaN);
  return Number.isFinite(v) ? v : dflt;
};
// --keep-store: skip the empty-store sync when a store from an earlier run is there (quick re-runs)
const KEEP_STORE = process.argv.includes('--keep-store');
const RUNS = arg('--runs', 5);
const IMPORT_ROUNDS = arg('--import-rounds', 3);
const IMPORTS =
  'import pandas, numpy, scipy.stats, pyarrow, matplotlib.pyplot, requests, httpx, pydantic, rich.console, click, jinja2, yaml, sqlalchemy, jsonschema, bs4, lxml.etree, boto3, openpyxl, tabulate, tqdm';

if (!existsSync(VELO)) throw new Error('build first: npx tsc -p tsconfig.json && node scripts/bundle.mjs');
if (!existsSync(UV)) throw new Error('install uv first: scripts/install-uv.sh');

const python = systemPython();
const pythonPrefix = execFileSync(python, ['-c', 'import sys; print(sys.base_prefix)'], { encoding: 'utf8' }).trim();
const env = uvBenchEnv(WORK, UV, python);

function run(cmd, args, cwd, extraEnv = {}) {
  const t0 = performance.now();
  const r = spawnSync(cmd, args, { cwd, env: { ...env, ...extraEnv }, encoding: 'utf8', maxBuffer: 64 << 20 });
  const ms = performance.now() - t0;
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}):\n${r.stderr}\n${r.stdout}`);
  return { ms, stdout: r.stdout, stderr: r.stderr };
}

/** wall and CPU (user + sys, the process and its threads and children) of one command */
function timed(cmd, args, cwd, extraEnv = {}) {
  const r = run('/usr/bin/time', ['-f', 'velo-cpu %U %S', cmd, ...args], cwd, extraEnv);
  const m = /velo-cpu ([\d.]+) ([\d.]+)\s*$/.exec(r.stderr);
  return { ...r, cpuMs: m ? (Number(m[1]) + Number(m[2])) * 1000 : NaN };
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const fmt = (ms) => (ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${ms.toFixed(0)} ms`);

function project(name) {
  const dir = join(WORK, name);
  mkdirSync(dir, { recursive: true });
  cpSync(join(ROOT, 'bench', 'uv-pandas', 'pyproject.toml'), join(dir, 'pyproject.toml'));
  cpSync(join(WORK, 'uv.lock'), join(dir, 'uv.lock'));
  return dir;
}


// wall time, and CPU time (user + sys, from /usr/bin/time): on a busy machine
// CPU time is the steadier measure of what an import costs
function timedImport(py, dir) {
  const r = timed(py, ['-c', IMPORTS], dir);
  return { ms: r.ms, cpuMs: r.cpuMs };
}

// --- set-up: lock once, fill the uv cache once -------------------------------
mkdirSync(WORK, { recursive: true });
if (!existsSync(join(WORK, 'uv.lock'))) {
  const lockDir = join(WORK, 'lock');
  mkdirSync(lockDir, { recursive: true });
  cpSync(join(ROOT, 'bench', 'uv-pandas', 'pyproject.toml'), join(lockDir, 'pyproject.toml'));
  run(UV, ['lock'], lockDir);
  cpSync(join(lockDir, 'uv.lock'), join(WORK, 'uv.lock'));
}
const warmup = project('warmup');
run(UV, ['sync', '--frozen'], warmup);
const packages = (readFileSync(join(WORK, 'uv.lock'), 'utf8').match(/^\[\[package\]\]$/gm) ?? []).length;

// --- install times ----------------------------------------------------------
const results = { date: new Date().toISOString(), uv: run(UV, ['--version'], WORK).stdout.trim(), python, packages, runs: RUNS, importRounds: IMPORT_ROUNDS, install: {}, imports: {} };
const uvDir = project('uv-plain');
const uvcDir = project('uv-compiled');
const veloDir = project('velo');
const mountDir = project('velo-mount');

const velo = (args, dir) => timed(process.execPath, [VELO, 'uv', 'sync', ...args], dir);
const unmount = (dir) => spawnSync(process.execPath, [VELO, 'umount', join(dir, '.venv')], { env, stdio: 'ignore' });
const fresh = (dir) => {
  if (dir === mountDir) unmount(dir);
  rmSync(join(dir, '.venv'), { recursive: true, force: true });
};

unmount(mountDir);
if (!(KEEP_STORE && existsSync(env.VELO_HOME))) {
  rmSync(env.VELO_HOME, { recursive: true, force: true });
  fresh(veloDir);
  const cold = velo(['--frozen', '--json'], veloDir);
  const coldJson = JSON.parse(cold.stdout);
  results.install['velo uv sync, empty store (uv cache warm)'] = { ms: cold.ms, cpuMs: cold.cpuMs, phases: coldJson.phasesMs, files: coldJson.files, pycs: coldJson.pycs };
} else {
  fresh(veloDir);
  velo(['--frozen'], veloDir);
}
fresh(mountDir);
velo(['--frozen', '--projection', 'mount'], mountDir); // records the mount project's environment
// the cold sync wrote ~600 MB of new objects: let them reach the disk before anything is timed
spawnSync('sync');

const series = {
  'uv sync (warm cache)': [],
  'velo uv sync (warm store, fresh .venv, link)': [],
  'velo uv sync (warm store, fresh .venv, mount)': [],
  'uv sync (warm cache, new checkout)': [],
  'velo uv sync (warm store, new checkout: planned from uv.lock)': [],
  'uv sync --compile-bytecode (warm cache)': [],
};
const scenarios = [
  ['uv sync (warm cache)', () => {
    fresh(uvDir);
    return timed(UV, ['sync', '--frozen'], uvDir);
  }],
  ['velo uv sync (warm store, fresh .venv, link)', () => {
    fresh(veloDir);
    const v = velo(['--frozen', '--json'], veloDir);
    const vj = JSON.parse(v.stdout);
    // the recorded environment (a project velo planned with uv), or the store's plan from uv.lock (no uv sync either way)
    if (!vj.fromEnvironmentManifest && vj.plannedBy !== 'uv.lock') throw new Error(`the warm velo sync was planned by uv: ${vj.planNote}`);
    results.lastWarmPhases = vj.phasesMs;
    return v;
  }],
  ['velo uv sync (warm store, fresh .venv, mount)', () => {
    fresh(mountDir);
    const m = velo(['--frozen', '--json', '--projection', 'mount'], mountDir);
    if (JSON.parse(m.stdout).projection !== 'mount') throw new Error(`no mount: ${m.stderr}`);
    return m;
  }],
  ['uv sync (warm cache, new checkout)', () => {
    const other = project(`uv-new-${Date.now()}`);
    try {
      return timed(UV, ['sync', '--frozen'], other);
    } finally {
      rmSync(other, { recursive: true, force: true });
    }
  }],
  ['velo uv sync (warm store, new checkout: planned from uv.lock)', () => {
    const other = project(`velo-new-${Date.now()}`);
    try {
      const v = velo(['--frozen', '--json'], other);
      const vj = JSON.parse(v.stdout);
      if (vj.plannedBy !== 'uv.lock') throw new Error(`the new checkout was planned by uv: ${vj.planNote}`);
      results.lastNewCheckoutPhases = vj.phasesMs;
      return v;
    } finally {
      rmSync(other, { recursive: true, force: true });
    }
  }],
  ['uv sync --compile-bytecode (warm cache)', () => {
    fresh(uvcDir);
    return timed(UV, ['sync', '--frozen', '--compile-bytecode'], uvcDir);
  }],
];
// each round starts at the next scenario (no scenario always follows the same one), and
// each timed install starts after `sync`, so the previous one's writeback does not land on it
for (let i = 0; i < RUNS; i++) {
  for (let k = 0; k < scenarios.length; k++) {
    const [name, go] = scenarios[(i + k) % scenarios.length];
    spawnSync('sync');
    const r = go();
    series[name].push({ ms: r.ms, cpuMs: r.cpuMs });
  }
}
for (const [name, xs] of Object.entries(series)) {
  results.install[name] = { ms: median(xs.map((x) => x.ms)), cpuMs: median(xs.map((x) => x.cpuMs)), all: xs.map((x) => Math.round(x.ms)), allCpu: xs.map((x) => Math.round(x.cpuMs)) };
}

// the no-op: an unchanged environment, velo's and uv's, interleaved; node -e 0 beside them
fresh(uvDir);
run(UV, ['sync', '--frozen'], uvDir);
const noop = [];
const noopNode = [];
const uvNoop = [];
const node0 = [];
for (let i = 0; i < 11; i++) {
  node0.push(run(process.execPath, ['-e', '0'], veloDir).ms);
  noop.push(run(VELO_BIN, ['uv', 'sync', '--frozen'], veloDir).ms);
  noopNode.push(run(process.execPath, [VELO, 'uv', 'sync', '--frozen'], veloDir).ms);
  uvNoop.push(run(UV, ['sync', '--frozen'], uvDir).ms);
}
results.noop = {
  velo: median(noop),
  veloThroughNode: median(noopNode),
  uv: median(uvNoop),
  node: median(node0),
  all: { velo: noop.map(Math.round), veloThroughNode: noopNode.map(Math.round), uv: uvNoop.map(Math.round), node: node0.map(Math.round) },
};

// --- disk: four checkouts ------------------------------------------------------
// velo: its store + the uv cache it drives + four environments; plain uv: its own
// cache (a copy of the same uv cache, so the same entries, sharing nothing) + four
// environments. `du` in one invocation counts a hardlinked inode once; -x keeps it
// out of mounts (the store holds the mount projection's FUSE view). Measured
//   1. right after the four syncs (neither tool compiled anything: velo, like uv,
//      compiles only what gets imported unless asked with --compile-bytecode),
//   2. after the first import in each environment (python writes its own
//      bytecode into each, for velo as for uv),
//   3. after a fifth checkout is synced by each tool (five environments each):
//      that velo uv sync harvests what python compiled in the four earlier velo
//      environments into the store and links the stored copy over each one's own.
// velo's side uses a store of its own that only link projections use (LINK_STORE, filled
// from the warm uv cache by the first of the four syncs): the bench's main store also
// serves the mount projection, which compiles every module at once.
const LINK_STORE = join(WORK, 'store-link');
const linkEnv = { VELO_HOME: LINK_STORE };
if (!process.argv.includes('--no-disk')) {
  rmSync(LINK_STORE, { recursive: true, force: true });
  const plainCache = join(WORK, 'uv-cache-plain');
  rmSync(plainCache, { recursive: true, force: true });
  execFileSync('cp', ['-r', env.UV_CACHE_DIR, plainCache]);
  const veloDirs = [];
  const uvDirs = [];
  for (let i = 1; i <= 4; i++) {
    const v = project(`disk-velo-${i}`);
    rmSync(join(v, '.venv'), { recursive: true, force: true });
    run(process.execPath, [VELO, 'uv', 'sync', '--frozen'], v, linkEnv);
    veloDirs.push(v);
    const u = project(`disk-uv-${i}`);
    rmSync(join(u, '.venv'), { recursive: true, force: true });
    run(UV, ['sync', '--frozen'], u, { UV_CACHE_DIR: plainCache });
    uvDirs.push(u);
  }
  spawnSync('sync');
  const du = (paths) => Number(execFileSync('du', ['-s', '-c', '-x', '-B1', ...paths], { encoding: 'utf8' }).trim().split('\n').pop().split('\t')[0]);
  const veloPaths = [LINK_STORE, env.UV_CACHE_DIR, ...veloDirs.map((d) => join(d, '.venv'))];
  const uvPaths = [plainCache, ...uvDirs.map((d) => join(d, '.venv'))];
  results.disk = { afterSync: { velo: du(veloPaths), uv: du(uvPaths) } };
  for (const d of [...veloDirs, ...uvDirs]) run(join(d, '.venv', 'bin', 'python'), ['-c', IMPORTS], d);
  spawnSync('sync');
  results.disk.afterFirstImport = { velo: du(veloPaths), uv: du(uvPaths) };
  const v5 = project('disk-velo-5');
  rmSync(join(v5, '.venv'), { recursive: true, force: true });
  const harvest = JSON.parse(run(process.execPath, [VELO, 'uv', 'sync', '--frozen', '--json'], v5, linkEnv).stdout).bytecode;
  const u5 = project('disk-uv-5');
  rmSync(join(u5, '.venv'), { recursive: true, force: true });
  run(UV, ['sync', '--frozen'], u5, { UV_CACHE_DIR: plainCache });
  veloDirs.push(v5);
  uvDirs.push(u5);
  spawnSync('sync');
  results.disk.afterAFifthCheckout = { velo: du([...veloPaths, join(v5, '.venv')]), uv: du([...uvPaths, join(u5, '.venv')]), harvest };
  for (const d of [...veloDirs, ...uvDirs]) rmSync(d, { recursive: true, force: true });
  rmSync(plainCache, { recursive: true, force: true });
}

// --- imports ------------------------------------------------------------------
// Each round makes every environment afresh and times its first import (the
// first import is one sample per environment, so rounds give it a median);
// the first round also times the second to the tenth. Dropped page cache:
// the environment's and the interpreter's files are evicted before the first
// import. The mounted environment is timed with a warm page cache only
// (evicting through the overlay does not reach the FUSE view's cache).
// velo compiles only what gets imported: its first import in a new environment is
// timed after an earlier velo environment imported the same modules (a checkout
// made, imported in, and kept, once), so the sync that makes the timed
// environment harvested that bytecode into the store first. Link environments use
// LINK_STORE (what the mount's store holds is compiled whole: see the disk section).
const primeDir = project('velo-prime');
rmSync(join(primeDir, '.venv'), { recursive: true, force: true }); // primed once per run, in this run's LINK_STORE
function primed() {
  if (existsSync(join(primeDir, '.venv', 'velo-primed'))) return;
  rmSync(join(primeDir, '.venv'), { recursive: true, force: true });
  run(process.execPath, [VELO, 'uv', 'sync', '--frozen'], primeDir, linkEnv);
  run(join(primeDir, '.venv', 'bin', 'python'), ['-c', IMPORTS], primeDir);
  writeFileSync(join(primeDir, '.venv', 'velo-primed'), '');
}
const builders = {
  'uv sync': () => { fresh(uvDir); run(UV, ['sync', '--frozen'], uvDir); return uvDir; },
  'uv sync --compile-bytecode': () => { fresh(uvcDir); run(UV, ['sync', '--frozen', '--compile-bytecode'], uvcDir); return uvcDir; },
  'velo uv sync': () => { primed(); fresh(veloDir); run(process.execPath, [VELO, 'uv', 'sync', '--frozen'], veloDir, linkEnv); return veloDir; },
  'velo uv sync --projection mount': () => { fresh(mountDir); run(process.execPath, [VELO, 'uv', 'sync', '--frozen', '--projection', 'mount'], mountDir); return mountDir; },
};
for (const cache of IMPORT_ROUNDS > 0 ? ['warm page cache', 'dropped page cache'] : []) {
  const byEnv = {};
  for (let round = 0; round < IMPORT_ROUNDS; round++) {
    for (const [name, build] of Object.entries(builders)) {
      if (cache === 'dropped page cache' && name.includes('mount')) continue;
      const dir = build();
      if (cache === 'dropped page cache') evictFromPageCache([join(dir, '.venv'), pythonPrefix], python);
      const r = (byEnv[name] ??= { firsts: [], firstsCpu: [] });
      const py = join(dir, '.venv', 'bin', 'python');
      const first = timedImport(py, dir);
      r.firsts.push(Math.round(first.ms));
      r.firstsCpu.push(Math.round(first.cpuMs));
      if (round === 0) {
        let t;
        for (let i = 2; i <= 10; i++) t = timedImport(py, dir);
        r.tenth = t.ms;
        r.tenthCpu = t.cpuMs;
      }
    }
  }
  for (const r of Object.values(byEnv)) {
    r.first = median(r.firsts);
    r.firstCpu = median(r.firstsCpu);
  }
  results.imports[cache] = byEnv;
}
unmount(mountDir);

mkdirSync(join(ROOT, 'bench', 'work'), { recursive: true });
writeFileSync(join(ROOT, 'bench', 'work', 'uv-results.json'), JSON.stringify(results, null, 2) + '\n');

// --- report -------------------------------------------------------------------
const ratio = (a, b) => `${(a / b).toFixed(2)}x`;
console.log(`uv ${results.uv}, Python ${python}, ${packages} packages in uv.lock, installs: median of ${RUNS} (interleaved)\n`);
const uvWarm = results.install['uv sync (warm cache)'];
console.log('| install | wall | CPU | vs uv sync (wall / CPU) |\n|---|---|---|---|');
const uvNew = results.install['uv sync (warm cache, new checkout)'];
for (const [name, r] of Object.entries(results.install)) {
  if (r.ms === undefined) continue; // --runs 0
  console.log(`| ${name} | ${fmt(r.ms)}${r.all ? ` (${r.all.join(', ')})` : ''} | ${fmt(r.cpuMs)} | ${ratio(r.ms, uvWarm.ms)} / ${ratio(r.cpuMs, uvWarm.cpuMs)} |`);
}
const newCheckout = results.install['velo uv sync (warm store, new checkout: planned from uv.lock)'];
if (RUNS > 0) console.log(`\nnew checkout: velo ${fmt(newCheckout.ms)} vs uv ${fmt(uvNew.ms)}: ${ratio(newCheckout.ms, uvNew.ms)} wall, ${ratio(newCheckout.cpuMs, uvNew.cpuMs)} CPU; phases of the last: ${JSON.stringify(results.lastNewCheckoutPhases)}`);
console.log(
  `no-op (median of 11, interleaved): velo ${fmt(results.noop.velo)} (its bin: the launcher when built), uv ${fmt(results.noop.uv)} (${ratio(results.noop.velo, results.noop.uv)}), ` +
    `velo through node ${fmt(results.noop.veloThroughNode)}, node -e 0 ${fmt(results.noop.node)}`,
);
if (results.disk) {
  const gb = (b) => `${(b / 1e9).toFixed(2)} GB`;
  for (const [when, d] of Object.entries(results.disk)) {
    const n = when === 'afterAFifthCheckout' ? 5 : 4;
    console.log(`disk, ${when}: velo (store + uv cache + ${n} venvs) ${gb(d.velo)}, plain uv (uv cache + ${n} venvs) ${gb(d.uv)}: ${ratio(d.velo, d.uv)}${d.harvest ? ` (harvested ${JSON.stringify(d.harvest)})` : ''}`);
  }
}
console.log(`\nfirst import: median of ${IMPORT_ROUNDS} fresh environments; tenth: the first round's`);
console.log('\n| page cache | environment | first import (wall / CPU) | tenth import (wall / CPU) | first/tenth (CPU) | plain uv first / this first (CPU) |\n|---|---|---|---|---|---|');
for (const [cache, byEnv] of Object.entries(results.imports)) {
  const plain = byEnv['uv sync'];
  for (const [name, r] of Object.entries(byEnv)) {
    console.log(`| ${cache} | ${name} | ${fmt(r.first)} / ${fmt(r.firstCpu)} | ${fmt(r.tenth)} / ${fmt(r.tenthCpu)} | ${ratio(r.firstCpu, r.tenthCpu)} | ${ratio(plain.firstCpu, r.firstCpu)} |`);
  }
}
