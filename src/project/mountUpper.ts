/**
 * What a mount's writable layer holds: the files written or changed through
 * the mount, and the entries deleted from it (overlayfs whiteouts: character
 * devices 0:0).
 */
import { lstatSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

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
