/**
 * Plan an install from the lockfile with the user's npm's arborist: the
 * ideal tree npm ci would build (optional packages that cannot install on
 * this platform are inert, omitted ones are left out), checked against the
 * lockfile as `npm ci` checks it, turned into a list of packages (with their
 * store keys) and links to place.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { VeloError } from '../errors.js';
import { npmLibrary, type AnyRecord, type LoadedNpmConfig } from './userNpm.js';
import { normalizeBins } from './bins.js';
import { packageKey } from './packageKey.js';
import { LINK_SCRIPTS } from './linkScripts.js';
import { assertGitAllowed, isGitResolved } from './fetchGitPackage.js';
import { leftoverNodeModules } from './projectNodeModules.js';

export interface PlannedPackage {
  location: string;
  name: string;
  version: string;
  integrity: string | undefined;
  resolved: string | undefined;
  /** store key of the pristine package, undefined when it cannot be cached */
  key: string | undefined;
  /** bin name → package-relative path */
  bins: Map<string, string>;
  /** the lockfile says the package has install scripts (or a binding.gyp) */
  hasInstallScript: boolean;
  /** false when the user's allowScripts policy denies its scripts */
  scriptsAllowed: boolean;
  optional: boolean;
  /** the arborist node, for running scripts */
  node: AnyRecord;
}

export interface PlannedLink {
  location: string;
  /** symlink text, relative to the link's directory */
  target: string;
  /** the linked folder (a workspace, a file: dependency) */
  realpath: string;
  bins: Map<string, string>;
  /** the linked package declares lifecycle scripts npm runs for links (preinstall, install, postinstall, prepare) */
  hasScripts: boolean;
  node: AnyRecord;
}

export interface Plan {
  root: string;
  packages: PlannedPackage[];
  links: PlannedLink[];
  /** node_modules directories to materialize, relative to root ('node_modules', 'packages/a/node_modules') */
  nodeModulesDirs: string[];
  /** of those, the ones npm ci empties and installs nothing into (a workspace's node_modules left from an earlier install) */
  emptiedDirs: string[];
  binLinks: boolean;
  ignoreScripts: boolean;
  arborist: AnyRecord;
  idealTree: AnyRecord;
  /** with --workspace (or --no-workspaces): the nodes npm installs; other nodes are left out */
  selected: Set<AnyRecord> | undefined;
}

export type InstallMode = 'ci' | 'install';

export function lockfilePath(root: string): string | undefined {
  for (const name of ['npm-shrinkwrap.json', 'package-lock.json']) {
    const p = join(root, name);
    if (existsSync(p)) return p;
  }
  return undefined;
}

/** Read the lockfile ourselves first, so a broken one gets a message naming it and the problem. */
export function checkLockfileSyntax(root: string): string | undefined {
  const path = lockfilePath(root);
  if (!path) return undefined;
  let data: unknown;
  try {
    data = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new VeloError('LOCKFILE', `${path} is not valid JSON: ${(err as Error).message}`, {
      hint: 'restore it from version control, or delete it and run velo npm install',
    });
  }
  const lock = data as { lockfileVersion?: unknown; packages?: unknown };
  if (typeof lock !== 'object' || lock === null || Array.isArray(lock)) throw new VeloError('LOCKFILE', `${path}: expected a JSON object`);
  if (typeof lock.lockfileVersion !== 'number') throw new VeloError('LOCKFILE', `${path}: lockfileVersion is missing or not a number`);
  if (lock.lockfileVersion < 2) {
    throw new VeloError('LOCKFILE', `${path}: lockfileVersion ${lock.lockfileVersion} is not supported (velo reads v2 and v3)`, {
      hint: 'run npm install once with npm 7 or newer to upgrade the lockfile',
    });
  }
  if (typeof lock.packages !== 'object' || lock.packages === null) throw new VeloError('LOCKFILE', `${path}: the "packages" section is missing`);
  for (const [loc, entry] of Object.entries(lock.packages as Record<string, unknown>)) {
    if (typeof entry !== 'object' || entry === null) throw new VeloError('LOCKFILE', `${path}: packages[${JSON.stringify(loc)}] is not an object`);
    refuseOutsideKey(root, path, loc);
    const e = entry as { link?: boolean; version?: unknown };
    if (loc.includes('node_modules/') && !e.link && typeof e.version !== 'string') {
      throw new VeloError('LOCKFILE', `${path}: packages[${JSON.stringify(loc)}] has no version`);
    }
  }
  return path;
}

/**
 * A package key (one naming something under a node_modules) must stay in
 * the project: `node_modules/../../x/node_modules/y`, an absolute path or
 * `node_modules/a/../../../x` would make velo write outside it. npm ignores
 * such keys; velo refuses the lockfile, before anything is written. Keys
 * without a node_modules component (a linked folder such as `../lib`) name
 * link targets, which velo only points a symlink at.
 */
function refuseOutsideKey(root: string, lockfile: string, key: string): void {
  if (!key.split(/[\\/]/).includes('node_modules')) return;
  const rel = relative(root, resolve(root, key));
  if (rel === '..' || rel.startsWith(`..${sep}`) || isAbsolute(rel)) {
    throw new VeloError('LOCKFILE', `${lockfile}: packages[${JSON.stringify(key)}] lies outside the project (${resolve(root, key)}); velo installs nothing outside ${root}`, {
      hint: 'the lockfile was edited by hand or crafted; restore it from a trusted source or regenerate it with npm install',
    });
  }
}

/**
 * The node_modules directories a package may be installed in: the
 * project's own and those of linked folders inside the project (workspaces,
 * file: dependencies). A node anywhere else (a key such as
 * `src/node_modules/x`) is refused.
 */
function allowedNodeModules(root: string, ideal: AnyRecord): Set<string> {
  const allowed = new Set(['node_modules']);
  for (const node of ideal.inventory.values() as Iterable<AnyRecord>) {
    if (!node.isLink || typeof node.realpath !== 'string') continue;
    const rel = relative(root, node.realpath);
    if (rel && rel !== '..' && !rel.startsWith(`..${sep}`) && !isAbsolute(rel)) allowed.add(`${rel.split(sep).join('/')}/node_modules`);
  }
  return allowed;
}

/** The node_modules directory a location lives in, e.g. 'packages/a/node_modules' for 'packages/a/node_modules/x/node_modules/y'. */
export function nodeModulesRootOf(location: string): string {
  const i = location.indexOf('node_modules/');
  if (i < 0) throw new VeloError('BAD_INPUT', `unexpected package location ${location}`);
  return location.slice(0, i + 'node_modules'.length);
}

export async function planInstall(root: string, loaded: LoadedNpmConfig, mode: InstallMode): Promise<Plan> {
  const Arborist = npmLibrary(loaded.npm, '@npmcli/arborist');
  const flat = loaded.flat;
  const opts: AnyRecord = {
    ...flat,
    packageLock: true,
    path: root,
    save: false,
    workspaces: await workspaceNames(loaded, root),
    allowScripts: loaded.allowScripts,
  };
  if (flat.installStrategy === 'linked') {
    throw new VeloError('BAD_INPUT', 'install-strategy=linked is not supported by velo yet; velo lays out node_modules as npm\'s default (hoisted) strategy does');
  }
  let virtualInventory: Map<string, AnyRecord>;
  try {
    const virtualArb = new Arborist(opts);
    await virtualArb.loadVirtual();
    virtualInventory = new Map(virtualArb.virtualTree.inventory);
  } catch (err) {
    throw new VeloError('LOCKFILE', `cannot read the lockfile in ${root}: ${(err as Error).message}`, { cause: err });
  }
  const arb = new Arborist(opts);
  try {
    await arb.buildIdealTree();
  } catch (err) {
    const e = err as AnyRecord;
    if (e.code === 'ENOTCACHED' || e.code === 'ECONNREFUSED' || e.code === 'ENOTFOUND' || e.code === 'ETIMEDOUT') {
      throw new VeloError('NETWORK', `cannot resolve ${e.pkgid ?? 'a dependency'}: ${e.message}`, { cause: err });
    }
    throw new VeloError('LOCKFILE', `cannot plan the install: ${e.message}`, { cause: err });
  }
  const ideal = arb.idealTree;
  const errors = validateLockfile(virtualInventory, ideal.inventory);
  if (errors.length > 0) {
    throw new VeloError(
      'LOCKFILE',
      (mode === 'ci'
        ? '`velo npm ci` can only install packages when your package.json and package-lock.json are in sync.'
        : 'package.json and package-lock.json are out of sync.') + `\n${errors.join('\n')}`,
      { hint: mode === 'ci' ? 'update your lockfile with velo npm install (or npm install)' : undefined },
    );
  }
  const selected = selectedNodes(ideal, opts.workspaces as string[], flat.workspacesEnabled !== false, Boolean(loaded.config.get('include-workspace-root')));
  const omit = new Set<string>(flat.omit ?? []);
  const isScriptAllowed = loadScriptAllowed(loaded);
  const packages: PlannedPackage[] = [];
  const links: PlannedLink[] = [];
  const dirs = new Set<string>();
  const allowed = allowedNodeModules(root, ideal);
  for (const node of ideal.inventory.values() as Iterable<AnyRecord>) {
    if (node.isProjectRoot || node.inert) continue;
    if (selected && !selected.has(node)) continue;
    if (typeof node.shouldOmit === 'function' && node.shouldOmit(omit)) continue;
    if (node.inDepBundle) continue; // comes inside its bundler's tarball
    if (!node.location.includes('node_modules/')) continue; // a workspace folder itself (fsChild), not installed
    const nmRoot = nodeModulesRootOf(node.location);
    if (!allowed.has(nmRoot)) {
      throw new VeloError('LOCKFILE', `the lockfile places ${JSON.stringify(node.location)} in ${nmRoot}, which is neither the project's node_modules nor a workspace's; velo installs nothing there`, {
        hint: 'the lockfile was edited by hand or crafted; restore it from a trusted source or regenerate it with npm install',
      });
    }
    dirs.add(nmRoot);
    if (node.isLink) {
      const linkDir = dirname(node.path);
      const scripts = (node.target?.package?.scripts ?? {}) as Record<string, unknown>;
      links.push({
        location: node.location,
        target: relative(linkDir, node.realpath),
        realpath: node.realpath,
        bins: normalizeBins(node.target?.package),
        hasScripts: LINK_SCRIPTS.some((event) => Boolean(scripts[event])),
        node,
      });
      continue;
    }
    const integrity: string | undefined = node.integrity ?? undefined;
    const resolved: string | undefined = node.resolved ?? undefined;
    if (isGitResolved(resolved)) assertGitAllowed({ name: node.packageName ?? node.name, version: node.version, resolved, node }, flat.allowGit);
    const denied = flat.dangerouslyAllowAllScripts ? false : isScriptAllowed?.(node, loaded.allowScripts) === false;
    packages.push({
      location: node.location,
      name: node.packageName ?? node.name,
      version: node.version,
      integrity,
      resolved,
      key: packageKey({ integrity, resolved }, Boolean(flat.ignoreScripts)),
      bins: normalizeBins(node.package),
      hasInstallScript: Boolean(node.hasInstallScript),
      scriptsAllowed: !denied,
      optional: Boolean(node.optional),
      node,
    });
  }
  packages.sort((a, b) => (a.location < b.location ? -1 : 1));
  links.sort((a, b) => (a.location < b.location ? -1 : 1));
  const workspaces = (ideal.workspaces as Map<string, string> | undefined)?.values() ?? [];
  const emptiedDirs = leftoverNodeModules(root, [...workspaces], dirs);
  return {
    root,
    packages,
    links,
    nodeModulesDirs: [...dirs, ...emptiedDirs].sort(),
    emptiedDirs,
    binLinks: flat.binLinks !== false,
    ignoreScripts: Boolean(flat.ignoreScripts),
    arborist: arb,
    idealTree: ideal,
    selected,
  };
}

/** The names of the workspaces --workspace picks, as npm resolves them (names, paths or globs). */
async function workspaceNames(loaded: LoadedNpmConfig, root: string): Promise<string[]> {
  // not in flatOptions: npm's workspace commands read it from the config
  const filters = ((loaded.config.get('workspace') as string[] | undefined) ?? []).filter(Boolean);
  if (filters.length === 0) return [];
  const getWorkspaces = npmLibrary<(f: string[], o: AnyRecord) => Promise<Map<string, string>>>(loaded.npm, './lib/utils/get-workspaces.js');
  const cwd = process.cwd();
  const relativeFrom = relative(root, cwd).startsWith('..') ? root : cwd;
  try {
    return [...(await getWorkspaces(filters, { path: root, includeWorkspaceRoot: false, relativeFrom })).keys()];
  } catch (err) {
    throw new VeloError('USAGE', (err as Error).message, { cause: err });
  }
}

/**
 * What reify's diff covers with --workspace / --include-workspace-root /
 * --no-workspaces: the dependency closure of the chosen workspaces (and of
 * the root's own dependencies when they are included). Undefined: everything.
 */
function selectedNodes(ideal: AnyRecord, workspaces: string[], wsEnabled: boolean, includeRoot: boolean): Set<AnyRecord> | undefined {
  const start: AnyRecord[] = [];
  if (wsEnabled) for (const ws of workspaces) if (ideal.children.get(ws)) start.push(ideal.children.get(ws));
  if (!wsEnabled || (includeRoot && workspaces.length > 0)) {
    for (const edge of ideal.edgesOut.values()) if (edge.type !== 'workspace' && edge.to) start.push(edge.to);
  }
  if (start.length === 0) return undefined;
  const set = new Set<AnyRecord>([ideal]);
  const stack = [...start];
  while (stack.length) {
    const node = stack.pop()!;
    if (set.has(node) && node !== ideal) continue;
    set.add(node);
    if (node.isLink && node.target) set.add(node.target); // a workspace's folder
    for (const edge of node.target.edgesOut.values()) if (edge.to && !set.has(edge.to)) stack.push(edge.to);
  }
  return set;
}

function validateLockfile(virtual: Map<string, AnyRecord>, ideal: Map<string, AnyRecord>): string[] {
  const errors: string[] = [];
  for (const [key, entry] of ideal.entries()) {
    const lock = virtual.get(key);
    if (!lock) errors.push(`Missing: ${entry.name}@${entry.version} from lock file`);
    else if (entry.version !== lock.version) errors.push(`Invalid: lock file's ${lock.name}@${lock.version} does not satisfy ${entry.name}@${entry.version}`);
  }
  return errors;
}

function loadScriptAllowed(loaded: LoadedNpmConfig): ((node: AnyRecord, policy: AnyRecord | null) => boolean | null) | undefined {
  try {
    return npmLibrary<{ isScriptAllowed: (node: AnyRecord, policy: AnyRecord | null) => boolean | null }>(
      loaded.npm,
      '@npmcli/arborist/lib/script-allowed.js',
    ).isScriptAllowed;
  } catch {
    return undefined; // an npm without an approval policy runs every script
  }
}
