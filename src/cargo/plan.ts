/**
 * The first step of `velo cargo`, on every run: read the command line, find
 * the workspace and its target dir, ask rustc who it is, and compute the
 * snapshot key. Then the no-op test: a target dir velo made under the same
 * key needs nothing before cargo starts. This module and what it imports
 * stay light (node built-ins only): it is all the no-op path loads.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseCargoArgs, type CargoInvocation } from './cargoArgs.js';
import { applyRemap } from './remapPathPrefix.js';
import { cachedKey, keyMaterial, lockDigest, snapshotKey, type SnapshotKey } from './snapshotKey.js';
import { readTargetState, STATE_DIR, type TargetState } from './targetState.js';
import { parseRustcVerbose, rustcInfo, statBits, toolchainStamp, type RustcInfo } from './toolchain.js';
import { locateWorkspace, type WorkspaceLocation } from './workspace.js';

export interface CargoPlan {
  inv: CargoInvocation;
  cwd: string;
  env: NodeJS.ProcessEnv;
  location: WorkspaceLocation;
  rustc: RustcInfo;
  /** toolchainStamp() of this run, saved with rustc's answer in the target's state */
  rustcStamp: string;
  key: SnapshotKey;
  /** keyMaterial() of this run, saved with the key id in the target's state */
  keyMaterial: string;
  state: TargetState | undefined;
  /** the target dir exists and holds something besides velo's state */
  targetPresent: boolean;
}

export function readLock(root: string): Buffer | undefined {
  try {
    return readFileSync(join(root, 'Cargo.lock'));
  } catch {
    return undefined;
  }
}

export function isTargetPresent(targetDir: string): boolean {
  try {
    return readdirSync(targetDir).some((n) => n !== STATE_DIR);
  } catch {
    return false;
  }
}

export interface PlanOptions {
  /** cargo.remapPathPrefix: the workspace root is given to rustc as this (remapPathPrefix.ts) */
  remapTo?: string | undefined;
}

export async function planCargoRun(args: string[], cwd: string, baseEnv: NodeJS.ProcessEnv, options: PlanOptions = {}): Promise<CargoPlan> {
  const inv = parseCargoArgs(args);
  const location = locateWorkspace(cwd, { manifestPath: inv.manifestPath, targetDir: inv.targetDir, env: baseEnv });
  const env = options.remapTo === undefined ? baseEnv : applyRemap(inv, baseEnv, location.root, options.remapTo);
  const state = readTargetState(location.targetDir);
  const stamp = toolchainStamp({ env, cwd: location.root, toolchain: inv.toolchain });
  const rustcPromise =
    state?.rustcStamp === stamp && state.rustcVerbose
      ? Promise.resolve(parseRustcVerbose(state.rustcVerbose))
      : rustcInfo({ env, cwd: location.root, toolchain: inv.toolchain });
  const targetPresent = isTargetPresent(location.targetDir);
  const rustc = await rustcPromise;
  const lockStat = statBits(join(location.root, 'Cargo.lock'));
  const material = keyMaterial(inv, lockStat, rustc.verbose, env);
  const key =
    state?.keyMaterial === material
      ? cachedKey(state.key, inv, lockStat, rustc.verbose, env)
      : snapshotKey(inv, lockDigest(readLock(location.root)), rustc.verbose, env);
  return { inv, cwd, env, location, rustc, rustcStamp: stamp, keyMaterial: material, key, state, targetPresent };
}

/** Nothing to do before cargo: the target is velo's, built under this very key. */
export function isNoOp(plan: CargoPlan): boolean {
  return plan.targetPresent && plan.state !== undefined && plan.state.key === plan.key.id && !plan.inv.force;
}
