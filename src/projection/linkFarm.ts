/**
 * The JavaScript link farm: lays a parsed tree out under an empty directory
 * by reflink, hardlink or copy, with per-file fallback to copy on EXDEV,
 * EMLINK and EPERM. Every object is checked (size, mtime) before it is used:
 * an object edited in place through some hardlink is reported, not linked.
 * The native addon does the same work on several threads; this is the
 * fallback where it is not built.
 */
import { chmodSync, constants, copyFileSync, linkSync, lstatSync, mkdirSync, symlinkSync, utimesSync } from 'node:fs';
import { join } from 'node:path';
import { errnoCode, fsError } from '../errors.js';
import { OBJECT_MTIME_MS, objectPathIn } from '../store/layout.js';
import type { ParsedTree } from '../store/treeFormat.js';
import type { ConcreteMethod } from './linkMethod.js';
import type { LinkFarmResult } from '../native.js';

export type { LinkFarmResult };

const FALLBACK_CODES = new Set(['EXDEV', 'EMLINK', 'EPERM', 'EOPNOTSUPP', 'ENOTSUP', 'EINVAL', 'ENOSYS']);

function nsToSeconds(ns: bigint): number {
  return Number(ns) / 1e9;
}

export function emptyResult(): LinkFarmResult {
  return { files: 0, dirs: 0, symlinks: 0, linked: 0, reflinked: 0, copied: 0, fallbacks: 0, bytes: 0, tampered: [] };
}

export function layOutTree(tree: ParsedTree, storeHome: string, root: string, method: ConcreteMethod): LinkFarmResult {
  const r = emptyResult();
  const paths: string[] = new Array(tree.entries.length);
  paths[0] = root;
  let current = '';
  try {
    for (const e of tree.entries) {
      if (e.index === 0) continue;
      const dest = (paths[e.index] = join(paths[e.parent]!, e.name));
      current = dest;
      if (e.kind === 'dir') {
        mkdirSync(dest, { mode: 0o755 });
        r.dirs++;
      } else if (e.kind === 'symlink') {
        symlinkSync(e.target, dest);
        r.symlinks++;
      } else {
        const obj = objectPathIn(storeHome, e.digest, e.exec);
        const st = lstatSync(obj, { throwIfNoEntry: false });
        if (!st || st.size !== e.size || st.mtimeMs !== OBJECT_MTIME_MS) {
          r.tampered.push(e.index);
          continue;
        }
        const fileMethod = e.private && method === 'hardlink' ? 'copy' : method;
        placeFile(obj, dest, fileMethod, e.exec, r);
        if (tree.hasMtimes && fileMethod !== 'hardlink' && e.mtimeNs !== 0n) {
          const t = nsToSeconds(e.mtimeNs);
          utimesSync(dest, t, t);
        }
        r.files++;
        r.bytes += e.size;
      }
    }
    if (tree.hasMtimes) {
      // directories last, deepest first, so creating children does not move them
      for (let i = tree.entries.length - 1; i >= 0; i--) {
        const e = tree.entries[i]!;
        if (e.kind === 'dir' && e.mtimeNs !== 0n) {
          const t = nsToSeconds(e.mtimeNs);
          utimesSync(paths[i]!, t, t);
        }
      }
    }
  } catch (err) {
    throw fsError(err, `cannot create ${current}`);
  }
  return r;
}

function copyInto(obj: string, dest: string, exec: boolean, flags: number): void {
  copyFileSync(obj, dest, flags);
  chmodSync(dest, exec ? 0o755 : 0o644);
}

function placeFile(obj: string, dest: string, method: ConcreteMethod, exec: boolean, r: LinkFarmResult): void {
  if (method === 'hardlink') {
    try {
      linkSync(obj, dest);
      r.linked++;
      return;
    } catch (err) {
      if (!FALLBACK_CODES.has(errnoCode(err) ?? '')) throw err;
      r.fallbacks++;
    }
  } else if (method === 'reflink') {
    try {
      copyInto(obj, dest, exec, constants.COPYFILE_FICLONE_FORCE);
      r.reflinked++;
      return;
    } catch (err) {
      if (!FALLBACK_CODES.has(errnoCode(err) ?? '')) throw err;
      r.fallbacks++;
    }
  }
  copyInto(obj, dest, exec, constants.COPYFILE_EXCL);
  r.copied++;
}
