/**
 * A new checkout without uv: when the store already holds every
 * distribution uv.lock names for this interpreter, the venv skeleton uv
 * makes for this project, and the interpreter's record, the environment is
 * planned from uv.lock (lockPlan.ts) and put together from the store — no
 * scratch environment, no `uv sync`. The only uv process is
 * `uv python find` (which interpreter `uv sync` would pick here: .python-
 * version, requires-python, --python, UV_PYTHON, …). Anything missing or
 * anything the plan cannot model gives a reason, and uv plans instead.
 */
import { VeloError } from '../errors.js';
import { getKeys } from '../store/keys.js';
import { putTree } from '../store/trees.js';
import type { Store } from '../store/store.js';
import { perEnvTreeEntries, planEnvironment, type PerEnvFile } from './assembleEnvironment.js';
import { envBaseKeys, loadEnvBase, saveEnvBase } from './environmentBase.js';
import type { BuildContext, BuiltEnvironment } from './buildWithUv.js';
import { localDirs, uvEnvFor } from './buildWithUv.js';
import { distKey } from './distKey.js';
import { recordedInterpreter } from './interpreter.js';
import { planFromLock } from './lockPlan.js';
import { runProcess } from './runUvProcess.js';
import { bytecodeSignature } from './distBytecode.js';
import { loadDistribution, type StoredDistribution } from './storedDistribution.js';
import { tokenize, type SyncArgs } from './syncArgs.js';
import type { UvLock } from './uvLock.js';
import { loadVenvTemplate, venvTemplateKey } from './venvTemplate.js';

export interface StorePlanContext extends Pick<BuildContext, 'store' | 'uv' | 'args' | 'cwd' | 'env' | 'lock' | 'projectDir' | 'workspaceDir' | 'bytecode'> {
  envDir: string;
  /** a path that does not exist (uv must not find an environment there) */
  nowhere: string;
  /** time spent per step (ms), added to */
  timings: Record<string, number>;
  /** the whole environment as one tree (a mount serves trees); else the path-independent tree plus files to write */
  fullTree: boolean;
}

/** Options of `uv sync` that decide which interpreter it finds, as `uv python find` takes them. */
const PYTHON_OPTIONS = new Set([
  '--python-preference', '--managed-python', '--no-managed-python', '--no-python-downloads', '--offline', '--cache-dir', '--no-cache', '-n',
  '--directory', '--project', '--config-file', '--no-config',
]);

/** The interpreter `uv sync` would create the environment with, as uv finds it (never downloads). */
async function findPython(c: StorePlanContext): Promise<string | undefined> {
  const args = ['python', 'find'];
  let request = c.env.UV_PYTHON; // uv sync reads UV_PYTHON; uv python find does not
  for (const t of tokenize(c.args.original)) {
    if (t.name === '--python' || t.name === '-p') request = t.value!;
    else if (PYTHON_OPTIONS.has(t.name)) args.push(...t.raw);
  }
  if (request) args.push(request);
  // the environment uv would look at first does not exist yet (a new checkout), or is being replaced
  const r = await runProcess(c.uv, args, { cwd: c.cwd, env: { ...uvEnvFor(c.env, c.nowhere), UV_PYTHON_DOWNLOADS: 'never' } });
  const out = r.stdout.trim();
  return r.code === 0 && out.startsWith('/') && !out.includes('\n') ? out : undefined;
}

export async function planFromStore(c: StorePlanContext): Promise<BuiltEnvironment | { unsupported: string }> {
  let t = performance.now();
  const lap = (name: string): void => {
    const now = performance.now();
    c.timings[name] = (c.timings[name] ?? 0) + (now - t);
    t = now;
  };
  const python = await findPython(c);
  lap('python-find');
  if (!python) return { unsupported: 'uv python find found no interpreter' };
  const recorded = recordedInterpreter(c.store, python);
  if (!recorded) return { unsupported: `${python} was never probed by velo` };
  const { interpreter: interp, key: interpreterKey, realPath } = recorded;
  const plan = planFromLock(c.lock, c.projectDir, c.workspaceDir, c.args.original, interp.markers!);
  if ('unsupported' in plan) return plan;
  const templateKey = venvTemplateKey(interpreterKey, c.uv, plan.projectName);
  const venv = loadVenvTemplate(c.store, templateKey, c.envDir);
  if (!venv) return { unsupported: 'no venv recorded for this interpreter, uv and project name' };

  lap('plan-lock');
  const keys = plan.packages.map((p) => distKey(p, interp, c.workspaceDir));
  const found = getKeys(c.store, keys);
  const missing = keys.find((k) => !found.has(k));
  if (missing) return { unsupported: `the store lacks ${missing}` };
  lap('plan-keys');
  await c.bytecode({ interp, interpreterKey, python: realPath, keys });
  lap('plan-bytecode');
  // the bytecode stored for these distributions is part of what the recorded base holds
  const baseKeys = envBaseKeys([...keys, interpreterKey, `pyc=${bytecodeSignature(c.store, keys)}`], templateKey);
  const held = [...keys, templateKey];
  const result = (tree: string, files: number, pycs: number, conflicts: string[], dependent?: PerEnvFile[]): BuiltEnvironment => ({
    tree,
    projectDir: c.projectDir,
    workspaceDir: c.workspaceDir,
    envDir: c.envDir,
    interpreter: interp,
    interpreterKey,
    interpreterPath: realPath,
    distKeys: held,
    distributions: keys.length,
    fromStore: keys.length,
    ingested: 0,
    local: 0,
    localDirs: localDirs(c.lock, c.workspaceDir),
    files,
    pycs,
    newObjects: 0,
    newBytes: 0,
    conflicts,
    ...(dependent ? { dependent } : {}),
  });
  if (!c.fullTree) {
    // the path-independent part recorded by an earlier checkout of the same distributions
    const base = loadEnvBase(c.store, baseKeys, c.envDir, venv);
    lap('plan-load');
    if (base) {
      held.push(baseKeys.base, baseKeys.recipe);
      return result(base.tree, base.counts.files, base.counts.pycs, base.counts.conflicts, base.dependent);
    }
  }
  const stored: StoredDistribution[] = [];
  for (const k of keys) {
    try {
      stored.push(loadDistribution(c.store, found.get(k)!));
    } catch (err) {
      if (err instanceof VeloError) return { unsupported: `${k}: ${err.message}` };
      throw err;
    }
  }
  lap('plan-load');
  const envPlan = planEnvironment({ envDir: c.envDir, stored, local: [], localPycs: new Map(), venv });
  const pycs = stored.reduce((n, d) => n + d.manifest.pycs, 0);
  lap('plan-assemble');
  if (c.fullTree) {
    const perEnv = perEnvTreeEntries(c.store, envPlan.perEnv);
    const tree = putTree(c.store, [...envPlan.shared, ...perEnv]);
    lap('plan-tree');
    return result(tree, envPlan.shared.length + perEnv.filter((e) => e.kind === 'file').length, pycs, envPlan.conflicts);
  }
  const dependent = envPlan.perEnv.filter((f) => f.remake);
  const independent = perEnvTreeEntries(c.store, envPlan.perEnv.filter((f) => !f.remake));
  const files = envPlan.shared.length + independent.filter((e) => e.kind === 'file').length + dependent.filter((f) => f.kind === 'file').length;
  const tree = saveEnvBase(c.store, baseKeys, [...envPlan.shared, ...independent], dependent, { files, pycs, conflicts: envPlan.conflicts });
  held.push(baseKeys.base, baseKeys.recipe);
  lap('plan-tree');
  return result(tree, files, pycs, envPlan.conflicts, dependent);
}
