/**
 * A whole project's layout in the remote (docs/REMOTE.md, "Project records"):
 *
 *   <prefix>projects/<sha256(name)>.json
 *
 * The local whole-project manifest (src/npm/projectCache.ts) of one set of
 * install inputs — lockfile, package.json, npm config, arguments, platform,
 * libc, Node ABI, npm and velo versions — with the trees it lays out and the
 * hidden lockfile inside it. A fresh machine with the same inputs reads this
 * one object instead of planning the lockfile with npm's libraries, then
 * fills the package keys it names as usual (their bundle in one GET). It is
 * written after those keys and their bundle: a reader never finds a record
 * whose keys are missing.
 *
 * Untrusted like everything in the remote: the trees and the hidden lockfile
 * are re-hashed, every layout directory must be a `node_modules` inside the
 * project, every input path relative and inside it.
 */
import { createHash } from 'node:crypto';
import { zstdCompressSync, zstdDecompressSync } from 'node:zlib';
import { VeloError } from '../errors.js';
import { hashBuffer, isDigest } from '../store/hash.js';
import { parseTree } from '../store/treeFormat.js';
import { REMOTE_FORMAT } from './remoteLayout.js';

/** the most a record may unpack to (trees of a very large monorepo fit; memory stays bounded) */
export const PROJECT_RECORD_MAX = 256 << 20;

export function projectObjectName(prefix: string, name: string): string {
  return `${prefix}projects/${createHash('sha256').update(name).digest('hex')}.json`;
}

/** What a project record holds, decoded and checked. */
export interface ProjectRecord {
  name: string;
  /** layout directory (relative, ends in node_modules) → its tree's digest */
  dirs: Record<string, string>;
  /** the serialized trees of `dirs`, each hashing to its digest */
  trees: Map<string, Buffer>;
  /** node_modules/.package-lock.json: its digest and bytes */
  hiddenLockfile: string;
  hidden: Buffer;
  /** the package keys the trees are made of (each must come from the remote or the store) */
  keys: string[];
  /** workspace package.json files (relative) → sha256 of their bytes */
  extraInputs: Record<string, string>;
  packages: number;
}

/**
 * A record to publish, as the publisher first sees it: whether it is needed
 * (its keys all in the remote, not yet recorded as published) is decided
 * without reading its trees or encoding it — a warm install with a remote
 * asks that every time.
 */
export interface ProjectToPublish {
  name: string;
  /** the package keys it names: every one must be in the remote first */
  keys: string[];
  /** what its content is made of (digests and names), for this store's publish record */
  id: string;
  /** the record itself, read from the store; undefined when the store cannot give it */
  load(): ProjectRecord | undefined;
}

interface RecordBody {
  v: number;
  name: string;
  dirs: Record<string, string>;
  /** digest → base64 of the zstd-compressed serialized tree */
  trees: Record<string, string>;
  hiddenLockfile: string;
  hidden: string;
  keys: string[];
  extraInputs: Record<string, string>;
  packages: number;
}

export function encodeProjectRecord(r: ProjectRecord): Buffer {
  const z = (b: Buffer): string => zstdCompressSync(b).toString('base64');
  const body: RecordBody = {
    v: REMOTE_FORMAT,
    name: r.name,
    dirs: r.dirs,
    trees: Object.fromEntries([...r.trees].map(([d, b]) => [d, z(b)])),
    hiddenLockfile: r.hiddenLockfile,
    hidden: z(r.hidden),
    keys: r.keys,
    extraInputs: r.extraInputs,
    packages: r.packages,
  };
  return Buffer.from(JSON.stringify(body));
}

/** A relative path inside the project: no empty, '.' or '..' component, no leading '/', no backslash or NUL. */
function insideProject(rel: string): boolean {
  if (rel === '' || rel.startsWith('/') || /[\\\0]/.test(rel)) return false;
  return rel.split('/').every((c) => c !== '' && c !== '.' && c !== '..');
}

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Parse and check a project record from the (untrusted) remote; throws BAD_INPUT when it is not a good one for `expectedName`. */
export function decodeProjectRecord(data: Buffer, expectedName: string): ProjectRecord {
  const bad = (why: string): never => {
    throw new VeloError('BAD_INPUT', `remote project record: ${why}`);
  };
  let raw: Partial<RecordBody>;
  try {
    raw = JSON.parse(data.toString('utf8')) as Partial<RecordBody>;
  } catch {
    return bad('not JSON');
  }
  if (!isRecord(raw) || raw.v !== REMOTE_FORMAT) bad('unknown format');
  if (raw.name !== expectedName) bad(`names ${JSON.stringify(raw.name)}`);
  if (!isRecord(raw.dirs) || Object.keys(raw.dirs).length === 0) bad('no layout');
  for (const [dir, tree] of Object.entries(raw.dirs!)) {
    if (!insideProject(dir) || !(dir === 'node_modules' || dir.endsWith('/node_modules'))) bad(`layout directory ${JSON.stringify(dir)} is not a node_modules inside the project`);
    if (typeof tree !== 'string' || !isDigest(tree)) bad(`no tree digest for ${dir}`);
  }
  if (!isRecord(raw.trees)) bad('no trees');
  const unpack = (b64: unknown, what: string): Buffer => {
    if (typeof b64 !== 'string' || !/^[A-Za-z0-9+/]*={0,2}$/.test(b64)) return bad(`${what} is not base64`);
    try {
      return zstdDecompressSync(Buffer.from(b64, 'base64'), { maxOutputLength: PROJECT_RECORD_MAX });
    } catch {
      return bad(`${what} does not decompress`);
    }
  };
  const trees = new Map<string, Buffer>();
  for (const digest of new Set(Object.values(raw.dirs!) as string[])) {
    const tree = unpack(raw.trees![digest], `tree ${digest}`);
    if (hashBuffer(tree) !== digest) bad(`tree ${digest} does not match its digest`);
    try {
      parseTree(tree);
    } catch (err) {
      bad(`tree ${digest}: ${(err as Error).message}`);
    }
    trees.set(digest, tree);
  }
  if (typeof raw.hiddenLockfile !== 'string' || !isDigest(raw.hiddenLockfile)) bad('no hidden lockfile digest');
  const hidden = unpack(raw.hidden, 'the hidden lockfile');
  if (hashBuffer(hidden) !== raw.hiddenLockfile) bad('the hidden lockfile does not match its digest');
  if (!Array.isArray(raw.keys) || !raw.keys.every((k) => typeof k === 'string' && k.length > 0)) bad('bad key list');
  if (!isRecord(raw.extraInputs)) bad('bad inputs');
  for (const [rel, digest] of Object.entries(raw.extraInputs!)) {
    // a file absent when the record was made is '<absent>' (projectCache.ts)
    if (!insideProject(rel) || typeof digest !== 'string' || !(/^[0-9a-f]{64}$/.test(digest) || digest === '<absent>')) bad(`bad input ${JSON.stringify(rel)}`);
  }
  if (typeof raw.packages !== 'number' || !Number.isSafeInteger(raw.packages) || raw.packages < 0) bad('bad package count');
  return {
    name: expectedName,
    dirs: raw.dirs as Record<string, string>,
    trees,
    hiddenLockfile: raw.hiddenLockfile!,
    hidden,
    keys: raw.keys!,
    extraInputs: raw.extraInputs as Record<string, string>,
    packages: raw.packages!,
  };
}
