/**
 * velo npm ci / install, stage by stage (shared/DESIGN.md's data flow):
 *   resolveLockfile.ts    config, npm resolves if it must, plan from the lockfile
 *   fetchMissing.ts       look packages up in the store, fetch and ingest the rest
 *   buildScripted.ts      packages with install scripts: built trees from the store, or run and stored
 *   projectNodeModules.ts lay node_modules out (link farm or mount), old trees kept aside
 *   recordInstall.ts      hidden lockfile, project manifest, registration, root scripts, no-op state
 * A project whose inputs were installed before (anywhere) is laid out from its
 * recorded manifest without planning. On any failure the previous
 * node_modules is put back.
 */
import { chmodSync, copyFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { errnoCode, VeloError } from '../errors.js';
import type { Store } from '../store/store.js';
import { deleteKey } from '../store/keys.js';
import { processAlive } from '../store/lock.js';
import { graftTrees, readTree, readTreeBuffer } from '../store/trees.js';
import { readTreeHeader } from '../store/treeFormat.js';
import { TamperedObjectsError } from '../projection/materialize.js';
import type { AnyRecord, UserNpm } from './userNpm.js';
import { locateNpm } from './userNpm.js';
import { REMOTE_KINDS } from './packageKey.js';
import { takeDeadPending, writePending } from './state.js';
import { loadManifest, projectKey, type ProjectManifest } from './projectCache.js';
import type { InstallOptions, InstallSummary } from './installTypes.js';
import { leftoverNodeModules, projectDirs, rollBack, underLease, writeHiddenLockfile } from './projectNodeModules.js';
import { finishInstall, recordProjectManifest, saveHiddenLockfile } from './recordInstall.js';
import { withYoungGenerationHeld } from './youngGeneration.js';
import { groupDependencies, lazyMountPossible, lazyTreesOf } from '../remote/lazyTrees.js';
import type { LazyFill } from '../remote/fill.js';
import { dependencyKeys, readProjectLockfile } from './lockfileDeps.js';
import type { ProjectToPublish } from '../remote/remoteProject.js';

export type { InstallOptions, InstallProgress, InstallSummary, Phase } from './installTypes.js';

export async function npmInstall(o: InstallOptions): Promise<InstallSummary> {
  try {
    return await installOnce(o);
  } finally {
    // a failed install: the uploads the remote started finish (recorded), no key is published
    await o.remote?.settle();
  }
}

async function installOnce(o: InstallOptions): Promise<InstallSummary> {
  const t0 = performance.now();
  const root = resolve(o.root);
  // npm's config loading exports npm_config_* into process.env (as npm does for
  // scripts); fingerprints must see the environment the user gave us
  const userEnv = { ...o.env };
  recoverInterruptedInstall(o.store.home, root);
  const npm = locateNpm(o.env);
  const versions = `${o.veloVersion}/npm-${npm.version}`;
  const pkey = projectKey(root, o.fingerprintArgs, userEnv, versions);
  let manifest: ProjectManifest | undefined = loadManifest(o.store, pkey, root);
  let lazy: LazyFill | undefined;
  let fromRemote = false;
  if (!manifest && o.remote) {
    // never seen here: the remote's record of these inputs spares planning the lockfile
    const { manifestFromRemote, remoteProjectName } = await import('./projectFromRemote.js');
    const remoteName = remoteProjectName(root, o.fingerprintArgs, userEnv, versions);
    const shared = await manifestFromRemote(o.store, o.remote, remoteName, pkey, root, o.projection === 'mount' && (await lazyMountPossible()));
    manifest = shared?.manifest;
    lazy = shared?.lazy;
    fromRemote = shared !== undefined;
  }
  if (manifest) {
    try {
      return await installFromManifest(o, root, npm, manifest, userEnv, versions, t0, fromRemote, lazy);
    } catch (err) {
      // a damaged or collected tree, or one recorded where paths were shorter (ENAMETOOLONG here): plan from the lockfile instead
      const tooLong = err instanceof VeloError && errnoCode(err.cause) === 'ENAMETOOLONG';
      if (!(err instanceof VeloError) || !(tooLong || ['CORRUPT_OBJECT', 'NOT_FOUND', 'CORRUPT_TREE'].includes(err.code))) throw err;
    }
  }
  try {
    return await installFromLockfile(o, root, npm, userEnv, versions, t0);
  } catch (err) {
    if (!(err instanceof TamperedObjectsError)) throw err;
    // objects edited in place were quarantined: forget the keys that named
    // them, so the retry fetches those packages afresh
    forgetKeysUsing(o.store, err.objects.map((x) => x.digest));
    return installFromLockfile(o, root, npm, userEnv, versions, t0);
  }
}

/** A killed install's half-finished swap: put the previous trees back. True when it did. */
export function recoverInterruptedInstall(home: string, root: string): boolean {
  const dead = takeDeadPending(home, root, processAlive);
  if (!dead) return false;
  rollBack(root, dead.asides);
  return true;
}

function forgetKeysUsing(store: Store, digests: string[]): void {
  const bad = new Set(digests);
  for (const row of store.index.prepare("SELECT name, tree FROM keys WHERE kind IN ('npm', 'npm-built', 'npm-project')").all() as { name: string; tree: string }[]) {
    try {
      if (readTree(store, row.tree).entries.some((e) => e.kind === 'file' && bad.has(e.digest))) deleteKey(store, row.name);
    } catch {
      deleteKey(store, row.name);
    }
  }
}

/** Lay node_modules out from a recorded manifest: no npm libraries, no planning. */
async function installFromManifest(
  o: InstallOptions,
  root: string,
  npm: UserNpm,
  m: ProjectManifest,
  userEnv: NodeJS.ProcessEnv,
  versions: string,
  t0: number,
  /** the manifest is the remote's project record (its keys filled, or left there for a lazy mount) */
  fromRemote: boolean,
  lazy?: LazyFill,
): Promise<InstallSummary> {
  const store = o.store;
  return underLease(o, root, async (asides) => {
    o.progress?.phase?.('link');
    // this checkout's own leftovers (a workspace's node_modules from an earlier lockfile) are emptied
    const workspaces = Object.keys(m.extraInputs).map((p) => dirname(p));
    const leftovers = leftoverNodeModules(root, workspaces, new Set(Object.keys(m.dirs)));
    const empty = leftovers.length > 0 ? graftTrees(store, []) : '';
    const dirs: [string, string][] = [...Object.entries(m.dirs), ...leftovers.map((d): [string, string] => [d, empty])];
    const remote = o.remote;
    // the lockfile's dependency map is read once, for every node_modules dir recorded
    const lazyTrees = lazy && remote ? lazyTreesOf(store, remote, lazy, () => lazyDependencies(root, lazy)) : undefined;
    const { results, note } = await projectDirs(o, root, dirs, asides, true, lazyTrees);
    writePending(store.home, root, asides);
    const hidden = join(root, 'node_modules', '.package-lock.json');
    await writeHiddenLockfile(() => {
      copyFileSync(store.objectPath(m.hiddenLockfile, false), hidden);
      chmodSync(hidden, 0o644);
    });
    const summary = await finishInstall(o, root, npm, {
      t0,
      userEnv,
      versions,
      asides,
      results,
      projectionNote: note,
      keys: m.keys,
      extraInputs: Object.keys(m.extraInputs),
      packages: m.packages,
      fromProjectCache: true,
    });
    if (fromRemote) o.remote?.noteProjectUsed();
    return withRemote(o, summary, m.keys, undefined, { manifest: m, root, userEnv, versions });
  });
}

async function installFromLockfile(
  o: InstallOptions,
  root: string,
  npm: UserNpm,
  userEnv: NodeJS.ProcessEnv,
  versions: string,
  t0: number,
): Promise<InstallSummary> {
  // planning, fetching and laying out are loaded only when a lockfile install needs
  // them (the manifest path and the no-op never do)
  const [{ resolveAndPlan }, { lookUpAndFetch, lockfileKeys, completeLazyTrees }, { planBuilds, runBuilds }, { composeNodeModules }, links] = await Promise.all([
    import('./resolveLockfile.js'),
    import('./fetchMissing.js'),
    import('./buildScripted.js'),
    import('./layout.js'),
    import('./linkScripts.js'),
  ]);
  const { loaded, plan, resolvedLockfile } = await withYoungGenerationHeld(() => resolveAndPlan(o, root, npm, userEnv));
  const store = o.store;
  return underLease(o, root, async (asides) => {
    const fetched = await lookUpAndFetch(store, loaded, plan, o.progress, o.remote, o.projection === 'mount' && (await lazyMountPossible()));
    const { have, missing, warnings } = fetched;
    let builds = await planBuilds(store, plan, have);
    // workspaces with lifecycle scripts: npm's rebuild runs them and links their bins after prepare
    const linkBuild = links.needsLinkBuild(plan.links, plan.ignoreScripts);
    const mountable = builds.toBuild.length === 0 && !linkBuild;
    const completeLazy = (): Promise<void> => completeLazyTrees(store, loaded, plan, o.progress, o.remote!, fetched);
    if (fetched.lazy && !mountable) {
      // scripts run in a linked tree: every object is needed now
      await completeLazy();
      builds = await planBuilds(store, plan, have);
    }

    o.progress?.phase?.('link');
    const { trees, warnings: layoutWarnings } = composeNodeModules(store, plan, builds.placed, !linkBuild);
    const lazy = fetched.lazy;
    // linked after all: completeLazyTrees fetches every object and plans again what the remote could not give
    const lazyTrees = lazy && { ...lazyTreesOf(store, o.remote!, lazy, () => lazyDependencies(root, lazy)), complete: completeLazy };
    const { results, note } = await projectDirs(o, root, trees.map((t) => [t.dir, t.tree]), asides, mountable, lazyTrees);
    const fetchedBytes = fetched.fetchedBytes;
    writePending(store.home, root, asides);
    const omitSet = new Set<string>(loaded.flat.omit ?? []);
    const omitted = new Set<AnyRecord>(
      ([...plan.idealTree.inventory.values()] as AnyRecord[]).filter(
        (n) => (typeof n.shouldOmit === 'function' && n.shouldOmit(omitSet)) || (plan.selected !== undefined && !n.isProjectRoot && !plan.selected.has(n)),
      ),
    );
    let failedOptional: unknown[] = [];
    if (builds.toBuild.length > 0) {
      o.progress?.phase?.('scripts', `${builds.toBuild.length} packages`);
      failedOptional = await runBuilds(store, plan, builds, o.threads);
    }
    const linksBuilt = linkBuild ? links.linksToBuild(plan.links) : [];
    if (linkBuild) {
      o.progress?.phase?.('scripts', `${linksBuilt.length} workspaces`);
      await links.runLinkBuild(plan.arborist, linksBuilt.map((l) => l.node));
    } else if (plan.binLinks) links.makeLinkBinsExecutable(root, plan.links);
    await writeHiddenLockfile(() => saveHiddenLockfile(plan, omitted));
    const usedKeys = [...new Set([...plan.packages.map((p) => p.key).filter((k): k is string => Boolean(k)), ...builds.builtKeys.values()])];
    let privateBytes = 0;
    for (const p of builds.placed) if (p.private) privateBytes += readTreeHeader(readTreeBuffer(store, p.tree)).logicalSize;
    const extraInputs = plan.links.map((l) => relative(root, join(l.node.realpath, 'package.json'))).filter((p) => !p.startsWith('..'));
    // record the whole result for the next project with the same inputs; not when
    // an optional package failed (its scripts may pass elsewhere), a package has no
    // stable key, a link points outside the project, a link has scripts or bins
    // (what they make depends on the linked folders, not on the inputs), or an
    // earlier install's workspace node_modules was emptied (this checkout's own leftover)
    const linksInside = plan.links.every((l) => !relative(root, l.node.realpath).startsWith('..'));
    const linksPlain = plan.links.every((l) => !l.hasScripts && l.bins.size === 0);
    // nor when entries were left out for this project's path length (another path may fit them)
    // nor when objects are still in the remote (a lazy mount's fetcher gets them; the keys are not set)
    let recorded: { key: string; manifest: ProjectManifest } | undefined;
    if (fetched.lazy === undefined && failedOptional.length === 0 && linksInside && linksPlain && plan.emptiedDirs.length === 0 && layoutWarnings.length === 0 && plan.packages.every((p) => p.key)) {
      recorded = recordProjectManifest(o, root, userEnv, versions, { results, keys: [...usedKeys], extraInputs, packages: plan.packages.length });
      usedKeys.push(recorded.key);
    }
    const summary = await finishInstall(o, root, npm, {
      t0,
      userEnv,
      versions,
      asides,
      results,
      projectionNote: note,
      keys: usedKeys,
      extraInputs,
      packages: plan.packages.length,
      fetched: missing.length,
      fetchedBytes,
      built: builds.toBuild.length,
      builtFromStore: builds.scripted.length - builds.toBuild.length,
      privateBytes,
      resolvedLockfile,
      fromProjectCache: false,
      loaded,
      warnings: [...warnings, ...layoutWarnings],
      linkBuild: linksBuilt.map((l) => l.location),
    });
    return withRemote(o, summary, usedKeys, lockfileKeys(plan), recorded && { manifest: recorded.manifest, root, userEnv, versions });
  });
}

/** Each lazy group's dependency groups, from the project's lockfile (the mount's fetcher takes them along). */
function lazyDependencies(root: string, lazy: LazyFill): number[][] {
  return groupDependencies(lazy.groups, dependencyKeys(readProjectLockfile(root)));
}


/**
 * After a successful install: publish the package keys the remote lacks (and
 * the lockfile's bundle, and the whole-project record when every key of it
 * is shared), and report what the remote did.
 */
async function withRemote(
  o: InstallOptions,
  summary: InstallSummary,
  keys: string[],
  bundle?: string[],
  project?: { manifest: ProjectManifest; root: string; userEnv: NodeJS.ProcessEnv; versions: string },
): Promise<InstallSummary> {
  if (!o.remote) return summary;
  let record: ProjectToPublish | undefined;
  if (project && o.remote.settings.mode !== 'read' && !project.manifest.keys.some((k) => k.startsWith('npm-built:'))) {
    const { projectToPublish, remoteProjectName } = await import('./projectFromRemote.js');
    record = projectToPublish(o.store, remoteProjectName(project.root, o.fingerprintArgs, project.userEnv, project.versions), project.manifest);
  }
  await o.remote.publish(o.store, keys, REMOTE_KINDS, {}, bundle, record);
  return { ...summary, remote: o.remote.report() };
}
