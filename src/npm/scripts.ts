/**
 * Install scripts, run the way the user's npm runs them: dependency scripts
 * (preinstall, install, postinstall, an implicit `node-gyp rebuild` for a
 * binding.gyp) through that npm's arborist `rebuild` — same order, same
 * environment, same install-script approval policy — and the root project's
 * own lifecycle scripts through its @npmcli/run-script, in npm ci's order.
 */
import { rmSync } from 'node:fs';
import { VeloError } from '../errors.js';
import { npmLibrary, type AnyRecord, type LoadedNpmConfig } from './userNpm.js';
import type { Plan, PlannedPackage } from './plan.js';
import { ROOT_SCRIPTS } from './rootScripts.js';


export function scriptFailure(err: AnyRecord, what: string): VeloError {
  const pkgid = err.pkgid ?? what;
  const event = err.event ? ` ${err.event}` : '';
  const code = err.code !== undefined ? ` (exit ${err.code}${err.signal ? `, ${err.signal}` : ''})` : '';
  const tail = String(err.stderr || err.stdout || '')
    .trim()
    .split('\n')
    .slice(-8)
    .join('\n');
  return new VeloError('TOOL_FAILED', `${pkgid}${event} script failed${code}${tail ? `:\n${tail}` : ''}`, { cause: err, exitCode: 1 });
}

/**
 * Run dependency install scripts for these packages (already in place,
 * as private copies). Optional packages whose scripts fail are removed, as
 * npm does; returns those.
 */
export async function runDependencyScripts(plan: Plan, pkgs: PlannedPackage[]): Promise<PlannedPackage[]> {
  if (pkgs.length === 0) return [];
  const nodes = pkgs.map((p) => p.node);
  try {
    await plan.arborist.rebuild({ nodes, handleOptionalFailure: true });
  } catch (err) {
    throw scriptFailure(err as AnyRecord, 'a dependency');
  }
  const failedOptional = pkgs.filter((p) => p.node.inert);
  for (const p of failedOptional) rmSync(p.node.path, { recursive: true, force: true });
  return failedOptional;
}

/** The packages whose install scripts npm would run now. */
export function packagesNeedingScripts(plan: Plan, pkgs: PlannedPackage[], hasBindingGyp: (p: PlannedPackage) => boolean): PlannedPackage[] {
  if (plan.ignoreScripts) return [];
  return pkgs.filter((p) => p.scriptsAllowed && (p.hasInstallScript || hasBindingGyp(p)) && !p.node.inDepBundle);
}

export async function runRootScripts(loaded: LoadedNpmConfig, root: string, pkg: AnyRecord, stdio: 'inherit' | [number, number, number]): Promise<string[]> {
  if (loaded.flat.ignoreScripts) return [];
  const scripts = (pkg.scripts ?? {}) as Record<string, string>;
  const ran: string[] = [];
  const runScript = npmLibrary(loaded.npm, '@npmcli/run-script');
  for (const event of ROOT_SCRIPTS) {
    if (!scripts[event]) continue;
    try {
      await runScript({ path: root, args: [], scriptShell: loaded.flat.scriptShell, stdio, event, pkg });
    } catch (err) {
      throw scriptFailure(err as AnyRecord, `${pkg.name ?? 'the project'}`);
    }
    ran.push(event);
  }
  return ran;
}
