/**
 * The tree format, version 1 (docs/FORMAT.md): a 32-byte header, N 64-byte
 * entries in breadth-first order with each directory's children contiguous
 * and sorted bytewise, then a string table. Serialization is canonical.
 */
import { VeloError } from '../errors.js';
import { DIGEST_ALGORITHM_ID, DIGEST_BYTES } from './hash.js';

export type EntryKind = 'dir' | 'file' | 'symlink';

/** What a caller gives to serializeTree: one entry per path. */
export interface TreeEntry {
  /** relative, '/'-separated, no leading '/', never '.' or '..' components */
  path: string;
  kind: EntryKind;
  exec?: boolean;
  size?: number;
  /** hex digest of the contents (files) */
  digest?: string;
  /** symlink target (symlinks) */
  target?: string;
  /** nanoseconds since the epoch, used only when the tree carries mtimes */
  mtimeNs?: bigint;
  /** files only: always materialized as a private copy (or reflink), never hardlinked,
   *  because something will write into it (install scripts, cargo) */
  private?: boolean;
}

/** An entry read back from a serialized tree. */
export interface ParsedEntry {
  index: number;
  parent: number;
  name: string;
  /** '' for the root */
  path: string;
  kind: EntryKind;
  exec: boolean;
  private: boolean;
  size: number;
  mtimeNs: bigint;
  digest: string;
  target: string;
  firstChild: number;
  childCount: number;
}

export interface ParsedTree {
  version: number;
  hasMtimes: boolean;
  logicalSize: number;
  entries: ParsedEntry[];
}

const MAGIC = Buffer.from('VELOTREE', 'latin1');
export const TREE_VERSION = 1;
export const HEADER_SIZE = 32;
export const ENTRY_SIZE = 64;
const KIND_CODE: Record<EntryKind, number> = { dir: 1, file: 2, symlink: 3 };
const CODE_KIND: Record<number, EntryKind> = { 1: 'dir', 2: 'file', 3: 'symlink' };
const FLAG_MTIMES = 1;
const FLAG_EXEC = 1;
const FLAG_PRIVATE = 2;

interface Node {
  name: Buffer;
  entry: TreeEntry;
  children: Map<string, Node> | undefined;
}

export function checkName(name: string, path: string): void {
  if (name === '' || name === '.' || name === '..' || name.includes('/') || name.includes('\0')) {
    throw new VeloError('UNSAFE_PATH', `invalid path in tree: ${JSON.stringify(path)}`);
  }
  // what no filesystem (and the native reader) accepts: a tree holding it could never be laid out
  if (Buffer.byteLength(name) > 255) throw new VeloError('BAD_INPUT', `a name in the tree is longer than 255 bytes: ${JSON.stringify(path.slice(0, 300))}`);
}

function newDir(name: string, path: string): Node {
  return { name: Buffer.from(name, 'utf8'), entry: { path, kind: 'dir' }, children: new Map() };
}

/** Build the directory hierarchy, adding implicit parent directories. */
function buildHierarchy(entries: Iterable<TreeEntry>, root: TreeEntry | undefined): Node {
  const rootNode: Node = { name: Buffer.alloc(0), entry: root ?? { path: '', kind: 'dir' }, children: new Map() };
  for (const entry of entries) {
    if (entry.path === '' || entry.path === '.') {
      if (entry.kind !== 'dir') throw new VeloError('BAD_INPUT', 'the root of a tree must be a directory');
      rootNode.entry = entry;
      continue;
    }
    const parts = entry.path.split('/');
    let dir = rootNode;
    for (let i = 0; i < parts.length - 1; i++) {
      const part = parts[i]!;
      checkName(part, entry.path);
      let next = dir.children!.get(part);
      if (!next) {
        next = newDir(part, parts.slice(0, i + 1).join('/'));
        dir.children!.set(part, next);
      } else if (!next.children) {
        throw new VeloError('BAD_INPUT', `tree path ${JSON.stringify(entry.path)} goes through the non-directory ${JSON.stringify(next.entry.path)}`);
      }
      dir = next;
    }
    const leaf = parts[parts.length - 1]!;
    checkName(leaf, entry.path);
    const existing = dir.children!.get(leaf);
    if (existing) {
      if (existing.children && entry.kind === 'dir') {
        existing.entry = entry; // an explicit entry for an implicit directory
        continue;
      }
      throw new VeloError('BAD_INPUT', `duplicate path in tree: ${JSON.stringify(entry.path)}`);
    }
    dir.children!.set(leaf, {
      name: Buffer.from(leaf, 'utf8'),
      entry,
      children: entry.kind === 'dir' ? new Map() : undefined,
    });
  }
  return rootNode;
}

export interface SerializeOptions {
  /** store mtimes (cargo target dirs); default false */
  mtimes?: boolean;
  /** the root directory's own entry (for its mtime) */
  root?: TreeEntry;
}

export function serializeTree(entries: Iterable<TreeEntry>, options: SerializeOptions = {}): Buffer {
  const rootNode = buildHierarchy(entries, options.root);
  // breadth-first order, children sorted bytewise
  const order: Node[] = [rootNode];
  const firstChild: number[] = [];
  const childCount: number[] = [];
  const parentOf: number[] = [0];
  for (let i = 0; i < order.length; i++) {
    const node = order[i]!;
    if (node.children && node.children.size > 0) {
      const kids = [...node.children.values()].sort((a, b) => Buffer.compare(a.name, b.name));
      firstChild[i] = order.length;
      childCount[i] = kids.length;
      for (const kid of kids) {
        parentOf.push(i);
        order.push(kid);
      }
    } else {
      firstChild[i] = 0;
      childCount[i] = 0;
    }
  }
  const strings: Buffer[] = [];
  let stringLen = 0;
  const n = order.length;
  const head = Buffer.alloc(HEADER_SIZE + ENTRY_SIZE * n);
  let logical = 0n;
  const withMtimes = options.mtimes === true;
  for (let i = 0; i < n; i++) {
    const node = order[i]!;
    const e = node.entry;
    const off = HEADER_SIZE + ENTRY_SIZE * i;
    head.writeUInt8(KIND_CODE[e.kind], off);
    head.writeUInt8(e.kind === 'file' ? (e.exec ? FLAG_EXEC : 0) | (e.private ? FLAG_PRIVATE : 0) : 0, off + 1);
    head.writeUInt32LE(parentOf[i]!, off + 4);
    head.writeUInt32LE(stringLen, off + 8);
    head.writeUInt32LE(node.name.length, off + 12);
    strings.push(node.name);
    stringLen += node.name.length;
    if (withMtimes && e.mtimeNs !== undefined) head.writeBigInt64LE(e.mtimeNs, off + 24);
    if (e.kind === 'file') {
      const size = e.size ?? 0;
      if (!e.digest || e.digest.length !== DIGEST_BYTES * 2) {
        throw new VeloError('BAD_INPUT', `file entry ${JSON.stringify(e.path)} has no valid digest`);
      }
      head.writeBigUInt64LE(BigInt(size), off + 16);
      head.write(e.digest, off + 32, DIGEST_BYTES, 'hex');
      logical += BigInt(size);
    } else if (e.kind === 'dir') {
      head.writeUInt32LE(firstChild[i]!, off + 32);
      head.writeUInt32LE(childCount[i]!, off + 36);
    } else {
      const target = Buffer.from(e.target ?? '', 'utf8');
      if (target.length === 0 || target.includes(0)) {
        throw new VeloError('BAD_INPUT', `symlink entry ${JSON.stringify(e.path)} has an empty or invalid target`);
      }
      head.writeBigUInt64LE(BigInt(target.length), off + 16);
      head.writeUInt32LE(stringLen, off + 32);
      head.writeUInt32LE(target.length, off + 36);
      strings.push(target);
      stringLen += target.length;
    }
  }
  MAGIC.copy(head, 0);
  head.writeUInt16LE(TREE_VERSION, 8);
  head.writeUInt16LE(DIGEST_ALGORITHM_ID, 10);
  head.writeUInt32LE(withMtimes ? FLAG_MTIMES : 0, 12);
  head.writeUInt32LE(n, 16);
  head.writeUInt32LE(stringLen, 20);
  head.writeBigUInt64LE(logical, 24);
  return Buffer.concat([head, ...strings], head.length + stringLen);
}

function corrupt(why: string): VeloError {
  return new VeloError('CORRUPT_TREE', `corrupt tree: ${why}`);
}

export interface TreeHeader {
  version: number;
  hasMtimes: boolean;
  /** number of entries (the root included) */
  count: number;
  logicalSize: number;
  /** the root directory's mtime (0n when the tree has no mtimes) */
  rootMtimeNs: bigint;
}

/**
 * The header and the root's mtime only, checked for consistency: what a
 * caller needs when the native engine reads the entries itself (parsing a
 * 36,000-entry tree in JavaScript costs ~60 ms).
 */
export function readTreeHeader(buf: Buffer): TreeHeader {
  if (buf.length < HEADER_SIZE || !buf.subarray(0, 8).equals(MAGIC)) throw corrupt('bad magic');
  const version = buf.readUInt16LE(8);
  if (version !== TREE_VERSION) throw corrupt(`unknown version ${version}`);
  if (buf.readUInt16LE(10) !== DIGEST_ALGORITHM_ID) throw corrupt('unknown digest algorithm');
  const flags = buf.readUInt32LE(12);
  const count = buf.readUInt32LE(16);
  const stringLen = buf.readUInt32LE(20);
  if (count < 1 || HEADER_SIZE + ENTRY_SIZE * count + stringLen !== buf.length) throw corrupt('sizes do not match the header');
  const hasMtimes = (flags & FLAG_MTIMES) !== 0;
  return { version, hasMtimes, count, logicalSize: Number(buf.readBigUInt64LE(24)), rootMtimeNs: hasMtimes ? buf.readBigInt64LE(HEADER_SIZE + 24) : 0n };
}

export function parseTree(buf: Buffer): ParsedTree {
  const { version, hasMtimes, count: n, logicalSize } = readTreeHeader(buf);
  const stringLen = buf.readUInt32LE(20);
  const stringsAt = HEADER_SIZE + ENTRY_SIZE * n;
  const str = (off: number, len: number): string => {
    if (off + len > stringLen) throw corrupt('string out of bounds');
    return buf.toString('utf8', stringsAt + off, stringsAt + off + len);
  };
  const entries: ParsedEntry[] = new Array(n);
  for (let i = 0; i < n; i++) {
    const off = HEADER_SIZE + ENTRY_SIZE * i;
    const kind = CODE_KIND[buf.readUInt8(off)];
    if (!kind) throw corrupt(`entry ${i} has an unknown kind`);
    const parent = buf.readUInt32LE(off + 4);
    if (parent >= n || (i > 0 && parent >= i) || (i === 0 && parent !== 0)) throw corrupt(`entry ${i} has a bad parent`);
    if (i === 0 && kind !== 'dir') throw corrupt('the root is not a directory');
    const name = str(buf.readUInt32LE(off + 8), buf.readUInt32LE(off + 12));
    if (i > 0) {
      if (name === '' || name === '.' || name === '..' || name.includes('/') || name.includes('\0')) {
        throw corrupt(`entry ${i} has an invalid name`);
      }
    }
    const parentEntry = entries[parent];
    if (i > 0 && parentEntry?.kind !== 'dir') throw corrupt(`entry ${i}'s parent is not a directory`);
    const path = i === 0 ? '' : parent === 0 ? name : `${parentEntry!.path}/${name}`;
    const size = Number(buf.readBigUInt64LE(off + 16));
    let digest = '';
    let target = '';
    let first = 0;
    let count = 0;
    if (kind === 'file') digest = buf.toString('hex', off + 32, off + 32 + DIGEST_BYTES);
    else if (kind === 'dir') {
      first = buf.readUInt32LE(off + 32);
      count = buf.readUInt32LE(off + 36);
      if (count > 0 && (first <= i || first + count > n)) throw corrupt(`entry ${i} has children out of bounds`);
    } else target = str(buf.readUInt32LE(off + 32), buf.readUInt32LE(off + 36));
    entries[i] = {
      index: i,
      parent,
      name,
      path,
      kind,
      exec: kind === 'file' && (buf.readUInt8(off + 1) & FLAG_EXEC) !== 0,
      private: kind === 'file' && (buf.readUInt8(off + 1) & FLAG_PRIVATE) !== 0,
      size,
      mtimeNs: buf.readBigInt64LE(off + 24),
      digest,
      target,
      firstChild: first,
      childCount: count,
    };
  }
  return { version, hasMtimes, logicalSize, entries };
}

/** Turn parsed entries back into TreeEntry inputs (for grafting); `makePrivate` marks every file private. */
export function toTreeEntries(tree: ParsedTree, prefix = '', makePrivate = false): TreeEntry[] {
  const out: TreeEntry[] = [];
  for (const e of tree.entries) {
    if (e.index === 0 && prefix === '') continue;
    const path = e.index === 0 ? prefix : prefix ? `${prefix}/${e.path}` : e.path;
    const entry: TreeEntry = { path, kind: e.kind };
    if (e.kind === 'file') {
      entry.exec = e.exec;
      entry.size = e.size;
      entry.digest = e.digest;
      if (e.private || makePrivate) entry.private = true;
    } else if (e.kind === 'symlink') entry.target = e.target;
    if (tree.hasMtimes) entry.mtimeNs = e.mtimeNs;
    out.push(entry);
  }
  return out;
}
