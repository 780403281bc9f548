/**
 * A git dependency (git+https, git+ssh, github:user/repo, git+file…), fetched
 * as npm's reify fetches it: pacote's GitFetcher clones the repository at the
 * locked commit, installs the package's dependencies (dev included) and runs
 * its `prepare` script when it has one — with the user's npm, its
 * configuration and its cache, as npm does — and packs the result; velo
 * streams that tarball into the store. The caller records it under a key
 * naming the commit (packageKey.ts), so another project locked to the same
 * commit gets it from the store with no clone.
 */
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { VeloError } from '../errors.js';
import type { TarballIngest } from './ingestTarball.js';
import { npmLibrary, type AnyRecord, type LoadedNpmConfig } from './userNpm.js';
import type { PlannedPackage } from './plan.js';
import type { Store } from '../store/store.js';

/** The lockfile resolves the package to a git repository. */
export function isGitResolved(resolved: string | undefined): boolean {
  return /^git(\+[a-z]+)?:/.test(resolved ?? '');
}

export function isGitPackage(pkg: PlannedPackage): boolean {
  return isGitResolved(pkg.resolved);
}

/** Whether npm counts the package as the project's (or a workspace's) own dependency, for allow-git=root (as reify computes _isRoot). */
function isRootDependency(node: AnyRecord): boolean {
  return Boolean(node.isRootDependency) || [...(node.edgesIn ?? [])].some((e: AnyRecord) => e.valid && (e.from?.isProjectRoot || e.from?.isWorkspace));
}

/**
 * npm's allow-git policy (pacote applies it when it fetches): `none` refuses
 * every git dependency, `root` those the project or a workspace does not
 * declare. Checked while planning, so a package already in the store is
 * refused as npm would refuse it.
 */
export function assertGitAllowed(pkg: { name: string; version: string; resolved: string | undefined; node: AnyRecord }, allowGit: unknown): void {
  if (allowGit === undefined || allowGit === 'all') return;
  if (allowGit === 'root' && isRootDependency(pkg.node)) return;
  throw new VeloError('REFUSED', `${pkg.name}@${pkg.version} (${pkg.resolved}): fetching ${allowGit === 'root' ? 'non-root ' : ''}packages of type "git" is disabled (allow-git=${String(allowGit)})`, {
    hint: 'npm refuses it too; allow it with --allow-git=all (or root), or drop the git dependency',
  });
}

export async function fetchGitPackage(store: Store, loaded: LoadedNpmConfig, pkg: PlannedPackage): Promise<TarballIngest | undefined> {
  const { ingestTarball } = await import('./ingestTarball.js');
  const pacote = npmLibrary(loaded.npm, 'pacote');
  const opts: AnyRecord = {
    // the user's npm cache too: the clone's dependencies are installed with it, as npm does
    ...loaded.flat,
    resolved: pkg.resolved,
    integrity: pkg.integrity,
    // GitFetcher packs the prepared clone with arborist, and installs its
    // dependencies by running npm: the user's own, not whichever is on PATH
    Arborist: npmLibrary(loaded.npm, '@npmcli/arborist'),
    ...(loaded.npm.root ? { npmBin: join(loaded.npm.root, 'bin', 'npm-cli.js') } : {}),
    _isRoot: isRootDependency(pkg.node),
  };
  let result: TarballIngest | undefined;
  try {
    await pacote.tarball.stream(
      `${pkg.name}@${pkg.resolved}`,
      async (stream: NodeJS.ReadableStream) => {
        result = await ingestTarball(store, stream as unknown as Readable, { pkgid: `${pkg.name}@${pkg.version}`, bins: new Set(pkg.bins.values()) });
      },
      opts,
    );
  } catch (err) {
    throw describeGitError(pkg, err as AnyRecord);
  }
  return result;
}

/** git's or the prepare step's own words (its stderr's last lines), not only "an unknown git error". */
function describeGitError(pkg: PlannedPackage, err: AnyRecord): unknown {
  if (err instanceof VeloError) return err;
  const said = String(err.stderr ?? '')
    .trim()
    .split('\n')
    .filter(Boolean)
    .slice(-6)
    .join('\n');
  if (!said) return err;
  const what = /preparation/.test(String(err.message)) ? 'preparing it (npm install and its prepare script in the clone) failed' : 'git failed';
  return new VeloError('TOOL_FAILED', `${pkg.name}@${pkg.version} (${pkg.resolved}): ${what}:\n${said}`, { cause: err });
}
