/**
 * velo uv sync: a project environment assembled from the store.
 *
 *  1. uv locks (unless --frozen; --locked checks) — uv owns uv.lock.
 *  2. uv syncs a scratch environment with every shareable distribution left
 *     out (--no-install-package): that creates the venv and installs what
 *     is local to this project (its own editable install, path and git
 *     dependencies).
 *  3. uv says, in a dry run against the scratch environment, which
 *     shareable distributions this environment needs; each gets its package
 *     key (lock entry + interpreter identity).
 *  4. Keys missing from the store: uv installs just those into the scratch
 *     environment (its download, build and unpack), velo checks them against
 *     their RECORD, compiles their bytecode once, and stores each as a tree.
 *  5. The environment is projected from the store, the per-environment files
 *     are written into the staging directory, and it is swapped in
 *     atomically; the previous environment stays intact until then.
 */
import { mkdirSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { VeloError } from '../errors.js';
import type { LinkMethod } from '../config.js';
import { TamperedObjectsError, materialize } from '../project/materialize.js';
import { deleteKey, getKeys, registerProject } from '../store/keys.js';
import { processAlive, withLease } from '../store/lock.js';
import { putTree } from '../store/trees.js';
import type { Store } from '../store/store.js';
import { checkEnvPath, checkEnvTarget, planEnvironment, writePerEnvFiles } from './assembleEnvironment.js';
import { compileBytecode, pycPathFor, type CompileJob } from './compileBytecode.js';
import { distKey } from './distKey.js';
import { STATE_FILE, envStampPaths, newState, settingsFingerprint, stampOf, type FileStamp } from './envState.js';
import { listDistInfos, normalizeName, readInstalledDistribution, type InstalledDistribution } from './installedDistribution.js';
import { interpreterFor } from './interpreter.js';
import { checkNoop, type NoopAnswer } from './noop.js';
import { envDirFor } from './projectPaths.js';
import { runProcess, toolFailed, type ProcessResult } from './runUvProcess.js';
import { loadDistribution, storeDistribution, type StoredDistribution } from './storedDistribution.js';
import { isShareable, readUvLock, type LockPackage } from './uvLock.js';

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
  threads?: number;
  onProgress?: (p: UvSyncProgress) => void;
  /** the no-op check already made by the caller */
  checked?: NoopAnswer;
  /** delete the previous environment in a detached process (the CLI does) */
  backgroundRemoval?: boolean;
  /** wait this long with the new environment staged, before the swap (tests kill velo here) */
  pauseBeforeSwapMs?: number;
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
  files: number;
  pycs: number;
  /** damaged store objects found (and fetched again) on the way */
  repaired: number;
  retried: boolean;
  newObjects: number;
  newBytes: number;
  method: string;
  /** the link farm that laid the files out: the native addon or JavaScript */
  engine: string;
  tree: string;
  conflicts: string[];
  durationMs: number;
  phasesMs: Record<string, number>;
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
function uvEnvFor(env: NodeJS.ProcessEnv, scratch: string): NodeJS.ProcessEnv {
  const out: NodeJS.ProcessEnv = { ...env, UV_PROJECT_ENVIRONMENT: scratch, UV_NO_PROGRESS: '1' };
  delete out.VIRTUAL_ENV;
  delete out.UV_COMPILE_BYTECODE;
  delete out.UV_LOCKED;
  delete out.UV_FROZEN;
  return out;
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

function localDirs(lock: { packages: LockPackage[] }, workspaceDir: string): string[] {
  const dirs = new Set<string>();
  for (const p of lock.packages) {
    if (p.source.kind === 'editable' || p.source.kind === 'directory' || p.source.kind === 'virtual') dirs.add(join(workspaceDir, p.source.value));
  }
  return [...dirs];
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

  const checked = o.checked ?? checkNoop(o.argv, o.cwd, o.env);
  const { args, uv } = checked;
  const base = {
    projectDir: checked.paths.projectDir,
    workspaceDir: checked.paths.workspaceDir,
    envDir: checked.paths.envDir,
  };

  if (args.delegate) {
    const passArgs = ['sync', ...args.original.filter((a) => a !== '--json')];
    const r = await runProcess(uv, passArgs, { cwd: o.cwd, env: o.env });
    return { ...emptyResult(base), delegated: r, durationMs: performance.now() - started, phasesMs };
  }
  if (checked.state) {
    const s = checked.state;
    return {
      ...emptyResult(base),
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

  // 1. lock
  if (args.lockMode !== 'frozen') {
    phase('lock', 'locking with uv');
    const lockArgs = ['lock', ...(args.lockMode === 'locked' ? ['--check'] : []), ...args.lockArgs];
    const r = await runProcess(uv, lockArgs, { cwd: o.cwd, env: uvEnvFor(o.env, checked.paths.envDir) });
    if (r.code !== 0) throw toolFailed(args.lockMode === 'locked' ? 'uv.lock is not up to date' : 'uv lock failed', uv, lockArgs, r);
    endPhase('lock');
  }
  const lockPath = checked.paths.lockPath;
  const lock = readUvLock(lockPath);
  const shareable = lock.packages.filter((p) => isShareable(p.source));
  const shareableNames = [...new Set(shareable.map((p) => p.name))].sort();

  const store = o.openStore();
  let lastDists: StoredDistribution[] | undefined;
  try {
    return await withLease(store, 'install', async () => {
      removeStaleWork(store);
      try {
        return await attempt(false);
      } catch (err) {
        // objects edited in place through some environment's hardlink were
        // quarantined: forget the distributions that used them and fetch
        // those again through uv (once)
        if (!(err instanceof TamperedObjectsError) || !lastDists) throw err;
        const damaged = new Set(err.objects.map((x) => `${x.digest}${x.exec ? 'x' : ''}`));
        for (const d of lastDists) {
          if (d.shared.some((e) => damaged.has(`${e.digest}${e.exec ? 'x' : ''}`))) deleteKey(store, d.manifest.key);
        }
        o.onProgress?.({ phase: 'fetch', message: `${err.objects.length} damaged store object(s) quarantined; fetching them again` });
        const r = await attempt(true);
        return { ...r, repaired: err.objects.length };
      }
    });
  } finally {
    store.close();
  }

  async function attempt(isRetry: boolean): Promise<UvSyncResult> {
    const work = store.tmpPath('uv-sync');
    mkdirSync(work, { recursive: true });
    try {
      return await syncInto(work, isRetry);
    } finally {
      rmSync(work, { recursive: true, force: true, maxRetries: 2 });
    }
  }

  async function syncInto(work: string, isRetry: boolean): Promise<UvSyncResult> {
    const scratch = join(work, 'venv');
    const uvEnv = uvEnvFor(o.env, scratch);
    // 2. the scratch environment with the local distributions only, and
    //    (at the same time) uv's plan for a fresh environment
    phase('scratch', 'creating the environment with uv');
    const noInstall = (names: string[]): string[] => names.flatMap((n) => ['--no-install-package', n]);
    const sync1Args = ['sync', '--frozen', '--output-format', 'json', ...noInstall(shareableNames), ...args.syncArgs];
    const dryArgs = ['sync', '--frozen', '--dry-run', '--output-format', 'json', ...args.syncArgs];
    const [s1, dry] = await Promise.all([
      runProcess(uv, sync1Args, { cwd: o.cwd, env: uvEnv }),
      runProcess(uv, dryArgs, { cwd: o.cwd, env: uvEnvFor(o.env, join(work, 'never-created')) }),
    ]);
    if (s1.code !== 0) throw toolFailed('uv sync failed', uv, sync1Args, s1);
    if (dry.code !== 0) throw toolFailed('uv sync --dry-run failed', uv, dryArgs, dry);
    const j1 = parseSyncJson(s1, 'uv sync');
    const projectDir = j1.project?.path ?? base.projectDir;
    const workspaceDir = j1.project?.workspace?.path ?? base.workspaceDir;
    if (j1.lock?.path && j1.lock.path !== lockPath) {
      throw new VeloError('LOCKFILE', `uv used ${j1.lock.path}, but velo read ${lockPath}`, { hint: 'run velo uv sync from the workspace root' });
    }
    const envDir = envDirFor(workspaceDir, o.env);
    checkEnvPath(envDir);
    checkEnvTarget(envDir);
    const scratchPython = j1.sync?.environment?.python?.path ?? join(scratch, 'bin', 'python');
    endPhase('scratch');

    // 3. what this environment needs, its keys, and what the store has
    phase('plan', 'planning from uv.lock');
    const { interpreter: interp, key: interpreterKey } = await interpreterFor(store, scratchPython, uvEnv, o.cwd);
    const wanted: LockPackage[] = [];
    const byNameVersion = new Map(lock.packages.map((p) => [`${p.name}==${p.version}`, p]));
    for (const c of parseSyncJson(dry, 'uv sync --dry-run').sync?.changes ?? []) {
      if (c.action !== 'installed') continue;
      const name = normalizeName(c.name);
      const pkg = byNameVersion.get(`${name}==${c.version ?? ''}`);
      if (pkg && isShareable(pkg.source)) {
        wanted.push(pkg);
        continue;
      }
      // local packages (the project, path and git dependencies) are in the scratch environment already
      if (lock.packages.some((p) => p.name === name && !isShareable(p.source))) continue;
      throw new VeloError('LOCKFILE', `uv wants to install ${c.name} ${c.version ?? ''}, which ${lockPath} does not list`);
    }
    const keyOf = new Map(wanted.map((p) => [p, distKey(p, interp, workspaceDir)]));
    const found = getKeys(store, [...keyOf.values()]);
    const stored = new Map<string, StoredDistribution>();
    for (const [key, tree] of found) {
      try {
        stored.set(key, loadDistribution(store, tree));
      } catch (err) {
        if (!(err instanceof VeloError)) throw err;
        deleteKey(store, key); // a damaged entry: fetch it again
      }
    }
    const hits = wanted.filter((p) => stored.has(keyOf.get(p)!));
    const misses = wanted.filter((p) => !stored.has(keyOf.get(p)!));
    endPhase('plan');

    // 4. fetch what is missing through uv, check it, compile it, store it
    let newObjects = 0;
    let newBytes = 0;
    if (misses.length > 0) {
      phase('fetch', `installing ${misses.length} distribution(s) with uv`);
      const hitNames = [...new Set(hits.map((p) => p.name))].sort();
      const sync2Args = ['sync', '--frozen', '--output-format', 'json', ...noInstall(hitNames), ...args.syncArgs];
      const s2 = await runProcess(uv, sync2Args, { cwd: o.cwd, env: uvEnv });
      if (s2.code !== 0) throw toolFailed('uv sync failed', uv, sync2Args, s2);
      endPhase('fetch');
    }

    phase('ingest', 'checking what uv installed against its RECORD');
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
    endPhase('ingest');

    const pycDir = join(work, 'pyc');
    const jobs: CompileJob[] = [];
    const pycOwner = new Map<string, { dist: InstalledDistribution; rel: string }>();
    const spPrefix = `${interp.sitePackages}/`;
    for (const d of [...fetched.map((f) => f.dist), ...local]) {
      for (const f of d.files) {
        if (f.role !== 'shared' || !f.rel.endsWith('.py') || !f.rel.startsWith(spPrefix)) continue;
        const pycRel = pycPathFor(f.rel, interp.cacheTag);
        const output = join(pycDir, pycRel);
        jobs.push({ source: f.abs, output, displayName: f.rel.slice(spPrefix.length) });
        pycOwner.set(output, { dist: d, rel: pycRel });
      }
    }
    if (jobs.length > 0) phase('compile', `compiling ${jobs.length} file(s) to bytecode`);
    const compiled = await compileBytecode(scratchPython, jobs, uvEnv, o.cwd, o.threads ?? 2);
    const pycsByDist = new Map<InstalledDistribution, Map<string, string>>();
    for (const output of compiled) {
      const owner = pycOwner.get(output)!;
      let m = pycsByDist.get(owner.dist);
      if (!m) pycsByDist.set(owner.dist, (m = new Map()));
      m.set(owner.rel, output);
    }
    if (jobs.length > 0) endPhase('compile');

    if (fetched.length > 0) phase('ingest', `storing ${fetched.length} distribution(s)`);
    for (const { pkg, dist } of fetched) {
      const key = keyOf.get(pkg)!;
      const r = await storeDistribution(store, key, dist, interp.sitePackages, pycsByDist.get(dist) ?? new Map());
      stored.set(key, loadDistribution(store, r.tree));
      newObjects += r.newObjects;
      newBytes += r.newBytes;
    }
    if (fetched.length > 0) endPhase('ingest');

    // 5. assemble and swap in
    phase('link', `linking ${wanted.length + local.length} distribution(s) into ${envDir}`);
    const dists = wanted.map((p) => stored.get(keyOf.get(p)!)!);
    lastDists = dists;
    const claimed = new Set<string>();
    for (const d of installed.values()) {
      claimed.add(d.recordRel);
      for (const f of d.files) claimed.add(f.rel);
    }
    const localPycs = new Map<string, string>();
    for (const d of local) for (const [rel, abs] of pycsByDist.get(d) ?? []) localPycs.set(rel, abs);
    const plan = planEnvironment({ envDir, stored: dists, local, localPycs, scratchDir: scratch, claimed });
    const tree = putTree(store, plan.shared);
    const keys = [...wanted.map((p) => keyOf.get(p)!), interpreterKey];
    const inputs = inputStamps(projectDir, workspaceDir, lockPath, localDirs(lock, workspaceDir));
    const uvStamp = stampOf(uv);
    const sitePackagesDir = join(envDir, interp.sitePackages);
    const m = await materialize(store, tree, envDir, {
      ...(o.method ? { method: o.method } : {}),
      ...(o.threads ? { threads: o.threads } : {}),
      backgroundRemoval: o.backgroundRemoval ?? false,
      beforeSwap: async (staging) => {
        writePerEnvFiles(staging, plan.perEnv, new Set(plan.shared.map((e) => e.path)));
        const envStamps = envStampPaths(envDir, sitePackagesDir).map((finalPath) => ({
          ...stampOf(join(staging, finalPath.slice(envDir.length))),
          path: finalPath,
        }));
        const state = newState({
          projectDir: base.projectDir,
          workspaceDir: base.workspaceDir,
          envDir: base.envDir,
          args: args.fingerprint,
          settings: settingsFingerprint(o.env),
          uv: uvStamp,
          inputs,
          envStamps,
          tree,
          python: interp.fullVersion,
          distributions: wanted.length,
          fromStore: hits.length,
          keys,
        });
        writePerEnvFiles(staging, [{ rel: STATE_FILE, kind: 'file', data: Buffer.from(JSON.stringify(state, null, 1) + '\n'), mode: 0o644 }]);
        if (o.pauseBeforeSwapMs) {
          o.onProgress?.({ phase: 'link', message: `staged in ${staging}; pausing ${o.pauseBeforeSwapMs} ms before the swap` });
          await new Promise((r) => setTimeout(r, o.pauseBeforeSwapMs));
        }
      },
    });
    registerProject(store, {
      path: envDir,
      ecosystem: 'uv',
      tree,
      method: m.method,
      logicalBytes: m.logicalBytes,
      files: m.files,
      packages: wanted.length + local.length,
      keys,
    });
    endPhase('link');
    return {
      noop: false,
      projectDir,
      workspaceDir,
      envDir,
      python: interp.fullVersion,
      distributions: wanted.length,
      fromStore: hits.length,
      ingested: fetched.length,
      local: local.length,
      files: m.files + plan.perEnv.filter((f) => f.kind === 'file').length,
      pycs: compiled.size,
      newObjects,
      newBytes,
      repaired: 0,
      retried: isRetry,
      method: m.method,
      engine: m.engine,
      tree,
      conflicts: plan.conflicts,
      durationMs: performance.now() - started,
      phasesMs,
    };
  }
}

function emptyResult(base: { projectDir: string; workspaceDir: string; envDir: string }): UvSyncResult {
  return {
    noop: false,
    ...base,
    python: '',
    distributions: 0,
    fromStore: 0,
    ingested: 0,
    local: 0,
    files: 0,
    pycs: 0,
    repaired: 0,
    retried: false,
    newObjects: 0,
    newBytes: 0,
    method: '',
    engine: '',
    tree: '',
    conflicts: [],
    durationMs: 0,
    phasesMs: {},
  };
}

