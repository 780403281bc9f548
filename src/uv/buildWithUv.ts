/**
 * The environment's tree, planned with uv (the path a sync takes when no
 * environment manifest matches):
 *
 *  1. uv syncs a scratch environment with every shareable distribution left
 *     out (--no-install-package): that creates the venv and installs what
 *     is local to this project (its own editable install, path and git
 *     dependencies).
 *  2. uv says, in a dry run against a fresh path, which shareable
 *     distributions this environment needs; each gets its package key
 *     (lock entry + interpreter identity).
 *  3. Keys missing from the store: uv installs just those into the scratch
 *     environment (its download, build and unpack), velo checks them against
 *     their RECORD, compiles their bytecode once, and stores each as a tree.
 *  4. The whole environment becomes one tree: the stored distributions'
 *     shared files, and the per-environment files as private entries.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseToml } from 'smol-toml';
import { VeloError } from '../errors.js';
import { deleteKey, getKeys } from '../store/keys.js';
import { putTree } from '../store/trees.js';
import type { Store } from '../store/store.js';
import { checkEnvPath, checkEnvTarget, perEnvTreeEntries, planEnvironment } from './assembleEnvironment.js';
import { distKey } from './distKey.js';
import { listDistInfos, normalizeName, readInstalledDistribution, type InstalledDistribution } from './installedDistribution.js';
import { interpreterFor, type Interpreter } from './interpreter.js';
import { envDirFor } from './projectPaths.js';
import { runProcess, uvFailed, type ProcessResult } from './runUvProcess.js';
import { loadDistribution, type StoredDistribution } from './storedDistribution.js';
import { ingestScratch } from './ingestScratch.js';
import type { SyncArgs } from './syncArgs.js';
import type { Remote } from '../remote/remote.js';
import type { LazyFill } from '../remote/fill.js';
import { BYTECODE_KIND, bytecodeKey } from './bytecodeKey.js';
import { groupDependencies } from '../remote/lazyTrees.js';
import { isShareable, type LockPackage, type UvLock } from './uvLock.js';
import { normalizeProjectName } from './lockPlan.js';
import type { CacheLinkResult } from './uvCacheLinks.js';
import { bareSkeleton, readVenvSkeleton, relocateSkeleton, saveVenvTemplate, venvTemplateKey } from './venvTemplate.js';
import type { PerEnvFile } from './assembleEnvironment.js';

/**
 * The key kinds a remote shares for uv: installed distributions (keyed by the
 * interpreter's identity), and their bytecode (`uv-pyc:`, compiled by velo
 * as CHECKED_HASH pycs: python checks each against its source). A bytecode
 * key goes up as the first machine to publish it has it (compiled whole, or
 * harvested from what got imported); one that grows later stays local.
 */
export const UV_REMOTE_KINDS = ['uv', BYTECODE_KIND] as const;

/** The remote keys of these distribution keys: each one's, and its bytecode's. */
export function uvRemoteKeys(keys: string[]): string[] {
  return [...keys, ...keys.filter((k) => k.startsWith('uv:')).map(bytecodeKey)];
}

export type BuildPhase = 'scratch' | 'plan' | 'fetch' | 'ingest' | 'compile' | 'link';

export interface BuildContext {
  store: Store;
  uv: string;
  args: SyncArgs;
  cwd: string;
  env: NodeJS.ProcessEnv;
  lock: UvLock;
  lockPath: string;
  /** where velo itself found the project (uv's answer is checked against it) */
  projectDir: string;
  workspaceDir: string;
  /** the scratch directory (the store's tmp/), removed by the caller */
  work: string;
  threads: number;
  phase: (name: BuildPhase, message: string) => void;
  endPhase: (name: BuildPhase) => void;
  /** the shared store on S3: distributions the local store lacks are looked up there before uv fetches them */
  remote?: Remote | undefined;
  /**
   * a mount fetches on first open (--projection mount with a remote, lazyMountPossible): the
   * distributions from the remote come with their metadata only; the rest of their files, and
   * their bytecode where the remote has it, stay in the remote; what it has no bytecode for is
   * not compiled up front (python compiles what it imports, in the mount's upper layer)
   */
  lazy?: boolean;
  /** compile every module (else none: python compiles what gets imported) */
  compileAll: boolean;
  /** bring the stored bytecode of these distributions up to date before they are loaded (distBytecode.ts) */
  bytecode: BytecodeStep;
}

/** Compile or harvest bytecode for distributions about to be laid out. */
export type BytecodeStep = (b: { interp: Interpreter; interpreterKey: string; python: string; keys: string[] }) => Promise<void>;

export interface BuiltEnvironment {
  tree: string;
  projectDir: string;
  workspaceDir: string;
  envDir: string;
  interpreter: Interpreter;
  interpreterKey: string;
  /** the scratch environment's python, resolved: the interpreter the environment runs on */
  interpreterPath: string;
  distKeys: string[];
  distributions: number;
  fromStore: number;
  ingested: number;
  local: number;
  localDirs: string[];
  /** file entries in the tree */
  files: number;
  pycs: number;
  /** modules compiled by this build (at ingest, when everything is compiled) */
  compiled?: number;
  newObjects: number;
  newBytes: number;
  conflicts: string[];
  /** files that name the environment's path, written beside `tree` (which then holds the rest) */
  dependent?: PerEnvFile[];
  /** uv cache files replaced by hardlinks to store objects */
  cacheLinked?: CacheLinkResult;
  /** distributions whose files are partly still in the remote (their keys are not set): the mount fetches them on first open */
  lazy?: LazyFill;
  /** per group of `lazy`: the groups it requires (uv.lock's edges), fetched ahead once it is opened */
  lazyDeps?: number[][];
}

interface SyncJson {
  project?: { path?: string; workspace?: { path?: string } };
  sync?: { environment?: { path?: string; python?: { path?: string } }; changes?: { name: string; version?: string; action: string }[] };
  lock?: { path?: string };
}

function parseSyncJson(r: ProcessResult, what: string): SyncJson {
  try {
    return JSON.parse(r.stdout) as SyncJson;
  } catch {
    throw new VeloError('TOOL_FAILED', `${what}: uv printed no JSON summary (${r.stdout.slice(0, 200)})`);
  }
}

/** The environment velo gives uv: its own scratch environment, nothing compiled. */
export function uvEnvFor(env: NodeJS.ProcessEnv, scratch: string): NodeJS.ProcessEnv {
  const out: NodeJS.ProcessEnv = { ...env, UV_PROJECT_ENVIRONMENT: scratch, UV_NO_PROGRESS: '1' };
  delete out.VIRTUAL_ENV;
  delete out.UV_COMPILE_BYTECODE;
  delete out.UV_LOCKED;
  delete out.UV_FROZEN;
  return out;
}

/** The project name in pyproject.toml, normalized (uv's prompt for the project's venv). */
export function projectNameOf(projectDir: string): string | undefined {
  try {
    const doc = parseToml(readFileSync(join(projectDir, 'pyproject.toml'), 'utf8'));
    const project = doc.project;
    return typeof project === 'object' && project !== null && !Array.isArray(project) && typeof (project as Record<string, unknown>).name === 'string'
      ? normalizeProjectName((project as Record<string, unknown>).name as string)
      : undefined;
  } catch {
    return undefined;
  }
}

/** The `prompt = …` of a skeleton's pyvenv.cfg. */
function promptOf(skeleton: PerEnvFile[]): string | undefined {
  const cfg = skeleton.find((f) => f.rel === 'pyvenv.cfg' && f.kind === 'file');
  return cfg ? /^prompt = (.*)$/m.exec(cfg.data!.toString('utf8'))?.[1] : undefined;
}

/** Local package directories (editable, path, workspace members): what uv rebuilds when they change. */
export function localDirs(lock: UvLock, workspaceDir: string): string[] {
  const dirs = new Set<string>();
  for (const p of lock.packages) {
    if (p.source.kind === 'editable' || p.source.kind === 'directory' || p.source.kind === 'virtual') dirs.add(join(workspaceDir, p.source.value));
  }
  return [...dirs].sort();
}

export async function buildWithUv(c: BuildContext): Promise<BuiltEnvironment> {
  const { store, uv, args, lock, lockPath, work } = c;
  const shareable = lock.packages.filter((p) => isShareable(p.source));
  const shareableNames = [...new Set(shareable.map((p) => p.name))].sort();
  const scratch = join(work, 'venv');
  const uvEnv = uvEnvFor(c.env, scratch);

  // 1. the scratch environment with the local distributions only, and
  //    (at the same time) uv's plan for a fresh environment
  c.phase('scratch', 'creating the environment with uv');
  const noInstall = (names: string[]): string[] => names.flatMap((n) => ['--no-install-package', n]);
  const sync1Args = ['sync', '--frozen', '--output-format', 'json', ...noInstall(shareableNames), ...args.syncArgs];
  const dryArgs = ['sync', '--frozen', '--dry-run', '--output-format', 'json', ...args.syncArgs];
  const [s1, dry] = await Promise.all([
    runProcess(uv, sync1Args, { cwd: c.cwd, env: uvEnv }),
    runProcess(uv, dryArgs, { cwd: c.cwd, env: uvEnvFor(c.env, join(work, 'never-created')) }),
  ]);
  if (s1.code !== 0) throw uvFailed('uv sync failed', uv, sync1Args, s1);
  if (dry.code !== 0) throw uvFailed('uv sync --dry-run failed', uv, dryArgs, dry);
  const j1 = parseSyncJson(s1, 'uv sync');
  const projectDir = j1.project?.path ?? c.projectDir;
  const workspaceDir = j1.project?.workspace?.path ?? c.workspaceDir;
  if (j1.lock?.path && j1.lock.path !== lockPath) {
    throw new VeloError('LOCKFILE', `uv used ${j1.lock.path}, but velo read ${lockPath}`, { hint: 'run velo uv sync from the workspace root' });
  }
  const envDir = envDirFor(workspaceDir, c.env);
  checkEnvPath(envDir);
  checkEnvTarget(envDir);
  const scratchPython = j1.sync?.environment?.python?.path ?? join(scratch, 'bin', 'python');
  c.endPhase('scratch');

  // 2. what this environment needs, its keys, and what the store has
  c.phase('plan', 'planning from uv.lock');
  const { interpreter: interp, key: interpreterKey, realPath: interpreterPath } = await interpreterFor(store, scratchPython, uvEnv, c.cwd);
  const wanted: LockPackage[] = [];
  const byNameVersion = new Map(lock.packages.map((p) => [`${p.name}==${p.version}`, p]));
  for (const ch of parseSyncJson(dry, 'uv sync --dry-run').sync?.changes ?? []) {
    if (ch.action !== 'installed') continue;
    const name = normalizeName(ch.name);
    const pkg = byNameVersion.get(`${name}==${ch.version ?? ''}`);
    if (pkg && isShareable(pkg.source)) {
      wanted.push(pkg);
      continue;
    }
    // local packages (the project, path and git dependencies) are in the scratch environment already
    if (lock.packages.some((p) => p.name === name && !isShareable(p.source))) continue;
    throw new VeloError('LOCKFILE', `uv wants to install ${ch.name} ${ch.version ?? ''}, which ${lockPath} does not list`);
  }
  const keyOf = new Map(wanted.map((p) => [p, distKey(p, interp, workspaceDir)]));
  const found = getKeys(store, [...keyOf.values()]);
  const lacking = [...keyOf.values()].filter((k) => !found.has(k));
  let lazy: LazyFill | undefined;
  /** bytecode trees of a lazy fill (their keys are not set either): laid out beside their distributions */
  const lazyBytecode = new Map<string, string>();
  if (c.remote && lacking.length > 0) {
    c.phase('fetch', `looking ${lacking.length} distribution(s) up in the remote`);
    // the distributions with their bytecode, so that nothing is compiled again here (a lazy mount
    // fetches the pycs python opens as it fetches the sources)
    const fromRemote = c.lazy ? await lazyFromRemote(store, c.remote, lacking) : { trees: await c.remote.fill(store, uvRemoteKeys(lacking), UV_REMOTE_KINDS) };
    for (const [key, tree] of fromRemote.trees) {
      if (key.startsWith('uv:')) found.set(key, tree);
      else if (fromRemote.lazy) lazyBytecode.set(key, tree);
    }
    lazy = fromRemote.lazy;
  }
  await c.bytecode({ interp, interpreterKey, python: interpreterPath, keys: [...found.keys()] });
  const stored = new Map<string, StoredDistribution>();
  for (const [key, tree] of found) {
    try {
      stored.set(key, loadDistribution(store, tree, lazyBytecode.get(bytecodeKey(key))));
    } catch (err) {
      if (!(err instanceof VeloError)) throw err;
      deleteKey(store, key); // a damaged entry: fetch it again
    }
  }
  const hits = wanted.filter((p) => stored.has(keyOf.get(p)!));
  const misses = wanted.filter((p) => !stored.has(keyOf.get(p)!));
  c.endPhase('plan');

  // 3. fetch what is missing through uv, check it, compile it, store it
  if (misses.length > 0) {
    c.phase('fetch', `installing ${misses.length} distribution(s) with uv`);
    const hitNames = [...new Set(hits.map((p) => p.name))].sort();
    const sync2Args = ['sync', '--frozen', '--output-format', 'json', ...noInstall(hitNames), ...args.syncArgs];
    const s2 = await runProcess(uv, sync2Args, { cwd: c.cwd, env: uvEnv });
    if (s2.code !== 0) throw uvFailed('uv sync failed', uv, sync2Args, s2);
    c.endPhase('fetch');
  }

  c.phase('ingest', 'checking what uv installed against its RECORD');
  const installed = new Map<string, InstalledDistribution>();
  for (const distInfo of listDistInfos(join(scratch, interp.sitePackages))) {
    const d = await readInstalledDistribution(distInfo, { envDir: scratch, sitePackages: interp.sitePackages, python: scratchPython });
    installed.set(d.name, d);
  }
  const missNames = new Set(misses.map((p) => p.name));
  const fetched: { pkg: LockPackage; dist: InstalledDistribution }[] = [];
  for (const pkg of misses) {
    const d = installed.get(pkg.name);
    if (!d || d.version !== pkg.version) {
      throw new VeloError('TOOL_FAILED', `uv did not install ${pkg.name} ${pkg.version} into the scratch environment (found ${d ? d.version : 'nothing'})`);
    }
    fetched.push({ pkg, dist: d });
  }
  const local = [...installed.values()].filter((d) => !missNames.has(d.name));
  c.endPhase('ingest');

  const ingested = await ingestScratch({
    store,
    uv,
    args,
    env: uvEnv,
    cwd: c.cwd,
    scratch,
    scratchPython,
    interp,
    work,
    threads: c.threads,
    compile: c.compileAll,
    fetched: fetched.map(({ pkg, dist }) => ({ key: keyOf.get(pkg)!, dist })),
    local,
    phase: c.phase,
    endPhase: c.endPhase,
  });
  for (const [key, d] of ingested.stored) stored.set(key, d);
  const { newObjects, newBytes, cacheLinked, localPycs } = ingested;

  // 4. the whole environment as one tree
  c.phase('link', `assembling ${wanted.length + local.length} distribution(s)`);
  const dists = wanted.map((p) => stored.get(keyOf.get(p)!)!);
  const claimed = new Set<string>();
  for (const d of installed.values()) {
    claimed.add(d.recordRel);
    for (const f of d.files) claimed.add(f.rel);
  }
  const skeleton = readVenvSkeleton(scratch, claimed);
  let templateKey: string | undefined;
  if (local.length === 0) {
    // nothing local: the scratch environment is the bare venv uv makes for this project; the next
    // environment of this interpreter, uv and project name can be laid out without uv (planFromStore.ts)
    const name = projectNameOf(projectDir);
    if (name && promptOf(skeleton) === name) {
      templateKey = venvTemplateKey(interpreterKey, uv, name);
      saveVenvTemplate(store, templateKey, scratch, bareSkeleton(skeleton, interp.sitePackages));
    }
  }
  const plan = planEnvironment({ envDir, stored: dists, local, localPycs, venv: relocateSkeleton(skeleton, scratch, envDir) });
  const perEnv = perEnvTreeEntries(store, plan.perEnv);
  const tree = putTree(store, [...plan.shared, ...perEnv]);
  c.endPhase('link');
  return {
    tree,
    projectDir,
    workspaceDir,
    envDir,
    interpreter: interp,
    interpreterKey,
    interpreterPath,
    distKeys: [...wanted.map((p) => keyOf.get(p)!), ...(templateKey ? [templateKey] : [])],
    distributions: wanted.length,
    fromStore: hits.length,
    ingested: fetched.length,
    local: local.length,
    localDirs: localDirs(lock, workspaceDir),
    files: plan.shared.length + perEnv.filter((e) => e.kind === 'file').length,
    pycs: ingested.compiled,
    compiled: ingested.compiled,
    newObjects,
    newBytes,
    conflicts: plan.conflicts,
    cacheLinked,
    ...(lazy ? { lazy, lazyDeps: lazyDependencies(lazy, wanted, keyOf) } : {}),
  };
}

/**
 * Which distributions each one of a lazy fill requires, from uv.lock's edges
 * (its dependencies and those of every extra, by name): importing a package
 * goes on to import those, so the mount fetches them ahead once it is opened.
 */
function lazyDependencies(lazy: LazyFill, wanted: LockPackage[], keyOf: Map<LockPackage, string>): number[][] {
  const keysByName = new Map<string, string[]>();
  for (const p of wanted) keysByName.set(p.name, [...(keysByName.get(p.name) ?? []), keyOf.get(p)!]);
  const deps = new Map<string, string[]>();
  for (const p of wanted) {
    const key = keyOf.get(p)!;
    const edges = [...p.dependencies, ...Object.values(p.optionalDependencies).flat()];
    const required = [...new Set(edges.flatMap((d) => keysByName.get(normalizeName(d.name)) ?? []))];
    // a distribution and its bytecode go together (python opens a module's pyc, then its source)
    const along = [...required, ...required.map(bytecodeKey)];
    deps.set(key, [bytecodeKey(key), ...along]);
    deps.set(bytecodeKey(key), [key, ...along]);
  }
  return groupDependencies(lazy.groups, deps);
}

/**
 * The remote's trees of these distributions with their own metadata (velo/:
 * dist.json, RECORD, launchers, per-environment files — what loading and
 * assembling read) downloaded now, and the files under env/ left in the
 * remote (`lazy`, absent when every one was in the store already: then
 * their keys are set).
 */
async function lazyFromRemote(store: Store, remote: Remote, lacking: string[]): Promise<{ trees: Map<string, string>; lazy?: LazyFill }> {
  const lazy = await remote.fillLazy(store, uvRemoteKeys(lacking), UV_REMOTE_KINDS);
  if (!lazy) return { trees: new Map() };
  await remote.fetchLazyPart(store, lazy, (path) => path.startsWith('velo/'));
  if (lazy.trees.size === 0) return { trees: new Map() }; // none checked out: uv fetches them all
  if (lazy.missing.size > 0) return { trees: lazy.trees, lazy };
  return { trees: await remote.completeLazy(store, lazy) };
}
