/**
 * The environment `velo run` gives a command: the project's executables
 * first on PATH (node_modules/.bin of the working directory and each parent
 * up to the project root, nearest first, as `npm run` does; then the
 * virtualenv's bin with VIRTUAL_ENV set, as `source .venv/bin/activate`
 * does), and Node's compile cache kept in the store.
 *
 * The compile cache (NODE_COMPILE_CACHE, Node >= 22.1) holds V8's code
 * cache for the modules a program loads; Node checks each entry against the
 * source it was made from, so a program computes exactly what it would
 * without it, only sooner. Node puts entries in a subdirectory named by its
 * own version, architecture and V8 flags, so one directory serves every Node
 * version a user has. A NODE_COMPILE_CACHE the user set (even to an empty
 * string) or NODE_DISABLE_COMPILE_CACHE is left alone.
 */
import { mkdirSync, statSync } from 'node:fs';
import { delimiter, dirname, join, relative, resolve, sep } from 'node:path';

export interface RunEnvOptions {
  /** the project root (velo.json's directory, or where the manifests are) */
  root: string;
  /** where the command runs */
  cwd: string;
  env: NodeJS.ProcessEnv;
  /** the store's home: the compile cache lives in it */
  home: string;
  /** keep Node's compile cache in the store */
  compileCache: boolean;
  /** the virtualenv to activate (default: UV_PROJECT_ENVIRONMENT, else <root>/.venv), used when it exists */
  venv?: string;
}

export interface RunEnv {
  env: NodeJS.ProcessEnv;
  /** directories put in front of PATH, in order */
  path: string[];
  /** VIRTUAL_ENV, when a virtualenv was activated */
  virtualEnv: string | undefined;
  /** NODE_COMPILE_CACHE as velo set it (undefined: left to the user) */
  compileCache: string | undefined;
}

export function compileCacheDir(home: string): string {
  return join(home, 'compile-cache');
}

function isDir(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

/** PATH's variable name as the environment spells it (Path on Windows). */
function pathKey(env: NodeJS.ProcessEnv): string {
  return Object.keys(env).find((k) => k.toUpperCase() === 'PATH') ?? 'PATH';
}

/** node_modules/.bin of cwd and every parent up to root (cwd outside root: cwd's and root's). */
export function binDirs(root: string, cwd: string): string[] {
  const top = resolve(root);
  const dirs: string[] = [];
  let dir = resolve(cwd);
  const inside = dir === top || !relative(top, dir).startsWith('..');
  for (;;) {
    dirs.push(join(dir, 'node_modules', '.bin'));
    if (!inside || dir === top || dirname(dir) === dir) break;
    dir = dirname(dir);
  }
  if (!inside) dirs.push(join(top, 'node_modules', '.bin'));
  return dirs.filter(isDir);
}

export function buildRunEnv(o: RunEnvOptions): RunEnv {
  const env: NodeJS.ProcessEnv = { ...o.env };
  const key = pathKey(env);
  const front = binDirs(o.root, o.cwd);
  const venv = o.venv ?? (env.UV_PROJECT_ENVIRONMENT ? resolve(o.root, env.UV_PROJECT_ENVIRONMENT) : join(o.root, '.venv'));
  let virtualEnv: string | undefined;
  const venvBin = join(venv, process.platform === 'win32' ? 'Scripts' : 'bin');
  if (isDir(venvBin)) {
    virtualEnv = venv;
    front.push(venvBin);
    env.VIRTUAL_ENV = venv;
    delete env.PYTHONHOME;
  }
  const rest = (env[key] ?? '').split(delimiter).filter((p) => p !== '' && !front.includes(p));
  env[key] = [...front, ...rest].join(delimiter);
  let compileCache: string | undefined;
  if (o.compileCache && env.NODE_COMPILE_CACHE === undefined && !env.NODE_DISABLE_COMPILE_CACHE) {
    compileCache = compileCacheDir(o.home);
    try {
      mkdirSync(compileCache, { recursive: true });
      env.NODE_COMPILE_CACHE = compileCache;
    } catch {
      compileCache = undefined; // a read-only store: run without it
    }
  }
  return { env, path: front, virtualEnv, compileCache };
}

/** A path for messages: relative to base when inside it. */
export function shortPath(path: string, base: string): string {
  const rel = relative(base, path);
  return rel === '' ? '.' : rel.startsWith('..') || rel.startsWith(sep) ? path : rel;
}
