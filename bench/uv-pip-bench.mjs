#!/usr/bin/env node
// velo uv pip sync vs uv pip sync on a real requirements.txt (bench/uv-pandas's
// dependencies compiled by uv: pandas, numpy, scipy, pyarrow, matplotlib, …).
//
//   npx tsc -p tsconfig.json && node scripts/bundle.mjs && scripts/install-uv.sh &&
//   node bench/uv-pip-bench.mjs [--runs N]
//
// Measures, in one run, scenarios interleaved and rotated so machine load hits
// all alike, each into a new empty venv (made by `uv venv`, not timed):
//   - `uv pip sync requirements.txt` with a warm uv cache,
//   - `velo uv pip sync requirements.txt` with a warm store (a second venv:
//     nothing fetched, nothing installed by uv),
//   - the same pair for `pip install -r`;
// and once, before the rounds, velo's first venv into an empty store.
// Wall time and CPU time (user + sys of the process and its children, from
// /usr/bin/time). Needs PyPI once (compiling, filling the uv cache). Work
// happens in bench/work/uv-pip; results go to bench/work/uv-pip-results.json.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const WORK = join(ROOT, 'bench', 'work', 'uv-pip');
const UV = process.env.VELO_UV ?? join(ROOT, '.tools', 'uv', 'bin', 'uv');
const VELO = join(ROOT, 'dist', 'bundle', 'start.cjs');
const RUNS = Number(process.argv.includes('--runs') ? process.argv[process.argv.indexOf('--runs') + 1] : 5);

if (!existsSync(VELO)) throw new Error('build first: npx tsc -p tsconfig.json && node scripts/bundle.mjs');
if (!existsSync(UV)) throw new Error('install uv first: scripts/install-uv.sh');

const python = realpathSync(execFileSync('python3', ['-c', 'import sys; print(sys.executable)'], { encoding: 'utf8' }).trim());
const baseEnv = { ...process.env };
for (const k of Object.keys(baseEnv)) if (k.startsWith('UV_') || k === 'VIRTUAL_ENV' || k === 'PYTHONDONTWRITEBYTECODE') delete baseEnv[k];
const env = {
  ...baseEnv,
  CI: '1',
  UV_CACHE_DIR: join(WORK, 'uv-cache'),
  UV_PYTHON_DOWNLOADS: 'never',
  UV_NO_PROGRESS: '1',
  VELO_UV: UV,
  VELO_HOME: join(WORK, 'store'),
};

function run(cmd, args, extraEnv = {}) {
  const t0 = performance.now();
  const r = spawnSync(cmd, args, { cwd: WORK, env: { ...env, ...extraEnv }, encoding: 'utf8', maxBuffer: 64 << 20 });
  const ms = performance.now() - t0;
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}):\n${r.stderr}\n${r.stdout}`);
  return { ms, stdout: r.stdout, stderr: r.stderr };
}

function timed(cmd, args) {
  const r = run('/usr/bin/time', ['-f', 'velo-cpu %U %S', cmd, ...args]);
  const m = /velo-cpu ([\d.]+) ([\d.]+)\s*$/.exec(r.stderr);
  return { ms: r.ms, cpuMs: m ? (Number(m[1]) + Number(m[2])) * 1000 : NaN };
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const fmt = (ms) => (ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${ms.toFixed(0)} ms`);

function newVenv(name) {
  const dir = join(WORK, 'venvs', name);
  rmSync(dir, { recursive: true, force: true });
  run(UV, ['venv', '-q', '--python', python, dir]);
  execFileSync('sync');
  return dir;
}

// --- set-up: compile once, fill the uv cache and the store once ----------------
mkdirSync(WORK, { recursive: true });
const reqs = join(WORK, 'requirements.txt');
if (!existsSync(reqs)) {
  const deps = /dependencies = \[([\s\S]*?)\]/.exec(readFileSync(join(ROOT, 'bench', 'uv-pandas', 'pyproject.toml'), 'utf8'))[1];
  writeFileSync(join(WORK, 'requirements.in'), [...deps.matchAll(/"([^"]+)"/g)].map((m) => m[1]).join('\n') + '\n');
  run(UV, ['pip', 'compile', '-q', '--python', python, 'requirements.in', '-o', reqs]);
}
const packages = readFileSync(reqs, 'utf8').split('\n').filter((l) => /^[a-z0-9]/i.test(l)).length;
run(UV, ['pip', 'sync', '-q', reqs, '--python', join(newVenv('warm-uv'), 'bin', 'python')]);
// the first venv into an empty store (uv cache warm): uv resolves and installs into a scratch venv, velo stores and links
rmSync(env.VELO_HOME, { recursive: true, force: true });
const firstVenv = newVenv('first-velo');
const first = timed(process.execPath, [VELO, 'uv', 'pip', 'sync', reqs, '--python', join(firstVenv, 'bin', 'python')]);

const scenarios = {
  'uv pip sync': (py) => timed(UV, ['pip', 'sync', '-q', reqs, '--python', py]),
  'velo uv pip sync': (py) => timed(process.execPath, [VELO, 'uv', 'pip', 'sync', reqs, '--python', py]),
  'uv pip install -r': (py) => timed(UV, ['pip', 'install', '-q', '-r', reqs, '--python', py]),
  'velo uv pip install -r': (py) => timed(process.execPath, [VELO, 'uv', 'pip', 'install', '-r', reqs, '--python', py]),
};
const names = Object.keys(scenarios);
const times = Object.fromEntries(names.map((n) => [n, { ms: [], cpuMs: [] }]));
for (let round = 0; round < RUNS; round++) {
  for (let i = 0; i < names.length; i++) {
    const name = names[(round + i) % names.length];
    const venv = newVenv(`round-${name.replace(/\W+/g, '-')}`);
    const t = scenarios[name](join(venv, 'bin', 'python'));
    times[name].ms.push(t.ms);
    times[name].cpuMs.push(t.cpuMs);
  }
}

const results = {
  date: new Date().toISOString(),
  load: readFileSync('/proc/loadavg', 'utf8').trim(),
  uv: run(UV, ['--version']).stdout.trim(),
  python,
  packages,
  runs: RUNS,
  firstVenvEmptyStore: first,
  medians: Object.fromEntries(names.map((n) => [n, { ms: median(times[n].ms), cpuMs: median(times[n].cpuMs), allMs: times[n].ms }])),
};
writeFileSync(join(ROOT, 'bench', 'work', 'uv-pip-results.json'), JSON.stringify(results, null, 2));
console.log(`${packages} distributions, ${RUNS} rounds, load ${results.load}`);
console.log(`velo uv pip sync, first venv, empty store (uv cache warm): wall ${fmt(first.ms)}, cpu ${fmt(first.cpuMs)}`);
for (const n of names) console.log(`${n.padEnd(24)} wall ${fmt(results.medians[n].ms).padStart(8)}  cpu ${fmt(results.medians[n].cpuMs).padStart(8)}`);
for (const [velo, uv] of [['velo uv pip sync', 'uv pip sync'], ['velo uv pip install -r', 'uv pip install -r']]) {
  const m = results.medians;
  console.log(`${velo} / ${uv}: ${(m[velo].ms / m[uv].ms).toFixed(2)}x wall, ${(m[velo].cpuMs / m[uv].cpuMs).toFixed(2)}x cpu`);
}
