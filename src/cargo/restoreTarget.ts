/**
 * Restore a snapshot as the project's target dir. The tree is laid out
 * beside the target by materialize(), with its mtimes; then, still before
 * the swap, the freshness check runs (freshness.ts) and velo's state file
 * is written, so a target dir that appears at the path is always complete,
 * checked and marked as velo's. A process killed at any point leaves the
 * old target (or none) in place.
 *
 * Files are copied (or reflinked where the filesystem clones), never
 * hardlinked: cargo rewrites fingerprints, dep-info, build-script output
 * and OUT_DIR files in place, and hardlinks share one mtime, which cargo
 * compares file by file (see targetMethod.ts).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { LinkMethod } from '../config.js';
import { materialize } from '../project/materialize.js';
import type { Store } from '../store/store.js';
import { applyFreshness, MANIFEST_PATH, parseManifest, type FreshnessResult } from './freshness.js';
import type { SnapshotInfo } from './snapshots.js';
import { targetMethod } from './targetMethod.js';
import { writeTargetState } from './targetState.js';
import { targetSignature, walkTarget } from './targetWalk.js';

export interface RestoreOptions {
  snapshot: SnapshotInfo;
  targetDir: string;
  projectRoot: string;
  /** the configured link method; hardlink and auto are narrowed by targetMethod() */
  method: LinkMethod;
  /** rustc -vV and its toolchain stamp, cached in the state for the no-op path */
  rustc?: { stamp: string; verbose: string } | undefined;
  /** keyMaterial() of the run, when the snapshot's key is the run's key */
  keyMaterial?: string | undefined;
}

export interface RestoreResult {
  method: string;
  files: number;
  bytes: number;
  ms: number;
  freshness: FreshnessResult;
  signature: string;
}

export async function restoreTarget(store: Store, options: RestoreOptions): Promise<RestoreResult> {
  const started = performance.now();
  const method = targetMethod(store, options.method, options.targetDir);
  let freshness: FreshnessResult | undefined;
  let signature = '';
  const done = await materialize(store, options.snapshot.tree, options.targetDir, {
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
    files: done.files,
    bytes: done.bytes,
    ms: performance.now() - started,
    freshness: freshness!,
    signature,
  };
}
