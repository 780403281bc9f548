/**
 * Workspaces' own lifecycle scripts (and those of any linked folder, e.g. a
 * file: dependency), as npm's reify runs them once the dependencies are
 * built: arborist's rebuild of the link nodes — every link's preinstall, then
 * prepare, then the links' bins (bin-links: a bin whose target does not exist
 * is not linked, so a bin built by prepare is linked), then install, then
 * postinstall. npm runs them on every install, the links it did not change
 * included; so does velo, on an otherwise unchanged project too (the no-op
 * reruns them, packages untouched).
 *
 * Light at import: the no-op path asks "any link scripts?" through this module.
 */
import { chmodSync, lstatSync } from 'node:fs';
import { join } from 'node:path';
import { isContained } from '../projection/containment.js';
import type { AnyRecord, LoadedNpmConfig } from './userNpm.js';

/** The events npm's rebuild runs for a linked package, in the order of their queues. */
export const LINK_SCRIPTS = ['preinstall', 'install', 'postinstall', 'prepare'] as const;

interface LinkLike {
  location: string;
  realpath: string;
  bins: Map<string, string>;
  hasScripts: boolean;
  node: AnyRecord;
}

/**
 * Whether the links are built by npm's rebuild (scripts run, bins linked
 * after prepare). Otherwise (no link scripts, or --ignore-scripts) their bins
 * are laid out with the tree, only those whose target exists.
 */
export function needsLinkBuild(links: LinkLike[], ignoreScripts: boolean): boolean {
  return !ignoreScripts && links.some((l) => l.hasScripts);
}

/** The links rebuild handles: those with scripts or bins. */
export function linksToBuild(links: LinkLike[]): LinkLike[] {
  return links.filter((l) => l.hasScripts || l.bins.size > 0);
}

/** A link's bins whose target is there now (bin-links skips the others). */
export function presentBins(link: LinkLike): Map<string, string> {
  const out = new Map<string, string>();
  for (const [name, path] of link.bins) if (lstatSync(join(link.realpath, path), { throwIfNoEntry: false })) out.set(name, path);
  return out;
}

/**
 * bin-links makes each bin it links executable (mode 0777 less the umask).
 * For the link bins laid out with the tree, velo does the same — for
 * regular files inside the project only: velo writes nothing outside it.
 */
export function makeLinkBinsExecutable(root: string, links: LinkLike[]): void {
  const mode = 0o777 & ~process.umask();
  for (const link of links) {
    for (const path of presentBins(link).values()) {
      const target = join(link.realpath, path);
      if (lstatSync(target, { throwIfNoEntry: false })?.isFile() && isContained(target, root)) chmodSync(target, mode);
    }
  }
}

/**
 * Run the links' build through npm's arborist (its rebuild, its order and
 * environment). A fresh arborist with the same options: rebuild keeps its
 * queues, so one that already built the dependencies would run their scripts
 * again.
 */
export async function runLinkBuild(arborist: AnyRecord, nodes: AnyRecord[]): Promise<void> {
  if (nodes.length === 0) return;
  const { scriptFailure } = await import('./scripts.js');
  const Arborist = arborist.constructor as new (options: AnyRecord) => AnyRecord;
  try {
    await new Arborist(arborist.options).rebuild({ nodes, handleOptionalFailure: true });
  } catch (err) {
    throw scriptFailure(err as AnyRecord, 'a workspace');
  }
}

/**
 * The no-op path: node_modules is as velo left it, but npm would run the
 * links' scripts again. Load the links from the lockfile (arborist reads
 * each linked folder's package.json) and rebuild them.
 */
export async function rerunLinkBuild(loaded: LoadedNpmConfig, root: string, locations: string[]): Promise<void> {
  const { npmLibrary } = await import('./userNpm.js');
  const Arborist = npmLibrary(loaded.npm, '@npmcli/arborist');
  const arb = new Arborist({ ...loaded.flat, path: root, packageLock: true, save: false, workspaces: [], allowScripts: loaded.allowScripts });
  await arb.loadVirtual();
  const inventory = arb.virtualTree.inventory as Map<string, AnyRecord>;
  const nodes = locations.map((l) => inventory.get(l)).filter((n): n is AnyRecord => Boolean(n?.isLink));
  await runLinkBuild(arb, nodes);
}
