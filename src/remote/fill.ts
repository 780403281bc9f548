/**
 * Lookup before the registry: package key → remote key (which carries its
 * tree; the lockfile's bundle gives all of them in one GET when the remote
 * has it) → the objects the local store lacks. Everything from the remote is untrusted: the key's
 * JSON is checked field by field, the tree and every object are re-hashed
 * with BLAKE3 before they enter the local store, and an object's length must
 * be the size its tree gives. A key is set locally only when its tree and
 * all of its objects are in the store; anything else is left to the
 * registry. Objects are read by ranged GETs, neighbours in a pack merged
 * into one request; each download is decompressed, checked and written on
 * the ingest worker threads (remoteJobs.ts) while later ones download.
 */
import { hashBuffer } from '../store/hash.js';
import { objectLooksIntact } from '../store/commitObject.js';
import { KeyBatch } from '../store/keys.js';
import { hasTree, putTreeBuffer, readTreeBuffer } from '../store/trees.js';
import { parseTree, type ParsedEntry } from '../store/treeFormat.js';
import { writeBufferToStore } from '../store/writeBufferToStore.js';
import type { Store } from '../store/store.js';
import {
  FRAME_OBJECT_MAX,
  FRAME_RAW_MAX,
  bundleObjectName,
  decodeBundle,
  decodeRemoteKey,
  keyObjectName,
  looseObjectName,
  packObjectName,
  type DecodedKey,
  type ObjectLocation,
} from './remoteLayout.js';
import { runPool } from './pool.js';
import { checkIn, remoteJobPool, type CheckInItem } from './remoteJobs.js';
import type { Remote } from './remote.js';
import { RemoteError } from './s3Client.js';
import type { LazyObject } from './lazyRecord.js';

export const FETCH_CONCURRENCY = 16;
/** keys are small (one GET each, latency-bound): more of them in flight */
const KEY_CONCURRENCY = 32;
/** more keys than this to look up one by one: the remote's key list is read alongside (smallKeyList) */
const LIST_KEYS_FROM = 200;
const EMPTY_DIGEST = hashBuffer(Buffer.alloc(0));
/** the most a key's JSON (its tree included) from the remote may weigh: the remote is untrusted, memory is not */
const KEY_MAX_BYTES = 512 << 20;
/** neighbouring objects in a pack are read in one GET when the gap is at most this */
const MERGE_GAP = 64 << 10;
/**
 * and the merged range at most this long: a worker starts on a range once it
 * has all arrived, so shorter ranges start the workers sooner, share the
 * work between them evenly at the end and hold less in memory (1207
 * lockfile: 102 GETs instead of 25 at 8 MiB, peak RSS 650–740 MB instead of 800–825)
 */
const MERGE_SPAN = 1 << 20;
/** trees written per turn of the event loop while objects download */
const TREES_PER_TURN = 16;

export interface FillResult {
  /** key name → tree, for every key now in the local store */
  trees: Map<string, string>;
  /** the keys the remote answered it does not have */
  absent: string[];
  objects: number;
  bytes: number;
  requests: number;
}

export interface Found {
  name: string;
  kind: string;
  tree: string;
  treeBuf: Buffer | undefined;
  files: ParsedEntry[];
  logicalSize: number;
  locations: Map<string, ObjectLocation>;
  bad: boolean;
  /** its files' objects not yet in the store (wantedObjects counts them, downloads count them down) */
  pending: number;
  /** its key is set (or its tree recorded, with setKeys false) */
  committed: boolean;
}

export interface Wanted {
  digest: string;
  size: number;
  execs: Set<boolean>;
  loc: ObjectLocation;
  users: Found[];
}

export interface FillOptions {
  /** set each key found in the local index under its name (default); false: the caller records the trees itself */
  setKeys?: boolean;
  /** the whole key set of the lockfile: its bundle, when the remote has one, gives every record in one GET */
  bundle?: string[];
}

export async function fillFromRemote(store: Store, remote: Remote, names: string[], kinds: readonly string[], options: FillOptions = {}): Promise<FillResult> {
  const requests0 = remote.client.stats.requests;
  const result: FillResult = { trees: new Map(), absent: [], objects: 0, bytes: 0, requests: 0 };
  // the workers load while the keys are looked up, from the first key found: a remote that has none of them starts none
  const pool = remoteJobPool();
  const found = await lookUpAll(store, remote, names, kinds, options.bundle, result.absent, () => pool?.start());
  const wanted = wantedObjects(store, remote, found);
  // a key whose objects are all in is set while the rest download (the main thread mostly waits on the workers)
  const keys = new KeyCommitter(store, options, result);
  await Promise.all([downloadObjects(store, remote, wanted, result, pool, (f) => keys.commit(f)), putTreesMeanwhile(store, found)]);
  keys.commitAll(found);
  result.requests = remote.client.stats.requests - requests0;
  return result;
}

/**
 * What a lazy fill found (`--projection mount`): the keys' trees, checked
 * and in the store, and where each object the store lacks lives in the
 * remote. No object was downloaded and no key set: a key promises that all
 * its objects are present. completeLazyFill downloads the rest and sets them.
 */
export interface LazyFill {
  /** key name → tree, for every key whose tree and object index checked out */
  trees: Map<string, string>;
  /** digest → where it is, for each object of those trees the store lacks */
  missing: Map<string, LazyObject[]>;
  found: Found[];
  wanted: Map<string, Wanted>;
  /** the key name of each group a missing object names (LazyObject.group) */
  groups: string[];
}

export async function lazyFillFromRemote(
  store: Store,
  remote: Remote,
  names: string[],
  kinds: readonly string[],
  bundle?: string[],
  /** false: the caller lays out from trees of its own (a project record); the keys' trees stay in memory until completeLazyFill sets the keys */
  putTrees = true,
): Promise<LazyFill> {
  const found = await lookUpAll(store, remote, names, kinds, bundle, []);
  const wanted = wantedObjects(store, remote, found);
  const trees = new Map<string, string>();
  for (const f of found) {
    if (f.bad) continue;
    if (f.treeBuf && putTrees) putTreeBuffer(store, f.treeBuf);
    trees.set(f.name, f.tree);
  }
  store.flushCounters();
  const missing = new Map<string, LazyObject[]>();
  const group = new Map(found.map((f, i) => [f, i]));
  for (const w of wanted.values()) {
    const user = w.users.find((u) => !u.bad);
    if (!user) continue; // wanted by no key that checked out
    missing.set(w.digest, [...w.execs].map((exec) => ({ digest: w.digest, size: w.size, exec, loc: w.loc, group: group.get(user)! })));
  }
  return { trees, missing, found: found.filter((f) => !f.bad), wanted, groups: found.map((f) => f.name) };
}

/** Download what a lazy fill left in the remote (what is in the store by now is skipped) and set its keys. */
export async function completeLazyFill(store: Store, remote: Remote, lazy: LazyFill, options: FillOptions = {}): Promise<FillResult> {
  const requests0 = remote.client.stats.requests;
  const result: FillResult = { trees: new Map(), absent: [], objects: 0, bytes: 0, requests: 0 };
  const wanted = [...lazy.wanted.values()].filter((w) => [...w.execs].some((exec) => !objectLooksIntact(store.objectPath(w.digest, exec), w.size)));
  await downloadObjects(store, remote, new Map(wanted.map((w) => [w.digest, w])), result);
  new KeyCommitter(store, options, result).commitAll(lazy.found);
  result.requests = remote.client.stats.requests - requests0;
  return result;
}

/**
 * Download now the objects of a lazy fill's files that `pick` chooses (what
 * an install must read before it can lay out, e.g. a distribution's own
 * metadata), and take them off its missing list. A key one of them failed
 * for leaves the fill (its trees and groups stay for the record's numbering):
 * the caller gets it elsewhere.
 */
export async function fetchLazyPart(store: Store, remote: Remote, lazy: LazyFill, pick: (path: string) => boolean): Promise<FillResult> {
  const requests0 = remote.client.stats.requests;
  const result: FillResult = { trees: new Map(), absent: [], objects: 0, bytes: 0, requests: 0 };
  const part = new Map<string, Wanted>();
  for (const f of lazy.found) {
    for (const e of f.files) {
      const w = lazy.wanted.get(e.digest);
      if (w && pick(e.path)) part.set(e.digest, w);
    }
  }
  await downloadObjects(store, remote, part, result);
  for (const w of part.values()) if ([...w.execs].every((exec) => objectLooksIntact(store.objectPath(w.digest, exec), w.size))) lazy.missing.delete(w.digest);
  for (const f of lazy.found) if (f.bad) lazy.trees.delete(f.name);
  lazy.found = lazy.found.filter((f) => !f.bad);
  result.requests = remote.client.stats.requests - requests0;
  return result;
}

/** Every key's record checked (from the bundle when there is one); the keys the remote lacks go to `absent`. */
async function lookUpAll(
  store: Store,
  remote: Remote,
  names: string[],
  kinds: readonly string[],
  bundle: string[] | undefined,
  absent: string[],
  onFirstFound?: () => void,
): Promise<Found[]> {
  remote.phase = 'fetch';
  const found: Found[] = [];
  const fromBundle = bundle ? await readBundle(remote, bundle, names) : new Map<string, DecodedKey>();
  // many keys to ask for one by one: first the remote's key list, when it is one page (a new or small
  // remote), and a key not in it is absent without its GET (an empty remote: a publishing install's
  // ~1,000 lookups that all answered 404). A larger remote: one request more, then the GETs as before
  const unbundled = names.filter((n) => !fromBundle.has(n)).length;
  const listed = unbundled > LIST_KEYS_FROM ? await smallKeyList(remote) : undefined;
  await runPool(names, KEY_CONCURRENCY, async (name) => {
    const bundled = fromBundle.get(name);
    if (!bundled && listed && !listed.has(keyObjectName(remote.prefix, name))) return void absent.push(name);
    const f = bundled ? examine(store, remote, name, kinds, bundled) : await lookUp(store, remote, name, kinds);
    if (f === 'absent') absent.push(name);
    else if (f && found.push(f) === 1) onFirstFound?.();
  });
  return found;
}

/** What the local store lacks of the keys found, once per digest (a key whose index is wrong is marked bad). */
function wantedObjects(store: Store, remote: Remote, found: Found[]): Map<string, Wanted> {
  const wanted = new Map<string, Wanted>();
  for (const f of found) {
    for (const e of f.files) {
      // an object already wanted (a file shared by packages, or within one) is known to be missing: no second stat
      if (wanted.get(e.digest)?.execs.has(e.exec) !== true && objectLooksIntact(store.objectPath(e.digest, e.exec), e.size)) continue;
      if (e.size === 0) {
        // empty files are never uploaded: their bytes are known
        if (e.digest === EMPTY_DIGEST) writeBufferToStore(store, Buffer.alloc(0), e.exec, e.digest);
        else {
          remote.damaged(`${f.name}: an empty file named ${e.digest}`);
          f.bad = true;
        }
        continue;
      }
      const loc = f.locations.get(e.digest);
      if (!loc || !sizeFits(loc, e.size)) {
        remote.damaged(`${f.name}: no index entry of the right size for object ${e.digest}`);
        f.bad = true;
        continue;
      }
      const w = wanted.get(e.digest);
      f.pending++;
      if (w) {
        w.execs.add(e.exec);
        w.users.push(f);
      } else wanted.set(e.digest, { digest: e.digest, size: e.size, execs: new Set([e.exec]), loc, users: [f] });
    }
  }
  return wanted;
}

/** Each download is checked and written on a worker thread while later ones download; a failure marks its keys bad. */
async function downloadObjects(
  store: Store,
  remote: Remote,
  wanted: Map<string, Wanted>,
  result: FillResult,
  pool = remoteJobPool(),
  /** called for a key once all its objects are in */
  complete?: (f: Found) => void,
): Promise<void> {
  await runPool(planReads([...wanted.values()]), FETCH_CONCURRENCY, async (read) => {
    const objectName = read.pack === '' ? looseObjectName(remote.prefix, read.items[0]!.digest) : packObjectName(remote.prefix, read.pack);
    const data = await remote.guard(() =>
      read.pack === '' ? remote.client.get(objectName, undefined, read.end) : remote.client.get(objectName, { start: read.start, end: read.end - 1 }),
    );
    if (data === undefined) {
      if (remote.usable) remote.damaged(`${objectName} is missing`);
      for (const w of read.items) for (const u of w.users) u.bad = true;
      return;
    }
    const items: CheckInItem[] = read.items.map((w) => ({
      digest: w.digest,
      size: w.size,
      execs: [...w.execs],
      offset: read.pack === '' ? 0 : w.loc.offset - read.start,
      length: w.loc.length,
      enc: w.loc.enc,
      at: w.loc.at ?? 0,
    }));
    const ok = await checkIn(store, pool, data, items);
    read.items.forEach((w, i) => {
      if (!ok[i]) {
        remote.damaged(`object ${w.digest} in ${objectName} does not match its digest`);
        for (const u of w.users) u.bad = true;
        return;
      }
      result.objects++;
      result.bytes += w.size;
      if (complete) for (const u of w.users) if (--u.pending === 0 && !u.bad) complete(u);
    });
  });
}

/**
 * Write the found keys' trees while their objects download and are checked
 * in on the workers (the main thread mostly waits then), a few per turn of
 * the event loop so that answers keep being handed on. A tree in the store
 * without its key is harmless, as after a lazy fill: gc collects it.
 */
async function putTreesMeanwhile(store: Store, found: Found[]): Promise<void> {
  const list = found.filter((f) => f.treeBuf !== undefined);
  for (let i = 0; i < list.length; i += TREES_PER_TURN) {
    await new Promise<void>((resolve) => setImmediate(resolve));
    for (const f of list.slice(i, i + TREES_PER_TURN)) {
      if (f.bad || !f.treeBuf) continue;
      putTreeBuffer(store, f.treeBuf);
      f.treeBuf = undefined;
    }
  }
}

/**
 * Sets the keys whose every object was in the store already, or was fetched
 * and checked for them: each key's ref file at once, the index rows in one
 * transaction at the end (KeyBatch).
 */
class KeyCommitter {
  readonly #store: Store;
  readonly #options: FillOptions;
  readonly #result: FillResult;
  readonly #batch: KeyBatch;

  constructor(store: Store, options: FillOptions, result: FillResult) {
    this.#store = store;
    this.#options = options;
    this.#result = result;
    this.#batch = new KeyBatch(store);
  }

  commit(f: Found): void {
    if (f.bad || f.committed) return;
    if (f.treeBuf) putTreeBuffer(this.#store, f.treeBuf);
    f.treeBuf = undefined;
    if (this.#options.setKeys !== false) this.#batch.add(f.name, f.tree, { kind: f.kind, logicalBytes: f.logicalSize, files: f.files.length });
    this.#result.trees.set(f.name, f.tree);
    f.committed = true;
  }

  /** The rest of the good keys, then the index rows and the store's counters. */
  commitAll(found: Found[]): void {
    for (const f of found) this.commit(f);
    this.#batch.flush();
    this.#store.flushCounters();
  }
}

/** Stored as it is: exactly its size; compressed alone: smaller than it; in a frame: a small object, in a frame smaller than a whole one. */
function sizeFits(loc: ObjectLocation, size: number): boolean {
  if (loc.enc === 0) return loc.length === size;
  if (loc.enc === 1) return loc.length < size;
  return size <= FRAME_OBJECT_MAX && loc.length < FRAME_RAW_MAX && (loc.at ?? 0) + size <= FRAME_RAW_MAX;
}

/** The records the lockfile's bundle holds for `names` (none when there is no bundle, or it is not one: one warning, then key by key). */
async function readBundle(remote: Remote, bundle: string[], names: string[]): Promise<Map<string, DecodedKey>> {
  const data = await remote.guard(() => remote.client.get(bundleObjectName(remote.prefix, bundle), undefined, KEY_MAX_BYTES));
  if (data === undefined) return new Map();
  try {
    return decodeBundle(data, new Set(names));
  } catch (err) {
    remote.damaged((err as Error).message);
    return new Map();
  }
}

/**
 * Every key object's name in the remote, when they fit in one listing page;
 * undefined when they do not, or the listing was refused (a read-only
 * credential may not list: no failure of the remote, the GETs go on). A
 * remote that does not answer has failed, as on a GET (one warning, no
 * further request).
 */
async function smallKeyList(remote: Remote): Promise<Set<string> | undefined> {
  return remote.guard(async () => {
    try {
      const page = await remote.client.listPage(`${remote.prefix}keys/`);
      return page.truncated ? undefined : new Set(page.objects.map((o) => o.key));
    } catch (err) {
      if (err instanceof RemoteError && err.status === 0) throw err;
      return undefined;
    }
  });
}

async function lookUp(store: Store, remote: Remote, name: string, kinds: readonly string[]): Promise<Found | 'absent' | undefined> {
  const data = await remote.guard(() => remote.client.get(keyObjectName(remote.prefix, name), undefined, KEY_MAX_BYTES));
  if (data === undefined) return remote.usable ? 'absent' : undefined;
  let decoded;
  try {
    decoded = decodeRemoteKey(data, name);
  } catch (err) {
    remote.damaged((err as Error).message);
    return undefined;
  }
  return examine(store, remote, name, kinds, decoded);
}

/** A key record checked: its kind, its tree (re-hashed unless the store has it) and the tree's files. */
function examine(store: Store, remote: Remote, name: string, kinds: readonly string[], decoded: DecodedKey): Found | undefined {
  const { key, locations } = decoded;
  if (!kinds.includes(key.kind)) {
    remote.damaged(`remote key for ${name} has kind ${JSON.stringify(key.kind)}`);
    return undefined;
  }
  let treeBuf: Buffer | undefined;
  let bytes: Buffer;
  if (hasTree(store, key.tree)) bytes = readTreeBuffer(store, key.tree);
  else {
    treeBuf = Buffer.from(key.treeData, 'base64');
    if (hashBuffer(treeBuf) !== key.tree) {
      remote.damaged(`tree ${key.tree} of ${name} does not match its digest`);
      return undefined;
    }
    bytes = treeBuf;
  }
  let parsed;
  try {
    parsed = parseTree(bytes);
  } catch (err) {
    remote.damaged(`tree ${key.tree} of ${name}: ${(err as Error).message}`);
    return undefined;
  }
  const files = parsed.entries.filter((e) => e.kind === 'file');
  return { name, kind: key.kind, tree: key.tree, treeBuf, files, logicalSize: parsed.logicalSize, locations, bad: false, pending: 0, committed: false };
}

interface Read {
  pack: string;
  start: number;
  end: number;
  items: Wanted[];
}

/** One GET per loose object; pack objects sorted by offset and merged while close together. */
export function planReads(wanted: Wanted[]): Read[] {
  const reads: Read[] = [];
  const byPack = new Map<string, Wanted[]>();
  for (const w of wanted) {
    if (w.loc.pack === '') reads.push({ pack: '', start: 0, end: w.loc.length, items: [w] });
    else {
      const list = byPack.get(w.loc.pack);
      if (list) list.push(w);
      else byPack.set(w.loc.pack, [w]);
    }
  }
  for (const [pack, list] of byPack) {
    list.sort((a, b) => a.loc.offset - b.loc.offset);
    let cur: Read | undefined;
    for (const w of list) {
      const end = w.loc.offset + w.loc.length;
      if (cur && w.loc.offset - cur.end <= MERGE_GAP && end - cur.start <= MERGE_SPAN) {
        cur.end = Math.max(cur.end, end);
        cur.items.push(w);
      } else {
        cur = { pack, start: w.loc.offset, end, items: [w] };
        reads.push(cur);
      }
    }
  }
  return reads;
}
