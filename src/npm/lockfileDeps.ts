/**
 * Which packages each package of a lockfile requires, by package key — for a
 * lazy mount's fetcher, which takes a package's dependencies along when the
 * package is first opened (Node's require goes on to them next). Read from
 * the lockfile's `packages` map (lockfile v2/v3, as npm writes it), each
 * dependency name resolved as Node resolves it: the nearest
 * `node_modules/<name>` up from the requiring package's folder. The
 * lockfile is untrusted: anything that is not what npm writes is skipped,
 * and the result only ever decides what is downloaded early.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

type Entry = { integrity?: unknown; dependencies?: unknown; optionalDependencies?: unknown; peerDependencies?: unknown };

const names = (deps: unknown): string[] => (deps && typeof deps === 'object' && !Array.isArray(deps) ? Object.keys(deps) : []);

/** `node_modules/a/node_modules/b` → `node_modules/a`; `node_modules/a` → '' */
function parentOf(location: string): string {
  const at = location.lastIndexOf('/node_modules/');
  return at < 0 ? '' : location.slice(0, at);
}

/** package key → the keys of the packages it requires (registry packages, keyed `npm:<integrity>` as packageKey.ts keys them) */
export function dependencyKeys(lockfileText: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  let packages: Record<string, Entry>;
  try {
    const raw = (JSON.parse(lockfileText) as { packages?: unknown }).packages;
    if (!raw || typeof raw !== 'object' || Array.isArray(raw)) return out;
    packages = raw as Record<string, Entry>;
  } catch {
    return out;
  }
  const keyAt = (location: string): string | undefined => {
    const e = packages[location];
    return e && typeof e === 'object' && typeof e.integrity === 'string' ? `npm:${e.integrity}` : undefined;
  };
  for (const [location, entry] of Object.entries(packages)) {
    const key = location === '' ? undefined : keyAt(location);
    if (!key || !entry || typeof entry !== 'object') continue;
    const deps = new Set<string>();
    for (const name of new Set([...names(entry.dependencies), ...names(entry.optionalDependencies), ...names(entry.peerDependencies)])) {
      for (let base = location; ; base = parentOf(base)) {
        const found = keyAt(`${base === '' ? '' : `${base}/`}node_modules/${name}`);
        if (found) {
          if (found !== key) deps.add(found);
          break;
        }
        if (base === '') break;
      }
    }
    const have = out.get(key);
    out.set(key, have ? [...new Set([...have, ...deps])] : [...deps]);
  }
  return out;
}

/** The project's lockfile (npm-shrinkwrap.json first, as npm reads it), or '' when it has none. */
export function readProjectLockfile(root: string): string {
  for (const name of ['npm-shrinkwrap.json', 'package-lock.json']) {
    try {
      return readFileSync(join(root, name), 'utf8');
    } catch {
      /* the next */
    }
  }
  return '';
}
