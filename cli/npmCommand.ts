/**
 * velo npm <command> [args]: ci and install (and install <pkg>, uninstall,
 * update, which let npm edit package.json and the lockfile first) go through
 * the store; every other command is npm itself, same arguments, stdio and
 * exit code.
 */
import { createRequire } from 'node:module';
import { restampDirs, type NpmState } from '../src/npm/state.js';
import { createProgress, npmInstallProgress } from '../src/ui/progress.js';
import { err, formatBytes, formatMs, json, out, type Io } from './io.js';
import { openConfiguredRemote } from './remoteContext.js';
import { CI_ALIASES, STORE_COMMANDS, UNINSTALL_ALIASES, UPDATE_ALIASES, splitArgs, type SplitArgs } from './npmArgs.js';
import { noopScripts, planNpm, reportNoop } from './npmNoop.js';

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
  const version = veloVersion();
  // the no-op path: nothing heavy is loaded before this (the bin runs the same check before loading this module)
  const { cfg, root, plainInstall, mode, projection, fingerprintArgs, upToDate: state } = planNpm(cmd, split, io, version);
  if (state) return upToDate(io, cfg.home, root, split, state, mode);

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
      if (summary.remote?.lazyObjects) err(io, `velo: ${summary.remote.lazyObjects} objects stay in ${summary.remote.url} until first opened through the mount`);
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
  // npm ci runs the workspaces' and the root project's own lifecycle scripts
  // every time; so does velo (the workspaces' only when the last install ran them)
  const { pkg, runRoot, linkBuild } = noopScripts(root, split, state);
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
  reportNoop(io, split, root, state, ran);
  return 0;
}
