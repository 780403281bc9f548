#!/usr/bin/env node
// velo cargo build on a real crate with 100+ dependencies (tokei 15.0.0 from
// crates.io: 131 crates compiled besides itself on Linux), in one run:
//   - cold `cargo build` in fresh clones (empty target, CARGO_HOME warm),
//   - `velo cargo build` in a fresh clone with an empty store (makes the snapshot),
//   - `velo cargo build` in fresh clones with the snapshot in the store,
//   - a no-change rebuild: `cargo build` / `velo cargo build` again in a built clone,
//   - disk used by three clones' target dirs with and without velo: copy
//     projection (ext4 has no reflink) and mount projection (velo cargo build
//     --projection mount: a FUSE view of the snapshot under a writable overlay;
//     disk = the three overlays' upper dirs + the store objects their trees use).
// Two projects ("variants"), each cloned by copying its sources (new mtimes,
// like a git clone) to another path:
//   app    — a small binary crate that uses tokei's library: tokei and its
//            131 dependencies are registry crates, the app is the only path crate;
//   source — tokei 15.0.0's own published package (its .crate from crates.io,
//            with the Cargo.lock it ships) built as the project itself.
// Both lockfiles derive from the Cargo.lock tokei ships, so every clone and
// every run resolves the same versions. Downloads (`cargo fetch`) happen
// first and are not timed; timed builds run with CARGO_NET_OFFLINE=true.
// A third variant, `fixture` (not in the default list: tiny and offline), measures lean
// snapshots on the test fixture (fixtures/cargo: 8 path crates with a build script and a
// proc macro, two registry crates served from a directory source): three dependency bumps
// in one clone, then a new clone restored vs plain cargo's target for the same Cargo.lock
// (bytes, rustc's incremental/ left out of both), and profile switches
// debug → release → debug → release (units compiled, wall time) with velo and with cargo.
// Usage: node bench/cargo-bench.mjs [--runs N] [--cold-runs M] [--variants app,source,fixture] [--work DIR]
// (root, for the mount projection's overlay)
import { execFileSync, spawnSync } from 'node:child_process';
import { closeSync, cpSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const repo = join(dirname(fileURLToPath(import.meta.url)), '..');
const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: '5' },
    'cold-runs': { type: 'string', default: '3' },
    variants: { type: 'string', default: 'app,source' },
    work: { type: 'string' },
  },
});
const RUNS = Number(values.runs);
const COLD_RUNS = Number(values['cold-runs']);
const VARIANTS = values.variants.split(',').filter(Boolean);
const WORK = values.work ?? join(repo, 'bench', 'work', 'cargo');
const VELO = join(repo, 'dist', 'cli', 'velo.js');
const RESULTS = join(dirname(WORK), `${basename(WORK)}-results.json`);
const CRATE = { name: 'tokei', version: '15.0.0' };
if (!existsSync(VELO)) throw new Error(`build velo first (npx tsc -p tsconfig.json): ${VELO} is missing`);
if (COLD_RUNS < 3 && COLD_RUNS !== 0) console.warn('note: fewer than 3 cold runs: the disk comparison needs three cargo-built clones');

// cargo and velo see only what changes nothing they build
const SCRUB = /^(CARGO_TARGET_DIR|CARGO_BUILD_.*|CARGO_PROFILE_.*|CARGO_ENCODED_RUSTFLAGS|RUSTFLAGS|RUSTC|RUSTC_WRAPPER|RUSTC_WORKSPACE_WRAPPER|CARGO_INCREMENTAL|CARGO|VELO_.*)$/;
const baseEnv = {};
for (const [k, v] of Object.entries(process.env)) if (!SCRUB.test(k)) baseEnv[k] = v;
Object.assign(baseEnv, { CARGO_TERM_COLOR: 'never', CI: '1' });
const offlineEnv = { ...baseEnv, CARGO_NET_OFFLINE: 'true' };

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const fmt = (ms) => (ms >= 10_000 ? `${(ms / 1000).toFixed(1)} s` : ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${ms.toFixed(0)} ms`);
const mb = (b) => `${(b / 1e6).toFixed(0)} MB`;
const load = () => loadavg().map((x) => x.toFixed(2)).join(' ');

function sh(cmd, args, opts = {}) {
  return execFileSync(cmd, args, { encoding: 'utf8', env: baseEnv, maxBuffer: 64 * 1024 * 1024, ...opts });
}

/** Run a command with stdout/stderr to log files; its wall time, and its output read back. */
let logSeq = 0;
function timed(label, cmd, args, cwd, env) {
  const logs = join(WORK, 'logs');
  mkdirSync(logs, { recursive: true });
  const base = join(logs, `${String(++logSeq).padStart(3, '0')}-${label.replace(/[^a-z0-9]+/gi, '_')}`);
  const out = openSync(`${base}.out`, 'w');
  const err = openSync(`${base}.err`, 'w');
  const t0 = performance.now();
  const r = spawnSync(cmd, args, { cwd, env, stdio: ['ignore', out, err] });
  const ms = performance.now() - t0;
  closeSync(out);
  closeSync(err);
  const stdout = readFileSync(`${base}.out`, 'utf8');
  const stderr = readFileSync(`${base}.err`, 'utf8');
  if (r.status !== 0) throw new Error(`${label}: ${cmd} ${args.join(' ')} in ${cwd} failed (${r.status ?? r.signal}); see ${base}.err\n${stderr.slice(-3000)}`);
  return { ms, stdout, stderr, units: units(stdout) };
}

/** compiler-artifact messages of --message-format=json: how many units, how many cargo took as fresh, which it rebuilt. */
function units(stdout) {
  let total = 0;
  let fresh = 0;
  const rebuilt = [];
  let scriptsRun = 0;
  for (const line of stdout.split('\n')) {
    if (!line.startsWith('{')) continue;
    const m = JSON.parse(line);
    if (m.reason === 'compiler-artifact') {
      total++;
      if (m.fresh) fresh++;
      else rebuilt.push(`${m.target.name}(${m.target.kind.join(',')})`);
    } else if (m.reason === 'build-script-executed') scriptsRun++;
  }
  return { total, fresh, rebuilt, buildScriptsReported: scriptsRun };
}

/** velo's own lines on stderr: restore and store times. */
function veloLines(stderr) {
  return stderr.split('\n').filter((l) => l.startsWith('velo:'));
}
function veloSeconds(stderr, word) {
  const l = veloLines(stderr).find((x) => x.startsWith(`velo: ${word} `));
  const m = l && /\) in ([\d.]+) (ms|s)\b/.exec(l);
  return m ? Number(m[1]) * (m[2] === 's' ? 1000 : 1) : undefined;
}

function duBytes(paths) {
  // one du for all paths: a file hardlinked into several of them is counted once
  const out = sh('du', ['-sbc', ...paths]);
  const lines = out.trim().split('\n');
  const per = {};
  for (const l of lines.slice(0, -1)) {
    const [n, p] = l.split('\t');
    per[p] = Number(n);
  }
  return { total: Number(lines.at(-1).split('\t')[0]), per };
}

function isMountPoint(path) {
  const mounts = readFileSync('/proc/self/mountinfo', 'utf8').split('\n').map((l) => l.split(' ')[4]);
  return mounts.includes(path);
}

const dist = (p) => join(repo, 'dist', p);
const { Store } = await import(dist('src/store/store.js'));
const { readTree } = await import(dist('src/store/trees.js'));
const mountApi = await import(dist('src/mount/mount.js'));

/** velo's mounts under dir (a previous run's, or this one's), taken down so the clones can be deleted */
async function unmountUnder(dir) {
  const points = readFileSync('/proc/self/mountinfo', 'utf8').split('\n').map((l) => l.split(' ')).filter((f) => f[4]?.startsWith(dir + '/'));
  for (const f of points.reverse()) {
    const dash = f.indexOf('-', 6);
    if (f[dash + 1] === 'overlay' && f[dash + 2] === 'velo') await mountApi.unmountProjection(f[4]).catch((e) => console.warn(`  note: ${e.message}`));
  }
}

/** The store's share of some mounted trees: bytes of the distinct objects they use (apparent, as du -b counts). */
function storeShare(home, trees) {
  const store = Store.open(home);
  try {
    const seen = new Map();
    let incremental = new Set();
    for (const t of trees) {
      for (const e of readTree(store, t).entries) {
        if (e.kind !== 'file') continue;
        const id = e.digest + (e.exec ? 'x' : '');
        seen.set(id, e.size);
        if (/(^|\/)incremental\//.test(e.path)) incremental.add(id);
      }
    }
    let bytes = 0;
    let incrementalBytes = 0;
    for (const [id, size] of seen) {
      bytes += size;
      if (incremental.has(id)) incrementalBytes += size;
    }
    return { objects: seen.size, bytes, incrementalBytes };
  } finally {
    store.close();
  }
}

function mountsOf(home) {
  const store = Store.open(home);
  try {
    return mountApi.listMounts(store);
  } finally {
    store.close();
  }
}

// --- sources --------------------------------------------------------------------
function registryCrateFile() {
  const cache = join(baseEnv.CARGO_HOME ?? join(process.env.HOME, '.cargo'), 'registry', 'cache');
  for (const d of existsSync(cache) ? readdirSync(cache) : []) {
    const f = join(cache, d, `${CRATE.name}-${CRATE.version}.crate`);
    if (existsSync(f)) return f;
  }
  return undefined;
}

const APP_TOML = `[package]
name = "tokei-app"
version = "0.1.0"
edition = "2021"
publish = false

[dependencies]
tokei = "=${CRATE.version}"
`;
const APP_MAIN = `// Count the lines of code under the given directories with tokei's library.
use tokei::{Config, Languages};

fn main() {
    let paths: Vec<String> = std::env::args().skip(1).collect();
    let paths = if paths.is_empty() { vec![".".to_string()] } else { paths };
    let mut languages = Languages::new();
    languages.get_statistics(&paths, &[], &Config::default());
    for (kind, language) in languages.iter() {
        if !language.is_empty() {
            println!("{:<16} {:>8} files {:>10} code", kind.name(), language.reports.len(), language.code);
        }
    }
}
`;

/** The pristine project of a variant at WORK/<variant>/src, with its Cargo.lock, and its crates fetched. */
function prepareSource(variant) {
  const dir = join(WORK, variant, 'src');
  const marker = join(WORK, variant, 'src.ready');
  if (existsSync(marker) && existsSync(join(dir, 'Cargo.lock'))) return dir;
  rmSync(join(WORK, variant), { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  // tokei's .crate in the cargo cache: a throwaway project that depends on it downloads it
  if (!registryCrateFile()) {
    const seed = join(WORK, 'seed');
    rmSync(seed, { recursive: true, force: true });
    mkdirSync(join(seed, 'src'), { recursive: true });
    writeFileSync(join(seed, 'Cargo.toml'), APP_TOML.replace('tokei-app', 'tokei-seed'));
    writeFileSync(join(seed, 'src', 'main.rs'), 'fn main() {}\n');
    sh('cargo', ['fetch'], { cwd: seed, stdio: ['ignore', 'ignore', 'inherit'] });
    rmSync(seed, { recursive: true, force: true });
  }
  const crateFile = registryCrateFile();
  if (!crateFile) throw new Error(`${CRATE.name}-${CRATE.version}.crate is not in the cargo cache after cargo fetch`);
  const unpacked = join(WORK, variant, 'unpacked');
  mkdirSync(unpacked, { recursive: true });
  sh('tar', ['xzf', crateFile, '-C', unpacked]);
  const pkg = join(unpacked, `${CRATE.name}-${CRATE.version}`);
  if (variant === 'source') {
    cpSync(pkg, dir, { recursive: true });
  } else if (variant === 'app') {
    writeFileSync(join(dir, 'Cargo.toml'), APP_TOML);
    mkdirSync(join(dir, 'src'));
    writeFileSync(join(dir, 'src', 'main.rs'), APP_MAIN);
    // start from tokei's own lockfile: cargo adds the app and drops what it does not use,
    // keeping every locked version
    cpSync(join(pkg, 'Cargo.lock'), join(dir, 'Cargo.lock'));
    sh('cargo', ['metadata', '--format-version', '1'], { cwd: dir, stdio: ['ignore', 'ignore', 'inherit'] });
  } else throw new Error(`unknown variant ${variant} (app, source)`);
  rmSync(unpacked, { recursive: true, force: true });
  sh('cargo', ['fetch', '--locked'], { cwd: dir, stdio: ['ignore', 'ignore', 'inherit'] });
  writeFileSync(marker, new Date().toISOString() + '\n');
  return dir;
}

function clone(src, dest) {
  rmSync(dest, { recursive: true, force: true });
  cpSync(src, dest, { recursive: true, filter: (p) => p !== join(src, 'target') }); // new mtimes, like a checkout
  return dest;
}

function countCompiled(dir) {
  const out = sh('cargo', ['tree', '--locked', '--offline', '--prefix', 'none', '-e', 'normal,build'], { cwd: dir });
  return new Set(out.split('\n').filter(Boolean).map((l) => l.replace(/ \(\*\)$/, '').replace(/ \(proc-macro\)/, ''))).size;
}

// --- one variant ------------------------------------------------------------------
async function benchVariant(variant) {
  const src = prepareSource(variant);
  const vdir = join(WORK, variant);
  await unmountUnder(vdir);
  const home = join(vdir, 'velo-home');
  const veloEnv = { ...offlineEnv, VELO_HOME: home };
  const build = ['build', '--locked', '--message-format=json'];
  const cargoCmd = `cargo ${build.join(' ')}`;
  const veloCmd = `velo cargo ${build.join(' ')}`;
  const r = {
    variant,
    packagesInLock: (readFileSync(join(src, 'Cargo.lock'), 'utf8').match(/^\[\[package\]\]$/gm) ?? []).length,
    cratesCompiled: countCompiled(src),
    commands: { cargo: cargoCmd, velo: veloCmd },
    load: { start: load() },
    timings: {},
  };
  console.log(`\n== ${variant}: ${r.cratesCompiled} crates compiled (${r.packagesInLock} packages in Cargo.lock); load ${r.load.start}`);
  const report = (label, xs, extra = '') =>
    console.log(`${label.padEnd(62)} median ${fmt(median(xs)).padStart(8)}  [${xs.map(fmt).join(', ')}]${extra}`);

  // cold cargo build, fresh clones
  const cold = [];
  let coldUnits;
  for (let i = 1; i <= COLD_RUNS; i++) {
    const c = clone(src, join(vdir, `cold-${i}`));
    const t = timed(`${variant}-cold-${i}`, 'cargo', build, c, offlineEnv);
    cold.push(t.ms);
    coldUnits = t.units;
    if (i > 3) rmSync(c, { recursive: true, force: true });
  }
  r.timings.cold = { label: `${cargoCmd}, fresh clone, empty target (CARGO_HOME warm)`, median: median(cold), samples: cold, units: coldUnits };
  report('cold cargo build', cold, `  (${coldUnits.total} units)`);
  r.load.afterCold = load();

  // velo with an empty store: the first clone builds and stores the snapshot
  rmSync(home, { recursive: true, force: true });
  const seed = clone(src, join(vdir, 'velo-0'));
  const first = timed(`${variant}-velo-empty-store`, process.execPath, [VELO, 'cargo', ...build], seed, veloEnv);
  r.timings.veloEmptyStore = { label: `${veloCmd}, fresh clone, empty store (builds, then stores the snapshot)`, ms: first.ms, storeMs: veloSeconds(first.stderr, 'stored'), velo: veloLines(first.stderr) };
  report('velo cargo build, empty store', [first.ms], `  (store ${fmt(r.timings.veloEmptyStore.storeMs ?? NaN)})`);

  // velo with the snapshot in the store: fresh clones
  const restored = [];
  const restoreMs = [];
  const storeAfter = [];
  let lastUnits;
  const rebuiltSeen = new Set();
  for (let i = 1; i <= RUNS; i++) {
    const c = clone(src, join(vdir, `velo-${i}`));
    const t = timed(`${variant}-velo-restored-${i}`, process.execPath, [VELO, 'cargo', ...build], c, veloEnv);
    restored.push(t.ms);
    restoreMs.push(veloSeconds(t.stderr, 'restored') ?? NaN);
    storeAfter.push(veloSeconds(t.stderr, 'stored') ?? 0);
    lastUnits = t.units;
    for (const u of t.units.rebuilt) rebuiltSeen.add(u);
    if (!veloLines(t.stderr).some((l) => l.startsWith('velo: restored '))) throw new Error(`velo did not restore in ${c}:\n${t.stderr.slice(-2000)}`);
    if (i > 2) rmSync(c, { recursive: true, force: true });
    r.timings.veloLines = veloLines(t.stderr);
  }
  r.timings.restored = {
    label: `${veloCmd}, fresh clone, snapshot in the store`,
    median: median(restored),
    samples: restored,
    restoreMedian: median(restoreMs),
    restoreSamples: restoreMs,
    storeAfterMedian: median(storeAfter),
    storeAfterSamples: storeAfter,
    units: lastUnits,
    rebuiltAcrossRuns: [...rebuiltSeen],
  };
  report('velo cargo build, fresh clone, snapshot in store', restored,
    `  (restore ${fmt(median(restoreMs))}, store after ${fmt(median(storeAfter))}; ${lastUnits.fresh}/${lastUnits.total} units fresh; rebuilt: ${[...rebuiltSeen].join(' ') || 'none'})`);
  r.ratioColdOverRestored = median(cold) / median(restored);
  console.log(`  cold / restored: ${r.ratioColdOverRestored.toFixed(1)}x (target: at least 10x)`);
  r.load.afterRestored = load();

  // no-change rebuild in a built clone
  const noCargo = [];
  const noVelo = [];
  const cold1 = join(vdir, 'cold-1');
  const velo1 = join(vdir, 'velo-1');
  let noVeloUnits;
  for (let i = 1; i <= RUNS; i++) {
    noCargo.push(timed(`${variant}-noop-cargo-${i}`, 'cargo', build, cold1, offlineEnv).ms);
    const t = timed(`${variant}-noop-velo-${i}`, process.execPath, [VELO, 'cargo', ...build], velo1, veloEnv);
    noVelo.push(t.ms);
    noVeloUnits = t.units;
    if (veloLines(t.stderr).length > 0) console.log(`  note: velo said on a no-change rebuild: ${veloLines(t.stderr).join(' | ')}`);
  }
  r.timings.noopCargo = { label: `${cargoCmd} again in a built clone`, median: median(noCargo), samples: noCargo };
  r.timings.noopVelo = { label: `${veloCmd} again in a built (restored) clone`, median: median(noVelo), samples: noVelo, units: noVeloUnits };
  report('no-change rebuild: cargo build', noCargo);
  report('no-change rebuild: velo cargo build', noVelo, `  (${noVeloUnits.fresh}/${noVeloUnits.total} units fresh)`);

  // disk: three clones' target dirs
  const cargoTargets = [1, 2, 3].map((i) => join(vdir, `cold-${i}`, 'target')).filter((p) => existsSync(p));
  const veloTargets = [0, 1, 2].map((i) => join(vdir, `velo-${i}`, 'target')).filter((p) => existsSync(p));
  const withoutVelo = duBytes(cargoTargets);
  const withVelo = duBytes([...veloTargets, join(home, 'objects')]);
  const store = duBytes([home]);
  const incremental = duBytes(cargoTargets.map((t) => join(t, 'debug', 'incremental')).filter((p) => existsSync(p)));
  const oneTarget = withoutVelo.per[cargoTargets[0]];
  r.disk = {
    method: 'copy (ext4: no reflink; velo never hardlinks target files)',
    cargoTargets: withoutVelo,
    veloTargetsPlusObjects: withVelo,
    storeTotal: store.total,
    incrementalInCargoTargets: incremental.total,
    oneTarget,
    ratioWithoutVelo: withoutVelo.total / oneTarget,
    ratioWithVelo: withVelo.total / oneTarget,
  };
  console.log(`disk, three clones' targets without velo: ${mb(withoutVelo.total)} (${r.disk.ratioWithoutVelo.toFixed(2)}x one target of ${mb(oneTarget)})`);
  console.log(`disk, three clones' targets with velo + store objects: ${mb(withVelo.total)} (${r.disk.ratioWithVelo.toFixed(2)}x; objects ${mb(withVelo.per[join(home, 'objects')])}, whole store ${mb(store.total)}) — copy projection, ext4 has no reflink`);

  // mount projection: three more fresh clones restored by mount from the same store
  r.mount = benchMount(variant, src, vdir, home, veloEnv, build, oneTarget);
  await unmountUnder(vdir);
  r.load.end = load();
  return r;
}

// --- mount projection ---------------------------------------------------------------------
function benchMount(variant, src, vdir, home, veloEnv, build, oneTarget) {
  const report = (label, xs, extra = '') =>
    console.log(`${label.padEnd(62)} median ${fmt(median(xs)).padStart(8)}  [${xs.map(fmt).join(', ')}]${extra}`);
  const args = [VELO, 'cargo', ...build, '--projection', 'mount'];
  const clones = [1, 2, 3].map((i) => join(vdir, `mount-${i}`));
  const restored = [];
  const restoreMs = [];
  const storeAfter = [];
  const rebuiltSeen = new Set();
  let lastUnits;
  let lines = [];
  for (const c of clones) {
    clone(src, c);
    const t = timed(`${variant}-velo-mount-${basename(c)}`, process.execPath, args, c, veloEnv);
    lines = veloLines(t.stderr);
    if (!lines.some((l) => /^velo: restored .* mount\) in /.test(l)) || !isMountPoint(join(c, 'target'))) {
      throw new Error(`velo did not restore ${c}/target by mount:\n${t.stderr.slice(-2000)}`);
    }
    restored.push(t.ms);
    restoreMs.push(veloSeconds(t.stderr, 'restored') ?? NaN);
    storeAfter.push(veloSeconds(t.stderr, 'stored') ?? 0);
    lastUnits = t.units;
    for (const u of t.units.rebuilt) rebuiltSeen.add(u);
  }
  const m = {
    label: `node dist/cli/velo.js ${args.slice(1).join(' ')}, fresh clone, snapshot in the store`,
    median: median(restored),
    samples: restored,
    restoreMedian: median(restoreMs),
    restoreSamples: restoreMs,
    storeAfterSamples: storeAfter,
    units: lastUnits,
    rebuiltAcrossRuns: [...rebuiltSeen],
    veloLines: lines,
  };
  report('velo cargo build --projection mount, fresh clone', restored,
    `  (restore ${fmt(median(restoreMs))}, store after ${storeAfter.map(fmt).join('/')}; ${lastUnits.fresh}/${lastUnits.total} units fresh; rebuilt: ${[...rebuiltSeen].join(' ') || 'none'})`);

  // no-change rebuilds in a mounted clone: velo, and cargo alone on the same mount
  const noVelo = [];
  const noCargo = [];
  for (let i = 1; i <= RUNS; i++) {
    noCargo.push(timed(`${variant}-mount-noop-cargo-${i}`, 'cargo', build, clones[0], offlineEnv).ms);
    noVelo.push(timed(`${variant}-mount-noop-velo-${i}`, process.execPath, args, clones[0], veloEnv).ms);
  }
  m.noopCargo = { median: median(noCargo), samples: noCargo };
  m.noopVelo = { median: median(noVelo), samples: noVelo };
  report('no-change rebuild in a mounted clone: cargo build', noCargo);
  report('no-change rebuild in a mounted clone: velo cargo build', noVelo);

  // disk: what the three mounts cost = their upper dirs + the store objects their trees use
  const mine = mountsOf(home).filter((x) => clones.some((c) => x.dest === join(c, 'target')));
  if (mine.length !== 3 || mine.some((x) => x.state !== 'mounted' || !x.upper)) throw new Error(`expected three healthy overlay mounts, got ${JSON.stringify(mine)}`);
  const uppers = duBytes(mine.map((x) => x.upper));
  const share = storeShare(home, mine.map((x) => x.tree));
  const objectsDir = duBytes([join(home, 'objects')]).total;
  m.disk = {
    oneTarget,
    uppers: uppers.total,
    upperPer: mine.map((x) => ({ dest: x.dest, bytes: uppers.per[x.upper], files: x.upperSummary.files })),
    storeShare: share.bytes,
    storeShareObjects: share.objects,
    storeShareIncremental: share.incrementalBytes,
    objectsDirTotal: objectsDir,
    total: uppers.total + share.bytes,
    ratio: (uppers.total + share.bytes) / oneTarget,
  };
  console.log(`disk, three mounted clones: upper dirs ${mb(uppers.total)} [${m.disk.upperPer.map((u) => mb(u.bytes)).join(', ')}] + store share ${mb(share.bytes)}` +
    ` (${share.objects} objects, of which incremental/ ${mb(share.incrementalBytes)}) = ${mb(m.disk.total)}: ${m.disk.ratio.toFixed(2)}x one target of ${mb(oneTarget)}` +
    ` (target: under 1.3x); the whole objects/ dir (every snapshot of this run) ${mb(objectsDir)}`);
  return m;
}

// --- fixture: lean snapshots after dependency bumps, profile switches -----------------------
const FIXTURE = join(repo, 'fixtures', 'cargo');
const BUMPS = [
  ['tinyhash', '0.3.1', '0.3.2'],
  ['tinyfmt', '1.2.0', '1.2.1'],
  ['tinyhash', '0.3.2', '0.3.3'],
];

function bumpLock(dir, [name, from, to]) {
  const lock = join(dir, 'Cargo.lock');
  const text = readFileSync(lock, 'utf8');
  const before = `name = "${name}"\nversion = "${from}"`;
  if (!text.includes(before)) throw new Error(`${lock} has no ${name} ${from}`);
  writeFileSync(lock, text.replace(before, `name = "${name}"\nversion = "${to}"`));
}

/** Bytes of the files under dir, incremental/ left out (velo never stores it). */
function bytesWithoutIncremental(dir) {
  let total = 0;
  for (const d of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, d.name);
    if (d.isDirectory()) total += d.name === 'incremental' ? 0 : bytesWithoutIncremental(p);
    else if (d.isFile()) total += statSync(p).size;
  }
  return total;
}

function compiledUnits(stderr) {
  return (stderr.match(/^\s+Compiling /gm) ?? []).length;
}

async function benchFixture() {
  const vdir = join(WORK, 'fixture');
  await unmountUnder(vdir);
  rmSync(vdir, { recursive: true, force: true });
  mkdirSync(join(vdir, '.cargo'), { recursive: true });
  cpSync(join(FIXTURE, 'registry'), join(vdir, 'registry'), { recursive: true });
  writeFileSync(join(vdir, '.cargo', 'config.toml'),
    `[source.crates-io]\nreplace-with = "velo-fixture-registry"\n\n[source.velo-fixture-registry]\ndirectory = ${JSON.stringify(join(vdir, 'registry'))}\n`);
  const home = join(vdir, 'velo-home');
  const env = { ...offlineEnv, CARGO_BUILD_JOBS: '2' };
  const veloEnv = { ...env, VELO_HOME: home };
  const src = join(FIXTURE, 'workspace');
  const r = { variant: 'fixture', load: { start: load() }, bumps: BUMPS.map(([n, f, t]) => `${n} ${f} -> ${t}`) };
  console.log(`\n== fixture: lean snapshots and profile switches; load ${r.load.start}`);

  // one clone builds, then takes three dependency bumps, velo storing after each
  const a = clone(src, join(vdir, 'a'));
  timed('fixture-a-build', process.execPath, [VELO, 'cargo', 'build'], a, veloEnv);
  const stores = [];
  for (const b of BUMPS) {
    bumpLock(a, b);
    const t = timed(`fixture-a-bump-${b[0]}-${b[2]}`, process.execPath, [VELO, 'cargo', 'build'], a, veloEnv);
    stores.push(veloLines(t.stderr).find((l) => l.startsWith('velo: stored')) ?? '');
  }
  // new clones with the final Cargo.lock: velo restores, plain cargo builds
  const restored = [];
  let restoredBytes = 0;
  let freshUnits = '';
  for (let i = 1; i <= RUNS; i++) {
    const c = clone(src, join(vdir, `velo-${i}`));
    for (const b of BUMPS) bumpLock(c, b);
    const t = timed(`fixture-velo-restored-${i}`, process.execPath, [VELO, 'cargo', 'build', '--message-format=json'], c, veloEnv);
    if (!veloLines(t.stderr).some((l) => l.startsWith('velo: restored '))) throw new Error(`velo did not restore in ${c}:\n${t.stderr.slice(-2000)}`);
    restored.push(t.ms);
    restoredBytes = bytesWithoutIncremental(join(c, 'target'));
    freshUnits = `${t.units.fresh}/${t.units.total}`;
  }
  const cold = [];
  let cargoBytes = 0;
  for (let i = 1; i <= Math.max(1, COLD_RUNS); i++) {
    const c = clone(src, join(vdir, `cargo-${i}`));
    for (const b of BUMPS) bumpLock(c, b);
    cold.push(timed(`fixture-cargo-cold-${i}`, 'cargo', ['build', '--message-format=json'], c, env).ms);
    cargoBytes = bytesWithoutIncremental(join(c, 'target'));
  }
  const builderBytes = bytesWithoutIncremental(join(a, 'target'));
  r.lean = {
    builderTargetBytes: builderBytes,
    restoredTargetBytes: restoredBytes,
    cargoTargetBytes: cargoBytes,
    ratioRestoredOverCargo: restoredBytes / cargoBytes,
    ratioBuilderOverCargo: builderBytes / cargoBytes,
    restoredMs: { median: median(restored), samples: restored, freshUnits },
    coldCargoMs: { median: median(cold), samples: cold },
    stores,
  };
  console.log(`after ${BUMPS.length} bumps: plain cargo's target ${mb(cargoBytes)}; velo-restored ${mb(restoredBytes)} (${r.lean.ratioRestoredOverCargo.toFixed(2)}x; target ≤ 1.2x);` +
    ` the clone that built every version ${mb(builderBytes)} (${r.lean.ratioBuilderOverCargo.toFixed(2)}x: what a snapshot held before)`);
  console.log(`  velo cargo build, new clone, restored: median ${fmt(median(restored))} [${restored.map(fmt).join(', ')}] (${freshUnits} units fresh); cold cargo build ${fmt(median(cold))} [${cold.map(fmt).join(', ')}]`);

  // profile switches: debug → release → debug → release, velo and plain cargo in clones of their own
  const steps = [['build', '-v'], ['build', '-v', '--release'], ['build', '-v'], ['build', '-v', '--release']];
  r.profiles = {};
  for (const tool of ['velo', 'cargo']) {
    const c = clone(src, join(vdir, `profiles-${tool}`));
    r.profiles[tool] = steps.map((args, i) => {
      const t = tool === 'velo'
        ? timed(`fixture-profiles-velo-${i}`, process.execPath, [VELO, 'cargo', ...args], c, veloEnv)
        : timed(`fixture-profiles-cargo-${i}`, 'cargo', args, c, env);
      return { args: args.join(' '), ms: t.ms, compiled: compiledUnits(t.stderr) };
    });
  }
  // and a new clone that restores both profiles from the store
  const q = clone(src, join(vdir, 'profiles-new-clone'));
  r.profiles.veloNewClone = [['build', '-v', '--release'], ['build', '-v'], ['build', '-v', '--release']].map((args, i) => {
    const t = timed(`fixture-profiles-new-clone-${i}`, process.execPath, [VELO, 'cargo', ...args], q, veloEnv);
    return { args: args.join(' '), ms: t.ms, compiled: compiledUnits(t.stderr) };
  });
  for (const [k, list] of Object.entries(r.profiles)) {
    console.log(`profiles, ${k}: ${list.map((s) => `${s.args.replace('build -v', '').trim() || 'debug'} ${fmt(s.ms)} (${s.compiled} compiled)`).join(' → ')}`);
  }
  r.load.end = load();
  return r;
}

// --- main -------------------------------------------------------------------------------
mkdirSync(WORK, { recursive: true });
rmSync(join(WORK, 'logs'), { recursive: true, force: true });
const results = {
  date: new Date().toISOString(),
  machine: `${cpus().length} × ${cpus()[0]?.model ?? '?'}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, ${sh('findmnt', ['-no', 'FSTYPE,SOURCE', '-T', WORK]).trim().replace(/\s+/, ' on ')}`,
  cargo: sh('cargo', ['--version']).trim(),
  rustc: sh('rustc', ['--version']).trim(),
  node: process.version,
  veloCommit: sh('git', ['rev-parse', '--short', 'HEAD'], { cwd: repo }).trim(),
  runs: RUNS,
  coldRuns: COLD_RUNS,
  crate: `${CRATE.name} ${CRATE.version}`,
  variants: [],
};
console.log(`${results.date}  ${results.machine}\n${results.cargo}; ${results.rustc}; node ${results.node}; velo ${results.veloCommit}; load ${load()}`);
for (const v of VARIANTS) {
  results.variants.push(v === 'fixture' ? await benchFixture() : await benchVariant(v));
  writeFileSync(RESULTS, JSON.stringify(results, null, 2) + '\n');
}
console.log(`\nresults: ${RESULTS}`);
