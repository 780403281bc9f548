/**
 * Before cargo runs (when the no-op test in plan.ts did not settle it):
 * decide whether to restore a snapshot into the target dir, and do it.
 *
 * - no target dir: restore the newest snapshot under the key, if any;
 * - a target dir velo did not make: left alone. If a snapshot would be
 *   restored: a dir plain cargo made (its CACHEDIR.TAG and
 *   .rustc_info.json) is adopted — cargo builds in it, velo stores the
 *   result; anything else is refused unless --force (nothing of the user's
 *   is replaced);
 * - velo's target dir under another key (Cargo.lock, toolchain or flags
 *   changed): restore when the store has a newer snapshot under the new key
 *   — after checking the dir is exactly as velo last left it (else refused
 *   unless --force);
 * - velo's target dir under the same key: left to cargo (it is already a
 *   descendant of a snapshot under this key).
 *
 * The same rules hold for a mounted target (they read it through its
 * overlay). How a restore projects the snapshot — copy, reflink or mount —
 * is restoreTarget.ts's business.
 */
import type { LinkMethod, Projection } from '../config.js';
import { VeloError } from '../errors.js';
import { withLease } from '../store/lock.js';
import { Store } from '../store/store.js';
import { isNoOp, isTargetPresent, readLock, type CargoPlan } from './plan.js';
import { restoreTarget, type RestoreOptions, type RestoreResult } from './restoreTarget.js';
import { keyMaterial, lockDigest, snapshotKey } from './snapshotKey.js';
import { addSnapshot, bestSnapshot, remoteSnapshotName, SNAPSHOT_KIND, useSnapshot, type SnapshotInfo } from './snapshots.js';
import { readTree } from '../store/trees.js';
import type { Remote } from '../remote/remote.js';

import { readTargetState } from './targetState.js';
import { targetSignature, walkTarget } from './targetWalk.js';
import { cargoCommand, statBits } from './toolchain.js';
import { lstatSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { cargoMetadata } from './workspace.js';

export type PrepareOutcome =
  | { action: 'none'; reason: 'no-snapshot' | 'same-key' | 'newer-target' | 'already-restored' | 'metadata-failed' | 'adopted' }
  | { action: 'restored'; snapshot: SnapshotInfo; restore: RestoreResult; replaced: boolean };

/** Ask cargo where the workspace and target dir really are, and re-key if the guess was wrong. */
export async function confirmLocation(plan: CargoPlan): Promise<boolean> {
  let meta;
  try {
    meta = await cargoMetadata({
      cwd: plan.cwd,
      env: plan.env,
      cargo: cargoCommand(plan.env),
      toolchain: plan.inv.toolchain,
      manifestPath: plan.inv.manifestPath,
      noDeps: true,
    });
  } catch {
    return false;
  }
  const rootChanged = meta.workspaceRoot !== plan.location.root;
  if (!plan.location.targetDirExplicit && meta.targetDirectory !== plan.location.targetDir) {
    plan.location.targetDir = meta.targetDirectory;
    plan.state = readTargetState(meta.targetDirectory);
    plan.targetPresent = isTargetPresent(meta.targetDirectory);
  }
  if (rootChanged) {
    plan.location.root = meta.workspaceRoot;
    plan.key = snapshotKey(plan.inv, lockDigest(readLock(meta.workspaceRoot)), plan.rustc.verbose, plan.env);
    plan.keyMaterial = keyMaterial(plan.inv, statBits(join(meta.workspaceRoot, 'Cargo.lock')), plan.rustc.verbose, plan.env);
  }
  return true;
}

/** Does a target dir carry the markers cargo writes into every target dir it makes (CACHEDIR.TAG by cargo, .rustc_info.json)? */
export function madeByCargo(targetDir: string): boolean {
  try {
    const tag = readFileSync(join(targetDir, 'CACHEDIR.TAG'), 'utf8');
    if (!tag.startsWith('Signature: 8a477f597d28d172789f06886806bc55') || !/created by cargo/.test(tag)) return false;
    return lstatSync(join(targetDir, '.rustc_info.json')).isFile();
  } catch {
    return false;
  }
}

/** No local snapshot for this key: the remote's (every byte checked), recorded as a local snapshot. */
async function snapshotFromRemote(store: Store, keyId: string, remote: Remote | undefined): Promise<SnapshotInfo | undefined> {
  if (!remote) return undefined;
  const tree = (await remote.fill(store, [remoteSnapshotName(keyId)], [SNAPSHOT_KIND], { setKeys: false })).get(remoteSnapshotName(keyId));
  if (!tree) return undefined;
  const parsed = readTree(store, tree);
  return addSnapshot(store, keyId, tree, { files: parsed.entries.filter((e) => e.kind === 'file').length, logicalBytes: parsed.logicalSize });
}
export interface PrepareOptions {
  home: string;
  method: LinkMethod;
  projection?: Projection;
  /** told before a mounted target is replaced by a copy (restoreTarget.ts) */
  onMountToCopy?: RestoreOptions['onMountToCopy'];
  /** the shared store on S3: asked for this key's snapshot when the local store has none */
  remote?: Remote | undefined;
}

export async function prepareTarget(plan: CargoPlan, options: PrepareOptions): Promise<PrepareOutcome> {
  if (!(await confirmLocation(plan))) return { action: 'none', reason: 'metadata-failed' };
  if (isNoOp(plan)) return { action: 'none', reason: 'same-key' };
  const { targetDir, root } = plan.location;
  const store = Store.open(options.home);
  try {
    return await withLease(store, 'install', async () => {
      const best = bestSnapshot(store, plan.key.id, root) ?? (await snapshotFromRemote(store, plan.key.id, options.remote));
      if (!best) return { action: 'none', reason: 'no-snapshot' } as const;
      const state = plan.state;
      if (plan.targetPresent) {
        if (!plan.inv.force) {
          if (!state) {
            // plain cargo's own target dir: cargo builds in it as it is, and velo stores the result (adopted)
            if (madeByCargo(targetDir)) return { action: 'none', reason: 'adopted' } as const;
            throw new VeloError('REFUSED', `${targetDir} was not made by velo, and has no CACHEDIR.TAG and .rustc_info.json from cargo; velo will not replace it with the stored snapshot`, {
              hint: 'run again with --force to replace it (or remove it, or keep it: plain cargo works as before)',
            });
          }
          if (state.snapshot === best.tree) return { action: 'none', reason: 'already-restored' } as const;
          if (state.key === plan.key.id) return { action: 'none', reason: 'same-key' } as const;
          if (best.created <= state.snapshotCreated) return { action: 'none', reason: 'newer-target' } as const;
          const now = targetSignature(walkTarget(targetDir, { incremental: false }));
          if (now !== state.signature) {
            throw new VeloError('REFUSED', `${targetDir} has changed since velo last restored or stored it; velo will not replace it`, {
              hint: 'run again with --force to replace it with the stored snapshot for this build',
            });
          }
        }
      }
      const restore = await restoreTarget(store, {
        snapshot: best,
        targetDir,
        projectRoot: root,
        method: options.method,
        projection: options.projection ?? 'link',
        rustc: { stamp: plan.rustcStamp, verbose: plan.rustc.verbose },
        keyMaterial: best.key === plan.key.id ? plan.keyMaterial : undefined,
        onMountToCopy: options.onMountToCopy,
      });
      useSnapshot(store, root, best, restore.method, restore.projection);
      return { action: 'restored', snapshot: best, restore, replaced: plan.targetPresent } as const;
    }, { project: targetDir });
  } finally {
    store.close();
  }
}
