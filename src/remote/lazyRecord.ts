/**
 * A lazily filled tree: a mount shows it while some of its objects are
 * still only in the remote (`--projection mount` with a remote: fill.ts
 * fetched the keys' trees, not their objects). Its record says where each
 * missing object lives in the remote, for the mount's object fetcher
 * (lazyFetcher.ts), and tells `velo verify` that the tree's missing objects
 * are expected, not damage:
 *
 *   <store>/remote/lazy/<tree>.json   {v, remote, tree, objects: [[digest, size, exec, pack, offset, length, enc, group, at], …],
 *                                      deps: [[group, …] per group]}
 *
 * A group is a package; `deps` (optional) names the packages each one
 * requires, which the fetcher takes along when the package is first opened.
 *
 * The package keys of such a tree are NOT set in the store (a key promises
 * every object is present): a later install looks them up in the remote
 * again and fetches only the objects still missing, re-hashed as always.
 * Locations come from the untrusted remote: the fetcher checks every object
 * it downloads against its digest and size before it enters the store.
 */
import { existsSync, readFileSync, readdirSync, unlinkSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeFileAtomic } from '../store/atomicWrite.js';
import { isDigest } from '../store/hash.js';
import { objectLooksIntact } from '../store/commitObject.js';
import { readTreeBuffer } from '../store/trees.js';
import { parseTree } from '../store/treeFormat.js';
import type { Store } from '../store/store.js';
import type { ObjectEncoding, ObjectLocation } from './remoteLayout.js';

export const LAZY_FORMAT = 2;

export interface LazyObject {
  digest: string;
  size: number;
  exec: boolean;
  loc: ObjectLocation;
  /** the package (key) it came with: a fetch takes that package's other missing objects in the same pack range along */
  group: number;
}

export interface LazyRecord {
  /** the remote's URL (its endpoint and credentials come from the environment) */
  remote: string;
  tree: string;
  objects: LazyObject[];
  /** per group: the groups it requires (fetched early once it is opened); absent: none known */
  deps?: number[][];
}

type Row = [string, number, 0 | 1, string, number, number, ObjectEncoding, number, number];

export function lazyRecordPath(home: string, tree: string): string {
  return join(home, 'remote', 'lazy', `${tree}.json`);
}

export function hasLazyRecord(home: string, tree: string): boolean {
  return existsSync(lazyRecordPath(home, tree));
}

export function writeLazyRecord(store: Store, record: LazyRecord): void {
  const rows: Row[] = record.objects.map((o) => [o.digest, o.size, o.exec ? 1 : 0, o.loc.pack, o.loc.offset, o.loc.length, o.loc.enc, o.group, o.loc.at ?? 0]);
  const body = { v: LAZY_FORMAT, remote: record.remote, tree: record.tree, objects: rows, ...(record.deps ? { deps: record.deps } : {}) };
  writeFileAtomic(lazyRecordPath(store.home, record.tree), JSON.stringify(body) + '\n', store.tmpPath('lazy'));
}

const nonNegInt = (n: unknown): n is number => typeof n === 'number' && Number.isSafeInteger(n) && n >= 0;

/** The record of a tree, or undefined when there is none or it is not one. */
export function readLazyRecord(home: string, tree: string): LazyRecord | undefined {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(lazyRecordPath(home, tree), 'utf8'));
  } catch {
    return undefined;
  }
  const r = raw as { v?: unknown; remote?: unknown; tree?: unknown; objects?: unknown; deps?: unknown };
  if (!r || r.v !== LAZY_FORMAT || typeof r.remote !== 'string' || r.tree !== tree || !Array.isArray(r.objects)) return undefined;
  const objects: LazyObject[] = [];
  for (const row of r.objects as unknown[]) {
    if (!Array.isArray(row) || row.length !== 9) return undefined;
    const [digest, size, exec, pack, offset, length, enc, group, at] = row as unknown[];
    if (typeof digest !== 'string' || !isDigest(digest) || !nonNegInt(size) || (exec !== 0 && exec !== 1)) return undefined;
    if (typeof pack !== 'string' || (pack !== '' && !isDigest(pack)) || !nonNegInt(offset) || !nonNegInt(length) || (enc !== 0 && enc !== 1 && enc !== 2) || !nonNegInt(group) || !nonNegInt(at)) return undefined;
    objects.push({ digest, size, exec: exec === 1, loc: enc === 2 ? { pack, offset, length, enc, at } : { pack, offset, length, enc }, group });
  }
  // dependencies only decide what is fetched early: a malformed list is ignored, not the record
  const deps = Array.isArray(r.deps) && r.deps.every((d) => Array.isArray(d) && d.every(nonNegInt)) ? (r.deps as number[][]) : undefined;
  return { remote: r.remote, tree, objects, ...(deps ? { deps } : {}) };
}

/**
 * The fetcher's script (lazyFetcher.js): beside this module (the bundle is
 * one flat directory; tsc's dist/src/remote/ too), or under dist/ when
 * running from the TypeScript sources (tests). Undefined when not built:
 * then nothing is filled lazily.
 */
export function lazyFetcherScript(): string | undefined {
  const here = fileURLToPath(import.meta.url);
  const beside = join(dirname(here), 'lazyFetcher.js');
  const path = here.endsWith('.js') ? beside : join(dirname(here), '..', '..', 'dist', 'src', 'remote', 'lazyFetcher.js');
  return existsSync(path) ? path : undefined;
}

/**
 * Record `tree` for a lazy mount: each of its files the store lacks must be
 * one the remote has (`missing`, from a lazy fill). Returns false when one
 * is not (the caller fetches everything first); true when recorded, or when
 * nothing is missing and no record is needed.
 */
export function recordLazyTree(store: Store, remoteUrl: string, missing: Map<string, LazyObject[]>, tree: string, deps?: number[][]): boolean {
  const objects: LazyObject[] = [];
  const seen = new Set<string>();
  for (const e of parseTree(readTreeBuffer(store, tree)).entries) {
    if (e.kind !== 'file') continue;
    const id = e.digest + (e.exec ? 'x' : '');
    if (seen.has(id)) continue;
    seen.add(id);
    // the lazy fill found it missing (no stat again: the fetcher skips what is in the store by the time it is opened)
    const o = missing.get(e.digest)?.find((m) => m.exec === e.exec);
    if (o && o.size === e.size) objects.push(o);
    else if (!objectLooksIntact(store.objectPath(e.digest, e.exec), e.size)) return false;
  }
  if (objects.length > 0) writeLazyRecord(store, { remote: remoteUrl, tree, objects, ...(deps ? { deps } : {}) });
  return true;
}

/**
 * Delete the lazy records velo gc no longer needs: of trees `live` says are
 * gone, and of trees whose every recorded object is in the store by now (a
 * later install completed them). Returns how many.
 */
export function dropLazyRecords(store: Store, live: (tree: string) => boolean): number {
  let dropped = 0;
  let names: string[];
  try {
    names = readdirSync(join(store.home, 'remote', 'lazy'));
  } catch {
    return 0;
  }
  for (const name of names) {
    const tree = name.endsWith('.json') ? name.slice(0, -'.json'.length) : '';
    if (!isDigest(tree)) continue;
    const record = live(tree) ? readLazyRecord(store.home, tree) : undefined;
    if (record && record.objects.some((o) => !objectLooksIntact(store.objectPath(o.digest, o.exec), o.size))) continue;
    try {
      unlinkSync(join(store.home, 'remote', 'lazy', name));
      dropped++;
    } catch {
      /* gone already */
    }
  }
  return dropped;
}
