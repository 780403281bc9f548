/**
 * One walk over a cargo target dir, shared by ingest (snapshotTarget.ts)
 * and the "was this target changed since velo saw it" check (the
 * signature). It knows cargo's layout: profile dirs are the directories
 * holding a `.fingerprint/` (target/debug, target/release,
 * target/<triple>/debug, …), and it leaves out what is not worth keeping
 * or not safe to share:
 *
 * - `<profile>/incremental/`: rustc's incremental caches, large and
 *   rewritten on every build (kept with --velo-incremental);
 * - `<profile>/.cargo-lock`: cargo's lock file for the build;
 * - `<profile>/*.d` and `<profile>/examples/*.d`: dep-info for external
 *   build systems, with absolute paths, re-stamped by cargo on every build
 *   (a snapshot holding them would change on every no-op build);
 * - `.velo/` (velo's own state) and `tmp/` (CARGO_TARGET_TMPDIR for tests).
 */
import { lstatSync, readdirSync, readlinkSync, type Dirent } from 'node:fs';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { VeloError, fsError } from '../errors.js';
import { STATE_DIR } from './targetState.js';

export interface WalkedEntry {
  /** '/'-separated path relative to the target dir */
  path: string;
  kind: 'file' | 'dir' | 'symlink';
  size: number;
  mtimeNs: bigint;
  exec: boolean;
  /** inode number (files): hardlinked files in one target are read once */
  ino: bigint;
  target?: string;
}

export interface WalkOptions {
  /** keep <profile>/incremental/ */
  incremental?: boolean;
}

function isProfileDir(abs: string): boolean {
  try {
    return lstatSync(join(abs, '.fingerprint')).isDirectory();
  } catch {
    return false;
  }
}

function skippedInProfile(name: string, d: Dirent, options: WalkOptions): boolean {
  if (d.isDirectory()) return name === 'incremental' && !options.incremental;
  return name === '.cargo-lock' || name.endsWith('.d');
}

/** Every entry of the target dir that belongs in a snapshot, parents before children. */
export function walkTarget(targetDir: string, options: WalkOptions = {}): WalkedEntry[] {
  const out: WalkedEntry[] = [];
  // depth: 0 = target root; role tells which exclusions apply to a directory's children
  const visit = (rel: string, abs: string, depth: number, role: 'root' | 'profile' | 'examples' | 'plain'): void => {
    let dirents: Dirent[];
    try {
      dirents = readdirSync(abs, { withFileTypes: true });
    } catch (err) {
      throw fsError(err, `cannot read ${abs}`);
    }
    dirents.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const d of dirents) {
      const name = d.name;
      if (role === 'root' && (name === STATE_DIR || name === 'tmp') && d.isDirectory()) continue;
      if (role === 'profile' && skippedInProfile(name, d, options)) continue;
      if (role === 'examples' && !d.isDirectory() && name.endsWith('.d')) continue;
      const childRel = rel === '' ? name : `${rel}/${name}`;
      const childAbs = join(abs, name);
      let st;
      try {
        st = lstatSync(childAbs, { bigint: true });
      } catch (err) {
        throw fsError(err, `cannot stat ${childAbs}`);
      }
      if (st.isDirectory()) {
        out.push({ path: childRel, kind: 'dir', size: 0, mtimeNs: st.mtimeNs, exec: false, ino: st.ino });
        let childRole: 'profile' | 'examples' | 'plain' = 'plain';
        if (role === 'profile' && name === 'examples') childRole = 'examples';
        else if ((depth === 0 || (depth === 1 && role === 'plain')) && isProfileDir(childAbs)) childRole = 'profile';
        visit(childRel, childAbs, depth + 1, childRole);
      } else if (st.isSymbolicLink()) {
        out.push({ path: childRel, kind: 'symlink', size: 0, mtimeNs: st.mtimeNs, exec: false, ino: st.ino, target: readlinkSync(childAbs) });
      } else if (st.isFile()) {
        out.push({ path: childRel, kind: 'file', size: Number(st.size), mtimeNs: st.mtimeNs, exec: (Number(st.mode) & 0o100) !== 0, ino: st.ino });
      } else {
        throw new VeloError('UNSUPPORTED_FILE', `cannot snapshot ${childAbs}: it is not a file, directory or symlink`);
      }
    }
  };
  visit('', targetDir, 0, 'root');
  return out;
}

/**
 * A digest of what the walk saw: paths, kinds, sizes, mtimes of files and
 * symlinks. Directory mtimes are left out (creating a file in a directory
 * moves them and says nothing about the artifacts).
 */
export function targetSignature(entries: WalkedEntry[]): string {
  const h = createHash('sha256');
  for (const e of entries) {
    if (e.kind === 'dir') continue;
    h.update(`${e.path}\0${e.kind}\0${e.size}\0${e.mtimeNs}\0${e.exec ? 1 : 0}\0${e.target ?? ''}\n`);
  }
  return h.digest('hex');
}

/** The profile dirs of a walked target (relative paths). */
export function profileDirs(targetDir: string): string[] {
  const found: string[] = [];
  let top: Dirent[];
  try {
    top = readdirSync(targetDir, { withFileTypes: true });
  } catch {
    return found;
  }
  for (const d of top) {
    if (!d.isDirectory() || d.name === STATE_DIR) continue;
    const abs = join(targetDir, d.name);
    if (isProfileDir(abs)) {
      found.push(d.name);
      continue;
    }
    let inner: Dirent[];
    try {
      inner = readdirSync(abs, { withFileTypes: true });
    } catch {
      continue;
    }
    for (const e of inner) if (e.isDirectory() && isProfileDir(join(abs, e.name))) found.push(`${d.name}/${e.name}`);
  }
  return found.sort();
}
