/**
 * Target snapshots in the key index. A snapshot is a tree (the target dir,
 * with mtimes) named `cargo-target/<key id>/<created ms>` with kind
 * `cargo-target`; several can exist per key. The projects (workspace roots)
 * that made or restored a snapshot list it among their keys, which is what
 * keeps it alive through `velo gc`; `dropSnapshots` trims those lists.
 */
import { existsSync } from 'node:fs';
import { deleteKey, listKeys, listProjects, projectKeys, registerProject, saveProjectRef, setKey, type KeyRecord } from '../store/keys.js';
import { readTree } from '../store/trees.js';
import { writeTransaction } from '../store/indexDb.js';
import type { Store } from '../store/store.js';

export const SNAPSHOT_KIND = 'cargo-target';
export const CARGO_ECOSYSTEM = 'cargo';
const PREFIX = 'cargo-target/';
/** the key kind naming the tree a mounted target shows (mountTree.ts) */
export const VIEW_KIND = 'cargo-view';

export interface SnapshotInfo {
  name: string;
  /** the snapshot key id */
  key: string;
  tree: string;
  /** ms since the epoch */
  created: number;
  files: number;
  logicalBytes: number;
  /** registered projects that list this snapshot */
  projects: string[];
}

/** The name a remote knows a key's snapshot by: one per key, the first published wins. */
export function remoteSnapshotName(keyId: string): string {
  return `${PREFIX}${keyId}`;
}

export function snapshotName(keyId: string, createdMs: number): string {
  return `${PREFIX}${keyId}/${String(createdMs).padStart(15, '0')}`;
}

export function parseSnapshotName(name: string): { key: string; created: number } | undefined {
  const m = /^cargo-target\/([0-9a-f]{32})\/(\d{15})$/.exec(name);
  return m ? { key: m[1]!, created: Number(m[2]) } : undefined;
}

function toInfo(k: KeyRecord, projects: string[]): SnapshotInfo | undefined {
  const parsed = parseSnapshotName(k.name);
  if (!parsed) return undefined;
  return { name: k.name, key: parsed.key, tree: k.tree, created: parsed.created, files: k.files, logicalBytes: k.logicalBytes, projects };
}

function projectsBySnapshot(store: Store): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const p of listProjects(store)) {
    if (p.ecosystem !== CARGO_ECOSYSTEM) continue;
    for (const k of projectKeys(store, p.path, CARGO_ECOSYSTEM)) {
      if (!k.startsWith(PREFIX)) continue;
      out.set(k, [...(out.get(k) ?? []), p.path]);
    }
  }
  return out;
}

/** Every target snapshot, newest first. */
export function listSnapshots(store: Store): SnapshotInfo[] {
  const users = projectsBySnapshot(store);
  const out: SnapshotInfo[] = [];
  for (const k of listKeys(store, SNAPSHOT_KIND)) {
    const info = toInfo(k, users.get(k.name) ?? []);
    if (info) out.push(info);
  }
  return out.sort((a, b) => b.created - a.created || (a.name < b.name ? 1 : -1));
}

/** The snapshot of that name, or undefined. */
export function findSnapshot(store: Store, name: string): SnapshotInfo | undefined {
  const k = listKeys(store, SNAPSHOT_KIND).find((r) => r.name === name);
  return k ? toInfo(k, []) : undefined;
}

/**
 * The snapshot to restore for a key: the newest one this project made or
 * used (built from its own sources, so the most of it stays fresh), else the
 * newest one any project stored under the key.
 */
export function bestSnapshot(store: Store, keyId: string, projectRoot?: string): SnapshotInfo | undefined {
  const own = new Set(projectRoot === undefined ? [] : projectKeys(store, projectRoot, CARGO_ECOSYSTEM));
  let best: SnapshotInfo | undefined;
  let bestOwn: SnapshotInfo | undefined;
  for (const k of listKeys(store, SNAPSHOT_KIND)) {
    if (!k.name.startsWith(`${PREFIX}${keyId}/`)) continue;
    const info = toInfo(k, []);
    if (!info) continue;
    if (!best || info.created > best.created) best = info;
    if (own.has(k.name) && (!bestOwn || info.created > bestOwn.created)) bestOwn = info;
  }
  return bestOwn ?? best;
}

/** Put a snapshot in the index (created = now, unique per key). */
export function addSnapshot(store: Store, keyId: string, tree: string, stats: { files: number; logicalBytes: number }): SnapshotInfo {
  let created = Date.now();
  const taken = new Set(listKeys(store, SNAPSHOT_KIND).map((k) => k.name));
  while (taken.has(snapshotName(keyId, created))) created++;
  const name = snapshotName(keyId, created);
  setKey(store, name, tree, { kind: SNAPSHOT_KIND, files: stats.files, logicalBytes: stats.logicalBytes });
  return { name, key: keyId, tree, created, files: stats.files, logicalBytes: stats.logicalBytes, projects: [] };
}

/**
 * Name the tree a mounted target shows (`cargo-view/<tree>`): the mount
 * lists the name among its keys, so gc keeps the tree while the target is
 * mounted on it, and storing after a build can reuse its digests. A
 * remount lists another; gc then drops the old name.
 */
export function keepViewTree(store: Store, viewTree: string, stats: { files: number; logicalBytes: number }): string {
  const name = `cargo-view/${viewTree}`;
  setKey(store, name, viewTree, { kind: VIEW_KIND, files: stats.files, logicalBytes: stats.logicalBytes });
  return name;
}

/** Register a project as using a snapshot (it becomes a GC root), keeping the snapshots it already had. */
export function useSnapshot(store: Store, projectRoot: string, snapshot: SnapshotInfo, method: string, projection: 'link' | 'mount' = 'link'): void {
  const keys = new Set(projectKeys(store, projectRoot, CARGO_ECOSYSTEM).filter((k) => k.startsWith(PREFIX)));
  keys.add(snapshot.name);
  registerProject(store, {
    path: projectRoot,
    ecosystem: CARGO_ECOSYSTEM,
    tree: snapshot.tree,
    method,
    projection,
    files: snapshot.files,
    logicalBytes: snapshot.logicalBytes,
    keys: [...keys],
  });
}

export interface DropReport {
  dryRun: boolean;
  /** snapshot names no project uses any more (deleted from the index unless dryRun) */
  dropped: string[];
  /** snapshots still listed by some project */
  kept: number;
}

/**
 * Keep the `keep` newest snapshots of every cargo project; forget the rest.
 * A snapshot another project still keeps stays. Snapshots no project lists
 * are deleted from the index; their trees and objects go at the next gc
 * sweep (the lead's `velo gc --keep N` runs this, then the sweep).
 */
export function dropSnapshots(store: Store, keep: number, options: { dryRun?: boolean } = {}): DropReport {
  if (!Number.isInteger(keep) || keep < 0) throw new RangeError(`keep must be a whole number >= 0 (got ${keep})`);
  const dryRun = options.dryRun === true;
  // decided and applied in one write transaction: a snapshot registered meanwhile is never lost
  const run = (): DropReport => {
    const all = new Map(listSnapshots(store).map((s) => [s.name, s]));
    const stillUsed = new Set<string>();
    const del = store.index.prepare('DELETE FROM project_keys WHERE path = ? AND ecosystem = ? AND key = ?');
    const setTree = store.index.prepare('UPDATE projects SET tree = ? WHERE path = ? AND ecosystem = ?');
    for (const p of listProjects(store)) {
      if (p.ecosystem !== CARGO_ECOSYSTEM) continue;
      const snaps = projectKeys(store, p.path, CARGO_ECOSYSTEM)
        .filter((k) => all.has(k))
        .sort((a, b) => all.get(b)!.created - all.get(a)!.created || (a < b ? 1 : -1));
      const kept = snaps.slice(0, keep);
      for (const k of kept) stillUsed.add(k);
      if (dryRun) continue;
      for (const k of snaps.slice(keep)) del.run(p.path, CARGO_ECOSYSTEM, k);
      if (kept[0]) setTree.run(all.get(kept[0])!.tree, p.path, CARGO_ECOSYSTEM);
      saveProjectRef(store, p.path, CARGO_ECOSYSTEM);
    }
    const dropped = [...all.keys()].filter((k) => !stillUsed.has(k)).sort();
    if (!dryRun) for (const name of dropped) deleteKey(store, name);
    return { dryRun, dropped, kept: stillUsed.size };
  };
  return dryRun ? run() : writeTransaction(store.index, run);
}

export interface SnapshotSummary {
  /** snapshots a project that still exists lists (what gc keeps) */
  snapshots: number;
  /** cargo projects (workspace roots) that still exist and list a snapshot */
  projects: number;
  /** bytes those snapshots' target dirs hold, added up */
  logicalBytes: number;
  /** bytes of distinct file contents among them: what the store keeps */
  uniqueBytes: number;
  /** snapshots only deleted projects (or none) list: the next `velo gc` frees them */
  unreferenced: number;
}

/**
 * What the snapshots hold and what deduplication saves (reads every live
 * snapshot tree). A snapshot counts while a project that lists it exists —
 * gc's rule — so deleting a clone drops its snapshots from the figures
 * before gc frees them.
 */
export function summarizeSnapshots(store: Store, exists: (path: string) => boolean = existsSync): SnapshotSummary {
  const snaps = listSnapshots(store);
  const seen = new Map<string, number>();
  const projects = new Set<string>();
  let logical = 0;
  let live = 0;
  for (const s of snaps) {
    const owners = s.projects.filter((p) => exists(p));
    if (owners.length === 0) continue;
    live++;
    for (const p of owners) projects.add(p);
    let tree;
    try {
      tree = readTree(store, s.tree);
    } catch {
      continue;
    }
    for (const e of tree.entries) {
      if (e.kind !== 'file') continue;
      logical += e.size;
      seen.set(e.digest + (e.exec ? 'x' : ''), e.size);
    }
  }
  let unique = 0;
  for (const size of seen.values()) unique += size;
  return { snapshots: live, projects: projects.size, logicalBytes: logical, uniqueBytes: unique, unreferenced: snaps.length - live };
}
