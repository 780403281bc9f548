/**
 * What `uv pip sync` / `uv pip install -r` would install, resolved by uv
 * itself for the target interpreter: `uv pip compile --format pylock.toml`
 * (`--no-deps` for sync, which installs exactly the files' requirements).
 * pylock.toml names every distribution with its version and the artifacts
 * it may come from (wheel file names, sha256 hashes, the sdist): the same
 * shape as a uv.lock package, so it gets the same package key (distKey.ts)
 * — a distribution a `velo uv sync` project stored is found for a
 * requirements.txt project too when uv lists the same artifacts.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseToml, type TomlTable, type TomlValue } from 'smol-toml';
import { VeloError } from '../errors.js';
import { runProcess, uvFailed } from './runUvProcess.js';
import type { LockArtifact, LockPackage } from './uvLock.js';

function isTable(v: TomlValue | undefined): v is TomlTable {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function fileNameOf(url: string): string {
  const last = url.split('#')[0]!.split('?')[0]!;
  return decodeURIComponent(last.slice(last.lastIndexOf('/') + 1));
}

function artifactOf(raw: TomlValue, what: string): LockArtifact {
  if (!isTable(raw)) throw new VeloError('TOOL_FAILED', `uv's pylock.toml: ${what} is not a table`);
  const url = typeof raw.url === 'string' ? raw.url : undefined;
  const path = typeof raw.path === 'string' ? raw.path : undefined;
  const name = typeof raw.name === 'string' ? raw.name : url ? fileNameOf(url) : path ? fileNameOf(path) : undefined;
  if (!name) throw new VeloError('TOOL_FAILED', `uv's pylock.toml: ${what} has no name, url or path`);
  const a: LockArtifact = { filename: name };
  if (url) a.url = url;
  if (path) a.path = path;
  const hashes = raw.hashes;
  if (isTable(hashes) && typeof hashes.sha256 === 'string') a.hash = `sha256:${hashes.sha256.toLowerCase()}`;
  if (typeof raw.size === 'number') a.size = raw.size;
  return a;
}

/** The packages of a pylock.toml (PEP 751) as uv writes it for `uv pip compile`; only index and URL artifacts. */
export function parsePylock(text: string): LockPackage[] {
  let doc: TomlTable;
  try {
    doc = parseToml(text);
  } catch (err) {
    throw new VeloError('TOOL_FAILED', `uv wrote a pylock.toml velo cannot read: ${(err as Error).message.split('\n')[0]}`);
  }
  const raw = doc.packages ?? [];
  if (!Array.isArray(raw)) throw new VeloError('TOOL_FAILED', 'uv\'s pylock.toml: `packages` is not an array');
  return raw.map((p, i) => {
    if (!isTable(p) || typeof p.name !== 'string' || typeof p.version !== 'string') {
      throw new VeloError('TOOL_FAILED', `uv's pylock.toml: package #${i + 1} has no name or version`);
    }
    if (p.vcs !== undefined || p.directory !== undefined || p.archive !== undefined) {
      throw new VeloError('TOOL_FAILED', `uv's pylock.toml: ${p.name} comes from a local or VCS source`);
    }
    const wheels = Array.isArray(p.wheels) ? p.wheels.map((w, j) => artifactOf(w, `${p.name} wheel #${j + 1}`)) : [];
    const pkg: LockPackage = {
      name: p.name,
      version: p.version,
      source: { kind: 'registry', value: typeof p.index === 'string' ? p.index : '' },
      wheels,
      dependencies: [],
      optionalDependencies: {},
      devDependencies: {},
    };
    if (p.sdist !== undefined) pkg.sdist = artifactOf(p.sdist, `${p.name} sdist`);
    if (wheels.length === 0 && !pkg.sdist) throw new VeloError('TOOL_FAILED', `uv's pylock.toml: ${p.name} has no wheel and no sdist`);
    return pkg;
  });
}

export interface ResolveOptions {
  uv: string;
  python: string;
  files: string[];
  noDeps: boolean;
  uvOptions: string[];
  /** a directory of velo's own for the output file */
  work: string;
  cwd: string;
  env: NodeJS.ProcessEnv;
}

/**
 * Every artifact of each resolved version, as a uv.lock lists them: the
 * resolution above names only the wheels this interpreter could install,
 * uv.lock all of a version's wheels (for every platform). Asked of uv as a
 * universal resolution of the exact pins (`--universal --no-deps`), so the
 * keys of a requirements.txt venv and of a uv.lock project meet. Best
 * effort: undefined when uv cannot answer (the caller keys by the
 * interpreter's artifacts instead).
 */
export async function resolveAllArtifacts(o: Omit<ResolveOptions, 'files' | 'noDeps' | 'python'> & { pins: LockPackage[]; pythonVersion: string; indexOptions: string[] }): Promise<string | undefined> {
  const pins = join(o.work, 'pins.txt');
  writeFileSync(pins, [...o.indexOptions, ...o.pins.map((p) => `${p.name}==${p.version}`), ''].join('\n'));
  const out = join(o.work, 'pylock.all.toml');
  const args = ['pip', 'compile', pins, '--universal', '--no-deps', '--python-version', o.pythonVersion, '--format', 'pylock.toml', '--no-header', '--quiet', '-o', out, ...o.uvOptions];
  const r = await runProcess(o.uv, args, { cwd: o.cwd, env: o.env });
  return r.code === 0 ? readFileSync(out, 'utf8') : undefined;
}

/** uv's resolution of the requirement files for this interpreter (its pylock.toml). uv's errors pass through with its exit code. */
export async function resolveWithUv(o: ResolveOptions): Promise<string> {
  const out = join(o.work, 'pylock.toml');
  const args = ['pip', 'compile', ...o.files, '--python', o.python, '--format', 'pylock.toml', '--no-header', '--quiet', '-o', out, ...(o.noDeps ? ['--no-deps'] : []), ...o.uvOptions];
  const r = await runProcess(o.uv, args, { cwd: o.cwd, env: o.env });
  if (r.code !== 0) throw uvFailed('uv pip compile failed', o.uv, args, r);
  return readFileSync(out, 'utf8');
}
