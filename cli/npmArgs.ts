/**
 * `velo npm`'s arguments: which npm commands go through the store, and
 * velo's own flags split from npm's. Light (no npm library, no store), so
 * the no-op path (npmNoop.ts) can use it before anything else is loaded.
 */
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { VeloError } from '../src/errors.js';
import { LINK_METHODS, PROJECTIONS, type LinkMethod, type Projection } from '../src/config.js';

export const STORE_COMMANDS = new Set(['ci', 'clean-install', 'install', 'i', 'add', 'isntall', 'in', 'uninstall', 'remove', 'rm', 'un', 'unlink', 'update', 'up', 'upgrade']);
export const CI_ALIASES = new Set(['ci', 'clean-install', 'install-clean', 'ic']);
export const INSTALL_ALIASES = new Set(['install', 'i', 'add', 'isntall', 'in']);
export const UNINSTALL_ALIASES = new Set(['uninstall', 'remove', 'rm', 'un', 'unlink']);
export const UPDATE_ALIASES = new Set(['update', 'up', 'upgrade']);

/** npm flags that take a value, so the value is not taken for a package name */
const NPM_VALUE_FLAGS = new Set([
  '--omit', '--include', '--registry', '--cache', '--prefix', '-C', '--userconfig', '--globalconfig', '--workspace', '-w',
  '--install-strategy', '--loglevel', '--script-shell', '--tag', '--before', '--cpu', '--os', '--libc', '--fetch-timeout', '--fetch-retries',
]);

export interface SplitArgs {
  velo: { json: boolean; method: LinkMethod | undefined; projection: Projection | undefined; force: boolean; help: boolean; remote: string | false | undefined };
  npm: string[];
  packages: string[];
  prefix: string | undefined;
}

export function splitArgs(args: string[]): SplitArgs {
  const velo: SplitArgs['velo'] = { json: false, method: undefined, projection: undefined, force: false, help: false, remote: undefined };
  const npmArgs: string[] = [];
  const packages: string[] = [];
  let prefix: string | undefined;
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    const [flag, inline] = a.startsWith('--') && a.includes('=') ? [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)] : [a, undefined];
    if (flag === '--json') velo.json = true;
    else if (flag === '--force' && inline === undefined) velo.force = true;
    else if (flag === '-h' || flag === '--help') velo.help = true;
    else if (flag === '--no-remote' && inline === undefined) velo.remote = false;
    else if (flag === '--remote') {
      const v = inline ?? args[++i];
      if (!v || v.startsWith('-')) throw new VeloError('USAGE', '--remote needs a URL (s3://bucket/prefix)');
      velo.remote = v;
    }
    else if (flag === '--method') {
      const v = inline ?? args[++i];
      if (!v || !LINK_METHODS.includes(v as LinkMethod)) throw new VeloError('USAGE', `--method must be one of ${LINK_METHODS.join(', ')}`);
      velo.method = v as LinkMethod;
    } else if (flag === '--projection') {
      const v = inline ?? args[++i];
      if (!v || !PROJECTIONS.includes(v as Projection)) throw new VeloError('USAGE', `--projection must be one of ${PROJECTIONS.join(', ')}`);
      velo.projection = v as Projection;
    } else if (NPM_VALUE_FLAGS.has(flag)) {
      const v = inline ?? args[++i];
      if (v === undefined) throw new VeloError('USAGE', `${flag} needs a value`);
      if (flag === '--prefix' || flag === '-C') prefix = v;
      npmArgs.push(`${flag}=${v}`);
    } else if (a.startsWith('-')) npmArgs.push(a);
    else packages.push(a);
  }
  return { velo, npm: npmArgs, packages, prefix };
}

/** npm's local prefix: the nearest directory with a package.json (or node_modules). */
export function findProjectRoot(cwd: string): string {
  for (let dir = resolve(cwd); ; dir = dirname(dir)) {
    if (existsSync(join(dir, 'package.json')) || existsSync(join(dir, 'node_modules'))) return dir;
    if (dirname(dir) === dir) return resolve(cwd);
  }
}

