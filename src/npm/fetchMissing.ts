/**
 * Stage 2 of a lockfile install: look every planned package up in the
 * store by its key, and fetch (then ingest) only the ones it lacks.
 */
import { getKeys } from '../store/keys.js';
import type { Store } from '../store/store.js';
import type { Plan, PlannedPackage } from './plan.js';
import type { LoadedNpmConfig } from './userNpm.js';
import type { InstallProgress } from './installTypes.js';
import type { Remote } from '../remote/remote.js';
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
}

/** The lockfile's key set, which names its bundle in the remote. */
export function lockfileKeys(plan: Plan): string[] {
  return [...new Set(plan.packages.flatMap((p) => (p.key ? [p.key] : [])))];
}

/** The key a package's tree is found under in `have`. */
export function treeKeyOf(p: PlannedPackage): string {
  return p.key ?? `unkeyed:${p.location}`;
}

export async function lookUpAndFetch(store: Store, loaded: LoadedNpmConfig, plan: Plan, progress: InstallProgress | undefined, remote?: Remote): Promise<PackageTrees> {
  const keyed = plan.packages.filter((p) => p.key);
  const have = getKeys(store, keyed.map((p) => p.key!));
  let fromRemote = 0;
  const lacking = [...new Set(keyed.map((p) => p.key!).filter((k) => !have.has(k)))];
  if (remote && lacking.length > 0) {
    progress?.phase?.('fetch', `${lacking.length} packages from the remote`);
    for (const [key, tree] of await remote.fill(store, lacking, REMOTE_KINDS, { bundle: lockfileKeys(plan) })) {
      have.set(key, tree);
      fromRemote++;
    }
  }
  const missing = plan.packages.filter((p) => !p.key || !have.has(p.key));
  let fetchedBytes = 0;
  const warnings: string[] = [];
  if (missing.length > 0) {
    progress?.phase?.('fetch', `${missing.length} packages`);
    // the remote was just asked for these and lacks them: their objects upload as
    // each lands in the store, their keys only after the install succeeded
    const publishing = remote !== undefined && lacking.length > 0;
    if (publishing) await remote.beginPublish(store);

    // loaded only when something is missing: tar alone is a large module
    const { fetchPackages } = await import('./fetchPackages.js');
    let done = 0;
    const fetched = await fetchPackages(store, loaded, missing, {
      onFetched: (p, r) => {
        if (publishing && p.key) remote.offer(p.key, r.tree);
        fetchedBytes += r.bytes;
        progress?.fetched?.(++done, missing.length, fetchedBytes);
      },
    });
    for (const f of fetched) {
      have.set(treeKeyOf(f.pkg), f.result.tree);
      warnings.push(...f.result.warnings);
    }
    if (publishing) remote.offersDone();
  }
  return { have, missing, fromRemote, fetchedBytes, warnings };
}
