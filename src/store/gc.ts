/**
 * `velo gc`: delete what no registered project references. Roots are the
 * registered projects whose directories still exist: their trees and the
 * package/snapshot keys they use. Everything reachable from a root tree is
 * live; other keys, trees and objects go. gc holds the store's only "gc"
 * lease, which it gets only while no install is running, and installs wait
 * for it — so gc never deletes what a running install needs.
 *
 * Order, so that a gc killed at any point leaves only garbage, never damage:
 * the refs/ files the index lacks are read in first; the dead projects and
 * keys are forgotten (their ref files and index rows, one transaction); then
 * trees go, then objects. A tree is deleted only when no key or project names
 * it, and an object only when no remaining tree does.
 */
import { existsSync, lstatSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { acquireLease } from './lock.js';
import { addCounters } from './counters.js';
import { readTreeBuffer } from './trees.js';
import { dropLazyRecords } from '../remote/lazyRecord.js';
import { parseTree } from './treeFormat.js';
import { walkStoreDir } from './walkStore.js';
import { writeTransaction } from './indexDb.js';
import { cleanTmp } from './verify.js';
import { acceptRoots, rootsKnown, syncIndexFromRefs } from './indexRecovery.js';
import { removeKeyRef, removeProjectRef } from './refs.js';
import { VeloError } from '../errors.js';
import type { Store } from './store.js';

export interface GcOptions {
  dryRun?: boolean;
  /** a project is gone when this says so (default: its directory no longer exists) */
  projectExists?: (path: string, ecosystem: string) => boolean;
  /** the user says every project using the store is registered again after an index rebuilt without its roots */
  rootsRegistered?: boolean;
}

export interface GcReport {
  dryRun: boolean;
  projectsDropped: string[];
  keysDeleted: number;
  treesDeleted: number;
  treeBytes: number;
  objectsDeleted: number;
  objectBytes: number;
  liveObjects: number;
}

export function collectGarbage(store: Store, options: GcOptions = {}): GcReport {
  const dryRun = options.dryRun === true;
  if (!rootsKnown(store.index)) {
    if (options.rootsRegistered !== true) {
      throw new VeloError(
        'REFUSED',
        'gc cannot tell which projects use this store: its index was rebuilt from a store that kept no project refs (format 1), so gc would delete what those projects use',
        { hint: 'run the install again in every project that uses this store (that registers it), then run velo gc --roots-registered' },
      );
    }
    if (!dryRun) acceptRoots(store.index);
  }
  const lease = dryRun ? undefined : acquireLease(store, 'gc');
  try {
    return sweep(store, dryRun, options.projectExists ?? ((path) => existsSync(path)));
  } finally {
    lease?.release();
  }
}

function sweep(store: Store, dryRun: boolean, projectExists: (path: string, ecosystem: string) => boolean): GcReport {
  const db = store.index;
  syncIndexFromRefs(store);
  const report: GcReport = { dryRun, projectsDropped: [], keysDeleted: 0, treesDeleted: 0, treeBytes: 0, objectsDeleted: 0, objectBytes: 0, liveObjects: 0 };
  const projects = db.prepare('SELECT path, ecosystem, tree, projection FROM projects').all() as { path: string; ecosystem: string; tree: string; projection: string }[];
  const liveTrees = new Set<string>();
  const liveProjects: { path: string; ecosystem: string }[] = [];
  for (const p of projects) {
    // a mount whose server died answers ENOTCONN: it still exists (velo mounts repairs it);
    // only velo umount ends a mounted project
    if (p.projection !== 'mount' && !projectExists(p.path, p.ecosystem)) {
      report.projectsDropped.push(`${p.path} (${p.ecosystem})`);
      continue;
    }
    liveProjects.push(p);
    liveTrees.add(p.tree);
  }
  const keys = db.prepare('SELECT name, tree FROM keys').all() as { name: string; tree: string }[];
  const usedKeys = new Set<string>();
  const keyStmt = db.prepare('SELECT key FROM project_keys WHERE path = ? AND ecosystem = ?');
  for (const p of liveProjects) for (const row of keyStmt.all(p.path, p.ecosystem) as { key: string }[]) usedKeys.add(row.key);
  const deadKeys: string[] = [];
  for (const k of keys) {
    if (usedKeys.has(k.name) || usedKeys.has(companionOf(k.name))) liveTrees.add(k.tree);
    else deadKeys.push(k.name);
  }
  const liveObjects = new Set<string>();
  for (const tree of liveTrees) {
    let entries;
    try {
      entries = parseTree(readTreeBuffer(store, tree)).entries;
    } catch {
      continue; // a damaged tree keeps nothing alive; verify reports it
    }
    for (const e of entries) if (e.kind === 'file') liveObjects.add(e.digest + (e.exec ? 'x' : ''));
  }
  report.liveObjects = liveObjects.size;
  report.keysDeleted = deadKeys.length;
  if (!dryRun) {
    // forget first: a gc killed later leaves unreferenced trees and objects (garbage), never a key or project naming a deleted tree
    writeTransaction(db, () => {
      const delKey = db.prepare('DELETE FROM keys WHERE name = ?');
      for (const name of deadKeys) {
        removeKeyRef(store, name);
        delKey.run(name);
      }
      const delProject = db.prepare('DELETE FROM projects WHERE path = ? AND ecosystem = ?');
      const delProjectKeys = db.prepare('DELETE FROM project_keys WHERE path = ? AND ecosystem = ?');
      for (const p of projects) {
        if (liveProjects.includes(p)) continue;
        removeProjectRef(store, p.path, p.ecosystem);
        delProject.run(p.path, p.ecosystem);
        delProjectKeys.run(p.path, p.ecosystem);
      }
    });
  }
  for (const f of walkStoreDir(join(store.home, 'trees'))) {
    if (f.malformed || liveTrees.has(f.digest)) continue;
    report.treesDeleted++;
    report.treeBytes += sizeOf(f.path);
    if (!dryRun) unlinkSync(f.path);
  }
  for (const f of walkStoreDir(join(store.home, 'objects'))) {
    if (f.malformed || liveObjects.has(f.digest + (f.exec ? 'x' : ''))) continue;
    report.objectsDeleted++;
    report.objectBytes += sizeOf(f.path);
    if (!dryRun) unlinkSync(f.path);
  }
  if (!dryRun) {
    addCounters(store, {
      objects: -report.objectsDeleted,
      object_bytes: -report.objectBytes,
      trees: -report.treesDeleted,
      tree_bytes: -report.treeBytes,
    });
    cleanTmp(store);
    // a lazy mount's record goes with its tree, or once nothing it names is missing
    dropLazyRecords(store, (tree) => liveTrees.has(tree));
  }
  return report;
}

function sizeOf(path: string): number {
  try {
    return lstatSync(path).size;
  } catch {
    return 0;
  }
}

/**
 * A key that lives as long as another: a uv distribution's bytecode
 * (`uv-pyc:…`, src/uv/bytecodeKey.ts) grows after the environments that use
 * it registered their keys, and lives while its distribution (`uv:…`) does.
 */
function companionOf(name: string): string {
  return name.startsWith('uv-pyc:') ? `uv:${name.slice('uv-pyc:'.length)}` : '';
}
