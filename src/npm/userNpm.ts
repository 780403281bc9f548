/**
 * The user's own npm, loaded as a library. velo reads configuration with
 * the same @npmcli/config and definitions the user's npm uses, plans with
 * that npm's @npmcli/arborist, fetches with its pacote and runs scripts with
 * its @npmcli/run-script, and applies its install-script approval policy —
 * so velo installs what that npm would install, version for version. When
 * no npm is on PATH, the copies velo depends on are used instead.
 */
import { createRequire } from 'node:module';
import { existsSync, realpathSync } from 'node:fs';
import { delimiter, dirname, join } from 'node:path';
import { VeloError } from '../errors.js';

/* eslint-disable @typescript-eslint/no-explicit-any */
export type AnyRecord = Record<string, any>;

export interface UserNpm {
  /** the npm package directory (…/node_modules/npm), or undefined when velo's own libraries are used */
  root: string | undefined;
  version: string;
  /** the npm executable's command line: [node, npm-cli.js] or ['npm'] */
  command: string[];
  require: NodeJS.Require;
}

export interface LoadedNpmConfig {
  npm: UserNpm;
  /** npm's flatOptions, as its commands receive them */
  flat: AnyRecord;
  /** the @npmcli/config instance (config.get(key, where)) */
  config: AnyRecord;
  localPrefix: string;
  /** positional arguments after the command */
  positionals: string[];
  /** the install-script approval policy, as npm resolves it (null: none configured) */
  allowScripts: AnyRecord | null;
}

function findOnPath(name: string, env: NodeJS.ProcessEnv): string | undefined {
  for (const dir of (env.PATH ?? '').split(delimiter)) {
    if (!dir) continue;
    const candidate = join(dir, name);
    if (existsSync(candidate)) return candidate;
  }
  return undefined;
}

/** Locate the npm the user would run: $VELO_NPM, else `npm` on PATH. */
export function locateNpm(env: NodeJS.ProcessEnv = process.env): UserNpm {
  const explicit = env.VELO_NPM;
  const bin = explicit || findOnPath('npm', env);
  if (bin) {
    let real: string;
    try {
      real = realpathSync(bin);
    } catch {
      real = bin;
    }
    // …/node_modules/npm/bin/npm-cli.js → …/node_modules/npm
    for (let dir = dirname(real), i = 0; i < 3; i++, dir = dirname(dir)) {
      const pkgPath = join(dir, 'package.json');
      if (existsSync(pkgPath) && existsSync(join(dir, 'lib', 'npm.js'))) {
        const req = createRequire(pkgPath);
        const version = (req('./package.json') as { version: string }).version;
        return { root: dir, version, command: [process.execPath, join(dir, 'bin', 'npm-cli.js')], require: req };
      }
    }
  }
  throw new VeloError('TOOL_FAILED', 'npm was not found on PATH', { hint: 'install npm, or set VELO_NPM to the npm executable' });
}

/**
 * Load npm's configuration exactly as `npm <command> <args>` would in cwd:
 * builtin, global, user and project .npmrc, environment, and the arguments.
 */
export async function loadNpmConfig(npm: UserNpm, command: string, args: string[], cwd: string): Promise<LoadedNpmConfig> {
  const req = npm.require;
  const Config = req('@npmcli/config');
  const { definitions, flatten, nerfDarts, shorthands } = req('@npmcli/config/lib/definitions');
  const savedCwd = process.cwd();
  let config: AnyRecord;
  try {
    process.chdir(cwd);
    config = new Config({
      npmPath: npm.root,
      definitions,
      flatten,
      nerfDarts,
      shorthands,
      argv: [process.execPath, 'npm', command, ...args],
      cwd,
      warn: false,
    });
    await config.load();
  } catch (err) {
    throw new VeloError('BAD_INPUT', `npm configuration could not be loaded: ${(err as Error).message}`, { cause: err });
  } finally {
    process.chdir(savedCwd);
  }
  const flat: AnyRecord = config.flat;
  flat.nodeVersion = process.version;
  flat.npmVersion = npm.version;
  flat.npmCommand = command;
  const remain: string[] = [...(config.parsedArgv?.remain ?? [])];
  remain.shift(); // the command itself
  const allowScripts = await resolveAllowScripts(npm, config);
  return { npm, flat, config, localPrefix: config.localPrefix as string, positionals: remain, allowScripts };
}

/** npm 11.x's install-script approval policy; older npms have none (they run every script). */
async function resolveAllowScripts(npm: UserNpm, config: AnyRecord): Promise<AnyRecord | null> {
  let resolver: ((npmLike: AnyRecord) => Promise<{ policy: AnyRecord | null }>) | undefined;
  try {
    resolver = npm.require('./lib/utils/resolve-allow-scripts.js');
  } catch {
    return null;
  }
  const npmLike = { config, global: Boolean(config.get('global')), prefix: config.localPrefix, localPrefix: config.localPrefix };
  try {
    const { policy } = await resolver!(npmLike);
    return policy ?? null;
  } catch (err) {
    throw new VeloError('BAD_INPUT', (err as Error).message, { cause: err });
  }
}

export function npmLibrary<T = any>(npm: UserNpm, name: string): T {
  return npm.require(name) as T;
}
