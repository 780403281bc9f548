#!/usr/bin/env node
// velo run and velo dashboard, measured.
//
//   npx tsc -p tsconfig.json && node bench/run-bench.mjs [--runs N] [--skip-run] [--skip-dashboard] [--objects N]
//
// velo run (needs the npm registry once): a temp copy of demo/ (express,
// commander, semver, typescript) installed with `bin/velo npm ci`, then
//   - plain `node -e "<require all four>"` against `velo run node -e …`,
//     the first run (empty compile cache) and repeated runs (warm cache),
//   - the same after evicting every file involved from the page cache
//     (node, velo, node_modules, the compile cache: posix_fadvise DONTNEED
//     per file, so the rest of the machine keeps its cache),
//   - a second project with the same dependencies started after the first
//     warmed the cache ("shared start"),
//   - velo run's own cost: `velo run node -e 0` against `node -e 0`.
// velo dashboard: a store of --objects (default 1,000,000) real objects,
//   30 projects with 40,000-file trees over them, 30,000 package keys; the
//   dashboard's time to its figures on screen and to Ink's first frame in a
//   real terminal (tmux, 80x24), velo status, and the background walk of
//   trees behind unique/shared bytes and the gc estimate.
// Scenarios are interleaved so machine load hits all alike; medians of
// wall time and of CPU time (user + sys: the steadier measure on a busy
// machine). Results: stdout, bench/work/run-results.json, and the
// "## velo run" and "## velo dashboard" sections of docs/BENCHMARKS.md.
import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { evictFromPageCache } from './lib/evictCache.mjs';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const WORK = join(ROOT, 'bench', 'work', 'run-bench');
const VELO_JS = join(ROOT, 'dist', 'cli', 'velo.js');
const arg = (name, dflt) => {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : dflt;
};
const RUNS = Number(arg('--runs', 7)) || 7;
const OBJECTS = Number(arg('--objects', 1_000_000)) || 1_000_000;
const SKIP_RUN = process.argv.includes('--skip-run');
const SKIP_DASHBOARD = process.argv.includes('--skip-dashboard');
if (!existsSync(VELO_JS)) throw new Error('build first: npx tsc -p tsconfig.json');

const baseEnv = {};
for (const [k, v] of Object.entries(process.env)) {
  if (/^npm_/i.test(k) || k === 'INIT_CWD' || k === 'NODE_COMPILE_CACHE' || k === 'NODE_DISABLE_COMPILE_CACHE' || k === 'NODE_OPTIONS') continue;
  baseEnv[k] = v;
}
baseEnv.PATH = [dirname(process.execPath), baseEnv.PATH ?? ''].join(':');
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const fmt = (ms) => (ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${ms.toFixed(0)} ms`);

/** Run a command; wall and CPU (user + sys of the whole process tree, from /usr/bin/time). */
function timed(cmd, args, { cwd, env }) {
  const t0 = performance.now();
  const r = spawnSync('/usr/bin/time', ['-f', '@@cpu %U %S', cmd, ...args], { cwd, env, encoding: 'utf8', maxBuffer: 64 << 20 });
  const wall = performance.now() - t0;
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}):\n${r.stderr}\n${r.stdout}`);
  const m = /@@cpu ([\d.]+) ([\d.]+)/.exec(r.stderr);
  return { wall, cpu: m ? (Number(m[1]) + Number(m[2])) * 1000 : NaN, stdout: r.stdout, stderr: r.stderr.replace(/@@cpu.*\n?/, '') };
}


function machine() {
  return `${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, Node ${process.versions.node}, load average ${loadavg()[0].toFixed(1)} at the start`;
}

// ---------------------------------------------------------------------------
// velo run

const REQUIRE = "const ts = require('typescript'); const express = require('express'); const { Command } = require('commander'); const semver = require('semver'); console.log(ts.version, typeof express, typeof Command, semver.valid('1.2.3'))";

function benchRun() {
  const work = join(WORK, 'run');
  rmSync(work, { recursive: true, force: true });
  mkdirSync(work, { recursive: true });
  const home = join(work, 'store');
  const env = { ...baseEnv, CI: '1', VELO_HOME: home };
  const projects = [join(work, 'demo'), join(work, 'demo-two')];
  for (const p of projects) {
    cpSync(join(ROOT, 'demo'), p, { recursive: true, filter: (src) => !src.includes('node_modules') });
    const r = spawnSync(join(ROOT, 'bin', 'velo'), ['npm', 'ci'], { cwd: p, env, encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`velo npm ci in ${p} failed:\n${r.stderr}`);
    process.stdout.write(`${p}: ${r.stdout.trim()}\n`);
  }
  const [demo, two] = projects;
  const cache = join(home, 'compile-cache');
  const node = process.execPath;
  const velo = (cwd, ...args) => timed(node, [VELO_JS, 'run', ...args], { cwd, env });
  const plain = (cwd, ...args) => timed(node, args, { cwd, env });
  const expected = plain(demo, '-e', REQUIRE).stdout;
  const files = [node, join(ROOT, 'dist'), join(demo, 'node_modules'), join(two, 'node_modules'), cache];

  const cases = {
    'node -e "<require>"': [],
    'velo run node -e "<require>", first run (empty compile cache)': [],
    'velo run node -e "<require>", repeated': [],
    'node -e "<require>", page cache dropped': [],
    'velo run node -e "<require>", repeated, page cache dropped': [],
    'velo run in a second project with the same dependencies (cache warmed by the first)': [],
    'node -e 0': [],
    'velo run node -e 0 (npm no-op check included)': [],
    'velo run --no-install node -e 0': [],
  };
  const keys = Object.keys(cases);
  const add = (i, r) => {
    cases[keys[i]].push(r);
  };
  // warm everything once
  velo(demo, node, '-e', REQUIRE);
  for (let round = 0; round < RUNS; round++) {
    add(0, plain(demo, '-e', REQUIRE));
    rmSync(cache, { recursive: true, force: true });
    const first = velo(demo, node, '-e', REQUIRE);
    if (first.stdout !== expected) throw new Error(`velo run printed ${first.stdout}, node printed ${expected}`);
    add(1, first);
    add(2, velo(demo, node, '-e', REQUIRE));
    add(2, velo(demo, node, '-e', REQUIRE));
    evictFromPageCache(files);
    add(3, plain(demo, '-e', REQUIRE));
    evictFromPageCache(files);
    add(4, velo(demo, node, '-e', REQUIRE));
    rmSync(cache, { recursive: true, force: true });
    velo(demo, node, '-e', REQUIRE);
    add(5, velo(two, node, '-e', REQUIRE));
    add(6, plain(demo, '-e', '0'));
    add(7, velo(demo, node, '-e', '0'));
    add(8, velo(demo, '--no-install', node, '-e', '0'));
    process.stdout.write(`round ${round + 1}/${RUNS} done\n`);
  }
  const rows = keys.map((k) => ({ case: k, wall: median(cases[k].map((r) => r.wall)), cpu: median(cases[k].map((r) => r.cpu)), n: cases[k].length }));
  const cacheFiles = readdirSync(cache).flatMap((d) => readdirSync(join(cache, d)));
  return { rows, cacheEntries: cacheFiles.length, expected: expected.trim() };
}

function runSection(res, when) {
  const base = res.rows[0];
  const lines = [
    '## velo run',
    '',
    `\`node bench/run-bench.mjs\` (${when}; ${machine()}). A copy of demo/ (express, commander, semver, typescript 5) installed`,
    'with `bin/velo npm ci`; the program requires all four and prints a line (the same line with and without velo run).',
    `Medians of ${RUNS} runs (the repeated case: ${RUNS * 2}); CPU = user + sys of the whole process tree.`,
    '"Page cache dropped": node, velo\'s dist/, both node_modules (the store\'s objects: same inodes) and the compile',
    'cache were evicted with posix_fadvise(DONTNEED) right before the run.',
    '',
    '| case | wall | CPU | wall vs plain node |',
    '|---|---:|---:|---:|',
  ];
  for (const r of res.rows.slice(0, 6)) lines.push(`| ${r.case} | ${fmt(r.wall)} | ${fmt(r.cpu)} | ${r === base ? '—' : `${((r.wall / base.wall - 1) * 100).toFixed(0)}%`} |`);
  for (const r of res.rows.slice(6)) lines.push(`| ${r.case} | ${fmt(r.wall)} | ${fmt(r.cpu)} | |`);
  const dropped = res.rows[3];
  const veloDropped = res.rows[4];
  lines.push(
    '',
    `What it shows: Node's compile cache, which velo run keeps in the store ($VELO_HOME/compile-cache, ${res.cacheEntries} entries here),`,
    `takes ${fmt(base.wall - res.rows[2].wall)} (${(((base.wall - res.rows[2].wall) / base.wall) * 100).toFixed(0)}%) off this start once warm; the first run pays for writing it.`,
    `With the page cache dropped, plain node takes ${fmt(dropped.wall)} and velo run ${fmt(veloDropped.wall)}.`,
    'A second project does not share the first one\'s entries: Node keys its compile cache by the absolute path of each',
    'module, so another checkout (another node_modules path) compiles again. velo run\'s own cost is the difference',
    'between the last three rows: starting velo, and the npm no-op check (a state file, the lockfile\'s hash, two stats).',
    '',
  );
  return lines.join('\n');
}

// ---------------------------------------------------------------------------
// velo dashboard on a big store

async function benchDashboard() {
  const { Store } = await import(join(ROOT, 'dist/src/store/store.js'));
  const { hashBuffer } = await import(join(ROOT, 'dist/src/store/hash.js'));
  const { putTree } = await import(join(ROOT, 'dist/src/store/trees.js'));
  const { setCounters, readCounters } = await import(join(ROOT, 'dist/src/store/counters.js'));
  const { writeTransaction } = await import(join(ROOT, 'dist/src/store/indexDb.js'));
  const { OBJECT_MTIME_S } = await import(join(ROOT, 'dist/src/store/layout.js'));
  const { registerProject } = await import(join(ROOT, 'dist/src/store/keys.js'));
  const work = join(WORK, 'dashboard');
  const home = join(work, 'store');
  const marker = join(work, `built-${OBJECTS}`);
  const PROJECTS = 30;
  const PER_PROJECT = 40_000;
  const KEYS = 30_000;
  if (!existsSync(marker)) {
    rmSync(work, { recursive: true, force: true });
    mkdirSync(work, { recursive: true });
    const store = Store.open(home);
    const t0 = performance.now();
    const digests = new Array(OBJECTS);
    const sizes = new Uint32Array(OBJECTS);
    let bytes = 0;
    for (let i = 0; i < OBJECTS; i++) {
      const body = Buffer.from(`velo bench object ${i} ${'x'.repeat(i % 200)}\n`);
      const d = hashBuffer(body);
      digests[i] = d;
      sizes[i] = body.length;
      bytes += body.length;
      const path = store.objectPath(d, false);
      store.ensurePrefixDir('objects', d);
      writeFileSync(path, body, { mode: 0o444 });
      utimesSync(path, OBJECT_MTIME_S, OBJECT_MTIME_S);
      if (i % 100_000 === 0) process.stdout.write(`objects: ${i}/${OBJECTS} (${fmt(performance.now() - t0)})\n`);
    }
    const entry = (i, prefix) => ({ path: `${prefix}/f${i}.js`, kind: 'file', size: sizes[i], digest: digests[i] });
    const keyTrees = [];
    for (let k = 0; k < KEYS; k++) {
      const first = (k * 31) % (OBJECTS - 20);
      keyTrees.push(putTree(store, Array.from({ length: 20 }, (_, j) => entry(first + j, 'lib'))));
    }
    writeTransaction(store.index, () => {
      const key = store.index.prepare('INSERT INTO keys(name, tree, kind, logical_bytes, files, created, used) VALUES(?, ?, ?, ?, ?, ?, ?)');
      for (let k = 0; k < KEYS; k++) key.run(`npm:sha512-bench-${k}`, keyTrees[k], 'npm', 20 * 60, 20, Date.now(), Date.now());
    });
    for (let p = 0; p < PROJECTS; p++) {
      const dir = join(work, 'projects', `p${String(p).padStart(2, '0')}`);
      mkdirSync(dir, { recursive: true });
      // projects overlap: each starts 25,000 objects after the previous one
      const start = (p * 25_000) % (OBJECTS - PER_PROJECT);
      const entries = Array.from({ length: PER_PROJECT }, (_, j) => entry(start + j, `pkg${Math.floor(j / 50)}`));
      const tree = putTree(store, entries);
      const logical = entries.reduce((s, e) => s + e.size, 0);
      registerProject(store, {
        path: join(dir, 'node_modules'),
        ecosystem: 'npm',
        tree,
        method: 'hardlink',
        logicalBytes: logical,
        files: PER_PROJECT,
        packages: 800,
        keys: Array.from({ length: 1000 }, (_, j) => `npm:sha512-bench-${(p * 500 + j) % KEYS}`),
      });
    }
    const c = readCounters(store);
    setCounters(store, { objects: OBJECTS, object_bytes: bytes, trees: c.trees, tree_bytes: c.tree_bytes });
    store.close();
    writeFileSync(marker, `${fmt(performance.now() - t0)}\n`);
    process.stdout.write(`built the store in ${fmt(performance.now() - t0)}\n`);
  }
  const env = { ...baseEnv, CI: '1', VELO_HOME: home };
  rmSync(join(home, 'state', 'project-stats.json'), { force: true });
  const jsonFirst = timed(process.execPath, [VELO_JS, 'dashboard', '--json'], { cwd: work, env });
  const statsMs = JSON.parse(readFileSync(join(home, 'state', 'project-stats.json'), 'utf8')).ms;
  const samples = { status: [], json: [], painted: [], inkFirstFrame: [], nodeE0: [] };
  const socket = join(work, 'tmux.sock');
  const tmux = (...a) => execFileSync('tmux', ['-S', socket, ...a], { encoding: 'utf8' });
  try {
    for (let i = 0; i < RUNS; i++) {
      samples.status.push(timed(process.execPath, [VELO_JS, 'status'], { cwd: work, env }).wall);
      samples.json.push(timed(process.execPath, [VELO_JS, 'dashboard', '--json'], { cwd: work, env }).wall);
      samples.nodeE0.push(timed(process.execPath, ['-e', '0'], { cwd: work, env }).wall);
      const timing = join(work, `timing-${i}.json`);
      rmSync(timing, { force: true });
      const vars = Object.entries({ VELO_HOME: home, VELO_DASHBOARD_TIMING: timing, PATH: baseEnv.PATH, HOME: baseEnv.HOME ?? '/root', TERM: 'xterm-256color' })
        .map(([k, v]) => `${k}=${JSON.stringify(v)}`)
        .join(' ');
      tmux('new-session', '-d', '-x', '80', '-y', '24', '-s', `d${i}`, `env -i ${vars} ${JSON.stringify(process.execPath)} ${JSON.stringify(VELO_JS)} dashboard`);
      const deadline = Date.now() + 30_000;
      while (!tmux('capture-pane', '-p', '-t', `d${i}`).includes(`objects ${OBJECTS.toLocaleString('en-US')}`) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      await new Promise((r) => setTimeout(r, 1500));
      tmux('send-keys', '-t', `d${i}`, 'q');
      while (!existsSync(timing) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      const t = JSON.parse(readFileSync(timing, 'utf8'));
      samples.painted.push(t.painted);
      samples.inkFirstFrame.push(t.inkFirstFrame);
    }
  } finally {
    spawnSync('tmux', ['-S', socket, 'kill-server']);
  }
  return {
    objects: OBJECTS,
    projects: PROJECTS,
    treeEntries: PROJECTS * PER_PROJECT,
    keys: KEYS,
    statsMs,
    jsonFirst: jsonFirst.wall,
    medians: Object.fromEntries(Object.entries(samples).map(([k, v]) => [k, median(v)])),
    samples,
  };
}

function dashboardSection(d, when) {
  const m = d.medians;
  return [
    '## velo dashboard',
    '',
    `\`node bench/run-bench.mjs\` (${when}; ${machine()}). A store of ${d.objects.toLocaleString('en-US')} real objects`,
    `(files in objects/), ${d.projects} registered projects whose trees hold ${d.treeEntries.toLocaleString('en-US')} file entries over them, ${d.keys.toLocaleString('en-US')} package keys and`,
    `${(d.projects * 1000).toLocaleString('en-US')} project keys. Times from process start, medians of ${RUNS}; the interactive ones in a real terminal (tmux, 80x24).`,
    '',
    '| what | time |',
    '|---|---:|',
    `| \`node -e 0\` (for scale) | ${fmt(m.nodeE0)} |`,
    `| \`velo dashboard\`: figures on screen (first frame, plain ANSI) | ${fmt(m.painted)} |`,
    `| \`velo dashboard\`: Ink's first frame (interactive) | ${fmt(m.inkFirstFrame)} |`,
    `| \`velo status\` | ${fmt(m.status)} |`,
    `| \`velo dashboard --json\`, unique/shared bytes cached | ${fmt(m.json)} |`,
    `| \`velo dashboard --json\`, first time (walks the projects' and keys' trees) | ${fmt(d.jsonFirst)} |`,
    `| of which the walk of trees (in the background when interactive) | ${fmt(d.statsMs)} |`,
    '',
    'The first frame reads the counters, the projects table and the key count (no walk of objects/ or trees/), paints',
    'them with plain ANSI, then loads Ink and hands over. A plain `import(\'ink\')` costs ~400 ms of CPU here (550 modules,',
    '415 of them es-toolkit\'s index; undici, loaded by yoga-layout\'s fetch of its own wasm); src/ui/loadInk.ts brings it',
    'to ~140–200 ms (140 modules, no undici). That is also why progress lines (src/ui/progress.ts) are plain ANSI.',
    'Per-project unique/shared bytes and the gc estimate come from a walk of trees, cached in',
    '$VELO_HOME/state/project-stats.json until a project is installed again.',
    '',
  ].join('\n');
}

// ---------------------------------------------------------------------------

function writeSection(title, text) {
  const path = join(ROOT, 'docs', 'BENCHMARKS.md');
  let doc = existsSync(path) ? readFileSync(path, 'utf8') : '# Benchmarks\n\nEach section is written by the script it names.\n';
  const start = doc.indexOf(`\n${title}\n`);
  if (start >= 0) {
    const next = doc.indexOf('\n## ', start + title.length + 2);
    doc = doc.slice(0, start + 1) + text + (next >= 0 ? doc.slice(next + 1) : '');
  } else doc = doc.replace(/\n*$/, '\n\n') + text;
  writeFileSync(path, doc);
}

const when = new Date().toISOString().slice(0, 10);
mkdirSync(WORK, { recursive: true });
const results = {};
if (!SKIP_RUN) {
  results.run = benchRun();
  const text = runSection(results.run, when);
  process.stdout.write('\n' + text + '\n');
  writeSection('## velo run', text);
}
if (!SKIP_DASHBOARD) {
  results.dashboard = await benchDashboard();
  const text = dashboardSection(results.dashboard, when);
  process.stdout.write('\n' + text + '\n');
  writeSection('## velo dashboard', text);
}
writeFileSync(join(ROOT, 'bench', 'work', 'run-results.json'), JSON.stringify(results, null, 2) + '\n');
