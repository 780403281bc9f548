/**
 * velo uv sync [uv sync arguments] — the project's .venv, assembled from the
 * store. The no-op check runs first and loads nothing heavy; everything else
 * is imported only when there is work to do.
 */
import { VeloError } from '../src/errors.js';
import type { VeloConfig } from '../src/config.js';
import type { RemoteFlag } from '../src/remote/remoteConfig.js';
import { checkNoop } from '../src/uv/noop.js';
import { config } from './context.js';
import { err, formatBytes, formatMs, json, out, type Io } from './io.js';
import { openConfiguredRemote, takeRemoteFlag } from './remoteContext.js';
import { runUvPip } from './uvPipCommand.js';

const USAGE = `Usage: velo uv sync [uv sync arguments] [--json]
       velo uv pip sync <requirements.txt>… [options] [--json]
       velo uv pip install -r <requirements.txt> [options] [--json]
       (velo uv pip --help for those two)

Syncs the project environment like \`uv sync\`, with every distribution taken
from velo's store: uv resolves and owns uv.lock, velo installs. Distributions
not in the store yet are installed by uv once, checked against their RECORD,
compiled to bytecode once, and stored; every later environment that needs
them (any project, any tool) gets them linked, bytecode included.

Takes uv sync's arguments: --locked, --frozen, --offline, --no-dev, --group,
--extra, --all-extras, --python, --package, --no-install-project, … .
--dry-run and --check are answered by uv directly. Not supported: --active,
--inexact (velo's environments are always exact), --script,
--python-platform. --compile-bytecode (or UV_COMPILE_BYTECODE=1) compiles
every module once into the store; without it, as with plain uv, python
compiles what gets imported and the next velo sync shares that bytecode
through the store. --link-mode is accepted and ignored (VELO_METHOD chooses
the link method).

An environment velo built before with the same inputs (uv.lock, the
pyproject.toml files, arguments, UV_* settings, interpreter) is projected
again from its recorded tree without running uv at all.

  --projection P   link (default: a link farm) or mount (the store mounted at
                   .venv, writable through overlayfs as root or the mount
                   server's copy-up otherwise; writes never reach the store;
                   falls back to link, saying why, without FUSE; with a
                   remote, files are fetched on first open). Default
                   from velo.json / config / VELO_PROJECTION.
  --json           print a JSON summary
  --remote URL     use this shared store on S3 (s3://bucket/prefix) before the
                   index, and publish to it (default: VELO_REMOTE, "remote" in
                   velo.json / ~/.config/velo/config.json; docs/REMOTE.md)
  --no-remote      use no remote this time

uv is $VELO_UV, else <velo>/.tools/uv/bin/uv (scripts/install-uv.sh), else
uv on PATH.`;

export async function runUv(argv: string[], io: Io): Promise<number> {
  const [sub, ...given] = argv;
  const { args: rest, flag: remoteFlag } = takeRemoteFlag(given);
  if (sub === undefined || sub === '--help' || sub === '-h' || sub === 'help') {
    out(io, USAGE);
    return sub === undefined ? 2 : 0;
  }
  if (sub === 'pip') return runUvPip(rest, io);
  if (sub !== 'sync') throw new VeloError('USAGE', `unknown uv command "${sub}" (velo wraps uv sync, uv pip sync and uv pip install -r)\n\n${USAGE}`);
  if (rest.includes('--help') || rest.includes('-h')) {
    out(io, USAGE);
    return 0;
  }
  const cfg = config(io);
  const checked = checkNoop(rest, io.cwd, io.env, cfg.projection);
  if (checked.state && !checked.args.delegate) {
    const s = checked.state;
    if (checked.args.json) {
      json(io, { noop: true, envDir: s.envDir, projectDir: s.projectDir, python: s.python, distributions: s.distributions, tree: s.tree });
    } else {
      out(io, `velo: ${s.envDir} is up to date (${s.distributions} distributions, Python ${s.python})`);
    }
    return 0;
  }
  return syncWithStore(rest, io, checked, cfg, remoteFlag);
}

async function syncWithStore(argv: string[], io: Io, checked: ReturnType<typeof checkNoop>, cfg: VeloConfig, remoteFlag: RemoteFlag): Promise<number> {
  const [{ uvSync }, { openStoreAt }] = await Promise.all([import('../src/uv/uvSync.js'), import('./storeContext.js')]);
  const tty = io.interactive && !checked.args.json;
  let drawn = false;
  const pause = Number(io.env.VELO_TEST_PAUSE_BEFORE_SWAP_MS ?? 0);
  const remote = await openConfiguredRemote(io, cfg, remoteFlag);
  const r = await uvSync({
    remote,
    argv,
    cwd: io.cwd,
    env: io.env,
    openStore: () => openStoreAt(cfg.home, io),
    method: cfg.method,
    projection: cfg.projection,
    threads: cfg.threads,
    checked,
    backgroundRemoval: true,
    ...(pause > 0 ? { pauseBeforeSwapMs: pause } : {}),
    onProgress: (p) => {
      if (tty) {
        io.stderr.write(`\r\x1b[K${p.phase}: ${p.message}`);
        drawn = true;
      } else if (pause > 0) {
        err(io, `${p.phase}: ${p.message}`);
      }
    },
  });
  if (drawn) io.stderr.write('\r\x1b[K');
  if (r.delegated) {
    io.stdout.write(r.delegated.stdout);
    io.stderr.write(r.delegated.stderr);
    return r.delegated.code;
  }
  if (r.projectionNote) err(io, `velo: projection mount: ${r.projectionNote}`);
  for (const w of r.remote?.warnings ?? []) err(io, `velo: warning: ${w}`);
  if (checked.args.json) {
    json(io, r);
    return 0;
  }
  if (r.noop) {
    out(io, `velo: ${r.envDir} is up to date (${r.distributions} distributions, Python ${r.python})`);
    return 0;
  }
  const parts = [
    r.fromEnvironmentManifest
      ? `${r.distributions} distributions (the whole environment from the store, as built before)`
      : `${r.distributions} distributions (${r.fromStore} from the store, ${r.ingested} installed by uv and stored)`,
  ];
  if (r.local > 0) parts.push(`${r.local} local`);
  const how = r.projection === 'mount' ? `${r.files} files mounted (${r.method})` : `${r.files} files by ${r.method}`;
  out(
    io,
    `velo: ${r.envDir} ready with Python ${r.python}: ${parts.join(', ')}; ${how}` +
      `${r.newObjects > 0 ? `, ${r.newObjects} new objects (${formatBytes(r.newBytes)})` : ''} in ${formatMs(r.durationMs)}`,
  );
  if (r.remote?.lazyObjects) err(io, `velo: ${r.remote.lazyObjects} objects stay in ${r.remote.url} until first opened through the mount`);
  for (const c of r.conflicts.slice(0, 5)) err(io, `velo: warning: two distributions install ${c}; the first one was kept`);
  return 0;
}

export const run = runUv;
