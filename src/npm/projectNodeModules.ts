/**
 * Stage 4 of an install: put each node_modules directory in place — mounted
 * (FUSE view + writable layer) or materialized beside the old tree and
 * swapped in — under the install lease, keeping the old trees aside so any
 * later failure puts them back.
 */
import { lstatSync, statSync } from 'node:fs';
import { isAbsolute, join, relative, resolve } from 'node:path';
import { VeloError } from '../errors.js';
import type { Projection } from '../config.js';
import { acquireLease } from '../store/lock.js';
import { materialize } from '../projection/materialize.js';
import { restoreAside } from '../projection/atomicSwap.js';
import { isContained, projectionTarget } from '../projection/containment.js';
import { clearPending, clearState } from './state.js';
import type { Aside, InstallOptions } from './installTypes.js';
import type { LazyTrees } from '../remote/lazyTrees.js';

/** One node_modules dir as it was laid out. */
export interface ProjectedDir {
  dir: string;
  tree: string;
  projection: Projection;
  method: string;
  engine: string;
  files: number;
  bytes: number;
  linked: number;
  logicalBytes: number;
}

/**
 * Hold the install lease (and this project's lock) while fn lays trees out;
 * on failure put the previous trees back (fn records them in `asides`).
 */
export async function underLease<T>(o: InstallOptions, root: string, fn: (asides: Aside[]) => Promise<T>): Promise<T> {
  const lease = acquireLease(o.store, 'install', { project: root, onWait: o.onWait });
  const asides: Aside[] = [];
  try {
    clearState(o.store.home, root);
    return await fn(asides);
  } catch (err) {
    rollBack(root, asides);
    clearPending(o.store.home, root);
    throw err;
  } finally {
    lease.release();
    o.store.flushCounters();
  }
}

/**
 * Put each node_modules dir in place: mounted (FUSE view + overlay) when the
 * projection is "mount" and nothing needs building in it, else materialized
 * with the old trees kept aside (recorded in asides) for a rollback. With
 * `lazy`, a mount fetches objects on first open; anything linked has them
 * all fetched first.
 */
export async function projectDirs(
  o: InstallOptions,
  root: string,
  dirs: [dir: string, tree: string][],
  asides: Aside[],
  mountable: boolean,
  lazy?: LazyTrees,
): Promise<{ results: ProjectedDir[]; note: string | undefined }> {
  let note: string | undefined;
  // every destination is proven inside the project before the first is touched
  for (const [dir] of dirs) projectionTarget(join(root, dir), root);
  const mountsNeeded = o.projection === 'mount' || dirs.some(([dir]) => mightBeMountPoint(root, join(root, dir)));
  const mounts = mountsNeeded ? await import('../mount/mount.js') : undefined;
  if (mounts && o.projection === 'mount') {
    if (!mountable) note = 'packages or workspaces whose install scripts must run need a writable tree: node_modules was linked this time';
    else {
      try {
        const results: ProjectedDir[] = [];
        for (const [dir, tree] of dirs) {
          if (lazy && !lazy.record(tree)) await lazy.complete();
          const m = await mounts.mountProjection(o.store, tree, join(root, dir), { within: root, ecosystem: 'npm' });
          results.push({ dir, tree, projection: 'mount', method: m.method, engine: 'fuse', files: m.files, bytes: m.logicalBytes, linked: 0, logicalBytes: m.logicalBytes });
        }
        return { results, note };
      } catch (err) {
        if (!(err instanceof VeloError) || err.code !== 'FUSE_UNAVAILABLE') throw err;
        note = `${err.message}: node_modules was linked instead`;
      }
    }
  }
  await lazy?.complete();
  const results: ProjectedDir[] = [];
  for (const [dir, tree] of dirs) {
    const dest = join(root, dir);
    // a velo mount there goes first: a link farm cannot be renamed over a mount point
    if (mounts?.mountAt(o.store, dest)) await mounts.unmountProjection(dest, { store: o.store });
    const r = await materialize(o.store, tree, dest, { within: root, method: o.method, threads: o.threads, keepOld: true });
    asides.push({ dest, aside: r.aside });
    results.push({ dir, tree, projection: 'link', method: r.method, engine: r.engine, files: r.files, bytes: r.bytes, linked: r.linked + r.reflinked, logicalBytes: r.logicalBytes });
  }
  return { results, note };
}

/**
 * Whether dir could be a mount point (a velo mount to take down first): on
 * another device than the project, or a dead FUSE mount. Saves loading the
 * mount code on the common path.
 */
function mightBeMountPoint(root: string, dir: string): boolean {
  try {
    return statSync(dir).dev !== statSync(root).dev;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code !== 'ENOENT';
  }
}

/** Write node_modules/.package-lock.json — except on a read-only mount, where npm reads the tree itself. */
export async function writeHiddenLockfile(write: () => void | Promise<void>): Promise<void> {
  try {
    await write();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EROFS') throw err;
  }
}

/** Put the previous trees back, newest first; every path is checked to lie inside the project first. */
export function rollBack(root: string, asides: Aside[]): void {
  for (const a of asides.reverse()) {
    try {
      restoreAside(projectionTarget(a.dest, root), a.aside);
    } catch {
      /* best effort; recoverLeftovers finishes it next run */
    }
  }
  asides.length = 0;
}

/**
 * npm ci empties the node_modules of the root and of every workspace before
 * it installs (whatever --workspace says). Those that exist here and get
 * nothing now (a workspace's nested packages from an earlier lockfile) are
 * laid out empty, through the same projection as the rest; never one outside
 * the project, symlinked folders resolved. `planned`: the dirs the install lays out, relative to root.
 */
export function leftoverNodeModules(root: string, workspaceFolders: Iterable<string>, planned: Set<string>): string[] {
  const out: string[] = [];
  for (const folder of [root, ...workspaceFolders]) {
    const rel = relative(root, resolve(root, folder, 'node_modules'));
    if (rel.startsWith('..') || isAbsolute(rel) || planned.has(rel) || out.includes(rel)) continue;
    if (!lstatSync(join(root, rel), { throwIfNoEntry: false })?.isDirectory()) continue;
    if (isContained(join(root, rel), root)) out.push(rel); // a symlinked workspace folder may lead out
  }
  return out;
}
