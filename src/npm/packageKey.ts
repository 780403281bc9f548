/**
 * Package keys: the name under which a package's tree is stored. A registry
 * tarball is named by its integrity (the lockfile's sha512 names exactly one
 * set of bytes); a git dependency by its repository and the commit the
 * lockfile pins (`npm-git:<url without credentials>#<sha>`: what npm packed
 * from that commit, after its prepare script; `npm-git:unprepared:…` with
 * --ignore-scripts, which packs it unprepared), so no token in a URL ends up
 * in the store's index. Anything else (a remote tarball without integrity, a
 * local file) has no stable name and is fetched every time.
 *
 * Built packages (install scripts ran) add what the build depends on:
 * platform, arch, libc, the Node ABI, and the keys of the dependency
 * closure the scripts could see.
 */
import { createHash } from 'node:crypto';

export function packageKey(p: { integrity: string | undefined; resolved: string | undefined }, ignoreScripts = false): string | undefined {
  if (p.integrity) return `npm:${p.integrity}`;
  if (p.resolved && /^git(\+[a-z]+)?:.*#[0-9a-f]{40}$/.test(p.resolved)) {
    // with --ignore-scripts npm packs the clone without running prepare: another package
    const unprepared = ignoreScripts ? 'unprepared:' : '';
    return `npm-git:${unprepared}${p.resolved.replace(/^(git(\+[a-z]+)?:\/\/)[^@/]*@/, '$1')}`;
  }
  return undefined;
}

/** The key kinds a remote shares: registry and git packages as fetched (built trees stay per machine). */
export const REMOTE_KINDS = ['npm'] as const;

export function libcFamily(): string {
  if (process.platform !== 'linux') return 'none';
  const report = process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined;
  return report?.header?.glibcVersionRuntime ? 'glibc' : 'musl';
}

export function builtKey(pristineKey: string, closureKeys: string[]): string {
  const closure = createHash('sha256').update([...closureKeys].sort().join('\n')).digest('hex').slice(0, 32);
  return `npm-built:${process.platform}-${process.arch}-${libcFamily()}-node-abi${process.versions.modules}:${closure}:${pristineKey}`;
}
