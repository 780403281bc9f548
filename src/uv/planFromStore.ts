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
import { perEnvTreeEntries, planEnvironment } from './assembleEnvironment.js';
import type { BuiltEnvironment } from './buildWithUv.js';
import { localDirs, uvEnvFor } from './buildWithUv.js';
import { distKey } from './distKey.js';
import { recordedInterpreter } from './interpreter.js';
import { planFromLock } from './lockPlan.js';
import { runProcess } from './runUvProcess.js';
import { loadDistribution, type StoredDistribution } from './storedDistribution.js';
import { tokenize, type SyncArgs } from './syncArgs.js';
import type { UvLock } from './uvLock.js';
import { loadVenvTemplate, venvTemplateKey } from './venvTemplate.js';

export interface StorePlanContext {
  store: Store;
  uv: string;
  args: SyncArgs;
  cwd: string;
  env: NodeJS.ProcessEnv;
  lock: UvLock;
  projectDir: string;
  workspaceDir: string;
  envDir: string;
  /** a path that does not exist (uv must not find an environment there) */
  nowhere: string;
}

/** Options of `uv sync` that decide which interpreter it finds, as `uv python find` takes them. */
const PYTHON_OPTIONS = new Set([
  '--python-preference', '--managed-python', '--no-managed-python', '--no-python-downloads', '--offline', '--cache-dir', '--no-cache', '-n',
  '--directory', '--project', '--config-file', '--no-config',
]);

/** The interpreter `uv sync` would create the environment with, as uv finds it (never downloads). */
async function findPython(c: StorePlanContext): Promise<string | undefined> {
  const args = ['python', 'find'];
  for (const t of tokenize(c.args.original)) {
    if (t.name === '--python' || t.name === '-p') args.splice(2, 0, t.value!);
    else if (PYTHON_OPTIONS.has(t.name)) args.push(...t.raw);
  }
  // the environment uv would look at first does not exist yet (a new checkout), or is being replaced
  const r = await runProcess(c.uv, args, { cwd: c.cwd, env: { ...uvEnvFor(c.env, c.nowhere), UV_PYTHON_DOWNLOADS: 'never' } });
  const out = r.stdout.trim();
  return r.code === 0 && out.startsWith('/') && !out.includes('\n') ? out : undefined;
}

export async function planFromStore(c: StorePlanContext): Promise<BuiltEnvironment | { unsupported: string }> {
  const python = await findPython(c);
  if (!python) return { unsupported: 'uv python find found no interpreter' };
  const recorded = recordedInterpreter(c.store, python);
  if (!recorded) return { unsupported: `${python} was never probed by velo` };
  const { interpreter: interp, key: interpreterKey, realPath } = recorded;
  const plan = planFromLock(c.lock, c.projectDir, c.workspaceDir, c.args.original, interp.markers!);
  if ('unsupported' in plan) return plan;
  const templateKey = venvTemplateKey(interpreterKey, c.uv, plan.projectName);
  const venv = loadVenvTemplate(c.store, templateKey, c.envDir);
  if (!venv) return { unsupported: 'no venv recorded for this interpreter, uv and project name' };

  const keys = plan.packages.map((p) => distKey(p, interp, c.workspaceDir));
  const found = getKeys(c.store, keys);
  const stored: StoredDistribution[] = [];
  for (const k of keys) {
    const tree = found.get(k);
    if (!tree) return { unsupported: `the store lacks ${k}` };
    try {
      stored.push(loadDistribution(c.store, tree));
    } catch (err) {
      if (err instanceof VeloError) return { unsupported: `${k}: ${err.message}` };
      throw err;
    }
  }
  const envPlan = planEnvironment({ envDir: c.envDir, stored, local: [], localPycs: new Map(), venv });
  const perEnv = perEnvTreeEntries(c.store, envPlan.perEnv);
  const tree = putTree(c.store, [...envPlan.shared, ...perEnv]);
  return {
    tree,
    projectDir: c.projectDir,
    workspaceDir: c.workspaceDir,
    envDir: c.envDir,
    interpreter: interp,
    interpreterKey,
    interpreterPath: realPath,
    distKeys: [...keys, templateKey],
    distributions: keys.length,
    fromStore: keys.length,
    ingested: 0,
    local: 0,
    localDirs: localDirs(c.lock, c.workspaceDir),
    files: envPlan.shared.length + perEnv.filter((e) => e.kind === 'file').length,
    pycs: stored.reduce((n, d) => n + d.manifest.pycs, 0),
    newObjects: 0,
    newBytes: 0,
    conflicts: envPlan.conflicts,
  };
}

