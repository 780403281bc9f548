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
import { ingestTarball, type TarballIngest } from './ingestTarball.js';
import { npmLibrary, type AnyRecord, type LoadedNpmConfig } from './userNpm.js';
import type { PlannedPackage } from './plan.js';
import type { Store } from '../store/store.js';

/** The lockfile resolves the package to a git repository. */
export function isGitPackage(pkg: PlannedPackage): boolean {
  return /^git(\+[a-z]+)?:/.test(pkg.resolved ?? '');
}

/** Whether npm counts the package as the project's (or a workspace's) own dependency, for allow-git=root. */
function isRootDependency(node: AnyRecord): boolean {
  return Boolean(node.isRootDependency) || [...(node.edgesIn ?? [])].some((e: AnyRecord) => e.valid && (e.from?.isProjectRoot || e.from?.isWorkspace));
}

export async function fetchGitPackage(store: Store, loaded: LoadedNpmConfig, pkg: PlannedPackage): Promise<TarballIngest | undefined> {
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
