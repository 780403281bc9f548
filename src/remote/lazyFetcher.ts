/**
 * The object fetcher of a lazy mount: velo-mountd starts it with the mount
 * (native/src/mountd.c, --fetch-node/--fetch-script) and asks it, over the
 * socket on fd 3, for each object a reader opens that is not in the store
 * yet (native/src/fuse_fetch.h has the wire format). It reads the tree's
 * lazy record (lazyRecord.ts) for where each object lives, downloads it
 * (one ranged GET of its pack, or the lone object), checks its size and
 * BLAKE3 digest and writes it into the store atomically — only then does
 * it answer "ok", and the mount opens the object. Anything else (the remote
 * unreachable, refused, a digest that does not match) is one line in the
 * mount's log and an error answer: that open fails with EIO, and no wrong
 * byte is ever stored or served. Requests for one object while it is being
 * fetched share its download. When a package is first opened, the packages
 * it requires (the record's `deps`, from the lockfile) are fetched too, a
 * few GETs at a time, nearest first: Node's require opens them next, and one
 * GET after another would wait a round trip each.
 *
 *   node lazyFetcher.js --dir <mount dir> --objects <store>/objects --tree <tree digest>
 *
 * The remote's endpoint and credentials come from the environment the
 * mount was started in (inherited through velo-mountd); its URL from the
 * record. What it fetched is kept in <mount dir>/fetch-stats.json. It exits
 * when the socket closes: when velo-mountd exits, however it exits.
 */
import { createInterface } from 'node:readline';
import { Socket } from 'node:net';
import { dirname, join } from 'node:path';
import { parseArgs } from 'node:util';
import { objectLooksIntact } from '../store/commitObject.js';
import { objectRelPath } from '../store/layout.js';
import { writeFileAtomic } from '../store/atomicWrite.js';
import { Store } from '../store/store.js';
import { remoteSettings } from './remoteConfig.js';
import { S3Client } from './s3Client.js';
import { looseObjectName, packObjectName } from './remoteLayout.js';
import { checkIn, remoteJobPool } from './remoteJobs.js';
import type { IngestPool } from '../store/ingestPool.js';
import { readLazyRecord, type LazyObject } from './lazyRecord.js';

/** What the fetcher did, in <mount dir>/fetch-stats.json (for `velo mount status`, tests and benches). */
export interface FetchStats {
  /** objects fetched, checked and written into the store */
  objects: number;
  /** their size */
  bytes: number;
  /** requests to the remote and the bytes they brought (compressed as stored there) */
  requests: number;
  bytesIn: number;
  /** objects that could not be fetched (the open failed with EIO) */
  failed: number;
  /** of `objects`, those fetched ahead of an open, as a dependency of a package opened */
  prefetched: number;
}

const { values } = parseArgs({ options: { dir: { type: 'string' }, objects: { type: 'string' }, tree: { type: 'string' } } });
if (!values.dir || !values.objects || !values.tree) {
  process.stderr.write('usage: lazyFetcher.js --dir <mount dir> --objects <objects dir> --tree <tree>\n');
  process.exit(2);
}
const mountDir = values.dir;
const home = dirname(values.objects);
const tree = values.tree;
const stats: FetchStats = { objects: 0, bytes: 0, requests: 0, bytesIn: 0, failed: 0, prefetched: 0 };

function log(message: string): void {
  process.stderr.write(`${new Date().toISOString()} [${process.pid}] fetcher: ${message}\n`);
}

const record = readLazyRecord(home, tree);
const byName = new Map<string, LazyObject>();
// named as the mount asks: the path under objects/
for (const o of record?.objects ?? []) byName.set(objectRelPath(o.digest, o.exec).slice('objects/'.length), o);
const settings = record ? remoteSettings({ env: process.env, flag: record.remote }) : undefined;
const client = settings ? new S3Client(settings.location) : undefined;
const store = Store.open(home);
if (!record) log(`no lazy record for tree ${tree}: objects not in the store cannot be fetched`);
else log(`${byName.size} objects of tree ${tree} fetched on first open from ${record.remote}`);

let statsTimer: NodeJS.Timeout | undefined;
function saveStats(): void {
  statsTimer = undefined;
  stats.requests = client?.stats.requests ?? 0;
  stats.bytesIn = client?.stats.bytesIn ?? 0;
  try {
    writeFileAtomic(join(mountDir, 'fetch-stats.json'), JSON.stringify(stats) + '\n', join(mountDir, `.fetch-stats.${process.pid}.tmp`));
    store.flushCounters();
  } catch (err) {
    log(`cannot record what was fetched: ${(err as Error).message}`);
  }
}
function statsChanged(): void {
  statsTimer ??= setTimeout(saveStats, 200);
}

/** A batch's range may skip this much between two wanted objects, and span at most this much. */
const BATCH_GAP = 64 << 10;
const BATCH_SPAN = 256 << 10;

/** Objects of one package by (group, pack), to take along when one of them is asked for. */
const byGroup = new Map<string, LazyObject[]>();
for (const o of record?.objects ?? []) {
  if (o.loc.pack === '') continue;
  const k = `${o.group} ${o.loc.pack}`;
  const list = byGroup.get(k);
  if (list) list.push(o);
  else byGroup.set(k, [o]);
}
for (const list of byGroup.values()) list.sort((a, b) => a.loc.offset - b.loc.offset);

const nameOf = (o: LazyObject): string => objectRelPath(o.digest, o.exec).slice('objects/'.length);
const present = (o: LazyObject): boolean => objectLooksIntact(store.objectPath(o.digest, o.exec), o.size) === true;

/**
 * What one GET brings for a wanted object: it alone, or, in a pack, the run
 * of its package's other missing objects around it (gaps <= BATCH_GAP, span
 * <= BATCH_SPAN) — a reader that opens one file of a package opens its
 * others next (Node's require reads package.json, then the entry, then what
 * it requires).
 */
function batchFor(o: LazyObject): LazyObject[] {
  const list = o.loc.pack === '' ? undefined : byGroup.get(`${o.group} ${o.loc.pack}`);
  if (!list) return [o];
  const take = (x: LazyObject): boolean => x === o || (!inFlight.has(nameOf(x)) && !present(x));
  const at = list.indexOf(o);
  let lo = at;
  let hi = at;
  const span = (a: number, b: number): number => list[b]!.loc.offset + list[b]!.loc.length - list[a]!.loc.offset;
  while (lo > 0 && take(list[lo - 1]!) && list[lo]!.loc.offset - (list[lo - 1]!.loc.offset + list[lo - 1]!.loc.length) <= BATCH_GAP && span(lo - 1, hi) <= BATCH_SPAN) lo--;
  while (hi < list.length - 1 && take(list[hi + 1]!) && list[hi + 1]!.loc.offset - (list[hi]!.loc.offset + list[hi]!.loc.length) <= BATCH_GAP && span(lo, hi + 1) <= BATCH_SPAN) hi++;
  return list.slice(lo, hi + 1);
}

/** Fetch a batch into the store (one GET); per object: undefined when it is in the store, else why not. */
async function fetchBatch(batch: LazyObject[], ahead: boolean): Promise<(string | undefined)[]> {
  const why = (w: string): (string | undefined)[] => batch.map(() => w);
  if (!client || !settings) return why(`not an object of tree ${tree} left in the remote`);
  const first = batch[0]!;
  const last = batch[batch.length - 1]!;
  const start = first.loc.offset;
  const end = last.loc.offset + last.loc.length;
  const key = first.loc.pack === '' ? looseObjectName(settings.prefix, first.digest) : packObjectName(settings.prefix, first.loc.pack);
  let data: Buffer | undefined;
  try {
    data = first.loc.pack === '' ? await client.get(key, undefined, first.loc.length) : await client.get(key, { start, end: end - 1 });
  } catch (err) {
    return why(`${key}: ${(err as Error).message}`);
  }
  if (data === undefined) return why(`${key} is missing from ${settings.url}`);
  const expected = first.loc.pack === '' ? first.loc.length : end - start;
  if (data.length !== expected) return why(`${key}: got ${data.length} bytes for ${expected}`);
  const base = first.loc.pack === '' ? 0 : start;
  const items = batch.map((o) => ({ digest: o.digest, size: o.size, execs: [o.exec], offset: o.loc.offset - base, length: o.loc.length, enc: o.loc.enc, at: o.loc.at ?? 0 }));
  // a large download is decoded, hashed and written on a worker: this thread stays free to answer
  // the next open and start the next GETs (a native library decodes for a tenth of a second and
  // more); a small one here, with no hand-over (and no worker to start for the first opens)
  let ok: boolean[];
  try {
    ok = await checkIn(store, data.length >= WORKER_FROM ? (pool ??= remoteJobPool()) : undefined, data, items);
  } catch (err) {
    return why(`cannot write into the store: ${(err as Error).message}`);
  }
  return batch.map((o, i) => {
    if (!ok[i]) return `object ${o.digest} in ${key} does not match its digest: not used`;
    stats.objects++;
    stats.bytes += o.size;
    if (ahead) stats.prefetched++;
    return undefined;
  });
}

/** the workers large downloads are checked in on (started at the first; undefined on one core: this thread) */
let pool: IngestPool | undefined;
/** downloads from this size on are checked in on a worker */
const WORKER_FROM = 1 << 20;

const inFlight = new Map<string, Promise<string | undefined>>();

/**
 * Fetch the object named (with its batch); requests for an object already on
 * its way share that download. `ahead`: not asked for by an open (a
 * dependency fetched early); a failure then fails no open.
 */
function fetchOnce(name: string, ahead = false): Promise<string | undefined> {
  const pending = inFlight.get(name);
  if (pending) return pending;
  const o = byName.get(name);
  if (!o) return Promise.resolve(`${name} is not an object of tree ${tree} left in the remote`);
  if (present(o)) return Promise.resolve(undefined);
  const batch = batchFor(o);
  const results = fetchBatch(batch, ahead).catch((err: unknown) => batch.map(() => `unexpected error: ${(err as Error).message}`));
  let answer: Promise<string | undefined> | undefined;
  batch.forEach((x, i) => {
    const p = results.then((r) => {
      const w = r[i];
      if (w !== undefined) {
        if (!ahead) stats.failed++;
        log(`cannot fetch ${nameOf(x)}${ahead ? ' ahead of its open' : ''}: ${w}`);
      }
      statsChanged();
      return w;
    });
    inFlight.set(nameOf(x), p);
    void p.finally(() => inFlight.delete(nameOf(x)));
    if (x === o) answer = p;
  });
  return answer!;
}

/** Dependency groups fetched ahead, at most this many GETs at once (an open's own fetch never waits for them) */
const AHEAD_CONCURRENCY = 4;
/** and at most this many packages taken along per package opened (nearest first; theirs follow when they are opened) */
const AHEAD_GROUPS = 64;
/** VELO_LAZY_AHEAD=0 (in the environment the mount was started in): fetch only what is opened */
const fetchAhead = process.env.VELO_LAZY_AHEAD !== '0';
const depsOf = record?.deps ?? [];
const objectsOf = new Map<number, LazyObject[]>();
for (const o of record?.objects ?? []) {
  const list = objectsOf.get(o.group);
  if (list) list.push(o);
  else objectsOf.set(o.group, [o]);
}
/** packages whose dependencies were queued (once per mount), and packages queued to fetch ahead */
const expanded = new Set<number>();
const queued = new Set<number>();
const aheadQueue: number[] = [];
let aheadRunning = 0;

/** A package was opened: queue the rest of it, then the packages it requires, breadth first, for fetching ahead. */
function takeDependenciesAlong(group: number): void {
  if (expanded.has(group)) return;
  expanded.add(group);
  const seen = new Set([group]);
  const queue = [group];
  let taken = 0;
  while (queue.length > 0 && taken < AHEAD_GROUPS) {
    const g = queue.shift()!;
    if (!queued.has(g) && objectsOf.has(g)) {
      queued.add(g);
      aheadQueue.push(g);
      taken++;
    }
    for (const d of depsOf[g] ?? []) {
      if (seen.has(d)) continue;
      seen.add(d);
      queue.push(d);
    }
  }
  pumpAhead();
}

function pumpAhead(): void {
  while (aheadRunning < AHEAD_CONCURRENCY && aheadQueue.length > 0) {
    const g = aheadQueue.shift()!;
    aheadRunning++;
    void fetchGroup(g).finally(() => {
      aheadRunning--;
      pumpAhead();
    });
  }
}

/** Every object of a package still missing, a batch (one GET) at a time. */
async function fetchGroup(group: number): Promise<void> {
  for (const o of objectsOf.get(group) ?? []) {
    const name = nameOf(o);
    if (inFlight.has(name) || present(o)) continue;
    await fetchOnce(name, true);
  }
}

const socket = new Socket({ fd: 3, readable: true, writable: true });
const finish = (): void => {
  if (statsTimer) clearTimeout(statsTimer);
  saveStats();
  store.close();
  process.exit(0);
};
socket.on('error', (err) => log(`socket: ${err.message}`));
socket.on('close', finish);
process.on('SIGTERM', finish);
createInterface({ input: socket, crlfDelay: Infinity }).on('line', (line) => {
  const sp = line.indexOf(' ');
  const id = line.slice(0, sp);
  if (sp <= 0 || !/^\d+$/.test(id)) return;
  const name = line.slice(sp + 1);
  const asked = fetchOnce(name);
  const o = byName.get(name);
  if (o && fetchAhead) takeDependenciesAlong(o.group);
  void asked.then((why) => {
    if (!socket.destroyed) socket.write(why === undefined ? `${id} ok\n` : `${id} error ${why.replace(/\n/g, ' ')}\n`);
  });
});
