// Running the real npm against the test registry, hermetically.
//
//   const project = await prepareProject('basic', registry);   // copy + .npmrc + real lockfile
//   const res = await project.npm(['ci']);                     // real npm, sandboxed config
//   assertNpmOk(res);
//   describeDir(join(project.dir, 'node_modules'))            // treeCompare.ts
//
// Nothing here reads the machine's ~/.npmrc, global npmrc, npm cache or
// node-gyp cache: every sandbox has its own userconfig (registry + auth
// token), an empty globalconfig, its own cache, and its own XDG_CACHE_HOME
// whose node-gyp header directory points at the running Node's bundled
// headers (so `node-gyp rebuild` works offline). `env` carries all of this
// as environment variables, so velo run with the same env sees the same
// npm configuration.
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, realpathSync } from 'node:fs';
import { cp, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import { repoRoot } from './paths.js';
import type { Registry } from './registry.js';

export const NPM_PROJECTS_DIR = join(repoRoot(), 'fixtures', 'npm-projects');

export interface NpmRunResult {
  /** Exit code, or null when killed (see signal / timedOut). */
  code: number | null;
  signal: NodeJS.Signals | null;
  timedOut: boolean;
  stdout: string;
  stderr: string;
  durationMs: number;
}

export interface RunNpmOptions {
  cwd: string;
  env: NodeJS.ProcessEnv;
  /** Kill npm after this long (default 120 s). */
  timeoutMs?: number;
}

// ---------------------------------------------------------------------------
// npm itself

let cachedCli: string | null = null;

/** The npm-cli.js of the `npm` on PATH (override with VELO_TEST_NPM_CLI); run with this Node. */
export function npmCliPath(): string {
  if (cachedCli) return cachedCli;
  const override = process.env.VELO_TEST_NPM_CLI;
  if (override) return (cachedCli = override);
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    const candidate = join(dir, 'npm');
    if (!dir || !existsSync(candidate)) continue;
    const real = realpathSync(candidate);
    if (real.endsWith('.js')) return (cachedCli = real);
    const sibling = join(dirname(real), 'npm-cli.js');
    if (existsSync(sibling)) return (cachedCli = sibling);
  }
  throw new Error('npm not found on PATH (set VELO_TEST_NPM_CLI to an npm-cli.js)');
}

let cachedVersion: string | null = null;

export async function npmVersion(): Promise<string> {
  if (cachedVersion) return cachedVersion;
  const pkgPath = join(dirname(npmCliPath()), '..', 'package.json');
  cachedVersion = (JSON.parse(await readFile(pkgPath, 'utf8')) as { version: string }).version;
  return cachedVersion;
}

/**
 * process.env without anything npm put there (npm_config_*, npm_package_*,
 * npm_lifecycle_*, INIT_CWD, …: set when vitest itself runs under `npm test`,
 * and they would leak the user's npm configuration into the test), and with
 * this Node first on PATH.
 */
export function cleanEnv(base: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(base)) {
    if (/^npm_/i.test(key) || key === 'INIT_CWD' || key === 'NODE' || key === 'COLOR') continue;
    env[key] = value;
  }
  env.PATH = [dirname(process.execPath), base.PATH ?? ''].join(delimiter);
  return env;
}

/** Run the real npm with this Node. Never throws for a non-zero exit; see assertNpmOk. */
export function runNpm(args: readonly string[], opts: RunNpmOptions): Promise<NpmRunResult> {
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [npmCliPath(), ...args], {
      cwd: opts.cwd,
      env: opts.env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, opts.timeoutMs ?? 120_000);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, timedOut, stdout, stderr, durationMs: performance.now() - t0 });
    });
  });
}

/** Throw with npm's output unless it exited 0. */
export function assertNpmOk(res: NpmRunResult, what = 'npm'): void {
  if (res.code === 0) return;
  throw new Error(
    `${what} failed (code ${res.code}, signal ${res.signal}${res.timedOut ? ', timed out' : ''}):\n--- stdout\n${res.stdout}\n--- stderr\n${res.stderr}`,
  );
}

// ---------------------------------------------------------------------------
// sandboxes

export type NpmrcValues = Record<string, string | number | boolean>;

export interface NpmSandbox {
  /** Directory holding the files below (and usually the project). */
  root: string;
  userconfig: string;
  globalconfig: string;
  cache: string;
  /** XDG_CACHE_HOME: holds node-gyp/<node version>/ headers. */
  xdgCacheHome: string;
  /** Environment for npm (and velo): cleanEnv() + NPM_CONFIG_USERCONFIG/GLOBALCONFIG/CACHE + XDG_CACHE_HOME. */
  env: NodeJS.ProcessEnv;
}

export interface SandboxOptions {
  /** Extra userconfig lines, e.g. { 'fetch-timeout': 2000 }; they override the defaults. */
  userconfig?: NpmrcValues;
  /** Put the sandbox files in this directory instead of a new temp dir. */
  root?: string;
}

/** Defaults every sandbox userconfig gets (fast retries so failure tests stay fast). */
export const SANDBOX_USERCONFIG_DEFAULTS: NpmrcValues = {
  audit: false,
  fund: false,
  'update-notifier': false,
  'fetch-retries': 1,
  'fetch-retry-mintimeout': 100,
  'fetch-retry-maxtimeout': 1000,
  'fetch-timeout': 60_000,
};

export function npmrcText(values: NpmrcValues): string {
  return Object.entries(values)
    .map(([k, v]) => `${k}=${String(v)}\n`)
    .join('');
}

/** Headers of the running Node, as shipped next to it (`<prefix>/include/node`). */
function findNodeHeaders(): string | null {
  const prefix = dirname(dirname(process.execPath));
  const candidates = [join(prefix, 'include')];
  const nested = join(prefix, 'node_modules');
  if (existsSync(nested)) {
    // The `node` npm package keeps the real distribution in node_modules/node-<os>-<arch>/.
    candidates.push(join(nested, `node-${process.platform}-${process.arch}`, 'include'));
  }
  for (const include of candidates) {
    const versionH = join(include, 'node', 'node_version.h');
    if (!existsSync(versionH)) continue;
    const text = readFileSync(versionH, 'utf8');
    const part = (name: string): string => new RegExp(`#define NODE_${name}_VERSION (\\d+)`).exec(text)?.[1] ?? '';
    if (`${part('MAJOR')}.${part('MINOR')}.${part('PATCH')}` === process.versions.node) return include;
  }
  return null;
}

function nodeGypInstallVersion(): string {
  try {
    const pkg = join(dirname(npmCliPath()), '..', 'node_modules', 'node-gyp', 'package.json');
    return String((JSON.parse(readFileSync(pkg, 'utf8')) as { installVersion?: number }).installVersion ?? 11);
  } catch {
    return '11';
  }
}

/**
 * node-gyp looks for headers in $XDG_CACHE_HOME/node-gyp/<version>/ and
 * downloads them from nodejs.org when missing (impossible offline). Point
 * that directory at the headers shipped with this Node, as if node-gyp had
 * already downloaded them. Returns false when this Node has no headers.
 */
export async function provideNodeGypHeaders(xdgCacheHome: string): Promise<boolean> {
  const include = findNodeHeaders();
  if (!include) return false;
  const dir = join(xdgCacheHome, 'node-gyp', process.versions.node);
  await mkdir(dir, { recursive: true });
  if (!existsSync(join(dir, 'include'))) await symlink(include, join(dir, 'include'));
  await writeFile(join(dir, 'installVersion'), `${nodeGypInstallVersion()}\n`);
  return true;
}

/** A private npm configuration for one test: userconfig with registry and token, empty globalconfig, own cache. */
export async function createNpmSandbox(registry: Registry, opts: SandboxOptions = {}): Promise<NpmSandbox> {
  const root = opts.root ?? (await mkdtemp(join(tmpdir(), 'velo-npm-')));
  await mkdir(root, { recursive: true });
  const userconfig = join(root, 'npmrc-user');
  const globalconfig = join(root, 'npmrc-global');
  const cache = join(root, 'npm-cache');
  const xdgCacheHome = join(root, 'xdg-cache');
  await writeFile(
    userconfig,
    `registry=${registry.url}\n${registry.authLine}\n` + npmrcText({ ...SANDBOX_USERCONFIG_DEFAULTS, ...opts.userconfig }),
  );
  await writeFile(globalconfig, '');
  await mkdir(cache, { recursive: true });
  await provideNodeGypHeaders(xdgCacheHome);
  const env: NodeJS.ProcessEnv = {
    ...cleanEnv(process.env),
    NPM_CONFIG_USERCONFIG: userconfig,
    NPM_CONFIG_GLOBALCONFIG: globalconfig,
    NPM_CONFIG_CACHE: cache,
    XDG_CACHE_HOME: xdgCacheHome,
  };
  return { root, userconfig, globalconfig, cache, xdgCacheHome, env };
}

// ---------------------------------------------------------------------------
// projects

/** An ad-hoc project: package.json contents plus any other files (relative path → contents). */
export interface ProjectSpec {
  name: string;
  packageJson: Record<string, unknown>;
  files?: Record<string, string>;
}

export interface PrepareProjectOptions {
  /** Extra lines for the project's .npmrc (registry= is always written), e.g. { 'omit-lockfile-registry-resolved': true }. */
  npmrc?: NpmrcValues;
  /** Extra userconfig lines for the sandbox. */
  userconfig?: NpmrcValues;
  /** Generate package-lock.json with `npm install --package-lock-only` (default true). */
  lockfile?: boolean;
}

export interface PreparedProject {
  /** The project directory (package.json, .npmrc, package-lock.json). */
  dir: string;
  /** Sandbox (userconfig, cache, env) in the parent directory of dir. */
  sandbox: NpmSandbox;
  env: NodeJS.ProcessEnv;
  /** Milliseconds `npm install --package-lock-only` took. */
  lockMs: number;
  /** Run the real npm in dir with the sandbox env. */
  npm(args: readonly string[], opts?: { env?: NodeJS.ProcessEnv; timeoutMs?: number }): Promise<NpmRunResult>;
  /** package-lock.json, parsed. */
  lockfile(): Promise<Record<string, unknown>>;
  cleanup(): Promise<void>;
}

/**
 * Copy fixtures/npm-projects/<name> (or write a ProjectSpec) into a fresh
 * temp dir, write an .npmrc with registry=<registry.url>, and let the real npm
 * resolve package-lock.json against the registry (--package-lock-only, with
 * a throwaway cache so the sandbox cache starts empty).
 */
export async function prepareProject(
  project: string | ProjectSpec,
  registry: Registry,
  opts: PrepareProjectOptions = {},
): Promise<PreparedProject> {
  const name = typeof project === 'string' ? project : project.name;
  const root = await mkdtemp(join(tmpdir(), `velo-npm-${name.replace(/[^a-z0-9-]/gi, '_')}-`));
  const dir = join(root, 'project');
  if (typeof project === 'string') {
    const source = join(NPM_PROJECTS_DIR, project);
    if (!existsSync(join(source, 'package.json'))) throw new Error(`no fixture project ${source}`);
    await cp(source, dir, { recursive: true });
  } else {
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, 'package.json'), JSON.stringify(project.packageJson, null, 2) + '\n');
    for (const [rel, text] of Object.entries(project.files ?? {})) {
      await mkdir(dirname(join(dir, rel)), { recursive: true });
      await writeFile(join(dir, rel), text);
    }
  }
  await writeFile(join(dir, '.npmrc'), `registry=${registry.url}\n` + npmrcText(opts.npmrc ?? {}));
  const sandbox = await createNpmSandbox(registry, { root, ...(opts.userconfig ? { userconfig: opts.userconfig } : {}) });
  const npm = (args: readonly string[], o: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<NpmRunResult> =>
    runNpm(args, { cwd: dir, env: o.env ?? sandbox.env, ...(o.timeoutMs !== undefined ? { timeoutMs: o.timeoutMs } : {}) });

  let lockMs = 0;
  if (opts.lockfile !== false) {
    const res = await npm(['install', '--package-lock-only', '--ignore-scripts'], {
      env: { ...sandbox.env, NPM_CONFIG_CACHE: join(root, 'lock-cache') },
    });
    assertNpmOk(res, `npm install --package-lock-only in ${name}`);
    lockMs = res.durationMs;
    await rm(join(root, 'lock-cache'), { recursive: true, force: true });
  }
  return {
    dir,
    sandbox,
    env: sandbox.env,
    lockMs,
    npm,
    lockfile: async () => JSON.parse(await readFile(join(dir, 'package-lock.json'), 'utf8')) as Record<string, unknown>,
    cleanup: () => rm(root, { recursive: true, force: true }),
  };
}
