/**
 * Stage 2 of a lockfile install: look every planned package up in the
 * store by its key, then in the remote, and fetch (then ingest) from the
 * registry only the ones still missing. With a lazy mount ahead
 * (`--projection mount` and a remote) the remote gives the trees only; their
 * objects are fetched when first opened through the mount, or all at once by
 * completeLazyTrees when the tree must be linked after all.
 */
import { getKeys } from '../store/keys.js';
import type { Store } from '../store/store.js';
import type { Plan, PlannedPackage } from './plan.js';
import type { LoadedNpmConfig } from './userNpm.js';
import type { InstallProgress } from './installTypes.js';
import type { Remote } from '../remote/remote.js';
import type { LazyFill } from '../remote/fill.js';
import { REMOTE_KINDS } from './packageKey.js';

export interface PackageTrees {
  /** package key (or `unkeyed:<location>`) → tree */
  have: Map<string, string>;
  /** the packages this run fetched from the registry */
  missing: PlannedPackage[];
  /** the packages that came from the remote */
  fromRemote: number;
  fetchedBytes: number;
  /** what fetching dropped from tarballs (as npm's tar does), for the user */
  warnings: string[];
  /** trees from the remote whose objects are still there (a lazy mount fetches them on first open) */
  lazy?: LazyFill;
}

/** The lockfile's key set, which names its bundle in the remote. */
export function lockfileKeys(plan: Plan): string[] {
  return [...new Set(plan.packages.flatMap((p) => (p.key ? [p.key] : [])))];
}

/** The key a package's tree is found under in `have`. */
export function treeKeyOf(p: PlannedPackage): string {
  return p.key ?? `unkeyed:${p.location}`;
}

export async function lookUpAndFetch(
  store: Store,
  loaded: LoadedNpmConfig,
  plan: Plan,
  progress: InstallProgress | undefined,
  remote?: Remote,
  lazy = false,
): Promise<PackageTrees> {
  const keyed = plan.packages.filter((p) => p.key);
  const have = getKeys(store, keyed.map((p) => p.key!));
  const out: PackageTrees = { have, missing: [], fromRemote: 0, fetchedBytes: 0, warnings: [] };
  const lacking = [...new Set(keyed.map((p) => p.key!).filter((k) => !have.has(k)))];
  if (remote && lacking.length > 0) {
    progress?.phase?.('fetch', `${lacking.length} packages from the remote`);
    let found: Map<string, string>;
    if (lazy) {
      const fill = await remote.fillLazy(store, lacking, REMOTE_KINDS, lockfileKeys(plan));
      found = fill?.trees ?? new Map();
      // nothing left in the remote: the keys can be set right away (no download)
      if (fill && fill.missing.size === 0) found = await remote.completeLazy(store, fill);
      else if (fill) out.lazy = fill;
    } else found = await remote.fill(store, lacking, REMOTE_KINDS, { bundle: lockfileKeys(plan) });
    for (const [key, tree] of found) {
      have.set(key, tree);
      out.fromRemote++;
    }
  }
  // the remote was just asked for these and lacks them: their objects upload as
  // each lands in the store, their keys only after the install succeeded
  const publisher = remote !== undefined && lacking.length > 0 ? remote : undefined;
  await fetchFromRegistry(store, loaded, plan.packages.filter((p) => !p.key || !have.has(p.key)), progress, out, publisher);
  return out;
}

/**
 * A lazy fill's trees are to be linked (or built) after all: download their
 * objects now; packages the remote then fails for come from the registry.
 */
export async function completeLazyTrees(store: Store, loaded: LoadedNpmConfig, plan: Plan, progress: InstallProgress | undefined, remote: Remote, trees: PackageTrees): Promise<void> {
  const lazy = trees.lazy;
  if (!lazy) return;
  trees.lazy = undefined;
  progress?.phase?.('fetch', `${lazy.trees.size} packages from the remote`);
  const done = await remote.completeLazy(store, lazy);
  const failed = new Set([...lazy.trees.keys()].filter((k) => !done.has(k)));
  for (const k of failed) trees.have.delete(k);
  trees.fromRemote -= failed.size;
  await fetchFromRegistry(store, loaded, plan.packages.filter((p) => p.key !== undefined && failed.has(p.key)), progress, trees);
}

async function fetchFromRegistry(
  store: Store,
  loaded: LoadedNpmConfig,
  missing: PlannedPackage[],
  progress: InstallProgress | undefined,
  out: PackageTrees,
  publisher?: Remote,
): Promise<void> {
  if (missing.length === 0) return;
  progress?.phase?.('fetch', `${missing.length} packages`);
  if (publisher) await publisher.beginPublish(store);
  // loaded only when something is missing: tar alone is a large module
  const { fetchPackages } = await import('./fetchPackages.js');
  let done = 0;
  const fetched = await fetchPackages(store, loaded, missing, {
    ...(publisher ? { encodeFor: (p: PlannedPackage) => p.key !== undefined && publisher.wantsObjects(p.key) } : {}),
    onFetched: (p, r) => {
      // the objects its ingest encoded go to the publisher, and are not kept with the install's results
      if (publisher && p.key) publisher.offer(p.key, r.tree, r.encoded, 'npm');
      delete r.encoded;
      out.fetchedBytes += r.bytes;
      progress?.fetched?.(++done, missing.length, out.fetchedBytes);
    },
  });
  for (const f of fetched) {
    out.have.set(treeKeyOf(f.pkg), f.result.tree);
    out.warnings.push(...f.result.warnings);
  }
  if (publisher) publisher.offersDone();
  out.missing.push(...missing);
}
