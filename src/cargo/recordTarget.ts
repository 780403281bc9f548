/**
 * After cargo: a successful run stores the target dir as a snapshot under
 * the key (re-computed: cargo may have written Cargo.lock), registers the
 * project and writes velo's state into the target. A failed run stores
 * nothing; if the target is velo's, its state learns the new signature
 * (cargo, run by velo, changed it — that is not a change "by hand").
 *
 * A mounted target holds what cargo wrote in its overlay's upper layer.
 * Storing reads the merged view (through the overlay); then the target is
 * mounted again on what was stored — the new mount replaces the old one in
 * one step, and its upper layer starts empty, so the bytes cargo wrote are
 * kept once, in the store. The remounted tree keeps this checkout's
 * incremental/ (the shared snapshot leaves it out) and is not re-checked:
 * it is exactly what cargo just left. With the mount projection a target
 * velo made as a directory becomes a mount the same way.
 */
import type { LinkMethod, Projection } from '../config.js';
import { enclosingRoot } from '../projection/containment.js';
import { withLease } from '../store/lock.js';
import { Store } from '../store/store.js';
import type { KnownPackage } from './freshness.js';
import { buildMountTree } from './mountTree.js';
import { isTargetPresent, readLock, type CargoPlan } from './plan.js';
import { isVeloMount, mountTarget, TargetMountUnavailable } from './targetMount.js';
import { targetMethod } from './targetMethod.js';
import { targetUnchanged } from './unchangedTarget.js';
import { keyMaterial, lockDigest, snapshotKey } from './snapshotKey.js';
import { snapshotTarget, type SnapshotTargetResult } from './snapshotTarget.js';
import { addSnapshot, bestSnapshot, findSnapshot, keepViewTree, remoteSnapshotName, SNAPSHOT_KIND, useSnapshot, type SnapshotInfo } from './snapshots.js';
import type { Remote } from '../remote/remote.js';
import { readTargetState, writeTargetState } from './targetState.js';
import { targetSignature, walkTarget } from './targetWalk.js';
import { cargoCommand, rustcInfo, statBits, toolchainStamp } from './toolchain.js';
import { cargoMetadata, type CargoMetadata } from './workspace.js';
import { dirname, join } from 'node:path';

export type RecordOutcome =
  | { action: 'none'; reason: 'cargo-failed' | 'no-target' | 'separate-build-dir' }
  | { action: 'unchanged'; snapshot: string; ms: number }
  /** the target is exactly the snapshot velo last stored or restored, now registered under this build's key too */
  | { action: 'registered'; snapshot: SnapshotInfo; ms: number; reused: boolean }
  | { action: 'stored'; snapshot: SnapshotInfo; result: SnapshotTargetResult; ms: number; remount: RemountOutcome | undefined; /** the key already had this very tree */ reused: boolean };

/** The target mounted again on the stored snapshot, or why not. */
export type RemountOutcome = { mounted: true; replaced: 'nothing' | 'directory' | 'mount'; upper: string; ms: number } | { mounted: false; reason: string };

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
  options: { home: string; method: LinkMethod; projection?: Projection; remote?: Remote | undefined },
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
  const registered = await registerUnchanged(plan, options, started);
  if (registered) return registered;
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
  // a mount stays one; with the mount projection a target velo made (or saw cargo make) becomes one; one it adopted is left as it is
  const remount = isVeloMount(targetDir) || (options.projection === 'mount' && (state !== undefined || !plan.targetPresent));
  const store = Store.open(options.home);
  try {
    return await withLease(store, 'install', async () => {
      const result = await snapshotTarget(store, {
        targetDir,
        projectRoot: root,
        packages,
        // a mounted target's files cargo left alone are the view tree's, mtimes and all
        previousTree: state?.viewTree ?? state?.snapshot,
        incremental: plan.inv.incremental,
        withIncrementalTree: remount,
      });
      if (state && state.snapshot === result.tree && state.key === key.id) {
        writeTargetState(targetDir, { ...state, ...rustcCache, project: root, signature: result.signature });
        return { action: 'unchanged', snapshot: result.tree, ms: performance.now() - started } as const;
      }
      // the same tree already stored under this key (a profile switch that compiled nothing): no new snapshot
      const same = bestSnapshot(store, key.id, root);
      const snapshot = same?.tree === result.tree ? same : addSnapshot(store, key.id, result.tree, { files: result.files, logicalBytes: result.logicalBytes });
      const stateFields = {
        project: root,
        key: key.id,
        snapshot: snapshot.tree,
        snapshotName: snapshot.name,
        snapshotCreated: snapshot.created,
        ...rustcCache,
      };
      // the target as it is now is velo's first; a remount then replaces it whole
      writeTargetState(targetDir, { ...stateFields, signature: result.signature });
      const remounted = remount ? await remountTarget(store, result.fullTree, targetDir, snapshot, stateFields) : undefined;
      if (remounted?.mounted) useSnapshot(store, root, snapshot, 'mount', 'mount');
      else useSnapshot(store, root, snapshot, targetMethod(store, options.method, targetDir));
      // the remote keeps one snapshot per key: the first published (cargo's fingerprints rebuild what is stale)
      await options.remote?.publish(store, [snapshot.name], [SNAPSHOT_KIND], { remoteName: () => remoteSnapshotName(key.id) });
      return { action: 'stored', snapshot, result, ms: performance.now() - started, remount: remounted, reused: snapshot === same } as const;
    }, { project: targetDir });
  } finally {
    store.close();
  }
}

/** The Cargo.lock part of a keyMaterial() (its stat), or undefined. */
function lockOf(material: string | undefined): string | undefined {
  if (material === undefined) return undefined;
  try {
    return (JSON.parse(material) as { lock?: string }).lock;
  } catch {
    return undefined;
  }
}

/**
 * A build that changed nothing but the key (a profile switch, a feature set
 * built before, all fresh): the target is file for file the snapshot velo
 * last stored or restored, so that snapshot is registered under this key
 * too — no cargo metadata, no file read. Only with Cargo.lock unchanged
 * (the stale-unit rule reads it); otherwise undefined and the target is
 * stored as usual.
 */
async function registerUnchanged(
  plan: CargoPlan,
  options: { home: string; method: LinkMethod },
  started: number,
): Promise<RecordOutcome | undefined> {
  const targetDir = plan.location.targetDir;
  const state = readTargetState(targetDir);
  if (!state?.snapshot || !state.snapshotName || plan.inv.incremental || !isTargetPresent(targetDir)) return undefined;
  const lock = lockOf(plan.keyMaterial);
  if (lock === undefined || lock !== lockOf(state.keyMaterial)) return undefined;
  if (targetSignature(walkTarget(targetDir, { incremental: false })) !== state.signature) return undefined;
  const root = plan.location.root;
  const rustc = await rustcInfo({ env: plan.env, cwd: root, toolchain: plan.inv.toolchain });
  const key = snapshotKey(plan.inv, lockDigest(readLock(root)), rustc.verbose, plan.env);
  const store = Store.open(options.home);
  try {
    return await withLease(store, 'install', async () => {
      const stored = findSnapshot(store, state.snapshotName!);
      if (!stored || stored.tree !== state.snapshot) return undefined;
      const same = bestSnapshot(store, key.id, root);
      const snapshot = same?.tree === stored.tree ? same : addSnapshot(store, key.id, stored.tree, { files: stored.files, logicalBytes: stored.logicalBytes });
      writeTargetState(targetDir, {
        ...state,
        project: root,
        key: key.id,
        snapshot: snapshot.tree,
        snapshotName: snapshot.name,
        snapshotCreated: snapshot.created,
        rustcStamp: toolchainStamp({ env: plan.env, cwd: root, toolchain: plan.inv.toolchain }),
        rustcVerbose: rustc.verbose,
        keyMaterial: keyMaterial(plan.inv, statBits(join(root, 'Cargo.lock')), rustc.verbose, plan.env),
      });
      if (isVeloMount(targetDir)) useSnapshot(store, root, snapshot, 'mount', 'mount');
      else useSnapshot(store, root, snapshot, targetMethod(store, options.method, targetDir));
      return { action: 'registered', snapshot, ms: performance.now() - started, reused: snapshot === same } as const;
    }, { project: targetDir });
  } finally {
    store.close();
  }
}

async function remountTarget(
  store: Store,
  tree: string,
  targetDir: string,
  snapshot: SnapshotInfo,
  state: Parameters<typeof buildMountTree>[1]['state'],
): Promise<RemountOutcome> {
  const t0 = performance.now();
  try {
    const made = buildMountTree(store, { source: tree, projectRoot: state.project, check: false, state });
    const view = keepViewTree(store, made.viewTree, { files: made.files, logicalBytes: made.bytes });
    const m = await mountTarget(store, made.tree, targetDir, { keys: [snapshot.name, view], within: enclosingRoot(targetDir, state.project) });
    return { mounted: true, replaced: m.replaced, upper: m.upper, ms: performance.now() - t0 };
  } catch (err) {
    // the snapshot is stored and the target is intact (with its state): only the remount did not happen
    return { mounted: false, reason: err instanceof TargetMountUnavailable ? err.reason : (err as Error).message };
  }
}
