/**
 * Describe a directory as a user would compare it: every path with its
 * kind, exec bit, bytes (as a digest) and symlink target.
 */
import { createHash } from 'node:crypto';
import { lstatSync, readFileSync, readdirSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';

export interface Described {
  kind: 'dir' | 'file' | 'symlink';
  exec?: boolean;
  size?: number;
  sha?: string;
  target?: string;
  mtimeMs?: number;
}

export function describeDir(root: string, options: { mtimes?: boolean; skip?: (rel: string) => boolean } = {}): Map<string, Described> {
  const out = new Map<string, Described>();
  const walk = (rel: string): void => {
    for (const name of readdirSync(rel ? join(root, rel) : root).sort()) {
      const r = rel ? `${rel}/${name}` : name;
      if (options.skip?.(r)) continue;
      const abs = join(root, r);
      const st = lstatSync(abs);
      const mt = options.mtimes ? { mtimeMs: st.mtimeMs } : {};
      if (st.isSymbolicLink()) out.set(r, { kind: 'symlink', target: readlinkSync(abs), ...mt });
      else if (st.isDirectory()) {
        out.set(r, { kind: 'dir', ...mt });
        walk(r);
      } else {
        out.set(r, {
          kind: 'file',
          exec: (st.mode & 0o100) !== 0,
          size: st.size,
          sha: createHash('sha256').update(readFileSync(abs)).digest('hex'),
          ...mt,
        });
      }
    }
  };
  walk('');
  return out;
}

export function asObject(m: Map<string, Described>): Record<string, Described> {
  return Object.fromEntries(m);
}
