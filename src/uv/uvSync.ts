/**
 * velo uv sync: a project environment assembled from the store.
 *
 *  1. uv locks (unless --frozen; --locked checks) — uv owns uv.lock. Skipped
 *     when the environment manifest below says this exact lock already
 *     passed with these exact inputs.
 *  2. The environment key (envManifest.ts) names every input that decides
 *     the environment. A manifest under it holds the whole environment as
 *     one tree: it is projected as it is, without running uv (step 4).
 *  3. Otherwise uv plans and installs what the store lacks, and the whole
 *     environment becomes one tree (buildWithUv.ts); its manifest is saved.
 *  4. The tree is projected (projectEnvironment.ts: a link farm built beside
 *     the old environment and swapped in, or a mount), .velo-state is
 *     written for the no-op check; the previous environment stays intact
 *     until the swap.
 */
import { mkdirSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { VeloError } from '../errors.js';
import type { LinkMethod, Projection } from '../config.js';
import { TamperedObjectsError } from '../projection/materialize.js';
import { deleteKey, getKey, setKey } from '../store/keys.js';
import { processAlive, withLease } from '../store/lock.js';
import { putTree, readTree } from '../store/trees.js';
import { writeBufferToStore } from '../store/writeBufferToStore.js';
import type { Store } from '../store/store.js';
import { checkEnvPath, checkEnvTarget } from './assembleEnvironment.js';
import { envKey, interpreterIdentOf, lockCheckKey, loadEnvManifest, localStampsOf, saveEnvManifest, type EnvManifest } from './envManifest.js';
import { settingsFingerprint, stampOf, writeStateInto, type FileStamp } from './envState.js';
import { checkNoop, type NoopAnswer } from './noop.js';
import { projectEnvironment, type ProjectedEnv } from './projectEnvironment.js';
import type { BuiltEnvironment } from './buildWithUv.js';
import { isStaleLock, runProcess, uvFailed, type ProcessResult } from './runUvProcess.js';
import type { Remote, RemoteReport } from '../remote/remote.js';
import type { LazyTrees } from '../remote/lazyTrees.js';
import { compilesEverything } from './bytecodeKey.js';
import type { BytecodeUpdate } from './distBytecode.js';
import type { Interpreter } from './interpreter.js';

export type UvSyncPhase = 'lock' | 'scratch' | 'plan' | 'fetch' | 'ingest' | 'compile' | 'link';

export interface UvSyncProgress {
  phase: UvSyncPhase;
  message: string;
}

export interface UvSyncOptions {
  argv: string[];
  cwd: string;
  env: NodeJS.ProcessEnv;
  /** opened lazily: the no-op path never opens the store */
  openStore: () => Store;
  method?: LinkMethod;
  /** the configured default; --projection in argv wins */
  projection?: Projection;
  threads?: number;
  onProgress?: (p: UvSyncProgress) => void;
  /** the no-op check already made by the caller */
  checked?: NoopAnswer;
  /** delete the previous environment in a detached process (the CLI does) */
  backgroundRemoval?: boolean;
  /** wait this long with the new environment staged, before the swap (tests kill velo here) */
  pauseBeforeSwapMs?: number;
  /** the shared store on S3: looked up before uv fetches, published to after a successful sync */
  remote?: Remote | undefined;
}

export interface UvSyncResult {
  noop: boolean;
  /** --dry-run / --check: uv's own answer */
  delegated?: ProcessResult;
  projectDir: string;
  workspaceDir: string;
  envDir: string;
  python: string;
  /** shareable distributions in the environment */
  distributions: number;
  /** of those, taken from the store without uv */
  fromStore: number;
  /** of those, installed by uv now and ingested */
  ingested: number;
  /** distributions from local sources (the project itself, path/git dependencies) */
  local: number;
  /** the whole environment came from its recorded manifest: uv did not run */
  fromEnvironmentManifest: boolean;
  /** who planned the environment: velo from uv.lock (no uv sync ran), or uv; undefined when nothing was planned */
  plannedBy?: 'uv.lock' | 'uv';
  /** why velo did not plan from uv.lock itself */
  planNote?: string;
  files: number;
  pycs: number;
  /** damaged store objects found (and fetched again) on the way */
  repaired: number;
  retried: boolean;
  newObjects: number;
  newBytes: number;
  /** files of uv's cache now hardlinks to store objects (one copy on disk), and their bytes */
  uvCacheLinked: { files: number; bytes: number };
  /** link or mount: how the environment was projected */
  projection: Projection;
  /** why the projection asked for was not used, when it was not */
  projectionNote: string | undefined;
  /** hardlink/copy/reflink (link), overlay (mount) */
  method: string;
  /** the link farm that laid the files out: native or js; fuse for a mount */
  engine: string;
  tree: string;
  conflicts: string[];
  durationMs: number;
  phasesMs: Record<string, number>;
  /** what the remote gave and took (when one is configured) */
  remote?: RemoteReport;
  /**
   * bytecode put in the store by this sync: modules compiled whole
   * (--compile-bytecode, UV_COMPILE_BYTECODE, a mount), or harvested from what
   * python wrote in recorded environments, and the python-written files
   * replaced by the stored ones
   */
  bytecode?: BytecodeUpdate;
}

/** Does uv.lock name a package uv builds from a local directory or file (editable, directory, path)? */
function hasLocalBuilds(lockPath: string): boolean {
  try {
    return /source = \{ (editable|directory|path) = /.test(readFileSync(lockPath, 'utf8'));
  } catch {
    return true;
  }
}

/** Remember that uv found this lock up to date with these inputs (a key of no content). */
function recordLockCheck(store: Store, key: string): void {
  const added = writeBufferToStore(store, Buffer.from('{"checked":true}\n'), false);
  store.flushCounters();
  setKey(store, key, putTree(store, [{ path: 'lock-check.json', kind: 'file', size: added.size, digest: added.digest }]), { kind: 'uv-lockcheck' });
}

/** Remove scratch directories that killed velo processes left in the store's tmp/. */
function removeStaleWork(store: Store): void {
  const tmp = join(store.home, 'tmp');
  let names: string[] = [];
  try {
    names = readdirSync(tmp);
  } catch {
    return;
  }
  for (const n of names) {
    const m = /^uv-sync\.(\d+)\./.exec(n);
    if (m && !processAlive(Number(m[1]))) rmSync(join(tmp, n), { recursive: true, force: true });
  }
}

/** The inputs uv itself watches: lock, project files, and for local packages its cache keys. */
function inputStamps(projectDir: string, workspaceDir: string, lockPath: string, dirs: string[]): FileStamp[] {
  const paths = new Set<string>([
    lockPath,
    join(projectDir, 'pyproject.toml'),
    join(workspaceDir, 'pyproject.toml'),
    join(projectDir, '.python-version'),
    join(workspaceDir, '.python-version'),
    join(workspaceDir, 'uv.toml'),
  ]);
  for (const d of dirs) {
    for (const f of ['pyproject.toml', 'setup.py', 'setup.cfg', 'src']) paths.add(join(d, f));
  }
  return [...paths].sort().map((p) => stampOf(p));
}

/**
 * Forget every key whose tree uses one of the damaged objects (they are
 * fetched again); returns the names of the distributions forgotten.
 */
function forgetDamaged(store: Store, keys: string[], err: TamperedObjectsError): string[] {
  const damaged = new Set(err.objects.map((x) => `${x.digest}${x.exec ? 'x' : ''}`));
  const names = new Set<string>();
  for (const key of keys) {
    const tree = getKey(store, key);
    if (!tree) continue;
    let uses = true;
    try {
      uses = readTree(store, tree).entries.some((e) => e.kind === 'file' && damaged.has(`${e.digest}${e.exec ? 'x' : ''}`));
    } catch {
      /* unreadable: forget it too */
    }
    if (!uses) continue;
    deleteKey(store, key);
    const m = /^uv:([^=]+)==/.exec(key);
    if (m) names.add(m[1]!);
  }
  return [...names].sort();
}

/**
 * uv's cache holds the same inodes as the store (uvCacheLinks.ts): a file
 * edited through a hardlink damaged uv's unpacked copy too. uv forgets those
 * distributions (`uv cache clean <name>`), so it fetches them afresh.
 */
async function cleanUvCache(uv: string, names: string[], env: NodeJS.ProcessEnv, cwd: string): Promise<void> {
  if (names.length === 0) return;
  const { uvEnvFor } = await import('./buildWithUv.js');
  const r = await runProcess(uv, ['cache', 'clean', ...names], { cwd, env: uvEnvFor(env, join(cwd, '.velo-never-created')) });
  if (r.code !== 0) throw uvFailed('uv cache clean failed', uv, ['cache', 'clean', ...names], r);
}

export async function uvSync(o: UvSyncOptions): Promise<UvSyncResult> {
  const started = performance.now();
  const phasesMs: Record<string, number> = {};
  let phaseStart = started;
  const phase = (name: UvSyncPhase, message: string): void => {
    phaseStart = performance.now();
    o.onProgress?.({ phase: name, message });
  };
  const endPhase = (name: UvSyncPhase): void => {
    phasesMs[name] = (phasesMs[name] ?? 0) + (performance.now() - phaseStart);
  };

  const checked = o.checked ?? checkNoop(o.argv, o.cwd, o.env, o.projection);
  const { args, uv } = checked;
  const projection: Projection = args.projection ?? o.projection ?? 'link';
  const fingerprint = args.fingerprint.concat(`projection=${projection}`);
  const base = {
    projectDir: checked.paths.projectDir,
    workspaceDir: checked.paths.workspaceDir,
    envDir: checked.paths.envDir,
  };
  const lockPath = checked.paths.lockPath;

  if (args.delegate) {
    const r = await runProcess(uv, ['sync', ...args.forUv], { cwd: o.cwd, env: o.env });
    return { ...emptyResult(base, projection), delegated: r, durationMs: performance.now() - started, phasesMs };
  }
  if (checked.state) {
    const s = checked.state;
    return {
      ...emptyResult(base, projection),
      noop: true,
      python: s.python,
      distributions: s.distributions,
      fromStore: s.distributions,
      tree: s.tree,
      durationMs: performance.now() - started,
      phasesMs,
    };
  }

  checkEnvPath(base.envDir);
  checkEnvTarget(base.envDir);
  const compileAll = compilesEverything(args.compileBytecode, o.env, projection);
  // what this sync put in the store's bytecode (--json)
  const bytecode: BytecodeUpdate = { compiled: 0, harvested: 0, replaced: 0 };
  const keyNow = (): string => envKey({ ...base, lockPath, args: args.fingerprint, env: o.env, uvPath: uv });

  const store = o.openStore();
  try {
    return await withLease(store, 'install', async () => {
      removeStaleWork(store);
      let key = keyNow();
      let manifest = loadEnvManifest(store, key);
      let lockRan = false;
      const lockCheck = (): string => lockCheckKey({ ...base, lockPath, lockArgs: args.lockArgs, env: o.env, uvPath: uv });
      const checkedBefore = (): boolean => !args.forceFull && getKey(store, lockCheck()) !== undefined;
      if (args.lockMode !== 'frozen' && (args.forceFull || !manifest?.lockChecked) && !checkedBefore()) {
        phase('lock', 'locking with uv');
        const { uvEnvFor } = await import('./buildWithUv.js');
        const lockArgs = ['lock', ...(args.lockMode === 'locked' ? ['--check'] : []), ...args.lockArgs];
        const before = lockCheck();
        const r = await runProcess(uv, lockArgs, { cwd: o.cwd, env: uvEnvFor(o.env, checked.paths.envDir) });
        if (r.code !== 0) throw uvFailed(isStaleLock(r) ? 'uv.lock is not up to date' : `uv lock${args.lockMode === 'locked' ? ' --check' : ''} failed`, uv, lockArgs, r);
        endPhase('lock');
        lockRan = true;
        // the lock held (uv left it as it was): a new checkout of it need not ask again — unless a
        // package is built from local sources (its metadata may come from more than pyproject.toml)
        if (lockCheck() === before && !hasLocalBuilds(lockPath)) recordLockCheck(store, before);
        const after = keyNow(); // uv lock may have rewritten uv.lock
        if (after !== key) {
          key = after;
          manifest = loadEnvManifest(store, key);
        }
      }
      if (manifest && (await manifestBytecodeStale(manifest))) manifest = undefined; // planned again, with the bytecode
      if (manifest) {
        try {
          return await fromManifest(manifest, key, lockRan);
        } catch (err) {
          if (err instanceof TamperedObjectsError) {
            // objects edited in place through some environment's hardlink were
            // quarantined: forget what used them and fetch those again through uv
            await cleanUvCache(uv, forgetDamaged(store, manifest.keys, err), o.env, o.cwd);
            deleteKey(store, key);
            o.onProgress?.({ phase: 'fetch', message: `${err.objects.length} damaged store object(s) quarantined; fetching them again` });
            return { ...(await attempt(true, key, lockRan)), repaired: err.objects.length };
          }
          if (!(err instanceof VeloError) || !['CORRUPT_OBJECT', 'CORRUPT_TREE', 'NOT_FOUND'].includes(err.code)) throw err;
          deleteKey(store, key); // a damaged or collected tree: plan with uv instead
        }
      }
      let planned: string[] = [];
      try {
        return await attempt(false, key, lockRan, (keys) => (planned = keys));
      } catch (err) {
        if (!(err instanceof TamperedObjectsError) || planned.length === 0) throw err;
        await cleanUvCache(uv, forgetDamaged(store, planned, err), o.env, o.cwd);
        o.onProgress?.({ phase: 'fetch', message: `${err.objects.length} damaged store object(s) quarantined; fetching them again` });
        return { ...(await attempt(true, key, lockRan)), repaired: err.objects.length };
      }
    }, { project: base.envDir });
  } finally {
    store.close();
  }

  /** The no-op state, written into the directory that becomes the environment. */
  function stateWriter(s: {
    envDir: string;
    tree: string;
    python: string;
    distributions: number;
    fromStore: number;
    keys: string[];
    localDirs: string[];
    sitePackages: string;
  }): (dir: string) => Promise<void> {
    const inputs = inputStamps(base.projectDir, base.workspaceDir, lockPath, s.localDirs);
    const uvStamp = stampOf(uv);
    return async (dir: string): Promise<void> => {
      writeStateInto(dir, s.envDir, s.sitePackages, {
        ...base,
        args: fingerprint,
        settings: settingsFingerprint(o.env),
        uv: uvStamp,
        inputs,
        tree: s.tree,
        python: s.python,
        distributions: s.distributions,
        fromStore: s.fromStore,
        keys: s.keys,
      });
      if (o.pauseBeforeSwapMs) {
        o.onProgress?.({ phase: 'link', message: `staged in ${dir}; pausing ${o.pauseBeforeSwapMs} ms before the swap` });
        await new Promise((r) => setTimeout(r, o.pauseBeforeSwapMs));
      }
    };
  }

  function project(envDir: string, tree: string, keys: string[], packages: number, finish: (dir: string) => Promise<void>, lazy?: LazyTrees): Promise<ProjectedEnv> {
    return projectEnvironment({
      store,
      tree,
      envDir,
      projectRoot: base.workspaceDir,
      projection,
      ...(o.method ? { method: o.method } : {}),
      ...(o.threads ? { threads: o.threads } : {}),
      backgroundRemoval: o.backgroundRemoval ?? false,
      keys,
      packages,
      finish,
      lazy,
    });
  }

  /**
   * Bytecode for distributions about to be laid out: compiled whole into the
   * store (--compile-bytecode, UV_COMPILE_BYTECODE, a mount), or harvested
   * from what python wrote in the recorded environments (distBytecode.ts).
   */
  async function bytecodeStep(b: { interp: Interpreter; interpreterKey: string; python: string; keys: string[] }): Promise<void> {
    const { updateBytecode } = await import('./distBytecode.js');
    const ctx = { store, interp: b.interp, python: b.python, env: o.env, cwd: o.cwd, threads: o.threads ?? 2 };
    const u = await updateBytecode(ctx, compileAll, b.interpreterKey, b.keys);
    bytecode.compiled += u.compiled;
    bytecode.harvested += u.harvested;
    bytecode.replaced += u.replaced;
  }

  /** The manifest's tree lacks bytecode stored since it was made (harvested, or compiled for another project)? */
  async function manifestBytecodeStale(m: EnvManifest): Promise<boolean> {
    const [{ bytecodeSignature }, { recordedInterpreter }] = await Promise.all([import('./distBytecode.js'), import('./interpreter.js')]);
    const known = recordedInterpreter(store, m.interpreterPath);
    const interpreterKey = m.keys.find((k) => k.startsWith('uv-python:'));
    if (known && interpreterKey) await bytecodeStep({ interp: known.interpreter, interpreterKey, python: known.realPath, keys: m.keys });
    return m.bytecode !== bytecodeSignature(store, m.keys);
  }

  /** The whole environment from its manifest: no uv, no lock parsing, one projection. */
  async function fromManifest(m: EnvManifest, key: string, lockRan: boolean): Promise<UvSyncResult> {
    phase('link', `projecting ${m.distributions + m.local} distribution(s) into ${base.envDir}`);
    const keys = [...m.keys, key];
    const p = await project(
      base.envDir,
      m.tree,
      keys,
      m.distributions + m.local,
      stateWriter({ envDir: base.envDir, tree: m.tree, python: m.python, distributions: m.distributions, fromStore: m.distributions, keys, localDirs: m.localDirs, sitePackages: m.sitePackages }),
    );
    if (lockRan && !m.lockChecked) saveEnvManifest(store, key, { ...m, lockChecked: true });
    endPhase('link');
    return withRemote(m.keys, {
      ...emptyResult(base, projection),
      python: m.python,
      distributions: m.distributions,
      fromStore: m.distributions,
      local: m.local,
      fromEnvironmentManifest: true,
      files: p.files,
      projection: p.projection,
      projectionNote: p.note,
      method: p.method,
      engine: p.engine,
      tree: m.tree,
      conflicts: m.conflicts,
      durationMs: performance.now() - started,
      phasesMs,
    });
  }

  /** After a successful sync: publish the distributions the remote lacks, and report what the remote did. */
  async function withRemote(keys: string[], synced: UvSyncResult): Promise<UvSyncResult> {
    const r: UvSyncResult = { ...synced, bytecode: { ...bytecode } };
    if (!o.remote) return r;
    const { UV_REMOTE_KINDS, uvRemoteKeys } = await import('./buildWithUv.js');
    await o.remote.publish(store, uvRemoteKeys(keys), UV_REMOTE_KINDS);
    return { ...r, remote: o.remote.report() };
  }

  /** Plan with uv, build the tree, project it, and record the manifest. */
  async function attempt(isRetry: boolean, key: string, lockRan: boolean, onPlanned?: (keys: string[]) => void, eager = false): Promise<UvSyncResult> {
    const [{ buildWithUv }, { readUvLock }, { planFromStore }] = await Promise.all([import('./buildWithUv.js'), import('./uvLock.js'), import('./planFromStore.js')]);
    const lock = readUvLock(lockPath);
    const work = store.tmpPath('uv-sync');
    mkdirSync(work, { recursive: true });
    let built: BuiltEnvironment | undefined;
    let planNote: string | undefined;
    const common = { store, uv, args, cwd: o.cwd, env: o.env, lock, projectDir: base.projectDir, workspaceDir: base.workspaceDir };
    try {
      if (!isRetry) {
        // a new checkout of what the store holds already: planned from uv.lock, no uv sync
        phase('plan', 'planning from uv.lock');
        const fast = await planFromStore({
          ...common,
          envDir: base.envDir,
          nowhere: join(work, 'never-created'),
          timings: phasesMs,
          fullTree: projection === 'mount',
          bytecode: bytecodeStep,
        });
        endPhase('plan');
        if ('unsupported' in fast) planNote = fast.unsupported;
        else built = fast;
      }
      built ??= await buildWithUv({
        ...common,
        lockPath,
        work,
        threads: o.threads ?? 2,
        phase,
        endPhase,
        remote: o.remote,
        compileAll,
        lazy: !eager && projection === 'mount' && o.remote !== undefined && (await (await import('../remote/lazyTrees.js')).lazyMountPossible(o.env)),
        bytecode: bytecodeStep,
      });
    } finally {
      rmSync(work, { recursive: true, force: true, maxRetries: 2 });
    }
    const b = built;
    bytecode.compiled += b.compiled ?? 0;
    const plannedBy = planNote === undefined && !isRetry ? 'uv.lock' : 'uv';
    onPlanned?.(b.distKeys);
    // the manifest is for the environment velo found; uv agreeing on where it is, is what makes it reusable
    // (an environment laid out as a shared tree plus files written beside it is not one tree: planned again next time)
    // (nor one with distributions still in the remote, whose keys are not set: the next sync looks them up again)
    const reusable = !b.dependent && !b.lazy && b.envDir === base.envDir && b.projectDir === base.projectDir && b.workspaceDir === base.workspaceDir;
    const keys = [...b.distKeys, b.interpreterKey, ...(reusable ? [key] : [])];
    phase('link', `linking ${b.distributions + b.local} distribution(s) into ${b.envDir}`);
    const writeState = stateWriter({
        envDir: b.envDir,
        tree: b.tree,
        python: b.interpreter.fullVersion,
        distributions: b.distributions,
        fromStore: b.fromStore,
        keys,
        localDirs: b.localDirs,
        sitePackages: b.interpreter.sitePackages,
      });
    const dependent = b.dependent;
    const lazyTrees = b.lazy ? await import('../remote/lazyTrees.js') : undefined;
    const lazy = lazyTrees && b.lazy && o.remote ? lazyTrees.lazyTreesOf(store, o.remote, b.lazy, () => b.lazyDeps ?? []) : undefined;
    let p: ProjectedEnv;
    try {
      p = await project(
        b.envDir,
        b.tree,
        keys,
        b.distributions + b.local,
        async (dir) => {
          if (dependent) {
            const { writeDependentFiles } = await import('./environmentBase.js');
            writeDependentFiles(dir, dependent);
          }
          await writeState(dir);
        },
        lazy,
      );
    } catch (err) {
      // to be linked after all, and the remote could not give the rest: uv fetches what it lacks
      if (lazyTrees && err instanceof lazyTrees.LazyFillIncomplete) return attempt(isRetry, key, lockRan, onPlanned, true);
      throw err;
    }
    if (reusable) {
      saveEnvManifest(store, key, {
        tree: b.tree,
        python: b.interpreter.fullVersion,
        interpreterPath: b.interpreterPath,
        interpreterIdent: interpreterIdentOf(b.interpreterPath),
        sitePackages: b.interpreter.sitePackages,
        keys: [...b.distKeys, b.interpreterKey],
        distributions: b.distributions,
        local: b.local,
        localDirs: b.localDirs,
        localStamps: localStampsOf(b.localDirs),
        files: b.files,
        pycs: b.pycs,
        conflicts: b.conflicts,
        lockChecked: lockRan,
        bytecode: (await import('./distBytecode.js')).bytecodeSignature(store, b.distKeys),
      });
    }
    endPhase('link');
    return withRemote(b.distKeys, {
      noop: false,
      projectDir: b.projectDir,
      workspaceDir: b.workspaceDir,
      envDir: b.envDir,
      python: b.interpreter.fullVersion,
      distributions: b.distributions,
      fromStore: b.fromStore,
      ingested: b.ingested,
      local: b.local,
      fromEnvironmentManifest: false,
      plannedBy,
      ...(planNote !== undefined ? { planNote } : {}),
      files: p.files,
      pycs: b.pycs,
      newObjects: b.newObjects,
      newBytes: b.newBytes,
      uvCacheLinked: { files: b.cacheLinked?.files ?? 0, bytes: b.cacheLinked?.bytes ?? 0 },
      repaired: 0,
      retried: isRetry,
      projection: p.projection,
      projectionNote: p.note,
      method: p.method,
      engine: p.engine,
      tree: b.tree,
      conflicts: b.conflicts,
      durationMs: performance.now() - started,
      phasesMs,
    });
  }
}

function emptyResult(base: { projectDir: string; workspaceDir: string; envDir: string }, projection: Projection): UvSyncResult {
  return {
    noop: false,
    ...base,
    python: '',
    distributions: 0,
    fromStore: 0,
    ingested: 0,
    local: 0,
    fromEnvironmentManifest: false,
    files: 0,
    pycs: 0,
    repaired: 0,
    retried: false,
    newObjects: 0,
    newBytes: 0,
    uvCacheLinked: { files: 0, bytes: 0 },
    projection,
    projectionNote: undefined,
    method: '',
    engine: '',
    tree: '',
    conflicts: [],
    durationMs: 0,
    phasesMs: {},
  };
}
