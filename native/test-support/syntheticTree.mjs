// A synthetic node_modules-shaped tree with its objects, for the native
// addon's tests and benchmarks. Deterministic: the same options give the
// same bytes. Objects are written in the store's layout (docs/FORMAT.md):
// objects/ab/cdef…[x], mode 0444/0555, mtime 499162500. Digests here are
// SHA-256 (the addon treats a digest as an opaque 32-byte name).
import { createHash } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export const OBJECT_MTIME_S = 499162500;

function content(seed, size) {
  const head = Buffer.from(`// ${seed}\n`);
  const out = Buffer.alloc(size);
  let x = 2166136261;
  for (const c of seed) x = Math.imul(x ^ c.charCodeAt(0), 16777619) >>> 0;
  for (let i = 0; i < size; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    out[i] = 32 + ((x >>> 16) % 90);
  }
  head.copy(out, 0, 0, Math.min(head.length, size));
  return out;
}

function sizeFor(k) {
  const r = (Math.imul(k + 1, 2654435761) >>> 0) % 1000;
  if (r < 5) return 64 * 1024 + r * 4096;   // a few larger files
  if (r < 20) return 0;                      // empty files
  return 100 + ((r * 37) % 6000);
}

/**
 * packages: how many packages (36 files and ~4 dirs each; 1000 ≈ 36k files).
 * mtimes: give every entry a distinct mtime (ns) in a tree that carries mtimes.
 * Returns the entries (root first); file entries carry `data` (their bytes).
 */
export function nodeModulesEntries({ packages = 100, mtimes = false } = {}) {
  const entries = [{ path: '', kind: 'dir' }];
  let k = 0;
  const when = () => (mtimes ? 1600000000123456789n + BigInt(k++) * 1000001n : undefined);
  const dir = (path) => entries.push({ path, kind: 'dir', mtimeNs: when() });
  const file = (path, data, exec = false) => {
    entries.push({ path, kind: 'file', exec, size: data.length, data, mtimeNs: when() });
  };
  const license = content('MIT License', 1075);
  dir('node_modules');
  dir('node_modules/.bin');
  for (let p = 0; p < packages; p++) {
    const scoped = p % 10 === 0;
    if (scoped) dir(`node_modules/@scope${p}`);
    const name = scoped ? `@scope${p}/pkg-${p}` : `pkg-${p}`;
    const base = `node_modules/${name}`;
    dir(base);
    file(`${base}/package.json`, Buffer.from(JSON.stringify({ name, version: '1.0.0', main: 'index.js' }, null, 2)));
    file(`${base}/index.js`, Buffer.from(`module.exports = { name: ${JSON.stringify(name)}, lib: require('./lib/f0.js') };\n`));
    file(`${base}/LICENSE`, license);
    file(`${base}/README.md`, content(`${name} readme`, 300 + (p % 7) * 500));
    dir(`${base}/lib`);
    dir(`${base}/lib/a`);
    dir(`${base}/lib/b`);
    for (let f = 0; f < 16; f++) {
      const data = f === 0 ? Buffer.from(`module.exports = ${p * 100 + f};\n`) : content(`${name}/lib/f${f}`, sizeFor(p * 64 + f));
      file(`${base}/lib/f${f}.js`, data);
    }
    for (let f = 0; f < 8; f++) file(`${base}/lib/a/m${f}.js`, content(`${name}/a/${f}`, sizeFor(p * 64 + 20 + f)));
    for (let f = 0; f < 7; f++) file(`${base}/lib/b/m${f}.js`, content(`${name}/b/${f}`, sizeFor(p * 64 + 40 + f)));
    file(`${base}/lib/b/cli.js`, Buffer.from(`#!/usr/bin/env node\nconsole.log(${JSON.stringify(name)});\n`), true);
    if (p % 5 === 0) {
      entries.push({ path: `node_modules/.bin/cli-${p}`, kind: 'symlink', target: `../${name}/lib/b/cli.js`, mtimeNs: when() });
    }
  }
  entries.push({ path: 'node_modules/.bin/dangling', kind: 'symlink', target: '../does-not-exist', mtimeNs: when() });
  entries.push({ path: 'abs-link', kind: 'symlink', target: '/etc/hostname', mtimeNs: when() });
  if (mtimes) entries[0].mtimeNs = 1590000000000000000n;
  return entries;
}

/** Adds `digest` to every file entry and writes its object once. */
export function writeObjects(objectsDir, entries) {
  const made = new Set();
  for (const e of entries) {
    if (e.kind !== 'file') continue;
    e.digest ??= createHash('sha256').update(e.data).digest('hex');
    const rel = `${e.digest.slice(0, 2)}/${e.digest.slice(2)}${e.exec ? 'x' : ''}`;
    if (made.has(rel)) continue;
    made.add(rel);
    const path = join(objectsDir, rel);
    if (existsSync(path)) continue;
    mkdirSync(join(objectsDir, e.digest.slice(0, 2)), { recursive: true });
    writeFileSync(path, e.data);
    chmodSync(path, e.exec ? 0o555 : 0o444);
    utimesSync(path, OBJECT_MTIME_S, OBJECT_MTIME_S);
  }
}

export function objectPath(objectsDir, e) {
  return join(objectsDir, e.digest.slice(0, 2), `${e.digest.slice(2)}${e.exec ? 'x' : ''}`);
}
