/**
 * One distribution as an installer left it in an environment, read through
 * its RECORD: every listed file checked (inside the environment, present,
 * a regular file, the hash and size RECORD promises) and sorted into
 *  - shared files: the same bytes in every environment (code, data, headers,
 *    binaries in bin/),
 *  - launchers: scripts whose first line names this environment's python
 *    (console-script launchers and rewritten `#!python` wheel scripts); the
 *    rest of the file is shared, the shebang is written per environment,
 *  - per-environment metadata: INSTALLER, REQUESTED, direct_url.json, and
 *    RECORD itself (rewritten per environment for the launchers' hashes).
 */
import { createHash } from 'node:crypto';
import { createReadStream, lstatSync, readFileSync, readdirSync } from 'node:fs';
import { isAbsolute, join, posix, relative, resolve, sep } from 'node:path';
import { VeloError, errnoCode, fsError } from '../errors.js';
import { parseRecord, type RecordRow } from './record.js';
import { stripShebang } from './shebang.js';

export type FileRole = 'shared' | 'launcher' | 'per-env';

export interface InstalledFile {
  /** path relative to the environment root, '/'-separated */
  rel: string;
  /** the path as RECORD writes it (relative to site-packages) */
  recordPath: string;
  abs: string;
  size: number;
  exec: boolean;
  role: FileRole;
  /** a launcher's contents after the shebang */
  body?: Buffer;
}

export interface InstalledDistribution {
  name: string;
  version: string;
  /** e.g. velo_greet-1.0.0.dist-info */
  distInfo: string;
  /** RECORD's path relative to the environment root */
  recordRel: string;
  recordText: string;
  rows: RecordRow[];
  files: InstalledFile[];
}

/** dist-info files that are written per environment, never shared. */
export const PER_ENV_METADATA = new Set(['INSTALLER', 'REQUESTED', 'direct_url.json']);

/** Files larger than this are hashed as a stream instead of read whole. */
const WHOLE_READ_LIMIT = 64 * 1024 * 1024;

function toPosix(p: string): string {
  return sep === '/' ? p : p.split(sep).join('/');
}

/** The .dist-info directories in a site-packages directory. */
export function listDistInfos(sitePackagesAbs: string): string[] {
  try {
    return readdirSync(sitePackagesAbs).filter((n) => n.endsWith('.dist-info')).sort();
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return [];
    throw fsError(err, `cannot list ${sitePackagesAbs}`);
  }
}

/** name and version from METADATA (the dist-info directory name is normalized and lossy) */
export function readNameVersion(metadataPath: string, distInfo: string): { name: string; version: string } {
  let text = '';
  try {
    text = readFileSync(metadataPath, 'utf8');
  } catch (err) {
    throw new VeloError('INTEGRITY', `${distInfo} has no readable METADATA: ${(err as Error).message}`, { cause: err });
  }
  const head = text.split(/\r?\n\r?\n/, 1)[0] ?? '';
  const name = /^Name:\s*(.+)$/m.exec(head)?.[1]?.trim();
  const version = /^Version:\s*(.+)$/m.exec(head)?.[1]?.trim();
  if (!name || !version) throw new VeloError('INTEGRITY', `${distInfo}/METADATA has no Name or Version`);
  return { name: normalizeName(name), version };
}

export function normalizeName(name: string): string {
  return name.toLowerCase().replace(/[-_.]+/g, '-');
}

async function streamHash(path: string, algorithm: string): Promise<string> {
  const h = createHash(algorithm);
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
  return h.digest('base64url');
}

const RECORD_ALGORITHMS = new Set(['sha256', 'sha384', 'sha512']);

export interface ReadOptions {
  envDir: string;
  /** site-packages relative to envDir, '/'-separated */
  sitePackages: string;
  /** the environment's python, as launchers name it (<env>/bin/python) */
  python: string;
}

/** Read and check one installed distribution. */
export async function readInstalledDistribution(distInfo: string, o: ReadOptions): Promise<InstalledDistribution> {
  const spAbs = join(o.envDir, o.sitePackages);
  const recordAbs = join(spAbs, distInfo, 'RECORD');
  const { name, version } = readNameVersion(join(spAbs, distInfo, 'METADATA'), distInfo);
  const label = `${name} ${version}`;
  let recordText: string;
  try {
    recordText = readFileSync(recordAbs, 'utf8');
  } catch (err) {
    throw new VeloError('INTEGRITY', `${label}: cannot read its RECORD (${(err as Error).message})`, { cause: err });
  }
  const rows = parseRecord(recordText);
  const recordRel = `${o.sitePackages}/${distInfo}/RECORD`;
  const files: InstalledFile[] = [];
  const seen = new Set<string>();
  for (const row of rows) {
    if (row.path === '') throw new VeloError('INTEGRITY', `${label}: its RECORD has an empty path`);
    if (isAbsolute(row.path) || /^[A-Za-z]:[\\/]/.test(row.path)) {
      throw new VeloError('UNSAFE_PATH', `${label}: RECORD lists the absolute path ${JSON.stringify(row.path)}, outside the environment`);
    }
    const abs = resolve(spAbs, row.path);
    const relNative = relative(o.envDir, abs);
    if (relNative === '' || relNative.startsWith('..') || isAbsolute(relNative)) {
      throw new VeloError('UNSAFE_PATH', `${label}: RECORD lists ${JSON.stringify(row.path)}, which resolves outside the environment (${abs})`);
    }
    const rel = toPosix(relNative);
    if (rel === recordRel) continue;
    if (seen.has(rel)) continue;
    seen.add(rel);
    let st;
    try {
      st = lstatSync(abs);
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') throw new VeloError('INTEGRITY', `${label}: RECORD lists ${row.path}, but it was not installed`);
      throw fsError(err, `cannot read ${abs}`);
    }
    if (st.isSymbolicLink()) throw new VeloError('UNSAFE_PATH', `${label}: ${row.path} is a symlink; velo accepts regular files from wheels`);
    if (!st.isFile()) throw new VeloError('UNSUPPORTED_FILE', `${label}: ${row.path} is not a regular file`);
    const exec = (st.mode & 0o100) !== 0;
    let data: Buffer | undefined;
    if (row.hash !== '') {
      const eq = row.hash.indexOf('=');
      const algorithm = row.hash.slice(0, eq);
      const expected = row.hash.slice(eq + 1);
      if (eq < 0 || !RECORD_ALGORITHMS.has(algorithm)) {
        throw new VeloError('INTEGRITY', `${label}: RECORD has an unknown hash ${JSON.stringify(row.hash)} for ${row.path}`);
      }
      let actual: string;
      if (st.size <= WHOLE_READ_LIMIT) {
        data = readFileSync(abs);
        actual = createHash(algorithm).update(data).digest('base64url');
      } else {
        actual = await streamHash(abs, algorithm);
      }
      if (actual !== expected.replace(/=+$/, '')) {
        throw new VeloError('INTEGRITY', `${label}: ${row.path} does not match its RECORD (${algorithm} ${actual}, RECORD says ${expected})`, {
          hint: 'the wheel is damaged or was tampered with; velo stores nothing from it',
        });
      }
    }
    if (row.size !== '' && Number(row.size) !== st.size) {
      throw new VeloError('INTEGRITY', `${label}: ${row.path} is ${st.size} bytes, its RECORD says ${row.size}`);
    }
    const file: InstalledFile = { rel, recordPath: row.path, abs, size: st.size, exec, role: 'shared' };
    const inDistInfo = rel.startsWith(`${o.sitePackages}/${distInfo}/`);
    if (inDistInfo && PER_ENV_METADATA.has(posix.basename(rel))) file.role = 'per-env';
    else if (rel.startsWith('bin/') && st.size <= WHOLE_READ_LIMIT) {
      data ??= readFileSync(abs);
      const body = stripShebang(data, o.python);
      if (body) {
        file.role = 'launcher';
        file.body = body;
      }
    }
    files.push(file);
  }
  return { name, version, distInfo, recordRel, recordText, rows, files };
}
