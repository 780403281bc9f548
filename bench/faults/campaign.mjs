// The fault campaign: break a store on purpose, the ways a machine does, and
// check that velo holds — every case is a PASS or a FAIL (or SKIP when the
// machine cannot stage it: no root for a tmpfs, no FUSE). It drives the real
// velo binary (dist/bundle/start.cjs, else dist/cli/velo.js) on stores of
// its own under a temporary directory; nothing needs the network.
// bench/faults/run.mjs runs it from a shell; test/faults.campaign.test.ts
// runs the short version in CI.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, statfsSync, truncateSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { prng } from '../lib/syntheticTree.mjs';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
// what ships (the bundle) when it is built, else tsc's output
const VELO = [join(ROOT, 'dist', 'bundle', 'start.cjs'), join(ROOT, 'dist', 'cli', 'velo.js')].find((p) => existsSync(p)) ?? join(ROOT, 'dist', 'cli', 'velo.js');

function velo(args, home, extraEnv = {}) {
  const r = spawnSync(process.execPath, [VELO, ...args], { env: { ...process.env, CI: '1', VELO_HOME: home, ...extraEnv }, encoding: 'utf8', timeout: 300_000 });
  return { code: r.status ?? -1, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
}

function veloChild(args, home) {
  return spawn(process.execPath, [VELO, ...args], { env: { ...process.env, CI: '1', VELO_HOME: home, VELO_THREADS: '1' }, stdio: 'ignore' });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const exited = (child) => new Promise((r) => (child.exitCode !== null || child.signalCode !== null ? r() : child.on('close', r)));

/** A directory of n small files with content unique to tag. */
function makeSource(dir, n, tag) {
  for (let i = 0; i < n; i++) {
    const d = join(dir, `d${i % 40}`);
    mkdirSync(d, { recursive: true });
    writeFileSync(join(d, `f${i}.js`), `// ${tag} ${i}\n${'y'.repeat(i % 200)}\n`);
  }
}

/** path → content of every file under dir (the user's view of a tree). */
function listing(dir) {
  const out = {};
  for (const name of readdirSync(dir, { recursive: true })) {
    const p = join(dir, String(name));
    if (statSync(p).isFile()) out[relative(dir, p)] = readFileSync(p, 'utf8');
  }
  return out;
}

const same = (a, b) => JSON.stringify(Object.entries(a).sort()) === JSON.stringify(Object.entries(b).sort());

function ingest(home, src) {
  const r = velo(['store', 'ingest', src, '--json'], home);
  if (r.code !== 0) throw new Error(`ingest failed: ${r.stderr}`);
  return JSON.parse(r.stdout).tree;
}

function materialize(home, tree, dest, method = 'hardlink') {
  const r = velo(['store', 'materialize', tree, dest, '--method', method], home);
  if (r.code !== 0) throw new Error(`materialize failed (${r.code}): ${r.stderr}`);
}

/** verify's JSON report, and whether it exited 0 */
function verify(home, repair = false) {
  const r = velo(['verify', '--json', ...(repair ? ['--repair'] : [])], home);
  let report;
  try {
    report = JSON.parse(r.stdout);
  } catch {
    report = { problems: [{ kind: 'no-report', detail: r.stderr }] };
  }
  return { ok: r.code === 0, report };
}

class Fail extends Error {}
function check(cond, what) {
  if (!cond) throw new Fail(what);
}

// ---- cases ------------------------------------------------------------------

/** kill -9 at random points of concurrent installs (materialize) and ingests into one store. */
async function killConcurrent(ctx) {
  const home = join(ctx.dir, 'store');
  const srcA = join(ctx.dir, 'a');
  const srcB = join(ctx.dir, 'b');
  makeSource(srcA, ctx.files, 'a');
  makeSource(srcB, ctx.files, 'b');
  const trees = [ingest(home, srcA), ingest(home, srcB)];
  const want = [listing(srcA), listing(srcB)];
  for (let round = 0; round < ctx.rounds; round++) {
    const children = [];
    for (let i = 0; i < 4; i++) {
      const dest = join(ctx.dir, `p${i}`, 'node_modules');
      children.push({ dest, i, child: veloChild(['store', 'materialize', trees[(i + round) % 2], dest, '--method', i % 2 ? 'copy' : 'hardlink'], home) });
    }
    const srcC = join(ctx.dir, `c${round}`);
    makeSource(srcC, ctx.files, `c${round}`);
    const ingester = veloChild(['store', 'ingest', srcC], home);
    await sleep(Math.floor(ctx.random() * ctx.killWindowMs));
    for (const c of [...children.map((x) => x.child), ingester]) c.kill('SIGKILL');
    await Promise.all([...children.map((x) => exited(x.child)), exited(ingester)]);
    // each destination is absent, the tree of an earlier round, or the new one: never a mix
    for (const { dest } of children) {
      if (!existsSync(dest)) continue;
      const seen = listing(dest);
      check(same(seen, want[0]) || same(seen, want[1]), `round ${round}: ${dest} is neither tree after kill -9`);
    }
    const v = verify(home);
    check(v.ok, `round ${round}: verify after kill -9: ${JSON.stringify(v.report.problems).slice(0, 300)}`);
  }
  for (let i = 0; i < 4; i++) {
    const dest = join(ctx.dir, `p${i}`, 'node_modules');
    materialize(home, trees[i % 2], dest);
    check(same(listing(dest), want[i % 2]), `${dest} wrong after a clean re-run`);
  }
  return `${ctx.rounds} round(s) of 4 materializes + 1 ingest killed; every destination whole; verify clean`;
}

/** gc killed at a random point of its sweep: verify tells garbage from damage; the next gc finishes. */
async function gcKilled(ctx) {
  const home = join(ctx.dir, 'store');
  const srcA = join(ctx.dir, 'a');
  makeSource(srcA, 50, 'keep');
  const treeA = ingest(home, srcA);
  materialize(home, treeA, join(ctx.dir, 'live', 'node_modules'));
  for (let round = 0; round < ctx.rounds; round++) {
    const src = join(ctx.dir, `dead${round}`);
    makeSource(src, ctx.files * 2, `dead${round}`);
    const dead = join(ctx.dir, `gone${round}`, 'node_modules');
    materialize(home, ingest(home, src), dead);
    rmSync(join(ctx.dir, `gone${round}`), { recursive: true });
    const gc = veloChild(['gc'], home);
    await sleep(Math.floor(ctx.random() * ctx.killWindowMs));
    gc.kill('SIGKILL');
    await exited(gc);
    const v = verify(home);
    check(v.ok, `round ${round}: verify after a killed gc reports damage: ${JSON.stringify(v.report.problems).slice(0, 300)}`);
    check(same(listing(join(ctx.dir, 'live', 'node_modules')), listing(srcA)), `round ${round}: the live project changed`);
  }
  const gc = velo(['gc'], home);
  check(gc.code === 0, `the next gc failed: ${gc.stderr}`);
  const v = verify(home);
  check(v.ok && v.report.garbage.trees + v.report.garbage.keys + v.report.garbage.projects === 0, `after gc: ${JSON.stringify(v.report).slice(0, 300)}`);
  check(v.report.objects === 50, `after gc ${v.report.objects} objects are left, the live project has 50`);
  const again = join(ctx.dir, 'again', 'node_modules');
  materialize(home, treeA, again);
  check(same(listing(again), listing(srcA)), 'the live tree does not materialize whole after gc');
  return `${ctx.rounds} gc(s) killed mid-sweep; verify said garbage, not damage; the next gc finished`;
}

function indexDamage(name, damage) {
  return async (ctx) => {
    const home = join(ctx.dir, 'store');
    const src = join(ctx.dir, 'src');
    makeSource(src, 200, 'idx');
    const tree = ingest(home, src);
    const dest = join(ctx.dir, 'proj', 'node_modules');
    materialize(home, tree, dest);
    // many projects, so the index spans many pages
    const small = join(ctx.dir, 'small');
    makeSource(small, 3, 'small');
    const smallTree = ingest(home, small);
    for (let i = 0; i < ctx.projects - 1; i++) materialize(home, smallTree, join(ctx.dir, `more${i}`, 'node_modules'));
    damage(join(home, 'index.db'));
    const s = velo(['status', '--json'], home);
    check(s.code === 0, `status exits ${s.code}: ${s.stderr}`);
    const projects = JSON.parse(s.stdout).projects.map((p) => p.path);
    check(projects.includes(dest) && projects.length === ctx.projects, `status lists ${projects.length} of ${ctx.projects} projects after the damage`);
    const gc = velo(['gc', '--json'], home);
    check(gc.code === 0 && JSON.parse(gc.stdout).objectsDeleted === 0, `gc after the damage: ${gc.stdout}${gc.stderr}`);
    const v = verify(home);
    check(v.ok, `verify: ${JSON.stringify(v.report.problems).slice(0, 300)}`);
    return `${name}: all ${ctx.projects} projects still registered, gc deleted nothing, verify clean`;
  };
}

/** An object edited in place through a hardlink, size and mtime put back. */
async function objectTamper(ctx) {
  const home = join(ctx.dir, 'store');
  const src = join(ctx.dir, 'src');
  makeSource(src, 20, 'tamper');
  const tree = ingest(home, src);
  const dest = join(ctx.dir, 'proj', 'node_modules');
  materialize(home, tree, dest, 'hardlink');
  const file = join(dest, 'd1', 'f1.js');
  const st = statSync(file);
  const good = readFileSync(file, 'utf8');
  chmodSync(file, 0o644);
  writeFileSync(file, good.replace('tamper', 'TAMPER'));
  chmodSync(file, st.mode & 0o7777);
  utimesSync(file, st.atime, st.mtime);
  const v = verify(home);
  check(!v.ok && v.report.problems.some((p) => p.kind === 'corrupt-object'), 'verify did not find the edited object');
  const r = verify(home, true);
  check(r.report.problems.some((p) => p.kind === 'corrupt-object' && p.repaired), '--repair did not quarantine it');
  check(readdirSync(join(home, 'quarantine')).length > 0, 'nothing in quarantine/');
  // the object is gone from the store: a new layout refuses instead of laying out wrong bytes
  const m = velo(['store', 'materialize', tree, join(ctx.dir, 'other', 'node_modules'), '--method', 'copy'], home);
  check(m.code === 5, `materialize of the damaged tree exits ${m.code}, not 5`);
  return 'verify found it, --repair quarantined it, a new layout refused the tree';
}

/** ENOSPC: a store on a tiny tmpfs (root only). */
async function diskFull(ctx) {
  if (process.getuid?.() !== 0) return { skip: 'needs root to mount a tmpfs' };
  const mnt = join(ctx.dir, 'mnt');
  mkdirSync(mnt);
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', mnt]);
  try {
    const home = join(mnt, 'store');
    const small = join(ctx.dir, 'small');
    makeSource(small, 20, 'small');
    const tree = ingest(home, small);
    const big = join(ctx.dir, 'big');
    mkdirSync(big);
    for (let i = 0; i < 8; i++) writeFileSync(join(big, `blob${i}`), Buffer.alloc(256 * 1024, i + 1));
    const r = velo(['store', 'ingest', big], home);
    check(r.code === 11 && /disk is full/.test(r.stderr) && /hint: free some space/.test(r.stderr), `ingest on a full disk: exit ${r.code}: ${r.stderr}`);
    try {
      execFileSync('dd', ['if=/dev/zero', `of=${join(mnt, 'filler')}`, 'bs=4k'], { stdio: 'ignore' });
    } catch {
      /* dd ends on ENOSPC */
    }
    check(statfsSync(mnt).bavail === 0, 'the filesystem is not full');
    const s = velo(['status'], home);
    check(s.code === 11 || s.code === 0, `status at 0 bytes free exits ${s.code}: ${s.stderr}`);
    const m = velo(['store', 'materialize', tree, join(mnt, 'proj'), '--method', 'copy'], home);
    check(m.code === 11, `materialize at 0 bytes free exits ${m.code}: ${m.stderr}`);
    rmSync(join(mnt, 'filler'));
    const v = verify(home);
    check(v.ok, `verify after ENOSPC: ${JSON.stringify(v.report.problems).slice(0, 300)}`);
    return 'exit 11 with the hint at every layer; the store sound afterwards';
  } finally {
    execFileSync('umount', [mnt]);
  }
}

/** The mount server killed while a reader reads through the mount. */
async function mountServerKilled(ctx) {
  if (!existsSync('/dev/fuse') || !existsSync(join(ROOT, 'native', 'build', 'velo_native.node'))) return { skip: 'no FUSE or no native addon' };
  const home = join(ctx.dir, 'store');
  const src = join(ctx.dir, 'src');
  makeSource(src, 200, 'mount');
  const tree = ingest(home, src);
  const dest = join(ctx.dir, 'view');
  const m = velo(['mount', tree, dest, '--json'], home);
  if (m.code === 15) return { skip: 'FUSE unavailable' };
  check(m.code === 0, `mount failed: ${m.stderr}`);
  try {
    const { pid } = JSON.parse(m.stdout);
    const file = join(dest, 'd3', 'f3.js');
    const want = readFileSync(join(src, 'd3', 'f3.js'), 'utf8');
    let reads = 0;
    let errors = 0;
    let wrong = 0;
    let stop = false;
    const reader = (async () => {
      while (!stop) {
        try {
          if (readFileSync(file, 'utf8') !== want) wrong++;
          reads++;
        } catch {
          errors++;
        }
        await sleep(1);
      }
    })();
    await sleep(50 + Math.floor(ctx.random() * 100));
    process.kill(pid, 'SIGKILL');
    await sleep(100);
    const repair = velo(['mounts'], home);
    check(repair.code === 0, `velo mounts failed: ${repair.stderr}`);
    await sleep(100);
    stop = true;
    await reader;
    check(wrong === 0, `${wrong} read(s) returned wrong bytes`);
    check(readFileSync(file, 'utf8') === want, 'the repaired mount does not serve the file');
    return `${reads} reads, ${errors} failed while the server was dead, none wrong; velo mounts repaired it`;
  } finally {
    velo(['umount', dest], home);
  }
}

export const CASES = [
  { name: 'kill -9 during concurrent installs', run: killConcurrent },
  { name: 'gc killed mid-sweep', run: gcKilled },
  { name: 'index truncated to 0 bytes', run: indexDamage('truncate 0', (p) => truncateSync(p, 0)) },
  { name: 'index truncated to half', run: indexDamage('truncate half', (p) => truncateSync(p, Math.floor(statSync(p).size / 2))) },
  { name: 'index overwritten with garbage', run: indexDamage('garbage', (p) => writeFileSync(p, Buffer.alloc(statSync(p).size, 0x5a))) },
  {
    name: 'index garbage after page 1',
    run: indexDamage('garbage pages', (p) => {
      const b = readFileSync(p);
      b.fill(0xa5, 4096);
      writeFileSync(p, b);
    }),
  },
  { name: 'index WAL garbage', run: indexDamage('WAL garbage', (p) => writeFileSync(`${p}-wal`, Buffer.alloc(128 * 1024, 0x33))) },
  { name: 'object tampered in place', run: objectTamper },
  { name: 'ENOSPC on a tmpfs', run: diskFull },
  { name: 'mount server killed under a reader', run: mountServerKilled },
];

/**
 * Run the campaign. short: few rounds and small stores (CI). Returns one
 * result per case: { name, status: 'PASS'|'FAIL'|'SKIP', detail, ms }.
 */
export async function runCampaign({ short = false, seed = Date.now() % 1e9, only, onResult } = {}) {
  if (!existsSync(VELO)) throw new Error(`${VELO} is missing: build first (tsc)`);
  const random = prng(seed); // seeded, so a failing campaign can be replayed (--seed)
  const results = [];
  for (const c of CASES) {
    if (only && !c.name.includes(only)) continue;
    const dir = mkdtempSync(join(tmpdir(), 'velo-faults-'));
    const ctx = { dir, random, short, rounds: short ? 2 : 8, files: short ? 1000 : 6000, killWindowMs: short ? 400 : 1500, projects: short ? 8 : 31 };
    const t0 = performance.now();
    let result;
    try {
      const out = await c.run(ctx);
      result = typeof out === 'object' && out?.skip ? { status: 'SKIP', detail: out.skip } : { status: 'PASS', detail: out };
    } catch (err) {
      result = { status: 'FAIL', detail: err instanceof Fail ? err.message : (err?.stack ?? String(err)) };
    }
    result = { name: c.name, ...result, ms: Math.round(performance.now() - t0), seed };
    results.push(result);
    onResult?.(result);
    try {
      rmSync(dir, { recursive: true, force: true });
    } catch {
      /* a mount left behind: say so, do not hide the result */
    }
  }
  return results;
}
