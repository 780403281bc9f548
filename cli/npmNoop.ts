/**
 * The no-op `velo npm ci` / `velo npm install`: what the command decides
 * before it loads anything heavy (project root, configuration, no-op
 * fingerprint, src/npm/state.ts's isUpToDate), and the "up to date" answer.
 *
 * Shared by npmCommand.ts and the bin (cli/start.cts), which runs
 * npmNoopFast before it loads the ES module graph at all: scripts/bundle.mjs
 * bundles this file into start.cjs as CommonJS, where Node's modules come
 * through require() and cost nothing measurable (an ES import of node:fs
 * evaluates every export, Node's streams included). So this file and what
 * it imports stay light: Node's modules and velo's small ones, no dynamic
 * import(), no import.meta.
 */
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Projection, VeloConfig } from '../src/config.js';
import { hasRootScripts } from '../src/npm/rootScripts.js';
import { isUpToDate, type NpmState } from '../src/npm/state.js';
import { config } from './context.js';
import { json, out, type Io } from './io.js';
import { CI_ALIASES, INSTALL_ALIASES, STORE_COMMANDS, findProjectRoot, splitArgs, type SplitArgs } from './npmArgs.js';

export interface NpmPlan {
  cfg: VeloConfig;
  root: string;
  /** ci, or install with no packages named: the lockfile as it is */
  plainInstall: boolean;
  mode: 'ci' | 'install';
  projection: Projection;
  /** the arguments that make up the no-op fingerprint */
  fingerprintArgs: string[];
  /** set when the project is exactly as the last install left it (never with --force) */
  upToDate: NpmState | undefined;
}

/** Where and how a store command (`cmd` is one of STORE_COMMANDS or CI_ALIASES) installs, and whether it is a no-op. */
export function planNpm(cmd: string, split: SplitArgs, io: Io, veloVersion: string): NpmPlan {
  const cfg = config(io);
  const root = split.prefix ? resolve(io.cwd, split.prefix) : findProjectRoot(io.cwd);
  const ci = CI_ALIASES.has(cmd);
  const plainInstall = ci || (INSTALL_ALIASES.has(cmd) && split.packages.length === 0);
  // ci and install give the same tree from an in-sync lockfile, so they share the no-op fingerprint
  // --prefix picks the project, it does not change what is installed
  const projection = split.velo.projection ?? cfg.projection;
  const fingerprintArgs = [...split.npm.filter((a) => !/^(--prefix|-C)=/.test(a)), `method=${split.velo.method ?? cfg.method}`, `projection=${projection}`];
  const upToDate = plainInstall && !split.velo.force ? isUpToDate(cfg.home, root, fingerprintArgs, io.env, veloVersion) : undefined;
  return { cfg, root, plainInstall, mode: ci ? 'ci' : 'install', projection, fingerprintArgs, upToDate };
}

export interface NoopScripts {
  pkg: { scripts?: Record<string, string> };
  /** the root project's own install scripts, which npm ci runs every time */
  runRoot: boolean;
  /** the workspaces whose scripts the last install ran (npm runs them every time too) */
  linkBuild: string[];
}

/** What an up-to-date install still runs. */
export function noopScripts(root: string, split: SplitArgs, state: NpmState): NoopScripts {
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as NoopScripts['pkg'];
  const ignoreScripts = split.npm.includes('--ignore-scripts');
  return { pkg, runRoot: hasRootScripts(pkg) && !ignoreScripts, linkBuild: ignoreScripts ? [] : (state.linkBuild ?? []) };
}

/** The no-op's answer: one line, or the JSON summary. */
export function reportNoop(io: Io, split: SplitArgs, root: string, state: NpmState, rootScriptsRan: string[]): void {
  if (split.velo.json) json(io, { root, noop: true, trees: state.dirs, rootScripts: rootScriptsRan });
  else out(io, `velo: up to date (${Object.keys(state.dirs).join(', ')} unchanged)`);
}

/**
 * The bin's fast path for `velo npm …` (argv after "npm"): the exit code
 * when the command is a no-op with no scripts to run, else undefined and the
 * full command runs (and decides again, with its own errors and messages).
 */
export function npmNoopFast(argv: string[], io: Io, veloVersion: string): number | undefined {
  const [cmd, ...rest] = argv;
  if (cmd === undefined || (!STORE_COMMANDS.has(cmd) && !CI_ALIASES.has(cmd))) return undefined;
  try {
    const split = splitArgs(rest);
    if (split.velo.help) return undefined;
    const { root, upToDate: state } = planNpm(cmd, split, io, veloVersion);
    if (!state) return undefined;
    const scripts = noopScripts(root, split, state);
    if (scripts.runRoot || scripts.linkBuild.length > 0) return undefined;
    reportNoop(io, split, root, state, []);
    return 0;
  } catch {
    return undefined; // a usage error, an unreadable file: the full command says what is wrong
  }
}
