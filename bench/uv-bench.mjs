#!/usr/bin/env node
// velo uv sync vs uv sync on a real project (bench/uv-pandas: pandas, numpy,
// scipy, pyarrow, matplotlib and company, ~65 distributions from PyPI).
//
//   npx tsc -p tsconfig.json && scripts/install-uv.sh && node bench/uv-bench.mjs [--runs N]
//
// Measures, in one run (scenarios interleaved so machine load hits all alike):
//   - `uv sync` into a fresh .venv with a warm uv cache, with and without
//     --compile-bytecode,
//   - `velo uv sync` with an empty store (uv cache warm) and with a warm store,
//     into a fresh .venv, and the no-op against `node -e 0`,
//   - the first and the tenth `python -c "import pandas, …"` in each
//     environment, with a warm page cache and after dropping the environment's
//     and the interpreter's files from the page cache (posix_fadvise DONTNEED
//     on every file: targeted, so the rest of the machine keeps its cache).
// Needs PyPI once (uv lock, and filling the uv cache). Work happens in
// bench/work/uv-pandas; results go to bench/work/uv-results.json and stdout.
import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const WORK = join(ROOT, 'bench', 'work', 'uv-pandas');
const UV = process.env.VELO_UV ?? join(ROOT, '.tools', 'uv', 'bin', 'uv');
const VELO = join(ROOT, 'dist', 'cli', 'velo.js');
const RUNS = Number(process.argv[process.argv.indexOf('--runs') + 1] || 3) || 3;
const IMPORTS =
  'import pandas, numpy, scipy.stats, pyarrow, matplotlib.pyplot, requests, httpx, pydantic, rich.console, click, jinja2, yaml, sqlalchemy, jsonschema, bs4, lxml.etree, boto3, openpyxl, tabulate, tqdm';

if (!existsSync(join(ROOT, 'dist', 'cli', 'uvCommand.js'))) throw new Error('build first: npx tsc -p tsconfig.json');
if (!existsSync(UV)) throw new Error('install uv first: scripts/install-uv.sh');

const python = realpathSync(execFileSync('python3', ['-c', 'import sys; print(sys.executable)'], { encoding: 'utf8' }).trim());
const pythonPrefix = execFileSync(python, ['-c', 'import sys; print(sys.base_prefix)'], { encoding: 'utf8' }).trim();
const baseEnv = { ...process.env };
// PYTHONDONTWRITEBYTECODE would keep plain uv environments from ever getting bytecode
for (const k of Object.keys(baseEnv)) if (k.startsWith('UV_') || k === 'VIRTUAL_ENV' || k === 'PYTHONDONTWRITEBYTECODE') delete baseEnv[k];
const env = {
  ...baseEnv,
  CI: '1',
  UV_CACHE_DIR: join(WORK, 'uv-cache'),
  UV_PYTHON: python,
  UV_PYTHON_DOWNLOADS: 'never',
  UV_NO_PROGRESS: '1',
  VELO_UV: UV,
  VELO_HOME: join(WORK, 'store'),
};

function run(cmd, args, cwd, extraEnv = {}) {
  const t0 = performance.now();
  const r = spawnSync(cmd, args, { cwd, env: { ...env, ...extraEnv }, encoding: 'utf8', maxBuffer: 64 << 20 });
  const ms = performance.now() - t0;
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}):\n${r.stderr}\n${r.stdout}`);
  return { ms, stdout: r.stdout, stderr: r.stderr };
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

const EVICT = `
import os, sys
n = 0
for top in sys.argv[1:]:
    for d, _, files in os.walk(top):
        for f in files:
            p = os.path.join(d, f)
            try:
                fd = os.open(p, os.O_RDONLY | os.O_NOFOLLOW)
            except OSError:
                continue
            try:
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
                n += 1
            finally:
                os.close(fd)
print(n)
`;

function evict(dirs) {
  execFileSync(python, ['-c', EVICT, ...dirs], { encoding: 'utf8' });
}

// wall time, and CPU time (user + sys, from /usr/bin/time): on a busy machine
// CPU time is the steadier measure of what an import costs
function timedImport(py, dir) {
  const r = run('/usr/bin/time', ['-f', 'velo-cpu %U %S', py, '-c', IMPORTS], dir);
  const m = /velo-cpu ([\d.]+) ([\d.]+)/.exec(r.stderr);
  return { ms: r.ms, cpuMs: m ? (Number(m[1]) + Number(m[2])) * 1000 : NaN };
}

function imports(dir) {
  const py = join(dir, '.venv', 'bin', 'python');
  const times = [];
  for (let i = 0; i < 10; i++) times.push(timedImport(py, dir));
  return { first: times[0].ms, tenth: times[9].ms, firstCpu: times[0].cpuMs, tenthCpu: times[9].cpuMs, all: times.map((t) => t.ms) };
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
const results = { date: new Date().toISOString(), uv: run(UV, ['--version'], WORK).stdout.trim(), python, packages, runs: RUNS, install: {}, imports: {} };
const uvDir = project('uv-plain');
const uvcDir = project('uv-compiled');
const veloDir = project('velo');

rmSync(env.VELO_HOME, { recursive: true, force: true });
rmSync(join(veloDir, '.venv'), { recursive: true, force: true });
const cold = run(process.execPath, [VELO, 'uv', 'sync', '--frozen', '--json'], veloDir);
const coldJson = JSON.parse(cold.stdout);
results.install['velo uv sync, empty store (uv cache warm)'] = { ms: cold.ms, phases: coldJson.phasesMs, files: coldJson.files, pycs: coldJson.pycs };

const series = { 'uv sync (warm cache)': [], 'uv sync --compile-bytecode (warm cache)': [], 'velo uv sync (warm store)': [] };
for (let i = 0; i < RUNS; i++) {
  rmSync(join(uvDir, '.venv'), { recursive: true, force: true });
  series['uv sync (warm cache)'].push(run(UV, ['sync', '--frozen'], uvDir).ms);
  rmSync(join(veloDir, '.venv'), { recursive: true, force: true });
  const v = run(process.execPath, [VELO, 'uv', 'sync', '--frozen', '--json'], veloDir);
  series['velo uv sync (warm store)'].push(v.ms);
  results.lastWarmPhases = JSON.parse(v.stdout).phasesMs;
  rmSync(join(uvcDir, '.venv'), { recursive: true, force: true });
  series['uv sync --compile-bytecode (warm cache)'].push(run(UV, ['sync', '--frozen', '--compile-bytecode'], uvcDir).ms);
}
for (const [name, xs] of Object.entries(series)) results.install[name] = { ms: median(xs), all: xs };

const noop = [];
const node0 = [];
for (let i = 0; i < 7; i++) {
  node0.push(run(process.execPath, ['-e', '0'], veloDir).ms);
  noop.push(run(process.execPath, [VELO, 'uv', 'sync', '--frozen'], veloDir).ms);
}
results.install['velo uv sync, no-op'] = { ms: Math.min(...noop), nodeStartMs: Math.min(...node0), beyondNode: Math.min(...noop) - Math.min(...node0) };

// --- imports ------------------------------------------------------------------
// warm page cache: the environment was just made
rmSync(join(uvDir, '.venv'), { recursive: true, force: true });
run(UV, ['sync', '--frozen'], uvDir);
results.imports['warm page cache'] = { 'uv sync': imports(uvDir), 'uv sync --compile-bytecode': imports(uvcDir), 'velo uv sync': imports(veloDir) };
// dropped page cache: fresh environments, their files and the interpreter's evicted first
rmSync(join(uvDir, '.venv'), { recursive: true, force: true });
run(UV, ['sync', '--frozen'], uvDir);
rmSync(join(veloDir, '.venv'), { recursive: true, force: true });
run(process.execPath, [VELO, 'uv', 'sync', '--frozen'], veloDir);
const cold_ = {};
for (const [name, dir] of [['uv sync', uvDir], ['uv sync --compile-bytecode', uvcDir], ['velo uv sync', veloDir]]) {
  evict([join(dir, '.venv'), pythonPrefix]);
  cold_[name] = imports(dir);
}
results.imports['dropped page cache'] = cold_;

mkdirSync(join(ROOT, 'bench', 'work'), { recursive: true });
writeFileSync(join(ROOT, 'bench', 'work', 'uv-results.json'), JSON.stringify(results, null, 2) + '\n');

// --- report -------------------------------------------------------------------
console.log(`uv ${results.uv}, Python ${python}, ${packages} packages in uv.lock, median of ${RUNS}\n`);
console.log('| install | time |\n|---|---|');
for (const [name, r] of Object.entries(results.install)) {
  console.log(`| ${name} | ${fmt(r.ms)}${r.beyondNode !== undefined ? ` (node -e 0: ${fmt(r.nodeStartMs)}, +${fmt(r.beyondNode)})` : ''} |`);
}
console.log('\n| page cache | environment | first import (wall / CPU) | tenth import (wall / CPU) | first/tenth (CPU) |\n|---|---|---|---|---|');
for (const [cache, byEnv] of Object.entries(results.imports)) {
  for (const [name, r] of Object.entries(byEnv)) {
    console.log(`| ${cache} | ${name} | ${fmt(r.first)} / ${fmt(r.firstCpu)} | ${fmt(r.tenth)} / ${fmt(r.tenthCpu)} | ${(r.firstCpu / r.tenthCpu).toFixed(2)}x |`);
  }
}
