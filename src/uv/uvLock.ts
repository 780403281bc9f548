/**
 * uv.lock, read for what velo needs: every package's name, version, source,
 * and the wheels/sdist it may be installed from (file name and hash). uv
 * resolves and writes the file; velo only reads it, and refuses one it does
 * not understand with the file, line and problem named.
 */
import { readFileSync } from 'node:fs';
import { VeloError, fsError } from '../errors.js';
import { parse as parseToml, TomlError, type TomlTable, type TomlValue } from 'smol-toml';

/** Lock versions this velo reads (uv.lock `version`). */
export const SUPPORTED_LOCK_VERSIONS = [1];

export type LockSourceKind = 'registry' | 'url' | 'git' | 'editable' | 'directory' | 'path' | 'virtual';

export interface LockSource {
  kind: LockSourceKind;
  /** the URL or path as written in uv.lock */
  value: string;
  subdirectory?: string;
}

export interface LockArtifact {
  /** the wheel or sdist file name */
  filename: string;
  url?: string;
  path?: string;
  /** "sha256:<hex>" when the index gave one */
  hash?: string;
  size?: number;
}

/** One edge of the locked graph: `{ name, version?, source?, marker?, extra? }`. */
export interface LockDependency {
  name: string;
  /** set when uv.lock holds several versions of `name` (a forked resolution) */
  version?: string;
  source?: LockSource;
  /** a PEP 508 marker: the edge applies where it holds */
  marker?: string;
  /** the extras of `name` this edge asks for */
  extra: string[];
}

export interface LockPackage {
  name: string;
  version: string;
  source: LockSource;
  wheels: LockArtifact[];
  sdist?: LockArtifact;
  dependencies: LockDependency[];
  /** extra → edges (`[package.optional-dependencies]`) */
  optionalDependencies: Record<string, LockDependency[]>;
  /** dependency group → edges (`[package.dev-dependencies]`) */
  devDependencies: Record<string, LockDependency[]>;
}

export interface UvLock {
  path: string;
  version: number;
  revision: number;
  requiresPython?: string;
  packages: LockPackage[];
  /** `[manifest] members`: the workspace members, when the lock names them */
  members: string[];
}

/** Distributions with these sources are immutable artifacts: velo keys and shares them. */
export function isShareable(source: LockSource): boolean {
  return source.kind === 'registry' || source.kind === 'url';
}

function lockError(path: string, problem: string): VeloError {
  // exit 2, as uv exits on a uv.lock it cannot read
  return new VeloError('LOCKFILE', `${path} is not a valid uv.lock: ${problem}`, {
    exitCode: 2,
    hint: 'regenerate it with `uv lock` (velo never edits uv.lock)',
  });
}

export function readUvLock(path: string): UvLock {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw fsError(err, `cannot read ${path}`);
  }
  return parseUvLock(text, path);
}

export function parseUvLock(text: string, path: string): UvLock {
  let doc: TomlTable;
  try {
    doc = parseToml(text);
  } catch (err) {
    if (err instanceof TomlError) throw lockError(path, tomlProblem(err));
    throw err;
  }
  const version = doc.version;
  if (typeof version !== 'number') throw lockError(path, 'the top-level `version` is missing');
  if (!SUPPORTED_LOCK_VERSIONS.includes(version)) {
    throw lockError(path, `lock version ${version} is not supported (this velo reads version ${SUPPORTED_LOCK_VERSIONS.join(', ')})`);
  }
  const revision = typeof doc.revision === 'number' ? doc.revision : 0;
  const rawPackages = doc.package ?? [];
  if (!Array.isArray(rawPackages)) throw lockError(path, '`package` must be an array of tables ([[package]])');
  const packages = rawPackages.map((raw, i) => readPackage(path, raw, i));
  const manifest = doc.manifest;
  const members = isTable(manifest) && Array.isArray(manifest.members) ? manifest.members.filter((m): m is string => typeof m === 'string') : [];
  const lock: UvLock = { path, version, revision, packages, members };
  if (typeof doc['requires-python'] === 'string') lock.requiresPython = doc['requires-python'];
  return lock;
}

/** smol-toml's error as one line: where, then what ("line 3, column 7: invalid value"). */
function tomlProblem(err: TomlError): string {
  const what = (err.message.split('\n')[0] ?? '').replace(/^Invalid TOML document: /, '');
  return `line ${err.line}, column ${err.column}: ${what}`;
}

function isTable(v: TomlValue | undefined): v is TomlTable {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

const SOURCE_KINDS: LockSourceKind[] = ['registry', 'url', 'git', 'editable', 'directory', 'path', 'virtual'];
const NAME = /^[a-z0-9]([a-z0-9._-]*[a-z0-9])?$/;

function readPackage(path: string, raw: TomlValue, index: number): LockPackage {
  const where = `[[package]] #${index + 1}`;
  if (!isTable(raw)) throw lockError(path, `${where} is not a table`);
  const name = raw.name;
  if (typeof name !== 'string' || !NAME.test(name)) throw lockError(path, `${where} has no valid \`name\` (got ${JSON.stringify(name)})`);
  const label = `package ${JSON.stringify(name)}`;
  const version = raw.version;
  if (version !== undefined && typeof version !== 'string') throw lockError(path, `${label} has a non-string \`version\``);
  const source = readSource(path, label, raw.source);
  const wheels: LockArtifact[] = [];
  if (raw.wheels !== undefined) {
    if (!Array.isArray(raw.wheels)) throw lockError(path, `${label}: \`wheels\` must be an array`);
    raw.wheels.forEach((w, i) => wheels.push(readArtifact(path, `${label} wheel #${i + 1}`, w)));
    for (const w of wheels) {
      if (!w.filename.endsWith('.whl')) throw lockError(path, `${label}: wheel ${JSON.stringify(w.filename)} is not a .whl file`);
    }
  }
  const pkg: LockPackage = {
    name,
    version: version ?? '',
    source,
    wheels,
    dependencies: readDependencies(path, `${label} dependencies`, raw.dependencies),
    optionalDependencies: readDependencyTable(path, `${label} optional-dependencies`, raw['optional-dependencies']),
    devDependencies: readDependencyTable(path, `${label} dev-dependencies`, raw['dev-dependencies']),
  };
  if (raw.sdist !== undefined) pkg.sdist = readArtifact(path, `${label} sdist`, raw.sdist);
  if (pkg.version === '' && isShareable(source)) throw lockError(path, `${label} from a ${source.kind} source has no \`version\``);
  return pkg;
}

function readSource(path: string, label: string, raw: TomlValue | undefined): LockSource {
  if (!isTable(raw)) throw lockError(path, `${label} has no \`source\` table`);
  const kinds = SOURCE_KINDS.filter((k) => raw[k] !== undefined);
  if (kinds.length !== 1) {
    throw lockError(path, `${label} has a source with ${kinds.length === 0 ? 'no known kind' : `several kinds (${kinds.join(', ')})`}: ${Object.keys(raw).join(', ')}`);
  }
  const kind = kinds[0]!;
  const value = raw[kind];
  if (typeof value !== 'string' || value === '') throw lockError(path, `${label}: source.${kind} must be a non-empty string`);
  const source: LockSource = { kind, value };
  if (typeof raw.subdirectory === 'string') source.subdirectory = raw.subdirectory;
  return source;
}

function readDependencies(path: string, label: string, raw: TomlValue | undefined): LockDependency[] {
  if (raw === undefined) return [];
  if (!Array.isArray(raw)) throw lockError(path, `${label} must be an array`);
  return raw.map((d, i) => {
    if (!isTable(d) || typeof d.name !== 'string' || !NAME.test(d.name)) throw lockError(path, `${label} #${i + 1} has no valid \`name\``);
    const dep: LockDependency = { name: d.name, extra: [] };
    if (typeof d.version === 'string') dep.version = d.version;
    if (d.source !== undefined) dep.source = readSource(path, `${label} ${JSON.stringify(d.name)}`, d.source);
    if (d.marker !== undefined) {
      if (typeof d.marker !== 'string') throw lockError(path, `${label} ${JSON.stringify(d.name)}: \`marker\` must be a string`);
      dep.marker = d.marker;
    }
    if (d.extra !== undefined) {
      if (!Array.isArray(d.extra) || !d.extra.every((e) => typeof e === 'string')) throw lockError(path, `${label} ${JSON.stringify(d.name)}: \`extra\` must be an array of strings`);
      dep.extra = d.extra as string[];
    }
    return dep;
  });
}

function readDependencyTable(path: string, label: string, raw: TomlValue | undefined): Record<string, LockDependency[]> {
  if (raw === undefined) return {};
  if (!isTable(raw)) throw lockError(path, `${label} must be a table`);
  const out: Record<string, LockDependency[]> = {};
  for (const [k, v] of Object.entries(raw)) out[k] = readDependencies(path, `${label}.${k}`, v);
  return out;
}

function basenameOf(urlOrPath: string): string {
  const noFragment = urlOrPath.split('#')[0]!.split('?')[0]!;
  const last = noFragment.slice(noFragment.lastIndexOf('/') + 1);
  try {
    return decodeURIComponent(last);
  } catch {
    return last;
  }
}

function readArtifact(path: string, label: string, raw: TomlValue): LockArtifact {
  if (!isTable(raw)) throw lockError(path, `${label} is not an inline table`);
  const url = typeof raw.url === 'string' ? raw.url : undefined;
  const p = typeof raw.path === 'string' ? raw.path : undefined;
  const explicit = typeof raw.filename === 'string' ? raw.filename : undefined;
  const filename = explicit ?? (url ? basenameOf(url) : p ? basenameOf(p) : undefined);
  if (!filename) throw lockError(path, `${label} has no \`url\`, \`path\` or \`filename\``);
  const artifact: LockArtifact = { filename };
  if (url) artifact.url = url;
  if (p) artifact.path = p;
  if (raw.hash !== undefined) {
    if (typeof raw.hash !== 'string' || !/^[a-z0-9]+:[0-9a-f]+$/.test(raw.hash)) {
      throw lockError(path, `${label} has a malformed \`hash\` ${JSON.stringify(raw.hash)} (expected "sha256:<hex>")`);
    }
    artifact.hash = raw.hash;
  }
  if (typeof raw.size === 'number') artifact.size = raw.size;
  return artifact;
}
