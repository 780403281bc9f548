/**
 * Stage 1 of a lockfile install: read the user's npm configuration, let npm
 * resolve when the lockfile is missing, stale or asked to change
 * (`npm install --package-lock-only`), and plan from the lockfile.
 */
import { spawnSync } from 'node:child_process';
import { VeloError } from '../errors.js';
import { checkLockfileSyntax, lockfilePath, planInstall, type Plan } from './plan.js';
import { loadNpmConfig, type LoadedNpmConfig, type UserNpm } from './userNpm.js';
import type { InstallOptions } from './installTypes.js';

export interface ResolvedPlan {
  loaded: LoadedNpmConfig;
  plan: Plan;
  /** npm rewrote the lockfile first */
  resolvedLockfile: boolean;
}

/** Let the user's npm resolve: `npm install --package-lock-only [args]`. */
function resolveWithNpm(loaded: LoadedNpmConfig, root: string, args: string[], env: NodeJS.ProcessEnv, quiet: boolean): void {
  const [exe, ...pre] = loaded.npm.command;
  // with --json, velo's stdout is the summary alone: npm's report goes to stderr
  const r = spawnSync(exe!, [...pre, 'install', '--package-lock-only', ...args], { cwd: root, env, stdio: ['ignore', quiet ? 2 : 'inherit', 'inherit'] });
  if (r.error) throw new VeloError('TOOL_FAILED', `cannot run npm: ${r.error.message}`);
  if (r.status !== 0) throw new VeloError('TOOL_FAILED', `npm install --package-lock-only failed (exit ${r.status})`, { exitCode: r.status ?? 1 });
}

export async function resolveAndPlan(o: InstallOptions, root: string, npm: UserNpm, userEnv: NodeJS.ProcessEnv): Promise<ResolvedPlan> {
  o.progress?.phase?.('config');
  const loaded = await loadNpmConfig(npm, o.mode, o.npmArgs, root);
  process.env.npm_command = o.mode; // what npm exports to every script it runs
  const resolve = (): void => {
    o.progress?.phase?.('resolve', 'npm install --package-lock-only');
    resolveWithNpm(loaded, root, o.npmArgs, userEnv, o.scriptStdio !== 'inherit');
  };
  let resolvedLockfile = false;
  if (o.mode === 'install' && (!lockfilePath(root) || loaded.positionals.length > 0)) {
    resolve();
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
    resolve();
    resolvedLockfile = true;
    plan = await planInstall(root, loaded, o.mode);
  }
  return { loaded, plan, resolvedLockfile };
}
