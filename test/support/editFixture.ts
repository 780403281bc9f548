/**
 * The tree the writable-mount tests edit (mount.overlay: a velo overlay,
 * mount.copyup: a copy-up mount, each beside a kernel overlayfs over a plain
 * copy as the reference), and what a user sees of it after the edits: every
 * entry's kind, mode, size, bytes and link target, but no times (the same
 * writes happen at different instants on each side).
 */
import { createHash } from 'node:crypto';
import { chmodSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

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
