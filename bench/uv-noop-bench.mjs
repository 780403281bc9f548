#!/usr/bin/env node
// The no-op `velo uv sync` beside uv's own, in one run (issue 20: velo's
// no-op at most uv's). A project with the dependencies (fastapi,
// uvicorn, requests, rich, numpy, pydantic-settings, sqlalchemy; locked from
// PyPI once), synced once by velo and once by uv in a copy; then rounds of,
// interleaved with the order rotated:
//   - `node -e 0` (what any Node start costs here),
//   - velo through its bin (dist/bundle/velo, as npm links it): the native
//     launcher answers without starting Node (native/build/velo-launch),
//   - velo through Node (`node dist/bundle/start.cjs`, what the bin ran before),
//   - `uv sync` on its unchanged environment,
// each with and without --frozen. Wall time of the spawn, and CPU time (user +
// sys of the child) from /usr/bin/time, which a loaded machine disturbs less.
//   npx tsc -p tsconfig.json && node scripts/bundle.mjs && node native/build.mjs &&
//   node bench/uv-noop-bench.mjs [--runs N (default 21)]
import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { systemPython, uvBenchEnv } from './lib/uvBenchEnv.mjs';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const WORK = join(ROOT, 'bench', 'work', 'uv-noop');
const UV = process.env.VELO_UV ?? join(ROOT, '.tools', 'uv', 'bin', 'uv');
const BIN = join(ROOT, 'dist', 'bundle', 'velo');
const START = join(ROOT, 'dist', 'bundle', 'start.cjs');
const LAUNCHER = join(ROOT, 'native', 'build', 'velo-launch');
const { values } = parseArgs({ options: { runs: { type: 'string', default: '21' } } });
const RUNS = Number(values.runs);
for (const [what, path] of [['node scripts/bundle.mjs', BIN], ['node native/build.mjs', LAUNCHER], ['scripts/install-uv.sh', UV]]) {
  if (!existsSync(path)) throw new Error(`${path} is missing: run ${what}`);
}

// VELO_* from the caller would change what velo does (VELO_NO_LAUNCHER, VELO_PROJECTION, …)
const env = Object.fromEntries(Object.entries(uvBenchEnv(WORK, UV, systemPython())).filter(([k]) => !k.startsWith('VELO_') || k === 'VELO_UV' || k === 'VELO_HOME'));

function timed(cmd, args, cwd, extraEnv = {}) {
  const t0 = performance.now();
  const r = spawnSync('/usr/bin/time', ['-f', 'velo-cpu %U %S', cmd, ...args], { cwd, env: { ...env, ...extraEnv }, encoding: 'utf8' });
  const ms = performance.now() - t0;
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}):\n${r.stderr}\n${r.stdout}`);
  const m = /velo-cpu ([\d.]+) ([\d.]+)\s*$/.exec(r.stderr);
  return { ms, cpuMs: m ? (Number(m[1]) + Number(m[2])) * 1000 : NaN, stdout: r.stdout };
}

// --- set-up -------------------------------------------------------------------------
const veloDir = join(WORK, 'velo');
const uvDir = join(WORK, 'uv');
if (!existsSync(join(veloDir, 'uv.lock'))) {
  rmSync(WORK, { recursive: true, force: true });
  mkdirSync(veloDir, { recursive: true });
  writeFileSync(
    join(veloDir, 'pyproject.toml'),
    '[project]\nname = "noop-bench"\nversion = "0.1.0"\nrequires-python = ">=3.9"\n' +
      'dependencies = ["fastapi", "uvicorn", "requests", "rich", "numpy", "pydantic-settings", "sqlalchemy"]\n\n[tool.uv]\npackage = false\n',
  );
  execFileSync(UV, ['lock'], { cwd: veloDir, env, stdio: ['ignore', 'ignore', 'inherit'] });
}
rmSync(uvDir, { recursive: true, force: true });
mkdirSync(uvDir, { recursive: true });
for (const f of ['pyproject.toml', 'uv.lock']) cpSync(join(veloDir, f), join(uvDir, f));
execFileSync(UV, ['sync', '--frozen'], { cwd: uvDir, env, stdio: ['ignore', 'ignore', 'inherit'] });
execFileSync(process.execPath, [START, 'uv', 'sync'], { cwd: veloDir, env, stdio: ['ignore', 'ignore', 'inherit'] });
const answer = timed(BIN, ['uv', 'sync'], veloDir).stdout.trim();
if (!/is up to date/.test(answer)) throw new Error(`velo's environment is not up to date after a sync: ${answer}`);

// --- rounds -------------------------------------------------------------------------
const cases = {
  'node -e 0': () => timed(process.execPath, ['-e', '0'], veloDir),
  'velo (bin, launcher)': () => timed(BIN, ['uv', 'sync'], veloDir),
  'velo (node start.cjs)': () => timed(process.execPath, [START, 'uv', 'sync'], veloDir),
  'uv sync': () => timed(UV, ['sync'], uvDir),
  'velo --frozen (bin, launcher)': () => timed(BIN, ['uv', 'sync', '--frozen'], veloDir),
  'velo --frozen (node start.cjs)': () => timed(process.execPath, [START, 'uv', 'sync', '--frozen'], veloDir),
  'uv sync --frozen': () => timed(UV, ['sync', '--frozen'], uvDir),
};
const names = Object.keys(cases);
const samples = Object.fromEntries(names.map((n) => [n, []]));
const loadBefore = loadavg()[0];
for (let i = 0; i < RUNS; i++) {
  for (let k = 0; k < names.length; k++) {
    const name = names[(i + k) % names.length];
    samples[name].push(cases[name]());
  }
}
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const stats = Object.fromEntries(names.map((n) => [n, { ms: median(samples[n].map((s) => s.ms)), cpuMs: median(samples[n].map((s) => s.cpuMs)) }]));
console.log(`uv ${execFileSync(UV, ['--version'], { encoding: 'utf8' }).trim()}, Node ${process.version}; medians of ${RUNS} interleaved rounds; load ${loadBefore.toFixed(2)} → ${loadavg()[0].toFixed(2)}`);
for (const n of names) console.log(`  ${n.padEnd(32)} wall ${stats[n].ms.toFixed(1).padStart(6)} ms   cpu ${stats[n].cpuMs.toFixed(0).padStart(3)} ms`);
const ratio = (a, b) => `${(stats[a].ms / stats[b].ms).toFixed(2)}x wall, ${(stats[a].cpuMs / Math.max(stats[b].cpuMs, 1)).toFixed(2)}x cpu`;
console.log(`velo uv sync / uv sync: launcher ${ratio('velo (bin, launcher)', 'uv sync')}; through node ${ratio('velo (node start.cjs)', 'uv sync')}`);
console.log(`with --frozen: launcher ${ratio('velo --frozen (bin, launcher)', 'uv sync --frozen')}; through node ${ratio('velo --frozen (node start.cjs)', 'uv sync --frozen')}`);
writeFileSync(join(WORK, '..', 'uv-noop-results.json'), JSON.stringify({ date: new Date().toISOString(), runs: RUNS, stats, all: samples }, null, 1) + '\n');
