/**
 * Fetch the packages the store lacks, with the user's npm configuration
 * (registries, scopes, auth, proxy, cafile, offline), and stream each
 * tarball straight into the store. Registry tarballs with an integrity go
 * the direct way (fetchTarballs.ts: one GET per distinct tarball at the URL
 * the lockfile implies, no packument); everything else — git, local and
 * remote tarballs without integrity, a 404 on a conventional URL, and
 * --offline (npm's cache) — goes through the user's npm's pacote.
 * Integrity is verified as the bytes flow; a key is recorded only for a
 * tarball that passed, so a failed or tampered download leaves nothing that
 * names it.
 */
import { VeloError } from '../errors.js';
import { setKey } from '../store/keys.js';
import type { Store } from '../store/store.js';
import { downloadList } from '../fetch/downloadList.js';
import type { RegistryConfig } from '../fetch/tarballUrl.js';
import { ingestTarball, type TarballIngest } from './ingestTarball.js';
import { fetchTarballs } from './fetchTarballs.js';
import { npmLibrary, type AnyRecord, type LoadedNpmConfig } from './userNpm.js';
import type { PlannedPackage } from './plan.js';
import { fetchGitPackage, isGitPackage } from './fetchGitPackage.js';

export interface FetchProgress {
  onFetched?: (pkg: PlannedPackage, result: TarballIngest) => void;
  /** a package whose objects a remote is to get: its tarball's ingest encodes them (TarballIngest.encoded) */
  encodeFor?: (pkg: PlannedPackage) => boolean;
}

export interface FetchedPackage {
  pkg: PlannedPackage;
  result: TarballIngest;
}

/** pacote spec for a planned package, as arborist's reify builds it */
function specOf(pkg: PlannedPackage): string {
  if (pkg.resolved && /^https?:/.test(pkg.resolved)) return `${pkg.name}@${pkg.resolved}`;
  if (pkg.resolved) return pkg.resolved.startsWith('file:') || pkg.resolved.startsWith('git') ? `${pkg.name}@${pkg.resolved}` : pkg.resolved;
  return `${pkg.name}@${pkg.version}`;
}

function describeFetchError(pkg: PlannedPackage, err: AnyRecord, offline: boolean): VeloError {
  const id = `${pkg.name}@${pkg.version}`;
  if (err instanceof VeloError) return err;
  const code = String(err.code ?? '');
  if (code === 'EINTEGRITY') {
    return new VeloError('INTEGRITY', `${id}: the downloaded tarball does not match the lockfile's integrity (${pkg.integrity ?? 'none'})`, {
      cause: err,
      hint: 'the registry served different bytes than the lockfile recorded; nothing was installed',
    });
  }
  if (code === 'ENOTCACHED' || (offline && /cache/i.test(String(err.message)))) {
    return new VeloError('NETWORK', `${id} is not in the velo store, and --offline forbids fetching it`, { cause: err });
  }
  if (code === 'E404') return new VeloError('NOT_FOUND', `${id}: not found in the registry (404)`, { cause: err });
  if (/^E\d{3}$/.test(code)) return new VeloError('NETWORK', `${id}: the registry answered ${code.slice(1)}`, { cause: err });
  if (['ECONNREFUSED', 'ECONNRESET', 'ENOTFOUND', 'ETIMEDOUT', 'EAI_AGAIN', 'FETCH_ERROR', 'ERR_SOCKET_TIMEOUT'].includes(code) || err.type === 'request-timeout' || /network|timeout|socket/i.test(String(err.message))) {
    return new VeloError('NETWORK', `${id}: cannot download it (${code || err.type || 'network error'}: ${err.message})`, { cause: err });
  }
  return new VeloError('TOOL_FAILED', `${id}: fetch failed: ${err.message ?? String(err)}`, { cause: err });
}

/** Run tasks with at most `limit` in flight; the first failure stops new starts. */
async function runLimited<T>(items: T[], limit: number, task: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  let failed: unknown;
  const workers = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (failed === undefined && next < items.length) {
      const item = items[next++]!;
      try {
        await task(item);
      } catch (err) {
        failed ??= err;
      }
    }
  });
  await Promise.all(workers);
  if (failed !== undefined) throw failed;
}

export async function fetchPackages(
  store: Store,
  loaded: LoadedNpmConfig,
  missing: PlannedPackage[],
  progress: FetchProgress = {},
): Promise<FetchedPackage[]> {
  const pacote = npmLibrary(loaded.npm, 'pacote');
  // Online, pacote gets no cache directory: it still reads npm's default cache
  // but never writes a second copy of a tarball there (velo's store is the
  // copy). Offline, npm's configured cache is the only other place a package
  // may come from, and nothing is written anyway.
  const offline = Boolean(loaded.flat.offline);
  const { cache: _cache, ...online } = loaded.flat;
  const flat = offline ? loaded.flat : online;
  const out: FetchedPackage[] = [];
  let viaPacote = missing;
  if (!offline && process.env.VELO_FETCH_DIRECT !== '0') {
    const list = downloadList(missing, loaded.flat as RegistryConfig);
    const direct = await fetchTarballs(store, loaded, list.downloads, (pkg, result) => progress.onFetched?.(pkg, result), progress.encodeFor);
    out.push(...direct.fetched);
    viaPacote = [...list.others, ...direct.notFound];
  }
  const concurrency = Number(process.env.VELO_FETCH_CONCURRENCY ?? 16);
  await runLimited(viaPacote, concurrency, async (pkg) => {
    const bins = new Set(pkg.bins.values());
    let result: TarballIngest | undefined;
    try {
      if (isGitPackage(pkg)) result = await fetchGitPackage(store, loaded, pkg);
      else await pacote.tarball.stream(
        specOf(pkg),
        async (stream: NodeJS.ReadableStream) => {
          result = await ingestTarball(store, stream as unknown as import('node:stream').Readable, { pkgid: `${pkg.name}@${pkg.version}`, bins });
        },
        { ...flat, resolved: pkg.resolved, integrity: pkg.integrity },
      );
    } catch (err) {
      throw describeFetchError(pkg, err as AnyRecord, offline);
    }
    if (!result) throw new VeloError('TOOL_FAILED', `${pkg.name}@${pkg.version}: pacote returned no tarball`);
    if (pkg.key) setKey(store, pkg.key, result.tree, { kind: 'npm', logicalBytes: result.bytes, files: result.files });
    out.push({ pkg, result });
    progress.onFetched?.(pkg, result);
  });
  return out;
}
