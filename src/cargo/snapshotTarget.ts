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
 */
import { join } from 'node:path';
import { addFile } from '../store/addFile.js';
import { objectLooksIntact } from '../store/commitObject.js';
import { addCounters } from '../store/counters.js';
import { hasTree, putTree, readTree } from '../store/trees.js';
import { writeBufferToStore } from '../store/writeBufferToStore.js';
import type { ParsedEntry, TreeEntry } from '../store/treeFormat.js';
import type { Store } from '../store/store.js';
import { buildFreshnessManifest, MANIFEST_PATH, type FreshnessManifest, type KnownPackage } from './freshness.js';
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
}

export interface SnapshotTargetResult {
  tree: string;
  files: number;
  logicalBytes: number;
  /** files read and hashed (the rest reused the previous snapshot's digests) */
  hashed: number;
  newObjects: number;
  newBytes: number;
  /** targetSignature() of the dir as stored */
  signature: string;
  manifest: FreshnessManifest;
}

export async function snapshotTarget(store: Store, options: SnapshotTargetOptions): Promise<SnapshotTargetResult> {
  const walked = walkTarget(options.targetDir, { incremental: options.incremental === true });
  const signature = targetSignature(walkTarget(options.targetDir, { incremental: false }));
  const previous = new Map<string, ParsedEntry>();
  if (options.previousTree && hasTree(store, options.previousTree)) {
    for (const e of readTree(store, options.previousTree).entries) if (e.kind === 'file') previous.set(e.path, e);
  }
  const byInode = new Map<string, string>();
  const entries: TreeEntry[] = [];
  const result = { files: 0, logicalBytes: 0, hashed: 0, newObjects: 0, newBytes: 0 };
  let newest = 0n;
  try {
    for (const w of walked) {
      if (w.kind === 'dir') {
        entries.push({ path: w.path, kind: 'dir', mtimeNs: 0n });
        continue;
      }
      if (w.mtimeNs > newest) newest = w.mtimeNs;
      if (w.kind === 'symlink') {
        entries.push({ path: w.path, kind: 'symlink', target: w.target!, mtimeNs: w.mtimeNs });
        continue;
      }
      let digest: string | undefined;
      const prev = previous.get(w.path);
      if (prev && prev.size === w.size && prev.mtimeNs === w.mtimeNs && prev.exec === w.exec && objectLooksIntact(store.objectPath(prev.digest, w.exec), w.size)) {
        digest = prev.digest;
      }
      const inodeKey = `${w.ino}${w.exec ? 'x' : ''}`;
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
      entries.push({ path: w.path, kind: 'file', exec: w.exec, size: w.size, digest, mtimeNs: w.mtimeNs });
      result.files++;
      result.logicalBytes += w.size;
    }
    const manifest = buildFreshnessManifest(options.targetDir, options.projectRoot, options.packages);
    const manifestBytes = Buffer.from(JSON.stringify(manifest));
    const added = writeBufferToStore(store, manifestBytes, false);
    if (added.created) {
      result.newObjects++;
      result.newBytes += added.size;
    }
    entries.push({ path: MANIFEST_PATH, kind: 'file', exec: false, size: manifestBytes.length, digest: added.digest, mtimeNs: newest });
    const tree = putTree(store, entries, { mtimes: true, root: { path: '', kind: 'dir', mtimeNs: 0n } });
    return { tree, ...result, signature, manifest };
  } finally {
    addCounters(store, { objects: result.newObjects, object_bytes: result.newBytes });
  }
}
