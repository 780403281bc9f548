/**
 * Store a target dir as a snapshot tree, with every file's mtime. Files
 * whose path, size, mtime and mode equal the snapshot the target came from
 * keep that snapshot's digest without being read again (the object is
 * checked to be there and intact), so storing after a small rebuild reads
 * only what cargo rewrote. The freshness manifest (freshness.ts) goes in
 * the tree as `.velo/freshness.json`.
 *
 * Directory mtimes are not stored: cargo never compares them, and creating a
 * file would otherwise make every no-op build a new snapshot.
 *
 * A mounted target is remounted on what was stored (recordTarget.ts); its
 * rustc incremental caches are worth keeping for this checkout but not in
 * the shared snapshot, so `withIncrementalTree` also stores a second tree:
 * the snapshot plus `<profile>/incremental/` (the same objects, one walk).
 */
import { join } from 'node:path';
import { addFile } from '../store/addFile.js';
import { objectLooksIntact } from '../store/commitObject.js';
import { hasTree, putTree, readTree } from '../store/trees.js';
import { writeBufferToStore } from '../store/writeBufferToStore.js';
import type { ParsedEntry, TreeEntry } from '../store/treeFormat.js';
import type { Store } from '../store/store.js';
import { buildFreshnessManifest, MANIFEST_PATH, type FreshnessManifest, type KnownPackage } from './freshness.js';
import { readLock } from './plan.js';
import { findStaleUnits, lockedVersions, staleEntryFilter } from './staleUnits.js';
import { targetSignature, walkTarget } from './targetWalk.js';

export interface SnapshotTargetOptions {
  targetDir: string;
  projectRoot: string;
  /** packages from cargo metadata: where path packages' sources are */
  packages: KnownPackage[];
  /** the snapshot the target descends from: unchanged files reuse its digests */
  previousTree?: string | null | undefined;
  /** keep <profile>/incremental/ */
  incremental?: boolean;
  /** also store the tree with <profile>/incremental/ (when the snapshot leaves it out) */
  withIncrementalTree?: boolean;
}

export interface SnapshotTargetResult {
  tree: string;
  files: number;
  logicalBytes: number;
  /** files read and hashed (the rest reused the previous snapshot's digests) */
  hashed: number;
  newObjects: number;
  newBytes: number;
  /** units of the target dir no current build uses (staleUnits.ts), left out of the snapshot, and their files' bytes */
  staleUnits: number;
  staleBytes: number;
  /** targetSignature() of the dir as stored */
  signature: string;
  /** the snapshot plus incremental/, when asked for (else the snapshot itself) */
  fullTree: string;
  manifest: FreshnessManifest;
}

export async function snapshotTarget(store: Store, options: SnapshotTargetOptions): Promise<SnapshotTargetResult> {
  const keepIncremental = options.incremental === true;
  const both = !keepIncremental && options.withIncrementalTree === true;
  const walked = walkTarget(options.targetDir, { incremental: keepIncremental || both });
  const plain = both ? walkTarget(options.targetDir, { incremental: false }) : walked;
  const signature = targetSignature(plain);
  // units no current build uses stay out of the snapshot (the target dir keeps them, and so does the tree a mount shows)
  const members = new Set(options.packages.filter((p) => p.path).map((p) => p.name));
  const stale = findStaleUnits(options.targetDir, members, lockedVersions(readLock(options.projectRoot)?.toString('utf8')));
  const isStale = staleEntryFilter(walked, stale);
  const inSnapshot = new Set(plain.filter((w) => !isStale(w.path)).map((w) => w.path));
  const extra: TreeEntry[] = [];
  const previous = new Map<string, ParsedEntry>();
  if (options.previousTree && hasTree(store, options.previousTree)) {
    for (const e of readTree(store, options.previousTree).entries) if (e.kind === 'file') previous.set(e.path, e);
  }
  const byInode = new Map<string, string>();
  const entries: TreeEntry[] = [];
  const result = { files: 0, logicalBytes: 0, hashed: 0, newObjects: 0, newBytes: 0, staleUnits: stale.count, staleBytes: 0 };
  let newest = 0n;
  // new objects are counted by the store as they are committed (store.noteNewObject), not here
  for (const w of walked) {
    const into = inSnapshot.has(w.path) ? entries : extra;
    if (into === extra && w.kind === 'file' && isStale(w.path)) result.staleBytes += w.size;
    if (into === extra && !both) continue;
    if (w.kind === 'dir') {
      into.push({ path: w.path, kind: 'dir', mtimeNs: 0n });
      continue;
    }
    if (into === entries && w.mtimeNs > newest) newest = w.mtimeNs;
    if (w.kind === 'symlink') {
      into.push({ path: w.path, kind: 'symlink', target: w.target!, mtimeNs: w.mtimeNs });
      continue;
    }
    let digest: string | undefined;
    const prev = previous.get(w.path);
    if (prev && prev.size === w.size && prev.mtimeNs === w.mtimeNs && prev.exec === w.exec && objectLooksIntact(store.objectPath(prev.digest, w.exec), w.size)) {
      digest = prev.digest;
    }
    // device too: through an overlay, files of the lower and the upper layer have inode numbers of two filesystems
    const inodeKey = `${w.dev}:${w.ino}${w.exec ? 'x' : ''}`;
    digest ??= byInode.get(inodeKey);
    if (digest === undefined) {
      const added = await addFile(store, join(options.targetDir, w.path), w.exec, w.size);
      digest = added.digest;
      result.hashed++;
      if (added.created) {
        result.newObjects++;
        result.newBytes += added.size;
      }
    }
    byInode.set(inodeKey, digest);
    into.push({ path: w.path, kind: 'file', exec: w.exec, size: w.size, digest, mtimeNs: w.mtimeNs });
    if (into === entries) {
      result.files++;
      result.logicalBytes += w.size;
    }
  }
  const built = buildFreshnessManifest(options.targetDir, options.projectRoot, options.packages);
  const manifest = { ...built, units: built.units.filter((u) => !isStale(u.fingerprint)) };
  const manifestBytes = Buffer.from(JSON.stringify(manifest));
  const added = writeBufferToStore(store, manifestBytes, false);
  if (added.created) {
    result.newObjects++;
    result.newBytes += added.size;
  }
  entries.push({ path: MANIFEST_PATH, kind: 'file', exec: false, size: manifestBytes.length, digest: added.digest, mtimeNs: newest });
  const treeOptions = { mtimes: true, root: { path: '', kind: 'dir', mtimeNs: 0n } } as const;
  const tree = putTree(store, entries, treeOptions);
  const fullTree = both ? putTree(store, [...entries, ...extra], treeOptions) : tree;
  return { tree, fullTree, ...result, signature, manifest };
}
