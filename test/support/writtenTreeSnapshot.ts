/**
 * What a user sees of a tree that is being written to, for comparing a velo
 * mount with a kernel overlay over a plain copy: every entry's kind, mode,
 * size, bytes and link target, but no times (the same writes happen at
 * different instants on each side).
 */
import { createHash } from 'node:crypto';
import { lstatSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';

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
