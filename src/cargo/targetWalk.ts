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
 *
 * The same walk runs over a directory on disk and over a tree about to be
 * mounted (targetTreeSource.ts), so a mounted target's signature can be
 * computed before it is mounted and equals what a walk of the mount gives.
 */
import { lstatSync, readdirSync, readlinkSync } from 'node:fs';
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
  /** device and inode number (files): hardlinked files in one target are read once */
  dev: bigint;
  ino: bigint;
  target?: string;
}

export interface WalkOptions {
  /** keep <profile>/incremental/ */
  incremental?: boolean;
}

/** What the walk reads: a directory on disk, or a tree (targetTreeSource.ts). Paths are '/'-separated, '' is the root. */
export interface WalkSource {
  /** the names in a directory, each with whether it is a directory (not following symlinks) */
  list(rel: string): { name: string; dir: boolean }[];
  /** lstat of one entry, without its path */
  stat(rel: string): Omit<WalkedEntry, 'path'>;
  /** is rel a directory (not following symlinks)? false when missing */
  isDir(rel: string): boolean;
}

/** The walk source for a directory on disk. */
export function diskSource(root: string): WalkSource {
  const abs = (rel: string): string => (rel === '' ? root : join(root, rel));
  return {
    list(rel) {
      try {
        return readdirSync(abs(rel), { withFileTypes: true }).map((d) => ({ name: d.name, dir: d.isDirectory() }));
      } catch (err) {
        throw fsError(err, `cannot read ${abs(rel)}`);
      }
    },
    stat(rel) {
      const p = abs(rel);
      let st;
      try {
        st = lstatSync(p, { bigint: true });
      } catch (err) {
        throw fsError(err, `cannot stat ${p}`);
      }
      if (st.isDirectory()) return { kind: 'dir', size: 0, mtimeNs: st.mtimeNs, exec: false, dev: st.dev, ino: st.ino };
      if (st.isSymbolicLink()) return { kind: 'symlink', size: 0, mtimeNs: st.mtimeNs, exec: false, dev: st.dev, ino: st.ino, target: readlinkSync(p) };
      if (st.isFile()) return { kind: 'file', size: Number(st.size), mtimeNs: st.mtimeNs, exec: (Number(st.mode) & 0o100) !== 0, dev: st.dev, ino: st.ino };
      throw new VeloError('UNSUPPORTED_FILE', `cannot snapshot ${p}: it is not a file, directory or symlink`);
    },
    isDir(rel) {
      try {
        return lstatSync(abs(rel)).isDirectory();
      } catch {
        return false;
      }
    },
  };
}

function child(rel: string, name: string): string {
  return rel === '' ? name : `${rel}/${name}`;
}

function isProfileDir(source: WalkSource, rel: string): boolean {
  return source.isDir(child(rel, '.fingerprint'));
}

type Role = 'root' | 'profile' | 'examples' | 'plain';

function skipped(role: Role, name: string, dir: boolean, options: WalkOptions): boolean {
  if (role === 'root') return dir && (name === STATE_DIR || name === 'tmp');
  if (role === 'profile') return dir ? name === 'incremental' && !options.incremental : name === '.cargo-lock' || name.endsWith('.d');
  if (role === 'examples') return !dir && name.endsWith('.d');
  return false;
}

/** Every entry of a target that belongs in a snapshot, parents before children, names sorted in each directory. */
export function walkSource(source: WalkSource, options: WalkOptions = {}): WalkedEntry[] {
  const out: WalkedEntry[] = [];
  // depth: 0 = target root; role tells which exclusions apply to a directory's children
  const visit = (rel: string, depth: number, role: Role): void => {
    const names = source.list(rel).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const d of names) {
      if (skipped(role, d.name, d.dir, options)) continue;
      const childRel = child(rel, d.name);
      const st = source.stat(childRel);
      out.push({ path: childRel, ...st });
      if (st.kind === 'dir') {
        let childRole: Role = 'plain';
        if (role === 'profile' && d.name === 'examples') childRole = 'examples';
        else if ((depth === 0 || (depth === 1 && role === 'plain')) && isProfileDir(source, childRel)) childRole = 'profile';
        visit(childRel, depth + 1, childRole);
      }
    }
  };
  visit('', 0, 'root');
  return out;
}

/** walkSource() of a directory on disk. */
export function walkTarget(targetDir: string, options: WalkOptions = {}): WalkedEntry[] {
  return walkSource(diskSource(targetDir), options);
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

/** The profile dirs of a target (relative paths), sorted. */
export function sourceProfileDirs(source: WalkSource): string[] {
  const found: string[] = [];
  let top: { name: string; dir: boolean }[];
  try {
    top = source.list('');
  } catch {
    return found;
  }
  for (const d of top) {
    if (!d.dir || d.name === STATE_DIR) continue;
    if (isProfileDir(source, d.name)) {
      found.push(d.name);
      continue;
    }
    let inner: { name: string; dir: boolean }[];
    try {
      inner = source.list(d.name);
    } catch {
      continue;
    }
    for (const e of inner) if (e.dir && isProfileDir(source, child(d.name, e.name))) found.push(`${d.name}/${e.name}`);
  }
  return found.sort();
}

/** The profile dirs of a target dir on disk. */
export function profileDirs(targetDir: string): string[] {
  return sourceProfileDirs(diskSource(targetDir));
}
