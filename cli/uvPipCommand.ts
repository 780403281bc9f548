/**
 * velo uv pip sync <requirements.txt>… / velo uv pip install -r <file>:
 * a virtual environment filled from the store (src/uv/pipInstall.ts).
 * Every other `uv pip` command, and the forms velo does not install itself,
 * run as plain uv, with a one-line note saying why.
 */
import { spawnSync } from 'node:child_process';
import { parsePipArgs } from '../src/uv/pipArgs.js';
import { findUv } from '../src/uv/uvBinary.js';
import { config } from './context.js';
import { err, formatBytes, formatMs, json, out, type Io } from './io.js';

const USAGE = `Usage: velo uv pip sync <requirements.txt>… [options] [--json]
       velo uv pip install -r <requirements.txt>… [options] [--json]

Installs requirement files into a virtual environment as \`uv pip sync\` /
\`uv pip install -r\` do, with every distribution taken from velo's store:
uv resolves (\`uv pip compile\` for the environment's interpreter), velo
links. Distributions not in the store yet are installed by uv once into a
scratch venv, checked against their RECORD, compiled to bytecode once and
stored; the next environment that needs them (this project or any other,
\`velo uv sync\` projects included) gets them linked. \`pip sync\` removes
what the files do not list; \`pip install -r\` only adds.

The environment is the one uv pip uses: --python <venv or its python>, else
VIRTUAL_ENV, else .venv here or in a parent directory. Nothing in it changes
until everything to install is in the store and laid out beside it.

Index, cache and resolution options (--index-url, --extra-index-url,
--default-index, --index, --offline, --cache-dir, --no-config,
--exclude-newer, --prerelease, --resolution, --upgrade, …) are passed to
uv. --compile-bytecode compiles every module once into the store (else
python compiles what gets imported, shared at the next velo command);
--link-mode is accepted and ignored.
Left to plain uv, with a note: editable (-e), path, URL and VCS
requirements, constraint files (-c), package arguments, --system,
--target, --dry-run, --reinstall and any other option velo does not model,
hash pins that do not cover what uv would install, and every other
\`uv pip\` command.

  --json    print a JSON summary`;

/** Run `uv pip <argv>` as it is, output straight through; uv's exit code. */
function plainUv(argv: string[], io: Io): number {
  const r = spawnSync(findUv(io.env), ['pip', ...argv], { cwd: io.cwd, env: io.env, stdio: ['inherit', 'pipe', 'pipe'] });
  io.stdout.write(r.stdout ?? '');
  io.stderr.write(r.stderr ?? '');
  return r.status ?? 13;
}

export async function runUvPip(argv: string[], io: Io): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === undefined || sub === '--help' || sub === '-h') {
    out(io, USAGE);
    return sub === undefined ? 2 : 0;
  }
  if ((sub === 'sync' || sub === 'install') && (rest.includes('--help') || rest.includes('-h'))) {
    out(io, USAGE);
    return 0;
  }
  if (sub !== 'sync' && sub !== 'install') return plainUv(argv, io);
  const args = parsePipArgs(sub, rest);
  const cfg = config(io);
  const [{ pipInstall }, { openStoreAt }] = await Promise.all([import('../src/uv/pipInstall.js'), import('./storeContext.js')]);
  const tty = io.interactive && !args.json;
  let drawn = false;
  const r = await pipInstall({
    args,
    uv: findUv(io.env),
    cwd: io.cwd,
    env: io.env,
    openStore: () => openStoreAt(cfg.home, io),
    method: cfg.method,
    threads: cfg.threads,
    onProgress: (p) => {
      if (!tty) return;
      io.stderr.write(`\r\x1b[K${p.phase}: ${p.message}`);
      drawn = true;
    },
  });
  if (drawn) io.stderr.write('\r\x1b[K');
  if ('delegate' in r) {
    err(io, `velo: ${r.delegate}: running uv pip ${sub} as given`);
    const code = plainUv([sub, ...args.forUv], io);
    if (args.json) json(io, { delegated: true, reason: r.delegate, exitCode: code });
    return code;
  }
  if (args.json) {
    json(io, r);
    return 0;
  }
  const changes = [
    ...r.removed.map((d) => ` - ${d.name}==${d.version}`),
    ...r.installed.map((d) => ` + ${d.name}==${d.version}`),
  ].sort((a, b) => a.slice(3).localeCompare(b.slice(3)));
  const what =
    r.installed.length === 0 && r.removed.length === 0
      ? `up to date (${r.distributions} distributions)`
      : `${r.installed.length} installed (${r.fromStore} from the store, ${r.ingested} installed by uv and stored), ${r.removed.length} removed, ${r.unchanged} unchanged`;
  const how = r.files > 0 ? `; ${r.files} files by ${r.method}` : '';
  const added = r.newObjects > 0 ? `, ${r.newObjects} new objects (${formatBytes(r.newBytes)})` : '';
  out(io, `velo: ${r.envDir} (Python ${r.python}): ${what}${how}${added} in ${formatMs(r.durationMs)}`);
  for (const c of changes) err(io, c);
  return 0;
}
