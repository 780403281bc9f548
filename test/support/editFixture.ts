/**
 * The tree the writable-mount tests edit (mount.overlay: a velo overlay,
 * mount.copyup: a copy-up mount, each beside a kernel overlayfs over a plain
 * copy as the reference), and what a user sees of it after the edits: every
 * entry's kind, mode, size, bytes and link target, but no times (the same
 * writes happen at different instants on each side).
 */
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { chmodSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { expect } from 'vitest';
import { hashBuffer } from '../../src/store/hash.js';
import { OBJECT_MTIME_S } from '../../src/store/layout.js';
import type { Store } from '../../src/store/store.js';
import { readTree } from '../../src/store/trees.js';
import { materialize } from '../../src/projection/materialize.js';

/** node_modules-like files, a bin, a symlink; `more` adds two packages and a 300 KB file */
export function makeEditFixture(root: string, { more = false } = {}): void {
  const w = (rel: string, data: string): void => {
    mkdirSync(join(root, rel, '..'), { recursive: true });
    writeFileSync(join(root, rel), data);
  };
  w('node_modules/a/package.json', '{"name":"a","main":"index.js"}');
  w('node_modules/a/index.js', 'module.exports = "a";\n');
  w('node_modules/a/README.md', '# a\n');
  w('node_modules/b/index.js', 'module.exports = "b";\n');
  w('node_modules/b/lib/one.js', 'one\n');
  w('node_modules/b/lib/two.js', 'two\n');
  w('node_modules/c/index.js', 'c\n');
  w('node_modules/c/deep/er/file.txt', 'deep\n');
  if (more) {
    w('node_modules/d/x.js', 'x\n');
    w('node_modules/d/y.js', 'y\n');
    w('node_modules/e/keep.txt', 'keep\n');
    w('big.bin', 'z'.repeat(300_000));
  }
  w('bin/run.sh', '#!/bin/sh\necho run\n');
  chmodSync(join(root, 'bin/run.sh'), 0o755);
  w('same-as-a.js', 'module.exports = "a";\n');
  symlinkSync('node_modules/a', join(root, 'link-to-a'));
}

/** what a user sees: kind, mode, size, bytes, link target (no times: the writes happen at different instants) */
export function snapshot(root: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (rel: string): void => {
    for (const name of readdirSync(rel ? join(root, rel) : root).sort()) {
      const r = rel ? `${rel}/${name}` : name;
      const p = join(root, r);
      const st = lstatSync(p);
      const mode = (st.mode & 0o7777).toString(8);
      if (st.isDirectory()) {
        out[r] = `dir ${mode}`;
        walk(r);
      } else if (st.isSymbolicLink()) out[r] = `symlink -> ${readlinkSync(p)}`;
      else out[r] = `file ${mode} nlink=${st.nlink} size=${st.size} ${createHash('sha256').update(readFileSync(p)).digest('hex').slice(0, 16)}`;
    }
  };
  walk('');
  return out;
}

export interface ReferenceOverlay {
  lower: string;
  upper: string;
  work: string;
  merged: string;
}

/** The reference: a kernel overlayfs (as velo mounts it) over a plain copy of the tree, at <base>/ref-merged. */
export async function mountReferenceOverlay(base: string, store: Store, tree: string): Promise<ReferenceOverlay> {
  const ref = { lower: join(base, 'ref-lower'), upper: join(base, 'ref-upper'), work: join(base, 'ref-work'), merged: join(base, 'ref-merged') };
  await materialize(store, tree, ref.lower, { within: dirname(ref.lower), method: 'copy' });
  for (const d of [ref.upper, ref.work, ref.merged]) mkdirSync(d);
  execFileSync('mount', ['-t', 'overlay', 'overlay', '-o',
    `lowerdir=${ref.lower},upperdir=${ref.upper},workdir=${ref.work},index=off,xino=off,redirect_dir=off,metacopy=off`, ref.merged]);
  return ref;
}

/** Runs named steps, recording each outcome: 'ok' or the errno code it threw. */
export function stepRecorder(): { outcome: Record<string, string>; step(name: string, fn: () => void): void } {
  const outcome: Record<string, string> = {};
  return {
    outcome,
    step(name, fn) {
      try {
        fn();
        outcome[name] = 'ok';
      } catch (err) {
        outcome[name] = (err as NodeJS.ErrnoException).code ?? String(err);
      }
    },
  };
}

/** Every file object of the tree still hashes to its name, with the store's mode and mtime; returns how many. */
export function expectObjectsIntact(store: Store, tree: string): number {
  let checked = 0;
  for (const e of readTree(store, tree).entries) {
    if (e.kind !== 'file') continue;
    const path = store.objectPath(e.digest, e.exec);
    expect(hashBuffer(readFileSync(path))).toBe(e.digest);
    const st = statSync(path);
    expect(st.mode & 0o777).toBe(e.exec ? 0o555 : 0o444);
    expect(Math.floor(st.mtimeMs / 1000)).toBe(OBJECT_MTIME_S);
    checked++;
  }
  return checked;
}
