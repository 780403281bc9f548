#!/usr/bin/env node
// The store benchmark (issue 3): a synthetic node_modules-shaped tree of
// about 50,000 files and 500 MB, ingested into an empty store and again into
// a warm one, then materialized by every method with the native and the
// JavaScript engine, beside `cp -al` and `cp -a` of the same tree — all in
// one run, interleaved round by round, so the ratios compare like with like
// on a shared, noisy machine.
//
// Every velo number runs the real CLI (`node dist/cli/velo.js store …`) and
// is timed from outside the process: Node's start-up (~50 ms) is included.
// The page cache is left warm unless --drop-caches is given (and the source
// tree and the store are read once before every sample, so that it really
// is warm: this VM pages out file cache idle for a minute). Nothing made
// during the run is deleted before the run ends: on ext4 without a journal
// (this machine), inodes freed in the last minute make every new inode
// slower to allocate, which would penalize whichever sample came after a
// deletion.
//
// Usage: node bench/store-bench.mjs [--runs 5] [--work DIR] [--files 50000]
//          [--bytes 500000000] [--seed 1] [--ingest-threads 1,4]
//          [--drop-caches] [--no-build] [--no-write] [--keep]
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, statfsSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, loadavg, release } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { ensureTree } from './lib/syntheticTree.mjs';
import { prewarm } from './lib/prewarm.mjs';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const velo = join(repo, 'dist', 'cli', 'velo.js');

const { values: opt } = parseArgs({
  options: {
    runs: { type: 'string', default: '5' },
    work: { type: 'string', default: '/tmp/velo-store-bench' },
    files: { type: 'string', default: '50000' },
    bytes: { type: 'string', default: '500000000' },
    seed: { type: 'string', default: '1' },
    'ingest-threads': { type: 'string', default: '' },
    'drop-caches': { type: 'boolean', default: false },
    'no-build': { type: 'boolean', default: false },
    'no-write': { type: 'boolean', default: false },
    keep: { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h', default: false },
  },
});
if (opt.help) {
  process.stdout.write(readFileSync(fileURLToPath(import.meta.url), 'utf8').split('\n').filter((l) => l.startsWith('//')).map((l) => l.slice(3)).join('\n') + '\n');
  process.exit(0);
}
const runs = Number(opt.runs);
const treeOptions = { seed: Number(opt.seed), files: Number(opt.files), bytes: Number(opt.bytes) };
// '' = velo's default thread count; "1,4" = one cold-ingest row per count
const ingestThreads = opt['ingest-threads'] ? opt['ingest-threads'].split(',').map((s) => s.trim()) : [''];
const commandLine = ['node', 'bench/store-bench.mjs', ...process.argv.slice(2)].join(' ');

const log = (s = '') => process.stdout.write(s + '\n');
const fmtS = (ms) => `${(ms / 1000).toFixed(2)} s`;
const fmtInt = (n) => Math.round(n).toLocaleString('en-US');
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

function sh(cmd, args, env = {}) {
  const r = spawnSync(cmd, args, { env: { ...process.env, ...env }, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}): ${r.stderr || r.error}`);
  return r.stdout;
}

/** Directories every sample reads: read them all before each sample (see prewarm.mjs). */
const warmDirs = [];

function settle() {
  // dirty pages from the previous sample are written back outside the timed region
  execFileSync('sync');
  if (opt['drop-caches']) writeFileSync('/proc/sys/vm/drop_caches', '3\n');
  else prewarm(...warmDirs);
}

/** Time one command from outside (start-up included). */
function timed(cmd, args, env = {}) {
  settle();
  const t0 = process.hrtime.bigint();
  const out = sh(cmd, args, env);
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  let json;
  try {
    json = out.trim().startsWith('{') ? JSON.parse(out) : undefined;
  } catch {
    json = undefined;
  }
  return { ms, json };
}

// ---- set-up ---------------------------------------------------------------
if (!opt['no-build']) {
  log('building: npx tsc -p tsconfig.json');
  execFileSync(process.execPath, [join(repo, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(repo, 'tsconfig.json')], { stdio: 'inherit' });
}
if (!existsSync(velo)) throw new Error(`${velo} is missing: build first (npx tsc -p tsconfig.json)`);
const work = resolve(opt.work);
mkdirSync(work, { recursive: true });
log(`source tree: ${JSON.stringify(treeOptions)} in ${work}/src`);
const t0 = Date.now();
const tree = ensureTree(work, treeOptions);
log(`  ${tree.reused ? 'reused' : `written in ${((Date.now() - t0) / 1000).toFixed(1)} s`}: ${fmtInt(tree.files)} files, ${fmtInt(tree.dirs)} dirs, ${tree.symlinks} symlinks, ${(tree.bytes / 1e6).toFixed(0)} MB`);

const out = join(work, `run-${process.pid}`);
mkdirSync(out);
// every copy-like sample writes the whole tree again, and nothing is deleted until the end
const perRound = (ingestThreads.length + 3) * tree.bytes * 1.3 + 64 * 1024 * 1024;
const fs = statfsSync(out);
const free = fs.bavail * fs.bsize;
if (free < perRound * runs + tree.bytes * 1.3) {
  rmSync(out, { recursive: true, force: true });
  throw new Error(`not enough free space in ${work}: need about ${((perRound * runs) / 1e9).toFixed(1)} GB, have ${(free / 1e9).toFixed(1)} GB (use fewer --runs)`);
}

const src = tree.root;
const warmHome = join(out, 'store-warm');
log('preparing the warm store (untimed)');
const prep = JSON.parse(sh(process.execPath, [velo, 'store', 'ingest', src, '--json'], { VELO_HOME: warmHome }));
const treeDigest = prep.tree;
warmDirs.push(src, join(warmHome, 'objects'), join(warmHome, 'trees'));
const engineAvailable = JSON.parse(
  sh(process.execPath, [velo, 'store', 'materialize', treeDigest, join(out, 'probe', 'node_modules'), '--method', 'hardlink', '--no-register', '--json'], { VELO_HOME: warmHome }),
).engine;
if (engineAvailable !== 'native') log(`NOTE: the native addon is not available (engine ${engineAvailable}); "native" rows use the JS engine`);

// ---- the samples ----------------------------------------------------------
/** @type {Map<string, {label: string, kind: string, ms: number[], notes: Set<string>}>} */
const rows = new Map();
function record(key, label, kind, ms, note) {
  if (!rows.has(key)) rows.set(key, { label, kind, ms: [], notes: new Set() });
  const row = rows.get(key);
  row.ms.push(ms);
  if (note) row.notes.add(note);
}

const loadStart = loadavg();
const started = new Date();
for (let round = 1; round <= runs; round++) {
  log(`\nround ${round}/${runs}  (load average ${loadavg().map((x) => x.toFixed(2)).join(' ')})`);
  const sample = (key, label, kind, fn) => {
    const { ms, json, note, extra } = fn();
    record(key, label, kind, ms, note);
    log(`  ${label.padEnd(44)} ${fmtS(ms).padStart(9)}${extra ? `   ${extra}` : ''}`);
    return json;
  };

  for (const t of ingestThreads) {
    const label = `velo store ingest, empty store${t ? ` (VELO_THREADS=${t})` : ''}`;
    sample(`ingest-cold-${t}`, label, 'ingest', () => {
      const r = timed(process.execPath, [velo, 'store', 'ingest', src, '--json'], { VELO_HOME: join(out, `store-cold-${t || 'default'}-${round}`), ...(t ? { VELO_THREADS: t } : {}) });
      if (r.json.tree !== treeDigest) throw new Error(`ingest gave tree ${r.json.tree}, expected ${treeDigest}`);
      return { ...r, note: r.json.threads ? `${r.json.threads} worker threads` : 'on the calling thread', extra: `${fmtInt(tree.files / (r.ms / 1000))} files/s, ${(tree.bytes / 1e6 / (r.ms / 1000)).toFixed(0)} MB/s, in-process ${r.json.ms} ms, ${r.json.newObjects} new objects, threads ${r.json.threads}` };
    });
  }
  sample('ingest-warm', 'velo store ingest, warm store (all objects there)', 'ingest', () => {
    const r = timed(process.execPath, [velo, 'store', 'ingest', src, '--json'], { VELO_HOME: warmHome });
    if (r.json.newObjects !== 0) throw new Error('warm ingest created objects');
    return { ...r, extra: `${fmtInt(tree.files / (r.ms / 1000))} files/s, in-process ${r.json.ms} ms` };
  });

  sample('cp-al', 'cp -al', 'cp-al', () => timed('cp', ['-al', src, join(out, `cp-al-${round}`)]));
  for (const method of ['hardlink', 'auto', 'copy']) {
    for (const engine of ['native', 'js']) {
      const kind = method === 'copy' ? 'copy' : 'link';
      if (method === 'copy' && engine === 'native') sample('cp-a', 'cp -a', 'cp-a', () => timed('cp', ['-a', src, join(out, `cp-a-${round}`)]));
      sample(`${method}-${engine}`, `velo store materialize --method ${method}${engine === 'js' ? ' (VELO_NO_NATIVE=1)' : ''}`, kind, () => {
        const dest = join(out, `${method}-${engine}-${round}`, 'node_modules');
        const r = timed(process.execPath, [velo, 'store', 'materialize', treeDigest, dest, '--method', method, '--json'], {
          VELO_HOME: warmHome,
          ...(engine === 'js' ? { VELO_NO_NATIVE: '1' } : {}),
        });
        const note = `→ ${r.json.method}, ${r.json.engine} engine${r.json.fallbacks ? `, ${r.json.fallbacks} fallbacks` : ''}`;
        return { ...r, note, extra: `${note}, in-process ${r.json.ms} ms` };
      });
    }
  }
}
const loadEnd = loadavg();

// ---- results --------------------------------------------------------------
const med = (key) => (rows.has(key) ? median(rows.get(key).ms) : NaN);
const baseline = { link: 'cp-al', copy: 'cp-a', ingest: 'cp-a' };
const lines = [];
lines.push('| operation | median | samples | files/s | MB/s | ratio |');
lines.push('|---|---:|---|---:|---:|---:|');
for (const [key, row] of rows) {
  const m = median(row.ms);
  const base = baseline[row.kind];
  const ratio = base ? `${(m / med(base)).toFixed(2)}× ${base === 'cp-al' ? '`cp -al`' : '`cp -a`'}` : '—';
  const notes = row.notes.size ? ` (${[...row.notes].join('; ')})` : '';
  const label = row.label.startsWith('cp') ? `\`${row.label}\`` : row.label;
  lines.push(
    `| ${label}${notes} | ${fmtS(m)} | ${row.ms.map((x) => (x / 1000).toFixed(2)).join(', ')} | ${fmtInt(tree.files / (m / 1000))} | ${(tree.bytes / 1e6 / (m / 1000)).toFixed(0)} | ${ratio} |`,
  );
}
const table = lines.join('\n');
log('\n' + table + '\n');

const cpuModel = cpus()[0]?.model ?? 'unknown CPU';
/** The filesystem under `dir` from /proc/mounts (stat -f says "ext2/ext3" for ext4), and whether ext4 has a journal. */
function describeFs(dir) {
  try {
    let best = { point: '', type: 'unknown', dev: '' };
    for (const line of readFileSync('/proc/mounts', 'utf8').split('\n')) {
      const [dev, point, type] = line.split(' ');
      if (point && (dir === point || dir.startsWith(point.endsWith('/') ? point : point + '/')) && point.length >= best.point.length) best = { point, type, dev };
    }
    if (best.type === 'ext4') {
      const name = best.dev.replace(/^\/dev\//, '');
      const journal = existsSync('/proc/fs/jbd2') && readdirSync('/proc/fs/jbd2').some((j) => j.startsWith(name + '-'));
      return `ext4 (${journal ? 'with' : 'without'} a journal)`;
    }
    return best.type;
  } catch {
    return 'unknown';
  }
}
const fsType = describeFs(work);
const section = [
  `Command: \`${commandLine}\``,
  '',
  `Run ${started.toISOString().slice(0, 16).replace('T', ' ')} UTC on ${availableParallelism()} × ${cpuModel}, Linux ${release()}, ${fsType} at ${work}, ` +
    `Node ${process.versions.node}; ${runs} interleaved rounds, median shown; page cache ${opt['drop-caches'] ? 'dropped before every sample' : 'warm'}; ` +
    `load average ${loadStart[0].toFixed(1)} at the start and ${loadEnd[0].toFixed(1)} at the end (a shared machine: read the ratios, not the absolute times).`,
  '',
  `Tree: ${fmtInt(tree.files)} files (${fmtInt(tree.files - prep.newObjects)} of them duplicates of another file's bytes), ${fmtInt(tree.dirs)} directories, ` +
    `${tree.symlinks} symlinks, ${(tree.bytes / 1e6).toFixed(0)} MB (seed ${treeOptions.seed}). Times are wall-clock for the whole command, Node start-up included.`,
  '',
  table,
].join('\n');

if (!opt['no-write']) {
  const docs = join(repo, 'docs', 'BENCHMARKS.md');
  const BEGIN = '<!-- BEGIN store-bench results: written by bench/store-bench.mjs -->';
  const END = '<!-- END store-bench results -->';
  let text = existsSync(docs) ? readFileSync(docs, 'utf8') : '';
  if (!text.includes(BEGIN) || !text.includes(END)) {
    throw new Error(`${docs} has no ${BEGIN} … ${END} block; not writing (use --no-write)`);
  }
  text = text.slice(0, text.indexOf(BEGIN) + BEGIN.length) + '\n' + section + '\n' + text.slice(text.indexOf(END));
  writeFileSync(docs, text);
  log(`results written to ${docs}`);
}

if (!opt.keep) {
  log(`removing ${out}`);
  rmSync(out, { recursive: true, force: true });
} else log(`kept ${out}`);
