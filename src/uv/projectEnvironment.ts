/**
 * Put a whole-environment tree at the environment's path, by velo's
 * projection:
 *  - link: the link farm (materialize: hardlinks for shared files, private
 *    copies for the per-environment ones), built beside the old environment
 *    and swapped in;
 *  - mount: the tree mounted at the environment's path (a read-only FUSE
 *    view of the store under a writable overlay): every write — pip, uv
 *    pip, python writing bytecode for an edited file, the per-environment
 *    files — lands in the mount's upper layer, never in the store. Where
 *    FUSE or overlayfs is unavailable the environment is linked instead and
 *    the result says why in one line (a read-only environment would break
 *    uv and pip, so velo never leaves one).
 * `finish` writes what must follow the tree (.velo-state) into the
 * directory that becomes the environment: the staging directory before the
 * swap, or the mounted environment itself.
 */
import { lstatSync } from 'node:fs';
import { enclosingRoot } from '../projection/containment.js';
import { dirname } from 'node:path';
import type { LinkMethod, Projection } from '../config.js';
import { VeloError } from '../errors.js';
import { materialize } from '../projection/materialize.js';
import { registerProject } from '../store/keys.js';
import type { Store } from '../store/store.js';
import type { MountStatus } from '../mount/mount.js';
import type { LazyTrees } from '../remote/lazyTrees.js';
import { STATE_FILE } from './envState.js';

export interface ProjectEnvOptions {
  store: Store;
  tree: string;
  envDir: string;
  /** the workspace the environment belongs to: velo touches nothing outside it (or outside the env's own parent, for an env placed elsewhere) */
  projectRoot: string;
  projection: Projection;
  method?: LinkMethod;
  threads?: number;
  backgroundRemoval: boolean;
  /** keys the environment uses (gc keeps them with the project) */
  keys: string[];
  packages: number;
  /** write the last files into the directory that becomes the environment */
  finish: (dir: string) => void | Promise<void>;
  /** the tree's objects are partly still in the remote: a mount fetches them on first open, a link farm has them all fetched first */
  lazy?: LazyTrees | undefined;
}

export interface ProjectedEnv {
  projection: Projection;
  /** hardlink/copy/reflink for a link farm, overlay for a mount */
  method: string;
  /** native or js (link farm), fuse (mount) */
  engine: string;
  files: number;
  logicalBytes: number;
  /** why the projection asked for was not used */
  note: string | undefined;
  /** the mount's writable layer */
  upper: string | undefined;
}

/** Is dest a mount point (or a dead one)? Only stats: most syncs never load the mount code. */
function isMountPoint(dest: string): boolean {
  try {
    const st = lstatSync(dest);
    if (!st.isDirectory()) return false;
    return st.dev !== lstatSync(dirname(dest)).dev;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ENOTCONN';
  }
}

async function linkEnvironment(o: ProjectEnvOptions, note: string | undefined): Promise<ProjectedEnv> {
  if (isMountPoint(o.envDir)) {
    // a link farm cannot be renamed over a mount point: the mount goes first
    const mounts = await import('../mount/mount.js');
    if (mounts.listMounts(o.store).some((m) => m.dest === o.envDir)) await mounts.unmountProjection(o.envDir, { store: o.store });
  }
  await o.lazy?.complete();
  const m = await materialize(o.store, o.tree, o.envDir, {
    within: enclosingRoot(o.envDir, o.projectRoot),
    ...(o.method ? { method: o.method } : {}),
    ...(o.threads ? { threads: o.threads } : {}),
    backgroundRemoval: o.backgroundRemoval,
    beforeSwap: o.finish,
  });
  registerProject(o.store, {
    path: o.envDir,
    ecosystem: 'uv',
    tree: o.tree,
    method: m.method,
    projection: 'link',
    logicalBytes: m.logicalBytes,
    files: m.files,
    packages: o.packages,
    keys: o.keys,
  });
  return { projection: 'link', method: m.method, engine: m.engine, files: m.files, logicalBytes: m.logicalBytes, note, upper: undefined };
}

/** Nothing but velo's own state was written through the mount. */
function pristine(upper: MountStatus['upperSummary']): boolean {
  return upper !== undefined && upper.deleted === 0 && upper.dirs === 0 && upper.files <= 1 && upper.paths.every((p) => p === STATE_FILE);
}

async function mountEnvironment(o: ProjectEnvOptions): Promise<ProjectedEnv> {
  const mounts = await import('../mount/mount.js');
  // the same tree mounted with changes in its upper layer (a package removed, a file edited):
  // mountProjection would keep it as it is, but a sync makes the environment exact again —
  // a new mount over an empty upper, swapped in atomically
  const current = mounts.listMounts(o.store).find((m) => m.dest === o.envDir);
  const edited = current !== undefined && current.tree === o.tree && !pristine(current.upperSummary);
  if (o.lazy && !o.lazy.record(o.tree)) await o.lazy.complete();
  let r;
  try {
    r = await mounts.mountProjection(o.store, o.tree, o.envDir, {
      within: enclosingRoot(o.envDir, o.projectRoot),
      ecosystem: 'uv',
      keys: o.keys,
      packages: o.packages,
      backgroundRemoval: o.backgroundRemoval,
      freshUpper: edited,
    });
  } catch (err) {
    if (!(err instanceof VeloError) || err.code !== 'FUSE_UNAVAILABLE') throw err;
    return linkEnvironment(o, `${err.message}: the environment was linked instead`);
  }
  if (r.upper === undefined) {
    // a read-only environment would break pip, uv pip and the per-environment files: link instead
    await mounts.unmountProjection(o.envDir, { store: o.store });
    const why = r.readOnlyReason ?? 'the mount is read-only';
    return linkEnvironment(o, `${why}; a Python environment must be writable: it was linked instead`);
  }
  await o.finish(o.envDir);
  return { projection: 'mount', method: r.method, engine: 'fuse', files: r.files, logicalBytes: r.logicalBytes, note: undefined, upper: r.upper };
}

export function projectEnvironment(o: ProjectEnvOptions): Promise<ProjectedEnv> {
  return o.projection === 'mount' ? mountEnvironment(o) : linkEnvironment(o, undefined);
}
