/**
 * Compose the tree of each node_modules directory from package trees: every
 * package grafted at its location, workspace and file: links as relative
 * symlinks, and `.bin` links next to each package's node_modules, as
 * bin-links makes them (a bin whose target is not there, in a package or a
 * linked folder, is not linked). Packages whose scripts will run (or ran) are
 * private: copied, never hardlinked, since their scripts write into them.
 */
import { posix } from 'node:path';
import { graftTrees, readTree, type GraftPart } from '../store/trees.js';
import type { TreeEntry } from '../store/treeFormat.js';
import type { Store } from '../store/store.js';
import { PATH_MAX, shortPath } from './pathLimits.js';
import { nodeModulesRootOf, type Plan, type PlannedLink, type PlannedPackage } from './plan.js';
import { presentBins } from './linkScripts.js';

export interface PlacedPackage {
  pkg: PlannedPackage;
  tree: string;
  private: boolean;
}

export interface NodeModulesTree {
  /** relative to the project root, e.g. 'node_modules' */
  dir: string;
  tree: string;
}

export interface ComposedNodeModules {
  trees: NodeModulesTree[];
  /** entries left out because their path in this project would be too long, per package */
  warnings: string[];
}

/**
 * Leave out what npm's tar could not create in this project: an entry whose
 * absolute path would reach PATH_MAX fails there with ENAMETOOLONG, and npm
 * warns and goes on (the directories above it that fit are still made).
 */
function fittingPaths(absDir: string, pkgid: string): { keep: (path: string) => boolean; warning: () => string | undefined } {
  const base = Buffer.byteLength(absDir) + 1;
  const dropped: string[] = [];
  return {
    keep: (path) => base + Buffer.byteLength(path) < PATH_MAX || (dropped.push(path), false),
    warning: () => {
      if (dropped.length === 0) return undefined;
      return `${pkgid}: dropped ${dropped.length} entr${dropped.length === 1 ? 'y' : 'ies'} whose path in ${absDir} would be longer than ${PATH_MAX - 1} bytes (first: ${shortPath(dropped[0]!)})`;
    },
  };
}

/** The .bin directory bin-links uses for a package at `location` (relative to its node_modules root). */
function binDirFor(relLocation: string): string {
  // 'foo' → '.bin'; '@s/foo' → '.bin'; 'a/node_modules/b' → 'a/node_modules/.bin'
  const parts = relLocation.split('/');
  const nameLen = parts[parts.length - 2]?.startsWith('@') && parts.length >= 2 && (parts.length === 2 || parts[parts.length - 3] === 'node_modules') ? 2 : 1;
  const parent = parts.slice(0, parts.length - nameLen).join('/');
  return parent ? `${parent}/.bin` : '.bin';
}

/**
 * `.bin` links for one package. `has` says whether a bin target is in the
 * package: bin-links makes no link for a target that is not there.
 */
function addBins(entries: Map<string, TreeEntry>, relLocation: string, bins: Map<string, string>, has: (path: string) => boolean = () => true): void {
  if (bins.size === 0) return;
  const binDir = binDirFor(relLocation);
  for (const [name, path] of bins) {
    if (!has(path)) continue;
    const linkPath = `${binDir}/${name}`;
    if (entries.has(linkPath)) continue; // the first package (by location) keeps the name
    const target = posix.relative(binDir, `${relLocation}/${path}`);
    entries.set(linkPath, { path: linkPath, kind: 'symlink', target });
  }
}

/** Does a package tree hold this path (file, directory or symlink)? */
function pathsOf(store: Store, tree: string): (path: string) => boolean {
  const paths = new Set(readTree(store, tree).entries.map((e) => e.path));
  return (path) => paths.has(path);
}

/**
 * `linkBins`: lay out the links' bins (those whose target exists now, as
 * bin-links would); false when npm's rebuild links them after the links'
 * prepare scripts (linkScripts.ts).
 */
export function composeNodeModules(store: Store, plan: Plan, placed: PlacedPackage[], linkBins = true): ComposedNodeModules {
  const fits: ReturnType<typeof fittingPaths>[] = [];
  const byDir = new Map<string, { parts: GraftPart[]; extra: Map<string, TreeEntry> }>();
  const group = (location: string): { rel: string; g: { parts: GraftPart[]; extra: Map<string, TreeEntry> } } => {
    const dir = nodeModulesRootOf(location);
    let g = byDir.get(dir);
    if (!g) byDir.set(dir, (g = { parts: [], extra: new Map() }));
    return { rel: location.slice(dir.length + 1), g };
  };
  for (const dir of plan.nodeModulesDirs) group(`${dir}/x`);
  for (const p of placed) {
    const { rel, g } = group(p.pkg.location);
    const fit = fittingPaths(`${plan.root}/${nodeModulesRootOf(p.pkg.location)}`, `${p.pkg.name}@${p.pkg.version}`);
    fits.push(fit);
    g.parts.push({ prefix: rel, tree: p.tree, private: p.private, keep: fit.keep });
    // a package whose scripts run may still create its bin targets (npm links after preinstall): linked as declared
    if (plan.binLinks) addBins(g.extra, rel, p.pkg.bins, p.private || p.pkg.bins.size === 0 ? undefined : pathsOf(store, p.tree));
  }
  for (const link of plan.links as PlannedLink[]) {
    const { rel, g } = group(link.location);
    g.extra.set(rel, { path: rel, kind: 'symlink', target: link.target });
    if (plan.binLinks && linkBins) addBins(g.extra, rel, presentBins(link));
  }
  const out: NodeModulesTree[] = [];
  for (const [dir, g] of [...byDir.entries()].sort(([a], [b]) => (a < b ? -1 : 1))) {
    out.push({ dir, tree: graftTrees(store, g.parts, [...g.extra.values()]) });
  }
  return { trees: out, warnings: fits.map((f) => f.warning()).filter((w): w is string => w !== undefined) };
}
