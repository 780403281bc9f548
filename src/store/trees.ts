/**
 * Trees in the store: serialized by treeFormat.ts, named by their digest,
 * written atomically like objects.
 */
import { closeSync, existsSync, linkSync, openSync, readFileSync, unlinkSync, writeSync } from 'node:fs';
import { VeloError, errnoCode, fsError } from '../errors.js';
import { hashBuffer, isDigest } from './hash.js';
import { parseTree, serializeTree, toTreeEntries, type ParsedTree, type SerializeOptions, type TreeEntry } from './treeFormat.js';
import type { Store } from './store.js';

export interface PutTreeResult {
  digest: string;
  created: boolean;
  bytes: number;
}

export function putTreeBuffer(store: Store, data: Buffer): PutTreeResult {
  const digest = hashBuffer(data);
  const final = store.treePath(digest);
  if (existsSync(final)) return { digest, created: false, bytes: data.length };
  const tmp = store.tmpPath('tree');
  try {
    const fd = openSync(tmp, 'wx', 0o444);
    try {
      let off = 0;
      while (off < data.length) off += writeSync(fd, data, off, data.length - off);
    } finally {
      closeSync(fd);
    }
    store.ensurePrefixDir('trees', digest);
    try {
      linkSync(tmp, final);
    } catch (err) {
      if (errnoCode(err) !== 'EEXIST') throw err;
      return { digest, created: false, bytes: data.length };
    }
  } catch (err) {
    throw fsError(err, `cannot write tree ${digest}`);
  } finally {
    try {
      unlinkSync(tmp);
    } catch {
      /* gone */
    }
  }
  store.noteNewTree(data.length);
  return { digest, created: true, bytes: data.length };
}

export function putTree(store: Store, entries: Iterable<TreeEntry>, options?: SerializeOptions): string {
  return putTreeBuffer(store, serializeTree(entries, options)).digest;
}

export function hasTree(store: Store, digest: string): boolean {
  return isDigest(digest) && existsSync(store.treePath(digest));
}

/** The serialized bytes of a tree, checked against its name. */
export function readTreeBuffer(store: Store, digest: string): Buffer {
  if (!isDigest(digest)) throw new VeloError('BAD_INPUT', `not a tree digest: ${JSON.stringify(digest)} (expected 64 hex characters)`);
  let data: Buffer;
  try {
    data = readFileSync(store.treePath(digest));
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') throw new VeloError('NOT_FOUND', `unknown tree ${digest}: it is not in the store at ${store.home}`);
    throw fsError(err, `cannot read tree ${digest}`);
  }
  if (hashBuffer(data) !== digest) throw new VeloError('CORRUPT_TREE', `tree ${digest} in the store does not match its digest`);
  return data;
}

export function readTree(store: Store, digest: string): ParsedTree {
  return parseTree(readTreeBuffer(store, digest));
}

export interface GraftPart {
  /** where the part's root goes, '/'-separated, '' for the root itself */
  prefix: string;
  tree: string;
  /** materialize every file of this part by copy, never by hardlink */
  private?: boolean;
  /** entries (by their composed path) to leave out; default: all are kept */
  keep?: (path: string) => boolean;
}

/** Compose trees: each part placed at its prefix, plus extra entries. */
export function graftTrees(store: Store, parts: GraftPart[], extra: TreeEntry[] = [], options?: SerializeOptions): string {
  const entries: TreeEntry[] = [];
  for (const part of parts) {
    const es = toTreeEntries(readTree(store, part.tree), part.prefix, part.private === true);
    entries.push(...(part.keep ? es.filter((e) => part.keep!(e.path)) : es));
  }
  entries.push(...extra);
  return putTree(store, entries, options);
}
