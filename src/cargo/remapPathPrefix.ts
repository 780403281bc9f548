/**
 * `cargo.remapPathPrefix`: rustc's `--remap-path-prefix=<workspace root>=<to>`
 * for every `velo cargo` build, from configuration.
 *
 * Without it, the debug info (and panic messages) of a binary names the
 * directory of the clone that compiled it — and a restored target holds
 * binaries another clone compiled. With it, the workspace root is written
 * as `<to>` (e.g. `.`: paths relative to the workspace, which a debugger
 * started in any clone resolves there).
 *
 * The flag names this clone's root, and rustflags are part of cargo's
 * fingerprint: a target built with it is fresh only in this clone. So it
 * is part of velo's snapshot key too — snapshots are then shared by this
 * clone's builds (a deleted target/, a branch switch), not across clones.
 *
 * Where cargo takes rustflags from decides how the flag is added: after
 * CARGO_ENCODED_RUSTFLAGS or RUSTFLAGS when the environment sets one (cargo
 * then ignores its config files' rustflags anyway), else as
 * `--config build.rustflags=[…]`, which cargo appends to the config
 * files' `build.rustflags` (a `target.<triple>.rustflags` in a config file
 * wins over build.rustflags, and then the flag is not used: cargo's rule).
 *
 * Settings, first found wins: VELO_CARGO_REMAP_PATH_PREFIX, velo.json's
 * `"cargo": { "remapPathPrefix": "…" }`, the user config file's same key.
 */
import { readFileSync } from 'node:fs';
import { VeloError } from '../errors.js';
import { userConfigPath } from '../config.js';
import type { CargoInvocation } from './cargoArgs.js';

const ENV = 'VELO_CARGO_REMAP_PATH_PREFIX';

function fromConfigObject(obj: unknown, source: string): string | undefined {
  if (!obj || typeof obj !== 'object' || Array.isArray(obj)) return undefined;
  const cargo = (obj as Record<string, unknown>).cargo;
  if (cargo === undefined) return undefined;
  if (!cargo || typeof cargo !== 'object' || Array.isArray(cargo)) throw new VeloError('BAD_INPUT', `${source}: "cargo" must be an object`);
  const value = (cargo as Record<string, unknown>).remapPathPrefix;
  if (value === undefined || value === '') return undefined;
  if (typeof value !== 'string' || value.includes('\x1f') || value.includes('\n')) {
    throw new VeloError('BAD_INPUT', `${source}: "cargo.remapPathPrefix" must be a path (a string), e.g. "." (got ${JSON.stringify(value)})`);
  }
  return value;
}

function readJson(path: string): unknown {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined; // the config loader reports a broken file
  }
}

/** The configured `<to>`, or undefined. `projectConfigPath`: the project's velo.json, when there is one. */
export function remapSetting(env: NodeJS.ProcessEnv, projectConfigPath: string | undefined): string | undefined {
  const fromEnv = env[ENV];
  if (fromEnv !== undefined && fromEnv !== '') {
    if (fromEnv.includes('\x1f') || fromEnv.includes('\n')) throw new VeloError('BAD_INPUT', `${ENV} must be a path, e.g. "."`);
    return fromEnv;
  }
  if (projectConfigPath) {
    const v = fromConfigObject(readJson(projectConfigPath), projectConfigPath);
    if (v !== undefined) return v;
  }
  const user = userConfigPath(env);
  return fromConfigObject(readJson(user), user);
}

/**
 * Add `--remap-path-prefix=<root>=<to>` to the rustflags cargo will use:
 * returns the environment to run cargo with (the invocation's cargoArgs and
 * extraRustflags are updated in place).
 */
export function applyRemap(inv: CargoInvocation, env: NodeJS.ProcessEnv, root: string, to: string): NodeJS.ProcessEnv {
  const flag = `--remap-path-prefix=${root}=${to}`;
  inv.extraRustflags = [flag];
  const encoded = env.CARGO_ENCODED_RUSTFLAGS;
  if (encoded !== undefined && encoded !== '') return { ...env, CARGO_ENCODED_RUSTFLAGS: `${encoded}\x1f${flag}` };
  const plain = env.RUSTFLAGS?.trim();
  if (plain) return { ...env, CARGO_ENCODED_RUSTFLAGS: [...plain.split(/\s+/), flag].join('\x1f') };
  const at = inv.subcommand === undefined ? -1 : inv.cargoArgs.indexOf(inv.subcommand);
  inv.cargoArgs.splice(at + 1, 0, `--config=build.rustflags=[${JSON.stringify(flag)}]`);
  return env;
}
