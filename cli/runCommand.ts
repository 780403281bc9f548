/**
 * velo run [--no-install] [--quiet] [--] <command> [args…] — bring the
 * project's dependency trees up to date, then run the command in the
 * project's environment, as if it had been run directly: same stdin,
 * stdout and stderr, signals passed on, and its exit code (128 + the signal
 * number when a signal ended it).
 *
 * The unchanged-project path loads only light modules: the npm no-op check
 * (src/npm/state.ts) reads a state file, hashes the lockfile and stats
 * node_modules; the store is not opened.
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { constants as osConstants } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { isatty } from 'node:tty';
import { fileURLToPath } from 'node:url';
import { VeloError } from '../src/errors.js';
import { loadConfig, type VeloConfig } from '../src/config.js';
import { detectEcosystems, findProjectDir, type Ecosystem } from '../src/project/detect.js';
import { asConfigOverrides, readProjectConfig, PROJECT_CONFIG_FILE } from '../src/project/projectConfig.js';
import { buildRunEnv } from '../src/project/runEnv.js';
import { isUpToDate } from '../src/npm/state.js';
import { err, formatBytes, formatMs, out, type Io } from './io.js';
import { openConfiguredRemote } from './remoteContext.js';

/**
 * `velo uv` is not among velo's commands yet (cli/velo.ts): until it is,
 * velo run uses a project's .venv as it finds it and says so when there is
 * none. Wiring it in: set this to true and, where run() prints that note,
 * call cli/uvCommand.ts's sync (stdout sent to stderr) and stop on failure.
 */
export const UV_SYNC_WIRED = true;

const USAGE = `Usage: velo run [--no-install] [--quiet] [--] <command> [args…]

Brings the project's dependency trees up to date, then runs <command> with
the project's environment:
  - npm:   node_modules is installed from the lockfile through the store, as
           velo npm ci does; an unchanged project is a no-op (milliseconds).
  - uv:    the virtualenv (.venv) is activated when it exists: VIRTUAL_ENV is
           set and its bin/ goes on PATH.
  - cargo: nothing before the command (velo cargo build|test restores target/).
  - node_modules/.bin of the current directory and its parents up to the
    project root go first on PATH, as with npm run.
  - Node's compile cache (NODE_COMPILE_CACHE) is kept in the store, so
    repeated starts skip compiling (unless you set NODE_COMPILE_CACHE, or
    velo.json has "compileCache": false). It never changes what runs.

The project is the nearest directory with a velo.json (velo init), else the
nearest with a package.json, pyproject.toml or Cargo.toml.

stdin, stdout and stderr are the command's; velo's own messages go to
stderr. Signals sent to velo go on to the command; the exit code is the
command's (128 + signal number when a signal ended it; 127 when the command
is not found).

  --no-install   run without bringing anything up to date
  -q, --quiet    no messages from velo (errors still)
  -h, --help     this help`;

interface RunArgs {
  install: boolean;
  quiet: boolean;
  command: string[];
}

export function parseRunArgs(argv: string[]): RunArgs | 'help' {
  const a: RunArgs = { install: true, quiet: false, command: [] };
  let i = 0;
  for (; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--') {
      i++;
      break;
    }
    if (arg === '-h' || arg === '--help') return 'help';
    if (arg === '--no-install') a.install = false;
    else if (arg === '-q' || arg === '--quiet') a.quiet = true;
    else if (arg.startsWith('-')) throw new VeloError('USAGE', `unknown option ${arg} (velo's options come before the command; put -- before a command that starts with -)\n\n${USAGE}`);
    else break;
  }
  a.command = argv.slice(i);
  return a;
}

/** velo's version, from the package.json above this file (dist/cli or cli/). */
function veloVersion(): string {
  for (let dir = dirname(fileURLToPath(import.meta.url)); ; dir = dirname(dir)) {
    const path = join(dir, 'package.json');
    if (existsSync(path)) {
      const pkg = JSON.parse(readFileSync(path, 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'velo-rift' && pkg.version) return pkg.version;
    }
    if (dirname(dir) === dir) throw new VeloError('IO', 'cannot find velo\'s own package.json');
  }
}

function note(io: Io, quiet: boolean, text: string): void {
  if (!quiet) err(io, `velo: ${text}`);
}

/** `velo npm ci`'s fingerprint arguments with no npm flags: the same no-op state as that command. */
export function npmFingerprintArgs(cfg: VeloConfig): string[] {
  return [`method=${cfg.method}`, `projection=${cfg.projection}`];
}

/**
 * node_modules up to date with the lockfile: the no-op check, else the same
 * install `velo npm ci` runs. Returns a sentence for the caller to print, or
 * undefined on the no-op.
 */
async function bringNpmUpToDate(root: string, cfg: VeloConfig, io: Io, quiet: boolean): Promise<string | undefined> {
  if (!existsSync(join(root, 'package.json'))) return undefined;
  if (!existsSync(join(root, 'package-lock.json')) && !existsSync(join(root, 'npm-shrinkwrap.json'))) {
    return 'npm: no package-lock.json, node_modules left as it is (velo npm install creates the lockfile)';
  }
  const version = veloVersion();
  const fingerprintArgs = npmFingerprintArgs(cfg);
  if (isUpToDate(cfg.home, root, fingerprintArgs, io.env, version)) return undefined;

  const [{ openStoreAt }, { npmInstall }, { createProgress, npmInstallProgress }] = await Promise.all([
    import('./storeContext.js'),
    import('../src/npm/install.js'),
    import('../src/ui/progress.js'),
  ]);
  const store = openStoreAt(cfg.home, io);
  const remote = await openConfiguredRemote(io, cfg);
  const progress = quiet ? undefined : createProgress({ stderr: io.stderr, env: io.env });
  try {
    const s = await npmInstall({
      ...(remote ? { remote } : {}),
      root,
      mode: 'ci',
      npmArgs: [],
      fingerprintArgs,
      store,
      method: cfg.method,
      projection: cfg.projection,
      threads: cfg.threads,
      veloVersion: version,
      env: io.env,
      // stdout belongs to the command: install scripts' output goes to stderr
      scriptStdio: [0, 2, 2],
      ...(progress ? { progress: npmInstallProgress(progress) } : {}),
    });
    progress?.done();
    return (
      `npm: ${s.packages} packages (${s.fromStore} from store, ${s.fetched} fetched` +
      `${s.built || s.builtFromStore ? `, ${s.built} built, ${s.builtFromStore} built from store` : ''}), ` +
      `${s.files} files ${s.projection === 'mount' ? 'mounted' : `by ${s.method}`} in ${formatMs(s.ms)}` +
      (s.bytesSaved > 0 ? `, ${formatBytes(s.bytesSaved)} not copied` : '') +
      (s.projectionNote ? `; projection mount: ${s.projectionNote}` : '') +
      (s.remote?.warnings.length ? `; ${s.remote.warnings.join('; ')}` : '')
    );
  } finally {
    progress?.done();
    store.close();
  }
}

function signalNumber(signal: NodeJS.Signals): number {
  return (osConstants.signals as Record<string, number>)[signal] ?? 15;
}

/**
 * True when velo is in the foreground process group of its terminal and
 * reads from it: then a Ctrl-C or Ctrl-\ typed there has reached the
 * command too (same process group), and forwarding would deliver it twice.
 */
function keyboardSignalsReachChild(): boolean {
  // isatty(0), not process.stdin: velo must not open a handle on the command's stdin
  if (!isatty(0)) return false;
  try {
    const stat = readFileSync('/proc/self/stat', 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const pgrp = Number(fields[2]);
    const ttyNr = Number(fields[4]);
    const tpgid = Number(fields[5]);
    return ttyNr !== 0 && tpgid === pgrp;
  } catch {
    return true; // not Linux: a TTY on stdin almost always means a shell's foreground job
  }
}

const FORWARDED: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT', 'SIGUSR2'];

/** Run the command; resolves with its exit code. */
export function runChild(command: string[], options: { cwd: string; env: NodeJS.ProcessEnv; io: Io }): Promise<number> {
  const [file, ...args] = command;
  return new Promise((resolvePromise) => {
    let settled = false;
    const handlers = new Map<NodeJS.Signals, () => void>();
    const finish = (code: number): void => {
      if (settled) return;
      settled = true;
      for (const [sig, h] of handlers) process.off(sig, h);
      resolvePromise(code);
    };
    const child = spawn(file!, args, { cwd: options.cwd, env: options.env, stdio: 'inherit' });
    const fromKeyboard = keyboardSignalsReachChild();
    for (const sig of FORWARDED) {
      const h = (): void => {
        if ((sig === 'SIGINT' || sig === 'SIGQUIT') && fromKeyboard) return; // the terminal sent it to the command already
        try {
          child.kill(sig);
        } catch {
          /* already gone */
        }
      };
      handlers.set(sig, h);
      process.on(sig, h);
    }
    child.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'ENOENT') err(options.io, `velo run: ${file}: command not found`);
      else if (e.code === 'EACCES') err(options.io, `velo run: ${file}: permission denied`);
      else err(options.io, `velo run: cannot run ${file}: ${e.message}`);
      finish(e.code === 'ENOENT' ? 127 : 126);
    });
    child.on('exit', (code, signal) => finish(code ?? (signal ? 128 + signalNumber(signal) : 1)));
  });
}

export async function run(argv: string[], io: Io): Promise<number> {
  const parsed = parseRunArgs(argv);
  if (parsed === 'help') return out(io, USAGE), 0;
  if (parsed.command.length === 0) {
    err(io, USAGE);
    return 2;
  }
  // the command gets the environment velo was given: npm's config loading
  // exports npm_config_* into process.env, which must not reach the command
  const userEnv: NodeJS.ProcessEnv = { ...io.env };
  const project = findProjectDir(io.cwd, PROJECT_CONFIG_FILE);
  const root = project?.dir ?? io.cwd;
  const projectCfg = project?.hasConfig ? readProjectConfig(root) : undefined;
  const cfg = loadConfig(userEnv, asConfigOverrides(projectCfg));
  const ecosystems: Ecosystem[] = project ? (projectCfg ? projectCfg.ecosystems : detectEcosystems(root, userEnv).map((d) => d.ecosystem)) : [];

  if (parsed.install) {
    if (ecosystems.includes('npm')) {
      const said = await bringNpmUpToDate(root, cfg, io, parsed.quiet);
      if (said) {
        note(io, parsed.quiet, said);

      }
    }
    if (ecosystems.includes('uv')) {
      // velo uv sync, reporting on stderr: the command's stdout is its own
      const { runUv } = await import('./uvCommand.js');
      const code = await runUv(parsed.quiet ? ['sync', '--quiet'] : ['sync'], { ...io, cwd: root, env: userEnv, stdout: io.stderr, direct: false });
      if (code !== 0) return code;
    }
  }
  const runEnv = buildRunEnv({ root, cwd: io.cwd, env: userEnv, home: cfg.home, compileCache: projectCfg?.compileCache ?? true });
  return runChild(parsed.command, { cwd: io.cwd, env: runEnv.env, io });
}
