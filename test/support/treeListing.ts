/**
 * What a user sees of a directory tree, to compare a mount with a
 * materialized copy: every entry's kind, mode, nlink, size, mtime, bytes
 * (sha256) and link target; and one digest of all its files' bytes, read
 * through the shell's find | xargs cat.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { lstatSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';

/** Every path under root with what a user sees of it (sorted, root itself excluded). */
export function listTree(root: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (rel: string): void => {
    for (const name of readdirSync(join(root, rel)).sort()) {
      const r = rel ? `${rel}/${name}` : name;
      const p = join(root, r);
      const st = lstatSync(p, { bigint: true });
      const mode = (st.mode & 0o7777n).toString(8);
      if (st.isDirectory()) {
        out.set(r, `dir ${mode} nlink=${st.nlink} mtime=${st.mtimeNs}`);
        walk(r);
      } else if (st.isSymbolicLink()) {
        out.set(r, `symlink -> ${readlinkSync(p)} mtime=${st.mtimeNs}`);
      } else {
        const sha = createHash('sha256').update(readFileSync(p)).digest('hex');
        out.set(r, `file ${mode} nlink=${st.nlink} size=${st.size} mtime=${st.mtimeNs} sha=${sha}`);
      }
    }
  };
  walk('');
  return out;
}

/** sha256 of the bytes of the files `find . <findArgs>` lists in dir, in sorted order, read by cat. */
export function catDigest(dir: string, findArgs = '-type f'): Promise<string> {
  return new Promise<string>((resolve, reject) => {
    const p = spawn('sh', ['-c', `find . ${findArgs} | sort | xargs cat | sha256sum`], { cwd: dir });
    let out = '';
    p.stdout.on('data', (d: Buffer) => (out += d));
    p.on('error', reject);
    p.on('close', () => resolve(out.split(' ')[0]!));
  });
}
