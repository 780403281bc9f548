// A synthetic, node_modules-shaped directory for the store benchmark.
//
// Deterministic: the same options (seed, files, bytes) give the same paths,
// modes and bytes on every machine. The shape follows real node_modules:
// ~1,000 packages of very uneven size (most have a dozen files, a few have
// hundreds), ~11 files per directory, file sizes log-uniform between 100 B
// and 40 KB, a few multi-MB bundles that bring the total to `bytes`, the same
// LICENSE texts everywhere, nested node_modules holding exact copies of other
// packages (duplicate contents), executable bins and node_modules/.bin
// symlinks pointing at them.
import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** mulberry32: a small seeded PRNG, uniform in [0, 1) */
export function prng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function hashString(s) {
  let x = 2166136261;
  for (let i = 0; i < s.length; i++) x = Math.imul(x ^ s.charCodeAt(i), 16777619) >>> 0;
  return x;
}

const EXTS = ['.js', '.js', '.js', '.js', '.d.ts', '.js.map', '.json', '.mjs', '.cjs', '.md'];
const SUBDIRS = ['lib', 'dist', 'src', 'esm', 'cjs', 'types', 'utils', 'internal', 'helpers', 'fp', 'locale', 'plugins'];

/**
 * Plan the tree: entries in creation order (a directory before its
 * contents). Files carry `size` and `key`; equal keys mean equal bytes.
 */
export function planTree({ seed = 1, files = 50_000, bytes = 500_000_000 } = {}) {
  const rand = prng(seed);
  const int = (lo, hi) => lo + Math.floor(rand() * (hi - lo + 1));
  const entries = [];
  const packages = [];
  let fileCount = 0;
  let byteCount = 0;
  const dir = (path) => entries.push({ path, kind: 'dir' });
  const file = (path, size, key, exec = false) => {
    entries.push({ path, kind: 'file', size, key, exec });
    fileCount++;
    byteCount += size;
  };
  const smallSize = () => Math.round(100 * Math.pow(400, rand())); // log-uniform 100 B .. 40 KB
  const licenses = [0, 1, 2].map((i) => ({ key: `license-${i}`, size: 1070 + i * 17 }));

  /** A package's own files, as paths relative to its directory. */
  function packageFiles(name) {
    const r = rand();
    const n = r < 0.6 ? int(5, 19) : r < 0.9 ? int(20, 79) : r < 0.98 ? int(80, 279) : int(300, 799);
    const subdirCount = Math.min(1 + Math.floor(n / 20), 40);
    const subdirs = [];
    for (let i = 0; i < subdirCount; i++) {
      const top = SUBDIRS[i % SUBDIRS.length];
      subdirs.push(i < SUBDIRS.length ? top : `${top}/part${Math.floor(i / SUBDIRS.length)}`);
    }
    const list = [
      { rel: 'package.json', size: int(400, 3000), key: `${name}/package.json` },
      { rel: 'README.md', size: smallSize(), key: `${name}/README.md` },
      { rel: 'LICENSE', ...licenses[int(0, 2)] },
    ];
    for (let i = 3; i < n; i++) {
      const sub = subdirs[i % subdirs.length];
      const ext = EXTS[int(0, EXTS.length - 1)];
      list.push({ rel: `${sub}/f${i}${ext}`, size: smallSize(), key: `${name}/${sub}/f${i}${ext}` });
    }
    const bin = rand() < 0.2;
    if (bin) list.push({ rel: 'bin/cli.js', size: int(200, 4000), key: `${name}/bin/cli.js`, exec: true });
    return { list, bin };
  }

  function layPackage(base, pkg) {
    const made = new Set();
    dir(base);
    for (const f of pkg.list) {
      const parts = f.rel.split('/');
      for (let i = 1; i < parts.length; i++) {
        const d = parts.slice(0, i).join('/');
        if (!made.has(d)) {
          made.add(d);
          dir(`${base}/${d}`);
        }
      }
      file(`${base}/${f.rel}`, f.size, f.key, f.exec === true);
    }
  }

  dir('node_modules');
  dir('node_modules/.bin');
  const bins = [];
  const scopes = new Set();
  // leave ~10% of the byte budget for the multi-MB bundles' companions
  for (let p = 0; fileCount < files * 0.985; p++) {
    const scoped = p % 9 === 0;
    const name = scoped ? `@scope${p % 90}/pkg-${p}` : `pkg-${p}`;
    if (scoped && !scopes.has(p % 90)) {
      scopes.add(p % 90);
      dir(`node_modules/@scope${p % 90}`);
    }
    const pkg = { name, ...packageFiles(name) };
    packages.push(pkg);
    const base = `node_modules/${name}`;
    layPackage(base, pkg);
    if (pkg.bin) bins.push({ link: `node_modules/.bin/cli-${p}`, target: `../${name}/bin/cli.js` });
    // some packages carry a nested copy of an earlier package (another
    // version that npm could not hoist): the same bytes again
    if (p > 20 && rand() < 0.08) {
      const dep = packages[int(0, packages.length - 2)];
      if (dep.list.length < 120 && !dep.name.startsWith('@')) {
        dir(`${base}/node_modules`);
        layPackage(`${base}/node_modules/${dep.name}`, dep);
      }
    }
  }
  // a few multi-MB bundles (typescript's lib, esbuild's binary, …) until the byte budget is met
  let big = 0;
  while (byteCount < bytes) {
    const size = Math.min(int(1, 8) * 1024 * 1024 + int(0, 65535), Math.max(bytes - byteCount, 1));
    const name = `big-${big}`;
    dir(`node_modules/${name}`);
    dir(`node_modules/${name}/lib`);
    file(`node_modules/${name}/package.json`, int(400, 1500), `${name}/package.json`);
    file(`node_modules/${name}/lib/${name}.js`, size, `${name}/bundle`, big % 5 === 4);
    big++;
  }
  for (const b of bins) entries.push({ path: b.link, kind: 'symlink', target: b.target });
  return { entries, files: fileCount, bytes: byteCount };
}

/** 8 MiB of seeded printable bytes that file contents are cut from. */
function makePool(seed) {
  const pool = Buffer.allocUnsafe(8 * 1024 * 1024);
  let x = (seed * 2654435761) >>> 0 || 1;
  for (let i = 0; i < pool.length; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    pool[i] = 32 + (x % 95);
  }
  return pool;
}

function contentOf(pool, key, size) {
  const out = Buffer.allocUnsafe(size);
  const head = Buffer.from(`/* ${key} */\n`);
  let off = 0;
  let start = hashString(key) % pool.length;
  while (off < size) {
    const n = Math.min(size - off, pool.length - start);
    pool.copy(out, off, start, start + n);
    off += n;
    start = (start + 7919) % pool.length;
  }
  head.copy(out, 0, 0, Math.min(head.length, size));
  return out;
}

/**
 * Write the planned tree under `root` (which must not exist). Returns the
 * plan's totals. A manifest next to `root` lets the caller reuse a tree
 * written before with the same options.
 */
export function writeTree(root, options = {}) {
  const plan = planTree(options);
  const pool = makePool(options.seed ?? 1);
  mkdirSync(root);
  for (const e of plan.entries) {
    const p = join(root, e.path);
    if (e.kind === 'dir') mkdirSync(p);
    else if (e.kind === 'symlink') symlinkSync(e.target, p);
    else {
      writeFileSync(p, contentOf(pool, e.key, e.size));
      if (e.exec) chmodSync(p, 0o755);
    }
  }
  return { files: plan.files, bytes: plan.bytes, dirs: plan.entries.filter((e) => e.kind === 'dir').length, symlinks: plan.entries.filter((e) => e.kind === 'symlink').length };
}

/** The tree for these options under `dir`/src, written unless it is already there. */
export function ensureTree(dir, options = {}) {
  const root = join(dir, 'src');
  const manifest = join(dir, 'src.manifest.json');
  const want = JSON.stringify({ version: 1, seed: options.seed ?? 1, files: options.files ?? 50_000, bytes: options.bytes ?? 500_000_000 });
  if (existsSync(manifest) && existsSync(root)) {
    const have = JSON.parse(readFileSync(manifest, 'utf8'));
    if (JSON.stringify(have.options) === want) return { root, reused: true, ...have.totals };
  }
  rmSync(root, { recursive: true, force: true });
  rmSync(manifest, { force: true });
  mkdirSync(dir, { recursive: true });
  const totals = writeTree(root, options);
  writeFileSync(manifest, JSON.stringify({ options: JSON.parse(want), totals }, null, 2) + '\n');
  return { root, reused: false, ...totals };
}
