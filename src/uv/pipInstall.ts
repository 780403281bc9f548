/**
 * velo uv pip sync <requirements.txt> / velo uv pip install -r <file>: the
 * user's virtual environment gets what plain uv would install there, from
 * the store.
 *
 *  1. uv resolves the files for the environment's interpreter
 *     (`uv pip compile --format pylock.toml`; `--no-deps` for sync, which
 *     installs exactly what the files list): every distribution with its
 *     version and artifacts (pipResolve.ts), keyed like uv.lock's.
 *  2. What is installed already at the same version stays; sync also
 *     removes what the files do not list and replaces other versions.
 *  3. Keys the store lacks: uv installs just those (pinned, with the
 *     artifacts' hashes, --no-deps) into a scratch venv; velo checks them
 *     through RECORD, compiles their bytecode once and stores them
 *     (ingestScratch.ts).
 *  4. The distributions to install are laid out by the link farm in a
 *     staging directory inside the environment; only then does anything in
 *     the environment change: uv uninstalls what goes, and the staged files
 *     are renamed into place. A failure before that (resolution, a hash, a
 *     download, a RECORD that lies) leaves the environment as it was.
 *
 * Throughout, velo holds uv's own lock on the environment (venvLock.ts), so
 * a concurrent `uv pip` waits; it lends the lock to the `uv pip uninstall`
 * it runs and checks afterwards that nothing else changed the environment.
 */
import { existsSync, lstatSync, mkdirSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { VeloError } from '../errors.js';
import type { LinkMethod } from '../config.js';
import { materialize } from '../projection/materialize.js';
import { getKeys, projectKeys, registerProject } from '../store/keys.js';
import { processAlive, withLease } from '../store/lock.js';
import { putTree } from '../store/trees.js';
import type { Store } from '../store/store.js';
import { perEnvTreeEntries, planEnvironment } from './assembleEnvironment.js';
import { uvEnvFor, type BuildPhase } from './buildWithUv.js';
import { distKey } from './distKey.js';
import { ingestScratch } from './ingestScratch.js';
import { listDistInfos, readInstalledDistribution, readNameVersion, type InstalledDistribution } from './installedDistribution.js';
import { interpreterFor, recordedInterpreter } from './interpreter.js';
import type { PipArgs } from './pipArgs.js';
import { parsePylock, resolveAllArtifacts, resolveWithUv } from './pipResolve.js';
import { allPinned, loadResolution, resolutionMemoKey, saveResolution, type Resolution } from './pipResolutionMemo.js';
import { readRequirements, UnsupportedRequirements, type Requirement, type Requirements } from './requirementsFile.js';
import { runProcess, uvFailed } from './runUvProcess.js';
import { loadDistribution, type StoredDistribution } from './storedDistribution.js';
import type { LockPackage } from './uvLock.js';
import { compilesEverything } from './bytecodeKey.js';
import { updateBytecode, type BytecodeUpdate } from './distBytecode.js';
import { canLockVenv, lockVenv, type VenvLock } from './venvLock.js';

export interface PipInstallOptions {
  args: PipArgs;
  uv: string;
  cwd: string;
  env: NodeJS.ProcessEnv;
  openStore: () => Store;
  method?: LinkMethod;
  threads?: number;
  onProgress?: (p: { phase: BuildPhase | 'resolve'; message: string }) => void;
}

export interface NameVersion {
  name: string;
  version: string;
}

export interface PipInstallResult {
  mode: PipArgs['mode'];
  /** uv resolved the files now, or velo remembered uv's resolution of the same pinned files (pipResolutionMemo.ts) */
  resolvedBy: 'uv' | 'memo';
  envDir: string;
  python: string;
  /** distributions the requirement files resolve to */
  distributions: number;
  /** of those, already installed at that version and left as they were */
  unchanged: number;
  installed: NameVersion[];
  removed: NameVersion[];
  /** of the installed ones, taken from the store without uv */
  fromStore: number;
  /** of the installed ones, installed by uv into a scratch venv now and stored */
  ingested: number;
  files: number;
  pycs: number;
  /** bytecode put in the store: compiled whole (--compile-bytecode), or harvested from what python wrote in recorded environments and linked over python's files */
  bytecode: BytecodeUpdate;
  newObjects: number;
  newBytes: number;
  uvCacheLinked: { files: number; bytes: number };
  method: string;
  engine: string;
  durationMs: number;
  phasesMs: Record<string, number>;
}

/** velo leaves the command to uv, for this reason. */
export interface PipDelegation {
  delegate: string;
}

/** Packages uv pip sync may keep though the files do not list them (seed packages of venvs uv did not create, uv itself). */
const SEED_PACKAGES = new Set(['pip', 'setuptools', 'wheel', 'uv']);

/** The virtual environment `uv pip` would use: --python (a venv or its python), VIRTUAL_ENV, else .venv here or above. */
export function findTargetVenv(python: string | undefined, cwd: string, env: NodeJS.ProcessEnv): string | undefined {
  const isVenv = (d: string): boolean => existsSync(join(d, 'pyvenv.cfg'));
  if (python !== undefined) {
    if (!python.includes('/')) return undefined; // a version request: uv's discovery
    const p = resolve(cwd, python);
    if (isVenv(p)) return p;
    const up = dirname(dirname(p));
    return existsSync(p) && isVenv(up) ? up : undefined;
  }
  if (env.VIRTUAL_ENV) return isVenv(env.VIRTUAL_ENV) ? resolve(cwd, env.VIRTUAL_ENV) : undefined;
  if (env.CONDA_PREFIX) return undefined;
  for (let d = cwd; ; d = dirname(d)) {
    if (isVenv(join(d, '.venv'))) return join(d, '.venv');
    if (dirname(d) === d) return undefined;
  }
}

/** In hash-checking mode uv installs an artifact only if its hash is pinned: velo installs itself only when every artifact uv could pick is. */
function hashProblem(pkgs: LockPackage[], reqs: Requirement[], required: boolean): string | undefined {
  if (!required && !reqs.some((r) => r.hashes.length > 0)) return undefined;
  const byName = new Map(reqs.map((r) => [r.name, r]));
  for (const p of pkgs) {
    const allowed = new Set(byName.get(p.name)?.hashes ?? []);
    const artifacts = [...p.wheels, ...(p.sdist ? [p.sdist] : [])];
    const bad = artifacts.find((a) => !a.hash || !allowed.has(a.hash));
    if (bad) return `${p.name} ${p.version}: ${bad.filename} is not pinned by a --hash in the requirements (uv checks it)`;
  }
  return undefined;
}

/** name → installed version and .dist-info directory. */
function installedIn(sitePackages: string): Map<string, { version: string; distInfo: string }> {
  const out = new Map<string, { version: string; distInfo: string }>();
  for (const d of listDistInfos(sitePackages)) {
    const { name, version } = readNameVersion(join(sitePackages, d, 'METADATA'), d);
    out.set(name, { version, distInfo: d });
  }
  return out;
}

/**
 * After uv uninstalled `removed`, the environment holds what it held before
 * minus those: anything else means another process changed it while velo
 * had lent uv the lock, and velo stops before moving its files in.
 */
function expectInstalled(sitePackages: string, before: Map<string, { version: string }>, removed: NameVersion[], envDir: string): void {
  const gone = new Set(removed.map((r) => r.name));
  const expected = [...before].filter(([name]) => !gone.has(name)).map(([name, d]) => `${name}==${d.version}`).sort();
  const now = [...installedIn(sitePackages)].map(([name, d]) => `${name}==${d.version}`).sort();
  if (expected.join('\n') !== now.join('\n')) {
    throw new VeloError('LOCKED', `another process changed ${envDir} while uv was removing ${[...gone].join(', ')} for velo; nothing new was installed`, {
      hint: 'run the command again',
    });
  }
}

const STAGE_PREFIX = '.velo-pip-stage-';

/** Staging directories a killed velo left in the environment (named by its pid). */
function removeDeadStaging(envDir: string): void {
  for (const name of readdirSync(envDir)) {
    const pid = /^\.velo-pip-stage-(\d+)/.exec(name)?.[1]; // the staging dir, or the link farm's own beside it
    if (pid !== undefined && !processAlive(Number(pid))) rmSync(join(envDir, name), { recursive: true, force: true });
  }
}

/** Move a staged tree into the environment: new directories whole, files over files; never through a symlink. */
function mergeInto(src: string, dest: string): void {
  for (const name of readdirSync(src)) {
    const s = join(src, name);
    const d = join(dest, name);
    let there;
    try {
      there = lstatSync(d);
    } catch {
      renameSync(s, d);
      continue;
    }
    const isDir = lstatSync(s).isDirectory();
    if (isDir && there.isDirectory()) mergeInto(s, d);
    else if (!isDir && !there.isDirectory()) renameSync(s, d);
    else throw new VeloError('REFUSED', `${d} is ${there.isDirectory() ? 'a directory' : there.isSymbolicLink() ? 'a symlink' : 'a file'} in the environment; velo would install ${isDir ? 'a directory' : 'a file'} there`);
  }
}

/** The requirements file uv installs the missing distributions from: exact pins, and the artifacts' hashes when all have one. */
function pinnedRequirements(pkgs: LockPackage[], indexOptions: string[]): string {
  const hashed = pkgs.every((p) => [...p.wheels, ...(p.sdist ? [p.sdist] : [])].every((a) => a.hash));
  const lines = pkgs.map((p) => {
    const hashes = hashed ? [...p.wheels, ...(p.sdist ? [p.sdist] : [])].map((a) => ` --hash=${a.hash!}`).join('') : '';
    return `${p.name}==${p.version}${hashes}`;
  });
  return [...indexOptions, ...lines, ''].join('\n');
}

export async function pipInstall(o: PipInstallOptions): Promise<PipInstallResult | PipDelegation> {
  const started = performance.now();
  const phasesMs: Record<string, number> = {};
  let t0 = started;
  const phase = (name: BuildPhase | 'resolve', message: string): void => {
    t0 = performance.now();
    o.onProgress?.({ phase: name, message });
  };
  const endPhase = (name: BuildPhase | 'resolve'): void => {
    phasesMs[name] = (phasesMs[name] ?? 0) + (performance.now() - t0);
  };
  const { args } = o;
  if (args.delegate) return { delegate: args.delegate };
  let reqs: Requirements;
  try {
    reqs = readRequirements(args.requirementFiles, o.cwd);
  } catch (err) {
    if (err instanceof UnsupportedRequirements) return { delegate: err.message };
    throw err;
  }
  if (reqs.requirements.length === 0) return { delegate: 'the requirement files list nothing' };
  const envDir = findTargetVenv(args.python, o.cwd, o.env);
  if (!envDir) return { delegate: args.python ? `--python ${args.python} is not a virtual environment velo can find` : 'no virtual environment found here (VIRTUAL_ENV, .venv)' };
  const venvPython = join(envDir, 'bin', 'python');
  if (!canLockVenv()) return { delegate: "velo's native addon is not built here, and velo takes uv's lock on the environment with it" };
  const store = o.openStore();
  try {
    return await withLease(
      store,
      'install',
      async () => {
        // uv's own lock on the environment, held while velo reads and changes it (a concurrent uv pip waits)
        const lock = await lockVenv(envDir, o.env, (path) => o.onProgress?.({ phase: 'plan', message: `waiting for ${path}: another uv process is changing this environment` }));
        try {
          return await run(store, lock);
        } finally {
          lock.release();
        }
      },
      { project: envDir },
    );
  } finally {
    store.close();
  }

  async function run(store: Store, lock: VenvLock): Promise<PipInstallResult | PipDelegation> {
    removeDeadStaging(envDir!);
    const work = store.tmpPath('uv-pip');
    mkdirSync(work, { recursive: true });
    const stage = join(envDir!, `${STAGE_PREFIX}${process.pid}`);
    const uvEnv = uvEnvFor(o.env, join(work, 'never-created'));
    try {
      phase('resolve', 'resolving with uv');
      const memoInput = { mode: args.mode, files: reqs.files, fingerprint: args.fingerprint, env: o.env, uv: o.uv };
      const memoizable = allPinned(reqs.requirements) && !args.refresh;
      const known = recordedInterpreter(store, venvPython);
      const remembered = memoizable && known ? loadResolution(store, resolutionMemoKey({ ...memoInput, interpreterKey: known.key })) : undefined;
      const resolvedBy = remembered === undefined ? 'uv' : 'memo';
      const [{ interpreter: interp, key: interpreterKey, realPath }, pylock] = await Promise.all([
        known ?? interpreterFor(store, venvPython, uvEnv, o.cwd),
        remembered?.pylock ?? resolveWithUv({ uv: o.uv, python: venvPython, files: args.requirementFiles, noDeps: args.mode === 'sync', uvOptions: args.uvOptions, work, cwd: o.cwd, env: uvEnv }),
      ]);
      const pkgs = parsePylock(pylock);
      const resolution: Resolution = remembered ?? { pylock };
      if (!remembered) {
        const all = await resolveAllArtifacts({ uv: o.uv, pins: pkgs, pythonVersion: interp.fullVersion, indexOptions: reqs.indexOptions, uvOptions: args.uvOptions, work, cwd: o.cwd, env: uvEnv });
        if (all !== undefined) resolution.allArtifacts = all;
        const pinnedNames = new Set(reqs.requirements.map((r) => r.name));
        if (memoizable && pkgs.every((p) => pinnedNames.has(p.name))) saveResolution(store, resolutionMemoKey({ ...memoInput, interpreterKey }), resolution);
      }
      // keyed by every artifact of the version, as uv.lock lists them, when uv named them (shared with velo uv sync projects)
      const allArtifacts = new Map((resolution.allArtifacts ? parsePylock(resolution.allArtifacts) : []).map((p) => [`${p.name}==${p.version}`, p]));
      const keyed = (p: LockPackage): LockPackage => allArtifacts.get(`${p.name}==${p.version}`) ?? p;
      endPhase('resolve');
      const requireHashes = args.requireHashes || /^(1|true|yes|on)$/i.test(o.env.UV_REQUIRE_HASHES ?? '');
      const hashIssue = hashProblem(pkgs, reqs.requirements, requireHashes);
      if (hashIssue) return { delegate: hashIssue };

      phase('plan', 'comparing with the environment');
      const sitePackages = join(envDir!, interp.sitePackages);
      const present = installedIn(sitePackages);
      const resolvedNames = new Set(pkgs.map((p) => p.name));
      const toInstall: LockPackage[] = [];
      const removed: NameVersion[] = [];
      let unchanged = 0;
      for (const p of pkgs) {
        const inst = present.get(p.name);
        if (inst?.version === p.version) {
          unchanged++;
          continue;
        }
        if (inst && args.mode === 'install') return { delegate: `${p.name} ${inst.version} is installed and the requirements resolve to ${p.version} (uv prefers what is installed)` };
        if (inst) removed.push({ name: p.name, version: inst.version });
        toInstall.push(p);
      }
      if (args.mode === 'sync') for (const [name, inst] of present) if (!resolvedNames.has(name)) removed.push({ name, version: inst.version });
      const kept = removed.find((r) => SEED_PACKAGES.has(r.name));
      if (kept) return { delegate: `${kept.name} is installed and not listed (uv decides whether a seed package stays)` };
      const keyOf = new Map(pkgs.map((p) => [p.name, distKey(keyed(p), interp, o.cwd)]));
      const compileAll = compilesEverything(args.compileBytecode, o.env, 'link');
      const bytecodeCtx = { store, interp, python: realPath, env: o.env, cwd: o.cwd, threads: o.threads ?? 2 };
      const installKeys = toInstall.map((p) => keyOf.get(p.name)!);
      const bytecode = await updateBytecode(bytecodeCtx, compileAll, interpreterKey, installKeys);
      const found = getKeys(store, installKeys);
      const stored = new Map<string, StoredDistribution>();
      for (const p of toInstall) {
        const tree = found.get(keyOf.get(p.name)!);
        if (!tree) continue;
        try {
          stored.set(p.name, loadDistribution(store, tree));
        } catch (err) {
          if (!(err instanceof VeloError)) throw err; // a damaged entry: uv fetches it again
        }
      }
      const misses = toInstall.filter((p) => !stored.has(p.name));
      endPhase('plan');

      let ingest: Awaited<ReturnType<typeof ingestScratch>> | undefined;
      if (misses.length > 0) {
        phase('fetch', `installing ${misses.length} distribution(s) with uv`);
        const scratch = join(work, 'venv');
        const venvArgs = ['venv', scratch, '--python', realPath, '--quiet', ...args.uvOptions.filter((a) => a === '--no-config' || a === '--offline')];
        const v = await runProcess(o.uv, venvArgs, { cwd: o.cwd, env: uvEnv });
        if (v.code !== 0) throw uvFailed('uv venv failed', o.uv, venvArgs, v);
        const reqFile = join(work, 'requirements.txt');
        writeFileSync(reqFile, pinnedRequirements(misses, reqs.indexOptions));
        const scratchPython = join(scratch, 'bin', 'python');
        const installArgs = ['pip', 'install', '--python', scratchPython, '--no-deps', '-r', reqFile, ...args.uvOptions];
        const r = await runProcess(o.uv, installArgs, { cwd: o.cwd, env: uvEnv });
        if (r.code !== 0) throw uvFailed('uv pip install failed', o.uv, installArgs, r);
        endPhase('fetch');
        phase('ingest', 'checking what uv installed against its RECORD');
        const byName = new Map<string, InstalledDistribution>();
        for (const distInfo of listDistInfos(join(scratch, interp.sitePackages))) {
          const d = await readInstalledDistribution(distInfo, { envDir: scratch, sitePackages: interp.sitePackages, python: scratchPython });
          byName.set(d.name, d);
        }
        const fetched = misses.map((p) => {
          const d = byName.get(p.name);
          if (!d || d.version !== p.version) throw new VeloError('TOOL_FAILED', `uv did not install ${p.name} ${p.version} into the scratch environment (found ${d ? d.version : 'nothing'})`);
          return { key: keyOf.get(p.name)!, dist: d };
        });
        endPhase('ingest');
        ingest = await ingestScratch({ store, uv: o.uv, args: { original: args.uvOptions }, env: uvEnv, cwd: o.cwd, scratch, scratchPython, interp, work, threads: o.threads ?? 2, compile: compileAll, fetched, local: [], phase, endPhase });
        for (const p of misses) stored.set(p.name, ingest.stored.get(keyOf.get(p.name)!)!);
      }

      phase('link', `linking ${toInstall.length} distribution(s) into ${envDir}`);
      const dists = toInstall.map((p) => stored.get(p.name)!);
      const plan = planEnvironment({ envDir: envDir!, stored: dists, local: [], localPycs: new Map(), venv: [] });
      const tree = putTree(store, [...plan.shared, ...perEnvTreeEntries(store, plan.perEnv)]);
      let m: { method: string; engine: string; files: number } = { method: '', engine: '', files: 0 };
      if (toInstall.length > 0) {
        rmSync(stage, { recursive: true, force: true });
        m = await materialize(store, tree, stage, { within: envDir!, ...(o.method ? { method: o.method } : {}), ...(o.threads ? { threads: o.threads } : {}) });
      }
      // from here on the environment changes: uv removes what goes, the staged files move in
      if (removed.length > 0) {
        const names = [...new Set(removed.map((r) => r.name))];
        const unArgs = ['pip', 'uninstall', '--python', venvPython, ...names];
        // uv takes the environment's lock itself to uninstall: velo lends it, then checks nothing else came in between
        lock.release();
        const r = await runProcess(o.uv, unArgs, { cwd: o.cwd, env: uvEnv });
        await lock.reacquire();
        if (r.code !== 0) throw uvFailed('uv pip uninstall failed', o.uv, unArgs, r);
        expectInstalled(sitePackages, present, removed, envDir!);
      }
      if (toInstall.length > 0) mergeInto(stage, envDir!);
      // install only adds: what earlier runs installed is still there (sync makes the venv exactly this set)
      const earlier = args.mode === 'install' ? projectKeys(store, envDir!, 'uv-pip') : [];
      const keys = [...new Set([...earlier, ...pkgs.map((p) => keyOf.get(p.name)!), interpreterKey])];
      registerProject(store, { path: envDir!, ecosystem: 'uv-pip', tree, method: m.method, files: m.files, packages: pkgs.length, keys });
      endPhase('link');
      return {
        mode: args.mode,
        resolvedBy,
        envDir: envDir!,
        python: interp.fullVersion,
        distributions: pkgs.length,
        unchanged,
        installed: toInstall.map((p) => ({ name: p.name, version: p.version })),
        removed,
        fromStore: toInstall.length - misses.length,
        ingested: misses.length,
        files: m.files,
        pycs: dists.reduce((n, d) => n + d.manifest.pycs, 0),
        newObjects: ingest?.newObjects ?? 0,
        newBytes: ingest?.newBytes ?? 0,
        uvCacheLinked: { files: ingest?.cacheLinked.files ?? 0, bytes: ingest?.cacheLinked.bytes ?? 0 },
        method: m.method,
        engine: m.engine,
        bytecode,
        durationMs: performance.now() - started,
        phasesMs,
      };
    } finally {
      rmSync(stage, { recursive: true, force: true });
      rmSync(work, { recursive: true, force: true, maxRetries: 2 });
    }
  }
}
