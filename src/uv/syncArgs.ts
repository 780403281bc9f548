/**
 * `velo uv sync [uv sync arguments]`: sort the arguments into what goes to
 * `uv lock`, what goes to `uv sync`, what velo handles itself, and what
 * decides the environment's contents (the no-op fingerprint). Kept light:
 * the no-op path imports this. native/src/launch/uv_noop.c repeats these
 * tables and parseSyncArgs() for the launcher (test/uv.noop.test.ts checks
 * the tables are the same).
 */
import { VeloError } from '../errors.js';

/** uv sync options (uv 0.13) that take a value, long and short spellings. */
export const VALUE_OPTIONS: ReadonlySet<string> = new Set([
  '--extra', '--output-format', '--no-extra', '--group', '--no-group', '--only-group', '--no-editable-package',
  '--no-install-package', '--package', '--script', '--python-platform', '--index', '--default-index', '--index-url', '-i',
  '--extra-index-url', '--find-links', '-f', '--index-strategy', '--keyring-provider', '--upgrade-package', '-P',
  '--upgrade-group', '--resolution', '--prerelease', '--prerelease-package', '--fork-strategy', '--exclude-newer',
  '--exclude-newer-package', '--no-sources-package', '--reinstall-package', '--link-mode', '--config-setting', '-C',
  '--config-settings-package', '--no-build-isolation-package', '--no-build-package', '--no-binary-package', '--cache-dir',
  '--refresh-package', '--python', '-p', '--color', '--allow-insecure-host', '--directory', '--project', '--config-file',
  '--projection', // velo's own
]);

/** Options `uv sync` has and `uv lock` does not: they stay off the lock step. */
const SYNC_ONLY = new Set([
  '--active', '--all-extras', '--all-groups', '--all-packages', '--compile-bytecode', '--extra', '--group', '--inexact',
  '--no-default-groups', '--no-dev', '--no-editable', '--no-editable-package', '--no-extra', '--no-group', '--no-install-local',
  '--no-install-package', '--no-install-project', '--no-install-workspace', '--only-dev', '--only-group', '--output-format',
  '--package', '--python-platform', '--reinstall', '--reinstall-package', '--link-mode',
]);

/** Options that never change what ends up in the environment. */
export const NOT_IN_FINGERPRINT: ReadonlySet<string> = new Set([
  '--locked', '--frozen', '--offline', '--quiet', '-q', '--verbose', '-v', '--color', '--no-progress', '--cache-dir',
  '--no-cache', '-n', '--allow-insecure-host', '--system-certs', '--keyring-provider', '--link-mode', '--compile-bytecode',
  '--directory', '--project', '--json',
  // these ask for fresh work now; what they produce is in uv.lock and the environment
  '--reinstall', '--reinstall-package', '--refresh', '--refresh-package', '--upgrade', '-U', '--upgrade-package', '-P', '--upgrade-group',
]);

/** Options that must always take the full path (they ask for fresh work). */
export const FORCE_FULL: ReadonlySet<string> = new Set(['--upgrade', '-U', '--upgrade-package', '-P', '--upgrade-group', '--reinstall', '--reinstall-package', '--refresh', '--refresh-package']);

/** Options velo refuses, with the reason. */
export const REFUSED: Readonly<Record<string, string>> = {
  '--active': 'velo builds the project environment; run plain `uv sync --active` for an activated one',
  '--inexact': 'velo builds the environment whole from the store, so it is always exact',
  '--script': 'velo uv sync works on projects, not PEP 723 scripts',
  '--python-platform': 'velo installs for the interpreter it runs, not for another platform',
  '--output-format': 'use --json for velo\'s own summary',
};

export type LockMode = 'locked' | 'frozen' | 'default';

export interface SyncArgs {
  /** print velo's JSON summary */
  json: boolean;
  /** velo's --projection (link or mount); undefined: the configured default */
  projection?: 'link' | 'mount';
  /** --dry-run / --check: nothing to build; uv answers about the environment directly */
  delegate: boolean;
  lockMode: LockMode;
  offline: boolean;
  /** --compile-bytecode: velo compiles every module once into the store (else python compiles what gets imported, and velo harvests it) */
  compileBytecode: boolean;
  /** skip the no-op shortcut (--reinstall re-links every distribution from the store; --upgrade, --refresh) */
  forceFull: boolean;
  /** passed to every `uv sync` velo runs (no --locked/--frozen/--dry-run) */
  syncArgs: string[];
  /** passed to `uv lock` */
  lockArgs: string[];
  /** the user's own --no-install-package values */
  noInstall: string[];
  /** what decides the environment's contents, in order */
  fingerprint: string[];
  directory?: string;
  project?: string;
  /** the arguments exactly as given */
  original: string[];
  /** the arguments without velo's own (--json, --projection): what uv gets when velo delegates */
  forUv: string[];
}

export interface Token {
  name: string;
  value?: string;
  /** the argument(s) as given */
  raw: string[];
}

export function tokenize(argv: string[]): Token[] {
  const tokens: Token[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg.startsWith('--') && arg.includes('=')) {
      const eq = arg.indexOf('=');
      tokens.push({ name: arg.slice(0, eq), value: arg.slice(eq + 1), raw: [arg] });
      continue;
    }
    if (/^-[a-zA-Z]./.test(arg) && VALUE_OPTIONS.has(arg.slice(0, 2))) {
      const value = arg[2] === '=' ? arg.slice(3) : arg.slice(2);
      tokens.push({ name: arg.slice(0, 2), value, raw: [arg] });
      continue;
    }
    if (VALUE_OPTIONS.has(arg)) {
      const value = argv[i + 1];
      if (value === undefined) throw new VeloError('USAGE', `${arg} needs a value`);
      tokens.push({ name: arg, value, raw: [arg, value] });
      i++;
      continue;
    }
    tokens.push({ name: arg, raw: [arg] });
  }
  return tokens;
}

export function parseSyncArgs(argv: string[]): SyncArgs {
  const r: SyncArgs = {
    json: false,
    delegate: false,
    lockMode: 'default',
    offline: false,
    compileBytecode: false,
    forceFull: false,
    syncArgs: [],
    lockArgs: [],
    noInstall: [],
    fingerprint: [],
    original: argv,
    forUv: [],
  };
  for (const t of tokenize(argv)) {
    const refused = REFUSED[t.name];
    if (refused) throw new VeloError('USAGE', `velo uv sync does not take ${t.name}: ${refused}`);
    if (t.name !== '--json' && t.name !== '--projection') r.forUv.push(...t.raw);
    switch (t.name) {
      case '--json':
        r.json = true;
        continue;
      case '--projection':
        if (t.value !== 'link' && t.value !== 'mount') throw new VeloError('USAGE', `--projection must be link or mount (got ${JSON.stringify(t.value)})`);
        r.projection = t.value;
        continue;
      case '--dry-run':
      case '--check':
        r.delegate = true;
        continue;
      case '--locked':
        if (r.lockMode === 'frozen') throw new VeloError('USAGE', '--locked and --frozen cannot be used together');
        r.lockMode = 'locked';
        continue;
      case '--frozen':
        if (r.lockMode === 'locked') throw new VeloError('USAGE', '--locked and --frozen cannot be used together');
        r.lockMode = 'frozen';
        continue;
      case '--compile-bytecode':
        r.compileBytecode = true;
        continue; // velo compiles bytecode into the store itself
      case '--link-mode':
        continue; // velo projects files itself
      case '--no-install-package':
        r.noInstall.push(t.value!);
        break;
      case '--directory':
        r.directory = t.value;
        break;
      case '--project':
        r.project = t.value;
        break;
      case '--offline':
        r.offline = true;
        break;
    }
    if (FORCE_FULL.has(t.name)) r.forceFull = true;
    // --reinstall is velo's business (it re-links from the store); uv installs into a fresh scratch environment anyway
    if (t.name !== '--reinstall' && t.name !== '--reinstall-package') r.syncArgs.push(...t.raw);
    if (!SYNC_ONLY.has(t.name)) r.lockArgs.push(...t.raw);
    if (!NOT_IN_FINGERPRINT.has(t.name)) r.fingerprint.push(...t.raw);
  }
  return r;
}
