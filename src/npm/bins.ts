/**
 * A package's bins as npm links them (npm-normalize-package-bin, then
 * bin-links): a string bin is named after the package, an array's entries
 * after their basenames; every name is cut to its last path component (with
 * `\` and `:` as separators), and every target is resolved against the
 * package root as if that were `/`, so `../../x` becomes `x` and `/etc/x`
 * becomes `etc/x`: a target never leaves its package. Names or targets that
 * come out empty are dropped. (bin-links then skips a bin whose target is
 * not in the package: layout.ts does the same.)
 */
import { posix } from 'node:path';

/** A bin target, package-relative and clamped inside the package; '' when nothing is left. */
export function normalizeBinPath(p: string): string {
  return posix.join('/', p.replace(/\\/g, '/')).slice(1);
}

function normalizeBinName(key: string): string {
  return posix.join('/', posix.basename(key.replace(/\\|:/g, '/'))).slice(1);
}

/** bin name → package-relative target, from a package.json or lockfile entry. */
export function normalizeBins(pkg: { name?: unknown; bin?: unknown } | undefined): Map<string, string> {
  const out = new Map<string, string>();
  const bin = pkg?.bin;
  let raw: [string, unknown][];
  if (!bin) return out;
  if (typeof bin === 'string') {
    if (typeof pkg?.name !== 'string' || !pkg.name) return out;
    raw = [[pkg.name, bin]];
  } else if (Array.isArray(bin)) {
    raw = bin.filter((k): k is string => typeof k === 'string').map((k) => [posix.basename(k), k]);
  } else if (typeof bin === 'object') {
    raw = Object.entries(bin as Record<string, unknown>);
  } else return out;
  for (const [key, value] of raw) {
    const name = normalizeBinName(key);
    if (typeof value !== 'string' || !name) continue;
    const target = normalizeBinPath(value);
    if (target) out.set(name, target);
  }
  return out;
}
