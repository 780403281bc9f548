#!/usr/bin/env node
// The no-op fast paths beside Node's own start-up, in one run, medians of N
// (default 15), each round measuring `node -e 0` interleaved with the velo
// command (issue 18: `velo --version` at most 5 ms beyond `node -e 0`, the
// no-op `velo npm ci` at most 10 ms):
//   - `velo --version`;
//   - `velo npm ci` on an unchanged project (a copy of demo/, installed once
//     first from the public npm registry into a store of its own);
//   - `velo cargo build` on an unchanged target, up to the moment cargo starts:
//     CARGO points at a shell script that only records a timestamp (the
//     fixture workspace of fixtures/cargo, built twice by velo first, so the
//     target state caches `rustc -vV`);
//   - `velo status` on that store.
// Each velo command is timed three ways per round: the bundle as npm installs
// it (`node dist/bundle/start.cjs`, scripts/bundle.mjs: what ships), tsc's
// output (`node dist/cli/velo.js`) and bin/velo (the bash launcher of a clone,
// which runs tsc's output). Wall time, and for the whole-command cases also
// CPU time (user + sys of the child, from bash's `times`), which a loaded
// machine disturbs less than wall time.
// Usage: node bench/noop-bench.mjs [--runs N] [--work DIR]
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, cpSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const repo = join(dirname(fileURLToPath(import.meta.url)), '..');
const { values } = parseArgs({ options: { runs: { type: 'string', default: '15' }, work: { type: 'string' } } });
const RUNS = Number(values.runs);
const WORK = values.work ?? join(repo, 'bench', 'work', 'noop');
const BIN = join(repo, 'bin', 'velo');
const ENTRY = join(repo, 'dist', 'cli', 'velo.js');
const BUNDLE = join(repo, 'dist', 'bundle', 'start.cjs');
const NODE = process.execPath;
if (!existsSync(ENTRY)) throw new Error(`build velo first (npx tsc -p tsconfig.json): ${ENTRY} is missing`);
if (!existsSync(BUNDLE)) throw new Error(`bundle velo first (node scripts/bundle.mjs): ${BUNDLE} is missing`);

const SCRUB = /^(CARGO_TARGET_DIR|CARGO_BUILD_.*|CARGO_PROFILE_.*|CARGO_ENCODED_RUSTFLAGS|RUSTFLAGS|RUSTC|RUSTC_WRAPPER|RUSTC_WORKSPACE_WRAPPER|CARGO_INCREMENTAL|CARGO|VELO_.*|npm_config_nodedir|npm_config_userconfig)$/i;
const env = {};
for (const [k, v] of Object.entries(process.env)) if (!SCRUB.test(k)) env[k] = v;
Object.assign(env, {
  // bin/velo runs the `node` on PATH: the same one this script runs and times as `node -e 0`
  PATH: `${dirname(NODE)}:${process.env.PATH}`,
  VELO_HOME: join(WORK, 'velo-home'),
  CI: '1',
  CARGO_TERM_COLOR: 'never',
  npm_config_audit: 'false',
  npm_config_fund: 'false',
  npm_config_update_notifier: 'false',
});

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const load = () => loadavg().map((x) => x.toFixed(2)).join(' ');
const now = () => performance.timeOrigin + performance.now(); // ms since the epoch, sub-ms

function run(cmd, args, cwd, extraEnv = {}) {
  const t0 = now();
  const r = spawnSync(cmd, args, { cwd, env: { ...env, ...extraEnv }, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  const ms = now() - t0;
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} in ${cwd} failed (${r.status ?? r.signal}):\n${r.stdout}\n${r.stderr}`);
  return { t0, ms, stdout: r.stdout, stderr: r.stderr };
}

// --- set-up ---------------------------------------------------------------------------
rmSync(WORK, { recursive: true, force: true });
mkdirSync(WORK, { recursive: true });

// npm: a copy of demo/, installed once through velo from the public registry
const demo = join(WORK, 'demo');
mkdirSync(demo);
for (const f of ['package.json', 'package-lock.json', 'index.js']) cpSync(join(repo, 'demo', f), join(demo, f));
const firstInstall = run(NODE, [ENTRY, 'npm', 'ci'], demo);
console.log(`set-up: velo npm ci in a copy of demo/ (public registry, empty store): ${firstInstall.ms.toFixed(0)} ms — ${firstInstall.stdout.trim().split('\n').at(-1)}`);

// cargo: the fixture workspace with its directory-source registry, built twice by velo
const fx = join(WORK, 'cargo');
mkdirSync(join(fx, '.cargo'), { recursive: true });
cpSync(join(repo, 'fixtures', 'cargo', 'registry'), join(fx, 'registry'), { recursive: true });
writeFileSync(
  join(fx, '.cargo', 'config.toml'),
  `[source.crates-io]\nreplace-with = "velo-fixture-registry"\n\n[source.velo-fixture-registry]\ndirectory = ${JSON.stringify(join(fx, 'registry'))}\n`,
);
const ws = join(fx, 'workspace');
const fixtureWs = join(repo, 'fixtures', 'cargo', 'workspace');
cpSync(fixtureWs, ws, { recursive: true, filter: (p) => p !== join(fixtureWs, 'target') });
const cargoEnv = { CARGO_NET_OFFLINE: 'true' };
run(NODE, [ENTRY, 'cargo', 'build', '-q'], ws, cargoEnv);
run(NODE, [ENTRY, 'cargo', 'build', '-q'], ws, cargoEnv); // now the target state caches rustc -vV
const stamps = join(WORK, 'cargo-started');
const fakeCargo = join(WORK, 'fake-cargo.sh');
writeFileSync(fakeCargo, `#!/bin/sh\ndate +%s%N >> ${JSON.stringify(stamps)}\n`);
chmodSync(fakeCargo, 0o755);
const stateFile = join(ws, 'target', '.velo', 'state.json');
const stateBefore = readFileSync(stateFile, 'utf8');

/** ms from spawning `cmd` until the fake cargo wrote its timestamp */
function untilCargo(cmd, args) {
  rmSync(stamps, { force: true });
  const r = run(cmd, args, ws, { ...cargoEnv, CARGO: fakeCargo });
  const stamp = readFileSync(stamps, 'utf8').trim().split('\n');
  if (stamp.length !== 1) throw new Error(`the fake cargo ran ${stamp.length} times`);
  if (/restor|stored/.test(r.stderr)) throw new Error(`not a no-op: ${r.stderr}`);
  return Number(stamp[0]) / 1e6 - r.t0;
}

// --- measure --------------------------------------------------------------------------
const results = {
  date: new Date().toISOString(),
  machine: `${cpus().length} × ${cpus()[0]?.model ?? '?'}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, ${execFileSync('findmnt', ['-no', 'FSTYPE', '-T', WORK], { encoding: 'utf8' }).trim()}`,
  node: process.version,
  veloCommit: execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: repo, encoding: 'utf8' }).trim(),
  runs: RUNS,
  load: { start: load() },
  cases: [],
};
console.log(`${results.date}  ${results.machine}; node ${results.node}; velo ${results.veloCommit}; load ${results.load.start}; medians of ${RUNS}\n`);

/** CPU time (user + sys, ms) of one run of cmd, from bash's `times` (its second line: the children). */
function cpuOf(cmd, args, cwd, extraEnv = {}) {
  const r = spawnSync('bash', ['-c', '"$@" >/dev/null 2>&1; rc=$?; times; exit $rc', 'bash', cmd, ...args], { cwd, env: { ...env, ...extraEnv }, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status ?? r.signal})`);
  const ms = (t) => { const m = /(\d+)m([\d.]+)s/.exec(t); return (Number(m[1]) * 60 + Number(m[2])) * 1000; };
  const [user, sys] = r.stdout.trim().split('\n')[1].trim().split(/\s+/);
  return ms(user) + ms(sys);
}

/**
 * variants: { label: { wall: () => ms, cpu?: () => ms } }; `node -e 0` is
 * measured first in every round, the variants after it in order.
 */
function measureCase(name, what, variants) {
  const nodeRun = { wall: () => run(NODE, ['-e', '0'], WORK).ms, cpu: () => cpuOf(NODE, ['-e', '0'], WORK) };
  const all = { 'node -e 0': nodeRun, ...variants };
  const samples = Object.fromEntries(Object.keys(all).map((k) => [k, { wall: [], cpu: [] }]));
  for (let i = 0; i < RUNS; i++) {
    for (const [label, v] of Object.entries(all)) {
      samples[label].wall.push(v.wall());
      if (v.cpu) samples[label].cpu.push(v.cpu());
    }
  }
  const f = (x) => x.toFixed(1);
  const base = samples['node -e 0'];
  const c = { name, what, load: load(), variants: {} };
  console.log(`${name}  (${what})`);
  for (const [label, s] of Object.entries(samples)) {
    const wall = median(s.wall);
    const cpu = s.cpu.length ? median(s.cpu) : undefined;
    c.variants[label] = {
      wall: { median: wall, beyondNode: wall - median(base.wall), samples: s.wall },
      ...(cpu !== undefined ? { cpu: { median: cpu, beyondNode: cpu - median(base.cpu), samples: s.cpu } } : {}),
    };
    const beyond = label === 'node -e 0' ? '' : `  beyond node -e 0: ${f(wall - median(base.wall)).padStart(5)} ms`;
    const cpuText = cpu === undefined ? '' : `   cpu median ${f(cpu).padStart(6)} ms${label === 'node -e 0' ? '' : `  beyond: ${f(cpu - median(base.cpu)).padStart(5)} ms`}`;
    console.log(`  ${label.padEnd(34)} wall median ${f(wall).padStart(6)} ms${beyond}${cpuText}`);
  }
  console.log(`  load ${c.load}\n`);
  results.cases.push(c);
}

/** the three ways to run velo: bundle (what ships), tsc's output, the clone's launcher */
function ways(args, cwd, extraEnv) {
  return {
    'node dist/bundle/start.cjs (ships)': { wall: () => run(NODE, [BUNDLE, ...args], cwd, extraEnv).ms, cpu: () => cpuOf(NODE, [BUNDLE, ...args], cwd, extraEnv) },
    'node dist/cli/velo.js (tsc)': { wall: () => run(NODE, [ENTRY, ...args], cwd, extraEnv).ms, cpu: () => cpuOf(NODE, [ENTRY, ...args], cwd, extraEnv) },
    'bin/velo (clone launcher)': { wall: () => run(BIN, args, cwd, extraEnv).ms },
  };
}

// the compile cache is warm in every case below (a user's second run)
for (let i = 0; i < 2; i++) {
  run(NODE, [BUNDLE, 'npm', 'ci'], demo);
  run(NODE, [ENTRY, 'npm', 'ci'], demo);
}

measureCase('velo --version', 'whole command', ways(['--version'], WORK));
// the fake cargo's own start-up (sh + date), which the cargo case includes
const stampCost = [];
for (let i = 0; i < RUNS; i++) {
  rmSync(stamps, { force: true });
  const t0 = now();
  spawnSync(fakeCargo, [], { env });
  stampCost.push(Number(readFileSync(stamps, 'utf8').trim()) / 1e6 - t0);
}
results.fakeCargoStartMs = median(stampCost);

measureCase('velo npm ci, unchanged project', 'whole command', ways(['npm', 'ci'], demo));
measureCase(
  'velo cargo build -q, unchanged target',
  `from spawn until the fake cargo's timestamp; the fake cargo alone (sh + date) takes ${results.fakeCargoStartMs.toFixed(1)} ms`,
  {
    'node dist/bundle/start.cjs (ships)': { wall: () => untilCargo(NODE, [BUNDLE, 'cargo', 'build', '-q']) },
    'node dist/cli/velo.js (tsc)': { wall: () => untilCargo(NODE, [ENTRY, 'cargo', 'build', '-q']) },
    // (not bin/velo here: it puts its Node first on PATH, and PATH is part of the target's rustc stamp)
  },
);
if (readFileSync(stateFile, 'utf8') !== stateBefore) throw new Error('the no-op cargo runs changed target/.velo/state.json');
measureCase('velo status', 'whole command; the store holds the demo project and the fixture snapshots', ways(['status'], WORK));

results.load.end = load();
const resultsFile = join(dirname(WORK), `${basename(WORK)}-results.json`);
writeFileSync(resultsFile, JSON.stringify(results, null, 2) + '\n');
console.log(`results: ${resultsFile}`);
