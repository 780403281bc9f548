/**
 * After cargo: a successful run stores the target dir as a snapshot under
 * the key (re-computed: cargo may have written Cargo.lock), registers the
 * project and writes velo's state into the target. A failed run stores
 * nothing; if the target is velo's, its state learns the new signature
 * (cargo, run by velo, changed it — that is not a change "by hand").
 */
import type { LinkMethod } from '../config.js';
import { withLease } from '../store/lock.js';
import { Store } from '../store/store.js';
import type { KnownPackage } from './freshness.js';
import { isTargetPresent, readLock, type CargoPlan } from './plan.js';
import { targetMethod } from './targetMethod.js';
import { targetUnchanged } from './unchangedTarget.js';
import { keyMaterial, lockDigest, snapshotKey } from './snapshotKey.js';
import { snapshotTarget, type SnapshotTargetResult } from './snapshotTarget.js';
import { addSnapshot, useSnapshot, type SnapshotInfo } from './snapshots.js';
import { readTargetState, writeTargetState } from './targetState.js';
import { targetSignature, walkTarget } from './targetWalk.js';
import { cargoCommand, rustcInfo, statBits, toolchainStamp } from './toolchain.js';
import { cargoMetadata, type CargoMetadata } from './workspace.js';
import { dirname, join } from 'node:path';

export type RecordOutcome =
  | { action: 'none'; reason: 'cargo-failed' | 'no-target' | 'separate-build-dir' }
  | { action: 'unchanged'; snapshot: string; ms: number }
  | { action: 'stored'; snapshot: SnapshotInfo; result: SnapshotTargetResult; ms: number };

async function metadata(plan: CargoPlan): Promise<CargoMetadata | undefined> {
  const base = { cwd: plan.cwd, env: plan.env, cargo: cargoCommand(plan.env), toolchain: plan.inv.toolchain, manifestPath: plan.inv.manifestPath };
  try {
    return await cargoMetadata({ ...base, noDeps: false });
  } catch {
    try {
      return await cargoMetadata({ ...base, noDeps: true });
    } catch {
      return undefined;
    }
  }
}

export async function recordTarget(
  plan: CargoPlan,
  exitCode: number,
  options: { home: string; method: LinkMethod },
): Promise<RecordOutcome> {
  const started = performance.now();
  if (exitCode !== 0) {
    const state = readTargetState(plan.location.targetDir);
    if (state && isTargetPresent(plan.location.targetDir)) {
      writeTargetState(plan.location.targetDir, { ...state, signature: targetSignature(walkTarget(plan.location.targetDir, { incremental: false })) });
    }
    return { action: 'none', reason: 'cargo-failed' };
  }
  // nothing changed (a no-op build): no need to ask cargo or rustc anything, or to open the store
  if (targetUnchanged(plan)) return { action: 'unchanged', snapshot: readTargetState(plan.location.targetDir)!.snapshot!, ms: performance.now() - started };
  const meta = await metadata(plan);
  const root = meta?.workspaceRoot ?? plan.location.root;
  const targetDir = plan.location.targetDirExplicit || !meta ? plan.location.targetDir : meta.targetDirectory;
  if (!isTargetPresent(targetDir)) return { action: 'none', reason: 'no-target' };
  // a separate build dir (build.build-dir) holds the fingerprints: a target dir alone is not a build
  if (meta && meta.buildDirectory !== meta.targetDirectory) return { action: 'none', reason: 'separate-build-dir' };
  // the stored key always comes from a real rustc -vV (the no-op path may have used the cached one)
  const rustc = await rustcInfo({ env: plan.env, cwd: root, toolchain: plan.inv.toolchain });
  const rustcCache: { rustcStamp: string; rustcVerbose: string; keyMaterial?: string } = {
    rustcStamp: toolchainStamp({ env: plan.env, cwd: root, toolchain: plan.inv.toolchain }),
    rustcVerbose: rustc.verbose,
  };
  const key = snapshotKey(plan.inv, lockDigest(readLock(root)), rustc.verbose, plan.env);
  rustcCache.keyMaterial = keyMaterial(plan.inv, statBits(join(root, 'Cargo.lock')), rustc.verbose, plan.env);
  const packages: KnownPackage[] = (meta?.packages ?? []).map((p) => ({ name: p.name, root: dirname(p.manifestPath), path: p.source === null }));
  const state = readTargetState(targetDir);
  const store = Store.open(options.home);
  try {
    return await withLease(store, 'install', async () => {
      const result = await snapshotTarget(store, {
        targetDir,
        projectRoot: root,
        packages,
        previousTree: state?.snapshot,
        incremental: plan.inv.incremental,
      });
      if (state && state.snapshot === result.tree && state.key === key.id) {
        writeTargetState(targetDir, { ...state, ...rustcCache, project: root, signature: result.signature });
        return { action: 'unchanged', snapshot: result.tree, ms: performance.now() - started } as const;
      }
      const snapshot = addSnapshot(store, key.id, result.tree, { files: result.files, logicalBytes: result.logicalBytes });
      useSnapshot(store, root, snapshot, targetMethod(store, options.method, targetDir));
      writeTargetState(targetDir, {
        project: root,
        key: key.id,
        snapshot: snapshot.tree,
        snapshotName: snapshot.name,
        snapshotCreated: snapshot.created,
        signature: result.signature,
        ...rustcCache,
      });
      return { action: 'stored', snapshot, result, ms: performance.now() - started } as const;
    });
  } finally {
    store.close();
  }
}
