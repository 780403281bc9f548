/**
 * The no-op check: what velo last installed into a project, and whether
 * anything that could change the result has changed since. It reads a few
 * small files and stats a few directories; it loads no npm library and
 * does not open the store, so an unchanged project costs milliseconds.
 */
import { mkdirSync, readFileSync, renameSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';

const STATE_VERSION = 1;

/** node:crypto, loaded only when a digest is needed (the no-op check usually needs none). */
function crypto(): typeof import('node:crypto') {
  return process.getBuiltinModule('node:crypto');
}

/** Kept in the store (not in node_modules), so writing it does not touch what it describes. */
export function statePath(home: string, root: string): string {
  // the path itself names the file: no hash needed to find it
  return join(home, 'state', `npm-${encodeURIComponent(resolve(root)).replace(/%/g, '_')}.json`);
}

export interface NpmState {
  version: number;
  /** hash of every input that decides the installed tree */
  inputs: string;
  /** node_modules dirs (relative) → tree digest, and the dir's inode and mtime once installed */
  dirs: Record<string, { tree: string; ino: number; mtimeNs: string }>;
  /** other package.json files that are inputs (workspaces) */
  extraInputs: string[];
  projection: string;
  /** cheap stand-in for `inputs`: size, mtime and inode of each input file, and the arguments and environment as text */
  stamps?: string;
  /** locations of the links (workspaces) whose lifecycle scripts npm runs on every install */
  linkBuild?: string[];
}

function readOr(path: string): Buffer | string {
  try {
    return readFileSync(path);
  } catch {
    return '<absent>';
  }
}

/**
 * Inputs: lockfile, package.json, .npmrc files, npm_config_* env, NODE_ENV, the arguments, platform and Node ABI.
 * `ignoreEnv`: npm_config_* variables left out (the remote's project name: where caches and logs go).
 */
export function inputsDigest(
  root: string,
  args: string[],
  extraInputs: string[],
  env: NodeJS.ProcessEnv,
  veloVersion: string,
  ignoreEnv: (name: string) => boolean = () => false,
): string {
  const h = crypto().createHash('sha256');
  const add = (label: string, data: Buffer | string): void => {
    h.update(`${label}\0${data.length}\0`);
    h.update(data);
  };
  add('velo', veloVersion);
  add('platform', `${process.platform}-${process.arch}-${process.versions.modules}`);
  add('args', JSON.stringify(args));
  for (const name of ['npm-shrinkwrap.json', 'package-lock.json', 'package.json', '.npmrc']) add(name, readOr(join(root, name)));
  add('userconfig', readOr(env.NPM_CONFIG_USERCONFIG ?? env.npm_config_userconfig ?? join(homedir(), '.npmrc')));
  if (env.NPM_CONFIG_GLOBALCONFIG ?? env.npm_config_globalconfig) add('globalconfig', readOr((env.NPM_CONFIG_GLOBALCONFIG ?? env.npm_config_globalconfig)!));
  const npmEnv = Object.keys(env)
    .filter((k) => /^npm_config_/i.test(k) && !ignoreEnv(k))
    .sort()
    .map((k) => `${k}=${env[k]}`);
  add('env', npmEnv.join('\n'));
  // npm's omit defaults to dev when NODE_ENV is production
  add('node_env', env.NODE_ENV ?? '');
  add('projection', `${env.VELO_PROJECTION ?? ''}/${env.VELO_METHOD ?? ''}`);
  for (const p of extraInputs) add(`extra:${p}`, readOr(resolve(root, p)));
  return h.digest('hex');
}

export function readState(home: string, root: string): NpmState | undefined {
  try {
    const s = JSON.parse(readFileSync(statePath(home, root), 'utf8')) as NpmState;
    return s.version === STATE_VERSION ? s : undefined;
  } catch {
    return undefined;
  }
}

export function writeState(home: string, root: string, state: Omit<NpmState, 'version'>): void {
  const path = statePath(home, root);
  mkdirSync(join(home, 'state'), { recursive: true });
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, JSON.stringify({ version: STATE_VERSION, ...state }) + '\n');
  renameSync(tmp, path);
}

export function dirStamp(path: string): { ino: number; mtimeNs: string } {
  const st = statSync(path, { bigint: true });
  return { ino: Number(st.ino), mtimeNs: st.mtimeNs.toString() };
}

/** After the no-op reran the workspaces' scripts (which may link bins): the dirs as they are now. */
export function restampDirs(home: string, root: string, state: NpmState): void {
  const { version: _v, ...rest } = state;
  const dirs = Object.fromEntries(Object.entries(state.dirs).map(([dir, rec]) => [dir, { ...rec, ...dirStamp(join(root, dir)) }]));
  writeState(home, root, { ...rest, dirs });
}

export function clearState(home: string, root: string): void {
  try {
    writeFileSync(statePath(home, root), '{}');
  } catch {
    /* no state */
  }
}

const INPUT_FILES = ['npm-shrinkwrap.json', 'package-lock.json', 'package.json', '.npmrc'];

/** Stat stamps of the inputs plus the arguments and environment as text: equal stamps mean equal inputs. */
export function inputStamps(root: string, args: string[], extraInputs: string[], env: NodeJS.ProcessEnv, veloVersion: string): string {
  const files = [
    ...INPUT_FILES.map((n) => join(root, n)),
    env.NPM_CONFIG_USERCONFIG ?? env.npm_config_userconfig ?? join(homedir(), '.npmrc'),
    ...(env.NPM_CONFIG_GLOBALCONFIG ?? env.npm_config_globalconfig ? [(env.NPM_CONFIG_GLOBALCONFIG ?? env.npm_config_globalconfig)!] : []),
    ...extraInputs.map((p) => resolve(root, p)),
  ];
  const stats = files.map((f) => {
    const st = statSync(f, { bigint: true, throwIfNoEntry: false });
    return st ? `${st.size}:${st.mtimeNs}:${st.ino}` : '-';
  });
  const npmEnv = Object.keys(env)
    .filter((k) => /^npm_config_/i.test(k))
    .sort()
    .map((k) => `${k}=${env[k]}`);
  return JSON.stringify([veloVersion, process.platform, process.arch, process.versions.modules, args, npmEnv, env.NODE_ENV ?? '', env.VELO_PROJECTION ?? '', env.VELO_METHOD ?? '', stats]);
}

/** True when the project is exactly as velo left it for these inputs. */
export function isUpToDate(home: string, root: string, args: string[], env: NodeJS.ProcessEnv, veloVersion: string): NpmState | undefined {
  const state = readState(home, root);
  if (!state) return undefined;
  for (const [dir, rec] of Object.entries(state.dirs)) {
    try {
      const now = dirStamp(join(root, dir));
      if (now.ino !== rec.ino || now.mtimeNs !== rec.mtimeNs) return undefined;
    } catch {
      return undefined;
    }
  }
  // stamps equal: nothing was even touched; else the contents decide (a touched, unchanged file is still a no-op)
  if (state.stamps !== undefined && state.stamps === inputStamps(root, args, state.extraInputs, env, veloVersion)) return state;
  return state.inputs === inputsDigest(root, args, state.extraInputs, env, veloVersion) ? state : undefined;
}

/**
 * An install between its swap and its end (scripts running, hidden lockfile
 * not yet written) keeps the previous trees aside. It records them here, so
 * that if it is killed the next run puts them back: the user's previous
 * node_modules, not a half-built new one.
 */
export interface PendingSwap {
  pid: number;
  asides: { dest: string; aside: string | undefined }[];
}

function pendingPath(home: string, root: string): string {
  return statePath(home, root).replace(/\.json$/, '.pending.json');
}

export function writePending(home: string, root: string, asides: PendingSwap['asides']): void {
  mkdirSync(join(home, 'state'), { recursive: true });
  const path = pendingPath(home, root);
  writeFileSync(`${path}.tmp`, JSON.stringify({ pid: process.pid, asides } satisfies PendingSwap));
  renameSync(`${path}.tmp`, path);
}

export function clearPending(home: string, root: string): void {
  try {
    unlinkSync(pendingPath(home, root));
  } catch {
    /* none */
  }
}

/** The swaps a dead install left unfinished, to be rolled back (and forgotten). */
export function takeDeadPending(home: string, root: string, alive: (pid: number) => boolean): PendingSwap | undefined {
  let p: PendingSwap;
  try {
    p = JSON.parse(readFileSync(pendingPath(home, root), 'utf8')) as PendingSwap;
  } catch {
    return undefined;
  }
  if (typeof p.pid !== 'number' || !Array.isArray(p.asides)) {
    clearPending(home, root);
    return undefined;
  }
  if (alive(p.pid)) return undefined;
  clearPending(home, root);
  return p;
}
