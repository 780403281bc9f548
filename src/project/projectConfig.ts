/**
 * velo.json: the small file `velo init` writes and a team commits. It names
 * the ecosystems `velo run` brings up to date and how trees are projected.
 * The text is canonical (fixed key order, two-space JSON, a trailing
 * newline), so writing the same settings twice gives the same bytes; keys
 * velo does not know are kept as they are.
 */
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { VeloError, fsError } from '../errors.js';
import { LINK_METHODS, PROJECTIONS, type LinkMethod, type Projection } from '../config.js';
import { ECOSYSTEMS, type Ecosystem } from './detect.js';
import { writeFileAtomic } from '../store/atomicWrite.js';

export const PROJECT_CONFIG_FILE = 'velo.json';

export interface ProjectConfig {
  /** what `velo run` brings up to date before the command, in ECOSYSTEMS order */
  ecosystems: Ecosystem[];
  projection: Projection;
  method: LinkMethod;
  /** velo run points NODE_COMPILE_CACHE into the store */
  compileCache: boolean;
  /** keys velo does not know, kept verbatim */
  extra: Record<string, unknown>;
}

export const CONFIG_COMMENT: readonly string[] = [
  'velo project settings, written by `velo init`; commit this file. Every velo command also works without it.',
  'ecosystems: what `velo run <cmd>` brings up to date before running cmd: npm = node_modules from the lockfile (as `velo npm ci`; a no-op when nothing changed), uv = the .venv, cargo = nothing before the command (`velo cargo build` restores target/ from the store).',
  'projection: "link" lays dependency trees out as files linked from the store; "mount" serves them from a read-only FUSE mount where that is available.',
  'method: how "link" places files: "auto" (reflink, else hardlink, else copy; probed once per filesystem), "reflink", "hardlink" or "copy".',
  'compileCache: true lets `velo run` keep Node\'s compile cache (NODE_COMPILE_CACHE) in the store, so repeated starts skip compiling; it never changes what a program computes. A NODE_COMPILE_CACHE you set yourself wins.',
  'VELO_METHOD and VELO_PROJECTION in the environment override method and projection for one run. `velo init` re-detects ecosystems and keeps the other settings.',
];

const KNOWN = new Set(['$comment', 'ecosystems', 'projection', 'method', 'compileCache']);

export function defaultProjectConfig(ecosystems: Ecosystem[]): ProjectConfig {
  return { ecosystems: sortEcosystems(ecosystems), projection: 'link', method: 'auto', compileCache: true, extra: {} };
}

export function sortEcosystems(list: readonly string[]): Ecosystem[] {
  return ECOSYSTEMS.filter((e) => list.includes(e));
}

/** velo.json in dir, parsed and checked; undefined when there is none. */
export function readProjectConfig(dir: string): ProjectConfig | undefined {
  const path = join(dir, PROJECT_CONFIG_FILE);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
  return parseProjectConfig(text, path);
}

export function parseProjectConfig(text: string, path = PROJECT_CONFIG_FILE): ProjectConfig {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new VeloError('BAD_INPUT', `${path}: not valid JSON (${(err as Error).message})`, { hint: 'fix it, or delete it and run velo init' });
  }
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) throw new VeloError('BAD_INPUT', `${path}: expected a JSON object`);
  const obj = raw as Record<string, unknown>;
  const eco = obj.ecosystems ?? [];
  if (!Array.isArray(eco) || eco.some((e) => typeof e !== 'string' || !(ECOSYSTEMS as readonly string[]).includes(e))) {
    throw new VeloError('BAD_INPUT', `${path}: "ecosystems" must be a list of ${ECOSYSTEMS.map((e) => `"${e}"`).join(', ')} (got ${JSON.stringify(eco)})`);
  }
  const projection = obj.projection ?? 'link';
  if (typeof projection !== 'string' || !(PROJECTIONS as readonly string[]).includes(projection)) {
    throw new VeloError('BAD_INPUT', `${path}: "projection" must be one of ${PROJECTIONS.join(', ')} (got ${JSON.stringify(projection)})`);
  }
  const method = obj.method ?? 'auto';
  if (typeof method !== 'string' || !(LINK_METHODS as readonly string[]).includes(method)) {
    throw new VeloError('BAD_INPUT', `${path}: "method" must be one of ${LINK_METHODS.join(', ')} (got ${JSON.stringify(method)})`);
  }
  const compileCache = obj.compileCache ?? true;
  if (typeof compileCache !== 'boolean') throw new VeloError('BAD_INPUT', `${path}: "compileCache" must be true or false`);
  const extra: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(obj)) if (!KNOWN.has(k)) extra[k] = v;
  return { ecosystems: sortEcosystems(eco as string[]), projection: projection as Projection, method: method as LinkMethod, compileCache, extra };
}

/** The canonical text of a velo.json. */
export function renderProjectConfig(cfg: ProjectConfig): string {
  const obj: Record<string, unknown> = {
    $comment: CONFIG_COMMENT,
    ecosystems: sortEcosystems(cfg.ecosystems),
    projection: cfg.projection,
    method: cfg.method,
    compileCache: cfg.compileCache,
  };
  for (const k of Object.keys(cfg.extra).sort()) obj[k] = cfg.extra[k];
  return JSON.stringify(obj, null, 2) + '\n';
}

/** The settings as loadConfig() takes them (method, projection, and the remote when velo.json names one). */
export function asConfigOverrides(cfg: ProjectConfig | undefined): Record<string, unknown> {
  return cfg ? { method: cfg.method, projection: cfg.projection, remote: cfg.extra.remote } : {};
}

/** Write velo.json atomically; nothing is written when the bytes would not change. */
export function writeProjectConfig(dir: string, cfg: ProjectConfig): { path: string; changed: boolean; created: boolean } {
  const path = join(dir, PROJECT_CONFIG_FILE);
  const text = renderProjectConfig(cfg);
  let before: string | undefined;
  try {
    before = readFileSync(path, 'utf8');
  } catch {
    before = undefined;
  }
  if (before === text) return { path, changed: false, created: false };
  try {
    mkdirSync(dir, { recursive: true });
  } catch (err) {
    throw fsError(err, `cannot write ${path}`);
  }
  writeFileAtomic(path, text, join(dir, `.${PROJECT_CONFIG_FILE}.${process.pid}.tmp`), 0o644);
  return { path, changed: true, created: before === undefined };
}
