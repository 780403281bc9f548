/**
 * Stage 2 of a lockfile install: look every planned package up in the
 * store by its key, and fetch (then ingest) only the ones it lacks.
 */
import { getKeys } from '../store/keys.js';
import type { Store } from '../store/store.js';
import type { Plan, PlannedPackage } from './plan.js';
import type { LoadedNpmConfig } from './userNpm.js';
import type { InstallProgress } from './installTypes.js';

export interface PackageTrees {
  /** package key (or `unkeyed:<location>`) → tree */
  have: Map<string, string>;
  /** the packages this run fetched */
  missing: PlannedPackage[];
  fetchedBytes: number;
  /** what fetching dropped from tarballs (as npm's tar does), for the user */
  warnings: string[];
}

/** The key a package's tree is found under in `have`. */
export function treeKeyOf(p: PlannedPackage): string {
  return p.key ?? `unkeyed:${p.location}`;
}

export async function lookUpAndFetch(store: Store, loaded: LoadedNpmConfig, plan: Plan, progress: InstallProgress | undefined): Promise<PackageTrees> {
  const keyed = plan.packages.filter((p) => p.key);
  const have = getKeys(store, keyed.map((p) => p.key!));
  const missing = plan.packages.filter((p) => !p.key || !have.has(p.key));
  let fetchedBytes = 0;
  const warnings: string[] = [];
  if (missing.length > 0) {
    progress?.phase?.('fetch', `${missing.length} packages`);
    // loaded only when something is missing: tar alone is a large module
    const { fetchPackages } = await import('./fetchPackages.js');
    let done = 0;
    const fetched = await fetchPackages(store, loaded, missing, {
      onFetched: (_p, r) => {
        fetchedBytes += r.bytes;
        progress?.fetched?.(++done, missing.length, fetchedBytes);
      },
    });
    for (const f of fetched) {
      have.set(treeKeyOf(f.pkg), f.result.tree);
      warnings.push(...f.result.warnings);
    }
  }
  return { have, missing, fetchedBytes, warnings };
}
