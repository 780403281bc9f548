/**
 * velo npm <command> [args]: ci and install (and install <pkg>, uninstall,
 * update, which let npm edit package.json and the lockfile first) go through
 * the store; every other command is npm itself, same arguments, stdio and
 * exit code.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { createRequire } from 'node:module';
import { VeloError } from '../src/errors.js';
import { LINK_METHODS, PROJECTIONS, type LinkMethod, type Projection } from '../src/config.js';
import { isUpToDate, restampDirs, type NpmState } from '../src/npm/state.js';
import { config } from './context.js';
import { createProgress, npmInstallProgress } from '../src/ui/progress.js';
import { err, formatBytes, formatMs, json, out, type Io } from './io.js';
import { openConfiguredRemote } from './remoteContext.js';

const USAGE = `Usage: velo npm <command> [args]

Through the store:
  velo npm ci [npm args]             install exactly the lockfile (fails when it is out of
                                     sync with package.json, as npm ci does)
  velo npm install [npm args]        install from the lockfile; npm resolves first
                                     (npm install --package-lock-only) when it is missing or stale
  velo npm install <pkg…>            npm adds the packages to package.json and the lockfile,
  velo npm uninstall <pkg…>          velo installs the result
  velo npm update [pkg…]

Everything else (velo npm run, view, ls, publish, …) is npm itself.

velo's own flags (the rest go to npm: --omit, --include, --ignore-scripts, --offline, …):
  --json                 print a JSON summary on stdout
  --method M             auto (default), reflink, hardlink, copy
  --projection P         link (default: a link farm) or mount (a FUSE view of the
                         store, writable: writes go to a per-project upper dir by
                         overlayfs as root, by copy-up in the mount server
                         otherwise; falls back to link, saying why, where FUSE is
                         unavailable or scripts must run)
  --remote URL           use this shared store on S3 (s3://bucket/prefix) before the
                         registry, and publish to it after (default: VELO_REMOTE, or
                         "remote" in velo.json / ~/.config/velo/config.json;
                         VELO_REMOTE_MODE=read only reads; see docs/REMOTE.md)
  --no-remote            use no remote this time
  --force                reinstall even when nothing changed, hashing every store
                         object laid out (a mismatch is quarantined and fetched again)
  -h, --help             this help

An unchanged project (same lockfile, package.json, .npmrc, npm_config_* environment,
arguments, and node_modules as velo left it) is a no-op.`;

const STORE_COMMANDS = new Set(['ci', 'clean-install', 'install', 'i', 'add', 'isntall', 'in', 'uninstall', 'remove', 'rm', 'un', 'unlink', 'update', 'up', 'upgrade']);
const CI_ALIASES = new Set(['ci', 'clean-install', 'install-clean', 'ic']);
const INSTALL_ALIASES = new Set(['install', 'i', 'add', 'isntall', 'in']);
const UNINSTALL_ALIASES = new Set(['uninstall', 'remove', 'rm', 'un', 'unlink']);
const UPDATE_ALIASES = new Set(['update', 'up', 'upgrade']);

/** npm flags that take a value, so the value is not taken for a package name */
const NPM_VALUE_FLAGS = new Set([
  '--omit', '--include', '--registry', '--cache', '--prefix', '-C', '--userconfig', '--globalconfig', '--workspace', '-w',
  '--install-strategy', '--loglevel', '--script-shell', '--tag', '--before', '--cpu', '--os', '--libc', '--fetch-timeout', '--fetch-retries',
]);

export interface SplitArgs {
  velo: { json: boolean; method: LinkMethod | undefined; projection: Projection | undefined; force: boolean; help: boolean; remote: string | false | undefined };
  npm: string[];
  packages: string[];
  prefix: string | undefined;
}

export function splitArgs(args: string[]): SplitArgs {
  const velo: SplitArgs['velo'] = { json: false, method: undefined, projection: undefined, force: false, help: false, remote: undefined };
  const npmArgs: string[] = [];
  const packages: string[] = [];
  let prefix: string | undefined;
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    const [flag, inline] = a.startsWith('--') && a.includes('=') ? [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)] : [a, undefined];
    if (flag === '--json') velo.json = true;
    else if (flag === '--force' && inline === undefined) velo.force = true;
    else if (flag === '-h' || flag === '--help') velo.help = true;
    else if (flag === '--no-remote' && inline === undefined) velo.remote = false;
    else if (flag === '--remote') {
      const v = inline ?? args[++i];
      if (!v || v.startsWith('-')) throw new VeloError('USAGE', '--remote needs a URL (s3://bucket/prefix)');
      velo.remote = v;
    }
    else if (flag === '--method') {
      const v = inline ?? args[++i];
      if (!v || !LINK_METHODS.includes(v as LinkMethod)) throw new VeloError('USAGE', `--method must be one of ${LINK_METHODS.join(', ')}`);
      velo.method = v as LinkMethod;
    } else if (flag === '--projection') {
      const v = inline ?? args[++i];
      if (!v || !PROJECTIONS.includes(v as Projection)) throw new VeloError('USAGE', `--projection must be one of ${PROJECTIONS.join(', ')}`);
      velo.projection = v as Projection;
    } else if (NPM_VALUE_FLAGS.has(flag)) {
      const v = inline ?? args[++i];
      if (v === undefined) throw new VeloError('USAGE', `${flag} needs a value`);
      if (flag === '--prefix' || flag === '-C') prefix = v;
      npmArgs.push(`${flag}=${v}`);
    } else if (a.startsWith('-')) npmArgs.push(a);
    else packages.push(a);
  }
  return { velo, npm: npmArgs, packages, prefix };
}

/** npm's local prefix: the nearest directory with a package.json (or node_modules). */
export function findProjectRoot(cwd: string): string {
  for (let dir = resolve(cwd); ; dir = dirname(dir)) {
    if (existsSync(join(dir, 'package.json')) || existsSync(join(dir, 'node_modules'))) return dir;
    if (dirname(dir) === dir) return resolve(cwd);
  }
}

function veloVersion(): string {
  return (createRequire(import.meta.url)('../../package.json') as { version: string }).version;
}

async function passthrough(args: string[], io: Io, stdoutToStderr = false): Promise<number> {
  const { spawn } = await import('node:child_process'); // not on the no-op path
  return new Promise((resolvePromise) => {
    const child = spawn('npm', args, { stdio: stdoutToStderr ? ['inherit', 2, 2] : 'inherit', env: io.env, cwd: io.cwd });
    const forward = (sig: NodeJS.Signals): void => void child.kill(sig);
    process.on('SIGINT', forward);
    process.on('SIGTERM', forward);
    child.on('error', (e) => {
      err(io, `velo: cannot run npm: ${e.message}`);
      resolvePromise(127);
    });
    child.on('close', (code, signal) => {
      process.off('SIGINT', forward);
      process.off('SIGTERM', forward);
      resolvePromise(code ?? (signal ? 128 + 15 : 1));
    });
  });
}

export async function run(argv: string[], io: Io): Promise<number> {
  const [cmd, ...rest] = argv;
  if (cmd === undefined || cmd === '--help' || cmd === '-h' || cmd === 'help') {
    out(io, USAGE);
    return cmd === undefined ? 2 : 0;
  }
  if (!STORE_COMMANDS.has(cmd) && !CI_ALIASES.has(cmd)) return passthrough(argv, io);
  const split = splitArgs(rest);
  if (split.velo.help) {
    out(io, USAGE);
    return 0;
  }
  const cfg = config(io);
  const root = split.prefix ? resolve(io.cwd, split.prefix) : findProjectRoot(io.cwd);
  const ci = CI_ALIASES.has(cmd);
  const plainInstall = ci || (INSTALL_ALIASES.has(cmd) && split.packages.length === 0);
  const mode = ci ? 'ci' : 'install';
  // ci and install give the same tree from an in-sync lockfile, so they share the no-op fingerprint
  // --prefix picks the project, it does not change what is installed
  const projection = split.velo.projection ?? cfg.projection;
  const fingerprintArgs = [...split.npm.filter((a) => !/^(--prefix|-C)=/.test(a)), `method=${split.velo.method ?? cfg.method}`, `projection=${projection}`];
  const version = veloVersion();

  // the no-op path: nothing heavy is loaded before this
  if (plainInstall && !split.velo.force) {
    const state = isUpToDate(cfg.home, root, fingerprintArgs, io.env, version);
    if (state) return upToDate(io, cfg.home, root, split, state, mode);
  }

  let npmArgs = split.npm;
  if (!plainInstall) {
    // npm edits package.json and the lockfile; velo installs the result
    const sub = UNINSTALL_ALIASES.has(cmd) ? 'uninstall' : UPDATE_ALIASES.has(cmd) ? 'update' : 'install';
    const code = await passthrough([sub, '--package-lock-only', ...split.npm, ...split.packages], { ...io, cwd: root }, split.velo.json);
    if (code !== 0) return code;
    npmArgs = split.npm;
  }

  const { openStoreAt } = await import('./storeContext.js');
  const { npmInstall } = await import('../src/npm/install.js');
  const store = openStoreAt(cfg.home, io);
  // --force is what a user runs to repair a tree: hash what is laid out, not just stat it
  store.hashBeforeLayout = split.velo.force;
  const remote = await openConfiguredRemote(io, cfg, split.velo.remote);
  const progress = split.velo.json ? undefined : createProgress(io);
  try {
    const summary = await npmInstall({
      root,
      mode,
      npmArgs,
      fingerprintArgs,
      store,
      method: split.velo.method ?? cfg.method,
      projection,
      threads: cfg.threads,
      veloVersion: version,
      env: io.env,
      ...(remote ? { remote } : {}),
      scriptStdio: split.velo.json ? [0, 2, 2] : 'inherit',
      ...(progress?.active ? { progress: npmInstallProgress(progress) } : {}),
      onWait: (holder) =>
        err(io, holder.kind === 'project' ? `velo: waiting for another velo (pid ${holder.pid}) installing in ${root}` : `velo: waiting for ${holder.kind} (pid ${holder.pid}) to finish with the store`),
    });
    progress?.done();
    for (const w of summary.remote?.warnings ?? []) err(io, `velo: warning: ${w}`);
    if (split.velo.json) json(io, { ...summary, noop: false });
    else {
      const fromRemote = summary.remote?.fromRemote ?? 0;
      out(
        io,
        `velo: ${summary.packages} packages (${summary.fromStore - fromRemote} from store, ${fromRemote ? `${fromRemote} from remote, ` : ''}${summary.fetched} fetched` +
          `${summary.built || summary.builtFromStore ? `, ${summary.built} built, ${summary.builtFromStore} built from store` : ''}); ` +
          (summary.projection === 'mount' ? `mounted ${summary.files} files (${summary.method})` : `${summary.files} files by ${summary.method}`) +
          ` in ${formatMs(summary.ms)}` +
          (summary.bytesSaved > 0 ? `, ${formatBytes(summary.bytesSaved)} not copied` : ''),
      );
      if (summary.projectionNote) err(io, `velo: projection mount: ${summary.projectionNote}`);
      if (summary.remote?.published) err(io, `velo: published ${summary.remote.published} packages to ${summary.remote.url} (${formatBytes(summary.remote.uploadedBytes)})`);
    }
    // on stderr whatever the output mode, as npm prints its warnings
    for (const w of summary.warnings) err(io, `velo: warning: ${w}`);
    return 0;
  } catch (e) {
    progress?.done();
    // the install failed for its own reasons; what the remote did is still worth saying
    for (const w of remote?.warnings() ?? []) err(io, `velo: warning: ${w}`);
    throw e;
  } finally {
    store.close();
  }
}

async function upToDate(io: Io, home: string, root: string, split: SplitArgs, state: NpmState, mode: 'ci' | 'install'): Promise<number> {
  const dirs = state.dirs;
  // npm ci runs the workspaces' and the root project's own lifecycle scripts
  // every time; so does velo (the workspaces' only when the last install ran them)
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { scripts?: Record<string, string> };
  const { hasRootScripts } = await import('../src/npm/rootScripts.js');
  const ignoreScripts = split.npm.includes('--ignore-scripts');
  const runRoot = hasRootScripts(pkg) && !ignoreScripts;
  const linkBuild = ignoreScripts ? [] : (state.linkBuild ?? []);
  let ran: string[] = [];
  if (runRoot || linkBuild.length > 0) {
    const { loadNpmConfig, locateNpm } = await import('../src/npm/userNpm.js');
    const loaded = await loadNpmConfig(locateNpm(io.env), mode, split.npm, root);
    process.env.npm_command = mode; // what npm exports to every script it runs
    if (linkBuild.length > 0) {
      const { rerunLinkBuild } = await import('../src/npm/linkScripts.js');
      await rerunLinkBuild(loaded, root, linkBuild);
      restampDirs(home, root, state);
    }
    if (runRoot) {
      const { runRootScripts } = await import('../src/npm/scripts.js');
      ran = await runRootScripts(loaded, root, pkg, split.velo.json ? [0, 2, 2] : 'inherit');
    }
  }
  if (split.velo.json) json(io, { root, noop: true, trees: dirs, rootScripts: ran });
  else out(io, `velo: up to date (${Object.keys(dirs).join(', ')} unchanged)`);
  return 0;
}
