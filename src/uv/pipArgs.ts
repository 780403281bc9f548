/**
 * The arguments of `velo uv pip sync <files>` and `velo uv pip install -r
 * <file>`: the requirement files, the environment (--python), and the uv
 * options velo passes on to every uv command it runs for them (index,
 * cache, resolution settings). Anything else means the command is uv's:
 * `delegate` says why, and velo runs it with uv as given.
 */
import { tokenize } from './syncArgs.js';

export type PipMode = 'sync' | 'install';

export interface PipArgs {
  mode: PipMode;
  json: boolean;
  requirementFiles: string[];
  /** --python / -p as given */
  python?: string;
  /** options every uv run for this command gets (index, cache, resolution settings) */
  uvOptions: string[];
  /** options that change what is resolved or installed (part of the resolution memo's key) */
  fingerprint: string[];
  /** --require-hashes: every requirement must carry --hash (as uv checks) */
  requireHashes: boolean;
  /** --refresh / --upgrade: ask the index again (no resolution memo) */
  refresh: boolean;
  /** --compile-bytecode: every module of what is installed is compiled into the store (else python compiles what gets imported) */
  compileBytecode: boolean;
  /** why velo leaves this command to uv, when it does */
  delegate?: string;
  /** the arguments without velo's own (--json): what uv gets when velo delegates */
  forUv: string[];
}

/** Options passed on to `uv pip compile` and the scratch `uv pip install` as they are. */
const PASSED = new Set([
  '--index-url', '-i', '--extra-index-url', '--default-index', '--index', '--index-strategy', '--keyring-provider', '--no-index',
  '--offline', '--cache-dir', '--no-cache', '-n', '--no-config', '--config-file', '--exclude-newer', '--prerelease', '--resolution',
  '--only-binary', '--no-binary', '--no-build', '--no-sources', '--allow-insecure-host', '--native-tls', '--refresh', '--upgrade', '-U',
]);

/** Not passed to uv: velo compiles bytecode itself (--compile-bytecode is noted above), and links files itself. */
const IGNORED = new Set(['--compile-bytecode', '--link-mode', '--quiet', '-q', '--verbose', '-v', '--strict', '--no-progress', '--verify-hashes']);

export function parsePipArgs(mode: PipMode, argv: string[]): PipArgs {
  const r: PipArgs = { mode, json: false, requirementFiles: [], uvOptions: [], fingerprint: [], requireHashes: false, compileBytecode: false, refresh: false, forUv: [] };
  let tokens;
  try {
    tokens = tokenize(argv);
  } catch (err) {
    return { ...r, delegate: (err as Error).message, forUv: argv.filter((a) => a !== '--json') };
  }
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i]!;
    if (t.name === '--json') {
      r.json = true;
      continue;
    }
    r.forUv.push(...t.raw);
    if (mode === 'install' && (t.name === '-r' || t.name === '--requirements' || t.name === '--requirement' || t.name.startsWith('-r'))) {
      const value = t.value ?? (t.name.length > 2 && !t.name.startsWith('--') ? t.name.slice(2) : tokens[i + 1]?.raw[0]);
      if (value === undefined) r.delegate ??= `${t.name} needs a file`;
      else {
        r.requirementFiles.push(value);
        if (t.value === undefined && !(t.name.length > 2 && !t.name.startsWith('--'))) r.forUv.push(tokens[++i]!.raw[0]!);
      }
      continue;
    }
    if (t.name === '--python' || t.name === '-p') {
      r.python = t.value;
      continue;
    }
    if (t.name === '--require-hashes') {
      r.requireHashes = true;
      continue;
    }
    if (t.name === '--compile-bytecode') r.compileBytecode = true;
    if (IGNORED.has(t.name)) continue;
    if (PASSED.has(t.name)) {
      r.uvOptions.push(...t.raw);
      if (t.name === '--refresh' || t.name === '--upgrade' || t.name === '-U') r.refresh = true;
      else r.fingerprint.push(...t.raw);
      continue;
    }
    if (mode === 'sync' && !t.name.startsWith('-')) {
      r.requirementFiles.push(t.name);
      continue;
    }
    r.delegate ??= t.name.startsWith('-') ? `velo does not model ${t.name}` : `package arguments (${t.name}); velo installs requirement files`;
  }
  if (r.requirementFiles.length === 0) r.delegate ??= mode === 'sync' ? 'no requirements file given' : 'no -r requirements file given';
  return r;
}
