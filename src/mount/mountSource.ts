/**
 * What `velo mount <tree|project-dir>` mounts: a tree digest as given, or
 * the tree velo last laid out at a directory — the project registered at
 * that path, else the one registered directly below it (a project dir's
 * node_modules or .venv).
 */
import { dirname, resolve } from 'node:path';
import { VeloError } from '../errors.js';
import { isDigest } from '../store/hash.js';
import { listProjects, type ProjectRecord } from '../store/keys.js';
import type { Store } from '../store/store.js';
import { hasTree } from '../store/trees.js';

export interface MountSource {
  tree: string;
  /** the registered project the tree came from (undefined: a digest was given) */
  project: ProjectRecord | undefined;
}

export function resolveMountSource(store: Store, arg: string, cwd: string = process.cwd()): MountSource {
  if (isDigest(arg)) {
    if (!hasTree(store, arg)) throw new VeloError('NOT_FOUND', `unknown tree ${arg}: it is not in the store at ${store.home}`);
    return { tree: arg, project: undefined };
  }
  const path = resolve(cwd, arg);
  const projects = listProjects(store);
  const newest = (list: ProjectRecord[]): ProjectRecord => list.reduce((a, b) => (b.updated > a.updated ? b : a));
  const exact = projects.filter((p) => p.path === path);
  const below = projects.filter((p) => dirname(p.path) === path);
  const pick = exact.length > 0 ? newest(exact) : below.length === 1 ? below[0] : undefined;
  if (pick === undefined && below.length > 1) {
    throw new VeloError('USAGE', `velo laid out several trees under ${path}: ${below.map((p) => `${p.path} (${p.ecosystem})`).join(', ')}; name one of them`);
  }
  if (pick === undefined) {
    throw new VeloError('NOT_FOUND', `${arg} is neither a tree digest nor a directory velo installed (see velo status)`);
  }
  if (!hasTree(store, pick.tree)) throw new VeloError('NOT_FOUND', `the tree velo installed at ${pick.path} (${pick.tree}) is no longer in the store`);
  return { tree: pick.tree, project: pick };
}
