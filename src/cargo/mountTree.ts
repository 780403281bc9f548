/**
 * The tree a mounted target shows, made from a snapshot before anything is
 * mounted: what restoreTarget.ts does in a staging directory for a copy,
 * done to the tree's entries instead (no file is written, so nothing is
 * copied up):
 *
 * 1. the freshness check (freshness.ts) against the project's sources: the
 *    invalidated units' files are left out, and when the checkout is newer
 *    than the snapshot every file gets one mtime;
 * 2. uplifted files become symlinks to the files cargo links them from
 *    (upliftLinks.ts), so cargo's per-build hardlinks copy nothing up;
 * 3. velo's state file goes in (`.velo/state.json`, with the signature a
 *    walk of the mount will give), so the target is complete, checked and
 *    marked as velo's the moment it appears.
 *
 * The tree without the state file (the "view tree") is stored too: the
 * state names it, and storing after a build reuses its digests.
 */
import { putTree, readTree } from '../store/trees.js';
import { toTreeEntries, type TreeEntry } from '../store/treeFormat.js';
import { writeBufferToStore } from '../store/writeBufferToStore.js';
import type { Store } from '../store/store.js';
import { MANIFEST_PATH, parseManifest, planFreshness, type FreshnessPlan, type FreshnessResult } from './freshness.js';
import { STATE_DIR, STATE_FILE, serializeTargetState, type TargetState } from './targetState.js';
import { TreeIndex, treeFreshnessView, treeWalkSource } from './targetTreeSource.js';
import { linkUplifts } from './upliftLinks.js';
import { targetSignature, walkSource } from './targetWalk.js';

export interface MountTreeOptions {
  /** the tree to show: a snapshot, or after a build the target as stored (with incremental/) */
  source: string;
  projectRoot: string;
  /**
   * run the freshness check (a restore). false right after a build in this
   * checkout: the tree is what cargo just left, and cargo's own checks see
   * the mount exactly as they saw the directory
   */
  check: boolean;
  /** what the state file says, besides the signature and view tree (computed here) */
  state: Omit<TargetState, 'version' | 'updated' | 'signature' | 'viewTree'>;
  nowMs?: number;
}

export interface MountTree {
  /** the tree to mount: the view tree plus velo's state file */
  tree: string;
  /** the same without the state file */
  viewTree: string;
  signature: string;
  freshness: FreshnessResult;
  /** uplifted files made symlinks */
  uplifts: number;
  files: number;
  bytes: number;
}

const TREE_OPTIONS = { mtimes: true, root: { path: '', kind: 'dir', mtimeNs: 0n } } as const;

export function buildMountTree(store: Store, options: MountTreeOptions): MountTree {
  const nowMs = options.nowMs ?? Date.now();
  const index = new TreeIndex(toTreeEntries(readTree(store, options.source)));
  index.delete(`${STATE_DIR}/${STATE_FILE}`);
  const view = treeFreshnessView(store, index);
  const manifestBytes = view.read(MANIFEST_PATH);
  const plan: FreshnessPlan = options.check
    ? planFreshness(view, options.projectRoot, manifestBytes ? parseManifest(manifestBytes) : undefined, nowMs)
    : { result: { units: 0, kept: 0, invalidated: [], restamped: false }, remove: [], stampNs: undefined };
  for (const rel of plan.remove) index.delete(rel);
  if (plan.stampNs !== undefined) {
    for (const e of index.byPath.values()) if (e.kind !== 'dir') e.mtimeNs = plan.stampNs;
  }
  const uplifts = linkUplifts(index);
  const signature = targetSignature(walkSource(treeWalkSource(index), { incremental: false }));
  const entries = index.entries();
  const viewTree = putTree(store, entries, TREE_OPTIONS);
  const stateBytes = serializeTargetState({ ...options.state, signature, viewTree }, nowMs);
  const added = writeBufferToStore(store, stateBytes, false);
  const stateEntry: TreeEntry = { path: `${STATE_DIR}/${STATE_FILE}`, kind: 'file', exec: false, size: stateBytes.length, digest: added.digest, mtimeNs: BigInt(nowMs) * 1_000_000n };
  const tree = putTree(store, [...entries, stateEntry], TREE_OPTIONS);
  let files = 0;
  let bytes = 0;
  for (const e of entries) {
    if (e.kind !== 'file') continue;
    files++;
    bytes += e.size ?? 0;
  }
  return { tree, viewTree, signature, freshness: plan.result, uplifts, files, bytes };
}
