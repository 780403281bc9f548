#!/usr/bin/env node
// The no-op fast paths beside Node's own start-up, in one run, medians of N
// (default 15), each round measuring `node -e 0` interleaved with the velo
// command (issues 4 and 7: at most 30 ms beyond `node -e 0`):
//   - `velo npm ci` on an unchanged project (a copy of demo/, installed once
//     first from the public npm registry into a store of its own);
//   - `velo cargo build` on an unchanged target, up to the moment cargo starts:
//     CARGO points at a shell script that only records a timestamp (the
//     fixture workspace of fixtures/cargo, built twice by velo first, so the
//     target state caches `rustc -vV`);
//   - `velo status` on that store.
// Each velo command is timed twice per round: through bin/velo (the bash
// launcher a user runs) and as `node dist/cli/velo.js` (no launcher).
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
const NODE = process.execPath;
if (!existsSync(ENTRY)) throw new Error(`build velo first (npx tsc -p tsconfig.json): ${ENTRY} is missing`);

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

function measureCase(name, what, viaBin, viaEntry) {
  const node = [];
  const bin = [];
  const entry = [];
  for (let i = 0; i < RUNS; i++) {
    node.push(run(NODE, ['-e', '0'], WORK).ms);
    bin.push(viaBin());
    entry.push(viaEntry());
  }
  const c = {
    name,
    what,
    node: { median: median(node), samples: node },
    bin: { median: median(bin), samples: bin, beyondNode: median(bin) - median(node) },
    entry: { median: median(entry), samples: entry, beyondNode: median(entry) - median(node) },
    load: load(),
  };
  results.cases.push(c);
  const f = (x) => x.toFixed(1);
  console.log(`${name}  (${what})`);
  console.log(`  node -e 0                 median ${f(c.node.median).padStart(6)} ms  [${node.map(f).join(', ')}]`);
  console.log(`  bin/velo …                median ${f(c.bin.median).padStart(6)} ms  beyond node -e 0: ${f(c.bin.beyondNode)} ms  [${bin.map(f).join(', ')}]`);
  console.log(`  node dist/cli/velo.js …   median ${f(c.entry.median).padStart(6)} ms  beyond node -e 0: ${f(c.entry.beyondNode)} ms  [${entry.map(f).join(', ')}]`);
  console.log(`  load ${c.load}\n`);
}

// the fake cargo's own start-up (sh + date), which the cargo case includes
const stampCost = [];
for (let i = 0; i < RUNS; i++) {
  rmSync(stamps, { force: true });
  const t0 = now();
  spawnSync(fakeCargo, [], { env });
  stampCost.push(Number(readFileSync(stamps, 'utf8').trim()) / 1e6 - t0);
}
results.fakeCargoStartMs = median(stampCost);

measureCase('velo npm ci, unchanged project', 'whole command, wall time', () => run(BIN, ['npm', 'ci'], demo).ms, () => run(NODE, [ENTRY, 'npm', 'ci'], demo).ms);
measureCase(
  'velo cargo build -q, unchanged target',
  `from spawn until the fake cargo's timestamp; the fake cargo alone (sh + date) takes ${results.fakeCargoStartMs.toFixed(1)} ms`,
  () => untilCargo(BIN, ['cargo', 'build', '-q']),
  () => untilCargo(NODE, [ENTRY, 'cargo', 'build', '-q']),
);
if (readFileSync(stateFile, 'utf8') !== stateBefore) throw new Error('the no-op cargo runs changed target/.velo/state.json');
measureCase('velo status', 'whole command, wall time; the store holds the demo project and the fixture snapshots', () => run(BIN, ['status'], WORK).ms, () => run(NODE, [ENTRY, 'status'], WORK).ms);

results.load.end = load();
const resultsFile = join(dirname(WORK), `${basename(WORK)}-results.json`);
writeFileSync(resultsFile, JSON.stringify(results, null, 2) + '\n');
console.log(`results: ${resultsFile}`);
