/**
 * After a no-op build: is the target exactly what velo last stored or
 * restored, under the same key? Then there is nothing to store, and the
 * store (SQLite, the hash addon, the tree code) need not even be loaded.
 * Also keeps the target's caches of rustc -vV and the key current.
 */
import type { CargoPlan } from './plan.js';
import { isTargetPresent } from './plan.js';
import { readTargetState, writeTargetState } from './targetState.js';
import { targetSignature, walkTarget } from './targetWalk.js';

export function targetUnchanged(plan: CargoPlan): boolean {
  const targetDir = plan.location.targetDir;
  const state = readTargetState(targetDir);
  if (!state?.snapshot || state.key !== plan.key.id || plan.inv.incremental || !isTargetPresent(targetDir)) return false;
  if (targetSignature(walkTarget(targetDir, { incremental: false })) !== state.signature) return false;
  if (state.rustcStamp !== plan.rustcStamp || state.keyMaterial !== plan.keyMaterial) {
    // the caches missed (plan asked rustc, hashed Cargo.lock): keep the answers for the next no-op run
    writeTargetState(targetDir, { ...state, rustcStamp: plan.rustcStamp, rustcVerbose: plan.rustc.verbose, keyMaterial: plan.keyMaterial });
  }
  return true;
}
