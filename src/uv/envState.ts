/**
 * The no-op check. After a sync velo leaves <env>/.velo-state: what the
 * environment was built from (uv.lock, the pyproject.toml files and the
 * other inputs uv itself watches, the arguments, UV_* settings, the uv
 * binary) as stat fingerprints, and stamps of the environment itself. When
 * all of them are unchanged, the environment is what a sync would build, and
 * nothing needs to run. Only node:fs here: this is the fast path.
 *
 * The native launcher (native/src/launch/uv_noop.c) reads this file too and
 * answers the no-op without starting Node: a change to the format (fields,
 * their meaning, how stamps are taken) bumps STATE_VERSION here and
 * UV_STATE_VERSION there, and the launcher leaves any other version to Node.
 */
import { lstatSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export const STATE_FILE = '.velo-state';
const STATE_VERSION = 3;

export interface FileStamp {
  path: string;
  /** -1 when the file does not exist */
  size: number;
  mtimeNs: string;
  ino: string;
}

export interface EnvState {
  v: number;
  projectDir: string;
  workspaceDir: string;
  envDir: string;
  args: string[];
  settings: Record<string, string>;
  uv: FileStamp;
  inputs: FileStamp[];
  /** stamps of the environment's own pyvenv.cfg, bin/ and site-packages/ */
  envStamps: FileStamp[];
  /**
   * the Node that wrote the state (process.execPath): only the native
   * launcher checks it (the node PATH gives it must be this one, so velo's
   * Node version check would pass); upToDate() does not
   */
  node: FileStamp;
  /** summary of what was built */
  tree: string;
  python: string;
  distributions: number;
  fromStore: number;
  keys: string[];
}

/** UV_* variables that do not change what is installed. */
export const SETTINGS_IGNORED: ReadonlySet<string> = new Set([
  'UV_CACHE_DIR', 'UV_NO_CACHE', 'UV_NO_PROGRESS', 'UV_OFFLINE', 'UV_LOCKED', 'UV_FROZEN', 'UV_LINK_MODE', 'UV_COMPILE_BYTECODE',
  'UV_CONCURRENT_DOWNLOADS', 'UV_CONCURRENT_BUILDS', 'UV_CONCURRENT_INSTALLS', 'UV_HTTP_TIMEOUT', 'UV_REQUEST_TIMEOUT',
  'UV_HTTP_RETRIES', 'UV_NATIVE_TLS', 'UV_SYSTEM_CERTS', 'UV_INSECURE_HOST', 'UV_KEYRING_PROVIDER', 'UV_LOG_CONTEXT',
  'UV_PYTHON_DOWNLOADS', 'UV_NO_WRAP', 'UV_COLOR',
]);

/** The environment variables that decide what a sync builds. */
export function settingsFingerprint(env: NodeJS.ProcessEnv): Record<string, string> {
  const out: Record<string, string> = {};
  for (const key of Object.keys(env).sort()) {
    const value = env[key];
    if (value === undefined) continue;
    if ((key.startsWith('UV_') && !SETTINGS_IGNORED.has(key)) || key === 'VELO_METHOD' || key === 'VELO_PROJECTION') out[key] = value;
  }
  return out;
}

export function stampOf(path: string, follow = true): FileStamp {
  try {
    const st = follow ? statSync(path, { bigint: true }) : lstatSync(path, { bigint: true });
    return { path, size: Number(st.size), mtimeNs: st.mtimeNs.toString(), ino: st.ino.toString() };
  } catch {
    return { path, size: -1, mtimeNs: '0', ino: '0' };
  }
}

/** Whether the file still has the stamp it had (a missing file keeps matching a missing file). */
export function sameStamp(a: FileStamp): boolean {
  const now = stampOf(a.path);
  return now.size === a.size && now.mtimeNs === a.mtimeNs && now.ino === a.ino;
}

/** The environment's own stamps: anything that installs or removes a package changes one. */
export function envStampPaths(envDir: string, sitePackages: string): string[] {
  return [join(envDir, 'pyvenv.cfg'), join(envDir, 'bin'), sitePackages];
}

export function readState(envDir: string): EnvState | undefined {
  let text: string;
  try {
    text = readFileSync(join(envDir, STATE_FILE), 'utf8');
  } catch {
    return undefined;
  }
  try {
    const state = JSON.parse(text) as EnvState;
    return state.v === STATE_VERSION ? state : undefined;
  } catch {
    return undefined;
  }
}

export interface NoopQuery {
  projectDir: string;
  workspaceDir: string;
  envDir: string;
  args: string[];
  env: NodeJS.ProcessEnv;
  uvPath: string;
}

/** The state, when the environment is up to date; undefined when a sync must run. */
export function upToDate(q: NoopQuery): EnvState | undefined {
  const state = readState(q.envDir);
  if (!state) return undefined;
  if (state.projectDir !== q.projectDir || state.workspaceDir !== q.workspaceDir || state.envDir !== q.envDir) return undefined;
  if (JSON.stringify(state.args) !== JSON.stringify(q.args)) return undefined;
  if (JSON.stringify(state.settings) !== JSON.stringify(settingsFingerprint(q.env))) return undefined;
  if (state.uv.path !== q.uvPath || !sameStamp(state.uv)) return undefined;
  for (const s of state.inputs) if (!sameStamp(s)) return undefined;
  for (const s of state.envStamps) if (!sameStamp(s)) return undefined;
  return state;
}

export function newState(fields: Omit<EnvState, 'v' | 'node'>): EnvState {
  return { v: STATE_VERSION, ...fields, node: stampOf(process.execPath) };
}

/**
 * Write the state into `dir`, the directory that becomes the environment
 * (the staging directory before the swap) or is it (a mount): the stamps
 * are taken there and recorded under the environment's final paths.
 */
export function writeStateInto(dir: string, finalDir: string, sitePackagesRel: string, fields: Omit<EnvState, 'v' | 'envStamps' | 'node'>): void {
  const envStamps = envStampPaths(finalDir, join(finalDir, sitePackagesRel)).map((finalPath) => ({
    ...stampOf(join(dir, finalPath.slice(finalDir.length))),
    path: finalPath,
  }));
  const target = join(dir, STATE_FILE);
  const tmp = `${target}.${process.pid}.tmp`;
  writeFileSync(tmp, JSON.stringify(newState({ ...fields, envStamps }), null, 1) + '\n', { mode: 0o644 });
  renameSync(tmp, target);
}
