/**
 * Whole-environment reuse. After a sync, velo records under an environment
 * key — a digest of everything that decides what `uv sync` would build
 * (uv.lock's bytes, the pyproject.toml / .python-version / uv.toml files uv
 * reads, the arguments, the UV_* settings, PATH and the other variables uv
 * finds Python by, the uv binary, where the environment is) — a manifest: the tree of the whole environment (shared
 * files, bytecode, and the per-environment files as private copies), the
 * interpreter it was built for, and the package keys it uses. The next sync
 * with the same inputs (the same project after `rm -rf .venv`, a changed
 * file inside the environment, --reinstall) projects that one tree without
 * running uv, reading uv.lock or loading a single distribution.
 *
 * What the key cannot see is checked on use: the interpreter's binary
 * (path, size, mtime, inode) and the files uv watches in local packages
 * (pyproject.toml, setup.py, setup.cfg, src/: their stat stamps, as uv's own
 * cache does for an editable install).
 */
import { createHash } from 'node:crypto';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { readFileSync } from 'node:fs';
import { getKey, setKey } from '../store/keys.js';
import { putTree, readTree } from '../store/trees.js';
import { writeBufferToStore } from '../store/writeBufferToStore.js';
import type { Store } from '../store/store.js';
import { DIST_LAYOUT } from './distKey.js';
import { sameStamp, settingsFingerprint, stampOf, type FileStamp } from './envState.js';

/** Bump when the environment tree or the manifest changes shape. */
export const ENV_LAYOUT = 'velo-uv-env-1';

export interface EnvManifest {
  version: 1;
  /** the whole environment, per-environment files included (private) */
  tree: string;
  /** python's full version, for the summary */
  python: string;
  /** the interpreter the environment runs on: its real path, and the stat identity it had */
  interpreterPath: string;
  interpreterIdent: string;
  /** site-packages relative to the environment */
  sitePackages: string;
  /** distribution keys and the interpreter key: kept alive by gc with the project */
  keys: string[];
  distributions: number;
  local: number;
  /** local package directories (editable, path, workspace members) and the stamps uv watches in them */
  localDirs: string[];
  localStamps: FileStamp[];
  files: number;
  pycs: number;
  conflicts: string[];
  /** `uv lock` (or `uv lock --check`) passed with exactly these inputs */
  lockChecked: boolean;
  /** the stored bytecode of its distributions when the tree was made (distBytecode.ts): the tree is stale once it grew */
  bytecode?: string;
}

export interface EnvKeyInput {
  projectDir: string;
  workspaceDir: string;
  envDir: string;
  lockPath: string;
  /** the arguments that decide the environment (SyncArgs.fingerprint) */
  args: string[];
  env: NodeJS.ProcessEnv;
  uvPath: string;
}

function fileDigest(path: string): string {
  try {
    return createHash('sha256').update(readFileSync(path)).digest('hex');
  } catch {
    return '<absent>';
  }
}

/** Where uv keeps the Pythons it manages: a new one there can change which interpreter uv picks. */
function uvPythonDir(env: NodeJS.ProcessEnv): string {
  if (env.UV_PYTHON_INSTALL_DIR) return env.UV_PYTHON_INSTALL_DIR;
  const data = env.XDG_DATA_HOME || join(env.HOME || homedir(), '.local', 'share');
  return join(data, 'uv', 'python');
}

/** The environment key: every input that decides what a sync builds, as one digest. */
export function envKey(k: EnvKeyInput): string {
  const settings = settingsFingerprint(k.env);
  // how velo projects the environment does not change what is in it
  delete settings.VELO_METHOD;
  delete settings.VELO_PROJECTION;
  const files = [
    k.lockPath,
    join(k.projectDir, 'pyproject.toml'),
    join(k.workspaceDir, 'pyproject.toml'),
    join(k.projectDir, '.python-version'),
    join(k.workspaceDir, '.python-version'),
    join(k.workspaceDir, 'uv.toml'),
  ];
  const uv = stampOf(k.uvPath);
  const pythons = stampOf(uvPythonDir(k.env));
  const ident = {
    layout: ENV_LAYOUT,
    dist: DIST_LAYOUT,
    projectDir: k.projectDir,
    workspaceDir: k.workspaceDir,
    envDir: k.envDir,
    args: k.args,
    settings,
    // where uv looks for interpreters
    path: [k.env.PATH ?? '', k.env.PYENV_VERSION ?? '', k.env.CONDA_PREFIX ?? ''],
    uv: [uv.path, uv.size, uv.mtimeNs, uv.ino],
    pythons: [pythons.size, pythons.mtimeNs, pythons.ino],
    files: [...new Set(files)].map((f) => [f, fileDigest(f)]),
  };
  return `uv-env:${createHash('sha256').update(JSON.stringify(ident)).digest('hex').slice(0, 48)}`;
}

/**
 * The lock-check key: what `uv lock --check` answers from — the bytes of
 * uv.lock, of the project's and workspace's pyproject.toml, .python-version
 * and uv.toml, the lock arguments, the UV_* settings, the uv binary and where
 * uv finds interpreters — without where the project is. A lock that passed
 * with the same key passes again: a new checkout of it needs no `uv lock`.
 */
export function lockCheckKey(k: Omit<EnvKeyInput, 'envDir' | 'args'> & { lockArgs: string[] }): string {
  const settings = settingsFingerprint(k.env);
  delete settings.VELO_METHOD;
  delete settings.VELO_PROJECTION;
  const uv = stampOf(k.uvPath);
  const pythons = stampOf(uvPythonDir(k.env));
  const ident = {
    layout: 'velo-uv-lockcheck-1',
    member: k.projectDir === k.workspaceDir ? '' : k.projectDir.slice(k.workspaceDir.length),
    lockArgs: k.lockArgs,
    settings,
    path: [k.env.PATH ?? '', k.env.PYENV_VERSION ?? '', k.env.CONDA_PREFIX ?? ''],
    uv: [uv.path, uv.size, uv.mtimeNs, uv.ino],
    pythons: [pythons.size, pythons.mtimeNs, pythons.ino],
    files: [
      fileDigest(k.lockPath),
      fileDigest(join(k.projectDir, 'pyproject.toml')),
      fileDigest(join(k.workspaceDir, 'pyproject.toml')),
      fileDigest(join(k.projectDir, '.python-version')),
      fileDigest(join(k.workspaceDir, '.python-version')),
      fileDigest(join(k.workspaceDir, 'uv.toml')),
    ],
  };
  return `uv-lockcheck:${createHash('sha256').update(JSON.stringify(ident)).digest('hex').slice(0, 48)}`;
}

/** The stat identity of an interpreter binary (follows symlinks), as the manifest records it. */
export function interpreterIdentOf(realPath: string): string {
  const st = stampOf(realPath);
  return st.size < 0 ? '<absent>' : `${st.size}:${st.mtimeNs}:${st.ino}`;
}

/** What uv watches in a local package to decide whether to rebuild it. */
export function localStampsOf(dirs: string[]): FileStamp[] {
  const out: FileStamp[] = [];
  for (const d of [...dirs].sort()) for (const f of ['pyproject.toml', 'setup.py', 'setup.cfg', 'src']) out.push(stampOf(join(d, f)));
  return out;
}

export function saveEnvManifest(store: Store, key: string, m: Omit<EnvManifest, 'version'>): void {
  const obj = writeBufferToStore(store, Buffer.from(JSON.stringify({ version: 1, ...m })), false);
  store.flushCounters();
  const tree = putTree(store, [{ path: 'manifest.json', kind: 'file', size: obj.size, digest: obj.digest }]);
  setKey(store, key, tree, { kind: 'uv-env', files: 1, logicalBytes: obj.size });
}

/** The manifest under this key, when there is one and what the key cannot see still holds. */
export function loadEnvManifest(store: Store, key: string): EnvManifest | undefined {
  const tree = getKey(store, key);
  if (!tree) return undefined;
  let m: EnvManifest;
  try {
    const entry = readTree(store, tree).entries.find((e) => e.path === 'manifest.json');
    if (!entry) return undefined;
    m = JSON.parse(readFileSync(store.objectPath(entry.digest, false), 'utf8')) as EnvManifest;
  } catch {
    return undefined;
  }
  if (m.version !== 1) return undefined;
  if (interpreterIdentOf(m.interpreterPath) !== m.interpreterIdent) return undefined;
  if (!m.localStamps.every(sameStamp)) return undefined; // recorded by localStampsOf(m.localDirs)
  return m;
}
