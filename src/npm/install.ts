/**
 * velo npm ci / install: plan from the lockfile with the user's npm, take
 * what the store has, fetch what it lacks, compose node_modules from package
 * trees, swap it in atomically, run install scripts as npm would, and keep
 * what they built. On any failure the previous node_modules is put back.
 */
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { spawnSync } from 'node:child_process';
import { VeloError } from '../errors.js';
import type { LinkMethod } from '../config.js';
import type { Store } from '../store/store.js';
import { getKeys, registerProject, setKey } from '../store/keys.js';
import { acquireLease } from '../store/lock.js';
import { ingestDir } from '../store/addFilesFromDir.js';
import { readTree } from '../store/trees.js';
import { materialize, TamperedObjectsError, type MaterializeResult } from '../project/materialize.js';
import { removeTree, restoreAside } from '../project/atomicSwap.js';
import { fetchPackages } from './fetchPackages.js';
import { composeNodeModules, type PlacedPackage } from './layout.js';
import { checkLockfileSyntax, lockfilePath, planInstall, type InstallMode, type Plan, type PlannedPackage } from './plan.js';
import { builtKey } from './packageKey.js';
import { packagesNeedingScripts, runDependencyScripts, runRootScripts } from './scripts.js';
import { dirStamp, inputsDigest, writeState, clearState } from './state.js';
import { loadNpmConfig, locateNpm, type AnyRecord, type LoadedNpmConfig } from './userNpm.js';

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
  threads: number;
  veloVersion: string;
  env: NodeJS.ProcessEnv;
  /** stdio for the root project's lifecycle scripts */
  scriptStdio: 'inherit' | [number, number, number];
  progress?: InstallProgress;
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
  // scripts); the no-op fingerprint must see the environment the user gave us
  const userEnv = { ...o.env };
  o.progress?.phase?.('config');
  const loaded = await loadNpmConfig(locateNpm(o.env), o.mode, o.npmArgs, root);
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
  const lease = acquireLease(store, 'install');
  const asides: { dest: string; aside: string | undefined }[] = [];
  try {
    clearState(store.home, root);
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
    const results: MaterializeResult[] = [];
    for (const t of trees) {
      const dest = join(root, t.dir);
      let r: MaterializeResult;
      try {
        r = await materialize(store, t.tree, dest, { method: o.method, threads: o.threads, keepOld: true });
      } catch (err) {
        if (err instanceof TamperedObjectsError) {
          throw new VeloError('CORRUPT_OBJECT', `${err.message}; run the install again to re-fetch the affected packages`, { cause: err });
        }
        throw err;
      }
      asides.push({ dest, aside: r.aside });
      results.push(r);
    }
    const omitSet = new Set<string>(loaded.flat.omit ?? []);
    const omitted = new Set<AnyRecord>(
      ([...plan.idealTree.inventory.values()] as AnyRecord[]).filter((n) => typeof n.shouldOmit === 'function' && n.shouldOmit(omitSet)),
    );
    if (toBuild.length > 0) {
      o.progress?.phase?.('scripts', `${toBuild.length} packages`);
      const failedOptional = await runDependencyScripts(plan, toBuild);
      for (const p of toBuild) {
        const bk = builtKeys.get(p);
        if (!bk || failedOptional.includes(p)) continue;
        const built = await ingestDir(store, p.node.path);
        setKey(store, bk, built.tree, { kind: 'npm-built', logicalBytes: built.bytes, files: built.files });
      }
    }
    await saveHiddenLockfile(plan, omitted);
    for (const a of asides) if (a.aside) removeTree(a.aside, true);
    asides.length = 0;

    const usedKeys = [...new Set([...plan.packages.map((p) => p.key).filter((k): k is string => Boolean(k)), ...builtKeys.values()])];
    let files = 0;
    let bytes = 0;
    let linked = 0;
    let privateBytes = 0;
    for (const p of placed) if (p.private) privateBytes += readTree(store, p.tree).logicalSize;
    for (const [i, r] of results.entries()) {
      files += r.files;
      bytes += r.bytes;
      linked += r.linked + r.reflinked;
      registerProject(store, {
        path: join(root, trees[i]!.dir),
        ecosystem: 'npm',
        tree: r.tree,
        method: r.method,
        projection: 'link',
        logicalBytes: r.logicalBytes,
        files: r.files,
        packages: plan.packages.length,
        keys: i === 0 ? usedKeys : [],
      });
    }
    const pkgJson = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as AnyRecord;
    const rootScripts = await runRootScripts(loaded, root, pkgJson, o.scriptStdio);
    const extraInputs = plan.links.map((l) => join(l.node.realpath, 'package.json')).filter((p) => p.startsWith(root));
    writeState(store.home, root, {
      inputs: inputsDigest(root, o.fingerprintArgs, extraInputs, userEnv, o.veloVersion),
      dirs: Object.fromEntries(trees.map((t) => [t.dir, { tree: t.tree, ...dirStamp(join(root, t.dir)) }])),
      extraInputs,
      projection: 'link',
    });
    const method = results[0]?.method ?? 'none';
    o.progress?.phase?.('done');
    return {
      root,
      packages: plan.packages.length,
      fromStore: plan.packages.length - missing.length,
      fetched: missing.length,
      fetchedBytes,
      built: toBuild.length,
      builtFromStore: scripted.length - toBuild.length,
      filesLinked: linked,
      files,
      bytes,
      bytesSaved: method === 'copy' ? 0 : Math.max(0, bytes - privateBytes),
      method,
      engine: results[0]?.engine ?? 'none',
      rootScripts,
      resolvedLockfile,
      ms: Math.round(performance.now() - t0),
    };
  } catch (err) {
    for (const a of asides.reverse()) {
      try {
        restoreAside(a.dest, a.aside);
      } catch {
        /* best effort; recoverLeftovers finishes it next run */
      }
    }
    throw err;
  } finally {
    lease.release();
    store.flushCounters();
  }
}

