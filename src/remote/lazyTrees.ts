/**
 * What an install does with a lazy fill (fill.ts lazyFillFromRemote) when it
 * projects: record each tree for a mount, whose fetcher (lazyFetcher.ts)
 * gets the missing objects on first open — or, when the tree is to be
 * linked after all (no FUSE at mount time, a tree that must be writable),
 * download every object first. Shared by npm (node_modules) and uv (the
 * environment).
 */
import { VeloError } from '../errors.js';
import type { Store } from '../store/store.js';
import type { LazyFill } from './fill.js';
import { lazyFetcherScript, recordLazyTree } from './lazyRecord.js';
import type { Remote } from './remote.js';

/** Trees whose objects are partly still in the remote. */
export interface LazyTrees {
  /** record a tree for a lazy mount (its fetcher gets the objects on first open); false: it cannot be, complete first */
  record(tree: string): boolean;
  /** fetch every object still in the remote (the trees are to be linked after all) */
  complete(): Promise<void>;
}

/** Thrown by complete() when the remote could not give every object: the caller plans without the remote's trees. */
export class LazyFillIncomplete extends VeloError {
  constructor() {
    super('NOT_FOUND', 'the remote could not give every object of this project');
  }
}

/**
 * The usual LazyTrees of one fill: record against `fill.missing`, complete
 * by downloading the rest and setting the keys. `deps` (read once, on the
 * first record) names each group's dependencies for the fetcher to take along.
 */
export function lazyTreesOf(store: Store, remote: Remote, fill: LazyFill, deps?: () => number[][]): LazyTrees {
  let completed = false;
  let depsRead: number[][] | undefined;
  return {
    record: (tree) => completed || recordLazyTree(store, remote.settings.url, fill.missing, tree, deps ? (depsRead ??= deps()) : undefined),
    complete: async () => {
      if (completed) return;
      const done = await remote.completeLazy(store, fill);
      if (done.size < fill.trees.size) throw new LazyFillIncomplete();
      completed = true;
    },
  };
}

/** Objects can be left in the remote for a mount to fetch: FUSE works here, the fetcher is built, and VELO_REMOTE_LAZY is not 0. */
export async function lazyMountPossible(env: NodeJS.ProcessEnv = process.env): Promise<boolean> {
  if (env.VELO_REMOTE_LAZY === '0' || lazyFetcherScript() === undefined) return false;
  const { fuseUnavailableReason } = await import('../mount/mount.js');
  return fuseUnavailableReason() === undefined;
}

/** For a lazy fill's groups (package key by group index): each group's dependency groups (`deps`: key → the keys it requires). */
export function groupDependencies(groups: readonly string[], deps: Map<string, string[]>): number[][] {
  const index = new Map<string, number>();
  groups.forEach((name, i) => {
    if (!index.has(name)) index.set(name, i);
  });
  return groups.map((name) => [...new Set((deps.get(name) ?? []).map((d) => index.get(d)).filter((i): i is number => i !== undefined))]);
}
