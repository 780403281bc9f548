/**
 * Which ecosystems a project directory holds: npm (package.json, with its
 * workspaces), uv (pyproject.toml, with uv.lock and a uv workspace) and cargo
 * (Cargo.toml, with a workspace). Several at once is normal (a Rust service
 * with a web front end). Only reads a few small files: `velo run` calls this
 * on every start when there is no velo.json.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { VeloError } from '../errors.js';

export type Ecosystem = 'npm' | 'uv' | 'cargo';

/** The order velo lists, writes and brings ecosystems up to date in. */
export const ECOSYSTEMS: readonly Ecosystem[] = ['npm', 'uv', 'cargo'];

export interface NpmDetection {
  ecosystem: 'npm';
  manifest: 'package.json';
  lockfile: 'npm-shrinkwrap.json' | 'package-lock.json' | undefined;
  name: string | undefined;
  /** the workspaces patterns of package.json */
  workspaces: string[];
  /** the workspace directories they match (relative, '/'-separated, sorted) */
  workspaceDirs: string[];
}

export interface UvDetection {
  ecosystem: 'uv';
  manifest: 'pyproject.toml';
  lockfile: 'uv.lock' | undefined;
  name: string | undefined;
  /** [tool.uv.workspace] members patterns */
  workspaceMembers: string[];
  /** the project environment uv uses (relative): UV_PROJECT_ENVIRONMENT, else .venv */
  envDir: string;
  envExists: boolean;
}

export interface CargoDetection {
  ecosystem: 'cargo';
  manifest: 'Cargo.toml';
  lockfile: 'Cargo.lock' | undefined;
  name: string | undefined;
  /** the manifest has a [workspace] table */
  workspace: boolean;
  /** [workspace] members patterns */
  members: string[];
}

export type Detection = NpmDetection | UvDetection | CargoDetection;

export const MANIFESTS: Record<Ecosystem, string> = { npm: 'package.json', uv: 'pyproject.toml', cargo: 'Cargo.toml' };

function readText(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

function isDir(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

/** A glob segment (`*`, `?`, literal) as a regular expression. */
function segmentPattern(segment: string): RegExp {
  const body = segment.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '[^/]*').replace(/\?/g, '[^/]');
  return new RegExp(`^${body}$`);
}

/**
 * Directories under root matching a workspace pattern (npm's and cargo's
 * globs: `*` and `?` within a segment, `**` for any depth). Hidden
 * directories and node_modules are never entered.
 */
export function expandDirPattern(root: string, pattern: string): string[] {
  const segments = pattern.replace(/\\/g, '/').replace(/^\.\//, '').replace(/\/+$/, '').split('/').filter((s) => s !== '' && s !== '.');
  const out = new Set<string>();
  const walk = (dir: string, i: number, depth: number): void => {
    if (i === segments.length) {
      out.add(dir);
      return;
    }
    const seg = segments[i]!;
    if (seg === '**') {
      walk(dir, i + 1, depth);
      if (depth > 8) return;
      for (const child of listDirs(join(root, dir))) walk(dir ? `${dir}/${child}` : child, i, depth + 1);
      return;
    }
    if (!/[*?]/.test(seg)) {
      const next = dir ? `${dir}/${seg}` : seg;
      if (isDir(join(root, next))) walk(next, i + 1, depth);
      return;
    }
    const re = segmentPattern(seg);
    for (const child of listDirs(join(root, dir))) if (re.test(child)) walk(dir ? `${dir}/${child}` : child, i + 1, depth);
  };
  if (segments.some((s) => s === '..')) return [];
  walk('', 0, 0);
  return [...out].filter((d) => d !== '').sort();
}

function listDirs(dir: string): string[] {
  try {
    return readdirSync(dir, { withFileTypes: true })
      .filter((e) => e.isDirectory() && !e.name.startsWith('.') && e.name !== 'node_modules')
      .map((e) => e.name)
      .sort();
  } catch {
    return [];
  }
}

function detectNpm(dir: string): NpmDetection | undefined {
  const text = readText(join(dir, 'package.json'));
  if (text === undefined) return undefined;
  let pkg: { name?: unknown; workspaces?: unknown };
  try {
    pkg = JSON.parse(text) as typeof pkg;
  } catch (err) {
    throw new VeloError('BAD_INPUT', `${join(dir, 'package.json')}: not valid JSON (${(err as Error).message})`);
  }
  const raw = Array.isArray(pkg.workspaces)
    ? pkg.workspaces
    : pkg.workspaces && typeof pkg.workspaces === 'object' && Array.isArray((pkg.workspaces as { packages?: unknown }).packages)
      ? ((pkg.workspaces as { packages: unknown[] }).packages)
      : [];
  const workspaces = raw.filter((w): w is string => typeof w === 'string');
  const include = new Set<string>();
  for (const w of workspaces.filter((w) => !w.startsWith('!'))) {
    for (const d of expandDirPattern(dir, w)) if (existsSync(join(dir, d, 'package.json'))) include.add(d);
  }
  for (const w of workspaces.filter((w) => w.startsWith('!'))) for (const d of expandDirPattern(dir, w.slice(1))) include.delete(d);
  const lockfile = existsSync(join(dir, 'npm-shrinkwrap.json'))
    ? 'npm-shrinkwrap.json'
    : existsSync(join(dir, 'package-lock.json'))
      ? 'package-lock.json'
      : undefined;
  return {
    ecosystem: 'npm',
    manifest: 'package.json',
    lockfile,
    name: typeof pkg.name === 'string' ? pkg.name : undefined,
    workspaces,
    workspaceDirs: [...include].sort(),
  };
}

/**
 * The body of one TOML table (`[name]` up to the next table header), enough
 * to find a key or two in pyproject.toml and Cargo.toml without a parser.
 */
export function tomlTable(text: string, name: string): string | undefined {
  const lines = text.split(/\r?\n/);
  const header = new RegExp(`^\\s*\\[\\s*${name.replace(/\./g, '\\s*\\.\\s*')}\\s*\\]\\s*(#.*)?$`);
  const start = lines.findIndex((l) => header.test(l));
  if (start < 0) return undefined;
  const body: string[] = [];
  for (const line of lines.slice(start + 1)) {
    if (/^\s*\[/.test(line)) break;
    body.push(line);
  }
  return body.join('\n');
}

/** A string-array value (`key = ["a", 'b']`, over several lines) from a table body. */
export function tomlStringArray(body: string | undefined, key: string): string[] {
  if (body === undefined) return [];
  const m = new RegExp(`^\\s*${key}\\s*=\\s*\\[([^\\]]*)\\]`, 'm').exec(body);
  if (!m) return [];
  const values: string[] = [];
  const re = /"((?:[^"\\]|\\.)*)"|'([^']*)'/g;
  const inner = m[1]!.replace(/#[^\n]*/g, '');
  for (let v = re.exec(inner); v; v = re.exec(inner)) values.push(v[1] ?? v[2] ?? '');
  return values;
}

/** A string value (`key = "x"`) from a table body. */
export function tomlString(body: string | undefined, key: string): string | undefined {
  if (body === undefined) return undefined;
  const m = new RegExp(`^\\s*${key}\\s*=\\s*(?:"((?:[^"\\\\]|\\\\.)*)"|'([^']*)')`, 'm').exec(body);
  return m ? (m[1] ?? m[2]) : undefined;
}

function detectUv(dir: string, env: NodeJS.ProcessEnv): UvDetection | undefined {
  const text = readText(join(dir, 'pyproject.toml'));
  if (text === undefined) return undefined;
  const custom = env.UV_PROJECT_ENVIRONMENT;
  const envAbs = custom ? resolve(dir, custom) : join(dir, '.venv');
  const envRel = relative(dir, envAbs).split(sep).join('/') || '.';
  return {
    ecosystem: 'uv',
    manifest: 'pyproject.toml',
    lockfile: existsSync(join(dir, 'uv.lock')) ? 'uv.lock' : undefined,
    name: tomlString(tomlTable(text, 'project'), 'name'),
    workspaceMembers: tomlStringArray(tomlTable(text, 'tool.uv.workspace'), 'members'),
    envDir: envRel,
    envExists: isDir(envAbs),
  };
}

function detectCargo(dir: string): CargoDetection | undefined {
  const text = readText(join(dir, 'Cargo.toml'));
  if (text === undefined) return undefined;
  const ws = tomlTable(text, 'workspace');
  return {
    ecosystem: 'cargo',
    manifest: 'Cargo.toml',
    lockfile: existsSync(join(dir, 'Cargo.lock')) ? 'Cargo.lock' : undefined,
    name: tomlString(tomlTable(text, 'package'), 'name'),
    workspace: ws !== undefined,
    members: tomlStringArray(ws, 'members'),
  };
}

/** Every ecosystem whose manifest is in dir, in ECOSYSTEMS order. */
export function detectEcosystems(dir: string, env: NodeJS.ProcessEnv = process.env): Detection[] {
  const out: Detection[] = [];
  const npm = detectNpm(dir);
  if (npm) out.push(npm);
  const uv = detectUv(dir, env);
  if (uv) out.push(uv);
  const cargo = detectCargo(dir);
  if (cargo) out.push(cargo);
  return out;
}

/**
 * The project a command run in cwd belongs to: the nearest directory with a
 * velo.json (what `velo init` wrote), else the nearest with a package.json,
 * pyproject.toml or Cargo.toml; undefined when there is neither.
 */
export function findProjectDir(cwd: string, configFile = 'velo.json'): { dir: string; hasConfig: boolean } | undefined {
  let firstManifest: string | undefined;
  for (let dir = resolve(cwd); ; dir = dirname(dir)) {
    if (existsSync(join(dir, configFile))) return { dir, hasConfig: true };
    if (firstManifest === undefined && Object.values(MANIFESTS).some((m) => existsSync(join(dir, m)))) firstManifest = dir;
    if (dirname(dir) === dir) break;
  }
  return firstManifest === undefined ? undefined : { dir: firstManifest, hasConfig: false };
}
