/**
 * The download list of a lockfile install, built from the lockfile alone:
 * one download per distinct tarball (by integrity), however many places
 * the lockfile lists it at, each with the URL to GET (tarballUrl.ts).
 * Entries that are not registry tarballs with an integrity (git, local
 * files, remote tarballs without integrity) are left for the caller's
 * general fetcher.
 */
import { conventionalTarballUrl, isRemoteTarball, registryFor, replaceRegistryHost, type RegistryConfig } from './tarballUrl.js';

export interface LockedPackage {
  name: string;
  version: string;
  integrity: string | undefined;
  resolved: string | undefined;
}

export interface Download<P extends LockedPackage> {
  integrity: string;
  url: string;
  /** true when `url` was built from name and version (no `resolved`): a 404 there falls back to the packument */
  conventional: boolean;
  /** every lockfile entry with this integrity */
  packages: P[];
}

export interface DownloadList<P extends LockedPackage> {
  downloads: Download<P>[];
  /** entries that are not plain registry tarballs with an integrity */
  others: P[];
}

export function downloadList<P extends LockedPackage>(packages: readonly P[], config: RegistryConfig): DownloadList<P> {
  const byIntegrity = new Map<string, Download<P>>();
  const others: P[] = [];
  for (const p of packages) {
    const registryPackage = p.resolved === undefined || isRemoteTarball(p.resolved);
    if (!p.integrity || !registryPackage || !p.version) {
      others.push(p);
      continue;
    }
    const seen = byIntegrity.get(p.integrity);
    if (seen) {
      seen.packages.push(p);
      continue;
    }
    const conventional = p.resolved === undefined;
    const url = conventional ? conventionalTarballUrl(p.name, p.version, registryFor(p.name, config)) : replaceRegistryHost(p.resolved!, config);
    byIntegrity.set(p.integrity, { integrity: p.integrity, url, conventional, packages: [p] });
  }
  return { downloads: [...byIntegrity.values()], others };
}
