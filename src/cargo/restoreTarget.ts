/**
 * Restore a snapshot as the project's target dir, by copy (or reflink) or
 * by mount.
 *
 * Copy: the tree is laid out beside the target by materialize(), with its
 * mtimes; then, still before the swap, the freshness check runs
 * (freshness.ts) and velo's state file is written, so a target dir that
 * appears at the path is always complete, checked and marked as velo's. A
 * process killed at any point leaves the old target (or none) in place.
 * Files are copied (or reflinked where the filesystem clones), never
 * hardlinked: cargo rewrites fingerprints, dep-info, build-script output
 * and OUT_DIR files in place, and hardlinks share one mtime, which cargo
 * compares file by file (see targetMethod.ts).
 *
 * Mount: the same check is done to the snapshot's tree (mountTree.ts) and
 * the result is mounted at the target with a writable overlay
 * (targetMount.ts); the new mount replaces what was there in one step.
 * Where a writable mount cannot be made, the restore copies and says why
 * (`mountNote`).
 */
import { readFileSync } from 'node:fs';
import { enclosingRoot } from '../projection/containment.js';
import { join } from 'node:path';
import type { LinkMethod, Projection } from '../config.js';
import { materialize } from '../projection/materialize.js';
import type { Store } from '../store/store.js';
import { applyFreshness, MANIFEST_PATH, parseManifest, type FreshnessResult } from './freshness.js';
import { buildMountTree } from './mountTree.js';
import { keepViewTree, type SnapshotInfo } from './snapshots.js';
import { isVeloMount, mountTarget, TargetMountUnavailable, unmountTarget } from './targetMount.js';
import { targetMethod } from './targetMethod.js';
import { writeTargetState } from './targetState.js';
import { targetSignature, walkTarget } from './targetWalk.js';

export interface RestoreOptions {
  snapshot: SnapshotInfo;
  targetDir: string;
  projectRoot: string;
  /** the configured link method; hardlink and auto are narrowed by targetMethod() */
  method: LinkMethod;
  /** mount: a FUSE view with a writable overlay where that can be made, else a copy */
  projection?: Projection;
  /** rustc -vV and its toolchain stamp, cached in the state for the no-op path */
  rustc?: { stamp: string; verbose: string } | undefined;
  /** keyMaterial() of the run, when the snapshot's key is the run's key */
  keyMaterial?: string | undefined;
  /** told before a mounted target is taken down to be copied: what the copy costs */
  onMountToCopy?: ((cost: { files: number; bytes: number }) => void) | undefined;
}

export interface RestoreResult {
  /** 'mount', or how files were placed: 'copy', 'reflink' */
  method: string;
  projection: Projection;
  files: number;
  bytes: number;
  ms: number;
  freshness: FreshnessResult;
  signature: string;
  /** a mounted target's upper layer (what cargo writes) */
  upper?: string | undefined;
  /** why the mount projection asked for was not used */
  mountNote?: string | undefined;
}

export async function restoreTarget(store: Store, options: RestoreOptions): Promise<RestoreResult> {
  const started = performance.now();
  let mountNote: string | undefined;
  if (options.projection === 'mount') {
    try {
      return await restoreByMount(store, options, started);
    } catch (err) {
      if (!(err instanceof TargetMountUnavailable)) throw err;
      mountNote = `${err.reason}: the target was copied instead`;
    }
  }
  // a mount point cannot be renamed aside: a velo mount there goes first
  if (isVeloMount(options.targetDir)) {
    options.onMountToCopy?.({ files: options.snapshot.files, bytes: options.snapshot.logicalBytes });
    await unmountTarget(store, options.targetDir);
  }
  const method = targetMethod(store, options.method, options.targetDir);
  let freshness: FreshnessResult | undefined;
  let signature = '';
  const done = await materialize(store, options.snapshot.tree, options.targetDir, {
    within: enclosingRoot(options.targetDir, options.projectRoot),
    method,
    backgroundRemoval: true,
    beforeSwap: (staging) => {
      let manifestBytes: Buffer | undefined;
      try {
        manifestBytes = readFileSync(join(staging, MANIFEST_PATH));
      } catch {
        manifestBytes = undefined;
      }
      freshness = applyFreshness(staging, options.projectRoot, manifestBytes ? parseManifest(manifestBytes) : undefined);
      signature = targetSignature(walkTarget(staging, { incremental: false }));
      writeTargetState(staging, {
        project: options.projectRoot,
        key: options.snapshot.key,
        snapshot: options.snapshot.tree,
        snapshotName: options.snapshot.name,
        snapshotCreated: options.snapshot.created,
        signature,
        rustcStamp: options.rustc?.stamp,
        rustcVerbose: options.rustc?.verbose,
        keyMaterial: options.keyMaterial,
      });
    },
  });
  return {
    method: done.method,
    projection: 'link',
    files: done.files,
    bytes: done.bytes,
    ms: performance.now() - started,
    freshness: freshness!,
    signature,
    mountNote,
  };
}

async function restoreByMount(store: Store, options: RestoreOptions, started: number): Promise<RestoreResult> {
  const made = buildMountTree(store, {
    source: options.snapshot.tree,
    projectRoot: options.projectRoot,
    check: true,
    state: {
      project: options.projectRoot,
      key: options.snapshot.key,
      snapshot: options.snapshot.tree,
      snapshotName: options.snapshot.name,
      snapshotCreated: options.snapshot.created,
      rustcStamp: options.rustc?.stamp,
      rustcVerbose: options.rustc?.verbose,
      keyMaterial: options.keyMaterial,
    },
  });
  const view = keepViewTree(store, made.viewTree, { files: made.files, logicalBytes: made.bytes });
  const m = await mountTarget(store, made.tree, options.targetDir, { keys: [options.snapshot.name, view], within: enclosingRoot(options.targetDir, options.projectRoot) });
  return {
    method: 'mount',
    projection: 'mount',
    files: made.files,
    bytes: made.bytes,
    ms: performance.now() - started,
    freshness: made.freshness,
    signature: made.signature,
    upper: m.upper,
  };
}
