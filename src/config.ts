/**
 * velo's configuration: environment variables win over the user's config
 * file ($XDG_CONFIG_HOME/velo/config.json), which wins over the defaults.
 * A project's own velo.json (written by `velo init`) is read by the
 * commands that work on a project.
 */
import { readFileSync } from 'node:fs';
import { availableParallelism, homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { VeloError } from './errors.js';

export type LinkMethod = 'auto' | 'reflink' | 'hardlink' | 'copy';
export type Projection = 'link' | 'mount';

export interface VeloConfig {
  /** the store's directory */
  home: string;
  /** how files are linked when projection is "link" */
  method: LinkMethod;
  /** link farm or FUSE mount */
  projection: Projection;
  /** threads for bulk filesystem work */
  threads: number;
  /** the shared store on S3 (s3://bucket/prefix), when one is configured: VELO_REMOTE, velo.json, config file */
  remote: string | undefined;
}

export const LINK_METHODS: readonly LinkMethod[] = ['auto', 'reflink', 'hardlink', 'copy'];
export const PROJECTIONS: readonly Projection[] = ['link', 'mount'];

export function userConfigPath(env: NodeJS.ProcessEnv = process.env): string {
  const base = env.XDG_CONFIG_HOME || join(homedir(), '.config');
  return join(base, 'velo', 'config.json');
}

export function defaultHome(env: NodeJS.ProcessEnv = process.env): string {
  if (env.VELO_HOME) return resolve(env.VELO_HOME);
  const data = env.XDG_DATA_HOME || join(homedir(), '.local', 'share');
  return join(data, 'velo');
}

function readJsonFile(path: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    return {};
  }
  try {
    const value: unknown = JSON.parse(text);
    if (value && typeof value === 'object' && !Array.isArray(value)) return value as Record<string, unknown>;
  } catch (err) {
    throw new VeloError('BAD_INPUT', `${path}: not valid JSON (${(err as Error).message})`);
  }
  throw new VeloError('BAD_INPUT', `${path}: expected a JSON object`);
}

function pick<T extends string>(name: string, value: unknown, allowed: readonly T[], source: string): T | undefined {
  if (value === undefined || value === '') return undefined;
  if (typeof value === 'string' && (allowed as readonly string[]).includes(value)) return value as T;
  throw new VeloError('BAD_INPUT', `${source}: ${name} must be one of ${allowed.join(', ')} (got ${JSON.stringify(value)})`);
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env, projectConfig: Record<string, unknown> = {}): VeloConfig {
  const file = userConfigPath(env);
  const user = readJsonFile(file);
  const home = env.VELO_HOME ? resolve(env.VELO_HOME) : typeof user.home === 'string' ? resolve(user.home) : defaultHome(env);
  const method =
    pick('VELO_METHOD', env.VELO_METHOD, LINK_METHODS, 'environment') ??
    pick('method', projectConfig.method, LINK_METHODS, 'velo.json') ??
    pick('method', user.method, LINK_METHODS, file) ??
    'auto';
  const projection =
    pick('VELO_PROJECTION', env.VELO_PROJECTION, PROJECTIONS, 'environment') ??
    pick('projection', projectConfig.projection, PROJECTIONS, 'velo.json') ??
    pick('projection', user.projection, PROJECTIONS, file) ??
    'link';
  const threads = threadsSetting(env.VELO_THREADS ?? user.threads, 'VELO_THREADS / threads');
  const remote = remoteSetting(env.VELO_REMOTE, 'VELO_REMOTE') ?? remoteSetting(projectConfig.remote, 'velo.json') ?? remoteSetting(user.remote, file);
  return { home, method, projection, threads, remote };
}

function remoteSetting(value: unknown, source: string): string | undefined {
  if (value === undefined || value === '' || value === null) return undefined;
  if (typeof value !== 'string') throw new VeloError('BAD_INPUT', `${source}: remote must be an s3://bucket/prefix string (got ${JSON.stringify(value)})`);
  return value;
}

/**
 * The thread count for bulk filesystem work from a setting (undefined or ''
 * = the default): one thread per core, at most 4 — measured best for both
 * ingest and hardlinking; more only contend (docs/BENCHMARKS.md).
 */
export function threadsSetting(raw: unknown, name: string): number {
  if (raw === undefined || raw === '') return Math.min(4, availableParallelism());
  const threads = Number(raw);
  if (!Number.isInteger(threads) || threads < 1 || threads > 64) {
    throw new VeloError('BAD_INPUT', `${name} must be an integer from 1 to 64 (got ${JSON.stringify(raw)})`);
  }
  return threads;
}
