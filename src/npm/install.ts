/**
 * velo npm ci / install: plan from the lockfile with the user's npm, take
 * what the store has, fetch what it lacks, compose node_modules from package
 * trees, swap it in atomically, run install scripts as npm would, and keep
 * what they built. On any failure the previous node_modules is put back.
 */
import { chmodSync, copyFileSync, readFileSync, statSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { spawnSync } from 'node:child_process';
import { VeloError } from '../errors.js';
import type { LinkMethod, Projection } from '../config.js';
import type { Store } from '../store/store.js';
import { deleteKey, getKeys, registerProject, setKey } from '../store/keys.js';
import { writeBufferToStore } from '../store/writeBufferToStore.js';
import { acquireLease } from '../store/lock.js';
import { readTree, readTreeBuffer } from '../store/trees.js';
import { readTreeHeader } from '../store/treeFormat.js';
import { materialize, TamperedObjectsError, type MaterializeResult } from '../projection/materialize.js';
import { removeTree, restoreAside } from '../projection/atomicSwap.js';
// planning, fetching and laying out are loaded only when a lockfile install needs them (the
// manifest path and the no-op never do; tar alone is a large module)
import type { PlacedPackage } from './layout.js';
import type { InstallMode, Plan, PlannedPackage } from './plan.js';
import { packagesNeedingScripts, runDependencyScripts, runRootScripts } from './scripts.js';
import { hasRootScripts } from './rootScripts.js';
import { clearPending, clearState, dirStamp, inputStamps, inputsDigest, takeDeadPending, writePending, writeState } from './state.js';
import { processAlive } from '../store/lock.js';
import { loadNpmConfig, locateNpm, type AnyRecord, type LoadedNpmConfig, type UserNpm } from './userNpm.js';
import { hashExtraInputs, loadManifest, projectKey, saveManifest, type ProjectManifest } from './projectCache.js';

export type Phase = 'config' | 'resolve' | 'plan' | 'fetch' | 'link' | 'scripts' | 'done';

export interface InstallProgress {
  phase?: (phase: Phase, detail?: string) => void;
  fetched?: (done: number, total: number, bytes: number) => void;
}

export interface InstallOptions {
  root: string;
  mode: InstallMode;
  /** npm arguments (flags velo does not own), passed to npm's config */
  npmArgs: string[];
  /** the arguments that make up the no-op fingerprint */
  fingerprintArgs: string[];
  store: Store;
  method: LinkMethod;
  /** link farm (default) or a FUSE mount with a writable overlay */
  projection?: Projection;
  threads: number;
  veloVersion: string;
  env: NodeJS.ProcessEnv;
  /** stdio for the root project's lifecycle scripts */
  scriptStdio: 'inherit' | [number, number, number];
  progress?: InstallProgress;
  /** another velo is installing into this project (or gc holds the store): called once, then velo waits */
  onWait?: (holder: { kind: string; pid: number }) => void;
}

export interface InstallSummary {
  root: string;
  packages: number;
  fromStore: number;
  fetched: number;
  fetchedBytes: number;
  built: number;
  builtFromStore: number;
  filesLinked: number;
  files: number;
  bytes: number;
  bytesSaved: number;
  method: string;
  engine: string;
  rootScripts: string[];
  resolvedLockfile: boolean;
  /** laid out from a recorded whole-project manifest, without planning */
  fromProjectCache: boolean;
  projection: Projection;
  /** why the projection asked for was not used, when it was not */
  projectionNote: string | undefined;
  ms: number;
}

function hasBindingGypInTree(store: Store, tree: string): boolean {
  return readTree(store, tree).entries.some((e) => e.parent === 0 && e.name === 'binding.gyp' && e.kind === 'file');
}

/** Let the user's npm resolve: `npm install --package-lock-only [args]`. */
function resolveWithNpm(loaded: LoadedNpmConfig, root: string, command: string, args: string[], env: NodeJS.ProcessEnv, quiet: boolean): void {
  const [exe, ...pre] = loaded.npm.command;
  // with --json, velo's stdout is the summary alone: npm's report goes to stderr
  const r = spawnSync(exe!, [...pre, command, '--package-lock-only', ...args], { cwd: root, env, stdio: ['ignore', quiet ? 2 : 'inherit', 'inherit'] });
  if (r.error) throw new VeloError('TOOL_FAILED', `cannot run npm: ${r.error.message}`);
  if (r.status !== 0) throw new VeloError('TOOL_FAILED', `npm ${command} --package-lock-only failed (exit ${r.status})`, { exitCode: r.status ?? 1 });
}

/** Keys of everything a package's scripts could see: its dependency closure. */
function closureKeys(pkg: PlannedPackage, keyOf: Map<AnyRecord, string>): string[] {
  const seen = new Set<AnyRecord>();
  const stack: AnyRecord[] = [pkg.node];
  const keys: string[] = [];
  while (stack.length) {
    const node = stack.pop()!;
    for (const edge of node.edgesOut?.values?.() ?? []) {
      const to = edge.to?.isLink ? edge.to.target : edge.to;
      if (!to || seen.has(to)) continue;
      seen.add(to);
      keys.push(keyOf.get(to) ?? `unkeyed:${to.location}`);
      stack.push(to);
    }
  }
  return keys;
}

function saveHiddenLockfile(plan: Plan, omitted: Set<AnyRecord>): Promise<void> {
  const ideal = plan.idealTree;
  for (const node of [...ideal.inventory.values()] as AnyRecord[]) {
    if (node.inert || omitted.has(node)) node.parent = null;
  }
  ideal.meta.filename = join(plan.root, 'node_modules', '.package-lock.json');
  ideal.meta.hiddenLockfile = true;
  ideal.meta.lockfileVersion = 3;
  return ideal.meta.save();
}

export async function npmInstall(o: InstallOptions): Promise<InstallSummary> {
  const t0 = performance.now();
  const root = resolve(o.root);
  // npm's config loading exports npm_config_* into process.env (as npm does for
  // scripts); fingerprints must see the environment the user gave us
  const userEnv = { ...o.env };
  recoverInterruptedInstall(o.store.home, root);
  const npm = locateNpm(o.env);
  const versions = `${o.veloVersion}/npm-${npm.version}`;
  const manifest = loadManifest(o.store, projectKey(root, o.fingerprintArgs, userEnv, versions), root);
  if (manifest) {
    try {
      return await installFromManifest(o, root, npm, manifest, userEnv, versions, t0);
    } catch (err) {
      // a damaged or collected tree: plan from the lockfile instead
      if (!(err instanceof VeloError) || !['CORRUPT_OBJECT', 'NOT_FOUND', 'CORRUPT_TREE'].includes(err.code)) throw err;
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
  rollBack(dead.asides);
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
): Promise<InstallSummary> {
  const store = o.store;
  return underLease(o, root, async (asides) => {
    o.progress?.phase?.('link');
    const { results, note } = await projectDirs(o, root, Object.entries(m.dirs), asides, true);
    writePending(store.home, root, asides);
    const hidden = join(root, 'node_modules', '.package-lock.json');
    writeHiddenLockfile(() => {
      copyFileSync(store.objectPath(m.hiddenLockfile, false), hidden);
      chmodSync(hidden, 0o644);
    });
    return finish(o, root, npm, {
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
  });
}

/**
 * Hold the install lease (and this project's lock) while fn lays trees out;
 * on failure put the previous trees back (fn records them in `asides`).
 */
async function underLease<T>(o: InstallOptions, root: string, fn: (asides: { dest: string; aside: string | undefined }[]) => Promise<T>): Promise<T> {
  const lease = acquireLease(o.store, 'install', { project: root, onWait: o.onWait });
  const asides: { dest: string; aside: string | undefined }[] = [];
  try {
    clearState(o.store.home, root);
    return await fn(asides);
  } catch (err) {
    rollBack(asides);
    clearPending(o.store.home, root);
    throw err;
  } finally {
    lease.release();
    o.store.flushCounters();
  }
}

/** One node_modules dir as it was laid out. */
interface ProjectedDir {
  dir: string;
  tree: string;
  projection: Projection;
  method: string;
  engine: string;
  files: number;
  bytes: number;
  linked: number;
  logicalBytes: number;
}

/**
 * Put each node_modules dir in place: mounted (FUSE view + overlay) when the
 * projection is "mount" and nothing needs building in it, else materialized
 * with the old trees kept aside (recorded in asides) for a rollback.
 */
async function projectDirs(
  o: InstallOptions,
  root: string,
  dirs: [dir: string, tree: string][],
  asides: { dest: string; aside: string | undefined }[],
  mountable: boolean,
): Promise<{ results: ProjectedDir[]; note: string | undefined }> {
  let note: string | undefined;
  const mountsNeeded = o.projection === 'mount' || dirs.some(([dir]) => mightBeMountPoint(root, join(root, dir)));
  const mounts = mountsNeeded ? await import('../mount/mount.js') : undefined;
  if (mounts && o.projection === 'mount') {
    if (!mountable) note = 'packages whose install scripts must run need a writable tree: node_modules was linked this time';
    else {
      try {
        const results: ProjectedDir[] = [];
        for (const [dir, tree] of dirs) {
          const m = await mounts.mountProjection(o.store, tree, join(root, dir), { ecosystem: 'npm' });
          results.push({ dir, tree, projection: 'mount', method: m.method, engine: 'fuse', files: m.files, bytes: m.logicalBytes, linked: 0, logicalBytes: m.logicalBytes });
        }
        return { results, note };
      } catch (err) {
        if (!(err instanceof VeloError) || err.code !== 'FUSE_UNAVAILABLE') throw err;
        note = `${err.message}: node_modules was linked instead`;
      }
    }
  }
  const results: ProjectedDir[] = [];
  for (const [dir, tree] of dirs) {
    const dest = join(root, dir);
    // a velo mount there goes first: a link farm cannot be renamed over a mount point
    if (mounts?.mountAt(o.store, dest)) await mounts.unmountProjection(dest, { store: o.store });
    const r = await materialize(o.store, tree, dest, { method: o.method, threads: o.threads, keepOld: true });
    asides.push({ dest, aside: r.aside });
    results.push({ dir, tree, projection: 'link', method: r.method, engine: r.engine, files: r.files, bytes: r.bytes, linked: r.linked + r.reflinked, logicalBytes: r.logicalBytes });
  }
  return { results, note };
}

/**
 * Whether dir could be a mount point (a velo mount to take down first): on
 * another device than the project, or a dead FUSE mount. Saves loading the
 * mount code on the common path.
 */
function mightBeMountPoint(root: string, dir: string): boolean {
  try {
    return statSync(dir).dev !== statSync(root).dev;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code !== 'ENOENT';
  }
}

/** Write node_modules/.package-lock.json — except on a read-only mount, where npm reads the tree itself. */
function writeHiddenLockfile(write: () => void): void {
  try {
    write();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EROFS') throw err;
  }
}

function rollBack(asides: { dest: string; aside: string | undefined }[]): void {
  for (const a of asides.reverse()) {
    try {
      restoreAside(a.dest, a.aside);
    } catch {
      /* best effort; recoverLeftovers finishes it next run */
    }
  }
  asides.length = 0;
}

interface FinishInput {
  t0: number;
  userEnv: NodeJS.ProcessEnv;
  versions: string;
  asides: { dest: string; aside: string | undefined }[];
  results: ProjectedDir[];
  projectionNote: string | undefined;
  keys: string[];
  extraInputs: string[];
  packages: number;
  /** what this run fetched and built (none when laid out from a project manifest) */
  fetched?: number;
  fetchedBytes?: number;
  built?: number;
  builtFromStore?: number;
  /** bytes of files copied rather than linked (packages with install scripts) */
  privateBytes?: number;
  resolvedLockfile?: boolean;
  fromProjectCache: boolean;
  loaded?: LoadedNpmConfig;
}

/** Common end of both paths: drop the old trees, register, root scripts, no-op state. */
async function finish(o: InstallOptions, root: string, npm: UserNpm, f: FinishInput): Promise<InstallSummary> {
  const store = o.store;
  clearPending(store.home, root);
  for (const a of f.asides) if (a.aside) removeTree(a.aside, true);
  f.asides.length = 0;
  let files = 0;
  let bytes = 0;
  let linked = 0;
  for (const [i, r] of f.results.entries()) {
    files += r.files;
    bytes += r.bytes;
    linked += r.linked;
    registerProject(store, {
      path: join(root, r.dir),
      ecosystem: 'npm',
      tree: r.tree,
      method: r.method,
      projection: r.projection,
      logicalBytes: r.logicalBytes,
      files: r.files,
      packages: f.packages,
      keys: i === 0 ? f.keys : [],
    });
  }
  const pkgJson = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as AnyRecord;
  const wantsRootScripts = hasRootScripts(pkgJson);
  const loaded = f.loaded ?? (wantsRootScripts ? await loadNpmConfig(npm, o.mode, o.npmArgs, root) : undefined);
  const rootScripts = loaded ? await runRootScripts(loaded, root, pkgJson, o.scriptStdio) : [];
  writeState(store.home, root, {
    inputs: inputsDigest(root, o.fingerprintArgs, f.extraInputs, f.userEnv, o.veloVersion),
    stamps: inputStamps(root, o.fingerprintArgs, f.extraInputs, f.userEnv, o.veloVersion),
    dirs: Object.fromEntries(f.results.map((r) => [r.dir, { tree: r.tree, ...dirStamp(join(root, r.dir)) }])),
    extraInputs: f.extraInputs,
    projection: f.results[0]?.projection ?? 'link',
  });
  const method = f.results[0]?.method ?? 'none';
  o.progress?.phase?.('done');
  return {
    root,
    packages: f.packages,
    fromStore: f.packages - (f.fetched ?? 0),
    fetched: f.fetched ?? 0,
    fetchedBytes: f.fetchedBytes ?? 0,
    built: f.built ?? 0,
    builtFromStore: f.builtFromStore ?? 0,
    filesLinked: linked,
    files,
    bytes,
    bytesSaved: method === 'copy' ? 0 : Math.max(0, bytes - (f.privateBytes ?? 0)),
    method,
    engine: f.results[0]?.engine ?? 'none',
    rootScripts,
    resolvedLockfile: f.resolvedLockfile ?? false,
    fromProjectCache: f.fromProjectCache,
    projection: f.results[0]?.projection ?? 'link',
    projectionNote: f.projectionNote,
    ms: Math.round(performance.now() - f.t0),
  };
}

async function installFromLockfile(
  o: InstallOptions,
  root: string,
  npm: UserNpm,
  userEnv: NodeJS.ProcessEnv,
  versions: string,
  t0: number,
): Promise<InstallSummary> {
  o.progress?.phase?.('config');
  const [{ fetchPackages }, { composeNodeModules }, { checkLockfileSyntax, lockfilePath, planInstall }, { builtKey }, { ingestDir }] = await Promise.all([
    import('./fetchPackages.js'),
    import('./layout.js'),
    import('./plan.js'),
    import('./packageKey.js'),
    import('../store/addFilesFromDir.js'),
  ]);
  const loaded = await loadNpmConfig(npm, o.mode, o.npmArgs, root);
  process.env.npm_command = o.mode; // what npm exports to every script it runs
  let resolvedLockfile = false;
  if (o.mode === 'install' && (!lockfilePath(root) || loaded.positionals.length > 0)) {
    o.progress?.phase?.('resolve', 'npm install --package-lock-only');
    resolveWithNpm(loaded, root, 'install', o.npmArgs, userEnv, o.scriptStdio !== 'inherit');
    resolvedLockfile = true;
  }
  if (!checkLockfileSyntax(root)) {
    throw new VeloError('LOCKFILE', `no package-lock.json in ${root}: velo npm ci installs from a lockfile`, { hint: 'run velo npm install to create one' });
  }
  o.progress?.phase?.('plan');
  let plan: Plan;
  try {
    plan = await planInstall(root, loaded, o.mode);
  } catch (err) {
    if (o.mode !== 'install' || resolvedLockfile || !(err instanceof VeloError) || err.code !== 'LOCKFILE' || !/out of sync/.test(err.message)) throw err;
    o.progress?.phase?.('resolve', 'npm install --package-lock-only');
    resolveWithNpm(loaded, root, 'install', o.npmArgs, userEnv, o.scriptStdio !== 'inherit');
    resolvedLockfile = true;
    plan = await planInstall(root, loaded, o.mode);
  }

  const store = o.store;
  return underLease(o, root, async (asides) => {
    const keyed = plan.packages.filter((p) => p.key);
    const have = getKeys(store, keyed.map((p) => p.key!));
    const missing = plan.packages.filter((p) => !p.key || !have.has(p.key));
    let fetchedBytes = 0;
    if (missing.length > 0) {
      o.progress?.phase?.('fetch', `${missing.length} packages`);
      let done = 0;
      const fetched = await fetchPackages(store, loaded, missing, {
        onFetched: (_p, r) => {
          fetchedBytes += r.bytes;
          o.progress?.fetched?.(++done, missing.length, fetchedBytes);
        },
      });
      for (const f of fetched) have.set(f.pkg.key ?? `unkeyed:${f.pkg.location}`, f.result.tree);
    }
    const treeOf = (p: PlannedPackage): string => have.get(p.key ?? `unkeyed:${p.location}`)!;
    const gyp = (p: PlannedPackage): boolean => hasBindingGypInTree(store, treeOf(p));
    const scripted = packagesNeedingScripts(plan, plan.packages, gyp);
    const keyOf = new Map<AnyRecord, string>(plan.packages.map((p) => [p.node, p.key ?? `unkeyed:${p.location}`]));
    const builtKeys = new Map<PlannedPackage, string>();
    for (const p of scripted) if (p.key) builtKeys.set(p, builtKey(p.key, closureKeys(p, keyOf)));
    const builtHave = getKeys(store, [...builtKeys.values()]);
    const toBuild = scripted.filter((p) => !builtHave.has(builtKeys.get(p) ?? ''));
    const scriptedSet = new Set(scripted);
    const placed: PlacedPackage[] = plan.packages.map((p) => {
      const bk = builtKeys.get(p);
      const built = bk ? builtHave.get(bk) : undefined;
      return { pkg: p, tree: built ?? treeOf(p), private: scriptedSet.has(p) };
    });

    o.progress?.phase?.('link');
    const trees = composeNodeModules(store, plan, placed);
    const { results, note } = await projectDirs(o, root, trees.map((t) => [t.dir, t.tree]), asides, toBuild.length === 0);
    writePending(store.home, root, asides);
    const omitSet = new Set<string>(loaded.flat.omit ?? []);
    const omitted = new Set<AnyRecord>(
      ([...plan.idealTree.inventory.values()] as AnyRecord[]).filter((n) => typeof n.shouldOmit === 'function' && n.shouldOmit(omitSet)),
    );
    let failedOptional: PlannedPackage[] = [];
    if (toBuild.length > 0) {
      o.progress?.phase?.('scripts', `${toBuild.length} packages`);
      failedOptional = await runDependencyScripts(plan, toBuild);
      for (const p of toBuild) {
        const bk = builtKeys.get(p);
        if (!bk || failedOptional.includes(p)) continue;
        const built = await ingestDir(store, p.node.path, { threads: o.threads });
        setKey(store, bk, built.tree, { kind: 'npm-built', logicalBytes: built.bytes, files: built.files });
      }
    }
    await saveHiddenLockfile(plan, omitted).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'EROFS') throw err;
    });
    const usedKeys = [...new Set([...plan.packages.map((p) => p.key).filter((k): k is string => Boolean(k)), ...builtKeys.values()])];
    let privateBytes = 0;
    for (const p of placed) if (p.private) privateBytes += readTreeHeader(readTreeBuffer(store, p.tree)).logicalSize;
    const extraInputs = plan.links.map((l) => relative(root, join(l.node.realpath, 'package.json'))).filter((p) => !p.startsWith('..'));
    // record the whole result for the next project with the same inputs; not when
    // an optional package failed (its scripts may pass elsewhere), a package has no
    // stable key, or a link points outside the project
    const linksInside = plan.links.every((l) => !relative(root, l.node.realpath).startsWith('..'));
    if (failedOptional.length === 0 && linksInside && plan.packages.every((p) => p.key)) {
      const hidden = writeBufferToStore(store, readFileSync(join(root, 'node_modules', '.package-lock.json')), false);
      const pkey = projectKey(root, o.fingerprintArgs, userEnv, versions);
      saveManifest(store, pkey, {
        dirs: Object.fromEntries(results.map((r) => [r.dir, r.tree])),
        hiddenLockfile: hidden.digest,
        keys: usedKeys,
        extraInputs: hashExtraInputs(root, extraInputs),
        packages: plan.packages.length,
      });
      usedKeys.push(pkey);
    }
    return finish(o, root, npm, {
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
      built: toBuild.length,
      builtFromStore: scripted.length - toBuild.length,
      privateBytes,
      resolvedLockfile,
      fromProjectCache: false,
      loaded,
    });
  });
}
