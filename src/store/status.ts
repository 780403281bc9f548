/**
 * The figures behind `velo status`, from the index's counters and project
 * records (no walk of the store).
 */
import { existsSync } from 'node:fs';
import { readCounters } from './counters.js';
import { listProjects, type ProjectRecord } from './keys.js';
import type { Store } from './store.js';

export interface StoreStatus {
  home: string;
  digest: string;
  objects: number;
  physicalBytes: number;
  trees: number;
  treeBytes: number;
  keys: number;
  projects: ProjectRecord[];
  /** registered projects whose directories are gone: left out of every figure above, the next gc unregisters them */
  missingProjects: ProjectRecord[];
  /** sum of the logical sizes of every registered project's tree */
  logicalBytes: number;
  /** logical / physical (1 when nothing is shared) */
  dedupRatio: number;
  bytesSaved: number;
  /** projection methods in use by registered projects, with counts */
  methods: Record<string, number>;
  /** methods auto-probing chose, per (store fs, destination fs) */
  probes: { pair: string; method: string }[];
}

export function storeStatus(store: Store): StoreStatus {
  const c = readCounters(store);
  // `velo init` registers a project before anything is installed: not a tree to count
  // a project whose directory is gone is gc's to drop (a mount stays until unmounted): not counted
  const registered = listProjects(store).filter((p) => p.ecosystem !== 'init');
  const projects = registered.filter((p) => p.projection === 'mount' || existsSync(p.path));
  const logical = projects.reduce((sum, p) => sum + p.logicalBytes, 0);
  const methods: Record<string, number> = {};
  for (const p of projects) {
    const m = p.projection === 'mount' ? 'mount' : p.method || 'unknown';
    methods[m] = (methods[m] ?? 0) + 1;
  }
  const keys = Number((store.index.prepare('SELECT count(*) AS n FROM keys').get() as { n: number }).n);
  const probes = store.index.prepare('SELECT pair, method FROM probes').all() as { pair: string; method: string }[];
  return {
    home: store.home,
    digest: store.meta.digest,
    objects: c.objects,
    physicalBytes: c.object_bytes,
    trees: c.trees,
    treeBytes: c.tree_bytes,
    keys,
    projects,
    missingProjects: registered.filter((p) => !projects.includes(p)),
    logicalBytes: logical,
    dedupRatio: c.object_bytes > 0 ? logical / c.object_bytes : 1,
    bytesSaved: Math.max(0, logical - c.object_bytes),
    methods,
    probes,
  };
}
