/**
 * What a mount's writable layer holds: the files written or changed through
 * the mount, and the entries deleted from it. Both layouts are read: an
 * overlay's (whiteouts are character devices 0:0) and a copy-up mount's
 * (fuse-rw, docs/FORMAT.md: a whiteout is an empty file `.velo.wh.<name>`,
 * an opaque directory holds `.velo.wh..velo.wh.opq`).
 */
import { lstatSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

/** Names a copy-up mount reserves for its markers (native/src/fuse_upper.h). */
export const WHITEOUT_PREFIX = '.velo.wh.';
export const OPAQUE_MARKER = '.velo.wh..velo.wh.opq';

export interface UpperSummary {
  /** regular files and symlinks created, changed (copied up) or chmod'ed */
  files: number;
  /** their bytes */
  bytes: number;
  /** directories in the upper layer (created, or parents of changes) */
  dirs: number;
  /** entries deleted through the mount */
  deleted: number;
  /** the first changed paths (relative to the mount), files and deletions */
  paths: string[];
}

export function summarizeUpper(upper: string, maxPaths = 20): UpperSummary {
  const s: UpperSummary = { files: 0, bytes: 0, dirs: 0, deleted: 0, paths: [] };
  const note = (rel: string, what: string): void => {
    if (s.paths.length < maxPaths) s.paths.push(what ? `${rel} (${what})` : rel);
  };
  const walk = (rel: string): void => {
    let names: string[];
    try {
      names = readdirSync(rel ? join(upper, rel) : upper).sort();
    } catch {
      return;
    }
    for (const name of names) {
      if (name === OPAQUE_MARKER) continue;
      if (name.startsWith(WHITEOUT_PREFIX)) {
        s.deleted++;
        const gone = name.slice(WHITEOUT_PREFIX.length);
        note(rel ? `${rel}/${gone}` : gone, 'deleted');
        continue;
      }
      const r = rel ? `${rel}/${name}` : name;
      let st;
      try {
        st = lstatSync(join(upper, r));
      } catch {
        continue;
      }
      if (st.isDirectory()) {
        s.dirs++;
        walk(r);
      } else if (st.isCharacterDevice() && st.rdev === 0) {
        s.deleted++;
        note(r, 'deleted');
      } else {
        s.files++;
        s.bytes += st.size;
        note(r, '');
      }
    }
  };
  walk('');
  return s;
}
